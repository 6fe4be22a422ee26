/** Frame-time and latency statistics over a sliding window of samples. */

/** The p-th percentile (0–100) of `samples`, nearest-rank; NaN for none. */
export function percentile(samples: ArrayLike<number>, p: number): number {
	const n = samples.length;
	if (n === 0) return NaN;
	const sorted = Float64Array.from(samples).sort();
	const rank = Math.ceil((Math.min(Math.max(p, 0), 100) / 100) * n);
	return sorted[Math.min(Math.max(rank - 1, 0), n - 1)] ?? NaN;
}

/** A fixed-size ring of numbers (no allocation per sample). */
export class SampleRing {
	private buf: Float64Array;
	private next = 0;
	private count = 0;
	constructor(capacity: number) {
		this.buf = new Float64Array(Math.max(capacity, 1));
	}
	push(v: number): void {
		this.buf[this.next] = v;
		this.next = (this.next + 1) % this.buf.length;
		if (this.count < this.buf.length) this.count++;
	}
	get length(): number {
		return this.count;
	}
	values(): Float64Array {
		return this.count < this.buf.length ? this.buf.slice(0, this.count) : this.buf.slice();
	}
	clear(): void {
		this.next = 0;
		this.count = 0;
	}
}

/** Latency of a server event in ms: now (Unix ms, with sub-ms fraction) minus `server_ts` (ns). */
export function latencyMs(nowUnixMs: number, serverTsNs: bigint): number {
	// Subtract in integer ms first: a double cannot hold ns since 1970 exactly.
	const serverMs = serverTsNs / 1_000_000n;
	const frac = Number(serverTsNs % 1_000_000n) / 1e6;
	return nowUnixMs - Number(serverMs) - frac;
}
