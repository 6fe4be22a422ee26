//! The engine against the naive reference model (`common/reference.rs`) on random record
//! sequences, plus hand-checked scenarios that pin the reference itself to the contract.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::BTreeSet;

use common::*;
use mbo_book::{BookKey, Market};
use proptest::prelude::*;

const TICK: i64 = 250_000_000; // 0.25
const BASE: i64 = 4_000 * 1_000_000_000;

/// One generated record, before it is placed in a book.
#[derive(Debug, Clone, Copy)]
struct Op {
    /// Picks the book among the case's instruments and publishers.
    book: u8,
    action: u8,
    side: u8,
    order_id: u64,
    price: i64,
    size: u32,
    flags: u8,
}

fn action() -> impl Strategy<Value = u8> {
    prop_oneof![
        34 => Just(b'A'),
        20 => Just(b'C'),
        22 => Just(b'M'),
        3 => Just(b'T'),
        3 => Just(b'F'),
        2 => Just(b'N'),
        1 => Just(b'R'),
        1 => Just(b'X'),
    ]
}

fn side() -> impl Strategy<Value = u8> {
    prop_oneof![
        48 => Just(b'B'),
        48 => Just(b'A'),
        3 => Just(b'N'),
        1 => Just(b'Z'),
    ]
}

/// Prices: mostly a few ticks around a base; sometimes far away, off the tick grid, or
/// undefined. With `extreme`, also prices at the ends of the `i64` range (valid: only
/// `i64::MAX` means "no price"). `build` shifts the near-base prices by side.
fn price(extreme: bool) -> impl Strategy<Value = i64> {
    let extremes = if extreme {
        vec![i64::MIN, i64::MIN + 1, i64::MAX - 1]
    } else {
        vec![BASE - 2_000 * TICK]
    };
    prop_oneof![
        360 => (0i64..4).prop_map(|t| BASE + t * TICK),
        12 => Just(UNDEF),
        // Far from the touch but on the grid: negative, zero, positive.
        12 => prop::sample::select(vec![-TICK, 0, TICK, BASE + 5_000 * TICK]),
        // Off the grid: a finer tick (0.05).
        8 => prop::sample::select(vec![BASE + TICK / 5, BASE - 3 * TICK / 5]),
        // Off the grid with a 1e-9 tick over a huge range.
        1 => prop::sample::select(vec![BASE + 1, -7]),
        8 => prop::sample::select(extremes),
    ]
}

/// Order ids: mostly a dozen (so cancels and modifies find live orders), sometimes 40.
fn order_id() -> impl Strategy<Value = u64> {
    prop_oneof![3 => 0u64..12, 1 => 0u64..40]
}

fn size() -> impl Strategy<Value = u32> {
    prop_oneof![
        85 => 1u32..=6,
        8 => Just(0u32),
        5 => 7u32..=1_000,
        2 => Just(u32::MAX),
    ]
}

fn flags() -> impl Strategy<Value = u8> {
    (
        prop::bool::weighted(0.6),
        prop::bool::weighted(0.012),
        prop::bool::weighted(0.008),
        prop::bool::weighted(0.03),
        prop::bool::weighted(0.02),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(last, tob, mbp, snapshot, maybe_bad, publisher)| {
            let mut f = 0;
            if last {
                f |= F_LAST;
            }
            if tob {
                f |= F_TOB;
            }
            if mbp {
                f |= F_MBP;
            }
            if snapshot {
                f |= F_SNAPSHOT | F_BAD_TS_RECV;
            }
            if maybe_bad {
                f |= F_MAYBE_BAD_BOOK;
            }
            if publisher {
                f |= F_PUBLISHER_SPECIFIC;
            }
            f
        })
}

fn op(extreme: bool) -> impl Strategy<Value = Op> {
    (
        any::<u8>(),
        action(),
        side(),
        order_id(),
        price(extreme),
        size(),
        flags(),
    )
        .prop_map(|(book, action, side, order_id, price, size, flags)| Op {
            book,
            action,
            side,
            order_id,
            price,
            size,
            flags,
        })
}

