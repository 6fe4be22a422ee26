/**
 * The venues view's state: one instance per page, provided to its components through context.
 *
 * Like the main view (market.svelte.ts): SSE messages of `/api/v1/stream/venues` are only
 * queued (the latest book per venue, every trade, the latest health), and one
 * `requestAnimationFrame` loop applies them at most once per frame. View objects are
 * `$state.raw`, replaced and never mutated.
 */
import { getContext, setContext } from 'svelte';
import { fetchVenues, venuesStreamUrl } from './api';
import { StreamClient, type ConnectionState } from './stream';
import type { CryptoBook, VenueHealth, VenuesInfo, VenueStreamMessage, VenueTrade } from './types';
import { decodeVenueStreamMessage, VENUE_EVENTS } from './venue-decode';
import { allVenues, bookBadge, buildVenueLadder, CONSOLIDATED, venueOrder, venueSlots, type Badge, type VenueLadder } from './venue-view';

/** Levels per side asked of the stream, and shown in the consolidated ladder. */
export const VENUES_DEPTH = 12;
/** Levels per side in each venue's compact ladder. */
export const VENUE_BOOK_DEPTH = 8;
/** At most one frame per book per this many ms from the server. */
export const VENUES_INTERVAL_MS = 100;
/** Trades kept for the tape. */
const TAPE_SIZE = 60;

/** How to start a server with venues (shown when it runs none). */
export const VENUES_HINT = 'mbo serve --venues kraken,coinbase --symbols BTC-USD';

export interface BookView {
	venue: string;
	book: CryptoBook;
	ladder: VenueLadder;
	badge: Badge;
}

export class VenuesState {
	/** The last health (REST at start, then the stream's once a second); null until loaded. */
	info = $state.raw<VenuesInfo | null>(null);
	symbol = $state<string | null>(null);
	connection = $state<ConnectionState>('connecting');
	consolidated = $state.raw<BookView | null>(null);
	/** One per venue with a book of the symbol, in legend order. */
	books = $state.raw<BookView[]>([]);
	tape = $state.raw<VenueTrade[]>([]);
	/** Legend order and colour slot of every venue the server runs or a book names. */
	order = $state.raw<string[]>([]);
	slots = $state.raw<ReadonlyMap<string, number>>(venueSlots([]));
	error = $state<string | null>(null);
	stats = $state.raw({ events: 0, bad: 0, lagged: 0, snapshots: 0 });

	private client: StreamClient<VenueStreamMessage> | null = null;
	// Plain Maps on purpose: bookkeeping of the frame loop, never read by a template.
	private pendingBooks = freshMap();
	private pendingTrades: VenueTrade[] = [];
	private pendingInfo: VenuesInfo | null = null;
	private pendingReset = false;
	private latest = freshMap();
	private raf = 0;
	private retry: ReturnType<typeof setTimeout> | null = null;
	private events = 0;
	private bad = 0;
	private lagged = 0;
	private snapshots = 0;

	get hasVenues(): boolean {
		return (this.info?.venues.length ?? 0) > 0;
	}

	/** Starts the frame loop, loads the venues and streams `preferred` (or the first symbol). */
	async start(preferred: string | null): Promise<void> {
		if (this.raf === 0) this.raf = requestAnimationFrame(this.frame);
		try {
			const info = await fetchVenues();
			this.info = info;
			this.updateOrder();
			this.error = null;
			if (info.venues.length === 0) return;
			const pick = preferred !== null && info.symbols.includes(preferred) ? preferred : (info.symbols[0] ?? null);
			if (preferred !== null && pick !== preferred) this.error = `unknown symbol ${preferred}: showing ${pick ?? 'nothing'}`;
			if (pick) this.select(pick);
		} catch (e) {
			this.error = `cannot reach the server: ${e instanceof Error ? e.message : String(e)}`;
			this.retry = setTimeout(() => {
				this.retry = null;
				if (this.raf !== 0) void this.start(preferred);
			}, 2000);
		}
	}

	stop(): void {
		cancelAnimationFrame(this.raf);
		this.raf = 0;
		if (this.retry !== null) clearTimeout(this.retry);
		this.retry = null;
		this.client?.stop();
		this.client = null;
	}

	/** Switches to `symbol`: a new stream, every book and the tape start afresh. */
	select(symbol: string): void {
		if (symbol === this.symbol && this.client) return;
		this.client?.stop();
		this.symbol = symbol;
		this.pendingBooks.clear();
		this.pendingTrades = [];
		this.pendingReset = true;
		this.client = new StreamClient(
			venuesStreamUrl(symbol, VENUES_DEPTH, VENUES_INTERVAL_MS),
			{
				message: (m) => this.receive(m),
				state: (s) => (this.connection = s),
				bad: () => this.bad++
			},
			{ events: VENUE_EVENTS, decode: decodeVenueStreamMessage }
		);
		this.client.start();
	}

