//! Binance spot (and Binance US, same protocol) and Binance USD-M futures diff-depth sync.
//!
//! ## Protocol rules enforced (`shared/docs/crypto-venues.md`)
//!
//! * `depthUpdate` events (raw or combined-stream `{"stream","data"}`) are buffered per symbol
//!   until a REST snapshot (`{"lastUpdateId","bids","asks"}`) arrives through
//!   [`Venue::on_rest_snapshot`].
//! * Snapshot too old (spot: `lastUpdateId + 1 < U` of the first buffered event; futures:
//!   `lastUpdateId < U`): [`ResyncReason::SnapshotTooOld`], fetch again, keep buffering.
//! * Spot: events with `u <= lastUpdateId` are dropped; the first applied event must span
//!   `lastUpdateId + 1` (`U <= lastUpdateId + 1 <= u`); every later one must have
//!   `U == previous u + 1`, anything else is a gap.
//! * USD-M futures: events with `u < lastUpdateId` are dropped; the first applied event has
//!   `U <= lastUpdateId <= u`; every later one must have `pu == previous u`.
//! * A gap marks the book stale, requests a resync (new REST snapshot) and starts buffering
//!   again from the event that showed it.
//! * Sizes are absolute; `"0"` removes the level.
//! * `trade`/`aggTrade`: `m` = buyer is the maker, so the aggressor sold.
//!
//! ## Fast path (`depthUpdate` frames)
//!
//! With `serde_json`, a combined-stream frame was parsed three times over (the envelope's
//! `RawValue` `data`, the inner `Msg` with `RawValue` level lists, then each list into a
//! `Vec` of pairs) and each diff built its own `Vec` of levels. Depth frames first go through
//! the crate's allocation-free scanner (`crate::scan`, the same one as Kraken's), which
//! converts each level with the same `wire::level` into a reused buffer:
//!
//! * `{"stream":"…","data":{..}}` (combined streams) or the `{..}` alone (raw streams),
//! * whose object has `"e":"depthUpdate"`, `s`, `U`, `u`, `b`, `a` and optionally `E`,
//!   `T` and `pu` (futures), levels `["price","size"]` of plain strings;
//!
//! keys in any order, JSON whitespace anywhere. Anything else is parsed by `serde_json`
//! exactly as before: other events (trades, tickers, klines), control replies, unknown,
//! repeated or `null` keys (`stream`, `E` and `T` are taken only as plain strings or
//! unsigned integers, so an ignored value is known to be valid JSON and a read one is the
//! `u64` `serde_json` reads), strings with escapes, and anything malformed. Both paths share
//! the sequence code (`apply_depth`, `process`) and convert bids before asks whatever the
//! key order; a live book applies a diff straight from the buffer (a diff is copied only
//! when it has to be buffered). Tests feed every recorded frame and many mutated ones to
//! both and require identical events, books and counters.

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::{Level, Side};
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::scan::{Cur, LevelScan};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::Venue;
use crate::wire::{self, Pair};

#[cfg(test)]
mod fast_tests;

/// Diffs buffered per symbol while waiting for a snapshot before giving up (a resync).
pub const MAX_BUFFERED: usize = 10_000;

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    #[serde(borrow)]
    e: Option<&'a str>,
    #[serde(borrow)]
    s: Option<&'a str>,
    #[serde(rename = "U")]
    first: Option<u64>,
    u: Option<u64>,
    pu: Option<u64>,
    #[serde(borrow)]
    b: Option<&'a RawValue>,
    #[serde(borrow)]
    a: Option<&'a RawValue>,
    #[serde(borrow)]
    p: Option<&'a str>,
    #[serde(borrow)]
    q: Option<&'a str>,
    #[serde(rename = "T")]
    trade_time: Option<u64>,
    m: Option<bool>,
    result: Option<&'a RawValue>,
    id: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Snapshot<'a> {
    #[serde(rename = "lastUpdateId")]
    last_update_id: u64,
    #[serde(borrow)]
    bids: Vec<Pair<'a>>,
    #[serde(borrow)]
    asks: Vec<Pair<'a>>,
}

/// A diff's update ids: `U`, `u` and (futures) `pu`.
#[derive(Debug, Clone, Copy)]
struct Head {
    first: u64,
    last: u64,
    prev: Option<u64>,
}

#[derive(Debug, Clone)]
struct Diff {
    head: Head,
    levels: Vec<(Side, i64, Level)>,
}

/// A `depthUpdate` the fast scanner took (its levels are in the [`LevelScan`]).
struct Scanned<'a> {
    symbol: &'a str,
    head: Head,
}

/// The keys of a depth event object, as scanned.
#[derive(Default)]
struct DepthKeys<'a> {
    e: Option<&'a str>,
    event_time: bool,
    time: bool,
    s: Option<&'a str>,
    first: Option<u64>,
    last: Option<u64>,
    prev: Option<u64>,
    b: Option<Range<usize>>,
    a: Option<Range<usize>>,
}