/// A case: how many instruments and publishers, whether bids and asks overlap (books cross
/// and lock) or stay apart, then the records.
fn case(extreme: bool) -> impl Strategy<Value = Case> {
    (
        1u8..=2,
        1u8..=2,
        prop::bool::weighted(0.5),
        prop::collection::vec(op(extreme), 1..300),
    )
        .prop_map(|(instruments, publishers, overlap, ops)| Case {
            instruments,
            publishers,
            overlap,
            ops,
        })
}

#[derive(Debug, Clone)]
struct Case {
    instruments: u8,
    publishers: u8,
    overlap: bool,
    ops: Vec<Op>,
}

fn build(case: &Case) -> Vec<dbn::MboMsg> {
    build_ops(case, &case.ops)
}

/// The records of `ops`, placed in the books and price bands of `case`.
fn build_ops(case: &Case, ops: &[Op]) -> Vec<dbn::MboMsg> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| {
            let ts = 1_700_000_000_000_000_000 + i as u64 * 1_000;
            // Near-base prices: bids at base-3..base, asks at base+1..base+4 ticks (apart),
            // or bids and asks both at base-1..base+2 ticks (overlapping).
            let mut price = op.price;
            if (BASE..BASE + 4 * TICK).contains(&price) {
                price -= match (case.overlap, op.side) {
                    (false, b'A') => -TICK,
                    (false, _) => 3 * TICK,
                    (true, _) => TICK,
                };
            }
            Msg {
                instrument_id: 100 + u32::from(op.book % case.instruments),
                publisher_id: 1 + u16::from((op.book / 2) % case.publishers),
                action: op.action,
                side: op.side,
                order_id: op.order_id,
                price,
                size: op.size,
                flags: op.flags,
                ts_event: ts,
                ts_recv: ts + 7,
                sequence: i as u32,
            }
            .build()
        })
        .collect()
}

fn engine_key(key: RefKey) -> BookKey {
    BookKey {
        instrument_id: key.0,
        publisher_id: key.1,
    }
}

/// Everything the engine and the reference must agree on for one book.
fn compare_book(market: &Market, reference: &RefMarket, key: RefKey) -> Result<(), String> {
    let book = market
        .book(engine_key(key))
        .ok_or_else(|| format!("engine has no book {key:?}"))?;
    let r = reference.book(key).ok_or("reference has no book")?;
    compare_full(book, r)?;
    compare_orders(book, r)?;
    for id in 0..40 {
        if book.order(id).is_some() != r.order(id).is_some() {
            return Err(format!("order {id}: presence differs"));
        }
    }
    let c = book.counters();
    let got = (
        c.unknown_cancels,
        c.unknown_modifies,
        c.duplicate_adds,
        c.over_cancels,
        c.boundaries,
        c.snapshot_records,
        c.actions.add,
        c.actions.cancel,
        c.actions.modify,
        c.actions.clear,
        c.actions.trade + c.actions.fill + c.actions.none,
        c.actions.other,
    );
    let rc = r.counters;
    let want = (
        rc.unknown_cancels,
        rc.unknown_modifies,
        rc.duplicate_adds,
        rc.over_cancels,
        rc.boundaries,
        rc.snapshot_records,
        rc.adds,
        rc.cancels,
        rc.modifies,
        rc.clears,
        rc.no_ops,
        rc.others,
    );
    if got != want {
        return Err(format!(
            "counters (unknown C, unknown M, dup A, over C, boundaries, snapshot, A, C, M, R, TFN, other):\n engine    {got:?}\n reference {want:?}"
        ));
    }
    if book.maybe_bad_book() != r.maybe_bad_book {
        return Err(format!(
            "maybe_bad_book: engine {} reference {}",
            book.maybe_bad_book(),
            r.maybe_bad_book
        ));
    }
    Ok(())
}

