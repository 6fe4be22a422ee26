/**
 * The dashboard's state: one instance per page, provided to components through context.
 *
 * Messages arrive at any rate; they are only queued here. One `requestAnimationFrame` loop
 * applies what is queued (the latest book, every trade, the latest status) at most once per
 * frame and then lets the canvas views draw, so the DOM and canvases are touched at most once
 * per frame however fast the feed runs. Big per-frame objects are `$state.raw`: they are
 * replaced, never mutated, so Svelte tracks one reference instead of proxying every level.
 */
import { goto } from '$app/navigation';
import { resolve } from '$app/paths';
import { getContext, setContext } from 'svelte';
import { ApiError, fetchInstruments, fetchLevel, fetchReplay, sendReplay, streamUrl, type ReplayCommand } from './api';
import { buildLadder, holdFlashes, sizeMap, type FlashMemory, type Ladder, type SizeMap } from './ladder';
import { latencyMs, percentile, SampleRing } from './perf';
import { BOOK_STREAM, StreamClient, type ConnectionState } from './stream';
import { seekStepNs, stepSpeed, type Speed } from './timeline';
import type { Book, BookSide, Instrument, LevelQueue, ReplayStatus, StreamMessage, Trade } from './types';

/** Levels per side asked of the stream (the ladder shows fewer; depth chart and heatmap use all). */
export const STREAM_DEPTH = 40;
/** Levels per side in the ladder. */
export const LADDER_DEPTH = 12;
/** At most one book frame per this many ms from the server (20 frames/s). */
export const STREAM_INTERVAL_MS = 50;
/** Trades kept for the tape. */
const TAPE_SIZE = 50;
/** The selected level's queue is re-read at most this often (ms). */
const QUEUE_MS = 200;
/** How long a changed ladder level stays highlighted. */
const FLASH_MS = 400;

/** What a canvas view gets each frame something changed. */
export interface FrameUpdate {
	book: Book | null;
	/** Trades applied in this frame, oldest first. */
	trades: readonly Trade[];
	/** The history was reset (new symbol, seek, loop, resync): drop what was drawn. */
	reset: boolean;
}

export type FrameListener = (u: FrameUpdate) => void;

export interface SelectedLevel {
	side: BookSide;
	price: bigint;
	priceText: string;
}

export class MarketState {
	instruments = $state.raw<Instrument[]>([]);
	symbol = $state<string | null>(null);
	connection = $state<ConnectionState>('connecting');
	book = $state.raw<Book | null>(null);
	ladder = $state.raw<Ladder>({ asks: [], bids: [], maxSize: 0 });
	tape = $state.raw<Trade[]>([]);
	lastTrade = $state.raw<Trade | null>(null);
	status = $state.raw<ReplayStatus | null>(null);
	error = $state<string | null>(null);
	/** Crypto books the server lists beside the MBO instruments (the venues view is linked then). */
	cryptoBooks = $state(0);
	selected = $state.raw<SelectedLevel | null>(null);
	queue = $state.raw<LevelQueue | null>(null);
	queueError = $state<string | null>(null);
	/** Performance panel figures, refreshed twice a second. */
	perf = $state.raw({ fps: 0, frameP95: 0, workP95: 0, latencyMs: NaN, events: 0, bad: 0, lagged: 0, resyncs: 0 });

	// Not reactive: queued input and bookkeeping of the frame loop.
	private client: StreamClient<StreamMessage> | null = null;
	private pendingBook: Book | null = null;
	private pendingSnapshot = false;
	private pendingTrades: Trade[] = [];
	private pendingStatus: ReplayStatus | null = null;
	private pendingReset = false;
	private prevBids: SizeMap | null = null;
	private prevAsks: SizeMap | null = null;
	private epoch: number | null = null;
	private listeners: FrameListener[] = [];
	private raf = 0;
	private lastFrameAt = 0;
	private frameTimes = new SampleRing(600);
	/** Time spent applying a frame's messages and drawing the canvases, per applied frame. */
	private workTimes = new SampleRing(600);
	private frameCount = 0;
	private lastPerfAt = 0;
	private events = 0;
	private booksIn = 0;
	private tradesIn = 0;
	private framesApplied = 0;
	private bad = 0;
	private lagged = 0;
	private resyncs = 0;
	private lastLatency = NaN;
	private queueInFlight: AbortController | null = null;
	private queueDirty = false;
	private queueLastAt = 0;
	private queueTimer: ReturnType<typeof setTimeout> | null = null;
	// Plain Map on purpose: bookkeeping of the frame loop, never read by a template.
	// eslint-disable-next-line svelte/prefer-svelte-reactivity
	private flashes: FlashMemory = new Map();
	private flashExpiry = Infinity;
	/** The ladder as built from the last book, before flashes are held. */
	private rawLadder: Ladder = { asks: [], bids: [], maxSize: 0 };
	/**
	 * The last seek: its target and the epoch it started. The server reports the time of the
	 * last record it released, which after a seek into a quiet stretch (no records for minutes)
	 * lies well before the target; the timeline shows the target until the replay passes it.
	 */
	private seekTarget = $state.raw<{ epoch: number; ts: bigint } | null>(null);

