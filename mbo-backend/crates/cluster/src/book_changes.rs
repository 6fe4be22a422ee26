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
    events: Vec<u8>,
    /// Levels touched in the open event.
    touched: Vec<(Side, i64)>,
    clear: bool,
    /// Trades of the open event in JSON, comma-separated.
    trades: Vec<u8>,
    reset: bool,
}

/// Collects book changes while the publisher applies records to its replica.
#[derive(Debug, Default)]
pub struct BookChanges {
    books: Vec<Pending>,
}

fn side_code(side: Side) -> u8 {
    match side {
        Side::Bid => b'B',
        Side::Ask => b'A',
    }
}

fn side_of(code: u8) -> Option<Side> {
    match code {
        b'B' => Some(Side::Bid),
        b'A' => Some(Side::Ask),
        _ => None,
    }
}

/// Appends a number (itoa: the hot path writes several per record).
fn num(out: &mut Vec<u8>, v: impl itoa::Integer) {
    out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
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
                    p.trades.push(b',');
                }
                let side = r.side as u8;
                let side = if side.is_ascii_alphabetic() {
                    side
                } else {
                    b'N'
                };
                p.trades.push(b'[');
                num(&mut p.trades, applied.index);
                p.trades.push(b',');
                num(&mut p.trades, r.price);
                p.trades.push(b',');
                num(&mut p.trades, r.size);
                p.trades.extend_from_slice(&[b',', b'"', side, b'"', b']']);
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
        let out = &mut p.events;
        if !out.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"i\":");
        match index {
            Some(i) => num(out, i),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ts_recv\":");
        num(out, ts_recv);
        out.extend_from_slice(if p.clear {
            b",\"clear\":true,\"levels\":["
        } else {
            b",\"clear\":false,\"levels\":["
        });
        for (n, &(side, price)) in p.touched.iter().enumerate() {
            let (size, count) = book
                .level(side, price)
                .map_or((0, 0), |l| (l.size, l.count));
            if n > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&[b'[', b'"', side_code(side), b'"', b',']);
            num(out, price);
            out.push(b',');
            num(out, size);
            out.push(b',');
            num(out, count);
            out.push(b']');
        }
        out.extend_from_slice(b"],\"trades\":[");
        out.extend_from_slice(&p.trades);
        out.extend_from_slice(b"]}");
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
    pub fn take(&mut self, epoch: u64) -> Vec<(BookKey, Vec<u8>)> {
        let mut out = Vec::new();
        for p in &mut self.books {
            let Some(key) = p.key else { continue };
            if p.events.is_empty() {
                continue;
            }
            let mut json = Vec::with_capacity(p.events.len() + 128);
            json.extend_from_slice(b"{\"epoch\":");
            num(&mut json, epoch);
            json.extend_from_slice(b",\"instrument_id\":");
            num(&mut json, key.instrument_id);
            json.extend_from_slice(b",\"publisher_id\":");
            num(&mut json, key.publisher_id);
            json.extend_from_slice(if p.reset {
                b",\"reset\":true,\"events\":["
            } else {
                b",\"reset\":false,\"events\":["
            });
            json.extend_from_slice(&p.events);
            json.extend_from_slice(b"]}");
            p.events.clear();
            p.reset = false;
            out.push((key, json));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dbn::{FlagSet, RecordHeader};

    fn rec(action: u8, side: u8, price: i64, size: u32, order_id: u64, last: bool) -> MboMsg {
        MboMsg {
            hd: RecordHeader::new::<MboMsg>(dbn::rtype::MBO, 1, 7, 0),
            order_id,
            price,
            size,
            flags: if last {
                FlagSet::empty().set_last()
            } else {
                FlagSet::empty()
            },
            channel_id: 0,
            action: action as std::ffi::c_char,
            side: side as std::ffi::c_char,
            ts_recv: 10,
            ts_in_delta: 0,
            sequence: 0,
        }
    }

    #[test]
    fn events_name_every_level_they_change_with_its_new_totals() {
        let mut market = Market::new();
        let mut changes = BookChanges::default();
        changes.apply(&mut market, &rec(b'A', b'B', 100, 5, 1, false));
        changes.apply(&mut market, &rec(b'A', b'B', 100, 2, 2, true));
        // A modify that moves order 1 to 101: both levels change.
        changes.apply(&mut market, &rec(b'M', b'B', 101, 5, 1, true));
        // A trade, then the cancel of order 2 empties level 100.
        changes.apply(&mut market, &rec(b'T', b'A', 101, 1, 0, false));
        changes.apply(&mut market, &rec(b'C', b'B', 100, 2, 2, true));
        let out = changes.take(4);
        assert_eq!(out.len(), 1);
        let v: serde_json::Value = serde_json::from_slice(&out[0].1).unwrap();
        assert_eq!(v["epoch"], 4);
        assert_eq!(v["instrument_id"], 7);
        let ev = v["events"].as_array().unwrap();
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[0]["i"], 1);
        assert_eq!(ev[0]["levels"], serde_json::json!([["B", 100, 7, 2]]));
        assert_eq!(
            ev[1]["levels"],
            serde_json::json!([["B", 100, 2, 1], ["B", 101, 5, 1]])
        );
        assert_eq!(ev[2]["levels"], serde_json::json!([["B", 100, 0, 0]]));
        assert_eq!(ev[2]["trades"], serde_json::json!([[3, 101, 1, "A"]]));
        assert!(changes.take(4).is_empty(), "taken once");
        changes.reset(&market);
        let v: serde_json::Value = serde_json::from_slice(&changes.take(5)[0].1).unwrap();
        assert_eq!(v["reset"], true);
        assert_eq!(
            v["events"][0]["levels"],
            serde_json::json!([["B", 101, 5, 1]])
        );
    }
}
