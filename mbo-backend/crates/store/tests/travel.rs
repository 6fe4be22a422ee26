//! Time travel: `HistoryReader::book_at` rebuilds exactly the book an independent replay of
//! the whole file has at its last event boundary at or before the requested time, on every
//! real file, at many points (rounds, between rounds, before, after, between records).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{import, read_file, REAL_FILES};
use dbn::MboMsg;
use mbo_book::{Book, BookKey, BookState, Market, Side};
use mbo_store::{CheckpointPolicy, HistoryReader, RecorderOptions, Store};

/// A tiny seeded xorshift64* (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Everything observable of a book: levels and queues of both sides, and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Snapshot {
    /// (price, size, count) per level, bids then asks, best first.
    levels: [Vec<(i64, u64, u32)>; 2],
    /// Per level (same order), the queue: (order id, size, ts_priority), front first.
    queues: [Vec<Vec<(u64, u32, u64)>>; 2],
    state: BookState,
}

fn snapshot(book: &Book) -> Snapshot {
    let side = |s: Side| {
        let levels: Vec<_> = book.levels(s).map(|l| (l.price, l.size, l.count)).collect();
        let queues = levels
            .iter()
            .map(|&(p, _, _)| {
                book.level_orders(s, p)
                    .map(|o| (o.order_id, o.size, o.ts_priority))
                    .collect()
            })
            .collect();
        (levels, queues)
    };
    let (bl, bq) = side(Side::Bid);
    let (al, aq) = side(Side::Ask);
    Snapshot {
        levels: [bl, al],
        queues: [bq, aq],
        state: *book.state(),
    }
}

fn key_of(r: &MboMsg) -> BookKey {
    BookKey {
        instrument_id: r.hd.instrument_id,
        publisher_id: r.hd.publisher_id,
    }
}

fn options(every_events: u64) -> RecorderOptions {
    RecorderOptions {
        batch_records: 1000,
        max_age: Duration::from_secs(3600),
        checkpoints: CheckpointPolicy {
            every_events,
            every: Duration::from_secs(3600),
        },
    }
}

/// The design of `book_at` relies on it (see the `query` module docs).
#[test]
fn every_real_file_is_in_non_decreasing_ts_recv_order() {
    for name in REAL_FILES {
        let (records, _) = read_file(name);
        assert!(!records.is_empty(), "{name}");
        let violations = records
            .windows(2)
            .filter(|w| w[1].ts_recv < w[0].ts_recv)
            .count();
        assert_eq!(violations, 0, "{name}: records out of ts_recv order");
    }
}

/// The points to query: round indexes and their neighbours, before the first round, after
/// the last, before the first record, between records, and random records and times.
fn points(records: &[MboMsg], rounds: &[u64], rng: &mut Rng) -> Vec<u64> {
    let n = records.len();
    let ts = |i: usize| records[i].ts_recv;
    let mut p = vec![
        ts(0) - 1,
        ts(0),
        ts(n - 1),
        ts(n - 1) + 1,
        u64::MAX,
        ts(n / 2),
    ];
    for &r in rounds {
        let r = r as usize;
        p.push(ts(r));
        p.push(ts(r) - 1);
        if r + 1 < n {
            p.push(ts(r + 1));
        }
    }
    let first_round = rounds.first().map_or(n, |&r| r as usize);
    for _ in 0..5 {
        p.push(ts(rng.below(first_round.max(1))));
    }
    // Between records: a time no record has (a file that is one snapshot has none).
    let gaps: Vec<usize> = (0..n - 1).filter(|&i| ts(i + 1) > ts(i) + 1).collect();
    for _ in 0..if gaps.is_empty() { 0 } else { 10 } {
        let i = gaps[rng.below(gaps.len())];
        p.push(ts(i) + 1 + rng.next() % (ts(i + 1) - ts(i) - 1));
    }
    // Random boundaries (F_LAST records) and random times.
    let lasts: Vec<usize> = (0..n).filter(|&i| records[i].flags.is_last()).collect();
    for _ in 0..120 {
        p.push(ts(lasts[rng.below(lasts.len())]));
    }
    let (lo, hi) = (ts(0), ts(n - 1));
    for _ in 0..40 {
        p.push(lo + rng.next() % (hi - lo + 1));
    }
    p
}

