import { describe, expect, it } from 'vitest';
import { decodeCryptoBook } from './venue-decode';
import { parseJsonExact } from './json';
import {
	allVenues,
	bookBadge,
	buildVenueLadder,
	connBadge,
	crossedLabel,
	formatLatencyNs,
	formatRate,
	gapAge,
	stackSegments,
	venueColor,
	venueNames,
	venueOrder,
	venueSlots
} from './venue-view';
import type { CryptoLevel } from './types';

const level = (price: bigint, size: string, venues: [string, string][]): CryptoLevel => ({ price, priceText: String(price), size, venues });

describe('venue colours', () => {
	it('colours every venue: connections, venue books and those the consolidated book names', () => {
		const all = allVenues(['kraken'], [
			{ venue: 'consolidated', venues: ['kraken', 'okx'] },
			{ venue: 'coinbase', venues: ['coinbase'] }
		]);
		expect(venueOrder(all)).toEqual(['kraken', 'coinbase', 'okx']);
	});

	it('orders known venues first, then the rest by name', () => {
		expect(venueOrder(['zeta', 'coinbase', 'alpha', 'kraken'])).toEqual(['kraken', 'coinbase', 'alpha', 'zeta']);
		expect(venueOrder([])).toEqual([]);
	});

	it('gives known venues a fixed slot whatever else runs, others the remaining slots', () => {
		const a = venueSlots(['coinbase']);
		const b = venueSlots(['bybit', 'coinbase', 'kraken', 'binance', 'okx', 'bitstamp']);
		expect(a.get('coinbase')).toBe(1);
		expect(b.get('coinbase')).toBe(1);
		expect(b.get('kraken')).toBe(0);
		expect(b.get('bybit')).toBe(3);
		expect(b.get('bitstamp')).toBe(4);
		expect(b.get('okx')).toBe(5);
		expect(venueColor(b, 'okx')).toBe('var(--venue-5)');
		const many = venueSlots(['a', 'b', 'c', 'd', 'e']);
		expect([...many.values()]).toEqual([4, 5, 6, 7, 4]);
	});
});

describe('stackSegments', () => {
	it('stacks venue sizes in legend order, widths relative to the largest level', () => {
		const l = level(1n, '2.5', [
			['coinbase', '0.5'],
			['kraken', '2']
		]);
		expect(stackSegments(l, ['kraken', 'coinbase'], 5)).toEqual([
			{ venue: 'kraken', size: '2', start: 0, width: 0.4 },
			{ venue: 'coinbase', size: '0.5', start: 0.4, width: 0.1 }
		]);
	});

	it('puts venues missing from the legend last, skips zero sizes, handles an empty scale', () => {
		const l = level(1n, '3', [
			['okx', '1'],
			['kraken', '0'],
			['coinbase', '2']
		]);
		const s = stackSegments(l, ['kraken', 'coinbase'], 3);
		expect(s.map((x) => x.venue)).toEqual(['coinbase', 'okx']);
		expect(s[1]?.start).toBeCloseTo(2 / 3);
		expect(s[1]?.width).toBeCloseTo(1 / 3);
		expect(stackSegments(l, [], 0)).toEqual([]);
	});

	it('the segments of the largest level fill the bar', () => {
		const l = level(1n, '0.3', [
			['kraken', '0.1'],
			['coinbase', '0.2']
		]);
		const s = stackSegments(l, ['kraken', 'coinbase'], 0.3);
		const last = s[s.length - 1]!;
		expect(last.start + last.width).toBeCloseTo(1, 12);
	});
});

const crossed = decodeCryptoBook(
	parseJsonExact(
		'{"server_ts":10,"symbol":"BTC-USD","venue":"consolidated","native_symbol":null,"epoch":0,"event_index":5,"ts_recv":9,' +
			'"state":"live","stale":false,"best_bid":{"price":30000000000000,"price_decimal":"30000","size":"1","venue":"kraken"},' +
			'"best_ask":{"price":29999000000000,"price_decimal":"29999","size":"3","venue":"coinbase"},"spread":-1000000000,' +
			'"spread_decimal":"-1","mid":29999500000000,"mid_decimal":"29999.5","crossed":true,' +
			'"crossed_venues":{"bid_venue":"kraken","ask_venue":"coinbase"},"venues":["kraken","coinbase"],"bid_levels":2,"ask_levels":2,' +
			'"bids":[{"price":30000000000000,"price_decimal":"30000","size":"1","venues":{"kraken":"1"}},' +
			'{"price":29998000000000,"price_decimal":"29998","size":"4","venues":{"kraken":"1.5","coinbase":"2.5"}}],' +
			'"asks":[{"price":29999000000000,"price_decimal":"29999","size":"3","venues":{"coinbase":"3"}},' +
			'{"price":30001000000000,"price_decimal":"30001","size":"2","venues":{"kraken":"2"}}]}'
	)
);

