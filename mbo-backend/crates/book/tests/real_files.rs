//! The engine against the naive reference model on the real Databento MBO files in
//! `shared/data/mbo/` (see its `PROVENANCE.md`), plus facts about those files.
//!
//! Every record is applied to both. At every `F_LAST` boundary the top 10 levels of both sides
//! of that book are compared (with order counts and "crossed"); every 500 boundaries and at the
//! end, full depth, every queue, every order and the engine's integrity are compared too.
//!
//! The files are required: a missing file fails the test, it is never skipped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::PathBuf;

use common::*;
use mbo_book::{Book, BookKey, Counters, Market};
use mbo_feed::dbn_file::FileDecoder;

/// Levels compared at every boundary.
const TOP: usize = 10;
/// Boundaries between full comparisons (also done at the first boundary and at the end).
const FULL_EVERY: u64 = 500;

fn data_file(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

/// One `F_LAST` boundary, as the engine saw it.
#[derive(Debug, Clone, Copy)]
struct Boundary {
    /// Record index in the file.
    index: u64,
    ts_recv: u64,
    crossed: bool,
    orders: usize,
}

/// Everything a replay saw.
struct Replay {
    name: &'static str,
    records: u64,
    market: Market,
    reference: RefMarket,
    boundaries: Vec<Boundary>,
    /// Most resting orders in one book at a boundary.
    max_orders: usize,
    /// Index and order count of the first boundary after the first `R`.
    first_boundary_after_clear: Option<(u64, usize)>,
    full_checks: u64,
}

fn key_of(b: &Book) -> RefKey {
    (b.key().instrument_id, b.key().publisher_id)
}

fn check_everything(name: &str, at: &str, book: &Book, r: &RefBook) {
    if let Err(e) = compare_full(book, r).and_then(|()| compare_orders(book, r)) {
        panic!("{name}: {at}, book {:?}: {e}", book.key());
    }
}

/// Replays `name` through the engine and the reference, comparing as described above.
fn replay(name: &'static str) -> Replay {
    let path = data_file(name);
    let mut dec = FileDecoder::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut market = Market::new();
    let mut reference = RefMarket::default();
    let mut boundaries = Vec::new();
    let mut max_orders = 0;
    let mut seen_clear = false;
    let mut first_boundary_after_clear = None;
    let mut full_checks = 0;
    let mut i: u64 = 0;
    while let Some(rec) = dec.next_record().unwrap_or_else(|e| panic!("{e}")) {
        let applied = market.apply(rec);
        let (key, last) = reference.apply(rec);
        assert_eq!(applied.index, i);
        assert_eq!(
            (applied.key.instrument_id, applied.key.publisher_id),
            key,
            "{name}: record {i}"
        );
        assert_eq!(applied.boundary, last, "{name}: record {i}");
        seen_clear |= rec.action as u8 == b'R';
        if last {
            let book = market.book(applied.key).unwrap();
            let r = reference.book(key).unwrap();
            if let Err(e) = compare_depth(book, r, Some(TOP)) {
                panic!("{name}: boundary at record {i} ({rec:?}): {e}");
            }
            boundaries.push(Boundary {
                index: i,
                ts_recv: rec.ts_recv,
                crossed: book.is_crossed(),
                orders: book.order_count(),
            });
            max_orders = max_orders.max(book.order_count());
            if seen_clear && first_boundary_after_clear.is_none() {
                first_boundary_after_clear = Some((i, book.order_count()));
            }
            if boundaries.len() == 1 || boundaries.len() as u64 % FULL_EVERY == 0 {
                check_everything(name, &format!("boundary at record {i}"), book, r);
                full_checks += 1;
            }
        }
        i += 1;
    }
    assert_eq!(dec.records(), i);
    for book in market.books() {
        let r = reference.book(key_of(book)).unwrap();
        check_everything(name, "end of file", book, r);
        full_checks += 1;
    }
    assert_eq!(market.books().len(), reference.books.len());
    let replay = Replay {
        name,
        records: i,
        market,
        reference,
        boundaries,
        max_orders,
        first_boundary_after_clear,
        full_checks,
    };
    replay.compare_counters();
    replay.print();
    replay
}

impl Replay {
    /// The engine's counters, summed over books.
    fn counters(&self) -> Counters {
        self.market.counters()
    }

    /// The only book (every file holds one instrument from one publisher).
    fn single_book(&self) -> (&Book, &RefBook) {
        assert_eq!(self.market.books().len(), 1, "{}: one book", self.name);
        let book = &self.market.books()[0];
        (book, self.reference.book(key_of(book)).unwrap())
    }

    fn compare_counters(&self) {
        for book in self.market.books() {
            let c = book.counters();
            let r = self.reference.book(key_of(book)).unwrap().counters;
            let got = (
                c.actions.add,
                c.actions.cancel,
                c.actions.modify,
                c.actions.clear,
                c.actions.trade + c.actions.fill + c.actions.none,
                c.actions.other,
                c.unknown_cancels,
                c.unknown_modifies,
                c.duplicate_adds,
                c.over_cancels,
                c.boundaries,
                c.snapshot_records,
            );
            let want = (
                r.adds,
                r.cancels,
                r.modifies,
                r.clears,
                r.no_ops,
                r.others,
                r.unknown_cancels,
                r.unknown_modifies,
                r.duplicate_adds,
                r.over_cancels,
                r.boundaries,
                r.snapshot_records,
            );
            assert_eq!(
                got,
                want,
                "{}: counters of {:?} (A, C, M, R, TFN, other, unknown C, unknown M, dup A, \
                 over C, boundaries, snapshot)",
                self.name,
                book.key()
            );
            assert_eq!(
                book.maybe_bad_book(),
                self.reference.book(key_of(book)).unwrap().maybe_bad_book
            );
        }
    }

    fn crossed(&self) -> impl Iterator<Item = &Boundary> + '_ {
        self.boundaries.iter().filter(|b| b.crossed)
    }

    /// A summary on stderr (`cargo test -- --nocapture`): what the assertions below rest on.
    fn print(&self) {
        eprintln!(
            "{}: {} records, {} boundaries ({} full checks), {} crossed (first {:?}, last \
             {:?}), max orders {}, first boundary after R {:?}\n{:#?}",
            self.name,
            self.records,
            self.boundaries.len(),
            self.full_checks,
            self.crossed().count(),
            self.crossed().next(),
            self.crossed().last(),
            self.max_orders,
            self.first_boundary_after_clear,
            self.counters()
        );
    }
}

