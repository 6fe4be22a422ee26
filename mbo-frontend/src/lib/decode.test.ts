import { describe, expect, it } from 'vitest';
import {
	countCryptoBooks,
	DecodeError,
	decodeInstruments,
	decodeLevelQueue,
	decodeStreamMessage,
	parseEventId
} from './decode';
import { parseJsonExact } from './json';

const book = (extra = '') =>
	`{"server_ts":1758742200101385399,"symbol":"CLX5","instrument_id":432669,"publisher_id":1,"epoch":0,` +
	`"event_index":12,"ts_event":1758742200000860311,"ts_recv":1758742200001385399,` +
	`"best_bid":{"price":64670000000,"price_decimal":"64.67","size":5,"orders":2},` +
	`"best_ask":{"price":64680000000,"price_decimal":"64.68","size":3,"orders":1},` +
	`"spread":10000000,"spread_decimal":"0.01","mid":64675000000,"mid_decimal":"64.675",` +
	`"crossed":false,"maybe_bad_book":false,"orders":3,"bid_levels":1,"ask_levels":1,` +
	`"bids":[{"price":64670000000,"price_decimal":"64.67","size":5,"orders":2}],` +
	`"asks":[{"price":64680000000,"price_decimal":"64.68","size":3,"orders":1}]${extra}}`;

describe('decodeStreamMessage', () => {
	it('decodes a snapshot exactly', () => {
		const m = decodeStreamMessage('snapshot', '0-12', book());
		expect(m.kind).toBe('snapshot');
		if (m.kind !== 'snapshot') return;
		expect(m.book.serverTs).toBe(1758742200101385399n);
		expect(m.book.tsRecv).toBe(1758742200001385399n);
		expect(m.book.bestBid?.price).toBe(64_670_000_000n);
		expect(m.book.midText).toBe('64.675');
		expect(m.book.bids).toHaveLength(1);
		expect(m.book.eventIndex).toBe(12);
	});

	it('decodes an empty book (no best, null spread and mid)', () => {
		const text =
			'{"server_ts":5,"symbol":"X","instrument_id":1,"publisher_id":1,"epoch":0,"event_index":null,' +
			'"ts_event":0,"ts_recv":0,"best_bid":null,"best_ask":null,"spread":null,"spread_decimal":null,' +
			'"mid":null,"mid_decimal":null,"crossed":false,"maybe_bad_book":false,"orders":0,"bid_levels":0,' +
			'"ask_levels":0,"bids":[],"asks":[]}';
		const m = decodeStreamMessage('book', '0-', text);
		if (m.kind !== 'book') throw new Error('kind');
		expect(m.book.bestBid).toBeNull();
		expect(m.book.spread).toBeNull();
		expect(m.book.eventIndex).toBeNull();
		expect(m.book.bids).toEqual([]);
	});

	it('decodes a crossed book with a negative spread', () => {
		const text = book()
			.replace('"spread":10000000', '"spread":-20000000')
			.replace('"crossed":false', '"crossed":true');
		const m = decodeStreamMessage('book', '0-12', text);
		if (m.kind !== 'book') throw new Error('kind');
		expect(m.book.crossed).toBe(true);
		expect(m.book.spread).toBe(-20_000_000n);
	});

	it('decodes trades by their field names, keeping big prices exact', () => {
		const text =
			'{"server_ts":1758742200101385399,"symbol":"CLX5","instrument_id":1,"publisher_id":1,"epoch":2,"count":2,' +
			'"fields":["event_index","price","size","side","ts_event"],' +
			'"trades":[[9,64675000000,3,"A",1758742200000860311],[10,9223372036854775807,4294967295,"N",1]]}';
		const m = decodeStreamMessage('trade', '2-10', text);
		if (m.kind !== 'trade') throw new Error('kind');
		expect(m.batch.epoch).toBe(2);
		expect(m.batch.trades).toEqual([
			{ epoch: 2, eventIndex: 9, price: 64_675_000_000n, size: 3, side: 'A', tsEvent: 1758742200000860311n },
			{ epoch: 2, eventIndex: 10, price: 9_223_372_036_854_775_807n, size: 4_294_967_295, side: 'N', tsEvent: 1n }
		]);
	});

	it('decodes status and lagged', () => {
		const s = decodeStreamMessage(
			'status',
			'0-1',
			'{"server_ts":1,"source":"file","description":"CLX5_mbo.dbn","dataset":"GLBX.MDP3","state":"paused",' +
				'"pace":"realtime","speed":2.0,"rate":null,"position_ts":1758742200001385399,"progress":0.5,"next_index":10,' +
				'"released":10,"epoch":1,"start_ts":1758742200000000000,"end_ts":1758745800000000000,"record_count":38212,' +
				'"controllable":true,"control_auth":"loopback"}'
		);
		if (s.kind !== 'status') throw new Error('kind');
		expect(s.status.state).toBe('paused');
		expect(s.status.positionTs).toBe(1758742200001385399n);
		expect(s.status.speed).toBe(2);
		// A server without the field (before the scale-out roles) was ready.
		expect(s.status.health).toBe('ready');
		expect(s.status.healthDetail).toBeNull();
		const stale = decodeStreamMessage(
			'status',
			'0-1',
			'{"server_ts":1,"source":"file","state":"playing","epoch":3,"controllable":true,' +
				'"health":"stale","health_detail":"no status from the ingest for 3.2 s"}'
		);
		if (stale.kind !== 'status') throw new Error('kind');
		expect(stale.status.health).toBe('stale');
		expect(stale.status.healthDetail).toBe('no status from the ingest for 3.2 s');
		expect(() =>
			decodeStreamMessage('status', '0-1', '{"server_ts":1,"source":"file","state":"playing","epoch":3,"controllable":true,"health":7}')
		).toThrow(DecodeError);
		const l = decodeStreamMessage('lagged', '0-1', '{"server_ts":1,"skipped":7,"unit":"updates"}');
		expect(l).toEqual({ kind: 'lagged', id: '0-1', lagged: { serverTs: 1n, skipped: 7 } });
	});

	it('rejects malformed messages and unknown events', () => {
		expect(() => decodeStreamMessage('book', '0-1', '{"symbol":3}')).toThrow(DecodeError);
		expect(() => decodeStreamMessage('nope', '0-1', '{}')).toThrow(DecodeError);
		expect(() => decodeStreamMessage('book', '0-1', 'not json')).toThrow(SyntaxError);
	});
});

