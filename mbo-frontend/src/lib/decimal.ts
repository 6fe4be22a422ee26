/**
 * Crypto sizes are exact decimal strings ("0.18967538"): a venue quotes quantities to 8 or more
 * decimals and a double cannot hold every one of them. They are shown as the server wrote them,
 * compared exactly, and turned into a `number` only to size a bar on screen.
 */

const DECIMAL = /^(-?)(\d+)(?:\.(\d+))?$/;

/** True when `text` is a plain decimal ("2", "0.5", "-1.25"; no exponent, no sign "+"). */
export function isDecimal(text: string): boolean {
	return DECIMAL.test(text);
}

/** `text` as an integer of 10^-scale units, exactly: "1.50" -> {units: 150n, scale: 2}. */
export function parseDecimal(text: string): { units: bigint; scale: number } | null {
	const m = DECIMAL.exec(text);
	if (!m) return null;
	const [, sign, int, frac = ''] = m;
	const units = BigInt((int ?? '0') + frac);
	return { units: sign === '-' ? -units : units, scale: frac.length };
}

/** Exact comparison of two decimal strings: -1, 0 or 1 ("1.50" equals "1.5"). */
export function compareDecimal(a: string, b: string): -1 | 0 | 1 {
	const x = parseDecimal(a);
	const y = parseDecimal(b);
	if (!x || !y) throw new Error(`not a decimal: ${x ? b : a}`);
	const scale = Math.max(x.scale, y.scale);
	const xu = x.units * 10n ** BigInt(scale - x.scale);
	const yu = y.units * 10n ** BigInt(scale - y.scale);
	return xu < yu ? -1 : xu > yu ? 1 : 0;
}

/** Exact sum of decimal strings, as the shortest decimal string ("0.5" + "2" -> "2.5"). */
export function sumDecimal(values: readonly string[]): string {
	let scale = 0;
	const parsed = values.map((v) => {
		const p = parseDecimal(v);
		if (!p) throw new Error(`not a decimal: ${v}`);
		if (p.scale > scale) scale = p.scale;
		return p;
	});
	let total = 0n;
	for (const p of parsed) total += p.units * 10n ** BigInt(scale - p.scale);
	const neg = total < 0n;
	const digits = (neg ? -total : total).toString().padStart(scale + 1, '0');
	const int = digits.slice(0, digits.length - scale);
	const frac = digits.slice(digits.length - scale).replace(/0+$/, '');
	return (neg ? '-' : '') + int + (frac ? '.' + frac : '');
}

/** The size as a double, for drawing only (bar widths). NaN for anything not a decimal. */
export function decimalToNumber(text: string): number {
	return isDecimal(text) ? Number(text) : NaN;
}
