//! Coinbase Advanced Trade `level2` / `market_trades`, and the legacy Exchange feed's
//! `snapshot` / `l2update` / `match` (the format of the recordings).
//!
//! ## Protocol rules enforced (`shared/docs/crypto-venues.md`)
//!
//! * Advanced Trade: every envelope carries `sequence_num`, a per-connection counter across
//!   channels. A jump (`sequence_num != previous + 1`) means a dropped message: every live
//!   book of the connection is marked stale and a resubscribe is requested (the lost message
//!   may have been for any product). A repeated or older number is a duplicate and dropped.
//! * `snapshot` events (both formats) replace the book; `update` / `l2update` set absolute
//!   sizes (`"0"` removes) and are applied only to a live book (dropped before the snapshot
//!   or while stale).
//! * The legacy `level2` channel has no sequence numbers, so no gap can be detected there;
//!   only ordering (no update before its snapshot) is enforced.
//! * Trades: Advanced Trade `side` is taken as the aggressor side; legacy `match` `side` is the
//!   maker's, so the aggressor is the opposite.
//!
//! ## Fast path (legacy book frames)
//!
//! `serde_json` walked every key generically and built a `Vec` of changes per frame.
//! Legacy book frames, nearly all of the legacy feed's traffic, first go through the
//! crate's allocation-free scanner (`crate::scan`, the same one as Kraken's), which converts
//! each level with the same `wire::level` into a reused buffer:
//!
//! * `{"type":"l2update","product_id":..,"changes":[["buy"|"sell","price","size"],..],
//!   "time":".."}`;
//! * `{"type":"snapshot","product_id":..,"bids":[["price","size"],..],"asks":[..]}`;
//!
//! keys in any order (`time` optional), JSON whitespace anywhere, every element a plain
//! string. Anything else is parsed by `serde_json` exactly as before: Advanced Trade frames
//! (they carry `channel`), trades, tickers and control frames, unknown, repeated or `null`
//! keys, strings with escapes, and anything malformed. Both paths share the apply code
//! (`apply`) and convert bids before asks (snapshots) or changes in frame order, so events
//! come out in the same order; tests feed every recorded frame and many mutated ones to both
//! and require identical events, books and counters.

use std::ops::Range;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::{Level, Side};
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::scan::{Cur, LevelScan};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::Venue;
use crate::wire::{self, Pair, Triple};

#[cfg(test)]
mod fast_tests;

/// A legacy book frame the fast scanner took (its levels are in the [`LevelScan`]).
struct Scanned<'a> {
    snapshot: bool,
    product: &'a str,
}

/// Scans a legacy `l2update` or `snapshot` frame (see the module doc) into `levels`; `None`
/// when the frame is anything else or outside the scanner's subset (the caller then parses
/// it with `serde_json`).
fn scan_legacy<'a>(frame: &'a str, levels: &mut LevelScan) -> Option<Scanned<'a>> {
    levels.clear();
    let mut c = Cur::new(frame);
    let (mut kind, mut product, mut time) = (None, None, false);
    let (mut changes, mut bids, mut asks): (bool, Option<Range<usize>>, Option<Range<usize>>) =
        (false, None, None);
    c.object(|c, key| {
        match key {
            "type" if kind.is_none() => kind = Some(c.string()?),
            "product_id" if product.is_none() => product = Some(c.string()?),
            // `Msg` borrows it as a string (never parsed for book frames).
            "time" if !time => {
                time = true;
                c.string()?;
            }
            "changes" if !changes => {
                changes = true;
                c.array(|c| change(c, levels))?;
            }
            "bids" if bids.is_none() => bids = Some(c.pairs(Side::Bid, levels)?),
            "asks" if asks.is_none() => asks = Some(c.pairs(Side::Ask, levels)?),
            _ => return None,
        }
        Some(())
    })?;
    if !c.at_end() {
        return None;
    }
    // Only the keys `serde_json`'s path reads for the frame's type.
    let snapshot = match kind? {
        "l2update" if changes && bids.is_none() && asks.is_none() => false,
        "snapshot" if !changes => true,
        _ => return None,
    };
    if let (Some(b), Some(a)) = (&bids, &asks) {
        levels.bids_first(b, a);
    }
    Some(Scanned {
        snapshot,
        product: product?,
    })
}

/// `["buy"|"sell","price","size"]` (further elements plain strings, as `Triple` ignores
/// them) converted into `levels`; any other side makes the frame bad, as in `on_legacy`.
fn change(c: &mut Cur<'_>, levels: &mut LevelScan) -> Option<()> {
    let mut parts: [Option<&str>; 3] = [None; 3];
    let mut n = 0;
    c.array(|c| {
        let s = c.string()?;
        if let Some(p) = parts.get_mut(n) {
            *p = Some(s);
        }
        n += 1;
        Some(())
    })?;
    let [Some(side), Some(price), Some(qty)] = parts else {
        return None;
    };
    match side {
        "buy" => levels.push(Side::Bid, price, qty),
        "sell" => levels.push(Side::Ask, price, qty),
        _ => levels.bad_number = true,
    }
    Some(())
}