	/** The health of `venue`, if the server runs it. */
	health(venue: string): VenueHealth | null {
		return this.info?.venues.find((h) => h.venue === venue) ?? null;
	}

	/** Queues a message (per SSE event; never touches reactive state). */
	private receive(m: VenueStreamMessage): void {
		this.events++;
		switch (m.kind) {
			case 'snapshot':
				this.snapshots++;
				if (m.book.symbol === this.symbol) this.pendingBooks.set(m.book.venue, m.book);
				break;
			case 'book':
				if (m.book.symbol === this.symbol) this.pendingBooks.set(m.book.venue, m.book);
				break;
			case 'trade':
				if (m.batch.symbol === '' || m.batch.symbol === this.symbol) for (const t of m.batch.trades) this.pendingTrades.push(t);
				break;
			case 'health':
				this.pendingInfo = m.info;
				break;
			case 'lagged':
				// Snapshots of every book follow.
				this.lagged++;
				break;
		}
	}

	private frame = (): void => {
		this.raf = requestAnimationFrame(this.frame);
		this.apply();
	};

	/** Applies what is queued, at most once per frame. */
	private apply(): void {
		const reset = this.pendingReset;
		const books = this.pendingBooks;
		const trades = this.pendingTrades;
		const info = this.pendingInfo;
		if (!reset && books.size === 0 && trades.length === 0 && !info) return;
		this.pendingReset = false;
		this.pendingInfo = null;
		this.pendingTrades = [];
		if (books.size > 0) this.pendingBooks = freshMap();
		if (reset) {
			this.latest.clear();
			this.consolidated = null;
			this.books = [];
			this.tape = [];
		}
		if (info) this.info = info;
		let venuesChanged = info !== null;
		for (const [venue, book] of books) {
			if (!this.latest.has(venue)) venuesChanged = true;
			this.latest.set(venue, book);
			if (venue === CONSOLIDATED) for (const v of book.venues) if (!this.slots.has(v)) venuesChanged = true;
		}
		if (venuesChanged) this.updateOrder();
		if (books.size > 0 || venuesChanged) this.rebuildBooks(venuesChanged ? null : books);
		if (trades.length > 0) {
			const fresh = trades.slice(-TAPE_SIZE).reverse();
			this.tape = fresh.concat(this.tape).slice(0, TAPE_SIZE);
		}
		this.stats = { events: this.events, bad: this.bad, lagged: this.lagged, snapshots: this.snapshots };
	}

	/** Legend order and colours from every venue the server runs and every venue a book names. */
	private updateOrder(): void {
		const order = venueOrder(allVenues(this.info?.venues.map((h) => h.venue) ?? [], this.latest.values()));
		if (order.join() !== this.order.join()) {
			this.order = order;
			this.slots = venueSlots(order);
		}
	}

	/** Views of the changed books (`changed` null: all of them). */
	private rebuildBooks(changed: ReadonlyMap<string, CryptoBook> | null): void {
		const view = (b: CryptoBook, depth: number): BookView => ({
			venue: b.venue,
			book: b,
			ladder: buildVenueLadder(b, depth, this.order),
			badge: bookBadge(b.state, b.stale)
		});
		const cons = this.latest.get(CONSOLIDATED);
		if (cons && (changed === null || changed.has(CONSOLIDATED))) this.consolidated = view(cons, VENUES_DEPTH);
		const next: BookView[] = [];
		for (const venue of venueOrder([...this.latest.keys()].filter((v) => v !== CONSOLIDATED))) {
			const b = this.latest.get(venue);
			if (!b) continue;
			const prev = this.books.find((x) => x.venue === venue);
			next.push(prev && changed !== null && !changed.has(venue) ? prev : view(b, VENUE_BOOK_DEPTH));
		}
		this.books = next;
	}

	/** Counters for the e2e tests (plain numbers, read through `window.__mboVenues`). */
	counters(): { events: number; bad: number; lagged: number; snapshots: number } {
		return { events: this.events, bad: this.bad, lagged: this.lagged, snapshots: this.snapshots };
	}
}

/** A new Map for the frame loop's queue (bookkeeping, never read by a template). */
function freshMap(): Map<string, CryptoBook> {
	return new Map();
}

const KEY = Symbol('venues');

export function provideVenues(v: VenuesState): VenuesState {
	return setContext(KEY, v);
}

export function useVenues(): VenuesState {
	const v = getContext<VenuesState | undefined>(KEY);
	if (!v) throw new Error('useVenues outside of the venues page');
	return v;
}
