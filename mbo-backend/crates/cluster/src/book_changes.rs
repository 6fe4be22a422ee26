//! Book changes per instrument: what an L2 consumer of the ingest reads from NATS.
//!
//! For each record batch the publisher applies to its replica, every book that reached an
//! event boundary gets, in event order, the levels the event changed (price, new total size
//! and order count, `0, 0` when the level is gone) and its trades. One message per book per
//! batch on `mbo.book.{instrument_id}` (stream `MBO_BOOKS`), JSON:
//!
//! ```json
//! {"epoch":3,"instrument_id":432669,"publisher_id":1,"reset":false,
//!  "events":[{"i":1041,"ts_recv":1758742200400562968,"clear":false,
//!             "levels":[["B",64820000000,12,3]],"trades":[[1040,64830000000,6,"A"]]}]}
//! ```
//!
//! A level is named only from the records themselves (an add's price, a cancel's or a
//! modify's old and new price, looked up in the replica before the record is applied), so no
//! diff of the book is needed and nothing is missed at any depth. After a reset the first
//! message of each book says `"reset":true` and lists every level of the book (empty after
//! a plain reset; the restored levels after a seek from a checkpoint): consumers replace
//! their book with it.

use std::fmt::Write as _;

use dbn::MboMsg;
use mbo_book::{Book, BookKey, Market, Side};

/// Stream of book changes.
pub const BOOKS_STREAM: &str = "MBO_BOOKS";

/// Subject of one instrument's book changes.
pub fn subject(instrument_id: u32) -> String {
    format!("mbo.book.{instrument_id}")
}

/// Changes of one book since its last message.
#[derive(Debug, Default)]
struct Pending {
    key: Option<BookKey>,
    /// Events in JSON, comma-separated.
    events: String,
    /// Levels touched in the open event.
    touched: Vec<(Side, i64)>,
    clear: bool,
    trades: String,
    reset: bool,
}

/// Collects book changes while the publisher applies records to its replica.
#[derive(Debug, Default)]
pub struct BookChanges {
    books: Vec<Pending>,
}

fn side_code(side: Side) -> char {
    match side {
        Side::Bid => 'B',
        Side::Ask => 'A',
    }
}

fn side_of(code: u8) -> Option<Side> {
    match code {
        b'B' => Some(Side::Bid),
        b'A' => Some(Side::Ask),
        _ => None,
    }
}

impl BookChanges {
    fn pending(&mut self, key: BookKey) -> &mut Pending {
        let i = match self.books.iter().position(|p| p.key == Some(key)) {
            Some(i) => i,
            None => {
                self.books.push(Pending {
                    key: Some(key),
                    ..Pending::default()
                });
                self.books.len() - 1
            }
        };
        &mut self.books[i]
    }

    /// Applies `r` to `market`, noting what it changes.
    pub fn apply(&mut self, market: &mut Market, r: &MboMsg) {
        let key = BookKey {
            instrument_id: r.hd.instrument_id,
            publisher_id: r.hd.publisher_id,
        };
        let before = match r.action as u8 {
            b'C' | b'M' => market
                .book(key)
                .and_then(|b| b.order(r.order_id))
                .map(|o| (o.side, o.price)),
            _ => None,
        };
        let applied = market.apply(r);
        let p = self.pending(key);
        match r.action as u8 {
            b'A' | b'M' => {
                if let Some(side) = side_of(r.side as u8) {
                    p.touched.push((side, r.price));
                }
            }
            b'R' => {
                p.clear = true;
                p.touched.clear();
            }
            b'T' => {
                if !p.trades.is_empty() {
                    p.trades.push(',');
                }
                let side = if (r.side as u8).is_ascii_alphabetic() {
                    r.side as u8 as char
                } else {
                    'N'
                };
                let _ = write!(
                    p.trades,
                    "[{},{},{},\"{side}\"]",
                    applied.index, r.price, r.size
                );
            }
            _ => {}
        }
        if let Some(old) = before {
            p.touched.push(old);
        }
        if applied.boundary {
            if let Some(book) = market.book(key) {
                self.close_event(key, book, Some(applied.index), r.ts_recv);
            }
        }
    }

    fn close_event(&mut self, key: BookKey, book: &Book, index: Option<u64>, ts_recv: u64) {
        let p = self.pending(key);
        p.touched
            .sort_unstable_by_key(|&(s, price)| (s as u8, price));
        p.touched.dedup();
        if !p.events.is_empty() {
            p.events.push(',');
        }
        match index {
            Some(i) => {
                let _ = write!(p.events, "{{\"i\":{i}");
            }
            None => p.events.push_str("{\"i\":null"),
        }
        let _ = write!(
            p.events,
            ",\"ts_recv\":{ts_recv},\"clear\":{},\"levels\":[",
            p.clear
        );
        for (n, &(side, price)) in p.touched.iter().enumerate() {
            let (size, count) = book
                .level(side, price)
                .map_or((0, 0), |l| (l.size, l.count));
            if n > 0 {
                p.events.push(',');
            }
            let _ = write!(p.events, "[\"{}\",{price},{size},{count}]", side_code(side));
        }
        let _ = write!(p.events, "],\"trades\":[{}]}}", p.trades);
        p.touched.clear();
        p.trades.clear();
        p.clear = false;
    }

    /// After a reset: every book's next message replaces the consumer's book with all of
    /// its levels.
    pub fn reset(&mut self, market: &Market) {
        self.books.clear();
        for book in market.books() {
            let key = book.key();
            let p = self.pending(key);
            p.reset = true;
            p.touched = book
                .levels(Side::Bid)
                .map(|l| (Side::Bid, l.price))
                .chain(book.levels(Side::Ask).map(|l| (Side::Ask, l.price)))
                .collect();
            let state = *book.state();
            self.close_event(key, book, state.event_index, state.ts_recv);
        }
    }

    /// The messages of the books that changed: `(key, payload)`; clears them.
    pub fn take(&mut self, epoch: u64) -> Vec<(BookKey, String)> {
        let mut out = Vec::new();
        for p in &mut self.books {
            let Some(key) = p.key else { continue };
            if p.events.is_empty() {
                continue;
            }
            let json = format!(
                "{{\"epoch\":{epoch},\"instrument_id\":{},\"publisher_id\":{},\"reset\":{},\"events\":[{}]}}",
                key.instrument_id, key.publisher_id, p.reset, p.events
            );
            p.events.clear();
            p.reset = false;
            out.push((key, json));
        }
        out
    }
}