#[derive(Deserialize)]
struct Msg<'a> {
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    channel: Option<&'a str>,
    sequence_num: Option<u64>,
    #[serde(borrow)]
    events: Option<&'a RawValue>,
    #[serde(borrow)]
    product_id: Option<&'a str>,
    #[serde(borrow)]
    bids: Option<Vec<Pair<'a>>>,
    #[serde(borrow)]
    asks: Option<Vec<Pair<'a>>>,
    #[serde(borrow)]
    changes: Option<Vec<Triple<'a>>>,
    #[serde(borrow)]
    price: Option<&'a str>,
    #[serde(borrow)]
    size: Option<&'a str>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    time: Option<&'a str>,
}

#[derive(Deserialize)]
struct L2Event<'a> {
    #[serde(borrow, rename = "type")]
    kind: &'a str,
    #[serde(borrow)]
    product_id: &'a str,
    #[serde(borrow, default)]
    updates: Vec<L2Update<'a>>,
}

#[derive(Deserialize)]
struct L2Update<'a> {
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    price_level: &'a str,
    #[serde(borrow)]
    new_quantity: &'a str,
}

#[derive(Deserialize)]
struct TradesEvent<'a> {
    #[serde(borrow, default)]
    trades: Vec<AtTrade<'a>>,
}

#[derive(Deserialize)]
struct AtTrade<'a> {
    #[serde(borrow)]
    product_id: &'a str,
    #[serde(borrow)]
    price: &'a str,
    #[serde(borrow)]
    size: &'a str,
    #[serde(borrow)]
    side: &'a str,
    #[serde(borrow)]
    time: Option<&'a str>,
}

/// Coinbase synchroniser (both formats).
#[derive(Debug, Clone)]
pub struct Coinbase {
    books: Books,
    counters: VenueCounters,
    last_seq: Option<u64>,
    scratch: Vec<(Side, i64, Level)>,
    /// Legacy book frames go through [`scan_legacy`] first (off only in tests, to compare).
    fast_path: bool,
    scan: LevelScan,
}

