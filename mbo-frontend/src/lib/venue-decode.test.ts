import { describe, expect, it } from 'vitest';
import { DecodeError } from './decode';
import { parseJsonExact } from './json';
import { decodeCryptoBook, decodeVenues, decodeVenueStreamMessage } from './venue-decode';

const health = (extra = '') =>
	'{"venue":"kraken","state":"live","url":"wss://ws.kraken.com/v2","symbols":["BTC/USD"],"books_live":1,"books":1,' +
	'"messages":18446744073709551615,"msgs_per_s":212.5,"bytes":123456,"connects":2,"reconnects":1,"resyncs":3,"gaps":2,' +
	'"checksum_failures":1,"last_gap":{"symbol":"BTC/USD","reason":"checksum: expected 123, computed 456","at_ns":1758742200101385399},' +
	'"last_error":null,"events_dropped":0,"exchange_latency_ns":{"p50":1250000,"p99":-3000},' +
	`"publish_latency_ns":{"p50":null,"p99":null}${extra}}`;

const consolidated =
	'{"server_ts":1758742200101385399,"symbol":"BTC-USD","venue":"consolidated","native_symbol":null,"epoch":0,' +
	'"event_index":1234,"ts_recv":1758742200001385399,"state":"live","stale":false,' +
	'"best_bid":{"price":29430200000000,"price_decimal":"29430.2","size":"2.5","venue":"kraken"},' +
	'"best_ask":{"price":9223372036854775807,"price_decimal":"9223372036.854775807","size":"0.00000001","venue":"coinbase"},' +
	'"spread":-100000000,"spread_decimal":"-0.1","mid":29430150000000,"mid_decimal":"29430.15","crossed":true,' +
	'"crossed_venues":{"bid_venue":"kraken","ask_venue":"coinbase"},"venues":["kraken","coinbase"],"bid_levels":812,"ask_levels":790,' +
	'"bids":[{"price":29430200000000,"price_decimal":"29430.2","size":"2.5","venues":{"kraken":"2","coinbase":"0.5"}}],' +
	'"asks":[{"price":29430100000000,"price_decimal":"29430.1","size":"0.18967538","venues":{"coinbase":"0.18967538"}}]}';

describe('venues list and health', () => {
	it('decodes a health object exactly, latencies may be null or negative', () => {
		const info = decodeVenues(parseJsonExact(`{"server_ts":1758742200101385399,"symbols":["BTC-USD","ETH-USD"],"venues":[${health()}]}`));
		expect(info.serverTs).toBe(1758742200101385399n);
		expect(info.symbols).toEqual(['BTC-USD', 'ETH-USD']);
		const h = info.venues[0]!;
		expect(h.venue).toBe('kraken');
		expect(h.state).toBe('live');
		expect(h.msgsPerS).toBe(212.5);
		expect(h.checksumFailures).toBe(1);
		expect(h.lastGap).toEqual({ symbol: 'BTC/USD', reason: 'checksum: expected 123, computed 456', atNs: 1758742200101385399n });
		expect(h.exchangeLatencyNs).toEqual({ p50: 1_250_000, p99: -3000 });
		expect(h.publishLatencyNs).toEqual({ p50: null, p99: null });
		expect(h.lastError).toBeNull();
	});

	it('decodes a server without venues', () => {
		const info = decodeVenues(parseJsonExact('{"server_ts":1,"symbols":[],"venues":[]}'));
		expect(info.venues).toEqual([]);
		expect(info.symbols).toEqual([]);
	});

	it('decodes a health with no gap and an error', () => {
		const info = decodeVenues(
			parseJsonExact(`{"server_ts":1,"symbols":["BTC-USD"],"venues":[${health().replace(/"last_gap":\{[^}]*\}/, '"last_gap":null').replace('"last_error":null', '"last_error":"tls: handshake eof"')}]}`)
		);
		expect(info.venues[0]?.lastGap).toBeNull();
		expect(info.venues[0]?.lastError).toBe('tls: handshake eof');
	});

	it('rejects a malformed health', () => {
		expect(() => decodeVenues(parseJsonExact('{"server_ts":1,"symbols":[],"venues":[{"venue":"kraken"}]}'))).toThrow(DecodeError);
		expect(() => decodeVenues(parseJsonExact('{"server_ts":1,"symbols":[]}'))).toThrow(DecodeError);
	});
});

