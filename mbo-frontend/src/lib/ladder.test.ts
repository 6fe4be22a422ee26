import { describe, expect, it } from 'vitest';
import { buildLadder, cumulative, holdFlashes, levelFlash, sizeMap, type FlashMemory } from './ladder';
import { formatPrice } from './price';
import type { Level } from './types';

const lv = (price: bigint, size: number, orders = 1): Level => ({
	price,
	priceText: formatPrice(price),
	size,
	orders
});

describe('buildLadder', () => {
	it('handles an empty book', () => {
		const l = buildLadder([], [], 10, null, null);
		expect(l.asks).toEqual([]);
		expect(l.bids).toEqual([]);
		expect(l.maxSize).toBe(0);
	});

	it('orders asks highest first, bids best first, marks the best and scales bars', () => {
		const bids = [lv(64_670_000_000n, 5), lv(64_660_000_000n, 10)];
		const asks = [lv(64_680_000_000n, 2), lv(64_690_000_000n, 4)];
		const l = buildLadder(bids, asks, 10, null, null);
		expect(l.asks.map((r) => r.priceText)).toEqual(['64.69', '64.68']);
		expect(l.asks.map((r) => r.best)).toEqual([false, true]);
		expect(l.bids.map((r) => r.priceText)).toEqual(['64.67', '64.66']);
		expect(l.bids[0]?.best).toBe(true);
		expect(l.bids[1]?.bar).toBe(1);
		expect(l.asks[1]?.bar).toBe(0.2);
		expect(l.bids.every((r) => r.flash === null)).toBe(true);
	});

	it('keeps both sides of a crossed book, with distinct keys at a shared price', () => {
		const bids = [lv(64_700_000_000n, 1)];
		const asks = [lv(64_700_000_000n, 1), lv(64_710_000_000n, 1)];
		const l = buildLadder(bids, asks, 10, null, null);
		expect(l.bids[0]?.key).toBe('B64.7');
		expect(l.asks[1]?.key).toBe('A64.7');
		expect(l.bids[0]?.best && l.asks[1]?.best).toBe(true);
	});

	it('truncates to depth', () => {
		const bids = [1n, 2n, 3n].map((p) => lv(p, 1));
		expect(buildLadder(bids, [], 2, null, null).bids).toHaveLength(2);
		expect(buildLadder(bids, [], 0, null, null).bids).toHaveLength(0);
	});

	it('handles huge sizes without overflow in the bars', () => {
		const bids = [lv(1n, 2 ** 64), lv(2n, 1)];
		const l = buildLadder(bids, [], 10, null, null);
		expect(l.bids[0]?.bar).toBe(1);
		expect(l.bids[1]?.bar).toBeGreaterThan(0);
		expect(l.bids[1]?.bar).toBeLessThan(1e-18);
	});
});

describe('diffs', () => {
	it('flags growth, shrinkage, new levels and no change', () => {
		const prev = sizeMap([lv(64_670_000_000n, 5), lv(64_660_000_000n, 10), lv(64_650_000_000n, 1)]);
		const next = [lv(64_670_000_000n, 7), lv(64_660_000_000n, 3), lv(64_640_000_000n, 1), lv(64_650_000_000n, 1)];
		expect(next.map((l) => levelFlash(prev, l))).toEqual(['up', 'down', 'new', null]);
		const l = buildLadder(next, [], 10, prev, null);
		expect(l.bids.map((r) => r.flash)).toEqual(['up', 'down', 'new', null]);
	});

	it('tells apart prices that a double cannot (9 decimals above 2^53 units)', () => {
		const a = lv(9_007_199_254_740_993n, 1);
		const b = lv(9_007_199_254_740_992n, 1);
		expect(a.priceText).not.toBe(b.priceText);
		expect(levelFlash(sizeMap([b]), a)).toBe('new');
	});
});

describe('cumulative', () => {
	it('accumulates outwards from the best', () => {
		expect(cumulative([lv(3n, 1), lv(2n, 2), lv(1n, 3)]).map((c) => c.cum)).toEqual([1, 3, 6]);
		expect(cumulative([])).toEqual([]);
	});
});

describe('holdFlashes', () => {
	const bids = [lv(64_670_000_000n, 5), lv(64_660_000_000n, 10)];

	it('holds a flash for holdMs after the change, then clears it', () => {
		const mem: FlashMemory = new Map();
		const changed = buildLadder([lv(64_670_000_000n, 7), bids[1]!], [], 10, sizeMap(bids), null);
		const a = holdFlashes(changed, mem, 1000, 400);
		expect(a.ladder.bids.map((r) => r.flash)).toEqual(['up', null]);
		expect(a.nextExpiry).toBe(1400);
		// A later rebuild without changes keeps the flash until it expires...
		const same = buildLadder([lv(64_670_000_000n, 7), bids[1]!], [], 10, sizeMap([lv(64_670_000_000n, 7), bids[1]!]), null);
		expect(holdFlashes(same, mem, 1200, 400).ladder.bids[0]?.flash).toBe('up');
		// ...and clears it after.
		const c = holdFlashes(same, mem, 1400, 400);
		expect(c.ladder.bids[0]?.flash).toBeNull();
		expect(c.nextExpiry).toBe(Infinity);
		expect(mem.size).toBe(0);
	});

	it('restarts the hold on a new change and forgets levels no longer shown', () => {
		const mem: FlashMemory = new Map();
		holdFlashes(buildLadder(bids, [], 10, sizeMap([lv(64_670_000_000n, 1)]), null), mem, 0, 400);
		expect(mem.has('B64.66')).toBe(true);
		const down = buildLadder([lv(64_670_000_000n, 2)], [], 10, sizeMap(bids), null);
		const r = holdFlashes(down, mem, 300, 400);
		expect(r.ladder.bids[0]?.flash).toBe('down');
		expect(r.nextExpiry).toBe(700);
		expect(mem.has('B64.66')).toBe(false);
	});

	it('leaves an empty ladder alone', () => {
		const mem: FlashMemory = new Map();
		const r = holdFlashes(buildLadder([], [], 10, null, null), mem, 0, 400);
		expect(r.ladder.bids).toEqual([]);
		expect(r.nextExpiry).toBe(Infinity);
	});
});