describe('other endpoints', () => {
	it('decodes a level queue with u64 order ids exactly', () => {
		const q = decodeLevelQueue(
			parseJsonExact(
					'{"server_ts":1,"symbol":"CLX5","instrument_id":1,"publisher_id":1,"epoch":0,"event_index":5,' +
						'"ts_event":9,"ts_recv":9,"side":"B","price":64670000000,"price_decimal":"64.67","size":7,' +
						'"order_count":2,"orders":[{"position":0,"order_id":18446744073709551615,"size":5,"ts_priority":3},' +
						'{"position":1,"order_id":42,"size":2,"ts_priority":1758742200000860311}]}'
			)
		);
		expect(q.orders.map((o) => o.orderId)).toEqual(['18446744073709551615', '42']);
		expect(q.orders[1]?.tsPriority).toBe(1758742200000860311n);
		expect(q.side).toBe('B');
	});

	it('decodes instruments', () => {
		const list = decodeInstruments([
			{
				symbol: 'CLX5',
				instrument_id: 1,
				publisher_id: 1,
				dataset: 'GLBX.MDP3',
				orders: 10,
				event_index: null,
				crossed: true,
				maybe_bad_book: false
			}
		]);
		expect(list[0]?.symbol).toBe('CLX5');
		expect(list[0]?.crossed).toBe(true);
		expect(() => decodeInstruments({})).toThrow(DecodeError);
	});

	it('leaves crypto books (venue not null) out of the MBO instruments', () => {
		const text =
			'[{"symbol":"CLX5","instrument_id":1,"publisher_id":1,"dataset":"GLBX.MDP3","orders":10,"event_index":3,' +
					'"crossed":false,"maybe_bad_book":false,"venue":null},' +
					'{"symbol":"BTC-USD","venue":"consolidated","native_symbol":null,"state":"live","instrument_id":null,' +
					'"publisher_id":null,"orders":null,"event_index":17,"crossed":false},' +
					'{"symbol":"BTC-USD","venue":"kraken","native_symbol":"BTC/USD","state":"syncing","instrument_id":null,' +
					'"publisher_id":null,"orders":null}]';
		const list = decodeInstruments(parseJsonExact(text));
		expect(list.map((i) => i.symbol)).toEqual(['CLX5']);
		expect(list[0]?.eventIndex).toBe(3);
		expect(countCryptoBooks(parseJsonExact(text))).toBe(2);
		expect(countCryptoBooks([])).toBe(0);
	});

	it('parses SSE ids', () => {
		expect(parseEventId('3-41')).toEqual({ epoch: 3, index: 41 });
		expect(parseEventId('0-')).toEqual({ epoch: 0, index: null });
		expect(parseEventId('garbage')).toBeNull();
	});
});