/// 2025-09-24 21:45:00 UTC, ns: CME crude pre-open begins; crossed books are real after it.
const CLX5_PREOPEN: u64 = 1_758_750_300_000_000_000;

#[test]
fn clx5_matches_reference() {
    let r = replay("CLX5_mbo.dbn");
    let c = r.counters();
    assert_eq!(r.records, 38_212);
    let (book, _) = r.single_book();
    assert_eq!(
        book.key(),
        BookKey {
            instrument_id: 432_669,
            publisher_id: book.key().publisher_id
        }
    );
    // No snapshot, starts mid-session: cancels and modifies of orders placed before.
    assert_eq!(c.snapshot_records, 0);
    assert_eq!(c.actions.clear, 0);
    assert!(c.unknown_cancels > 0, "{c:?}");
    assert!(c.unknown_modifies > 0, "{c:?}");
    assert_eq!((c.unknown_cancels, c.unknown_modifies), (1_224, 216));
    assert_eq!(r.boundaries.len(), 32_053);
    // Crossed only in the pre-open, at boundaries.
    let early: Vec<_> = r
        .crossed()
        .filter(|b| b.ts_recv < CLX5_PREOPEN)
        .take(5)
        .collect();
    assert!(
        early.is_empty(),
        "crossed boundaries in the continuous session: {early:?}"
    );
    let first = r
        .crossed()
        .next()
        .expect("a crossed boundary in the pre-open");
    // 21:47:19 UTC.
    let s = CLX5_PREOPEN + 139 * 1_000_000_000;
    assert!(
        (s..s + 1_000_000_000).contains(&first.ts_recv),
        "first crossed boundary at {first:?}, expected 21:47:19 UTC"
    );
    assert_eq!(r.crossed().count(), 172);
    assert_eq!(c.crossed_boundaries, 172);
}

