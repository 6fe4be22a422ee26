/** Typed forms of what the server sends (see mbo-backend/crates/api/src/frame.rs, http/rest.rs). */

export type BookSide = 'B' | 'A';
export type TradeSide = 'B' | 'A' | 'N';

export interface Level {
	/** 1e-9 units, exact. */
	price: bigint;
	/** The server's exact decimal text ("64.67"). */
	priceText: string;
	/** Total resting size (u64 on the server; a double is exact up to 2^53, far beyond any book). */
	size: number;
	orders: number;
}

export interface Book {
	serverTs: bigint;
	symbol: string;
	instrumentId: number;
	publisherId: number;
	epoch: number;
	eventIndex: number | null;
	tsEvent: bigint;
	tsRecv: bigint;
	bestBid: Level | null;
	bestAsk: Level | null;
	spread: bigint | null;
	spreadText: string | null;
	mid: bigint | null;
	midText: string | null;
	crossed: boolean;
	maybeBadBook: boolean;
	orders: number;
	bidLevels: number;
	askLevels: number;
	/** Best first. */
	bids: Level[];
	/** Best first. */
	asks: Level[];
}

export interface Trade {
	epoch: number;
	eventIndex: number;
	price: bigint;
	size: number;
	/** Aggressor: B = a buyer lifted the ask, A = a seller hit the bid. */
	side: TradeSide;
	tsEvent: bigint;
}

export interface TradeBatch {
	serverTs: bigint;
	epoch: number;
	trades: Trade[];
}

export type ReplayState = 'playing' | 'paused' | 'ended' | 'live' | string;

export interface ReplayStatus {
	serverTs: bigint;
	source: string;
	description: string;
	dataset: string;
	state: ReplayState;
	pace: string | null;
	speed: number | null;
	rate: number | null;
	positionTs: bigint | null;
	progress: number | null;
	nextIndex: number | null;
	epoch: number;
	startTs: bigint | null;
	endTs: bigint | null;
	recordCount: number | null;
	controllable: boolean;
	/** `ready`, `starting`, `failed`, or `stale` (a scale-out gateway whose books may be behind). */
	health: string;
	/** Why the server is not ready (null when ready). */
	healthDetail: string | null;
}

export interface Instrument {
	symbol: string;
	instrumentId: number;
	publisherId: number;
	dataset: string;
	orders: number;
	eventIndex: number | null;
	crossed: boolean;
	maybeBadBook: boolean;
}

export interface QueueOrder {
	position: number;
	/** u64 venue id: kept as exact text. */
	orderId: string;
	size: number;
	tsPriority: bigint;
}

export interface LevelQueue {
	serverTs: bigint;
	symbol: string;
	epoch: number;
	eventIndex: number | null;
	tsEvent: bigint;
	side: BookSide;
	price: bigint;
	priceText: string;
	size: number;
	orderCount: number;
	orders: QueueOrder[];
}

export interface Lagged {
	serverTs: bigint;
	skipped: number;
}

/** One decoded event of `/api/v1/stream`. */
export type StreamMessage =
	| { kind: 'snapshot'; id: string; book: Book }
	| { kind: 'book'; id: string; book: Book }
	| { kind: 'trade'; id: string; batch: TradeBatch }
	| { kind: 'status'; id: string; status: ReplayStatus }
	| { kind: 'lagged'; id: string; lagged: Lagged };

// ---- crypto venues (`mbo serve --venues`) ----------------------------------------------------

/** A venue connection's state. */
export type VenueConnState = 'connecting' | 'subscribing' | 'live' | 'backoff' | 'stopped' | string;
/** A crypto book's state: only `live` (and not `stale`) is a book to trust. */
export type CryptoBookState = 'live' | 'syncing' | 'stale' | string;

export interface LatencyPair {
	/** ns; null before the first sample. */
	p50: number | null;
	p99: number | null;
}

export interface VenueGap {
	symbol: string;
	reason: string;
	/** Unix ns. */
	atNs: bigint;
}

/** One venue connection's health (`GET /api/v1/venues`, `health` events). */
export interface VenueHealth {
	venue: string;
	state: VenueConnState;
	url: string;
	/** The venue's own symbols ("BTC/USD"). */
	symbols: string[];
	booksLive: number;
	books: number;
	messages: number;
	msgsPerS: number;
	bytes: number;
	connects: number;
	reconnects: number;
	resyncs: number;
	gaps: number;
	checksumFailures: number;
	lastGap: VenueGap | null;
	lastError: string | null;
	eventsDropped: number;
	exchangeLatencyNs: LatencyPair;
	publishLatencyNs: LatencyPair;
}

export interface VenuesInfo {
	serverTs: bigint;
	/** The common symbols ("BTC-USD"). */
	symbols: string[];
	/** Empty when the server runs no venues. */
	venues: VenueHealth[];
}

export interface CryptoLevel {
	/** 1e-9 units, exact. */
	price: bigint;
	priceText: string;
	/** Exact decimal text ("2.5"). */
	size: string;
	/** Size per venue (exact decimal text), in the server's order; one key in a venue's own book. */
	venues: [string, string][];
}

export interface CryptoBest {
	price: bigint;
	priceText: string;
	size: string;
	venue: string;
}

/** A crypto book: `consolidated` or one venue's (REST `/api/v1/book/{symbol}?venue=`, stream events). */
export interface CryptoBook {
	serverTs: bigint;
	symbol: string;
	venue: string;
	nativeSymbol: string | null;
	epoch: number;
	eventIndex: number;
	tsRecv: bigint;
	state: CryptoBookState;
	stale: boolean;
	bestBid: CryptoBest | null;
	bestAsk: CryptoBest | null;
	spread: bigint | null;
	spreadText: string | null;
	mid: bigint | null;
	midText: string | null;
	crossed: boolean;
	crossedVenues: { bidVenue: string; askVenue: string } | null;
	venues: string[];
	bidLevels: number;
	askLevels: number;
	bids: CryptoLevel[];
	asks: CryptoLevel[];
}

export interface VenueTrade {
	seq: number;
	price: bigint;
	/** Exact decimal text. */
	size: string;
	side: TradeSide;
	/** The venue's own trade time, Unix ns. */
	tsNs: bigint;
	venue: string;
}

export interface VenueTradeBatch {
	serverTs: bigint;
	symbol: string;
	trades: VenueTrade[];
}

/** One decoded event of `/api/v1/stream/venues`. */
export type VenueStreamMessage =
	| { kind: 'snapshot'; id: string; book: CryptoBook }
	| { kind: 'book'; id: string; book: CryptoBook }
	| { kind: 'trade'; id: string; batch: VenueTradeBatch }
	| { kind: 'health'; id: string; info: VenuesInfo }
	| { kind: 'lagged'; id: string; lagged: Lagged };