impl<'a> DepthKeys<'a> {
    /// Reads the value of `key`; `None` for a key `Msg` would not read the same way.
    fn key(&mut self, c: &mut Cur<'a>, key: &str, levels: &mut LevelScan) -> Option<()> {
        match key {
            "e" if self.e.is_none() => self.e = Some(c.string()?),
            // Ignored by `Msg`: taken only as a value the scanner reads in full.
            "E" if !self.event_time => {
                self.event_time = true;
                c.plain_u64()?;
            }
            // `Msg` reads it as a `u64` (a trade's time) even on depth events.
            "T" if !self.time => {
                self.time = true;
                c.plain_u64()?;
            }
            "s" if self.s.is_none() => self.s = Some(c.string()?),
            "U" if self.first.is_none() => self.first = Some(c.plain_u64()?),
            "u" if self.last.is_none() => self.last = Some(c.plain_u64()?),
            "pu" if self.prev.is_none() => self.prev = Some(c.plain_u64()?),
            "b" if self.b.is_none() => self.b = Some(c.pairs(Side::Bid, levels)?),
            "a" if self.a.is_none() => self.a = Some(c.pairs(Side::Ask, levels)?),
            _ => return None,
        }
        Some(())
    }

    /// Whether any key was read.
    fn any(&self) -> bool {
        self.e.is_some()
            || self.event_time
            || self.time
            || self.s.is_some()
            || self.first.is_some()
            || self.last.is_some()
            || self.prev.is_some()
            || self.b.is_some()
            || self.a.is_some()
    }
}

/// Scans a `depthUpdate` frame (see the module doc) into `levels`; `None` when the frame is
/// anything else or outside the scanner's subset (the caller then parses it with
/// `serde_json`).
fn scan_depth<'a>(frame: &'a str, levels: &mut LevelScan) -> Option<Scanned<'a>> {
    levels.clear();
    let mut c = Cur::new(frame);
    let (mut top, mut data) = (DepthKeys::default(), None);
    let mut stream = false;
    c.object(|c, key| match key {
        "stream" if !stream => {
            stream = true;
            c.string().map(drop)
        }
        "data" if data.is_none() => {
            let mut d = DepthKeys::default();
            c.object(|c, key| d.key(c, key, levels))?;
            data = Some(d);
            Some(())
        }
        _ => top.key(c, key, levels),
    })?;
    if !c.at_end() {
        return None;
    }
    // Either the envelope (`stream` and `data` only) or the event alone.
    let k = match data {
        Some(d) if !top.any() => d,
        None if !stream => top,
        _ => return None,
    };
    if k.e != Some("depthUpdate") {
        return None;
    }
    if let (Some(b), Some(a)) = (&k.b, &k.a) {
        levels.bids_first(b, a);
    }
    Some(Scanned {
        symbol: k.s?,
        head: Head {
            first: k.first?,
            last: k.last?,
            prev: k.prev,
        },
    })
}

#[derive(Debug, Clone, Default)]
struct SyncExtra {
    buffer: Vec<Diff>,
    /// A snapshot was loaded and its bridging event is not applied yet.
    pending_first: bool,
}

/// Binance diff-depth synchroniser (spot or USD-M futures rules).
#[derive(Debug, Clone)]
pub struct Binance {
    futures: bool,
    books: Books,
    extra: Vec<SyncExtra>,
    counters: VenueCounters,
    scratch: Vec<(Side, i64, Level)>,
    /// Depth frames go through [`scan_depth`] first (off only in tests, to compare).
    fast_path: bool,
    scan: LevelScan,
}

impl Binance {
    /// Spot rules (also Binance US).
    #[must_use]
    pub fn spot(books: Books) -> Self {
        Self::with(books, false)
    }

    /// USD-M futures rules (`pu`).
    #[must_use]
    pub fn futures(books: Books) -> Self {
        Self::with(books, true)
    }

    fn with(books: Books, futures: bool) -> Self {
        Self {
            futures,
            books,
            extra: Vec::new(),
            counters: VenueCounters::default(),
            scratch: Vec::new(),
            fast_path: true,
            scan: LevelScan::default(),
        }
    }

    /// The same synchroniser with every frame parsed by `serde_json` (`false`), to compare.
    #[cfg(test)]
    pub(crate) fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    fn extra(&mut self, id: usize) -> &mut SyncExtra {
        if self.extra.len() <= id {
            self.extra.resize_with(id + 1, SyncExtra::default);
        }
        &mut self.extra[id]
    }

