/** REST calls to `mbo serve` (same origin: served by it, or proxied by `npm run dev`). */
import { countCryptoBooks, decodeInstruments, decodeLevelQueue, decodeStatus } from './decode';
import { parseJsonExact } from './json';
import type { BookSide, Instrument, LevelQueue, ReplayStatus, VenuesInfo } from './types';
import { decodeVenues } from './venue-decode';
import type { Speed } from './timeline';

export class ApiError extends Error {
	override name = 'ApiError';
	constructor(
		readonly status: number,
		message: string
	) {
		super(message);
	}
}

async function getJson(url: string, init?: RequestInit): Promise<unknown> {
	const res = await fetch(url, { headers: { accept: 'application/json' }, ...init });
	const text = await res.text();
	if (!res.ok) {
		// The server's errors are {"error":{"code","message"}} (the venues API's
		// {"error":"unknown_symbol","message":...}); show the message when there is one.
		let msg = `${res.status} ${res.statusText}`;
		try {
			const v = JSON.parse(text) as { error?: unknown; message?: unknown };
			const e = v.error;
			if (typeof e === 'object' && e !== null && typeof (e as { message?: unknown }).message === 'string')
				msg = (e as { message: string }).message;
			else if (typeof v.message === 'string') msg = v.message;
			else if (typeof e === 'string') msg = e;
		} catch {
			/* not JSON: keep the status line */
		}
		throw new ApiError(res.status, msg);
	}
	return parseJsonExact(text);
}

/** The MBO instruments, and how many crypto books the server also lists (the venues view's). */
export async function fetchInstruments(): Promise<{ instruments: Instrument[]; cryptoBooks: number }> {
	const v = await getJson('/api/v1/instruments');
	return { instruments: decodeInstruments(v), cryptoBooks: countCryptoBooks(v) };
}

export async function fetchReplay(): Promise<ReplayStatus> {
	return decodeStatus(await getJson('/api/v1/replay'));
}

export type ReplayCommand =
	| { action: 'play' }
	| { action: 'pause' }
	| { action: 'seek'; ts: bigint }
	| { action: 'speed'; speed: Speed };

export async function sendReplay(cmd: ReplayCommand): Promise<ReplayStatus> {
	// ns timestamps go as strings: JSON numbers would be rounded to a double on the way.
	const body = cmd.action === 'seek' ? { action: 'seek', ts: cmd.ts.toString() } : cmd;
	return decodeStatus(
		await getJson('/api/v1/replay', {
			method: 'POST',
			headers: { 'content-type': 'application/json', accept: 'application/json' },
			body: JSON.stringify(body)
		})
	);
}

export async function fetchLevel(symbol: string, side: BookSide, price: bigint, signal?: AbortSignal): Promise<LevelQueue> {
	const q = new URLSearchParams({ side, price: price.toString() });
	return decodeLevelQueue(
		await getJson(`/api/v1/book/${encodeURIComponent(symbol)}/level?${q.toString()}`, signal ? { signal } : undefined)
	);
}

export function streamUrl(symbol: string, depth: number, intervalMs: number): string {
	const q = new URLSearchParams({ symbol, depth: String(depth), interval_ms: String(intervalMs) });
	return `/api/v1/stream?${q.toString()}`;
}

/**
 * The crypto venues the server runs (`venues` empty when it runs none). A server without the
 * venues API (404) runs none either.
 */
export async function fetchVenues(signal?: AbortSignal): Promise<VenuesInfo> {
	try {
		return decodeVenues(await getJson('/api/v1/venues', signal ? { signal } : undefined));
	} catch (e) {
		if (e instanceof ApiError && e.status === 404) return { serverTs: 0n, symbols: [], venues: [] };
		throw e;
	}
}

export function venuesStreamUrl(symbol: string, depth: number, intervalMs: number): string {
	const q = new URLSearchParams({ symbol, depth: String(depth), interval_ms: String(intervalMs) });
	return `/api/v1/stream/venues?${q.toString()}`;
}
