/**
 * The `/api/v1/stream` connection: an `EventSource` that decodes events and reports its state.
 *
 * Reconnecting: while the browser's own retry is running (`readyState` CONNECTING after an
 * error) it resends `Last-Event-ID`, and the server answers with a fresh `snapshot` followed by
 * only what came after that id. When the browser gives up (`readyState` CLOSED: an HTTP error
 * such as 503 while the server shuts down or is over its stream cap), a new `EventSource` is
 * opened after a growing delay; it starts with a snapshot, so the state is resynchronised
 * either way. Decoding happens here, but nothing is applied here: the caller queues messages
 * and applies them once per animation frame.
 */
import { DecodeError, decodeStreamMessage } from './decode';
import type { StreamMessage } from './types';

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface StreamHandlers<M = StreamMessage> {
	message(m: M): void;
	state(s: ConnectionState): void;
	/** A message that did not decode (dropped, never half-applied). */
	bad(event: string, error: unknown): void;
}

const EVENTS = ['snapshot', 'book', 'trade', 'status', 'lagged'] as const;

/** Which events a stream carries and how each decodes (the venues stream has its own). */
export interface StreamProtocol<M> {
	events: readonly string[];
	decode(event: string, id: string, data: string): M;
}

/** `/api/v1/stream`. */
export const BOOK_STREAM: StreamProtocol<StreamMessage> = { events: EVENTS, decode: decodeStreamMessage };

/** Delay before the n-th manual reconnection attempt (n from 0): 0.5 s doubling to 5 s. */
export function backoffMs(attempt: number): number {
	return Math.min(500 * 2 ** Math.max(attempt, 0), 5000);
}

export class StreamClient<M = StreamMessage> {
	private es: EventSource | null = null;
	private retryTimer: ReturnType<typeof setTimeout> | null = null;
	private attempt = 0;
	private stopped = false;

	constructor(
		private readonly url: string,
		private readonly on: StreamHandlers<M>,
		private readonly protocol: StreamProtocol<M>
	) {}

	start(): void {
		this.stopped = false;
		this.open();
	}

	stop(): void {
		this.stopped = true;
		if (this.retryTimer !== null) clearTimeout(this.retryTimer);
		this.retryTimer = null;
		this.es?.close();
		this.es = null;
		this.on.state('closed');
	}

	private open(): void {
		this.on.state(this.attempt === 0 ? 'connecting' : 'reconnecting');
		const es = new EventSource(this.url);
		this.es = es;
		es.onopen = () => {
			this.attempt = 0;
			this.on.state('open');
		};
		es.onerror = () => {
			if (this.stopped || this.es !== es) return;
			if (es.readyState === EventSource.CONNECTING) {
				// The browser retries by itself, with Last-Event-ID.
				this.on.state('reconnecting');
				return;
			}
			es.close();
			this.es = null;
			this.on.state('reconnecting');
			const delay = backoffMs(this.attempt++);
			this.retryTimer = setTimeout(() => {
				this.retryTimer = null;
				if (!this.stopped) this.open();
			}, delay);
		};
		for (const name of this.protocol.events) {
			es.addEventListener(name, (ev: MessageEvent<string>) => {
				try {
					this.on.message(this.protocol.decode(name, ev.lastEventId, ev.data));
				} catch (e) {
					if (e instanceof DecodeError || e instanceof SyntaxError) this.on.bad(name, e);
					else throw e;
				}
			});
		}
	}
}
