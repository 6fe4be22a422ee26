//! Checkpoints of real books decode to exactly the book's orders, in priority order, and
//! restore to the same book.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use mbo_book::{Book, Market, OrderView, Side};
use mbo_store::{decode_checkpoint, encode_checkpoint};

fn orders(book: &Book) -> Vec<OrderView> {
    let mut out = Vec::new();
    for side in [Side::Bid, Side::Ask] {
        for level in book.levels(side) {
            out.extend(book.level_orders(side, level.price));
        }
    }
    out
}

#[test]
fn clx5_books_round_trip_at_many_points() {
    let (records, _) = common::read_file("CLX5_mbo.dbn");
    let mut market = Market::new();
    let step = records.len() / 9;
    let mut checked = 0;
    let mut max_orders = 0;
    for (i, rec) in records.iter().enumerate() {
        let applied = market.apply(rec);
        if applied.boundary && (i % step < 50 || i + 1 == records.len()) && checked < 400 {
            let book = market.book(applied.key).unwrap();
            let expected = orders(book);
            let blob = encode_checkpoint(book);
            let decoded = decode_checkpoint(&blob).unwrap();
            assert_eq!(decoded.orders, expected, "at record {i}");
            assert_eq!(decoded.state, *book.state(), "at record {i}");
            // The restored book is the same book: levels, queues, state, integrity.
            let restored = decoded.into_book(applied.key);
            restored.check_integrity().unwrap();
            assert_eq!(orders(&restored), expected, "at record {i}");
            assert_eq!(restored.state(), book.state());
            for side in [Side::Bid, Side::Ask] {
                assert!(restored.levels(side).eq(book.levels(side)), "at record {i}");
            }
            max_orders = max_orders.max(expected.len());
            if !expected.is_empty() {
                // Compact: well under the 8+8+4+8+1 = 29 bytes of a raw order.
                assert!(
                    blob.len() < expected.len() * 16 + 64,
                    "{} bytes for {} orders",
                    blob.len(),
                    expected.len()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 9, "{checked}");
    assert!(max_orders > 10, "books were non-trivial: {max_orders}");
}
