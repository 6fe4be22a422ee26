//! One table-driven case per rule of `shared/docs/mbo-book.md` and of the engine's rule table
//! (`lib.rs`). Each case is a list of records plus a check; the harness applies the records one
//! by one, verifies `check_integrity()` after every record, runs the check, and verifies every
//! book's integrity again at the end.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mbo_book::{
    format_price, write_price, Applied, Book, BookKey, BookState, Counters, LevelView, Market,
    MboMsg, Side, UNDEF_PRICE,
};
use rstest::rstest;

const F_LAST: u8 = 0x80;
const F_TOB: u8 = 0x40;
const F_SNAPSHOT: u8 = 0x20;
const F_MBP: u8 = 0x10;
const F_BAD_TS_RECV: u8 = 0x08;
const F_MAYBE_BAD_BOOK: u8 = 0x04;

const INST: u32 = 42;
const PUB: u16 = 1;
const KEY: BookKey = BookKey {
    instrument_id: INST,
    publisher_id: PUB,
};

/// A price in whole units (1e9 fixed-point units each).
const fn px(units: i64) -> i64 {
    units * 1_000_000_000
}

/// A test record. `ts == None` lets the harness number it (its stream position + 1).
#[derive(Debug, Clone, Copy)]
struct Rec {
    action: u8,
    side: u8,
    order_id: u64,
    price: i64,
    size: u32,
    flags: u8,
    instrument_id: u32,
    publisher_id: u16,
    ts: Option<u64>,
}

impl Rec {
    /// Replaces the flags.
    const fn flags(mut self, flags: u8) -> Self {
        self.flags = flags;
        self
    }
    /// Clears `F_LAST`: the record is inside an event.
    const fn mid(mut self) -> Self {
        self.flags &= !F_LAST;
        self
    }
    const fn inst(mut self, instrument_id: u32) -> Self {
        self.instrument_id = instrument_id;
        self
    }
    const fn publisher(mut self, publisher_id: u16) -> Self {
        self.publisher_id = publisher_id;
        self
    }
    const fn ts(mut self, ts: u64) -> Self {
        self.ts = Some(ts);
        self
    }
    const fn side(mut self, side: u8) -> Self {
        self.side = side;
        self
    }
}

const fn rec(action: u8, side: u8, order_id: u64, price: i64, size: u32) -> Rec {
    Rec {
        action,
        side,
        order_id,
        price,
        size,
        flags: F_LAST,
        instrument_id: INST,
        publisher_id: PUB,
        ts: None,
    }
}

const B: u8 = b'B';
const A: u8 = b'A';
const N: u8 = b'N';

const fn add(side: u8, id: u64, price: i64, size: u32) -> Rec {
    rec(b'A', side, id, price, size)
}
const fn cancel(side: u8, id: u64, price: i64, size: u32) -> Rec {
    rec(b'C', side, id, price, size)
}
const fn modify(side: u8, id: u64, price: i64, size: u32) -> Rec {
    rec(b'M', side, id, price, size)
}
const fn clear() -> Rec {
    rec(b'R', N, 0, UNDEF_PRICE, 0)
}

/// Applies records one at a time and remembers what each did.
struct Harness {
    market: Market,
    applied: Vec<Applied>,
    /// State of the record's book right after each record.
    states: Vec<BookState>,
}

impl Harness {
    fn new() -> Self {
        Self {
            market: Market::new(),
            applied: Vec::new(),
            states: Vec::new(),
        }
    }

    fn msg(&self, r: Rec) -> MboMsg {
        let ts_event = r.ts.unwrap_or(self.market.next_index() + 1);
        MboMsg {
            hd: dbn::RecordHeader::new::<MboMsg>(0xA0, r.publisher_id, r.instrument_id, ts_event),
            order_id: r.order_id,
            price: r.price,
            size: r.size,
            flags: dbn::FlagSet::new(r.flags),
            channel_id: 0,
            action: r.action as std::ffi::c_char,
            side: r.side as std::ffi::c_char,
            ts_recv: ts_event + 1_000,
            ts_in_delta: 0,
            sequence: self.market.next_index() as u32,
        }
    }

    fn apply(&mut self, r: Rec) -> Applied {
        let msg = self.msg(r);
        let applied = self.market.apply(&msg);
        let book = self
            .market
            .book(applied.key)
            .expect("book exists after apply");
        if let Err(e) = book.check_integrity() {
            panic!(
                "integrity broken after record {} ({r:?}): {e}",
                applied.index
            );
        }
        self.applied.push(applied);
        self.states.push(*book.state());
        applied
    }

    fn run(&mut self, recs: &[Rec]) {
        for &r in recs {
            self.apply(r);
        }
    }

    fn book(&self) -> &Book {
        self.book_of(KEY)
    }

    fn book_of(&self, key: BookKey) -> &Book {
        self.market.book(key).expect("book registered")
    }

    fn counters(&self) -> Counters {
        *self.book().counters()
    }

    /// Order ids at `price` on `side`, front of the queue first.
    fn queue(&self, side: Side, price: i64) -> Vec<u64> {
        self.book()
            .level_orders(side, price)
            .map(|o| o.order_id)
            .collect()
    }

    /// `(price, size, count)` of every level of `side`, best first.
    fn levels(&self, side: Side) -> Vec<(i64, u64, u32)> {
        self.book()
            .levels(side)
            .map(|l| (l.price, l.size, l.count))
            .collect()
    }

    fn assert_all_books_intact(&self) {
        for b in self.market.books() {
            if let Err(e) = b.check_integrity() {
                panic!("book {:?} broken: {e}", b.key());
            }
        }
    }
}

type Check = fn(&mut Harness);

// ---------------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------------

