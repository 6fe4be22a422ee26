import { describe, expect, it } from 'vitest';
import { latencyMs, percentile, SampleRing } from './perf';

describe('percentile', () => {
	it('uses nearest rank', () => {
		const s = Array.from({ length: 100 }, (_, i) => i + 1);
		expect(percentile(s, 95)).toBe(95);
		expect(percentile(s, 50)).toBe(50);
		expect(percentile(s, 100)).toBe(100);
		expect(percentile(s, 0)).toBe(1);
		expect(percentile([7], 95)).toBe(7);
		expect(percentile([], 95)).toBeNaN();
	});
	it('sorts numerically, not as text', () => {
		expect(percentile([10, 9, 100, 2], 50)).toBe(9);
	});
});

describe('SampleRing', () => {
	it('keeps the last `capacity` samples', () => {
		const r = new SampleRing(3);
		expect(r.values()).toHaveLength(0);
		[1, 2, 3, 4].forEach((v) => r.push(v));
		expect(r.length).toBe(3);
		expect(Array.from(r.values()).sort()).toEqual([2, 3, 4]);
		r.clear();
		expect(r.length).toBe(0);
	});
});

describe('latencyMs', () => {
	it('subtracts ns timestamps without losing precision', () => {
		expect(latencyMs(1_758_742_200_005.5, 1_758_742_200_001_250_000n)).toBeCloseTo(4.25, 6);
		expect(latencyMs(1_000, 2_000_000_000n)).toBe(-1000);
	});
});
