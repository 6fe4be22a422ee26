/**
 * The depth ladder's rows and what changed between two books.
 *
 * Levels are keyed by their exact price text, so a diff never confuses two prices that a
 * double would round together.
 */
import type { BookSide, Level } from './types';

export type Flash = 'up' | 'down' | 'new' | null;

export interface LadderRow {
	side: BookSide;
	/** `side + priceText`: unique across both sides (a crossed book has a price on both). */
	key: string;
	price: bigint;
	priceText: string;
	size: number;
	orders: number;
	/** Size relative to the largest level shown, 0–1 (for the size bar). */
	bar: number;
	best: boolean;
	flash: Flash;
}

/** Sizes by price text, the state a diff compares against. */
export type SizeMap = Map<string, number>;

export function sizeMap(levels: readonly Level[]): SizeMap {
	const m: SizeMap = new Map();
	for (const l of levels) m.set(l.priceText, l.size);
	return m;
}

/** How a level changed against the previous sizes: grew, shrank, appeared, or not at all. */
export function levelFlash(prev: SizeMap | null, level: Level): Flash {
	if (prev === null) return null;
	const before = prev.get(level.priceText);
	if (before === undefined) return 'new';
	if (level.size > before) return 'up';
	if (level.size < before) return 'down';
	return null;
}

export interface Ladder {
	/** Asks from the highest shown down to the best (the order a ladder is read in). */
	asks: LadderRow[];
	/** Bids from the best down. */
	bids: LadderRow[];
	maxSize: number;
}

/**
 * Rows for `depth` levels per side, with bars scaled to the largest size shown on either
 * side and flashes against the previous book's sizes (`null` on a fresh snapshot: nothing
 * flashes when the whole book is replaced).
 */
export function buildLadder(
	bids: readonly Level[],
	asks: readonly Level[],
	depth: number,
	prevBids: SizeMap | null,
	prevAsks: SizeMap | null
): Ladder {
	const b = bids.slice(0, Math.max(depth, 0));
	const a = asks.slice(0, Math.max(depth, 0));
	let maxSize = 0;
	for (const l of b) if (l.size > maxSize) maxSize = l.size;
	for (const l of a) if (l.size > maxSize) maxSize = l.size;
	const row = (side: BookSide, l: Level, i: number, prev: SizeMap | null): LadderRow => ({
		side,
		key: side + l.priceText,
		price: l.price,
		priceText: l.priceText,
		size: l.size,
		orders: l.orders,
		bar: maxSize > 0 ? l.size / maxSize : 0,
		best: i === 0,
		flash: levelFlash(prev, l)
	});
	return {
		asks: a.map((l, i) => row('A', l, i, prevAsks)).reverse(),
		bids: b.map((l, i) => row('B', l, i, prevBids)),
		maxSize
	};
}

/** Cumulative size from the best level outwards (the depth chart's steps). */
export function cumulative(levels: readonly Level[]): { price: bigint; cum: number }[] {
	let cum = 0;
	return levels.map((l) => {
		cum += l.size;
		return { price: l.price, cum };
	});
}

/** When each recently changed level changed (by row key), so a flash can last a set time. */
export type FlashMemory = Map<string, { flash: Exclude<Flash, null>; at: number }>;

/**
 * The ladder with each row's flash held for `holdMs` after its change (at `now`, ms):
 * `mem` records the changes of `l` and forgets the expired ones. Flashes are a state of the
 * row, not a CSS animation: a running animation makes the browser composite the page every
 * frame, while this repaints only when the ladder is rebuilt (at most 20 times a second, plus
 * once when the last flash ends). Returns the ladder and when the next flash ends (Infinity: none).
 */
export function holdFlashes(l: Ladder, mem: FlashMemory, now: number, holdMs: number): { ladder: Ladder; nextExpiry: number } {
	let nextExpiry = Infinity;
	const apply = (r: LadderRow): LadderRow => {
		if (r.flash !== null) mem.set(r.key, { flash: r.flash, at: now });
		const m = mem.get(r.key);
		if (!m) return r;
		const end = m.at + holdMs;
		if (end <= now) {
			mem.delete(r.key);
			return r.flash === null ? r : { ...r, flash: null };
		}
		if (end < nextExpiry) nextExpiry = end;
		return r.flash === m.flash ? r : { ...r, flash: m.flash };
	};
	const ladder = { asks: l.asks.map(apply), bids: l.bids.map(apply), maxSize: l.maxSize };
	// Levels no longer shown are forgotten.
	const shown = new Set([...ladder.asks, ...ladder.bids].map((r) => r.key));
	for (const k of mem.keys()) if (!shown.has(k)) mem.delete(k);
	return { ladder, nextExpiry };
}