#[rstest]
// --- A: add ---
#[case::add_back_of_queue_fifo(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 7), add(B, 3, px(100), 1)],
    add_back_of_queue_fifo as Check,
)]
// --- C: cancel ---
#[case::partial_cancel(
    &[add(B, 1, px(100), 10), add(B, 2, px(100), 5), cancel(B, 1, px(100), 4)],
    partial_cancel as Check,
)]
#[case::full_cancel_removes_order_and_empty_level(
    &[add(B, 1, px(100), 10), add(B, 2, px(99), 5), cancel(B, 1, px(100), 10)],
    full_cancel_removes_order_and_empty_level as Check,
)]
#[case::full_cancel_from_middle_of_queue(
    &[add(A, 1, px(101), 1), add(A, 2, px(101), 2), add(A, 3, px(101), 3), cancel(A, 2, px(101), 2)],
    full_cancel_from_middle_of_queue as Check,
)]
#[case::over_cancel_removes_and_counts(
    &[add(B, 1, px(100), 5), add(B, 2, px(99), 1), cancel(B, 1, px(100), 8)],
    over_cancel_removes_and_counts as Check,
)]
#[case::unknown_cancel_counted_and_ignored(
    &[add(B, 1, px(100), 5), add(A, 2, px(101), 6), cancel(B, 99, px(100), 5)],
    unknown_cancel_counted_and_ignored as Check,
)]
// --- M: modify ---
#[case::modify_size_decrease_keeps_place(
    &[add(B, 1, px(100), 10), add(B, 2, px(100), 10), add(B, 3, px(100), 10), modify(B, 1, px(100), 4)],
    modify_size_decrease_keeps_place as Check,
)]
#[case::modify_size_increase_moves_to_back(
    &[add(B, 1, px(100), 10), add(B, 2, px(100), 10), add(B, 3, px(100), 10), modify(B, 1, px(100), 15)],
    modify_size_increase_moves_to_back as Check,
)]
#[case::modify_same_price_same_size_keeps_place(
    &[add(B, 1, px(100), 10), add(B, 2, px(100), 10), modify(B, 1, px(100), 10)],
    modify_same_price_same_size_keeps_place as Check,
)]
#[case::modify_price_change_moves_to_back_of_new_level(
    &[add(A, 1, px(100), 10), add(A, 2, px(100), 5), add(A, 3, px(101), 7), modify(A, 1, px(101), 6)],
    modify_price_change_moves_to_back_of_new_level as Check,
)]
#[case::modify_side_change(
    &[add(B, 1, px(100), 10), add(A, 2, px(105), 5), modify(A, 1, px(105), 10)],
    modify_side_change as Check,
)]
#[case::modify_to_size_zero_removes(
    &[add(B, 1, px(100), 10), add(B, 2, px(99), 5), modify(B, 1, px(100), 0)],
    modify_to_size_zero_removes as Check,
)]
#[case::unknown_modify_is_add(
    &[add(B, 2, px(100), 5), modify(B, 7, px(100), 3)],
    unknown_modify_is_add as Check,
)]
// --- A with a live id ---
#[case::duplicate_add_id_replaces(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 6), add(B, 1, px(101), 9)],
    duplicate_add_id_replaces as Check,
)]
#[case::duplicate_add_same_price_goes_to_back(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 6), add(B, 1, px(100), 4)],
    duplicate_add_same_price_goes_to_back as Check,
)]
// --- R: clear ---
#[case::clear_empties_book_and_resets_maybe_bad_book(
    &[
        add(B, 1, px(100), 5),
        add(A, 2, px(101), 5).flags(F_LAST | F_MAYBE_BAD_BOOK),
        add(A, 3, px(102), 5),
        clear(),
        add(B, 4, px(98), 2),
    ],
    clear_empties_book_and_resets_maybe_bad_book as Check,
)]
// --- T, F, N and unknown actions ---
#[case::trade_fill_none_change_nothing(
    &[
        add(B, 1, px(100), 5),
        add(A, 2, px(101), 5),
        rec(b'T', A, 0, px(100), 5).mid(),
        rec(b'F', B, 1, px(100), 5).mid(),
        rec(b'N', N, 2, px(101), 5),
        rec(b'X', B, 1, px(100), 5),
    ],
    trade_fill_none_change_nothing as Check,
)]
// --- F_LAST and event boundaries ---
#[case::f_last_boundaries(
    &[
        add(B, 1, px(100), 5).mid(),
        add(A, 2, px(101), 5).mid(),
        cancel(B, 1, px(100), 5),
        add(B, 3, px(99), 1),
    ],
    f_last_boundaries as Check,
)]
// --- crossed and locked books ---
#[case::crossed_book_at_boundary_flagged_not_matched(
    &[add(B, 1, px(101), 5), add(A, 2, px(100), 3), rec(b'N', N, 0, UNDEF_PRICE, 0)],
    crossed_book_at_boundary_flagged_not_matched as Check,
)]
#[case::locked_book_counts_as_crossed(
    &[add(B, 1, px(100), 5), add(A, 2, px(100), 3)],
    locked_book_counts_as_crossed as Check,
)]
#[case::crossed_only_inside_event_not_counted(
    // A `T F A C`-like event: the aggressor's remainder rests before the filled order's cancel.
    &[
        add(A, 1, px(100), 2),
        rec(b'T', B, 0, px(100), 2).mid(),
        rec(b'F', A, 1, px(100), 2).mid(),
        add(B, 2, px(100), 3).mid(),
        cancel(A, 1, px(100), 2),
    ],
    crossed_only_inside_event_not_counted as Check,
)]
// --- F_MAYBE_BAD_BOOK ---
#[case::maybe_bad_book_until_next_clear(
    &[
        add(B, 1, px(100), 5).flags(F_LAST | F_MAYBE_BAD_BOOK),
        add(B, 2, px(100), 5),
        clear(),
        add(B, 3, px(100), 5),
        clear().flags(F_LAST | F_MAYBE_BAD_BOOK),
    ],
    maybe_bad_book_until_next_clear as Check,
)]
// --- F_SNAPSHOT ---
#[case::snapshot_records_counted_and_processed(
    &[
        add(B, 9, px(90), 1),
        clear().flags(F_SNAPSHOT | F_BAD_TS_RECV),
        add(B, 1, px(100), 5).flags(F_SNAPSHOT | F_BAD_TS_RECV),
        add(B, 2, px(100), 6).flags(F_SNAPSHOT | F_BAD_TS_RECV),
        add(A, 3, px(101), 7).flags(F_SNAPSHOT | F_BAD_TS_RECV | F_LAST),
        cancel(B, 1, px(100), 5),
    ],
    snapshot_records_counted_and_processed as Check,
)]
#[case::snapshot_without_leading_clear(
    &[
        add(B, 1, px(100), 5).flags(F_SNAPSHOT | F_BAD_TS_RECV),
        add(A, 2, px(101), 7).flags(F_SNAPSHOT | F_BAD_TS_RECV | F_LAST),
    ],
    snapshot_without_leading_clear as Check,
)]
// --- F_TOB / F_MBP: aggregated sides ---
#[case::tob_add_replaces_whole_side(
    &[
        add(A, 50, px(110), 4),
        add(B, 0, px(100), 10).flags(F_LAST | F_TOB),
        add(B, 0, px(101), 3).flags(F_LAST | F_TOB),
    ],
    tob_add_replaces_whole_side as Check,
)]
#[case::tob_add_undef_price_empties_side(
    &[
        add(A, 50, px(110), 4),
        add(B, 0, px(100), 10).flags(F_LAST | F_TOB),
        add(B, 0, UNDEF_PRICE, 0).flags(F_LAST | F_TOB),
    ],
    tob_add_undef_price_empties_side as Check,
)]
#[case::tob_replaces_real_orders_on_its_side(
    &[
        add(B, 1, px(99), 5),
        add(B, 2, px(98), 5),
        add(A, 3, px(103), 5),
        add(B, 0, px(100), 10).flags(F_LAST | F_TOB),
    ],
    tob_replaces_real_orders_on_its_side as Check,
)]
#[case::mbp_add_replaces_whole_side(
    &[
        add(B, 50, px(90), 4),
        add(A, 0, px(100), 10).flags(F_LAST | F_MBP),
        add(A, 0, px(99), 2).flags(F_LAST | F_MBP),
    ],
    mbp_add_replaces_whole_side as Check,
)]
#[case::mbp_add_undef_price_empties_side(
    &[
        add(A, 0, px(100), 10).flags(F_LAST | F_MBP),
        add(A, 0, UNDEF_PRICE, 0).flags(F_LAST | F_MBP),
    ],
    mbp_add_undef_price_empties_side as Check,
)]
// Top-of-book venues send one Add per side; "each such Add replaces that whole side" (the
// contract), so a bid TOB must survive an ask TOB, whatever order ids they carry. Databento's
// reference keeps TOB levels out of its order-id map.
#[case::tob_both_sides_with_same_order_id(
    &[
        add(B, 0, px(100), 10).flags(F_LAST | F_TOB),
        add(A, 0, px(101), 3).flags(F_LAST | F_TOB),
    ],
    tob_both_sides_with_same_order_id as Check,
)]
#[case::tob_both_sides_with_distinct_order_ids(
    &[
        add(B, 1, px(100), 10).flags(F_LAST | F_TOB),
        add(A, 2, px(101), 3).flags(F_LAST | F_TOB),
    ],
    tob_both_sides_with_distinct_order_ids as Check,
)]
// `Counters::aggregated_records` counts every record flagged F_TOB or F_MBP, not only adds.
#[case::aggregated_counter_counts_every_flagged_record(
    &[
        add(B, 0, px(100), 10).flags(F_LAST | F_TOB),
        rec(b'T', B, 0, px(100), 1).flags(F_LAST | F_TOB),
    ],
    aggregated_counter_counts_every_flagged_record as Check,
)]
// --- invalid records ---
#[case::invalid_add_side_none(
    &[add(B, 1, px(100), 5), add(N, 2, px(100), 5)],
    invalid_add_ignored as Check,
)]
#[case::invalid_add_undef_price(
    &[add(B, 1, px(100), 5), add(B, 2, UNDEF_PRICE, 5)],
    invalid_add_ignored as Check,
)]
#[case::invalid_add_size_zero(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 0)],
    invalid_add_ignored as Check,
)]
#[case::invalid_modify_side_none_leaves_order(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 5), modify(N, 1, px(100), 9)],
    invalid_modify_leaves_order as Check,
)]
#[case::invalid_modify_undef_price_leaves_order(
    &[add(B, 1, px(100), 5), add(B, 2, px(100), 5), modify(B, 1, UNDEF_PRICE, 9)],
    invalid_modify_leaves_order as Check,
)]
#[case::invalid_duplicate_add_keeps_old_order(
    &[add(B, 1, px(100), 5), add(N, 1, px(101), 9)],
    invalid_duplicate_add_keeps_old_order as Check,
)]
// --- one book per (instrument_id, publisher_id) ---
#[case::one_book_per_instrument_and_publisher(
    &[
        add(B, 1, px(100), 5),
        add(A, 1, px(200), 6).inst(43),
        add(B, 1, px(300), 7).publisher(2),
        cancel(A, 1, px(200), 6).inst(43),
        modify(B, 1, px(301), 8).publisher(2),
        cancel(B, 77, px(100), 1).publisher(2),
        clear().publisher(2),
    ],
    one_book_per_instrument_and_publisher as Check,
)]
// --- read API ---
#[case::views_queue_position_order_level_level_orders(
    &[
        add(B, 1, px(100), 5),
        add(B, 2, px(100), 6),
        add(B, 3, px(99), 7),
        add(A, 4, px(102), 1),
        add(A, 5, px(101), 2),
        add(A, 6, px(101), 3),
        add(B, 7, px(100), 8),
    ],
    views_queue_position_order_level_level_orders as Check,
)]
#[case::ts_priority_updates_only_on_priority_loss(
    &[
        add(B, 1, px(100), 10).ts(10),
        add(B, 2, px(100), 10).ts(11),
        modify(B, 1, px(100), 8).ts(20),
    ],
    ts_priority_updates_only_on_priority_loss as Check,
)]
// --- Market ---
#[case::market_reset_keeps_books_empty_and_restarts_index(
    &[
        add(B, 1, px(100), 5),
        add(A, 2, px(101), 5).inst(43),
        cancel(B, 99, px(100), 1),
    ],
    market_reset_keeps_books_empty_and_restarts_index as Check,
)]
#[case::set_next_index_numbers_following_records(
    &[add(B, 1, px(100), 5)],
    set_next_index_numbers_following_records as Check,
)]
fn rule(#[case] records: &[Rec], #[case] check: Check) {
    let mut h = Harness::new();
    h.run(records);
    check(&mut h);
    h.assert_all_books_intact();
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn add_back_of_queue_fifo(h: &mut Harness) {
    assert_eq!(h.queue(Side::Bid, px(100)), [1, 2, 3]);
    assert_eq!(h.levels(Side::Bid), [(px(100), 13, 3)]);
    assert_eq!(h.book().queue_position(1), Some(0));
    assert_eq!(h.book().queue_position(3), Some(2));
    assert_eq!(h.counters().actions.add, 3);
    // A later add still lands behind everyone.
    h.apply(add(B, 4, px(100), 2));
    assert_eq!(h.queue(Side::Bid, px(100)), [1, 2, 3, 4]);
}

fn partial_cancel(h: &mut Harness) {
    let o = h.book().order(1).unwrap();
    assert_eq!(o.size, 6);
    assert_eq!(
        h.book().queue_position(1),
        Some(0),
        "partial cancel keeps place"
    );
    assert_eq!(h.levels(Side::Bid), [(px(100), 11, 2)]);
    let c = h.counters();
    assert_eq!(c.actions.cancel, 1);
    assert_eq!((c.unknown_cancels, c.over_cancels), (0, 0));
    // Cancelling the rest removes it.
    h.apply(cancel(B, 1, px(100), 6));
    assert_eq!(h.book().order(1), None);
    assert_eq!(h.queue(Side::Bid, px(100)), [2]);
    assert_eq!(h.counters().over_cancels, 0);
}

fn full_cancel_removes_order_and_empty_level(h: &mut Harness) {
    let b = h.book();
    assert_eq!(b.order(1), None);
    assert_eq!(b.queue_position(1), None);
    assert_eq!(b.level(Side::Bid, px(100)), None);
    assert_eq!(b.level_orders(Side::Bid, px(100)).count(), 0);
    assert_eq!(b.level_count(Side::Bid), 1);
    assert_eq!(b.order_count(), 1);
    assert_eq!(b.best_bid().map(|l| l.price), Some(px(99)));
    assert_eq!(h.counters().over_cancels, 0);
}

fn full_cancel_from_middle_of_queue(h: &mut Harness) {
    assert_eq!(h.queue(Side::Ask, px(101)), [1, 3]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 4, 2)]);
    assert_eq!(h.book().queue_position(3), Some(1));
}

