import { describe, expect, it } from 'vitest';
import { parseJsonExact, quoteBigIntegers } from './json';

describe('parseJsonExact', () => {
	it('keeps integers above 2^53 exact as strings', () => {
		const v = parseJsonExact('{"ts":1758742200001385399,"id":18446744073709551615,"n":42}') as Record<
			string,
			unknown
		>;
		expect(v.ts).toBe('1758742200001385399');
		expect(v.id).toBe('18446744073709551615');
		expect(v.n).toBe(42);
	});

	it('handles negative integers, arrays and floats', () => {
		const v = parseJsonExact('[[-9223372036854775808,1.5,1e20,3]]') as unknown[][];
		expect(v[0]).toEqual(['-9223372036854775808', 1.5, 1e20, 3]);
	});

	it('never touches digits inside strings, even with escapes', () => {
		const text = '{"s":"a\\"1234567890123456789","t":"x:1234567890123456,"}';
		expect(quoteBigIntegers(text)).toBe(text);
		expect(parseJsonExact(text)).toEqual({ s: 'a"1234567890123456789', t: 'x:1234567890123456,' });
	});

	it('leaves 15-digit integers as numbers (always exact)', () => {
		expect(parseJsonExact('{"p":999999999999999}')).toEqual({ p: 999999999999999 });
	});

	it('leaves text without long digit runs untouched', () => {
		const text = '{"a":[1,2,3],"b":"64.67"}';
		expect(quoteBigIntegers(text)).toBe(text);
	});
});
