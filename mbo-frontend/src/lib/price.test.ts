import { describe, expect, it } from 'vitest';
import {
	decimalsNeeded,
	formatAgeNs,
	formatPrice,
	formatSize,
	formatSizeShort,
	formatTimeNs,
	parsePrice,
	priceToNumber
} from './price';

describe('formatPrice', () => {
	it('formats typical futures prices', () => {
		expect(formatPrice(64_670_000_000n)).toBe('64.67');
		expect(formatPrice(64_700_000_000n, 2)).toBe('64.70');
		expect(formatPrice(64_000_000_000n)).toBe('64');
	});

	it('keeps all nine decimals exactly', () => {
		expect(formatPrice(64_123_456_789n)).toBe('64.123456789');
		expect(formatPrice(1n)).toBe('0.000000001');
		expect(formatPrice(-1n)).toBe('-0.000000001');
		expect(formatPrice(0n, 2)).toBe('0.00');
	});

	it('is exact beyond 2^53 and at the i64 limits', () => {
		expect(formatPrice(9_223_372_036_854_775_807n)).toBe('9223372036.854775807');
		expect(formatPrice(-9_223_372_036_854_775_808n)).toBe('-9223372036.854775808');
		// 2^53 + 1 units: a double cannot hold it.
		expect(formatPrice(9_007_199_254_740_993n)).toBe('9007199.254740993');
	});

	it('pads to at most nine decimals', () => {
		expect(formatPrice(5_000_000_000n, 12)).toBe('5.000000000');
	});
});

describe('decimalsNeeded', () => {
	it('is the longest fraction, 0 for an empty list', () => {
		expect(decimalsNeeded([])).toBe(0);
		expect(decimalsNeeded([64_670_000_000n, 64_675_000_000n])).toBe(3);
		expect(decimalsNeeded([1n])).toBe(9);
		expect(decimalsNeeded([-64_600_000_000n])).toBe(1);
	});
});

describe('parsePrice', () => {
	it('parses decimals and raw units', () => {
		expect(parsePrice('64.67')).toBe(64_670_000_000n);
		expect(parsePrice('-0.000000001')).toBe(-1n);
		expect(parsePrice('.5')).toBe(500_000_000n);
		expect(parsePrice('64670000000')).toBe(64_670_000_000n);
		expect(parsePrice('9223372036854775807')).toBe(9_223_372_036_854_775_807n);
	});

	it('rejects garbage and more than nine decimals', () => {
		expect(parsePrice('abc')).toBeNull();
		expect(parsePrice('1.0000000001')).toBeNull();
		expect(parsePrice('')).toBeNull();
	});

	it('round-trips with formatPrice', () => {
		for (const p of [0n, 1n, -5n, 64_123_456_789n, 9_007_199_254_740_993n]) {
			expect(parsePrice(formatPrice(p))).toBe(p);
		}
	});
});

describe('numbers for drawing', () => {
	it('converts close enough', () => {
		expect(priceToNumber(64_670_000_000n)).toBeCloseTo(64.67, 9);
		expect(priceToNumber(-1_500_000_000n)).toBeCloseTo(-1.5, 9);
	});
});

describe('sizes and times', () => {
	it('formats huge sizes', () => {
		expect(formatSize(18_446_744_073_709_551_615n)).toBe('18,446,744,073,709,551,615');
		expect(formatSize(1234567)).toBe('1,234,567');
		expect(formatSizeShort(999)).toBe('999');
		expect(formatSizeShort(1234)).toBe('1.2k');
		expect(formatSizeShort(34_000)).toBe('34k');
		expect(formatSizeShort(1_500_000)).toBe('1.5M');
		expect(formatSizeShort(4_294_967_295)).toBe('4295M');
	});

	it('formats ns timestamps in UTC', () => {
		expect(formatTimeNs(1_758_742_200_001_385_399n)).toBe('19:30:00.001');
		expect(formatTimeNs(1_758_742_200_001_385_399n, false)).toBe('19:30:00');
	});

	it('formats ages', () => {
		expect(formatAgeNs(850_000_000n)).toBe('850 ms');
		expect(formatAgeNs(12_340_000_000n)).toBe('12.3 s');
		expect(formatAgeNs(245_000_000_000n)).toBe('4 min 05 s');
		expect(formatAgeNs(7_260_000_000_000n)).toBe('2 h 01 min');
		expect(formatAgeNs(-2_000_000_000n)).toBe('-2.0 s');
	});
});
