/**
 * Decoders of the crypto venues API (`GET /api/v1/venues`, crypto books of
 * `/api/v1/book/{symbol}?venue=`, and `/api/v1/stream/venues`). Same rules as `decode.ts`:
 * parsed with `parseJsonExact` (prices, timestamps and counters stay exact), anything malformed
 * throws `DecodeError` and the message is dropped whole. Sizes are exact decimal strings and stay
 * strings.
 */
import { isDecimal } from './decimal';
import { big, bigOrNull, bool, DecodeError, decodeLagged, num, numOrNull, obj, str, strOrNull, tradeSide } from './decode';
import { parseJsonExact } from './json';
import type {
	CryptoBest,
	CryptoBook,
	CryptoLevel,
	LatencyPair,
	VenueGap,
	VenueHealth,
	VenuesInfo,
	VenueStreamMessage,
	VenueTrade,
	VenueTradeBatch
} from './types';

/** An exact decimal size ("2.5"); never a JSON number, which would already be rounded. */
function size(v: unknown, what: string): string {
	if (typeof v !== 'string' || !isDecimal(v)) throw new DecodeError(`${what}: not a decimal string`);
	return v;
}

function strings(v: unknown, what: string): string[] {
	if (!Array.isArray(v)) throw new DecodeError(`${what}: not an array`);
	return v.map((x: unknown) => str(x, what));
}

function latency(v: unknown, what: string): LatencyPair {
	if (v === null || v === undefined) return { p50: null, p99: null };
	const o = obj(v, what);
	return { p50: numOrNull(o.p50, `${what}.p50`), p99: numOrNull(o.p99, `${what}.p99`) };
}

function gap(v: unknown): VenueGap | null {
	if (v === null || v === undefined) return null;
	const o = obj(v, 'last_gap');
	return { symbol: str(o.symbol, 'last_gap.symbol'), reason: str(o.reason, 'last_gap.reason'), atNs: big(o.at_ns, 'last_gap.at_ns') };
}

export function decodeVenueHealth(v: unknown): VenueHealth {
	const o = obj(v, 'venue health');
	return {
		venue: str(o.venue, 'venue'),
		state: str(o.state, 'state'),
		url: str(o.url ?? '', 'url'),
		symbols: strings(o.symbols ?? [], 'symbols'),
		booksLive: num(o.books_live, 'books_live'),
		books: num(o.books, 'books'),
		messages: num(o.messages, 'messages'),
		msgsPerS: num(o.msgs_per_s, 'msgs_per_s'),
		bytes: num(o.bytes, 'bytes'),
		connects: num(o.connects, 'connects'),
		reconnects: num(o.reconnects, 'reconnects'),
		resyncs: num(o.resyncs, 'resyncs'),
		gaps: num(o.gaps, 'gaps'),
		checksumFailures: num(o.checksum_failures, 'checksum_failures'),
		lastGap: gap(o.last_gap),
		lastError: strOrNull(o.last_error, 'last_error'),
		eventsDropped: num(o.events_dropped ?? 0, 'events_dropped'),
		exchangeLatencyNs: latency(o.exchange_latency_ns, 'exchange_latency_ns'),
		publishLatencyNs: latency(o.publish_latency_ns, 'publish_latency_ns')
	};
}

/** `GET /api/v1/venues` and the stream's `health` events. */
export function decodeVenues(v: unknown): VenuesInfo {
	const o = obj(v, 'venues');
	const venues = o.venues;
	if (!Array.isArray(venues)) throw new DecodeError('venues: not an array');
	return {
		serverTs: big(o.server_ts, 'server_ts'),
		symbols: strings(o.symbols ?? [], 'symbols'),
		venues: venues.map(decodeVenueHealth)
	};
}

export function decodeCryptoLevel(v: unknown): CryptoLevel {
	const o = obj(v, 'level');
	const by = obj(o.venues ?? {}, 'level.venues');
	return {
		price: big(o.price, 'level.price'),
		priceText: str(o.price_decimal, 'level.price_decimal'),
		size: size(o.size, 'level.size'),
		venues: Object.entries(by).map(([venue, s]): [string, string] => [venue, size(s, `level.venues.${venue}`)])
	};
}

function best(v: unknown, what: string): CryptoBest | null {
	if (v === null || v === undefined) return null;
	const o = obj(v, what);
	return {
		price: big(o.price, `${what}.price`),
		priceText: str(o.price_decimal, `${what}.price_decimal`),
		size: size(o.size, `${what}.size`),
		venue: str(o.venue, `${what}.venue`)
	};
}

