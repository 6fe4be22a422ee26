//! Criterion benches of the engine's operations, full replays of the real files, and a naive
//! `HashMap` + `BTreeMap` book over the same records so the engine/naive ratio shows in one
//! run.
//!
//! Micro-benches keep the book in steady state: work that grows the book (adds) is undone
//! outside the timed window, and work that shrinks it (cancels) is redone outside it, so every
//! timed operation sees the same book shape. `cancel_full_mid_queue/{10..10000}` cancels from
//! the middle of queues of that length (10,000 resting orders in every case): equal times
//! mean O(1) removal.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use mbo_book::{Book, BookKey, LevelView, Market, MboMsg, Side, UNDEF_PRICE};
use mbo_feed::dbn_file::FileDecoder;

const F_LAST: u8 = 0x80;
const INST: u32 = 1;
const PUB: u16 = 1;
const KEY: BookKey = BookKey {
    instrument_id: INST,
    publisher_id: PUB,
};
/// 100.00 in 1e-9 units.
const P0: i64 = 100_000_000_000;
/// 0.01.
const TICK: i64 = 10_000_000;

fn rec(action: u8, side: u8, order_id: u64, price: i64, size: u32) -> MboMsg {
    MboMsg {
        hd: dbn::RecordHeader::new::<MboMsg>(0xA0, PUB, INST, order_id),
        order_id,
        price,
        size,
        flags: dbn::FlagSet::new(F_LAST),
        channel_id: 0,
        action: action as std::ffi::c_char,
        side: side as std::ffi::c_char,
        ts_recv: order_id,
        ts_in_delta: 0,
        sequence: 0,
    }
}

fn add(order_id: u64, price: i64, size: u32) -> MboMsg {
    rec(b'A', b'B', order_id, price, size)
}

fn cancel(order_id: u64, price: i64, size: u32) -> MboMsg {
    rec(b'C', b'B', order_id, price, size)
}

fn modify(order_id: u64, price: i64, size: u32) -> MboMsg {
    rec(b'M', b'B', order_id, price, size)
}

fn book(market: &Market) -> &Book {
    market.book(KEY).expect("bench book")
}

/// A market holding `levels` bid levels (one tick apart, best at `P0`) of `per_level` orders
/// each, ids `0..levels*per_level` in queue order, plus asks far above.
fn ladder_market(levels: usize, per_level: usize, size: u32) -> Market {
    let mut m = Market::new();
    let mut id = 0u64;
    for l in 0..levels {
        for _ in 0..per_level {
            m.apply(&add(id, P0 - l as i64 * TICK, size));
            id += 1;
        }
    }
    for l in 0..10u64 {
        m.apply(&rec(
            b'A',
            b'A',
            (1 << 40) | l,
            P0 + (10_000 + l as i64) * TICK,
            5,
        ));
    }
    m
}

/// Times `ops` (one iteration each) in rounds; after each round `undo[i]` (untimed) reverts
/// `ops[i]`, so every round starts from the same book.
fn timed_rounds(market: &mut Market, iters: u64, ops: &[MboMsg], undo: &[MboMsg]) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    while done < iters {
        let n = (ops.len() as u64).min(iters - done) as usize;
        let t = Instant::now();
        for r in &ops[..n] {
            black_box(market.apply(black_box(r)));
        }
        total += t.elapsed();
        for r in &undo[..n] {
            market.apply(r);
        }
        done += n as u64;
    }
    total
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(700))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10)
}

// ---------------------------------------------------------------------------------------------
// Adds
// ---------------------------------------------------------------------------------------------