impl Coinbase {
    /// A new synchroniser.
    #[must_use]
    pub fn new(books: Books) -> Self {
        Self {
            books,
            counters: VenueCounters::default(),
            last_seq: None,
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

    /// A frame [`scan_legacy`] took: the same steps as [`Self::on_legacy`] (the scanner has
    /// parsed and converted everything), applied by the same code.
    fn on_legacy_scanned(&mut self, b: &Scanned<'_>, scan: &mut LevelScan, out: &mut Vec<Event>) {
        if scan.bad_number {
            self.counters.bad_frames += 1;
            return;
        }
        // `apply` reads `scratch`: lend it the scanned levels (no copy), then take them back.
        std::mem::swap(&mut self.scratch, &mut scan.levels);
        self.apply(b.product, b.snapshot, scan.skipped, out);
        std::mem::swap(&mut self.scratch, &mut scan.levels);
    }

    /// Applies `self.scratch` to a product's book.
    fn apply(&mut self, product: &str, snapshot: bool, skipped: u64, out: &mut Vec<Event>) {
        let Some(id) = self.books.id(product) else {
            self.counters.bad_frames += 1;
            return;
        };
        let b = self.books.at(id);
        b.counters.messages += 1;
        b.counters.unrepresentable_levels += skipped;
        if snapshot {
            b.book.clear();
            b.state = SyncState::Live;
            out.push(Event::Snapshot { book: id });
        } else if b.state != SyncState::Live {
            b.counters.dropped += 1;
            return;
        }
        for &(side, price, level) in &self.scratch {
            b.book.set(side, price, level);
            out.push(Event::Level {
                book: id,
                side,
                price,
                qty: level.qty,
            });
        }
        b.note_applied();
        out.push(Event::Applied { book: id });
    }

    fn trade(
        &mut self,
        product: &str,
        price: &str,
        size: &str,
        side: Aggressor,
        time: Option<&str>,
        out: &mut Vec<Event>,
    ) {
        let (Some(id), Ok((price, level))) = (self.books.id(product), wire::level(price, size))
        else {
            self.counters.bad_frames += 1;
            return;
        };
        self.books.at(id).counters.trades += 1;
        out.push(Event::Trade(Trade {
            book: id,
            side,
            price,
            qty: level.qty,
            venue_time_ns: time.and_then(wire::rfc3339_ns).unwrap_or(0),
        }));
    }

    fn on_legacy(&mut self, m: &Msg<'_>, kind: &str, out: &mut Vec<Event>) {
        match kind {
            "snapshot" | "l2update" => {
                let Some(product) = m.product_id else {
                    self.counters.bad_frames += 1;
                    return;
                };
                self.scratch.clear();
                let mut ok = true;
                let mut skipped = 0;
                if kind == "snapshot" {
                    for (side, list) in [(Side::Bid, &m.bids), (Side::Ask, &m.asks)] {
                        if let Some(list) = list {
                            ok &= wire::levels(side, list, &mut self.scratch, &mut skipped).is_ok();
                        }
                    }
                } else if let Some(changes) = &m.changes {
                    for c in changes {
                        let side = match c.0 {
                            "buy" => Side::Bid,
                            "sell" => Side::Ask,
                            _ => {
                                ok = false;
                                break;
                            }
                        };
                        match wire::level(c.1, c.2) {
                            Ok((price, level)) => self.scratch.push((side, price, level)),
                            Err(e) if wire::unrepresentable(c.1, e) => skipped += 1,
                            Err(_) => ok = false,
                        }
                    }
                } else {
                    ok = false;
                }
                if ok {
                    self.apply(product, kind == "snapshot", skipped, out);
                } else {
                    self.counters.bad_frames += 1;
                }
            }
            "match" | "last_match" => {
                let (Some(product), Some(price), Some(size)) = (m.product_id, m.price, m.size)
                else {
                    self.counters.bad_frames += 1;
                    return;
                };
                // The maker's side: the aggressor is the other one.
                let side = match m.side {
                    Some("buy") => Aggressor::Sell,
                    Some("sell") => Aggressor::Buy,
                    _ => Aggressor::Unknown,
                };
                self.trade(product, price, size, side, m.time, out);
            }
            "subscriptions" | "heartbeat" | "ticker" | "status" | "error" | "received" | "open"
            | "done" | "change" | "activate" => self.counters.control += 1,
            _ => self.counters.bad_frames += 1,
        }
    }

    fn on_sequence(&mut self, seq: u64, out: &mut Vec<Event>) -> bool {
        if let Some(last) = self.last_seq {
            if seq <= last {
                self.counters.control += 1;
                return false;
            }
            if seq != last + 1 {
                self.counters.connection_gaps += 1;
                for (id, b) in self.books.all_mut().iter_mut().enumerate() {
                    if b.state == SyncState::Live {
                        b.state = SyncState::Stale;
                        b.counters.gaps += 1;
                        b.counters.resyncs += 1;
                        out.push(Event::ResyncNeeded {
                            book: id,
                            reason: ResyncReason::Gap {
                                expected: last + 1,
                                got: seq,
                            },
                        });
                    }
                }
            }
        }
        self.last_seq = Some(seq);
        true
    }

    fn on_advanced(&mut self, channel: &str, events: Option<&RawValue>, out: &mut Vec<Event>) {
        match channel {
            "l2_data" => {
                let Some(Ok(events)) =
                    events.map(|e| serde_json::from_str::<Vec<L2Event<'_>>>(e.get()))
                else {
                    self.counters.bad_frames += 1;
                    return;
                };
                for e in &events {
                    self.scratch.clear();
                    let mut skipped = 0;
                    let mut ok = matches!(e.kind, "snapshot" | "update");
                    for u in &e.updates {
                        let side = match u.side {
                            "bid" => Side::Bid,
                            "offer" | "ask" => Side::Ask,
                            _ => {
                                ok = false;
                                break;
                            }
                        };
                        match wire::level(u.price_level, u.new_quantity) {
                            Ok((price, level)) => self.scratch.push((side, price, level)),
                            Err(e) if wire::unrepresentable(u.price_level, e) => skipped += 1,
                            Err(_) => ok = false,
                        }
                    }
                    if ok {
                        self.apply(e.product_id, e.kind == "snapshot", skipped, out);
                    } else {
                        self.counters.bad_frames += 1;
                    }
                }
            }
            "market_trades" => {
                let Some(Ok(events)) =
                    events.map(|e| serde_json::from_str::<Vec<TradesEvent<'_>>>(e.get()))
                else {
                    self.counters.bad_frames += 1;
                    return;
                };
                for e in &events {
                    for t in &e.trades {
                        let side = match t.side {
                            "BUY" => Aggressor::Buy,
                            "SELL" => Aggressor::Sell,
                            _ => Aggressor::Unknown,
                        };
                        self.trade(t.product_id, t.price, t.size, side, t.time, out);
                    }
                }
            }
            "heartbeats" | "subscriptions" | "ticker" | "ticker_batch" | "status" | "candles"
            | "user" => self.counters.control += 1,
            _ => self.counters.bad_frames += 1,
        }
    }
}

impl Venue for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>) {
        self.counters.frames += 1;
        if self.fast_path {
            // The scan buffer is taken out for the call so the books can be borrowed.
            let mut scan = std::mem::take(&mut self.scan);
            let taken = scan_legacy(frame, &mut scan);
            if let Some(b) = &taken {
                self.on_legacy_scanned(b, &mut scan, out);
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
        if let Some(channel) = m.channel {
            if let Some(seq) = m.sequence_num {
                if !self.on_sequence(seq, out) {
                    return;
                }
            }
            self.on_advanced(channel, m.events, out);
        } else if let Some(kind) = m.kind {
            self.on_legacy(&m, kind, out);
        } else {
            self.counters.bad_frames += 1;
        }
    }

    fn on_reconnect(&mut self) {
        self.last_seq = None;
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