function cryptoLevels(v: unknown, what: string): CryptoLevel[] {
	if (!Array.isArray(v)) throw new DecodeError(`${what}: not an array`);
	return v.map(decodeCryptoLevel);
}

export function decodeCryptoBook(v: unknown): CryptoBook {
	const o = obj(v, 'crypto book');
	let crossedVenues: CryptoBook['crossedVenues'] = null;
	if (o.crossed_venues !== null && o.crossed_venues !== undefined) {
		const c = obj(o.crossed_venues, 'crossed_venues');
		crossedVenues = { bidVenue: str(c.bid_venue, 'crossed_venues.bid_venue'), askVenue: str(c.ask_venue, 'crossed_venues.ask_venue') };
	}
	return {
		serverTs: big(o.server_ts, 'server_ts'),
		symbol: str(o.symbol, 'symbol'),
		venue: str(o.venue, 'venue'),
		nativeSymbol: strOrNull(o.native_symbol, 'native_symbol'),
		epoch: num(o.epoch ?? 0, 'epoch'),
		eventIndex: num(o.event_index, 'event_index'),
		tsRecv: big(o.ts_recv, 'ts_recv'),
		state: str(o.state, 'state'),
		stale: bool(o.stale, 'stale'),
		bestBid: best(o.best_bid, 'best_bid'),
		bestAsk: best(o.best_ask, 'best_ask'),
		spread: bigOrNull(o.spread, 'spread'),
		spreadText: strOrNull(o.spread_decimal, 'spread_decimal'),
		mid: bigOrNull(o.mid, 'mid'),
		midText: strOrNull(o.mid_decimal, 'mid_decimal'),
		crossed: bool(o.crossed, 'crossed'),
		crossedVenues,
		venues: strings(o.venues ?? [], 'venues'),
		bidLevels: num(o.bid_levels, 'bid_levels'),
		askLevels: num(o.ask_levels, 'ask_levels'),
		bids: cryptoLevels(o.bids, 'bids'),
		asks: cryptoLevels(o.asks, 'asks')
	};
}

/**
 * A venues `trade` event: `{server_ts, symbol, count, fields: [...], trades: [[...], ...]}`,
 * columns looked up by name so added or reordered columns still decode.
 */
export function decodeVenueTradeBatch(v: unknown): VenueTradeBatch {
	const o = obj(v, 'trade');
	const fields = o.fields;
	if (!Array.isArray(fields)) throw new DecodeError('trade.fields: not an array');
	const col = (name: string): number => {
		const i = fields.indexOf(name);
		if (i < 0) throw new DecodeError(`trade.fields: no ${name}`);
		return i;
	};
	const iSeq = col('event_index');
	const iPrice = col('price');
	const iSize = col('size');
	const iSide = col('side');
	const iTs = col('ts_event');
	const iVenue = col('venue');
	const rows = o.trades;
	if (!Array.isArray(rows)) throw new DecodeError('trade.trades: not an array');
	const trades: VenueTrade[] = rows.map((r: unknown) => {
		if (!Array.isArray(r)) throw new DecodeError('trade row: not an array');
		return {
			seq: num(r[iSeq], 'trade.event_index'),
			price: big(r[iPrice], 'trade.price'),
			size: size(r[iSize], 'trade.size'),
			side: tradeSide(r[iSide]),
			tsNs: big(r[iTs], 'trade.ts_event'),
			venue: str(r[iVenue], 'trade.venue')
		};
	});
	return { serverTs: big(o.server_ts, 'server_ts'), symbol: str(o.symbol ?? '', 'symbol'), trades };
}

/** The events `/api/v1/stream/venues` sends. */
export const VENUE_EVENTS = ['snapshot', 'book', 'trade', 'health', 'lagged'] as const;

/** One SSE event of `/api/v1/stream/venues` (its `event:` name, `id:` and `data:`). */
export function decodeVenueStreamMessage(event: string, id: string, data: string): VenueStreamMessage {
	const v = parseJsonExact(data);
	switch (event) {
		case 'snapshot':
			return { kind: 'snapshot', id, book: decodeCryptoBook(v) };
		case 'book':
			return { kind: 'book', id, book: decodeCryptoBook(v) };
		case 'trade':
			return { kind: 'trade', id, batch: decodeVenueTradeBatch(v) };
		case 'health':
			return { kind: 'health', id, info: decodeVenues(v) };
		case 'lagged':
			return { kind: 'lagged', id, lagged: decodeLagged(v) };
		default:
			throw new DecodeError(`unknown event ${event}`);
	}
}
