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