    fn on_msg(&mut self, m: &Msg<'_>, out: &mut Vec<Event>) {
        match m.e {
            Some("depthUpdate") => self.on_depth(m, out),
            Some("trade" | "aggTrade") => self.on_trade(m, out),
            Some(_) => self.counters.control += 1,
            None if m.result.is_some() || m.id.is_some() => self.counters.control += 1,
            None => self.counters.bad_frames += 1,
        }
    }

    fn on_trade(&mut self, m: &Msg<'_>, out: &mut Vec<Event>) {
        let (Some(s), Some(p), Some(q)) = (m.s, m.p, m.q) else {
            self.counters.bad_frames += 1;
            return;
        };
        let Some(id) = self.books.id(s) else {
            self.counters.bad_frames += 1;
            return;
        };
        let Ok((price, level)) = wire::level(p, q) else {
            self.counters.bad_frames += 1;
            return;
        };
        self.books.at(id).counters.trades += 1;
        out.push(Event::Trade(Trade {
            book: id,
            side: match m.m {
                Some(true) => Aggressor::Sell,
                Some(false) => Aggressor::Buy,
                None => Aggressor::Unknown,
            },
            price,
            qty: level.qty,
            venue_time_ns: m.trade_time.map_or(0, wire::ms_to_ns),
        }));
    }

    fn on_depth(&mut self, m: &Msg<'_>, out: &mut Vec<Event>) {
        let (Some(s), Some(first), Some(last)) = (m.s, m.first, m.u) else {
            self.counters.bad_frames += 1;
            return;
        };
        if self.futures && m.pu.is_none() {
            self.counters.bad_frames += 1;
            return;
        }
        let Some(id) = self.books.id(s) else {
            self.counters.bad_frames += 1;
            return;
        };
        let mut levels = std::mem::take(&mut self.scratch);
        levels.clear();
        let mut skipped = 0;
        let parsed = (|| -> Option<()> {
            for (side, raw) in [(Side::Bid, m.b), (Side::Ask, m.a)] {
                if let Some(raw) = raw {
                    let pairs: Vec<Pair<'_>> = serde_json::from_str(raw.get()).ok()?;
                    wire::levels(side, &pairs, &mut levels, &mut skipped).ok()?;
                }
            }
            Some(())
        })();
        if parsed.is_none() {
            self.counters.bad_frames += 1;
        } else {
            let head = Head {
                first,
                last,
                prev: m.pu,
            };
            self.apply_depth(id, head, &levels, skipped, out);
        }
        self.scratch = levels;
    }

    /// A frame [`scan_depth`] took: the same checks as [`Self::on_depth`] in the same order
    /// (the scanner has parsed and converted everything).
    fn on_depth_scanned(&mut self, d: &Scanned<'_>, scan: &LevelScan, out: &mut Vec<Event>) {
        if self.futures && d.head.prev.is_none() {
            self.counters.bad_frames += 1;
            return;
        }
        let Some(id) = self.books.id(d.symbol) else {
            self.counters.bad_frames += 1;
            return;
        };
        if scan.bad_number {
            self.counters.bad_frames += 1;
            return;
        }
        self.apply_depth(id, d.head, &scan.levels, scan.skipped, out);
    }

    /// Applies (live book) or buffers a diff's converted `levels` (bids, then asks): shared
    /// by both parsing paths.
    fn apply_depth(
        &mut self,
        id: usize,
        head: Head,
        levels: &[(Side, i64, Level)],
        skipped: u64,
        out: &mut Vec<Event>,
    ) {
        let c = &mut self.books.at(id).counters;
        c.messages += 1;
        c.unrepresentable_levels += skipped;
        if self.books.at(id).state == SyncState::Live {
            self.process(id, head, levels, out);
        } else {
            let levels = levels.to_vec();
            self.buffer(id, Diff { head, levels }, out);
        }
    }

    fn buffer(&mut self, id: usize, diff: Diff, out: &mut Vec<Event>) {
        let extra = self.extra(id);
        extra.buffer.push(diff);
        if extra.buffer.len() > MAX_BUFFERED {
            let n = extra.buffer.len() as u64;
            extra.buffer.clear();
            let b = self.books.at(id);
            b.counters.dropped += n;
            b.counters.resyncs += 1;
            out.push(Event::ResyncNeeded {
                book: id,
                reason: ResyncReason::BufferOverflow,
            });
        }
    }

