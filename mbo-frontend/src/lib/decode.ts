/**
 * Decoders from the server's JSON (parsed with `parseJsonExact`, so big integers arrive as
 * strings) to the typed shapes of `types.ts`. They throw `DecodeError` on anything
 * malformed: a message that does not decode is dropped and counted, never half-applied.
 */
import { parseJsonExact } from './json';
import type {
	Book,
	BookSide,
	Instrument,
	Lagged,
	Level,
	LevelQueue,
	QueueOrder,
	ReplayStatus,
	StreamMessage,
	Trade,
	TradeBatch,
	TradeSide
} from './types';

export class DecodeError extends Error {
	override name = 'DecodeError';
}

export type Obj = Record<string, unknown>;

export function obj(v: unknown, what: string): Obj {
	if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new DecodeError(`${what}: not an object`);
	return v as Obj;
}

export function big(v: unknown, what: string): bigint {
	if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
	if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
	throw new DecodeError(`${what}: not an integer`);
}

export function bigOrNull(v: unknown, what: string): bigint | null {
	return v === null || v === undefined ? null : big(v, what);
}

export function num(v: unknown, what: string): number {
	if (typeof v === 'number' && Number.isFinite(v)) return v;
	// A size or count beyond 2^53 arrives as text; a double is close enough to show it.
	if (typeof v === 'string' && /^-?\d+$/.test(v)) return Number(v);
	throw new DecodeError(`${what}: not a number`);
}

export function numOrNull(v: unknown, what: string): number | null {
	return v === null || v === undefined ? null : num(v, what);
}

export function str(v: unknown, what: string): string {
	if (typeof v !== 'string') throw new DecodeError(`${what}: not a string`);
	return v;
}

export function strOrNull(v: unknown, what: string): string | null {
	return v === null || v === undefined ? null : str(v, what);
}

export function bool(v: unknown, what: string): boolean {
	if (typeof v !== 'boolean') throw new DecodeError(`${what}: not a boolean`);
	return v;
}

export function decodeLevel(v: unknown): Level {
	const o = obj(v, 'level');
	return {
		price: big(o.price, 'level.price'),
		priceText: str(o.price_decimal, 'level.price_decimal'),
		size: num(o.size, 'level.size'),
		orders: num(o.orders, 'level.orders')
	};
}

function levels(v: unknown, what: string): Level[] {
	if (!Array.isArray(v)) throw new DecodeError(`${what}: not an array`);
	return v.map(decodeLevel);
}

export function decodeBook(v: unknown): Book {
	const o = obj(v, 'book');
	return {
		serverTs: big(o.server_ts, 'server_ts'),
		symbol: str(o.symbol, 'symbol'),
		instrumentId: num(o.instrument_id, 'instrument_id'),
		publisherId: num(o.publisher_id, 'publisher_id'),
		epoch: num(o.epoch, 'epoch'),
		eventIndex: numOrNull(o.event_index, 'event_index'),
		tsEvent: big(o.ts_event, 'ts_event'),
		tsRecv: big(o.ts_recv, 'ts_recv'),
		bestBid: o.best_bid === null || o.best_bid === undefined ? null : decodeLevel(o.best_bid),
		bestAsk: o.best_ask === null || o.best_ask === undefined ? null : decodeLevel(o.best_ask),
		spread: bigOrNull(o.spread, 'spread'),
		spreadText: strOrNull(o.spread_decimal, 'spread_decimal'),
		mid: bigOrNull(o.mid, 'mid'),
		midText: strOrNull(o.mid_decimal, 'mid_decimal'),
		crossed: bool(o.crossed, 'crossed'),
		maybeBadBook: bool(o.maybe_bad_book, 'maybe_bad_book'),
		orders: num(o.orders, 'orders'),
		bidLevels: num(o.bid_levels, 'bid_levels'),
		askLevels: num(o.ask_levels, 'ask_levels'),
		bids: levels(o.bids, 'bids'),
		asks: levels(o.asks, 'asks')
	};
}

export function tradeSide(v: unknown): TradeSide {
	return v === 'B' || v === 'A' ? v : 'N';
}

/**
 * A `trade` event: `{server_ts, epoch, fields: [...], trades: [[...], ...]}`. Columns are
 * looked up by name in `fields`, so a server that adds or reorders columns still decodes.
 */
export function decodeTradeBatch(v: unknown): TradeBatch {
	const o = obj(v, 'trade');
	const epoch = num(o.epoch, 'epoch');
	const fields = o.fields;
	if (!Array.isArray(fields)) throw new DecodeError('trade.fields: not an array');
	const col = (name: string): number => {
		const i = fields.indexOf(name);
		if (i < 0) throw new DecodeError(`trade.fields: no ${name}`);
		return i;
	};
	const iIndex = col('event_index');
	const iPrice = col('price');
	const iSize = col('size');
	const iSide = col('side');
	const iTs = col('ts_event');
	const rows = o.trades;
	if (!Array.isArray(rows)) throw new DecodeError('trade.trades: not an array');
	const trades: Trade[] = rows.map((r: unknown) => {
		if (!Array.isArray(r)) throw new DecodeError('trade row: not an array');
		return {
			epoch,
			eventIndex: num(r[iIndex], 'trade.event_index'),
			price: big(r[iPrice], 'trade.price'),
			size: num(r[iSize], 'trade.size'),
			side: tradeSide(r[iSide]),
			tsEvent: big(r[iTs], 'trade.ts_event')
		};
	});
	return { serverTs: big(o.server_ts, 'server_ts'), epoch, trades };
}