describe('crypto books', () => {
	it('decodes a crossed consolidated book, prices exact and sizes as exact text', () => {
		const b = decodeCryptoBook(parseJsonExact(consolidated));
		expect(b.venue).toBe('consolidated');
		expect(b.nativeSymbol).toBeNull();
		expect(b.eventIndex).toBe(1234);
		// Above 2^53: exact only through the big-integer path.
		expect(b.bestAsk?.price).toBe(9_223_372_036_854_775_807n);
		expect(b.bestAsk?.size).toBe('0.00000001');
		expect(b.bestBid).toEqual({ price: 29_430_200_000_000n, priceText: '29430.2', size: '2.5', venue: 'kraken' });
		expect(b.spread).toBe(-100_000_000n);
		expect(b.crossed).toBe(true);
		expect(b.crossedVenues).toEqual({ bidVenue: 'kraken', askVenue: 'coinbase' });
		expect(b.venues).toEqual(['kraken', 'coinbase']);
		expect(b.bids[0]?.venues).toEqual([
			['kraken', '2'],
			['coinbase', '0.5']
		]);
		expect(b.asks[0]?.size).toBe('0.18967538');
		expect(b.tsRecv).toBe(1758742200001385399n);
	});

	it('decodes a syncing venue book with no best levels', () => {
		const text =
			'{"server_ts":5,"symbol":"BTC-USD","venue":"kraken","native_symbol":"BTC/USD","epoch":0,"event_index":3,"ts_recv":4,' +
			'"state":"syncing","stale":true,"best_bid":null,"best_ask":null,"spread":null,"spread_decimal":null,"mid":null,' +
			'"mid_decimal":null,"crossed":false,"crossed_venues":null,"venues":["kraken"],"bid_levels":0,"ask_levels":0,"bids":[],"asks":[]}';
		const b = decodeCryptoBook(parseJsonExact(text));
		expect(b.state).toBe('syncing');
		expect(b.stale).toBe(true);
		expect(b.nativeSymbol).toBe('BTC/USD');
		expect(b.bestBid).toBeNull();
		expect(b.crossedVenues).toBeNull();
	});

	it('refuses sizes sent as JSON numbers (already rounded) or in exponent form', () => {
		expect(() => decodeCryptoBook(parseJsonExact(consolidated.replace('"size":"2.5","venues"', '"size":2.5,"venues"')))).toThrow(DecodeError);
		expect(() => decodeCryptoBook(parseJsonExact(consolidated.replace('"coinbase":"0.5"', '"coinbase":"5e-1"')))).toThrow(DecodeError);
	});
});

describe('the venues stream', () => {
	it('decodes snapshot, book, health and lagged events', () => {
		const s = decodeVenueStreamMessage('snapshot', '7', consolidated);
		expect(s.kind === 'snapshot' && s.book.venue).toBe('consolidated');
		const b = decodeVenueStreamMessage('book', '8', consolidated);
		expect(b.kind).toBe('book');
		const h = decodeVenueStreamMessage('health', '9', `{"server_ts":1,"symbols":["BTC-USD"],"venues":[${health()}]}`);
		expect(h.kind === 'health' && h.info.venues[0]?.resyncs).toBe(3);
		expect(decodeVenueStreamMessage('lagged', '10', '{"server_ts":1,"skipped":4}')).toEqual({ kind: 'lagged', id: '10', lagged: { serverTs: 1n, skipped: 4 } });
	});

	it('decodes trades of all venues by field name, prices and times exact, sizes as text', () => {
		const text =
			'{"server_ts":1758742200101385399,"symbol":"BTC-USD","count":2,"fields":["event_index","price","size","side","ts_event","venue"],' +
			'"trades":[[41,29430200000000,"0.00011621","B",1758742200000860311,"kraken"],' +
			'[42,9223372036854775807,"1234567890.123456789","Z",1,"coinbase"]]}';
		const m = decodeVenueStreamMessage('trade', '11', text);
		if (m.kind !== 'trade') throw new Error('kind');
		expect(m.batch.symbol).toBe('BTC-USD');
		expect(m.batch.trades).toEqual([
			{ seq: 41, price: 29_430_200_000_000n, size: '0.00011621', side: 'B', tsNs: 1758742200000860311n, venue: 'kraken' },
			{ seq: 42, price: 9_223_372_036_854_775_807n, size: '1234567890.123456789', side: 'N', tsNs: 1n, venue: 'coinbase' }
		]);
		// Reordered columns decode the same.
		const re = decodeVenueStreamMessage(
			'trade',
			'12',
			'{"server_ts":1,"symbol":"BTC-USD","count":1,"fields":["venue","ts_event","side","size","price","event_index"],"trades":[["bybit",5,"A","3",100,1]]}'
		);
		expect(re.kind === 'trade' && re.batch.trades[0]).toEqual({ seq: 1, price: 100n, size: '3', side: 'A', tsNs: 5n, venue: 'bybit' });
	});

	it('rejects malformed events', () => {
		expect(() => decodeVenueStreamMessage('trade', '1', '{"server_ts":1,"fields":["price"],"trades":[]}')).toThrow(DecodeError);
		expect(() => decodeVenueStreamMessage('status', '1', '{}')).toThrow(DecodeError);
		expect(() => decodeVenueStreamMessage('book', '1', '{"venue":3}')).toThrow(DecodeError);
		expect(() => decodeVenueStreamMessage('book', '1', 'nope')).toThrow(SyntaxError);
	});
});
