//! Shared by the integration tests: the naive reference book, a record builder, and
//! comparisons of an engine [`Book`] against a [`RefBook`].
#![allow(dead_code)]

pub mod reference;

use std::ffi::c_char;

use dbn::MboMsg;
use mbo_book::{Book, Side};

pub use reference::*;

/// Fields of one MBO record; [`Msg::build`] makes the `dbn::MboMsg`.
#[derive(Debug, Clone, Copy)]
pub struct Msg {
    /// Databento instrument id.
    pub instrument_id: u32,
    /// Databento publisher id.
    pub publisher_id: u16,
    /// `A`, `C`, `M`, `R`, `T`, `F`, `N`.
    pub action: u8,
    /// `B`, `A` or `N`.
    pub side: u8,
    /// Venue order id.
    pub order_id: u64,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Size.
    pub size: u32,
    /// Raw flags.
    pub flags: u8,
    /// `ts_event`, ns.
    pub ts_event: u64,
    /// `ts_recv`, ns.
    pub ts_recv: u64,
    /// Venue sequence.
    pub sequence: u32,
}

impl Default for Msg {
    fn default() -> Self {
        Msg {
            instrument_id: 1,
            publisher_id: 1,
            action: b'A',
            side: b'B',
            order_id: 0,
            price: UNDEF,
            size: 0,
            flags: F_LAST,
            ts_event: 0,
            ts_recv: 0,
            sequence: 0,
        }
    }
}

impl Msg {
    /// The record.
    pub fn build(&self) -> MboMsg {
        MboMsg {
            hd: dbn::RecordHeader::new::<MboMsg>(
                0xA0,
                self.publisher_id,
                self.instrument_id,
                self.ts_event,
            ),
            order_id: self.order_id,
            price: self.price,
            size: self.size,
            flags: dbn::FlagSet::new(self.flags),
            channel_id: 0,
            action: self.action as c_char,
            side: self.side as c_char,
            ts_recv: self.ts_recv,
            ts_in_delta: 0,
            sequence: self.sequence,
        }
    }
}

/// A record of book `(1, 1)`: `action`, `side`, `order_id`, `price`, `size`, `flags`.
pub fn rec(action: u8, side: u8, order_id: u64, price: i64, size: u32, flags: u8) -> MboMsg {
    Msg {
        action,
        side,
        order_id,
        price,
        size,
        flags,
        ..Msg::default()
    }
    .build()
}

/// The engine's side for a reference side.
pub fn engine_side(side: RefSide) -> Side {
    match side {
        RefSide::Bid => Side::Bid,
        RefSide::Ask => Side::Ask,
    }
}

/// `(price, size, count)` of the engine's levels of `side`, best first, at most `limit`.
pub fn engine_depth(book: &Book, side: RefSide, limit: Option<usize>) -> Vec<(i64, u64, u32)> {
    book.levels(engine_side(side))
        .take(limit.unwrap_or(usize::MAX))
        .map(|l| (l.price, l.size, l.count))
        .collect()
}

/// `(price, size, count)` of the reference's levels of `side`, best first, at most `limit`.
///
/// Full depth is recomputed from the reference's orders; a limited depth comes from its
/// running totals (checked against the orders by `compare_full`).
pub fn ref_depth(book: &RefBook, side: RefSide, limit: Option<usize>) -> Vec<(i64, u64, u32)> {
    match limit {
        Some(n) => book.top(side, n),
        None => book.depth(side),
    }
    .into_iter()
    .map(|l| (l.price, l.size, l.count))
    .collect()
}

/// Compares the top `limit` levels of both sides (all when `None`), the order count and
/// "crossed".
pub fn compare_depth(book: &Book, r: &RefBook, limit: Option<usize>) -> Result<(), String> {
    for side in [RefSide::Bid, RefSide::Ask] {
        let e = engine_depth(book, side, limit);
        let x = ref_depth(r, side, limit);
        if e != x {
            return Err(format!(
                "{side:?} depth differs (limit {limit:?}):\n engine    {e:?}\n reference {x:?}"
            ));
        }
    }
    if book.order_count() != r.order_count() {
        return Err(format!(
            "order_count: engine {} reference {}",
            book.order_count(),
            r.order_count()
        ));
    }
    if book.is_crossed() != r.is_crossed() {
        return Err(format!(
            "is_crossed: engine {} reference {}",
            book.is_crossed(),
            r.is_crossed()
        ));
    }
    Ok(())
}

/// Compares full depth, every queue (ids, sizes and priority timestamps in order), the order
/// count, "crossed", level counts and the engine's integrity.
pub fn compare_full(book: &Book, r: &RefBook) -> Result<(), String> {
    book.check_integrity()
        .map_err(|e| format!("integrity: {e}"))?;
    r.self_check()?;
    compare_depth(book, r, None)?;
    for side in [RefSide::Bid, RefSide::Ask] {
        let es = engine_side(side);
        let queues = r.queues(side);
        if book.level_count(es) != queues.len() {
            return Err(format!(
                "{side:?} level_count: engine {} reference {}",
                book.level_count(es),
                queues.len()
            ));
        }
        for (price, q) in &queues {
            let e: Vec<(u64, u32, u64)> = book
                .level_orders(es, *price)
                .map(|o| {
                    debug_assert_eq!(o.side, es);
                    (o.order_id, o.size, o.ts_priority)
                })
                .collect();
            let x: Vec<(u64, u32, u64)> = q
                .iter()
                .map(|o| (o.order_id, o.size, o.ts_priority))
                .collect();
            if e != x {
                return Err(format!(
                    "{side:?} queue at {price} differs (order_id, size, ts_priority):\n engine    {e:?}\n reference {x:?}"
                ));
            }
        }
    }
    Ok(())
}

/// Compares every order the reference holds with `Book::order` and `Book::queue_position`.
pub fn compare_orders(book: &Book, r: &RefBook) -> Result<(), String> {
    for side in [RefSide::Bid, RefSide::Ask] {
        for (_, q) in r.queues(side) {
            for (pos, o) in q.iter().enumerate() {
                if o.aggregated {
                    // A TOB/MBP level is not an order: it has no id lookup to compare.
                    continue;
                }
                let Some(e) = book.order(o.order_id) else {
                    return Err(format!("order {} missing from the engine", o.order_id));
                };
                let got = (e.side, e.price, e.size, e.ts_priority);
                let want = (engine_side(o.side), o.price, o.size, o.ts_priority);
                if got != want {
                    return Err(format!(
                        "order {}: engine {got:?} reference {want:?}",
                        o.order_id
                    ));
                }
                if book.queue_position(o.order_id) != Some(pos) {
                    return Err(format!(
                        "order {}: engine queue position {:?}, reference {pos}",
                        o.order_id,
                        book.queue_position(o.order_id)
                    ));
                }
            }
        }
    }
    Ok(())
}