describe('buildVenueLadder', () => {
	it('keeps a crossed book as sent, names the best venues and stacks bars', () => {
		const l = buildVenueLadder(crossed, 10, ['kraken', 'coinbase']);
		expect(l.maxSize).toBe(4);
		expect(l.asks.map((r) => r.priceText)).toEqual(['30001', '29999']);
		expect(l.bids.map((r) => r.priceText)).toEqual(['30000', '29998']);
		// Crossed: the best bid is above the best ask, and both are there.
		expect(l.bids[0]!.price > l.asks[1]!.price).toBe(true);
		expect(l.bids[0]?.bestVenues).toEqual(['kraken']);
		expect(l.asks[1]?.bestVenues).toEqual(['coinbase']);
		expect(l.asks[0]?.bestVenues).toEqual([]);
		expect(l.bids[1]?.segments).toEqual([
			{ venue: 'kraken', size: '1.5', start: 0, width: 0.375 },
			{ venue: 'coinbase', size: '2.5', start: 0.375, width: 0.625 }
		]);
		expect(l.bids[1]?.size).toBe('4');
		expect(l.bids[1]?.breakdown).toBe('kraken 1.5 · coinbase 2.5');
		expect(l.bids[0]?.key).toBe('B30000');
		expect(crossedLabel(crossed)).toBe('crossed: kraken bid ≥ coinbase ask');
	});

	it('names every venue at a shared best price', () => {
		const shared = { ...crossed, bestBid: { ...crossed.bestBid!, venue: 'kraken,coinbase' }, crossedVenues: { bidVenue: 'kraken,coinbase', askVenue: 'coinbase' } };
		expect(buildVenueLadder(shared, 10, []).bids[0]?.bestVenues).toEqual(['kraken', 'coinbase']);
		expect(crossedLabel(shared)).toBe('crossed: kraken + coinbase bid ≥ coinbase ask');
		expect(venueNames('')).toEqual([]);
	});

	it('cuts to depth and handles an empty book', () => {
		const l = buildVenueLadder(crossed, 1, ['kraken', 'coinbase']);
		expect(l.bids).toHaveLength(1);
		expect(l.asks).toHaveLength(1);
		expect(l.maxSize).toBe(3);
		const empty = buildVenueLadder({ ...crossed, bids: [], asks: [], bestBid: null, bestAsk: null, crossed: false, crossedVenues: null }, 10, []);
		expect(empty).toEqual({ asks: [], bids: [], maxSize: 0 });
		expect(crossedLabel({ ...crossed, crossed: false })).toBeNull();
	});
});

describe('badges', () => {
	it('trusts only a live book that is not stale', () => {
		expect(bookBadge('live', false)).toMatchObject({ label: 'live', tone: 'good', trusted: true });
		expect(bookBadge('live', true)).toMatchObject({ label: 'stale', trusted: false });
		expect(bookBadge('syncing', false)).toMatchObject({ label: 'syncing', tone: 'warn', trusted: false });
		expect(bookBadge('syncing', true)).toMatchObject({ label: 'syncing', trusted: false });
		expect(bookBadge('stale', true)).toMatchObject({ label: 'stale', tone: 'bad', trusted: false });
		expect(bookBadge('halted', false)).toMatchObject({ label: 'halted', tone: 'bad', trusted: false });
	});

	it('labels connection states', () => {
		expect(connBadge('live')).toEqual({ label: 'live', tone: 'good' });
		expect(connBadge('subscribing').tone).toBe('warn');
		expect(connBadge('connecting').tone).toBe('warn');
		expect(connBadge('backoff').tone).toBe('bad');
		expect(connBadge('stopped').tone).toBe('bad');
		expect(connBadge('weird')).toEqual({ label: 'weird', tone: 'bad' });
	});
});

describe('formatting', () => {
	it('formats latencies', () => {
		expect(formatLatencyNs(null)).toBe('—');
		expect(formatLatencyNs(850)).toBe('850 ns');
		expect(formatLatencyNs(12_400)).toBe('12.4 µs');
		expect(formatLatencyNs(1_250_000)).toBe('1.25 ms');
		expect(formatLatencyNs(-3_000)).toBe('-3.00 µs');
		expect(formatLatencyNs(3_200_000_000)).toBe('3.20 s');
	});

	it('formats rates and gap ages', () => {
		expect(formatRate(0)).toBe('0');
		expect(formatRate(3.46)).toBe('3.5');
		expect(formatRate(212.4)).toBe('212');
		expect(formatRate(NaN)).toBe('0');
		expect(gapAge(1758742260101385399n, 1758742200101385399n)).toBe('1 min 00 s');
		expect(gapAge(5n, 9n)).toBe('0 ms');
	});
});
