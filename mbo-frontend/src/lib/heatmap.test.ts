import { describe, expect, it } from 'vitest';
import { bucketLevels, ColumnRing, followWindow, heatColour, inferTick, mergeTrades, priceToRow, tradeRadius } from './heatmap';

describe('bucketing', () => {
	const w = { top: 65, bottom: 64 };

	it('puts prices in rows top-down and drops what is outside', () => {
		const rows = bucketLevels(
			[
				{ price: 64.95, size: 3 },
				{ price: 64.05, size: 4 },
				{ price: 66, size: 100 },
				{ price: 63, size: 100 }
			],
			w,
			10
		);
		expect(rows[0]).toBe(3);
		expect(rows[9]).toBe(4);
		expect(rows.reduce((a, b) => a + b, 0)).toBe(7);
	});

	it('sums levels that share a row, and handles an empty book and no rows', () => {
		const rows = bucketLevels(
			[
				{ price: 64.51, size: 1 },
				{ price: 64.52, size: 2 }
			],
			w,
			2
		);
		expect(Array.from(rows)).toEqual([3, 0]);
		expect(Array.from(bucketLevels([], w, 3))).toEqual([0, 0, 0]);
		expect(bucketLevels([{ price: 64.5, size: 1 }], w, 0)).toHaveLength(0);
	});

	it('keeps huge sizes', () => {
		const rows = bucketLevels([{ price: 64.5, size: 2 ** 63 }], w, 1);
		expect(rows[0]).toBe(2 ** 63);
	});

	it('maps prices to fractional rows', () => {
		expect(priceToRow(65, w, 100)).toBe(0);
		expect(priceToRow(64, w, 100)).toBe(100);
		expect(priceToRow(64.5, { top: 1, bottom: 1 }, 100)).toBe(0);
	});
});

describe('window', () => {
	it('centres on the mid, on the tick grid', () => {
		const w = followWindow(null, 64.675, 0.01, 40);
		expect(w.top - w.bottom).toBeCloseTo(0.4, 9);
		// Within one tick of the mid, with row edges half a tick off the price grid.
		expect(Math.abs((w.top + w.bottom) / 2 - 64.675)).toBeLessThanOrEqual(0.01);
		const steps = (w.top - 0.005) / 0.01;
		expect(Math.abs(steps - Math.round(steps))).toBeLessThan(1e-6);
	});

	it('holds still while the mid stays in the middle half, recentres after', () => {
		const w = followWindow(null, 64.675, 0.01, 40);
		expect(followWindow(w, 64.7, 0.01, 40)).toBe(w);
		const moved = followWindow(w, 64.9, 0.01, 40);
		expect(moved).not.toBe(w);
		expect((moved.top + moved.bottom) / 2).toBeCloseTo(64.9, 1);
	});
});

describe('tick', () => {
	it('is the gcd of price gaps', () => {
		expect(inferTick([64_670_000_000n, 64_680_000_000n, 64_710_000_000n], 1n)).toBe(10_000_000n);
		expect(inferTick([64_675_000_000n, 64_670_000_000n], 1n)).toBe(5_000_000n);
	});
	it('falls back with fewer than two prices or no gaps', () => {
		expect(inferTick([], 7n)).toBe(7n);
		expect(inferTick([5n, 5n], 7n)).toBe(7n);
	});
});

describe('colours and dots', () => {
	it('is black for nothing and brightest at the max', () => {
		expect(heatColour(0, 10)).toEqual([0, 0, 0]);
		expect(heatColour(5, 0)).toEqual([0, 0, 0]);
		expect(heatColour(10, 10)).toEqual([255, 255, 240]);
		const mid = heatColour(3, 10);
		expect(mid[0] + mid[1] + mid[2]).toBeGreaterThan(0);
		expect(heatColour(1e30, 10)).toEqual([255, 255, 240]);
	});
	it('sizes dots by volume, clamped', () => {
		expect(tradeRadius(0)).toBe(2);
		expect(tradeRadius(4)).toBe(4);
		expect(tradeRadius(1e9)).toBe(12);
	});
});

describe('ColumnRing', () => {
	it('drops the oldest beyond capacity', () => {
		const r = new ColumnRing(2);
		for (let i = 0; i < 3; i++) r.push({ levels: [], bestBid: i, bestAsk: null, trades: [] });
		expect(r.length).toBe(2);
		expect(r.all().map((c) => c.bestBid)).toEqual([1, 2]);
		r.clear();
		expect(r.length).toBe(0);
	});
});

describe('mergeTrades', () => {
	it('sums sizes per side and price, keeping sides apart', () => {
		const merged = mergeTrades([
			{ price: 64.67, size: 1, side: 'B' },
			{ price: 64.67, size: 2, side: 'B' },
			{ price: 64.67, size: 5, side: 'A' },
			{ price: 64.68, size: 1, side: 'B' }
		]);
		expect(merged).toEqual([
			{ price: 64.67, size: 3, side: 'B' },
			{ price: 64.67, size: 5, side: 'A' },
			{ price: 64.68, size: 1, side: 'B' }
		]);
		expect(mergeTrades([])).toEqual([]);
	});

	it('does not modify its input', () => {
		const input = [
			{ price: 1, size: 1, side: 'B' as const },
			{ price: 1, size: 1, side: 'B' as const }
		];
		mergeTrades(input);
		expect(input[0]?.size).toBe(1);
	});
});