export function decodeStatus(v: unknown): ReplayStatus {
	const o = obj(v, 'status');
	return {
		serverTs: big(o.server_ts, 'server_ts'),
		source: str(o.source, 'source'),
		description: str(o.description ?? '', 'description'),
		dataset: str(o.dataset ?? '', 'dataset'),
		state: str(o.state, 'state'),
		pace: strOrNull(o.pace, 'pace'),
		speed: numOrNull(o.speed, 'speed'),
		rate: numOrNull(o.rate, 'rate'),
		positionTs: bigOrNull(o.position_ts, 'position_ts'),
		progress: numOrNull(o.progress, 'progress'),
		nextIndex: numOrNull(o.next_index, 'next_index'),
		epoch: num(o.epoch, 'epoch'),
		startTs: bigOrNull(o.start_ts, 'start_ts'),
		endTs: bigOrNull(o.end_ts, 'end_ts'),
		recordCount: numOrNull(o.record_count, 'record_count'),
		controllable: bool(o.controllable, 'controllable'),
		// Servers before the scale-out roles did not say: they were ready when they answered.
		health: str(o.health ?? 'ready', 'health'),
		healthDetail: strOrNull(o.health_detail ?? null, 'health_detail')
	};
}

export function decodeLagged(v: unknown): Lagged {
	const o = obj(v, 'lagged');
	return { serverTs: big(o.server_ts, 'server_ts'), skipped: num(o.skipped ?? 0, 'skipped') };
}

/**
 * The MBO instruments of `/api/v1/instruments`. Crypto books are listed there too, with a
 * `venue` ("consolidated", "kraken", ...) and no instrument id: they belong to the venues view
 * and are left out here (`venue` null or absent is an MBO instrument).
 */
export function decodeInstruments(v: unknown): Instrument[] {
	if (!Array.isArray(v)) throw new DecodeError('instruments: not an array');
	return v.flatMap((x: unknown): Instrument[] => {
		const o = obj(x, 'instrument');
		if (o.venue !== null && o.venue !== undefined) return [];
		const i: Instrument = {
			symbol: str(o.symbol, 'symbol'),
			instrumentId: num(o.instrument_id, 'instrument_id'),
			publisherId: num(o.publisher_id, 'publisher_id'),
			dataset: str(o.dataset ?? '', 'dataset'),
			orders: num(o.orders, 'orders'),
			eventIndex: numOrNull(o.event_index, 'event_index'),
			crossed: bool(o.crossed, 'crossed'),
			maybeBadBook: bool(o.maybe_bad_book, 'maybe_bad_book')
		};
		return [i];
	});
}

/** How many crypto books (entries with a `venue`) `/api/v1/instruments` lists. */
export function countCryptoBooks(v: unknown): number {
	if (!Array.isArray(v)) throw new DecodeError('instruments: not an array');
	return v.filter((x: unknown) => {
		const o = obj(x, 'instrument');
		return o.venue !== null && o.venue !== undefined;
	}).length;
}

function bookSide(v: unknown): BookSide {
	if (v === 'B' || v === 'A') return v;
	throw new DecodeError('side: not B or A');
}

export function decodeLevelQueue(v: unknown): LevelQueue {
	const o = obj(v, 'level queue');
	const orders = o.orders;
	if (!Array.isArray(orders)) throw new DecodeError('orders: not an array');
	return {
		serverTs: big(o.server_ts, 'server_ts'),
		symbol: str(o.symbol, 'symbol'),
		epoch: num(o.epoch, 'epoch'),
		eventIndex: numOrNull(o.event_index, 'event_index'),
		tsEvent: big(o.ts_event, 'ts_event'),
		side: bookSide(o.side),
		price: big(o.price, 'price'),
		priceText: str(o.price_decimal, 'price_decimal'),
		size: num(o.size, 'size'),
		orderCount: num(o.order_count, 'order_count'),
		orders: orders.map((x: unknown): QueueOrder => {
			const q = obj(x, 'order');
			return {
				position: num(q.position, 'position'),
				orderId: big(q.order_id, 'order_id').toString(),
				size: num(q.size, 'size'),
				tsPriority: big(q.ts_priority, 'ts_priority')
			};
		})
	};
}

/** One SSE event of `/api/v1/stream` (its `event:` name, `id:` and `data:`). */
export function decodeStreamMessage(event: string, id: string, data: string): StreamMessage {
	const v = parseJsonExact(data);
	switch (event) {
		case 'snapshot':
			return { kind: 'snapshot', id, book: decodeBook(v) };
		case 'book':
			return { kind: 'book', id, book: decodeBook(v) };
		case 'trade':
			return { kind: 'trade', id, batch: decodeTradeBatch(v) };
		case 'status':
			return { kind: 'status', id, status: decodeStatus(v) };
		case 'lagged':
			return { kind: 'lagged', id, lagged: decodeLagged(v) };
		default:
			throw new DecodeError(`unknown event ${event}`);
	}
}

/** `"{epoch}-{event_index}"` (index empty before the first boundary). */
export function parseEventId(id: string): { epoch: number; index: number | null } | null {
	const m = /^(\d+)-(\d*)$/.exec(id.trim());
	if (!m) return null;
	return { epoch: Number(m[1]), index: m[2] === '' || m[2] === undefined ? null : Number(m[2]) };
}
