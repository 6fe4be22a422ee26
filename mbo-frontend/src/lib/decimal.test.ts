import { describe, expect, it } from 'vitest';
import { compareDecimal, decimalToNumber, isDecimal, parseDecimal, sumDecimal } from './decimal';

describe('decimal strings', () => {
	it('recognises plain decimals only', () => {
		expect(['0', '2', '0.5', '0.18967538', '-1.25', '123456789012345678901.123456789'].every(isDecimal)).toBe(true);
		expect(['', '.5', '1.', '1e-8', '+1', 'NaN', ' 1', '1,5'].some(isDecimal)).toBe(false);
	});

	it('parses exactly, beyond what a double holds', () => {
		expect(parseDecimal('1.50')).toEqual({ units: 150n, scale: 2 });
		expect(parseDecimal('-0.00000001')).toEqual({ units: -1n, scale: 8 });
		expect(parseDecimal('12345678901234567.89012345')).toEqual({ units: 1234567890123456789012345n, scale: 8 });
		expect(parseDecimal('x')).toBeNull();
	});

	it('compares and sums exactly', () => {
		expect(compareDecimal('1.50', '1.5')).toBe(0);
		expect(compareDecimal('0.1', '0.09999999999999999999')).toBe(1);
		expect(compareDecimal('2', '10')).toBe(-1);
		// 0.1 + 0.2 is 0.3 here, not 0.30000000000000004.
		expect(sumDecimal(['0.1', '0.2'])).toBe('0.3');
		expect(sumDecimal(['2', '0.5'])).toBe('2.5');
		expect(sumDecimal(['0.00000001', '-0.00000001'])).toBe('0');
		expect(sumDecimal(['-1.5', '0.25'])).toBe('-1.25');
		expect(sumDecimal([])).toBe('0');
		expect(() => sumDecimal(['1e3'])).toThrow();
	});

	it('converts to a double for drawing only', () => {
		expect(decimalToNumber('2.5')).toBe(2.5);
		expect(Number.isNaN(decimalToNumber('abc'))).toBe(true);
	});
});