fn bench_add(c: &mut Criterion) {
    let mut g = c.benchmark_group("add");
    g.throughput(Throughput::Elements(1));

    // Joins one of 10 existing levels (100 orders each).
    g.bench_function("existing_level", |b| {
        let mut m = ladder_market(10, 100, 5);
        let ops: Vec<MboMsg> = (0..1_000u64)
            .map(|i| add((1 << 32) | i, P0 - (i % 10) as i64 * TICK, 3))
            .collect();
        let undo: Vec<MboMsg> = ops
            .iter()
            .map(|r| cancel(r.order_id, r.price, r.size))
            .collect();
        b.iter_custom(|iters| timed_rounds(&mut m, iters, &ops, &undo));
    });

    // Each add is a new best bid: a new level at the touch.
    g.bench_function("new_level_at_touch", |b| {
        let mut m = ladder_market(10, 100, 5);
        let ops: Vec<MboMsg> = (0..1_000u64)
            .map(|i| add((1 << 32) | i, P0 + (i as i64 + 1) * TICK, 3))
            .collect();
        let undo: Vec<MboMsg> = ops
            .iter()
            .map(|r| cancel(r.order_id, r.price, r.size))
            .collect();
        b.iter_custom(|iters| timed_rounds(&mut m, iters, &ops, &undo));
    });

    // Each add fills a one-tick gap somewhere in the top 200 levels (levels every 2 ticks).
    g.bench_function("new_level_within_top_200", |b| {
        let mut m = Market::new();
        for l in 0..1_000u64 {
            m.apply(&add(l, P0 - 2 * l as i64 * TICK, 5));
        }
        let ops: Vec<MboMsg> = (0..100u64)
            .map(|i| add((1 << 32) | i, P0 - (2 * i as i64 + 1) * TICK, 3))
            .collect();
        let undo: Vec<MboMsg> = ops
            .iter()
            .map(|r| cancel(r.order_id, r.price, r.size))
            .collect();
        b.iter_custom(|iters| timed_rounds(&mut m, iters, &ops, &undo));
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Cancels
// ---------------------------------------------------------------------------------------------

fn bench_cancel(c: &mut Criterion) {
    let mut g = c.benchmark_group("cancel_full_mid_queue");
    g.throughput(Throughput::Elements(1));
    for len in [10usize, 100, 1_000, 10_000] {
        g.bench_with_input(BenchmarkId::from_parameter(len), &len, |b, &len| {
            // 10,000 orders in every case: `levels` queues of `len` orders.
            let levels = 10_000 / len;
            let per_level = (1_000 / levels).max(1);
            let start = len / 2 - per_level / 2;
            let mut m = ladder_market(levels, len, 5);
            // Ids of each queue, front first (mirrors the engine's FIFO).
            let mut queues: Vec<Vec<u64>> = (0..levels)
                .map(|l| ((l * len) as u64..((l + 1) * len) as u64).collect())
                .collect();
            let price = |l: usize| P0 - l as i64 * TICK;
            let mut ops = Vec::with_capacity(1_000);
            let mut redo = Vec::with_capacity(1_000);
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut done = 0u64;
                while done < iters {
                    // The orders now in the middle of every queue.
                    ops.clear();
                    for (l, q) in queues.iter().enumerate() {
                        for &id in &q[start..start + per_level] {
                            ops.push(cancel(id, price(l), 5));
                        }
                    }
                    let n = (ops.len() as u64).min(iters - done) as usize;
                    let t = Instant::now();
                    for r in &ops[..n] {
                        black_box(m.apply(black_box(r)));
                    }
                    total += t.elapsed();
                    // Untimed: put them back (at the back of their queues, as the engine does).
                    redo.clear();
                    redo.extend(ops[..n].iter().map(|r| add(r.order_id, r.price, 5)));
                    for r in &redo {
                        m.apply(r);
                    }
                    for (l, q) in queues.iter_mut().enumerate() {
                        let k = n.saturating_sub(l * per_level).min(per_level);
                        q[start..].rotate_left(k);
                    }
                    done += n as u64;
                }
                // The model still matches the engine.
                let probe = queues[0][start];
                assert_eq!(book(&m).queue_position(probe), Some(start));
                total
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("cancel_partial");
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_lot", |b| {
        let n = 1_000u64;
        let mut m = ladder_market(10, 100, u32::MAX);
        let mut i = 0u64;
        b.iter(|| {
            let id = i % n;
            i += 1;
            m.apply(&black_box(cancel(id, P0 - (id / 100) as i64 * TICK, 1)))
        });
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Modifies
// ---------------------------------------------------------------------------------------------

fn bench_modify(c: &mut Criterion) {
    let mut g = c.benchmark_group("modify");
    g.throughput(Throughput::Elements(1));
    let n = 1_000u64;
    let price_of = |id: u64| P0 - (id / 100) as i64 * TICK;

    // Size decrease: keeps its place.
    g.bench_function("keep_priority_size_down", |b| {
        let mut m = ladder_market(10, 100, u32::MAX);
        let mut i = 0u64;
        b.iter(|| {
            let (id, round) = (i % n, i / n);
            i += 1;
            let size = u32::MAX - 1 - round as u32;
            m.apply(&black_box(modify(id, price_of(id), size)))
        });
        assert!(book(&m).check_integrity().is_ok());
    });

    // Size increase: unlinked and appended to the back of the same 100-order queue.
    g.bench_function("lose_priority_size_up", |b| {
        let mut m = ladder_market(10, 100, 10);
        let mut i = 0u64;
        b.iter(|| {
            let (id, round) = (i % n, i / n);
            i += 1;
            let size = 11 + round as u32;
            m.apply(&black_box(modify(id, price_of(id), size)))
        });
        assert!(book(&m).check_integrity().is_ok());
    });

    // Price change: moves between two adjacent levels, back of the new queue.
    g.bench_function("lose_priority_price_move", |b| {
        let mut m = ladder_market(1, n as usize, 10);
        let mut i = 0u64;
        b.iter(|| {
            let (id, round) = (i % n, i / n);
            i += 1;
            let price = if round % 2 == 0 { P0 - TICK } else { P0 };
            m.apply(&black_box(modify(id, price, 10)))
        });
        assert!(book(&m).check_integrity().is_ok());
    });
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Real files
// ---------------------------------------------------------------------------------------------

fn data_file(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

fn decode_all(name: &str) -> Vec<MboMsg> {
    let mut dec = FileDecoder::open(data_file(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(r) = dec.next_record().unwrap_or_else(|e| panic!("{e}")) {
        out.push(r.clone());
    }
    out
}

const CLX5: &str = "CLX5_mbo.dbn";
const ESH4: &str = "esh4-glbx-mdp3-20231225.mbo.dbn.zst";

fn bench_files(c: &mut Criterion) {
    let mut g = c.benchmark_group("apply_file");
    for (label, name) in [("CLX5", CLX5), ("esh4_20231225", ESH4)] {
        let records = decode_all(name);
        g.throughput(Throughput::Elements(records.len() as u64));

        // Same final book from both implementations, or the comparison means nothing.
        let mut engine = Market::new();
        let mut naive = NaiveMarket::default();
        for r in &records {
            engine.apply(r);
            naive.apply(r);
        }
        naive.assert_same_as(&engine);

        g.bench_function(BenchmarkId::new("engine", label), |b| {
            b.iter(|| {
                engine.reset();
                for r in &records {
                    black_box(engine.apply(r));
                }
            });
        });
        g.bench_function(BenchmarkId::new("naive_hashmap_btreemap", label), |b| {
            b.iter(|| {
                naive.clear();
                for r in &records {
                    naive.apply(r);
                }
                black_box(naive.books.len())
            });
        });
    }
    g.finish();
}

/// Reads the 10 best levels of both sides into a fixed array.
fn top10(book: &Book, out: &mut [[LevelView; 10]; 2]) -> usize {
    let mut n = 0;
    for (s, side) in [Side::Bid, Side::Ask].into_iter().enumerate() {
        for (i, l) in book.levels(side).take(10).enumerate() {
            out[s][i] = l;
            n += 1;
        }
    }
    n
}

fn bench_depth(c: &mut Criterion) {
    let mut g = c.benchmark_group("depth_top10");
    g.throughput(Throughput::Elements(1));
    for (label, name) in [("CLX5_end", CLX5), ("esh4_20231225_end", ESH4)] {
        let records = decode_all(name);
        let mut m = Market::new();
        for r in &records {
            m.apply(r);
        }
        let b0 = m.books().first().expect("one book");
        assert!(b0.level_count(Side::Bid) >= 10 && b0.level_count(Side::Ask) >= 10);
        let mut out = [[LevelView {
            price: 0,
            size: 0,
            count: 0,
        }; 10]; 2];
        g.bench_function(label, |b| {
            b.iter(|| top10(black_box(b0), &mut out));
        });
    }
    g.finish();
}

// ---------------------------------------------------------------------------------------------
// Naive baseline: what a first implementation looks like (std HashMap + BTreeMap + Vec queues)
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct NaiveOrder {
    id: u64,
    size: u32,
}

#[derive(Default)]
struct NaiveBook {
    /// order id → (side, price)
    orders: HashMap<u64, (Side, i64)>,
    bids: BTreeMap<i64, Vec<NaiveOrder>>,
    asks: BTreeMap<i64, Vec<NaiveOrder>>,
}

impl NaiveBook {
    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, Vec<NaiveOrder>> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    fn add(&mut self, id: u64, side: Side, price: i64, size: u32) {
        if price == UNDEF_PRICE || size == 0 {
            return;
        }
        if self.orders.contains_key(&id) {
            self.remove(id);
        }
        self.orders.insert(id, (side, price));
        self.side_mut(side)
            .entry(price)
            .or_default()
            .push(NaiveOrder { id, size });
    }

    /// Removes the order; returns its size.
    fn remove(&mut self, id: u64) -> Option<u32> {
        let (side, price) = self.orders.remove(&id)?;
        let levels = self.side_mut(side);
        let level = levels.get_mut(&price)?;
        let pos = level.iter().position(|o| o.id == id)?;
        let o = level.remove(pos);
        if level.is_empty() {
            levels.remove(&price);
        }
        Some(o.size)
    }

    fn apply(&mut self, r: &MboMsg) {
        let side = Side::from_c_char(r.side);
        match r.action as u8 {
            b'A' => {
                if let Some(side) = side {
                    self.add(r.order_id, side, r.price, r.size);
                }
            }
            b'C' => {
                let Some(&(side, price)) = self.orders.get(&r.order_id) else {
                    return;
                };
                let level = self.side_mut(side).get_mut(&price).expect("level");
                let o = level
                    .iter_mut()
                    .find(|o| o.id == r.order_id)
                    .expect("order");
                if r.size >= o.size {
                    self.remove(r.order_id);
                } else {
                    o.size -= r.size;
                }
            }
            b'M' => {
                let Some(side) = side else { return };
                let Some(&(old_side, old_price)) = self.orders.get(&r.order_id) else {
                    self.add(r.order_id, side, r.price, r.size);
                    return;
                };
                if r.price == UNDEF_PRICE {
                    return;
                }
                if r.size == 0 {
                    self.remove(r.order_id);
                    return;
                }
                let level = self.side_mut(old_side).get_mut(&old_price).expect("level");
                let o = level
                    .iter_mut()
                    .find(|o| o.id == r.order_id)
                    .expect("order");
                if old_side != side || old_price != r.price || r.size > o.size {
                    self.remove(r.order_id);
                    self.add(r.order_id, side, r.price, r.size);
                } else {
                    o.size = r.size;
                }
            }
            b'R' => {
                self.orders.clear();
                self.bids.clear();
                self.asks.clear();
            }
            _ => {}
        }
    }

    fn levels(&self, side: Side) -> Vec<(i64, u64, u32)> {
        let view = |(p, q): (&i64, &Vec<NaiveOrder>)| {
            let size: u64 = q.iter().map(|o| u64::from(o.size)).sum();
            (*p, size, q.len() as u32)
        };
        match side {
            Side::Bid => self.bids.iter().rev().map(view).collect(),
            Side::Ask => self.asks.iter().map(view).collect(),
        }
    }
}

#[derive(Default)]
struct NaiveMarket {
    books: HashMap<(u32, u16), NaiveBook>,
}

impl NaiveMarket {
    fn apply(&mut self, r: &MboMsg) {
        self.books
            .entry((r.hd.instrument_id, r.hd.publisher_id))
            .or_default()
            .apply(r);
    }

    fn clear(&mut self) {
        self.books.clear();
    }

    fn assert_same_as(&self, engine: &Market) {
        assert_eq!(self.books.len(), engine.books().len());
        for b in engine.books() {
            let k = b.key();
            let nb = &self.books[&(k.instrument_id, k.publisher_id)];
            for side in [Side::Bid, Side::Ask] {
                let ours: Vec<(i64, u64, u32)> =
                    b.levels(side).map(|l| (l.price, l.size, l.count)).collect();
                assert_eq!(ours, nb.levels(side), "{k:?} {side} differs from naive");
            }
            assert_eq!(b.order_count(), nb.orders.len());
        }
    }
}

criterion_group! {
    name = engine;
    config = config();
    targets = bench_add, bench_cancel, bench_modify, bench_files, bench_depth
}
criterion_main!(engine);
