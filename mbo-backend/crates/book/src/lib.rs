//! # mbo-book: the exact L3 order-book engine
//!
//! Rebuilds market-by-order books from Databento [`MboMsg`] records, following the rules in
//! `shared/docs/mbo-book.md` (the contract). The engine is pure: no I/O, no async, no clock.
//! Feeds hand it records; servers and exporters read it at event boundaries.
//!
//! ## Design
//!
//! * A [`Market`] holds one [`Book`] per [`BookKey`] `(instrument_id, publisher_id)` and routes
//!   each record to its book (a one-entry cache makes single-instrument streams skip hashing).
//! * A [`Book`] stores orders in a slab (`Vec` plus free list) and links each price level's
//!   queue as an intrusive doubly linked list through slab indices, so an order can be removed
//!   or re-queued from anywhere in its queue in O(1). An open-addressing `order_id → slot`
//!   table (`order_index`) finds orders in one probe sequence.
//! * Each side is a price ladder (`ladder`): a tick-indexed array of level slots, so finding,
//!   creating and removing a level is O(1) and the best level is a cached index; sides whose
//!   prices span too wide a range fall back to a sorted vector.
//! * Nothing is freed in steady state: slabs, ladders and the hash map keep their capacity,
//!   including across [`Market::reset`], so applying a record allocates nothing once the book
//!   has reached its working size.
//!
//! ## Event boundaries
//!
//! Only after a record carrying `F_LAST` is a book consistent. [`Market::apply`] returns an
//! [`Applied`] that says whether the record closed an event for its book; callers publish,
//! snapshot or check "crossed" only then. The book keeps the boundary's `event_index` (the
//! record's 0-based position in the stream), `ts_event`, `ts_recv` and `sequence`.
//!
//! ## Rules implemented (see `mbo-book.md`)
//!
//! | action | effect |
//! |---|---|
//! | `A` | append at the back of the queue at its price; a duplicate id replaces the old order (counted) |
//! | `C` | subtract `size`; remove at zero; unknown order: counted, ignored; over-cancel removes (counted) |
//! | `M` | price change, side change or size increase: back of the new queue; size decrease: keeps place; size 0: removes; unknown order: treated as `A` (counted) |
//! | `R` | clears the book (and the maybe-bad-book flag unless the clear carries it) |
//! | `T` `F` `N` | counted, no book change |
//!
//! `F_TOB`/`F_MBP` records (top-of-book or aggregated level, not orders): an `A` with either flag
//! replaces its whole side with one level (or empties the side when the price is undefined),
//! as Databento documents; the book reports [`Book::aggregated_sides`] so nobody mistakes it for
//! L3 data. `F_MAYBE_BAD_BOOK` sets [`Book::maybe_bad_book`] until the next clear.
//!
//! Crossed books are data: [`Book::is_crossed`] reports them (best bid ≥ best ask) and nothing
//! ever matches orders away.
#![deny(missing_docs)]

mod book;
mod counters;
mod error;
mod ladder;
mod market;
mod order_index;
mod side;
mod slab;

pub use book::{Book, BookKey, BookState, LevelView, OrderView};
pub use counters::{ActionCounts, Counters};
pub use error::IntegrityError;
pub use market::{Applied, Market};
pub use side::Side;

/// Re-export of the record type the engine consumes.
pub use dbn::MboMsg;

/// The price value Databento uses for "no price" (`i64::MAX`).
pub const UNDEF_PRICE: i64 = dbn::UNDEF_PRICE;

/// Formats a 1e-9 fixed-point price as a decimal string with no trailing zeros
/// (`3_512_250_000_000` → `"3512.25"`). Exact: no floating point is involved.
pub fn format_price(price: i64) -> String {
    let mut out = String::with_capacity(24);
    write_price(&mut out, price);
    out
}

/// Appends the decimal form of a 1e-9 fixed-point price to `out` (see [`format_price`]).
pub fn write_price(out: &mut String, price: i64) {
    use std::fmt::Write;
    let neg = price < 0;
    let abs = price.unsigned_abs();
    let int = abs / 1_000_000_000;
    let mut frac = abs % 1_000_000_000;
    if neg {
        out.push('-');
    }
    // Writing to a String cannot fail.
    let _ = write!(out, "{int}");
    if frac != 0 {
        let mut digits = 9;
        while frac % 10 == 0 {
            frac /= 10;
            digits -= 1;
        }
        let _ = write!(out, ".{frac:0digits$}");
    }
}
