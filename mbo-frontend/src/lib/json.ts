/**
 * JSON parsing that keeps every integer exact.
 *
 * The server writes prices (1e-9 units, i64), timestamps (Unix ns, ~1.8e18) and order ids
 * (u64) as plain JSON integers. `JSON.parse` turns them into doubles and silently rounds
 * anything above 2^53, so a 19-digit `ts_event` or a large order id would come back wrong.
 * This parser quotes every integer literal of 16 digits or more (the shortest that can
 * exceed 2^53) before `JSON.parse`, so they arrive as strings and the decoders turn them into
 * `bigint`. Strings in the text are skipped, so their content is never altered.
 */

/** Integers with at most this many digits are always below 2^53 and stay numbers. */
const SAFE_DIGITS = 15;

export function parseJsonExact(text: string): unknown {
	return JSON.parse(quoteBigIntegers(text));
}

/** The same JSON text with every integer literal longer than 15 digits quoted. */
export function quoteBigIntegers(text: string): string {
	// Fast path: no run of 16 digits at all, nothing to do.
	if (!/\d{16}/.test(text)) return text;
	let out = '';
	let copied = 0;
	const n = text.length;
	let i = 0;
	while (i < n) {
		const c = text.charCodeAt(i);
		if (c === 34 /* " */) {
			// Skip a string literal, honouring escapes.
			i++;
			while (i < n) {
				const d = text.charCodeAt(i);
				if (d === 92 /* \ */) i += 2;
				else if (d === 34) break;
				else i++;
			}
			i++;
			continue;
		}
		if (c === 45 /* - */ || (c >= 48 && c <= 57)) {
			const start = i;
			if (c === 45) i++;
			const digitsStart = i;
			while (i < n && text.charCodeAt(i) >= 48 && text.charCodeAt(i) <= 57) i++;
			const digits = i - digitsStart;
			// A fraction or exponent makes it a float: leave it to JSON.parse.
			const next = i < n ? text.charCodeAt(i) : 0;
			const isFloat = next === 46 /* . */ || next === 101 /* e */ || next === 69; /* E */
			if (digits > SAFE_DIGITS && !isFloat) {
				out += text.slice(copied, start) + '"' + text.slice(start, i) + '"';
				copied = i;
			}
			while (i < n && /[0-9.eE+-]/.test(text[i] ?? '')) i++;
			continue;
		}
		i++;
	}
	return out + text.slice(copied);
}
