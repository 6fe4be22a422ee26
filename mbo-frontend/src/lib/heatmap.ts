/**
 * Liquidity heatmap maths: which screen row a price falls in, how resting size is summed into
 * rows, the price window that follows the market, and the colour scale.
 *
 * The heatmap is a strip of columns, one per sampled book (at most one every `COLUMN_MS`).
 * Each column keeps its levels as plain numbers so the canvas can be redrawn when the window
 * moves; a column is drawn once and then scrolled (see Heatmap.svelte).
 */

export interface HeatLevel {
	/** Price as a double (drawing only). */
	price: number;
	size: number;
}

export interface HeatTrade {
	price: number;
	size: number;
	side: 'B' | 'A' | 'N';
}

export interface HeatColumn {
	levels: HeatLevel[];
	bestBid: number | null;
	bestAsk: number | null;
	trades: HeatTrade[];
}

/** The price range shown: `top` at row 0, `bottom` at the last row. */
export interface PriceWindow {
	top: number;
	bottom: number;
}

/** Fractional row (0 = top) of `price` in a window drawn over `rows` rows. */
export function priceToRow(price: number, w: PriceWindow, rows: number): number {
	const span = w.top - w.bottom;
	if (span <= 0 || rows <= 0) return 0;
	return ((w.top - price) / span) * rows;
}

/**
 * Resting size summed into `rows` rows (row 0 = top = highest price). Levels outside the
 * window are dropped; several levels in one row add up.
 */
export function bucketLevels(levels: readonly HeatLevel[], w: PriceWindow, rows: number): Float64Array {
	const out = new Float64Array(Math.max(rows, 0));
	if (rows <= 0) return out;
	for (const l of levels) {
		const r = Math.floor(priceToRow(l.price, w, rows));
		if (r >= 0 && r < rows) out[r] = (out[r] ?? 0) + l.size;
	}
	return out;
}

/**
 * A window of `ticks` price ticks centred on `mid`, kept as is while the mid stays in its
 * middle half (so the picture does not jump on every tick), recentred otherwise.
 */
export function followWindow(current: PriceWindow | null, mid: number, tick: number, ticks: number): PriceWindow {
	const span = tick * ticks;
	if (current !== null && Math.abs(current.top - current.bottom - span) < tick / 2) {
		const quarter = span / 4;
		if (mid <= current.top - quarter && mid >= current.bottom + quarter) return current;
	}
	// Align to the tick grid so rows fall on prices.
	const top = Math.round((mid + span / 2) / tick) * tick + tick / 2;
	return { top, bottom: top - span };
}

/** Greatest common divisor of the gaps between prices: the instrument's tick (1e-9 units). */
export function inferTick(prices: readonly bigint[], fallback: bigint): bigint {
	let g = 0n;
	for (let i = 1; i < prices.length; i++) {
		const a = prices[i - 1] ?? 0n;
		const b = prices[i] ?? 0n;
		let d = a > b ? a - b : b - a;
		let x = g;
		while (d !== 0n) [x, d] = [d, x % d];
		g = x;
	}
	return g > 0n ? g : fallback;
}

/**
 * Colour of a resting size, on a log scale against `max` (sizes span orders of magnitude):
 * transparent-dark for nothing, through blue and teal to yellow-white for the largest.
 * Returns packed RGB.
 */
export function heatColour(size: number, max: number): [number, number, number] {
	if (size <= 0 || max <= 0) return [0, 0, 0];
	const t = Math.min(Math.log1p(size) / Math.log1p(max), 1);
	// Three linear segments: navy -> teal -> yellow -> white.
	const stops: [number, number, number][] = [
		[10, 20, 60],
		[0, 140, 160],
		[240, 220, 60],
		[255, 255, 240]
	];
	const x = t * (stops.length - 1);
	const i = Math.min(Math.floor(x), stops.length - 2);
	const f = x - i;
	const a = stops[i] ?? [0, 0, 0];
	const b = stops[i + 1] ?? [0, 0, 0];
	return [
		Math.round(a[0] + (b[0] - a[0]) * f),
		Math.round(a[1] + (b[1] - a[1]) * f),
		Math.round(a[2] + (b[2] - a[2]) * f)
	];
}

/**
 * Trades of one column merged by (side, price), sizes summed: a busy second has hundreds of
 * prints at a handful of prices, and one dot per price and side draws the same picture for a
 * fraction of the canvas work.
 */
export function mergeTrades(trades: readonly HeatTrade[]): HeatTrade[] {
	const byKey = new Map<string, HeatTrade>();
	for (const t of trades) {
		const k = t.side + t.price;
		const m = byKey.get(k);
		if (m) m.size += t.size;
		else byKey.set(k, { price: t.price, size: t.size, side: t.side });
	}
	return [...byKey.values()];
}

/** Dot radius for a trade of `size` (area grows with volume), clamped to stay readable. */
export function tradeRadius(size: number): number {
	return Math.min(2 + Math.sqrt(Math.max(size, 0)), 12);
}

/** A fixed-capacity ring of columns, oldest dropped first. */
export class ColumnRing {
	private items: HeatColumn[] = [];
	constructor(readonly capacity: number) {}
	push(c: HeatColumn): void {
		this.items.push(c);
		if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
	}
	clear(): void {
		this.items = [];
	}
	get length(): number {
		return this.items.length;
	}
	/** Oldest first. */
	all(): readonly HeatColumn[] {
		return this.items;
	}
}
