import { describe, expect, it } from 'vitest';
import { fractionToTs, parseTimeParam, shareSearch, speedLabel, stepSpeed, tsToFraction } from './timeline';

const start = 1_758_742_200_000_000_000n;
const end = 1_758_745_800_000_000_000n;

describe('timeline', () => {
	it('maps ns to fractions and back, clamped', () => {
		expect(tsToFraction(start, end, start)).toBe(0);
		expect(tsToFraction(start, end, end)).toBe(1);
		expect(tsToFraction(start, end, start + 1_800_000_000_000n)).toBe(0.5);
		expect(tsToFraction(start, end, 0n)).toBe(0);
		expect(tsToFraction(start, start, start)).toBe(0);
		expect(fractionToTs(start, end, 0.5)).toBe(start + 1_800_000_000_000n);
		expect(fractionToTs(start, end, -1)).toBe(start);
		expect(fractionToTs(start, end, 2)).toBe(end);
		expect(fractionToTs(start, end, NaN)).toBe(start);
	});

	it('steps speeds along the list, saturating at both ends', () => {
		expect(stepSpeed(1, 1)).toBe(2);
		expect(stepSpeed(1, -1)).toBe(0.5);
		expect(stepSpeed(0.25, -1)).toBe(0.25);
		expect(stepSpeed(100, 1)).toBe('max');
		expect(stepSpeed('max', 1)).toBe('max');
		expect(stepSpeed('max', -1)).toBe(100);
		expect(stepSpeed(3, 1)).toBe(5);
		expect(stepSpeed(null, 1)).toBe(2);
		expect(speedLabel('max')).toBe('max');
		expect(speedLabel(0.25)).toBe('0.25×');
	});

	it('parses t as ns or RFC 3339 to the ns', () => {
		expect(parseTimeParam('1758742200001385399')).toBe(1_758_742_200_001_385_399n);
		expect(parseTimeParam('2025-09-24T19:30:00.001385399Z')).toBe(1_758_742_200_001_385_399n);
		expect(parseTimeParam('2025-09-24T21:30:00+02:00')).toBe(1_758_742_200_000_000_000n);
		expect(parseTimeParam('yesterday')).toBeNull();
		expect(parseTimeParam(null)).toBeNull();
	});

	it('builds share links keeping other parameters', () => {
		expect(shareSearch('', 'CLX5', 5n)).toBe('?symbol=CLX5&t=5');
		expect(shareSearch('?theme=light&t=1', 'CLX5', null)).toBe('?theme=light&symbol=CLX5');
		expect(shareSearch('', null, null)).toBe('');
	});
});