fn over_cancel_removes_and_counts(h: &mut Harness) {
    let b = h.book();
    assert_eq!(b.order(1), None);
    assert_eq!(b.level(Side::Bid, px(100)), None);
    assert_eq!(h.levels(Side::Bid), [(px(99), 1, 1)]);
    assert_eq!(h.counters().over_cancels, 1);
    assert_eq!(h.counters().unknown_cancels, 0);
}

fn unknown_cancel_counted_and_ignored(h: &mut Harness) {
    let c = h.counters();
    assert_eq!(c.unknown_cancels, 1);
    assert_eq!(c.actions.cancel, 1);
    assert_eq!(h.levels(Side::Bid), [(px(100), 5, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 6, 1)]);
    assert_eq!(h.book().order_count(), 2);
}

fn modify_size_decrease_keeps_place(h: &mut Harness) {
    assert_eq!(h.queue(Side::Bid, px(100)), [1, 2, 3]);
    assert_eq!(h.book().order(1).unwrap().size, 4);
    assert_eq!(h.levels(Side::Bid), [(px(100), 24, 3)]);
    assert_eq!(h.counters().actions.modify, 1);
}

fn modify_size_increase_moves_to_back(h: &mut Harness) {
    assert_eq!(h.queue(Side::Bid, px(100)), [2, 3, 1]);
    assert_eq!(h.book().order(1).unwrap().size, 15);
    assert_eq!(h.book().queue_position(1), Some(2));
    assert_eq!(h.levels(Side::Bid), [(px(100), 35, 3)]);
}