fn check_file(name: &str, seed: u64) {
    let (records, _) = read_file(name);
    check_records(name, &records, seed);
}

fn check_records(name: &str, records: &[MboMsg], seed: u64) {
    let n = records.len();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", name, None).unwrap();
    // About ten rounds per file: a round needs every book at a boundary, and some files
    // have few (esm4's first 13,600 records are one snapshot event; esh4-20231224 is
    // nothing but one snapshot event, so it gets a single round, at its end).
    let boundaries = records.iter().filter(|r| r.flags.is_last()).count() as u64;
    let every = (n as u64 / 10).min(boundaries / 10).max(1);
    let (_, rounds) = import(&db, session, records, options(every), 1);
    let enough = if boundaries > 1 { 5 } else { 1 };
    assert!(rounds.len() >= enough, "{name}: {} rounds", rounds.len());

    let mut rng = Rng(seed);
    let keys: Vec<BookKey> = records
        .iter()
        .map(key_of)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    // Per key, the indexes of its F_LAST records (stream order).
    let mut lasts: BTreeMap<BookKey, Vec<usize>> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.flags.is_last() {
            lasts.entry(key_of(r)).or_default().push(i);
        }
    }

    // Each query: (key, ts, expected boundary index). The expected boundary: the last F_LAST
    // record of the key before the first record (in stream order) with ts_recv > ts.
    let mut queries = Vec::new();
    for ts in points(records, &rounds, &mut rng) {
        let cut = records.iter().position(|r| r.ts_recv > ts).unwrap_or(n);
        let ks: Vec<BookKey> = if keys.len() <= 4 {
            keys.clone()
        } else {
            (0..4).map(|_| keys[rng.below(keys.len())]).collect()
        };
        for key in ks {
            let target = lasts.get(&key).and_then(|l| {
                let k = l.partition_point(|&i| i < cut);
                k.checked_sub(1).map(|k| l[k])
            });
            queries.push((key, ts, target));
        }
    }

    // One independent replay of the whole file, snapshotting each target book right after
    // its boundary record.
    let targets: BTreeSet<(usize, BookKey)> = queries
        .iter()
        .filter_map(|&(k, _, t)| t.map(|t| (t, k)))
        .collect();
    let mut expected: BTreeMap<(usize, BookKey), Snapshot> = BTreeMap::new();
    let mut market = Market::new();
    let mut next = targets.iter().peekable();
    for (i, r) in records.iter().enumerate() {
        market.apply(r);
        while let Some(&&(t, k)) = next.peek() {
            if t != i {
                break;
            }
            expected.insert((t, k), snapshot(market.book(k).unwrap()));
            next.next();
        }
    }

    let reader = HistoryReader::open(&db).unwrap();
    let (mut some, mut none) = (0, 0);
    for &(key, ts, target) in &queries {
        let got = reader.book_at(session, key, ts).unwrap();
        match target {
            None => {
                assert!(got.is_none(), "{name}: {key:?} at {ts}: expected no book");
                none += 1;
            }
            Some(t) => {
                let got = got.unwrap_or_else(|| panic!("{name}: {key:?} at {ts}: no book"));
                let want = &expected[&(t, key)];
                assert_eq!(
                    got.state().event_index,
                    Some(t as u64),
                    "{name}: {key:?} at {ts}: boundary"
                );
                assert!(
                    snapshot(&got) == *want,
                    "{name}: {key:?} at {ts} (boundary {t}): book differs from the replay"
                );
                got.check_integrity().unwrap();
                some += 1;
            }
        }
    }
    let first_ts = records[0].ts_recv;
    for &key in &keys {
        assert!(reader
            .book_at(session, key, first_ts - 1)
            .unwrap()
            .is_none());
    }
    // An unknown book has no boundary anywhere.
    let unknown = BookKey {
        instrument_id: u32::MAX,
        publisher_id: 1,
    };
    assert!(reader
        .book_at(session, unknown, u64::MAX)
        .unwrap()
        .is_none());
    assert!(some > 150, "{name}: {some} books compared");
    assert!(none > 0, "{name}: {none} empty answers");
    eprintln!(
        "{name}: {n} records, {} rounds, {} keys, {some} books compared, {none} None",
        rounds.len(),
        keys.len()
    );
}

