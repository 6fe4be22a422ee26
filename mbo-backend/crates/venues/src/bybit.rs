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

use serde::Deserialize;

use crate::book::Side;
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::Venue;
use crate::wire::{self, Pair};

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

/// Bybit v5 synchroniser.
#[derive(Debug, Clone)]
pub struct Bybit {
    books: Books,
    counters: VenueCounters,
    scratch: Vec<(Side, i64, crate::book::Level)>,
}

impl Bybit {
    /// A new synchroniser.
    #[must_use]
    pub fn new(books: Books) -> Self {
        Self {
            books,
            counters: VenueCounters::default(),
            scratch: Vec::new(),
        }
    }

    fn on_book(&mut self, snapshot: bool, data: &str, out: &mut Vec<Event>) {
        let Ok(d) = serde_json::from_str::<BookData<'_>>(data) else {
            self.counters.bad_frames += 1;
            return;
        };
        self.scratch.clear();
        let mut skipped = 0;
        if wire::levels(Side::Bid, &d.b, &mut self.scratch, &mut skipped)
            .and_then(|()| wire::levels(Side::Ask, &d.a, &mut self.scratch, &mut skipped))
            .is_err()
        {
            self.counters.bad_frames += 1;
            return;
        }
        let Some(id) = self.books.id(d.s) else {
            self.counters.bad_frames += 1;
            return;
        };
        let book = self.books.at(id);
        book.counters.messages += 1;
        book.counters.unrepresentable_levels += skipped;
        if let Some(seq) = d.seq {
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
            if d.u <= book.last_id {
                book.counters.dropped += 1;
                return;
            }
            if d.u != book.last_id + 1 {
                book.counters.gaps += 1;
                book.counters.resyncs += 1;
                book.state = SyncState::Stale;
                out.push(Event::ResyncNeeded {
                    book: id,
                    reason: ResyncReason::Gap {
                        expected: book.last_id + 1,
                        got: d.u,
                    },
                });
                return;
            }
        }
        for &(side, price, level) in &self.scratch {
            book.book.set(side, price, level);
            out.push(Event::Level {
                book: id,
                side,
                price,
                qty: level.qty,
            });
        }
        book.last_id = d.u;
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