fn modify_same_price_same_size_keeps_place(h: &mut Harness) {
    assert_eq!(h.queue(Side::Bid, px(100)), [1, 2]);
    assert_eq!(h.levels(Side::Bid), [(px(100), 20, 2)]);
    assert_eq!(h.book().order(1).unwrap().ts_priority, 1);
}

fn modify_price_change_moves_to_back_of_new_level(h: &mut Harness) {
    // Size decreased too, but the price changed: back of the new queue.
    assert_eq!(h.queue(Side::Ask, px(100)), [2]);
    assert_eq!(h.queue(Side::Ask, px(101)), [3, 1]);
    assert_eq!(h.levels(Side::Ask), [(px(100), 5, 1), (px(101), 13, 2)]);
    let o = h.book().order(1).unwrap();
    assert_eq!((o.price, o.size, o.side), (px(101), 6, Side::Ask));
    // Moving the only order of a level away removes the level.
    h.apply(modify(A, 2, px(102), 5));
    assert_eq!(h.book().level(Side::Ask, px(100)), None);
    assert_eq!(h.levels(Side::Ask), [(px(101), 13, 2), (px(102), 5, 1)]);
}

fn modify_side_change(h: &mut Harness) {
    let b = h.book();
    assert_eq!(b.level_count(Side::Bid), 0);
    assert_eq!(b.best_bid(), None);
    assert_eq!(h.queue(Side::Ask, px(105)), [2, 1]);
    assert_eq!(b.order(1).unwrap().side, Side::Ask);
    assert_eq!(h.levels(Side::Ask), [(px(105), 15, 2)]);
    assert_eq!(h.counters().invalid_records, 0);
}

