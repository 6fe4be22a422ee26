import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { backoffMs, BOOK_STREAM, StreamClient, type ConnectionState } from './stream';
import { decodeVenueStreamMessage, VENUE_EVENTS } from './venue-decode';
import type { StreamMessage, VenueStreamMessage } from './types';

/** A stand-in for the browser's EventSource: the test drives its events. */
class FakeEventSource {
	static CONNECTING = 0;
	static OPEN = 1;
	static CLOSED = 2;
	static all: FakeEventSource[] = [];
	readyState = FakeEventSource.CONNECTING;
	onopen: (() => void) | null = null;
	onerror: (() => void) | null = null;
	listeners = new Map<string, (ev: { data: string; lastEventId: string }) => void>();
	closed = false;
	constructor(readonly url: string) {
		FakeEventSource.all.push(this);
	}
	addEventListener(name: string, fn: (ev: { data: string; lastEventId: string }) => void) {
		this.listeners.set(name, fn);
	}
	close() {
		this.closed = true;
		this.readyState = FakeEventSource.CLOSED;
	}
	emit(name: string, data: string, id = '0-1') {
		this.listeners.get(name)?.({ data, lastEventId: id });
	}
}

describe('StreamClient', () => {
	let states: ConnectionState[];
	let messages: StreamMessage[];
	let bad: string[];
	let client: StreamClient<StreamMessage>;

	beforeEach(() => {
		vi.useFakeTimers();
		FakeEventSource.all = [];
		vi.stubGlobal('EventSource', FakeEventSource);
		states = [];
		messages = [];
		bad = [];
		client = new StreamClient(
			'/api/v1/stream?symbol=X',
			{
				message: (m) => messages.push(m),
				state: (s) => states.push(s),
				bad: (e) => bad.push(e)
			},
			BOOK_STREAM
		);
	});
	afterEach(() => {
		client.stop();
		vi.unstubAllGlobals();
		vi.useRealTimers();
	});

	it('decodes events and reports the connection', () => {
		client.start();
		const es = FakeEventSource.all[0]!;
		es.readyState = FakeEventSource.OPEN;
		es.onopen?.();
		es.emit('lagged', '{"server_ts":1,"skipped":3}', '2-9');
		expect(states).toEqual(['connecting', 'open']);
		expect(messages).toEqual([{ kind: 'lagged', id: '2-9', lagged: { serverTs: 1n, skipped: 3 } }]);
	});

	it('counts undecodable messages instead of applying them', () => {
		client.start();
		const es = FakeEventSource.all[0]!;
		es.emit('book', '{"not":"a book"}');
		es.emit('trade', 'garbage');
		expect(messages).toEqual([]);
		expect(bad).toEqual(['book', 'trade']);
	});

	it('lets the browser retry while it does (CONNECTING), reopens with backoff when it gives up', () => {
		client.start();
		const first = FakeEventSource.all[0]!;
		first.readyState = FakeEventSource.CONNECTING;
		first.onerror?.();
		expect(states.at(-1)).toBe('reconnecting');
		expect(FakeEventSource.all).toHaveLength(1);
		first.readyState = FakeEventSource.CLOSED;
		first.onerror?.();
		expect(first.closed).toBe(true);
		vi.advanceTimersByTime(backoffMs(0) - 1);
		expect(FakeEventSource.all).toHaveLength(1);
		vi.advanceTimersByTime(1);
		expect(FakeEventSource.all).toHaveLength(2);
		// The new stream starts with a snapshot from the server; opening resets the backoff.
		const second = FakeEventSource.all[1]!;
		second.onopen?.();
		expect(states.at(-1)).toBe('open');
	});

	it('stops for good', () => {
		client.start();
		const es = FakeEventSource.all[0]!;
		client.stop();
		es.readyState = FakeEventSource.CLOSED;
		es.onerror?.();
		vi.advanceTimersByTime(10_000);
		expect(FakeEventSource.all).toHaveLength(1);
		expect(states.at(-1)).toBe('closed');
	});
});

describe('StreamClient with the venues protocol', () => {
	afterEach(() => vi.unstubAllGlobals());

	it('listens to the venues events (health, no status) and decodes them with its decoder', () => {
		FakeEventSource.all = [];
		vi.stubGlobal('EventSource', FakeEventSource);
		const got: VenueStreamMessage[] = [];
		const bad: string[] = [];
		const c = new StreamClient(
			'/api/v1/stream/venues?symbol=BTC-USD',
			{ message: (m) => got.push(m), state: () => {}, bad: (e) => bad.push(e) },
			{ events: VENUE_EVENTS, decode: decodeVenueStreamMessage }
		);
		c.start();
		const es = FakeEventSource.all[0]!;
		expect([...es.listeners.keys()]).toEqual(['snapshot', 'book', 'trade', 'health', 'lagged']);
		es.emit('health', '{"server_ts":1,"symbols":["BTC-USD"],"venues":[]}', '5');
		es.emit('health', '{"server_ts":1}', '6');
		expect(got).toEqual([{ kind: 'health', id: '5', info: { serverTs: 1n, symbols: ['BTC-USD'], venues: [] } }]);
		expect(bad).toEqual(['health']);
		c.stop();
	});
});

describe('backoffMs', () => {
	it('doubles from 0.5 s up to 5 s', () => {
		expect([0, 1, 2, 3, 4, 10].map(backoffMs)).toEqual([500, 1000, 2000, 4000, 5000, 5000]);
		expect(backoffMs(-1)).toBe(500);
	});
});