	/**
	 * Starts the frame loop and loads the instruments; picks `preferred` when it exists. A
	 * symbol from the URL is streamed at once, without waiting for the list (the ladder's
	 * first paint is what a user waits for); the list corrects it if the symbol is unknown.
	 */
	async start(preferred: string | null): Promise<void> {
		// One frame loop, however many times loading is retried.
		if (this.raf === 0) this.raf = requestAnimationFrame(this.frame);
		if (preferred && !this.symbol) this.select(preferred);
		try {
			const [{ instruments: list, cryptoBooks }, status] = await Promise.all([fetchInstruments(), fetchReplay()]);
			this.instruments = list;
			this.cryptoBooks = cryptoBooks;
			this.status ??= status;
			const known = list.find((i) => i.symbol === (this.symbol ?? preferred));
			const pick = known ?? [...list].sort((a, b) => b.orders - a.orders)[0];
			if (pick) {
				this.select(pick.symbol);
				this.error = null;
			} else if (cryptoBooks > 0) {
				// Crypto venues only (`mbo serve --no-mbo`): their view is the dashboard.
				this.error = null;
				void goto(resolve('/venues'), { replaceState: true });
			} else this.error = 'the server has no instruments yet';
		} catch (e) {
			this.error = `cannot reach the server: ${e instanceof Error ? e.message : String(e)}`;
			// Try again shortly (the server may be starting), unless the page has gone.
			setTimeout(() => {
				if (this.raf !== 0) void this.start(preferred);
			}, 2000);
		}
	}

	/** Reloads the instrument list (a live feed or the simulator can add books). */
	async refreshInstruments(): Promise<void> {
		try {
			({ instruments: this.instruments, cryptoBooks: this.cryptoBooks } = await fetchInstruments());
		} catch {
			/* keep the list we have; the connection badge tells the rest */
		}
	}

	stop(): void {
		cancelAnimationFrame(this.raf);
		this.raf = 0;
		this.client?.stop();
		this.client = null;
	}

	/** Switches to `symbol`: a new stream, a fresh history. */
	select(symbol: string): void {
		if (symbol === this.symbol && this.client) return;
		this.client?.stop();
		this.closeQueue();
		this.symbol = symbol;
		this.book = null;
		this.seekTarget = null;
		this.pendingBook = null;
		this.pendingTrades = [];
		this.pendingReset = true;
		this.epoch = null;
		this.tape = [];
		this.lastTrade = null;
		this.client = new StreamClient(
			streamUrl(symbol, STREAM_DEPTH, STREAM_INTERVAL_MS),
			{
				message: (m) => this.receive(m),
				state: (s) => (this.connection = s),
				bad: () => this.bad++
			},
			BOOK_STREAM
		);
		this.client.start();
	}

	/** Canvas views subscribe here; they are called inside the frame loop. */
	onFrame(fn: FrameListener): () => void {
		this.listeners.push(fn);
		return () => {
			this.listeners = this.listeners.filter((f) => f !== fn);
		};
	}

	/** Queues a message (called per SSE event; never touches reactive state). */
	private receive(m: StreamMessage): void {
		this.events++;
		switch (m.kind) {
			case 'snapshot':
				// A snapshot replaces the book: nothing flashes, and after a seek or loop (new
				// epoch) or a resync the drawn history no longer connects.
				this.pendingBook = m.book;
				this.pendingSnapshot = true;
				this.resyncs++;
				if (this.epoch !== null && m.book.epoch !== this.epoch) this.pendingReset = true;
				this.epoch = m.book.epoch;
				this.lastLatency = latencyMs(Date.now(), m.book.serverTs);
				break;
			case 'book':
				this.booksIn++;
				if (this.epoch !== null && m.book.epoch !== this.epoch) {
					this.pendingReset = true;
					this.pendingSnapshot = true;
				}
				this.epoch = m.book.epoch;
				this.pendingBook = m.book;
				this.lastLatency = latencyMs(Date.now(), m.book.serverTs);
				break;
			case 'trade':
				this.tradesIn += m.batch.trades.length;
				for (const t of m.batch.trades) this.pendingTrades.push(t);
				this.lastLatency = latencyMs(Date.now(), m.batch.serverTs);
				break;
			case 'status':
				this.pendingStatus = m.status;
				break;
			case 'lagged':
				// The server follows with a snapshot; count it so the panel shows it happened.
				this.lagged++;
				break;
		}
	}