fn modify_to_size_zero_removes(h: &mut Harness) {
    let b = h.book();
    assert_eq!(b.order(1), None);
    assert_eq!(b.level(Side::Bid, px(100)), None);
    assert_eq!(h.levels(Side::Bid), [(px(99), 5, 1)]);
    assert_eq!(b.order_count(), 1);
}

fn unknown_modify_is_add(h: &mut Harness) {
    let c = h.counters();
    assert_eq!(c.unknown_modifies, 1);
    assert_eq!(c.actions.modify, 1);
    assert_eq!(
        c.actions.add, 1,
        "counted as a modify record, applied as an add"
    );
    assert_eq!(h.queue(Side::Bid, px(100)), [2, 7]);
    let o = h.book().order(7).unwrap();
    assert_eq!((o.price, o.size, o.side), (px(100), 3, Side::Bid));
    // It is a real order now: a second modify is a plain modify.
    h.apply(modify(B, 7, px(100), 1));
    assert_eq!(h.counters().unknown_modifies, 1);
    assert_eq!(h.book().order(7).unwrap().size, 1);
}

fn duplicate_add_id_replaces(h: &mut Harness) {
    assert_eq!(h.counters().duplicate_adds, 1);
    assert_eq!(h.book().order_count(), 2);
    assert_eq!(h.queue(Side::Bid, px(100)), [2]);
    assert_eq!(h.queue(Side::Bid, px(101)), [1]);
    assert_eq!(h.levels(Side::Bid), [(px(101), 9, 1), (px(100), 6, 1)]);
    assert_eq!(h.book().order(1).unwrap().ts_priority, 3);
}

fn duplicate_add_same_price_goes_to_back(h: &mut Harness) {
    assert_eq!(h.counters().duplicate_adds, 1);
    assert_eq!(h.queue(Side::Bid, px(100)), [2, 1]);
    assert_eq!(h.levels(Side::Bid), [(px(100), 10, 2)]);
}

fn clear_empties_book_and_resets_maybe_bad_book(h: &mut Harness) {
    // State right after the clear (record 3).
    assert!(h.states[2].maybe_bad_book);
    assert!(!h.states[3].maybe_bad_book);
    let b = h.book();
    assert_eq!(h.counters().actions.clear, 1);
    assert!(!b.maybe_bad_book());
    // Only the add after the clear remains.
    assert_eq!(b.order_count(), 1);
    assert_eq!(b.level_count(Side::Ask), 0);
    assert_eq!(h.levels(Side::Bid), [(px(98), 2, 1)]);
    for id in 1..=3 {
        assert_eq!(b.order(id), None);
    }
    // Orders from before the clear are unknown now.
    h.apply(cancel(B, 1, px(100), 5));
    assert_eq!(h.counters().unknown_cancels, 1);
}

