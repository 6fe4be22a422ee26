/**
 * What the venues view shows, from decoded crypto books and health: venue colours, ladder rows
 * whose size bars are stacked by venue, and the badges that say whether a book or a connection
 * can be trusted. Pure, so every rule here is tested.
 */
import { decimalToNumber } from './decimal';
import { formatAgeNs } from './price';
import type { BookSide, CryptoBook, CryptoLevel, VenueConnState, CryptoBookState } from './types';

/** The book name of the consolidated book (`?venue=consolidated`). */
export const CONSOLIDATED = 'consolidated';

/** Every venue to colour: those the server connects to, each book's own and those it names. */
export function allVenues(connections: Iterable<string>, books: Iterable<Pick<CryptoBook, 'venue' | 'venues'>>): Set<string> {
	const all = new Set(connections);
	for (const b of books) {
		if (b.venue !== CONSOLIDATED) all.add(b.venue);
		for (const v of b.venues) all.add(v);
	}
	return all;
}

/** Venues with a fixed colour slot (the same colour whatever else runs); others take 4–7. */
export const KNOWN_VENUES = ['kraken', 'coinbase', 'binance', 'bybit'] as const;
/** Colour slots: CSS variables `--venue-0` … `--venue-7` (app.css, per theme). */
export const VENUE_SLOTS = 8;

/** The venues in legend order: the known ones in their fixed order, then the rest by name. */
export function venueOrder(venues: Iterable<string>): string[] {
	const set = new Set(venues);
	const known = KNOWN_VENUES.filter((v) => set.has(v));
	const rest = [...set].filter((v) => !(KNOWN_VENUES as readonly string[]).includes(v)).sort();
	return [...known, ...rest];
}

/**
 * Colour slot of each venue: a known venue keeps its own slot; the others share 4–7 in name
 * order (a ninth unknown venue wraps round, and is told apart by its name in the legend).
 */
export function venueSlots(venues: Iterable<string>): Map<string, number> {
	const slots = new Map<string, number>();
	let next = KNOWN_VENUES.length;
	for (const v of venueOrder(venues)) {
		const k = (KNOWN_VENUES as readonly string[]).indexOf(v);
		if (k >= 0) slots.set(v, k);
		else {
			slots.set(v, KNOWN_VENUES.length + ((next - KNOWN_VENUES.length) % (VENUE_SLOTS - KNOWN_VENUES.length)));
			next++;
		}
	}
	return slots;
}

/** The CSS colour of a venue's slot. */
export function venueColor(slots: ReadonlyMap<string, number>, venue: string): string {
	return `var(--venue-${slots.get(venue) ?? VENUE_SLOTS - 1})`;
}

/**
 * The venues of a best level or a crossed side: the server names them comma-separated when
 * several venues quote the same best price ("kraken,coinbase").
 */
export function venueNames(text: string): string[] {
	return text
		.split(',')
		.map((v) => v.trim())
		.filter((v) => v !== '');
}

/** One venue's part of a level's size bar: fractions (0–1) of the bar's full width. */
export interface Segment {
	venue: string;
	/** Exact decimal text. */
	size: string;
	/** Where it starts, measured from the price column outwards. */
	start: number;
	width: number;
}

export interface VenueRow {
	side: BookSide;
	/** `side + priceText`: unique across both sides (a crossed book has a price on both). */
	key: string;
	price: bigint;
	priceText: string;
	/** Exact decimal text of the level's total. */
	size: string;
	segments: Segment[];
	best: boolean;
	/** On the best level: the venues the server names for it (`best_bid.venue`), else empty. */
	bestVenues: string[];
	/** "kraken 2 · coinbase 0.5" */
	breakdown: string;
}

export interface VenueLadder {
	/** Asks from the highest shown down to the best (the order a ladder is read in). */
	asks: VenueRow[];
	/** Bids from the best down. */
	bids: VenueRow[];
	/** The largest size shown, as a double (bar scale only). */
	maxSize: number;
}

/**
 * Splits a level's size bar into one segment per venue, in `order` (the legend's), each as wide
 * as that venue's size relative to `maxSize`. Venues not in `order` follow in the level's own
 * order; zero sizes take no room. Sizes become doubles here and only here: for widths.
 */
export function stackSegments(level: CryptoLevel, order: readonly string[], maxSize: number): Segment[] {
	const rank = (v: string) => {
		const i = order.indexOf(v);
		return i < 0 ? order.length : i;
	};
	const parts = level.venues
		.map(([venue, size], i) => ({ venue, size, i }))
		.sort((a, b) => rank(a.venue) - rank(b.venue) || a.i - b.i);
	const out: Segment[] = [];
	let start = 0;
	for (const p of parts) {
		const n = decimalToNumber(p.size);
		const width = maxSize > 0 && n > 0 ? n / maxSize : 0;
		if (width <= 0) continue;
		out.push({ venue: p.venue, size: p.size, start, width });
		start += width;
	}
	return out;
}

