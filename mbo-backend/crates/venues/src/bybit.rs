//! Bybit v5 public `orderbook.{depth}.{symbol}` and `publicTrade.{symbol}`.
//!
//! ## Protocol rules enforced (`shared/docs/crypto-venues.md`)
//!
//! * `type: "snapshot"` replaces the book (this also covers `u == 1`, the snapshot Bybit
//!   sends after a service restart, and level-1's unchanged re-push).
//! * `type: "delta"`: size `"0"` deletes, other sizes set the level. Only applied to a live
//!   book, and only when `u == previous u + 1`; a delta with `u <= previous u` is a duplicate
//!   (dropped); any other `u` is a gap: book stale, resubscribe requested.
//! * A delta before the first snapshot, or while stale, is dropped.
//! * `seq` (cross sequence) must increase; a repeat or decrease is counted in
//!   [`Counters::seq_regressions`](crate::Counters) (not a gap: it is not continuous).
//! * `publicTrade`: `S` is the taker side.
//!
//! ## Fast path (book frames)
//!
//! With `serde_json`, a book frame was parsed twice (the envelope's `RawValue` `data` walks
//! the whole frame, then `BookData` parses it again into two `Vec`s of pairs): half of a
//! frame's cost. Book frames first go through the crate's allocation-free scanner
//! (`crate::scan`, the same one as Kraken's), which converts each level with the same
//! `wire::level` into a reused buffer:
//!
//! `{"topic":"orderbook.…","type":"snapshot"|"delta","ts":N,"data":{..},"cts":N}` whose
//! `data` has `s`, `b`, `a`, `u` and `seq`, levels `["price","size"]` of plain strings;
//! keys in any order (`ts`, `cts`, `b`, `a`, `seq` optional), JSON whitespace anywhere.
//!
//! Anything else is parsed by `serde_json` exactly as before: trades and control frames,
//! unknown, repeated or `null` keys (`ts`/`cts` are taken only as plain unsigned integers,
//! so that the ignored value is known to be valid JSON), strings with escapes, numbers that
//! are not plain unsigned integers where `u64`s are read, and anything malformed. Both paths
//! share the apply code (`apply_book`) and convert bids before asks whatever the key order,
//! so events come out in the same order; tests feed every recorded frame and many mutated
//! ones to both and require identical events, books and counters.

use std::ops::Range;

use serde::Deserialize;

use crate::book::{Level, Side};
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::scan::{Cur, LevelScan};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::Venue;
use crate::wire::{self, Pair};

#[cfg(test)]
mod fast_tests;

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow)]
    topic: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    data: Option<&'a serde_json::value::RawValue>,
    op: Option<&'a str>,
}

#[derive(Deserialize)]
struct BookData<'a> {
    #[serde(borrow)]
    s: &'a str,
    #[serde(borrow, default)]
    b: Vec<Pair<'a>>,
    #[serde(borrow, default)]
    a: Vec<Pair<'a>>,
    u: u64,
    seq: Option<u64>,
}

#[derive(Deserialize)]
struct TradeData<'a> {
    #[serde(rename = "T")]
    time: Option<u64>,
    #[serde(borrow)]
    s: &'a str,
    #[serde(borrow, rename = "S")]
    side: Option<&'a str>,
    #[serde(borrow)]
    v: &'a str,
    #[serde(borrow)]
    p: &'a str,
}

/// A book frame the fast scanner took: what `BookData` and the envelope give the apply
/// code (the levels are in the [`LevelScan`]).
struct Scanned<'a> {
    snapshot: bool,
    symbol: &'a str,
    u: u64,
    seq: Option<u64>,
}

/// Scans a book frame (see the module doc) into `levels`; `None` when the frame is anything
/// else or outside the scanner's subset (the caller then parses it with `serde_json`).
fn scan_book<'a>(frame: &'a str, levels: &mut LevelScan) -> Option<Scanned<'a>> {
    levels.clear();
    let mut c = Cur::new(frame);
    let (mut topic, mut kind, mut data) = (None, None, None);
    let (mut ts, mut cts) = (false, false);
    c.object(|c, key| {
        match key {
            "topic" if topic.is_none() => topic = Some(c.string()?),
            "type" if kind.is_none() => kind = Some(c.string()?),
            "data" if data.is_none() => data = Some(book_data(c, levels)?),
            // Ignored by `Msg`: taken only as values the scanner reads in full.
            "ts" if !ts => {
                ts = true;
                c.plain_u64()?;
            }
            "cts" if !cts => {
                cts = true;
                c.plain_u64()?;
            }
            _ => return None,
        }
        Some(())
    })?;
    if !c.at_end() || !topic?.starts_with("orderbook.") {
        return None;
    }
    let snapshot = match kind? {
        "snapshot" => true,
        "delta" => false,
        _ => return None,
    };
    let (symbol, u, seq) = data?;
    Some(Scanned {
        snapshot,
        symbol,
        u,
        seq,
    })
}

/// `{"s":..,"b":[..],"a":[..],"u":N,"seq":N}`, keys in any order: `(s, u, seq)`.
#[allow(clippy::type_complexity)]
fn book_data<'a>(c: &mut Cur<'a>, levels: &mut LevelScan) -> Option<(&'a str, u64, Option<u64>)> {
    let (mut s, mut u, mut seq) = (None, None, None);
    let (mut b, mut a): (Option<Range<usize>>, Option<Range<usize>>) = (None, None);
    c.object(|c, key| {
        match key {
            "s" if s.is_none() => s = Some(c.string()?),
            "b" if b.is_none() => b = Some(c.pairs(Side::Bid, levels)?),
            "a" if a.is_none() => a = Some(c.pairs(Side::Ask, levels)?),
            "u" if u.is_none() => u = Some(c.plain_u64()?),
            "seq" if seq.is_none() => seq = Some(c.plain_u64()?),
            _ => return None,
        }
        Some(())
    })?;
    if let (Some(b), Some(a)) = (&b, &a) {
        levels.bids_first(b, a);
    }
    Some((s?, u?, seq))
}