fn trade_fill_none_change_nothing(h: &mut Harness) {
    let c = h.counters();
    assert_eq!(
        (
            c.actions.trade,
            c.actions.fill,
            c.actions.none,
            c.actions.other
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(c.actions.total(), 6);
    assert_eq!(h.levels(Side::Bid), [(px(100), 5, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 5, 1)]);
    assert_eq!(h.book().order(1).unwrap().size, 5);
    assert_eq!(
        c.unknown_cancels + c.unknown_modifies + c.invalid_records,
        0
    );
}

fn f_last_boundaries(h: &mut Harness) {
    let boundary: Vec<bool> = h.applied.iter().map(|a| a.boundary).collect();
    assert_eq!(boundary, [false, false, true, true]);
    let index: Vec<u64> = h.applied.iter().map(|a| a.index).collect();
    assert_eq!(index, [0, 1, 2, 3]);
    assert!(h.applied.iter().all(|a| a.key == KEY));
    // Inside the event: no boundary yet, in_event set.
    assert_eq!(h.states[0].event_index, None);
    assert!(h.states[0].in_event);
    assert_eq!(h.states[1].event_index, None);
    assert!(h.states[1].in_event);
    // At the F_LAST record: event_index is its position.
    assert_eq!(h.states[2].event_index, Some(2));
    assert!(!h.states[2].in_event);
    assert_eq!(h.states[3].event_index, Some(3));
    assert_eq!(h.counters().boundaries, 2);
    // A mid-event record after a boundary keeps the last boundary's index.
    h.apply(add(B, 4, px(98), 1).mid());
    assert_eq!(h.book().state().event_index, Some(3));
    assert!(h.book().state().in_event);
    let st = h.book().state();
    assert_eq!((st.ts_event, st.ts_recv, st.sequence), (5, 1_005, 4));
}

fn crossed_book_at_boundary_flagged_not_matched(h: &mut Harness) {
    let b = h.book();
    assert!(b.is_crossed());
    assert_eq!(h.counters().crossed_boundaries, 2);
    assert_eq!(h.counters().boundaries, 3);
    // Nothing matched away: both orders rest, full size.
    assert_eq!(b.order(1).unwrap().size, 5);
    assert_eq!(b.order(2).unwrap().size, 3);
    assert_eq!(
        b.best_bid(),
        Some(LevelView {
            price: px(101),
            size: 5,
            count: 1
        })
    );
    assert_eq!(
        b.best_ask(),
        Some(LevelView {
            price: px(100),
            size: 3,
            count: 1
        })
    );
    // Uncrossing by a cancel stops the count.
    h.apply(cancel(A, 2, px(100), 3));
    assert!(!h.book().is_crossed());
    assert_eq!(h.counters().crossed_boundaries, 2);
}

fn locked_book_counts_as_crossed(h: &mut Harness) {
    assert!(h.book().is_crossed(), "bid == ask is reported as crossed");
    assert_eq!(h.counters().crossed_boundaries, 1);
    assert_eq!(h.book().order_count(), 2);
    assert_eq!(h.levels(Side::Bid), [(px(100), 5, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(100), 3, 1)]);
}

fn crossed_only_inside_event_not_counted(h: &mut Harness) {
    assert!(!h.book().is_crossed());
    assert_eq!(h.counters().crossed_boundaries, 0);
    assert_eq!(h.counters().boundaries, 2);
    assert_eq!(h.levels(Side::Bid), [(px(100), 3, 1)]);
    assert_eq!(h.book().level_count(Side::Ask), 0);
}

fn maybe_bad_book_until_next_clear(h: &mut Harness) {
    let flags: Vec<bool> = h.states.iter().map(|s| s.maybe_bad_book).collect();
    // Set by record 0, kept by record 1, repaired by the clear, set again by a flagged clear.
    assert_eq!(flags, [true, true, false, false, true]);
    assert!(h.book().maybe_bad_book());
    assert_eq!(h.counters().maybe_bad_records, 2);
    // The flagged record itself was applied.
    assert_eq!(h.counters().actions.add, 3);
}

fn snapshot_records_counted_and_processed(h: &mut Harness) {
    let c = h.counters();
    assert_eq!(c.snapshot_records, 4);
    assert_eq!(c.actions.clear, 1);
    assert_eq!(c.actions.add, 4);
    assert_eq!(h.book().order(9), None, "the snapshot's clear removed it");
    assert_eq!(h.queue(Side::Bid, px(100)), [2]);
    assert_eq!(h.queue(Side::Ask, px(101)), [3]);
    assert_eq!(h.book().state().event_index, Some(5));
    assert_eq!(
        h.states[3].event_index,
        Some(0),
        "snapshot adds are mid-event"
    );
    assert!(h.states[3].in_event);
    assert_eq!(h.states[4].event_index, Some(4));
}

fn snapshot_without_leading_clear(h: &mut Harness) {
    assert_eq!(h.counters().snapshot_records, 2);
    assert_eq!(h.queue(Side::Bid, px(100)), [1]);
    assert_eq!(h.queue(Side::Ask, px(101)), [2]);
    assert_eq!(h.counters().boundaries, 1);
}

fn tob_add_replaces_whole_side(h: &mut Harness) {
    let b = h.book();
    assert_eq!(h.levels(Side::Bid), [(px(101), 3, 1)]);
    assert_eq!(
        h.levels(Side::Ask),
        [(px(110), 4, 1)],
        "other side untouched"
    );
    assert_eq!(b.aggregated_sides(), (true, false));
    assert_eq!(h.counters().aggregated_records, 2);
    assert_eq!(h.counters().duplicate_adds, 0);
}

fn tob_add_undef_price_empties_side(h: &mut Harness) {
    let b = h.book();
    assert_eq!(b.level_count(Side::Bid), 0);
    assert_eq!(b.best_bid(), None);
    assert_eq!(b.aggregated_sides(), (true, false));
    assert_eq!(h.levels(Side::Ask), [(px(110), 4, 1)]);
    assert_eq!(h.counters().aggregated_records, 2);
    assert_eq!(h.counters().invalid_records, 0);
}

fn tob_replaces_real_orders_on_its_side(h: &mut Harness) {
    let b = h.book();
    assert_eq!(h.levels(Side::Bid), [(px(100), 10, 1)]);
    assert_eq!(b.order(1), None);
    assert_eq!(b.order(2), None);
    assert_eq!(b.order(3).unwrap().size, 5);
    assert_eq!(b.aggregated_sides(), (true, false));
    // A clear forgets the aggregated marking.
    h.apply(clear());
    assert_eq!(h.book().aggregated_sides(), (false, false));
}

fn mbp_add_replaces_whole_side(h: &mut Harness) {
    assert_eq!(h.levels(Side::Ask), [(px(99), 2, 1)]);
    assert_eq!(h.levels(Side::Bid), [(px(90), 4, 1)]);
    assert_eq!(h.book().aggregated_sides(), (false, true));
    assert_eq!(h.counters().aggregated_records, 2);
}

fn mbp_add_undef_price_empties_side(h: &mut Harness) {
    assert_eq!(h.book().level_count(Side::Ask), 0);
    assert_eq!(h.book().order_count(), 0);
    assert_eq!(h.book().aggregated_sides(), (false, true));
}

fn tob_both_sides_with_same_order_id(h: &mut Harness) {
    assert_eq!(h.levels(Side::Bid), [(px(100), 10, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 3, 1)]);
    assert_eq!(h.book().aggregated_sides(), (true, true));
    assert_eq!(h.counters().duplicate_adds, 0);
}

fn tob_both_sides_with_distinct_order_ids(h: &mut Harness) {
    assert_eq!(h.levels(Side::Bid), [(px(100), 10, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 3, 1)]);
    assert_eq!(h.book().aggregated_sides(), (true, true));
}

fn aggregated_counter_counts_every_flagged_record(h: &mut Harness) {
    assert_eq!(h.counters().aggregated_records, 2);
}

fn invalid_add_ignored(h: &mut Harness) {
    let c = h.counters();
    assert_eq!(c.invalid_records, 1);
    assert_eq!(c.actions.add, 2);
    assert_eq!(h.book().order(2), None);
    assert_eq!(h.book().order_count(), 1);
    assert_eq!(h.levels(Side::Bid), [(px(100), 5, 1)]);
    assert_eq!(h.book().level_count(Side::Ask), 0);
}

fn invalid_modify_leaves_order(h: &mut Harness) {
    assert_eq!(h.counters().invalid_records, 1);
    assert_eq!(h.counters().unknown_modifies, 0);
    let o = h.book().order(1).unwrap();
    assert_eq!((o.price, o.size, o.side), (px(100), 5, Side::Bid));
    assert_eq!(h.queue(Side::Bid, px(100)), [1, 2]);
}

fn invalid_duplicate_add_keeps_old_order(h: &mut Harness) {
    assert_eq!(h.counters().invalid_records, 1);
    let o = h.book().order(1).unwrap();
    assert_eq!((o.price, o.size), (px(100), 5));
}

fn one_book_per_instrument_and_publisher(h: &mut Harness) {
    let k43 = BookKey {
        instrument_id: 43,
        publisher_id: PUB,
    };
    let k42p2 = BookKey {
        instrument_id: INST,
        publisher_id: 2,
    };
    assert_eq!(h.market.books().len(), 3);
    let keys: Vec<BookKey> = h.market.books().iter().map(|b| b.key()).collect();
    assert_eq!(keys, [KEY, k43, k42p2], "order of first appearance");
    assert_eq!(h.market.books_of(INST).count(), 2);
    assert_eq!(h.market.books_of(43).count(), 1);
    assert!(h
        .market
        .book(BookKey {
            instrument_id: 44,
            publisher_id: PUB
        })
        .is_none());

    // Instrument 42, publisher 1: untouched by everything else.
    let o = h.book().order(1).unwrap();
    assert_eq!((o.side, o.price, o.size), (Side::Bid, px(100), 5));
    assert_eq!(h.counters().actions.total(), 1);
    // Instrument 43: its cancel removed its own order 1 only.
    let b43 = h.book_of(k43);
    assert_eq!(b43.order(1), None);
    assert_eq!(b43.order_count(), 0);
    assert_eq!(b43.counters().unknown_cancels, 0);
    // Publisher 2: modify applied to its own order (no unknown modify), then cleared.
    let bp2 = h.book_of(k42p2);
    assert_eq!(bp2.counters().unknown_modifies, 0);
    assert_eq!(bp2.counters().unknown_cancels, 1);
    assert_eq!(bp2.counters().actions.clear, 1);
    assert_eq!(bp2.order_count(), 0);
    // Market totals sum the books.
    let total = h.market.counters();
    assert_eq!(total.actions.total(), 7);
    assert_eq!(total.unknown_cancels, 1);
    // Applied keys name each record's book.
    let applied_keys: Vec<BookKey> = h.applied.iter().map(|a| a.key).collect();
    assert_eq!(applied_keys, [KEY, k43, k42p2, k43, k42p2, k42p2, k42p2]);
}

fn views_queue_position_order_level_level_orders(h: &mut Harness) {
    let b = h.book();
    // order()
    let o = b.order(6).unwrap();
    assert_eq!(
        (o.order_id, o.side, o.price, o.size, o.ts_priority),
        (6, Side::Ask, px(101), 3, 6)
    );
    assert_eq!(b.order(1234), None);
    // queue_position()
    assert_eq!(b.queue_position(1), Some(0));
    assert_eq!(b.queue_position(2), Some(1));
    assert_eq!(b.queue_position(7), Some(2));
    assert_eq!(b.queue_position(3), Some(0));
    assert_eq!(b.queue_position(5), Some(0));
    assert_eq!(b.queue_position(6), Some(1));
    assert_eq!(b.queue_position(1234), None);
    // level()
    assert_eq!(
        b.level(Side::Bid, px(100)),
        Some(LevelView {
            price: px(100),
            size: 19,
            count: 3
        })
    );
    assert_eq!(b.level(Side::Ask, px(100)), None, "sides are separate");
    assert_eq!(b.level(Side::Bid, px(101)), None);
    // level_orders()
    let sizes: Vec<u32> = b.level_orders(Side::Ask, px(101)).map(|o| o.size).collect();
    assert_eq!(sizes, [2, 3]);
    assert!(b
        .level_orders(Side::Ask, px(101))
        .all(|o| o.side == Side::Ask && o.price == px(101)));
    assert_eq!(b.level_orders(Side::Bid, px(50)).count(), 0);
    // levels(), best first, and the counts.
    assert_eq!(h.levels(Side::Bid), [(px(100), 19, 3), (px(99), 7, 1)]);
    assert_eq!(h.levels(Side::Ask), [(px(101), 5, 2), (px(102), 1, 1)]);
    assert_eq!(b.levels(Side::Bid).len(), 2);
    assert_eq!(b.level_count(Side::Ask), 2);
    assert_eq!(b.order_count(), 7);
    assert_eq!(b.best_bid().unwrap().price, px(100));
    assert_eq!(b.best_ask().unwrap().price, px(101));
    assert!(!b.is_crossed());
    assert_eq!(b.key(), KEY);
}

fn ts_priority_updates_only_on_priority_loss(h: &mut Harness) {
    let ts = |h: &Harness| h.book().order(1).unwrap().ts_priority;
    assert_eq!(ts(h), 10, "size decrease keeps priority and its timestamp");
    h.apply(cancel(B, 1, px(100), 2).ts(25));
    assert_eq!(ts(h), 10, "partial cancel keeps priority");
    h.apply(modify(B, 1, px(100), 6).ts(26));
    assert_eq!(ts(h), 10, "unchanged modify keeps priority");
    h.apply(modify(B, 1, px(100), 9).ts(30));
    assert_eq!(ts(h), 30, "size increase loses priority");
    assert_eq!(h.queue(Side::Bid, px(100)), [2, 1]);
    h.apply(modify(B, 1, px(99), 9).ts(40));
    assert_eq!(ts(h), 40, "price change loses priority");
    h.apply(modify(A, 1, px(99), 9).ts(50));
    assert_eq!(ts(h), 50, "side change loses priority");
    h.apply(add(A, 1, px(98), 1).ts(60));
    assert_eq!(ts(h), 60, "a duplicate add is a fresh order");
    assert_eq!(h.book().order(2).unwrap().ts_priority, 11);
}

fn market_reset_keeps_books_empty_and_restarts_index(h: &mut Harness) {
    assert_eq!(h.market.next_index(), 3);
    h.market.reset();
    assert_eq!(h.market.next_index(), 0);
    assert_eq!(h.market.books().len(), 2, "books stay registered");
    for b in h.market.books() {
        assert_eq!(b.order_count(), 0);
        assert_eq!(b.level_count(Side::Bid), 0);
        assert_eq!(b.level_count(Side::Ask), 0);
        assert_eq!(*b.counters(), Counters::default());
        assert_eq!(*b.state(), BookState::default());
        assert_eq!(b.aggregated_sides(), (false, false));
        b.check_integrity().unwrap();
    }
    assert_eq!(h.market.counters(), Counters::default());
    // The replay after a reset starts at index 0 and rebuilds the same book.
    let a = h.apply(add(B, 1, px(100), 5));
    assert_eq!(a.index, 0);
    assert!(a.boundary);
    assert_eq!(h.book().state().event_index, Some(0));
    assert_eq!(h.levels(Side::Bid), [(px(100), 5, 1)]);
    assert_eq!(h.market.books().len(), 2);
}

fn set_next_index_numbers_following_records(h: &mut Harness) {
    assert_eq!(h.applied[0].index, 0);
    h.market.set_next_index(1_000);
    assert_eq!(h.market.next_index(), 1_000);
    let a = h.apply(add(B, 2, px(100), 5).mid());
    assert_eq!(a.index, 1_000);
    assert_eq!(h.book().state().event_index, Some(0));
    let a = h.apply(cancel(B, 2, px(100), 5));
    assert_eq!(a.index, 1_001);
    assert_eq!(h.book().state().event_index, Some(1_001));
    assert_eq!(h.market.next_index(), 1_002);
}

// ---------------------------------------------------------------------------------------------
// Side parsing
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::bid(B, Some(Side::Bid))]
#[case::ask(A, Some(Side::Ask))]
#[case::none(N, None)]
#[case::garbage(b'x', None)]
fn side_from_c_char(#[case] c: u8, #[case] expected: Option<Side>) {
    assert_eq!(Side::from_c_char(c as std::ffi::c_char), expected);
    if let Some(s) = expected {
        assert_eq!(s.as_char() as u8, c);
        assert_eq!(s.opposite().opposite(), s);
        assert_ne!(s.opposite(), s);
    }
}

#[test]
fn side_change_record_builder_is_used() {
    // Keeps `Rec::side` exercised: a modify that flips the side through the builder.
    let mut h = Harness::new();
    h.run(&[add(B, 1, px(100), 5), modify(B, 1, px(100), 5).side(A)]);
    assert_eq!(h.book().order(1).unwrap().side, Side::Ask);
    h.assert_all_books_intact();
}

// ---------------------------------------------------------------------------------------------
// Prices
// ---------------------------------------------------------------------------------------------

#[rstest]
#[case::es_quarter_point(3_512_250_000_000, "3512.25")]
#[case::one_unit(1, "0.000000001")]
#[case::zero(0, "0")]
#[case::integer(5_000_000_000, "5")]
#[case::trailing_zeros_trimmed(1_500_000_000, "1.5")]
#[case::leading_fraction_zeros(1_000_000_010, "1.00000001")]
#[case::sub_unit(250_000_000, "0.25")]
#[case::negative(-1_250_000_000, "-1.25")]
#[case::negative_sub_unit(-1, "-0.000000001")]
#[case::negative_spread(-62_500_000, "-0.0625")]
#[case::max(i64::MAX, "9223372036.854775807")]
#[case::min(i64::MIN, "-9223372036.854775808")]
#[case::min_plus_one(i64::MIN + 1, "-9223372036.854775807")]
fn format_price_exact(#[case] price: i64, #[case] expected: &str) {
    assert_eq!(format_price(price), expected);
    let mut out = String::from("px=");
    write_price(&mut out, price);
    assert_eq!(out, format!("px={expected}"), "write_price appends");
}

#[test]
fn format_price_round_trips_through_decimal() {
    // Every formatted price parses back to the same integer (no float anywhere).
    for &p in &[
        1i64,
        -1,
        999_999_999,
        1_000_000_001,
        -3_512_250_000_000,
        123_456_789_012_345,
        i64::MAX,
        i64::MIN + 1,
    ] {
        let s = format_price(p);
        let neg = s.starts_with('-');
        let digits = s.trim_start_matches('-');
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let mut frac9 = frac.to_owned();
        while frac9.len() < 9 {
            frac9.push('0');
        }
        let abs: i128 =
            int.parse::<i128>().unwrap() * 1_000_000_000 + frac9.parse::<i128>().unwrap();
        let back = if neg { -abs } else { abs };
        assert_eq!(back, i128::from(p), "{p} -> {s}");
    }
}