/// Applies `records` to a fresh engine market (or `market` after a reset) and the reference,
/// checking integrity after every record and everything at every `F_LAST`.
fn run(market: &mut Market, records: &[dbn::MboMsg]) -> Result<RefMarket, TestCaseError> {
    let mut reference = RefMarket::default();
    for (i, rec) in records.iter().enumerate() {
        let applied = market.apply(rec);
        let (key, last) = reference.apply(rec);
        prop_assert_eq!(applied.key, engine_key(key));
        prop_assert_eq!(applied.index, i as u64);
        prop_assert_eq!(applied.boundary, last, "record {}", i);
        let book = market.book(applied.key).unwrap();
        if let Err(e) = book.check_integrity() {
            return Err(TestCaseError::fail(format!(
                "record {i} ({rec:?}): integrity: {e}"
            )));
        }
        if last {
            if let Err(e) = compare_book(market, &reference, key) {
                return Err(TestCaseError::fail(format!(
                    "after record {i} ({rec:?}): {e}"
                )));
            }
            prop_assert_eq!(book.state().event_index, Some(i as u64));
            prop_assert!(!book.state().in_event);
        }
    }
    // Every book, whether or not its last record closed an event.
    let engine_keys: BTreeSet<RefKey> = market
        .books()
        .iter()
        .map(|b| (b.key().instrument_id, b.key().publisher_id))
        .collect();
    let reference_keys: BTreeSet<RefKey> = reference.books.keys().copied().collect();
    // After `Market::reset` the engine keeps every book it has seen, empty.
    for key in engine_keys.difference(&reference_keys) {
        let book = market.book(engine_key(*key)).unwrap();
        prop_assert!(book.order_count() == 0 && book.counters().actions.total() == 0);
    }
    prop_assert!(engine_keys.is_superset(&reference_keys));
    for &key in &reference_keys {
        if let Err(e) = compare_book(market, &reference, key) {
            return Err(TestCaseError::fail(format!(
                "at the end, book {key:?}: {e}"
            )));
        }
    }
    Ok(reference)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 768, ..ProptestConfig::default() })]

    /// The engine equals the reference at every event boundary, for every book.
    #[test]
    fn engine_matches_reference(case in case(false)) {
        let mut market = Market::new();
        run(&mut market, &build(&case))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// A reset market (capacity kept, books emptied) behaves like a new one.
    #[test]
    fn reset_market_matches_reference(
        case in case(false),
        second in prop::collection::vec(op(false), 1..300),
    ) {
        let mut market = Market::new();
        run(&mut market, &build(&case))?;
        market.reset();
        for book in market.books() {
            prop_assert_eq!(book.order_count(), 0);
            prop_assert_eq!(book.counters().actions.total(), 0);
            prop_assert!(book.check_integrity().is_ok());
        }
        run(&mut market, &build_ops(&case, &second))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Prices at the ends of the i64 range (`i64::MIN`, `i64::MAX - 1`) are valid prices.
    #[test]
    fn engine_matches_reference_with_extreme_prices(case in case(true)) {
        let mut market = Market::new();
        run(&mut market, &build(&case))?;
    }
}

// ---------------------------------------------------------------------------------------
// Hand-checked scenarios: each states the contract's expected queue explicitly, and checks
// that the reference and the engine both produce it.

const P: i64 = BASE;
const P2: i64 = BASE + TICK;

/// Applies `records` to both models and returns them; compares after every record.
fn both(records: &[dbn::MboMsg]) -> (Market, RefMarket) {
    let mut market = Market::new();
    let mut reference = RefMarket::default();
    for (i, rec) in records.iter().enumerate() {
        let applied = market.apply(rec);
        let (key, _) = reference.apply(rec);
        if let Err(e) = compare_book(&market, &reference, key) {
            panic!("after record {i}: {e}");
        }
        assert!(applied.boundary);
    }
    (market, reference)
}

fn queue(reference: &RefMarket, side: RefSide, price: i64) -> Vec<u64> {
    reference.book((1, 1)).unwrap().queue(side, price)
}

#[test]
fn add_appends_at_back() {
    let (_, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'B', 2, P, 5, F_LAST),
        rec(b'A', b'B', 3, P, 5, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![1, 2, 3]);
}

#[test]
fn modify_size_decrease_keeps_place_increase_loses_it() {
    let (_, r) = both(&[
        rec(b'A', b'A', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
        rec(b'A', b'A', 3, P, 5, F_LAST),
        rec(b'M', b'A', 1, P, 4, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P), vec![1, 2, 3]);
    let (_, r) = both(&[
        rec(b'A', b'A', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
        rec(b'M', b'A', 1, P, 6, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P), vec![2, 1]);
    // Same size and price: nothing changes.
    let (_, r) = both(&[
        rec(b'A', b'A', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
        rec(b'M', b'A', 1, P, 5, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P), vec![1, 2]);
}

#[test]
fn modify_price_change_goes_to_back_of_new_level_and_back_again() {
    let (_, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'B', 2, P2, 5, F_LAST),
        rec(b'A', b'B', 3, P, 5, F_LAST),
        rec(b'M', b'B', 1, P2, 1, F_LAST),
        rec(b'M', b'B', 1, P, 1, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P2), vec![2]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![3, 1]);
}

#[test]
fn modify_side_change_moves_order_to_other_side() {
    let (m, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
        rec(b'M', b'A', 1, P, 3, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P), vec![2, 1]);
    assert!(queue(&r, RefSide::Bid, P).is_empty());
    let book = &m.books()[0];
    assert_eq!(book.level_count(mbo_book::Side::Bid), 0);
}

#[test]
fn modify_unknown_is_add_and_size_zero_removes() {
    let (m, r) = both(&[
        rec(b'M', b'B', 7, P, 5, F_LAST),
        rec(b'A', b'B', 8, P, 5, F_LAST),
        rec(b'M', b'B', 7, P, 0, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![8]);
    assert_eq!(m.books()[0].counters().unknown_modifies, 1);
}

#[test]
fn modify_known_with_bad_side_or_price_is_ignored() {
    let (_, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'B', 2, P, 5, F_LAST),
        rec(b'M', b'N', 1, P2, 9, F_LAST),
        rec(b'M', b'B', 1, UNDEF, 9, F_LAST),
        rec(b'M', b'N', 2, P, 0, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![1, 2]);
    assert_eq!(r.book((1, 1)).unwrap().depth(RefSide::Bid)[0].size, 10);
}

#[test]
fn cancels_partial_full_over_and_unknown() {
    let (m, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'B', 2, P, 5, F_LAST),
        rec(b'C', b'B', 1, P, 2, F_LAST),
        rec(b'C', b'B', 9, P, 2, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![1, 2]);
    assert_eq!(
        r.book((1, 1)).unwrap().depth(RefSide::Bid),
        vec![RefLevel {
            price: P,
            size: 8,
            count: 2
        }]
    );
    assert_eq!(m.books()[0].counters().unknown_cancels, 1);
    let (m, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'C', b'B', 1, P, 6, F_LAST),
    ]);
    assert_eq!(r.book((1, 1)).unwrap().order_count(), 0);
    assert_eq!(m.books()[0].counters().over_cancels, 1);
}

#[test]
fn duplicate_add_replaces_as_fresh_order() {
    let (m, r) = both(&[
        rec(b'A', b'A', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
        rec(b'A', b'A', 1, P, 3, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P), vec![2, 1]);
    assert_eq!(m.books()[0].order(1).unwrap().size, 3);
}

#[test]
fn invalid_adds_are_ignored() {
    let (_, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'N', 2, P, 5, F_LAST),
        rec(b'A', b'B', 3, UNDEF, 5, F_LAST),
        rec(b'A', b'B', 4, P, 0, F_LAST),
        // A zero-size duplicate leaves the live order alone.
        rec(b'A', b'B', 1, P2, 0, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Bid, P), vec![1]);
    assert_eq!(r.book((1, 1)).unwrap().order_count(), 1);
}

#[test]
fn tob_add_replaces_side_and_undefined_price_empties_it() {
    let (m, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'B', 2, P2, 5, F_LAST),
        rec(b'A', b'A', 3, P2, 5, F_LAST),
        rec(b'A', b'B', 0, P, 40, F_TOB | F_LAST),
    ]);
    let b = r.book((1, 1)).unwrap();
    assert_eq!(
        b.depth(RefSide::Bid),
        vec![RefLevel {
            price: P,
            size: 40,
            count: 1
        }]
    );
    assert_eq!(b.depth(RefSide::Ask).len(), 1);
    assert_eq!(m.books()[0].aggregated_sides(), (true, false));
    let (_, r) = both(&[
        rec(b'A', b'A', 3, P2, 5, F_LAST),
        rec(b'A', b'A', 0, UNDEF, 0, F_MBP | F_LAST),
    ]);
    assert_eq!(r.book((1, 1)).unwrap().order_count(), 0);
}

#[test]
fn clear_and_no_ops() {
    let (_, r) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'T', b'A', 0, P, 5, F_LAST),
        rec(b'F', b'B', 1, P, 5, F_LAST),
        rec(b'N', b'N', 0, UNDEF, 0, F_LAST),
        rec(b'A', b'A', 2, P2, 5, F_LAST),
        rec(b'R', b'N', 0, UNDEF, 0, F_LAST),
        rec(b'A', b'A', 1, P2, 5, F_LAST),
    ]);
    assert_eq!(queue(&r, RefSide::Ask, P2), vec![1]);
    assert_eq!(r.book((1, 1)).unwrap().order_count(), 1);
}

#[test]
fn books_are_separate_per_instrument_and_publisher() {
    let a = |instrument_id, publisher_id, order_id| {
        Msg {
            instrument_id,
            publisher_id,
            order_id,
            price: P,
            size: 1,
            ..Msg::default()
        }
        .build()
    };
    let clear = Msg {
        instrument_id: 1,
        publisher_id: 2,
        action: b'R',
        side: b'N',
        ..Msg::default()
    }
    .build();
    let (m, r) = both(&[a(1, 1, 1), a(1, 2, 1), a(2, 1, 1), clear]);
    assert_eq!(m.books().len(), 3);
    assert_eq!(r.book((1, 1)).unwrap().order_count(), 1);
    assert_eq!(r.book((1, 2)).unwrap().order_count(), 0);
    assert_eq!(r.book((2, 1)).unwrap().order_count(), 1);
}

#[test]
fn crossed_and_locked_books_are_kept() {
    let (m, r) = both(&[
        rec(b'A', b'B', 1, P2, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
    ]);
    assert!(r.book((1, 1)).unwrap().is_crossed());
    assert!(m.books()[0].is_crossed());
    let (m, _) = both(&[
        rec(b'A', b'B', 1, P, 5, F_LAST),
        rec(b'A', b'A', 2, P, 5, F_LAST),
    ]);
    assert!(m.books()[0].is_crossed(), "locked counts as crossed");
}

// ---------------------------------------------------------------------------------------
// Prices at the ends of the i64 range. Valid per the contract (only i64::MAX is "no price"),
// never seen in the real files. They found an overflow in the tick-indexed ladder (fixed: the
// ladder now falls back to its sorted form when a grid cell's price would not fit in i64).

/// The sequence that found the overflow: two asks, at `i64::MAX - 1` then at 4000.25.
#[test]
fn extreme_price_then_normal_price_same_side() {
    both(&[
        rec(b'A', b'A', 0, i64::MAX - 1, 1, F_LAST),
        rec(b'A', b'A', 1, P2, 1, F_LAST),
    ]);
}

#[test]
fn min_price_then_normal_price_same_side() {
    both(&[
        rec(b'A', b'B', 0, i64::MIN, 1, F_LAST),
        rec(b'A', b'B', 1, P2, 1, F_LAST),
        rec(b'A', b'B', 2, i64::MAX - 1, 1, F_LAST),
        rec(b'C', b'B', 1, P2, 1, F_LAST),
        rec(b'C', b'B', 2, P2, 1, F_LAST),
    ]);
}

#[test]
fn normal_price_then_extreme_prices_both_sides() {
    both(&[
        rec(b'A', b'B', 1, P2, 1, F_LAST),
        rec(b'A', b'A', 2, P2, 1, F_LAST),
        rec(b'A', b'B', 3, i64::MAX - 1, 1, F_LAST),
        rec(b'A', b'A', 4, i64::MIN, 1, F_LAST),
        rec(b'A', b'A', 5, i64::MIN + 1, 1, F_LAST),
        rec(b'A', b'B', 6, i64::MIN, 1, F_LAST),
        rec(b'M', b'B', 3, P, 1, F_LAST),
        rec(b'C', b'A', 4, P, 1, F_LAST),
    ]);
}