/**
 * Ladder rows of a crypto book, `depth` levels per side, every level kept as the server sent it
 * (a crossed book stays crossed). Bars are scaled to the largest level shown on either side.
 */
export function buildVenueLadder(book: CryptoBook, depth: number, order: readonly string[]): VenueLadder {
	const n = Math.max(depth, 0);
	const b = book.bids.slice(0, n);
	const a = book.asks.slice(0, n);
	let maxSize = 0;
	for (const l of b) maxSize = Math.max(maxSize, decimalToNumber(l.size) || 0);
	for (const l of a) maxSize = Math.max(maxSize, decimalToNumber(l.size) || 0);
	const row = (side: BookSide, l: CryptoLevel, i: number): VenueRow => {
		const bestOf = side === 'B' ? book.bestBid : book.bestAsk;
		return {
			side,
			key: side + l.priceText,
			price: l.price,
			priceText: l.priceText,
			size: l.size,
			segments: stackSegments(l, order, maxSize),
			best: i === 0,
			bestVenues: i === 0 && bestOf && bestOf.price === l.price ? venueNames(bestOf.venue) : [],
			breakdown: l.venues.map(([v, s]) => `${v} ${s}`).join(' · ')
		};
	};
	return {
		asks: a.map((l, i) => row('A', l, i)).reverse(),
		bids: b.map((l, i) => row('B', l, i)),
		maxSize
	};
}

export type Tone = 'good' | 'warn' | 'bad';

export interface Badge {
	label: string;
	tone: Tone;
	/** Only a trusted book is drawn as good data; the others are greyed. */
	trusted: boolean;
	title: string;
}

/**
 * A book's badge. Only `live` and not `stale` is trusted; `syncing` (waiting for a snapshot
 * after a gap or reconnect) and `stale` (no update within the venue's deadline) are greyed, and
 * so is any state this dashboard does not know.
 */
export function bookBadge(state: CryptoBookState, stale: boolean): Badge {
	if (state === 'live' && !stale) return { label: 'live', tone: 'good', trusted: true, title: 'in sync with the venue' };
	if (state === 'syncing')
		return { label: 'syncing', tone: 'warn', trusted: false, title: 'resynchronising (gap, checksum or reconnect): levels are not current' };
	if (state === 'stale' || stale)
		return { label: 'stale', tone: 'bad', trusted: false, title: 'no update from the venue within its deadline: levels may be old' };
	return { label: state, tone: 'bad', trusted: false, title: `unknown state ${state}: not shown as good` };
}

/** A venue connection's badge. */
export function connBadge(state: VenueConnState): { label: string; tone: Tone } {
	switch (state) {
		case 'live':
			return { label: 'live', tone: 'good' };
		case 'connecting':
		case 'subscribing':
			return { label: state, tone: 'warn' };
		case 'backoff':
			return { label: 'backoff', tone: 'bad' };
		case 'stopped':
			return { label: 'stopped', tone: 'bad' };
		default:
			return { label: state, tone: 'bad' };
	}
}

/** "crossed: kraken bid ≥ coinbase ask" (or without venues on a single book). */
export function crossedLabel(book: CryptoBook): string | null {
	if (!book.crossed) return null;
	const c = book.crossedVenues;
	const names = (t: string) => venueNames(t).join(' + ');
	return c ? `crossed: ${names(c.bidVenue)} bid ≥ ${names(c.askVenue)} ask` : 'crossed';
}

/** A latency in ns: "850 ns", "12.4 µs", "1.25 ms", "3.20 s"; "—" before any sample. */
export function formatLatencyNs(ns: number | null): string {
	if (ns === null || !Number.isFinite(ns)) return '—';
	const abs = Math.abs(ns);
	const sign = ns < 0 ? '-' : '';
	if (abs < 1_000) return `${sign}${abs} ns`;
	if (abs < 1_000_000) return `${sign}${(abs / 1_000).toPrecision(3)} µs`;
	if (abs < 1_000_000_000) return `${sign}${(abs / 1_000_000).toPrecision(3)} ms`;
	return `${sign}${(abs / 1_000_000_000).toFixed(2)} s`;
}

/** Messages per second: "0", "3.5", "212". */
export function formatRate(perS: number): string {
	if (!Number.isFinite(perS) || perS <= 0) return '0';
	return perS < 10 ? perS.toFixed(1) : String(Math.round(perS));
}

/** How long ago a gap was, on the server's clock ("850 ms", "4 min 05 s"). */
export function gapAge(serverTs: bigint, atNs: bigint): string {
	return formatAgeNs(serverTs > atNs ? serverTs - atNs : 0n);
}
