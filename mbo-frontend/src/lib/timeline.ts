/** Playback maths: timeline position <-> source time, speeds, the `?t=` parameter. */

/** Speeds offered, slowest first; `max` is as fast as the server can go. */
export const SPEEDS: readonly (number | 'max')[] = [0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 'max'];

export type Speed = number | 'max';

/** Fraction 0–1 of `ts` between `start` and `end` (clamped; 0 for an empty range). */
export function tsToFraction(start: bigint, end: bigint, ts: bigint): number {
	if (end <= start) return 0;
	if (ts <= start) return 0;
	if (ts >= end) return 1;
	// Scale in bigint first (1e6 steps) so ns ranges keep their precision.
	return Number(((ts - start) * 1_000_000n) / (end - start)) / 1_000_000;
}

/** Source time at fraction `f` (clamped to 0–1) of the range. */
export function fractionToTs(start: bigint, end: bigint, f: number): bigint {
	if (end <= start) return start;
	const c = Math.min(Math.max(Number.isFinite(f) ? f : 0, 0), 1);
	return start + ((end - start) * BigInt(Math.round(c * 1_000_000))) / 1_000_000n;
}

/** The next speed up (`dir` +1) or down (-1) from `current`; the nearest listed speed first. */
export function stepSpeed(current: Speed | null, dir: 1 | -1): Speed {
	const list = SPEEDS;
	let i: number;
	if (current === null) i = list.indexOf(1);
	else if (current === 'max') i = list.length - 1;
	else {
		// The listed speed closest to `current` (the server may run at an unlisted one).
		i = 0;
		let best = Infinity;
		list.forEach((s, j) => {
			if (s !== 'max' && Math.abs(Math.log(s / current)) < best) {
				best = Math.abs(Math.log(s / current));
				i = j;
			}
		});
	}
	const j = Math.min(Math.max(i + dir, 0), list.length - 1);
	return list[j] ?? 1;
}

export function speedLabel(s: Speed | null): string {
	if (s === null) return '—';
	return s === 'max' ? 'max' : `${s}×`;
}

/**
 * The `t` URL parameter: Unix ns ("1758742200001385399") or an ISO 8601 / RFC 3339 time
 * ("2025-09-24T19:30:00.001385399Z", fraction to the ns). Null when neither.
 */
export function parseTimeParam(t: string | null): bigint | null {
	if (t === null) return null;
	const s = t.trim();
	if (/^\d+$/.test(s)) return BigInt(s);
	const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(s);
	if (!m) return null;
	const whole = Date.parse((m[1] ?? '') + (m[3] ?? 'Z'));
	if (Number.isNaN(whole)) return null;
	return BigInt(whole) * 1_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
}

/** The search string for a shared moment: `?symbol=CLX5&t=<ns>`, other parameters kept. */
export function shareSearch(current: string, symbol: string | null, t: bigint | null): string {
	const p = new URLSearchParams(current);
	if (symbol === null) p.delete('symbol');
	else p.set('symbol', symbol);
	if (t === null) p.delete('t');
	else p.set('t', t.toString());
	const s = p.toString();
	return s === '' ? '' : '?' + s;
}

/** Seconds of source time a ←/→ press moves (shift: a minute). */
export function seekStepNs(shift: boolean): bigint {
	return shift ? 60_000_000_000n : 10_000_000_000n;
}