    /// Applies one diff to a live book under the sequence rules (a diff that shows a gap is
    /// buffered: only then are its levels copied).
    fn process(
        &mut self,
        id: usize,
        diff: Head,
        levels: &[(Side, i64, Level)],
        out: &mut Vec<Event>,
    ) {
        let futures = self.futures;
        let pending_first = self.extra(id).pending_first;
        let book = self.books.at(id);
        let at = book.last_id;
        let stale = if futures {
            diff.last < at
        } else {
            diff.last <= at
        };
        if stale {
            book.counters.dropped += 1;
            return;
        }
        // Wrapping, as release builds always did: an id of `u64::MAX` (only ever seen in
        // mutated frames) must not panic a debug build.
        let next = at.wrapping_add(1);
        let ok = match (futures, pending_first) {
            (false, true) => diff.first <= next,
            (false, false) => diff.first == next,
            (true, true) => diff.first <= at,
            (true, false) => diff.prev == Some(at),
        };
        if !ok {
            book.counters.gaps += 1;
            book.counters.resyncs += 1;
            book.state = SyncState::Stale;
            let expected = next;
            let got = if futures {
                diff.prev.unwrap_or(diff.first)
            } else {
                diff.first
            };
            out.push(Event::ResyncNeeded {
                book: id,
                reason: ResyncReason::Gap { expected, got },
            });
            let extra = self.extra(id);
            extra.pending_first = false;
            extra.buffer.clear();
            extra.buffer.push(Diff {
                head: diff,
                levels: levels.to_vec(),
            });
            return;
        }
        for &(side, price, level) in levels {
            book.book.set(side, price, level);
            out.push(Event::Level {
                book: id,
                side,
                price,
                qty: level.qty,
            });
        }
        if pending_first {
            book.bridge = Some((diff.first, diff.last, at));
        }
        book.last_id = diff.last;
        book.note_applied();
        out.push(Event::Applied { book: id });
        self.extra(id).pending_first = false;
    }
}

impl Venue for Binance {
    fn name(&self) -> &'static str {
        if self.futures {
            "binance-futures"
        } else {
            "binance"
        }
    }

    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>) {
        self.counters.frames += 1;
        if self.fast_path {
            // The scan buffer is taken out for the call so the books can be borrowed.
            let mut scan = std::mem::take(&mut self.scan);
            let taken = scan_depth(frame, &mut scan);
            if let Some(d) = &taken {
                self.on_depth_scanned(d, &scan, out);
            }
            self.scan = scan;
            if taken.is_some() {
                return;
            }
        }
        let Ok(m) = serde_json::from_str::<Msg<'_>>(frame) else {
            self.counters.bad_frames += 1;
            return;
        };
        match m.data {
            Some(data) => match serde_json::from_str::<Msg<'_>>(data.get()) {
                Ok(inner) => self.on_msg(&inner, out),
                Err(_) => self.counters.bad_frames += 1,
            },
            None => self.on_msg(&m, out),
        }
    }

    fn on_rest_snapshot(&mut self, symbol: &str, body: &str, out: &mut Vec<Event>) {
        let Ok(snap) = serde_json::from_str::<Snapshot<'_>>(body) else {
            self.counters.bad_frames += 1;
            return;
        };
        self.scratch.clear();
        let mut scratch = std::mem::take(&mut self.scratch);
        let mut skipped = 0;
        let parsed = wire::levels(Side::Bid, &snap.bids, &mut scratch, &mut skipped)
            .and_then(|()| wire::levels(Side::Ask, &snap.asks, &mut scratch, &mut skipped));
        let Some(id) = self.books.id(symbol).filter(|_| parsed.is_ok()) else {
            self.counters.bad_frames += 1;
            self.scratch = scratch;
            return;
        };
        let futures = self.futures;
        let l = snap.last_update_id;
        let buffer = std::mem::take(&mut self.extra(id).buffer);
        if let Some(first) = buffer.first() {
            let too_old = if futures {
                l < first.head.first
            } else {
                l.saturating_add(1) < first.head.first
            };
            if too_old {
                self.books.at(id).counters.resyncs += 1;
                self.extra(id).buffer = buffer;
                out.push(Event::ResyncNeeded {
                    book: id,
                    reason: ResyncReason::SnapshotTooOld,
                });
                self.scratch = scratch;
                return;
            }
        }
        let book = self.books.at(id);
        book.counters.unrepresentable_levels += skipped;
        book.book.clear();
        out.push(Event::Snapshot { book: id });
        for &(side, price, level) in &scratch {
            book.book.set(side, price, level);
            out.push(Event::Level {
                book: id,
                side,
                price,
                qty: level.qty,
            });
        }
        book.last_id = l;
        book.state = SyncState::Live;
        out.push(Event::Applied { book: id });
        self.extra(id).pending_first = true;
        self.scratch = scratch;
        for diff in buffer {
            if self.books.at(id).state == SyncState::Live {
                self.process(id, diff.head, &diff.levels, out);
            } else {
                self.extra(id).buffer.push(diff);
            }
        }
    }

    fn on_reconnect(&mut self) {
        self.books.mark_all_syncing();
        for e in &mut self.extra {
            *e = SyncExtra::default();
        }
    }

    fn books(&self) -> &Books {
        &self.books
    }

    fn counters(&self) -> &VenueCounters {
        &self.counters
    }

    fn counters_mut(&mut self) -> &mut VenueCounters {
        &mut self.counters
    }
}
