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

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::{Level, Side};
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::Venue;
use crate::wire::{self, Pair};

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

#[derive(Debug, Clone)]
struct Diff {
    first: u64,
    last: u64,
    prev: Option<u64>,
    levels: Vec<(Side, i64, Level)>,
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
        }
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
        let mut levels = Vec::new();
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
            return;
        }
        let c = &mut self.books.at(id).counters;
        c.messages += 1;
        c.unrepresentable_levels += skipped;
        let diff = Diff {
            first,
            last,
            prev: m.pu,
            levels,
        };
        if self.books.at(id).state == SyncState::Live {
            self.process(id, diff, out);
        } else {
            self.buffer(id, diff, out);
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

    /// Applies one diff to a live book under the sequence rules.
    fn process(&mut self, id: usize, diff: Diff, out: &mut Vec<Event>) {
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
        let ok = match (futures, pending_first) {
            (false, true) => diff.first <= at + 1,
            (false, false) => diff.first == at + 1,
            (true, true) => diff.first <= at,
            (true, false) => diff.prev == Some(at),
        };
        if !ok {
            book.counters.gaps += 1;
            book.counters.resyncs += 1;
            book.state = SyncState::Stale;
            let expected = at + 1;
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
            extra.buffer.push(diff);
            return;
        }
        for &(side, price, level) in &diff.levels {
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
                l < first.first
            } else {
                l.saturating_add(1) < first.first
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
                self.process(id, diff, out);
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
