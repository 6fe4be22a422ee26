/**
 * Prices are i64 in 1e-9 units. They are kept as `bigint` so that formatting is exact for any
 * value (a price above 2^53 units, ~9.0e6 in decimal, would otherwise lose digits), and
 * converted to `number` only to place things on screen, where rounding does not matter.
 */

export const PRICE_SCALE = 1_000_000_000n;

/**
 * Exact decimal text of a 1e-9 price: trailing zeros trimmed, but at least `minDecimals`
 * decimals (so a column of prices lines up: 64.7 -> "64.70" with minDecimals 2).
 */
export function formatPrice(units: bigint, minDecimals = 0): string {
	const neg = units < 0n;
	const abs = neg ? -units : units;
	const int = abs / PRICE_SCALE;
	let frac = (abs % PRICE_SCALE).toString().padStart(9, '0').replace(/0+$/, '');
	const want = Math.min(Math.max(minDecimals, 0), 9);
	if (frac.length < want) frac = frac.padEnd(want, '0');
	return (neg ? '-' : '') + int.toString() + (frac.length > 0 ? '.' + frac : '');
}

/** Decimals needed to show every price in `prices` exactly (0–9). */
export function decimalsNeeded(prices: readonly bigint[]): number {
	let d = 0;
	for (const p of prices) {
		const abs = p < 0n ? -p : p;
		const frac = (abs % PRICE_SCALE).toString().padStart(9, '0').replace(/0+$/, '');
		if (frac.length > d) d = frac.length;
	}
	return d;
}

/** The price as a double, for drawing only. */
export function priceToNumber(units: bigint): number {
	// Split so that the integer part converts exactly before the fraction is added.
	const int = units / PRICE_SCALE;
	const frac = units % PRICE_SCALE;
	return Number(int) + Number(frac) / 1e9;
}

/** Parses "64.67", "-0.000000001" or an integer of 1e-9 units ("64670000000") exactly. */
export function parsePrice(text: string): bigint | null {
	const t = text.trim();
	if (/^-?\d+$/.test(t)) return BigInt(t);
	const m = /^(-?)(\d*)\.(\d{1,9})$/.exec(t);
	if (!m) return null;
	const [, sign, int, frac] = m;
	const units = BigInt(int === '' || int === undefined ? '0' : int) * PRICE_SCALE + BigInt((frac ?? '').padEnd(9, '0'));
	return sign === '-' ? -units : units;
}

const sizeFormat = new Intl.NumberFormat('en-US');

/** A size with thousands separators ("1,234,567"). */
export function formatSize(size: number | bigint): string {
	return sizeFormat.format(size);
}

/** A compact size for tight columns: 999, 1.2k, 34k, 1.5M. */
export function formatSizeShort(size: number): string {
	const abs = Math.abs(size);
	if (abs < 1000) return String(size);
	if (abs < 10_000) return (size / 1000).toFixed(1) + 'k';
	if (abs < 1_000_000) return Math.round(size / 1000) + 'k';
	if (abs < 10_000_000) return (size / 1_000_000).toFixed(1) + 'M';
	return Math.round(size / 1_000_000) + 'M';
}

/** Unix ns -> "HH:MM:SS.mmm" in UTC (exchange data is read in UTC). */
export function formatTimeNs(ns: bigint, withMillis = true): string {
	const ms = Number(ns / 1_000_000n);
	const iso = new Date(ms).toISOString();
	return withMillis ? iso.slice(11, 23) : iso.slice(11, 19);
}

/** Unix ns -> "2025-09-24 19:30:00" (UTC). */
export function formatDateTimeNs(ns: bigint): string {
	const iso = new Date(Number(ns / 1_000_000n)).toISOString();
	return iso.slice(0, 10) + ' ' + iso.slice(11, 19);
}

/** A duration in ns as "850 ms", "12.3 s", "4 min 05 s", "2 h 01 min". */
export function formatAgeNs(ns: bigint): string {
	const neg = ns < 0n;
	const abs = neg ? -ns : ns;
	const ms = Number(abs / 1_000_000n);
	let s: string;
	if (ms < 1000) s = `${ms} ms`;
	else if (ms < 60_000) s = `${(ms / 1000).toFixed(1)} s`;
	else if (ms < 3_600_000) {
		const m = Math.floor(ms / 60_000);
		s = `${m} min ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')} s`;
	} else {
		const h = Math.floor(ms / 3_600_000);
		s = `${h} h ${String(Math.floor((ms % 3_600_000) / 60_000)).padStart(2, '0')} min`;
	}
	return neg ? '-' + s : s;
}