	/** The frame loop: apply what is queued, at most once per frame. */
	private frame = (now: number): void => {
		this.raf = requestAnimationFrame(this.frame);
		if (this.lastFrameAt > 0) this.frameTimes.push(now - this.lastFrameAt);
		this.lastFrameAt = now;
		this.frameCount++;
		const t0 = performance.now();
		if (this.apply(now)) this.workTimes.push(performance.now() - t0);
		else if (now >= this.flashExpiry) this.setLadder(this.rawLadder, now);
		if (now - this.lastPerfAt >= 500) {
			const elapsed = now - this.lastPerfAt;
			this.perf = {
				fps: this.lastPerfAt > 0 ? Math.round((this.frameCount * 1000) / elapsed) : 0,
				frameP95: percentile(this.frameTimes.values(), 95),
				workP95: percentile(this.workTimes.values(), 95),
				latencyMs: this.lastLatency,
				events: this.events,
				bad: this.bad,
				lagged: this.lagged,
				resyncs: this.resyncs
			};
			this.frameCount = 0;
			this.lastPerfAt = now;
		}
	};

	/** Applies what is queued; true when there was something. */
	private apply(now: number): boolean {
		const book = this.pendingBook;
		const trades = this.pendingTrades;
		const reset = this.pendingReset;
		if (this.pendingStatus) {
			this.status = this.pendingStatus;
			this.pendingStatus = null;
		}
		if (!book && trades.length === 0 && !reset) return false;
		this.framesApplied++;
		this.pendingBook = null;
		this.pendingTrades = [];
		this.pendingReset = false;
		if (reset) {
			this.flashes.clear();
			this.tape = [];
			this.prevBids = null;
			this.prevAsks = null;
		}
		if (book) {
			if (this.pendingSnapshot) {
				this.prevBids = null;
				this.prevAsks = null;
				this.pendingSnapshot = false;
			}
			this.setLadder(buildLadder(book.bids, book.asks, LADDER_DEPTH, this.prevBids, this.prevAsks), now);
			this.prevBids = sizeMap(book.bids.slice(0, LADDER_DEPTH));
			this.prevAsks = sizeMap(book.asks.slice(0, LADDER_DEPTH));
			this.book = book;
			if (this.selected) this.refreshQueue();
		}
		if (trades.length > 0) {
			// Newest first; only the last TAPE_SIZE matter.
			const fresh = trades.slice(-TAPE_SIZE).reverse();
			this.tape = fresh.concat(this.tape).slice(0, TAPE_SIZE);
			this.lastTrade = trades[trades.length - 1] ?? this.lastTrade;
		}
		const update: FrameUpdate = { book: this.book, trades, reset };
		for (const fn of this.listeners) fn(update);
		return true;
	}

	private setLadder(raw: Ladder, now: number): void {
		this.rawLadder = raw;
		// Once shown, a row's flash is the held one: rebuilding from `raw` later only expires them.
		const held = holdFlashes(raw, this.flashes, now, FLASH_MS);
		this.rawLadder = { ...raw, asks: raw.asks.map(noFlash), bids: raw.bids.map(noFlash) };
		this.ladder = held.ladder;
		this.flashExpiry = held.nextExpiry;
	}

	/** Opens the L3 queue of a level (or closes it when it is already open). */
	selectLevel(side: BookSide, price: bigint, priceText: string): void {
		if (this.selected && this.selected.side === side && this.selected.price === price) {
			this.closeQueue();
			return;
		}
		// A new level: drop what is pending for the old one and read at once.
		this.closeQueue();
		this.queueLastAt = 0;
		this.selected = { side, price, priceText };
		this.refreshQueue();
	}

	closeQueue(): void {
		this.queueInFlight?.abort();
		this.queueInFlight = null;
		if (this.queueTimer !== null) clearTimeout(this.queueTimer);
		this.queueTimer = null;
		this.queueDirty = false;
		this.selected = null;
		this.queue = null;
		this.queueError = null;
	}