#[test]
fn book_at_matches_an_independent_replay_on_every_real_file() {
    for (k, name) in REAL_FILES.iter().enumerate() {
        check_file(name, 0x9e37_79b9_7f4a_7c15 ^ k as u64);
    }
}

/// Several books in one stream (the real files hold one each): rounds hold every book,
/// the scan filters one book's events out of the others', and a book first seen after a
/// round is rebuilt from nothing.
#[test]
fn book_at_matches_an_independent_replay_of_a_multi_instrument_stream() {
    use mbo_feed::RecordSource;
    let mut sim = mbo_feed::Simulator::new(mbo_feed::SimConfig::new(7, 3)).unwrap();
    let mut records = Vec::new();
    while records.len() < 60_000 {
        records.push(sim.next_record().unwrap().unwrap().clone());
    }
    // A fourth book that only appears after the first rounds: a copy of instrument 1's
    // events from the middle of the stream under another instrument id.
    let late = records[0].hd.instrument_id;
    let mut with_late = Vec::with_capacity(records.len() * 5 / 4);
    for (i, r) in records.iter().enumerate() {
        with_late.push(r.clone());
        if i >= records.len() / 2 && r.hd.instrument_id == late {
            let mut c = r.clone();
            c.hd.instrument_id = 999_999;
            with_late.push(c);
        }
    }
    let keys: BTreeSet<BookKey> = with_late.iter().map(key_of).collect();
    assert!(keys.len() >= 4, "{keys:?}");
    check_records("simulator", &with_late, 42);
}

fn rec(action: u8, side: u8, price: i64, order_id: u64, last: bool, ts: u64) -> MboMsg {
    MboMsg {
        hd: dbn::RecordHeader::new::<MboMsg>(dbn::rtype::MBO, 1, 7, ts - 5),
        order_id,
        price,
        size: 10,
        flags: dbn::FlagSet::new(if last { dbn::flags::LAST } else { 0 }),
        channel_id: 0,
        action: action as std::ffi::c_char,
        side: side as std::ffi::c_char,
        ts_recv: ts,
        ts_in_delta: 0,
        sequence: ts as u32,
    }
}

/// An event whose records straddle `ts` (its `F_LAST` comes after) is not applied at all:
/// the book is the one after the previous boundary, with that boundary's state.
#[test]
fn an_event_open_at_ts_is_not_applied() {
    const P: i64 = 100_000_000_000;
    let records = vec![
        rec(b'A', b'B', P, 1, true, 100),
        rec(b'A', b'A', P + 1, 2, false, 200),
        rec(b'A', b'B', P - 1, 3, false, 300),
        rec(b'C', b'B', P, 1, true, 400),
        rec(b'A', b'A', P + 2, 4, false, 500),
    ];
    // With a round at every boundary, and with none (everything from the scan).
    for every in [1, 1_000_000] {
        check_open_event(&records, every);
    }
}

fn check_open_event(records: &[MboMsg], every: u64) {
    const P: i64 = 100_000_000_000;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("test", "test:open-event", None).unwrap();
    let (_, rounds) = import(&db, session, records, options(every), 1);
    assert_eq!(rounds.is_empty(), every > 1);
    let reader = HistoryReader::open(&db).unwrap();
    let key = key_of(&records[0]);
    let state_at = |ts| {
        reader
            .book_at(session, key, ts)
            .unwrap()
            .map(|b| snapshot(&b))
    };

    assert_eq!(state_at(99), None);
    let first = state_at(100).unwrap();
    assert_eq!(first.levels, [vec![(P, 10, 1)], vec![]]);
    assert_eq!(first.state.event_index, Some(0));
    assert_eq!(first.state.ts_recv, 100);
    // Two records of the next event are at or before 350, its F_LAST is not.
    for ts in [200, 250, 300, 399] {
        assert_eq!(state_at(ts), Some(first.clone()), "at {ts}");
    }
    let second = state_at(400).unwrap();
    assert_eq!(second.levels, [vec![(P - 1, 10, 1)], vec![(P + 1, 10, 1)]]);
    assert_eq!(second.state.event_index, Some(3));
    assert!(!second.state.in_event);
    // The last event never closes: it is never applied.
    assert_eq!(state_at(u64::MAX), Some(second));
}