/// Bybit v5 synchroniser.
#[derive(Debug, Clone)]
pub struct Bybit {
    books: Books,
    counters: VenueCounters,
    scratch: Vec<(Side, i64, Level)>,
    /// Book frames go through [`scan_book`] first (off only in tests, to compare).
    fast_path: bool,
    scan: LevelScan,
}

impl Bybit {
    /// A new synchroniser.
    #[must_use]
    pub fn new(books: Books) -> Self {
        Self {
            books,
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

    fn on_book(&mut self, snapshot: bool, data: &str, out: &mut Vec<Event>) {
        let Ok(d) = serde_json::from_str::<BookData<'_>>(data) else {
            self.counters.bad_frames += 1;
            return;
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        let mut skipped = 0;
        if wire::levels(Side::Bid, &d.b, &mut scratch, &mut skipped)
            .and_then(|()| wire::levels(Side::Ask, &d.a, &mut scratch, &mut skipped))
            .is_err()
        {
            self.counters.bad_frames += 1;
        } else {
            self.apply_book(snapshot, d.s, d.u, d.seq, &scratch, skipped, out);
        }
        self.scratch = scratch;
    }

    /// A frame [`scan_book`] took: the same steps as [`Self::on_book`] from the level check
    /// on (the scanner has parsed and converted everything before it).
    fn on_book_scanned(&mut self, b: &Scanned<'_>, scan: &LevelScan, out: &mut Vec<Event>) {
        if scan.bad_number {
            self.counters.bad_frames += 1;
            return;
        }
        self.apply_book(
            b.snapshot,
            b.symbol,
            b.u,
            b.seq,
            &scan.levels,
            scan.skipped,
            out,
        );
    }

    /// Applies a book message's converted `levels` (bids, then asks) under the sequence
    /// rules: shared by both parsing paths.
    #[allow(clippy::too_many_arguments)]
    fn apply_book(
        &mut self,
        snapshot: bool,
        symbol: &str,
        u: u64,
        seq: Option<u64>,
        levels: &[(Side, i64, Level)],
        skipped: u64,
        out: &mut Vec<Event>,
    ) {
        let Some(id) = self.books.id(symbol) else {
            self.counters.bad_frames += 1;
            return;
        };
        let book = self.books.at(id);
        book.counters.messages += 1;
        book.counters.unrepresentable_levels += skipped;
        if let Some(seq) = seq {
            if book.last_seq.is_some_and(|last| seq <= last) {
                book.counters.seq_regressions += 1;
            }
            book.last_seq = Some(seq);
        }
        if snapshot {
            book.book.clear();
            book.state = SyncState::Live;
            out.push(Event::Snapshot { book: id });
        } else {
            if book.state != SyncState::Live {
                book.counters.dropped += 1;
                return;
            }
            if u <= book.last_id {
                book.counters.dropped += 1;
                return;
            }
            if u != book.last_id + 1 {
                book.counters.gaps += 1;
                book.counters.resyncs += 1;
                book.state = SyncState::Stale;
                out.push(Event::ResyncNeeded {
                    book: id,
                    reason: ResyncReason::Gap {
                        expected: book.last_id + 1,
                        got: u,
                    },
                });
                return;
            }
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
        book.last_id = u;
        book.note_applied();
        out.push(Event::Applied { book: id });
    }

    fn on_trades(&mut self, data: &str, out: &mut Vec<Event>) {
        let Ok(trades) = serde_json::from_str::<Vec<TradeData<'_>>>(data) else {
            self.counters.bad_frames += 1;
            return;
        };
        for t in &trades {
            let (Some(id), Ok((price, level))) = (self.books.id(t.s), wire::level(t.p, t.v)) else {
                self.counters.bad_frames += 1;
                continue;
            };
            self.books.at(id).counters.trades += 1;
            out.push(Event::Trade(Trade {
                book: id,
                side: match t.side {
                    Some("Buy") => Aggressor::Buy,
                    Some("Sell") => Aggressor::Sell,
                    _ => Aggressor::Unknown,
                },
                price,
                qty: level.qty,
                venue_time_ns: t.time.map_or(0, wire::ms_to_ns),
            }));
        }
    }
}

impl Venue for Bybit {
    fn name(&self) -> &'static str {
        "bybit"
    }

    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>) {
        self.counters.frames += 1;
        if self.fast_path {
            // The scan buffer is taken out for the call so the books can be borrowed.
            let mut scan = std::mem::take(&mut self.scan);
            let taken = scan_book(frame, &mut scan);
            if let Some(b) = &taken {
                self.on_book_scanned(b, &scan, out);
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
        match (m.topic, m.kind, m.data) {
            (Some(t), Some(kind @ ("snapshot" | "delta")), Some(data))
                if t.starts_with("orderbook.") =>
            {
                self.on_book(kind == "snapshot", data.get(), out);
            }
            (Some(t), _, Some(data)) if t.starts_with("publicTrade.") => {
                self.on_trades(data.get(), out);
            }
            (None, _, _) if m.op.is_some() => self.counters.control += 1,
            _ => self.counters.bad_frames += 1,
        }
    }

    fn on_reconnect(&mut self) {
        self.books.mark_all_syncing();
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