	/**
	 * Re-reads the selected queue: one request at a time and at most every QUEUE_MS (the book
	 * moves 20 times a second; a queue read goes through the engine), the latest book wins.
	 */
	private refreshQueue(): void {
		const sel = this.selected;
		const symbol = this.symbol;
		if (!sel || !symbol) return;
		if (this.queueInFlight || this.queueTimer !== null) {
			this.queueDirty = true;
			return;
		}
		const wait = this.queueLastAt + QUEUE_MS - performance.now();
		if (wait > 0) {
			this.queueTimer = setTimeout(() => {
				this.queueTimer = null;
				this.queueDirty = false;
				this.refreshQueue();
			}, wait);
			return;
		}
		this.queueLastAt = performance.now();
		const ctl = new AbortController();
		this.queueInFlight = ctl;
		fetchLevel(symbol, sel.side, sel.price, ctl.signal)
			.then((q) => {
				if (this.selected === sel) {
					this.queue = q;
					this.queueError = null;
				}
			})
			.catch((e: unknown) => {
				if (!ctl.signal.aborted) this.queueError = e instanceof Error ? e.message : String(e);
			})
			.finally(() => {
				if (this.queueInFlight === ctl) this.queueInFlight = null;
				if (this.queueDirty && this.selected !== null) {
					this.queueDirty = false;
					this.refreshQueue();
				}
			});
	}

	/** Sends a replay command; the answer is the new state. */
	async control(cmd: ReplayCommand): Promise<void> {
		try {
			this.status = await sendReplay(cmd);
			this.error = null;
		} catch (e) {
			this.error = e instanceof ApiError ? `replay: ${e.message}` : `replay: ${String(e)}`;
		}
	}

	get playing(): boolean {
		return this.status?.state === 'playing';
	}

	get speed(): Speed | null {
		const s = this.status;
		if (!s) return null;
		if (s.pace === 'max') return 'max';
		return s.speed;
	}

	/**
	 * The best estimate of the replay's position: the newest book's time (books come 20 times a
	 * second, statuses once), unless the status is from a newer epoch (a seek the books have not
	 * caught up with yet: the old book's time would put the thumb back where it was).
	 */
	get positionTs(): bigint | null {
		const s = this.status;
		const b = this.book;
		const st = s?.positionTs ?? null;
		const bk = b?.tsRecv ?? null;
		let pos: bigint | null;
		if (s && b && s.epoch > b.epoch) pos = st;
		else if (bk !== null && st !== null) pos = bk > st ? bk : st;
		else pos = bk ?? st;
		const seek = this.seekTarget;
		if (seek && s && s.epoch === seek.epoch && (pos === null || pos < seek.ts)) return seek.ts;
		return pos;
	}

	togglePlay(): Promise<void> {
		return this.control({ action: this.playing ? 'pause' : 'play' });
	}

	seek(ts: bigint): Promise<void> {
		const s = this.status;
		let t = ts;
		if (s?.startTs != null && t < s.startTs) t = s.startTs;
		if (s?.endTs != null && t > s.endTs) t = s.endTs;
		return this.control({ action: 'seek', ts: t }).then(() => {
			const after = this.status;
			if (after) this.seekTarget = { epoch: after.epoch, ts: t };
		});
	}

	seekBy(dir: 1 | -1, big: boolean): Promise<void> {
		const pos = this.positionTs;
		if (pos === null) return Promise.resolve();
		const step = seekStepNs(big);
		return this.seek(dir > 0 ? pos + step : pos - step);
	}

	stepSpeed(dir: 1 | -1): Promise<void> {
		return this.control({ action: 'speed', speed: stepSpeed(this.speed, dir) });
	}

	/** Counters for the e2e benchmark (plain numbers, read through `window.__mbo`). */
	counters(): { books: number; trades: number; events: number; applied: number; workP95: number } {
		return {
			books: this.booksIn,
			trades: this.tradesIn,
			events: this.events,
			applied: this.framesApplied,
			workP95: percentile(this.workTimes.values(), 95)
		};
	}
}

function noFlash<T extends { flash: unknown }>(r: T): T {
	return r.flash === null ? r : { ...r, flash: null };
}

const KEY = Symbol('market');

export function provideMarket(m: MarketState): MarketState {
	return setContext(KEY, m);
}

export function useMarket(): MarketState {
	const m = getContext<MarketState | undefined>(KEY);
	if (!m) throw new Error('useMarket outside of the dashboard page');
	return m;
}