#[test]
fn esh4_snapshot_matches_reference() {
    let r = replay("esh4-glbx-mdp3-20231224.mbo.dbn.zst");
    let c = r.counters();
    assert_eq!(r.records, 8_725);
    let (book, reference) = r.single_book();
    assert_eq!(book.key().instrument_id, 17_077);
    // One snapshot: only adds, every one flagged F_SNAPSHOT, one F_LAST at the very end.
    assert_eq!(c.actions.add, 8_725);
    assert_eq!(c.snapshot_records, 8_725);
    assert_eq!(c.boundaries, 1);
    assert_eq!(r.boundaries[0].index, 8_724);
    assert_eq!(book.order_count() as u64, c.actions.add);
    assert_eq!(reference.order_count(), 8_725);
    assert_eq!(c.duplicate_adds, 0);
    assert_eq!(c.invalid_records, 0);
    // 1,451 price levels in all.
    assert_eq!(
        book.level_count(mbo_book::Side::Bid) + book.level_count(mbo_book::Side::Ask),
        1_451
    );
    assert!(!book.is_crossed());
}

/// 2023-12-25 23:00:00 UTC, ns: the CME Globex open after the Christmas pre-open.
const ESH4_OPEN: u64 = 1_703_545_200_000_000_000;

#[test]
fn esh4_session_matches_reference() {
    let r = replay("esh4-glbx-mdp3-20231225.mbo.dbn.zst");
    let c = r.counters();
    assert_eq!(r.records, 68_792);
    let (book, _) = r.single_book();
    assert_eq!(book.key().instrument_id, 17_077);
    // Starts with the 8,725 adds of the 20231224 snapshot, but here the snapshot's last record
    // (index 8724) does not carry F_LAST: the first boundary is the first live add after it.
    assert_eq!(c.snapshot_records, 8_725);
    assert_eq!(r.boundaries[0].index, 8_725);
    assert_eq!(r.boundaries[0].orders, 8_726);
    // A complete book from the start: every cancel and modify finds its order.
    assert_eq!(c.unknown_cancels, 0);
    assert_eq!(c.unknown_modifies, 0);
    assert_eq!(r.max_orders, 11_237);
    assert_eq!(r.boundaries.len(), 47_022);
    // Crossed only during the pre-open (from 22:39:55 UTC) up to the 23:00:00 open.
    let first = r.crossed().next().unwrap();
    let last = r.crossed().last().unwrap();
    assert!(
        (ESH4_OPEN - 1_205_000_000_000..ESH4_OPEN - 1_204_000_000_000).contains(&first.ts_recv),
        "{first:?}"
    );
    assert!(last.ts_recv < ESH4_OPEN + 1_000_000_000, "{last:?}");
    assert_eq!(r.crossed().count(), 891);
    assert_eq!(c.crossed_boundaries, 891);
}

#[test]
fn esm4_clear_snapshot_then_events_matches_reference() {
    let r = replay("esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst");
    let c = r.counters();
    assert_eq!(r.records, 13_796);
    let (book, _) = r.single_book();
    assert_eq!(book.key().instrument_id, 5_602);
    // A clear (itself flagged F_SNAPSHOT), then 13,600 snapshot adds, the last with F_LAST:
    // the first boundary after the clear is the snapshot's end and holds exactly 13,600 orders.
    assert_eq!(c.actions.clear, 1);
    assert_eq!(c.snapshot_records, 13_601);
    assert_eq!(r.first_boundary_after_clear, Some((13_600, 13_600)));
    assert_eq!(r.boundaries[0].index, 13_600);
    // Complete from the snapshot on; mid-session (00:00 UTC): never crossed.
    assert_eq!(c.unknown_cancels, 0);
    assert_eq!(c.unknown_modifies, 0);
    assert_eq!(r.crossed().count(), 0);
    assert_eq!(r.boundaries.len(), 185);
}
