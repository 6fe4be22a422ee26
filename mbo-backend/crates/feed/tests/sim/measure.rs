//! Measures the statistics the simulator is calibrated on, from any MBO record stream.
//!
//! Shared by `tests/sim.rs` (which checks `mbo_feed::sim::calibration` against CLX5 and the
//! simulator against those numbers) and `examples/calibrate.rs` (which prints them for every
//! real file). Independent of the simulator's code: the book state comes from
//! `mbo_book::Market`, and every figure is computed from the records alone.

use std::collections::HashMap;
use std::fmt;

use mbo_book::{BookKey, Market, MboMsg, Side, UNDEF_PRICE};

/// Statistics of one stream (all instruments pooled; distances and spreads in each
/// instrument's own ticks).
#[derive(Debug, Default, Clone)]
pub struct Measurement {
    /// Records measured.
    pub records: u64,
    /// Events (records closed by `F_LAST`).
    pub events: u64,
    /// Records by action: `A C M T F R N`.
    pub actions: [u64; 7],
    /// Sizes of adds outside trade events.
    pub add_sizes: Vec<u64>,
    /// Ticks from the own-side touch of adds outside trade events (negative: inside the
    /// spread), when the own side was not empty.
    pub add_dist: Vec<i64>,
    /// Ticks from the own-side touch of cancelled known orders (outside trade events).
    pub cancel_dist: Vec<i64>,
    /// Cancels (outside trade events) leaving part of the order.
    pub partial_cancels: u64,
    /// Cancels (outside trade events) removing the whole order.
    pub full_cancels: u64,
    /// Modifies of known orders outside trade events, by kind: price change, size down
    /// (same price), size up (same price), no change.
    pub modify_kinds: [u64; 4],
    /// Ticks between old and new price of price-changing modifies (positive: toward the
    /// touch, negative: away from it).
    pub modify_moves: Vec<i64>,
    /// Ticks from the own-side touch of modified known orders (outside trade events).
    pub modify_dist: Vec<i64>,
    /// `ts_recv - ts_event` (ns) of each event's first record.
    pub latency_ns: Vec<u64>,
    /// Records per event.
    pub event_len: Vec<u64>,
    /// Events by kind: single `A`, single `C`, single `M`, trade (`T` first), other.
    pub event_kinds: [u64; 5],
    /// `F` records per trade event.
    pub fills_per_trade: Vec<u64>,
    /// Price levels (`T` records) per trade event.
    pub levels_per_trade: Vec<u64>,
    /// Traded size per trade event (sum of `T` sizes).
    pub trade_sizes: Vec<u64>,
    /// Trade events with an `A` (the aggressor's remainder rests).
    pub trades_with_remainder: u64,
    /// Trade events with no `F` (trades against implied or hidden liquidity).
    pub trades_without_fill: u64,
    /// Resting-order updates after fills in trade events: (`C` full fills, `M` partial fills).
    pub fill_updates: (u64, u64),
    /// Spread in ticks at boundaries with both sides present.
    pub spread_ticks: Vec<i64>,
    /// Price levels per side at boundaries (both sides pooled).
    pub levels_per_side: Vec<u64>,
    /// Orders per level over all levels at boundaries (every level is one sample).
    pub orders_per_level: Vec<u64>,
    /// Orders at the best level at boundaries (both sides pooled).
    pub orders_at_touch: Vec<u64>,
    /// Resting orders per book at boundaries.
    pub orders_per_book: Vec<u64>,
    /// Nanoseconds of `ts_recv` between consecutive events of a book.
    pub event_gap_ns: Vec<u64>,
    /// Crossed or locked boundaries (best bid >= best ask).
    pub crossed_boundaries: u64,
    /// Cancels and modifies of unknown orders (engine counters).
    pub unknown: (u64, u64),
    /// Adds outside trade events while the spread was wider than one tick: (all, inside the
    /// spread).
    pub wide_adds: (u64, u64),
    /// Sum over boundaries of the orders resting `d` ticks behind the own-side touch
    /// (`d` < 301), and the number of (boundary, side) samples.
    pub depth_profile: (Vec<u64>, u64),
    /// Per book, `bid + ask` in ticks (twice the mid) at each boundary with both sides.
    pub mids: HashMap<BookKey, Vec<i64>>,
}

/// Smallest price increment of each instrument: the gcd of its price differences.
pub fn ticks(records: &[MboMsg]) -> HashMap<u32, i64> {
    let mut first: HashMap<u32, i64> = HashMap::new();
    let mut tick: HashMap<u32, i64> = HashMap::new();
    for r in records {
        if r.price == UNDEF_PRICE || r.price <= 0 {
            continue;
        }
        let id = r.hd.instrument_id;
        let f = *first.entry(id).or_insert(r.price);
        let t = tick.entry(id).or_insert(0);
        *t = gcd(*t, (r.price - f).abs());
    }
    tick.into_iter().filter(|&(_, t)| t > 0).collect()
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Percentile (nearest rank) of `v`, `q` in 0..=100. 0 when empty.
pub fn pct<T: Copy + Ord + Default>(v: &[T], q: u32) -> T {
    if v.is_empty() {
        return T::default();
    }
    let mut s = v.to_vec();
    s.sort_unstable();
    let rank = (q as usize * s.len()).div_ceil(100).clamp(1, s.len());
    s[rank - 1]
}

/// Mean of `v`.
pub fn mean(v: &[u64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<u64>() as f64 / v.len() as f64
    }
}

/// Fraction of `v` matching `pred`.
pub fn frac<T>(v: &[T], pred: impl Fn(&T) -> bool) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().filter(|x| pred(x)).count() as f64 / v.len() as f64
    }
}

/// One record's book key.
fn key(r: &MboMsg) -> BookKey {
    BookKey {
        instrument_id: r.hd.instrument_id,
        publisher_id: r.hd.publisher_id,
    }
}

/// Ticks of `price` behind the own-side best (`best`): positive = deeper in the book.
fn behind(side: Side, best: i64, price: i64, tick: i64) -> i64 {
    match side {
        Side::Bid => (best - price) / tick,
        Side::Ask => (price - best) / tick,
    }
}

impl Measurement {
    /// Measures `records` (the whole stream is applied; only records with
    /// `ts_recv < until` are measured, so a pre-open tail can be left out).
    pub fn of(records: &[MboMsg], until: u64) -> Self {
        let ticks = ticks(records);
        let mut m = Measurement::default();
        let mut market = Market::new();
        let mut event: Vec<MboMsg> = Vec::new();
        let mut last_event_ts: HashMap<BookKey, u64> = HashMap::new();
        for r in records {
            let measured = r.ts_recv < until;
            let tick = ticks.get(&r.hd.instrument_id).copied().unwrap_or(1);
            let in_trade = event.first().is_some_and(|f| f.action as u8 == b'T')
                || (event.is_empty() && r.action as u8 == b'T');
            if measured && !r.flags.is_snapshot() && !in_trade {
                m.before_apply(&market, r, tick);
            }
            let applied = market.apply(r);
            event.push(r.clone());
            if !applied.boundary {
                continue;
            }
            if measured {
                m.records += event.len() as u64;
                for e in &event {
                    let i = b"ACMTFRN"
                        .iter()
                        .position(|&c| c == e.action as u8)
                        .unwrap_or(6);
                    m.actions[i] += 1;
                }
                if !event.iter().any(|e| e.flags.is_snapshot()) {
                    m.event(&event);
                    if let Some(prev) = last_event_ts.insert(applied.key, r.ts_recv) {
                        m.event_gap_ns.push(r.ts_recv.saturating_sub(prev));
                    }
                    if let Some(book) = market.book(applied.key) {
                        m.boundary(book, tick);
                    }
                }
            }
            event.clear();
        }
        let c = market.counters();
        m.unknown = (c.unknown_cancels, c.unknown_modifies);
        m
    }

    fn before_apply(&mut self, market: &Market, r: &MboMsg, tick: i64) {
        let Some(book) = market.book(key(r)) else {
            if r.action as u8 == b'A' {
                self.add_sizes.push(u64::from(r.size));
            }
            return;
        };
        let best = |side: Side| match side {
            Side::Bid => book.best_bid().map(|l| l.price),
            Side::Ask => book.best_ask().map(|l| l.price),
        };
        match r.action as u8 {
            b'A' => {
                self.add_sizes.push(u64::from(r.size));
                if let Some(side) = Side::from_c_char(r.side) {
                    if let Some(b) = best(side) {
                        let d = behind(side, b, r.price, tick);
                        self.add_dist.push(d);
                        if let (Some(bid), Some(ask)) = (best(Side::Bid), best(Side::Ask)) {
                            if ask - bid > tick {
                                self.wide_adds.0 += 1;
                                self.wide_adds.1 += u64::from(d < 0);
                            }
                        }
                    }
                }
            }
            b'C' => {
                if let Some(o) = book.order(r.order_id) {
                    if r.size < o.size {
                        self.partial_cancels += 1;
                    } else {
                        self.full_cancels += 1;
                    }
                    if let Some(b) = best(o.side) {
                        self.cancel_dist.push(behind(o.side, b, o.price, tick));
                    }
                }
            }
            b'M' => {
                if let Some(o) = book.order(r.order_id) {
                    if let Some(b) = best(o.side) {
                        self.modify_dist.push(behind(o.side, b, o.price, tick));
                    }
                    let k = if r.price != o.price {
                        self.modify_moves
                            .push(-behind(o.side, o.price, r.price, tick));
                        0
                    } else if r.size < o.size {
                        1
                    } else if r.size > o.size {
                        2
                    } else {
                        3
                    };
                    self.modify_kinds[k] += 1;
                }
            }
            _ => {}
        }
    }

    fn event(&mut self, ev: &[MboMsg]) {
        self.events += 1;
        self.event_len.push(ev.len() as u64);
        self.latency_ns
            .push(ev[0].ts_recv.saturating_sub(ev[0].hd.ts_event));
        let first = ev[0].action as u8;
        let kind = match (first, ev.len()) {
            (b'A', 1) => 0,
            (b'C', 1) => 1,
            (b'M', 1) => 2,
            (b'T', _) => 3,
            _ => 4,
        };
        self.event_kinds[kind] += 1;
        if kind != 3 {
            return;
        }
        let count = |c: u8| ev.iter().filter(|e| e.action as u8 == c).count() as u64;
        let fills = count(b'F');
        self.fills_per_trade.push(fills);
        self.levels_per_trade.push(count(b'T'));
        self.trade_sizes.push(
            ev.iter()
                .filter(|e| e.action as u8 == b'T')
                .map(|e| u64::from(e.size))
                .sum(),
        );
        if count(b'A') > 0 {
            self.trades_with_remainder += 1;
        }
        if fills == 0 {
            self.trades_without_fill += 1;
        }
        self.fill_updates.0 += count(b'C');
        self.fill_updates.1 += count(b'M');
    }

    fn boundary(&mut self, book: &mbo_book::Book, tick: i64) {
        if book.is_crossed() {
            self.crossed_boundaries += 1;
        }
        if let (Some(b), Some(a)) = (book.best_bid(), book.best_ask()) {
            self.spread_ticks.push((a.price - b.price) / tick);
            self.mids
                .entry(book.key())
                .or_default()
                .push((a.price + b.price) / tick);
        }
        self.orders_per_book.push(book.order_count() as u64);
        for side in [Side::Bid, Side::Ask] {
            self.levels_per_side.push(book.level_count(side) as u64);
            if self.depth_profile.0.is_empty() {
                self.depth_profile.0 = vec![0; 301];
            }
            if let Some(best) = book.levels(side).next() {
                self.depth_profile.1 += 1;
                for l in book.levels(side) {
                    let d = behind(side, best.price, l.price, tick);
                    if let Some(slot) = usize::try_from(d)
                        .ok()
                        .and_then(|d| self.depth_profile.0.get_mut(d))
                    {
                        *slot += u64::from(l.count);
                    } else {
                        break;
                    }
                }
            }
            let mut levels = book.levels(side);
            if let Some(best) = levels.next() {
                self.orders_at_touch.push(u64::from(best.count));
                self.orders_per_level.push(u64::from(best.count));
            }
            // Deep books (ES) would make this quadratic in practice: 20 levels is the part
            // of the book the simulator models.
            for l in levels.take(19) {
                self.orders_per_level.push(u64::from(l.count));
            }
        }
    }

    /// Median absolute change of the mid, in ticks, over `n` boundaries (books pooled).
    pub fn mid_move(&self, n: usize) -> f64 {
        let mut moves: Vec<i64> = Vec::new();
        for v in self.mids.values() {
            for i in (n..v.len()).step_by(n.max(1)) {
                moves.push((v[i] - v[i - n]).abs());
            }
        }
        pct(&moves, 50) as f64 / 2.0
    }

    /// Largest range of the mid, in ticks (books compared), leaving out each book's first
    /// 10 % of boundaries (a simulated book starts empty; a file may start mid-session).
    pub fn mid_range(&self) -> f64 {
        self.mids
            .values()
            .map(|v| &v[v.len() / 10..])
            .map(|v| pct(v, 100) - pct(v, 0))
            .max()
            .unwrap_or(0) as f64
            / 2.0
    }

    /// Mean orders per tick resting `lo..=hi` ticks behind the own-side touch.
    pub fn depth_mean(&self, lo: usize, hi: usize) -> f64 {
        let (sums, n) = &self.depth_profile;
        if sums.is_empty() || *n == 0 {
            return 0.0;
        }
        let hi = hi.min(sums.len() - 1);
        sums[lo..=hi].iter().sum::<u64>() as f64 / (*n as f64 * (hi + 1 - lo) as f64)
    }

    /// Fraction of records with action `c`.
    pub fn action_frac(&self, c: u8) -> f64 {
        let i = b"ACMTFRN".iter().position(|&x| x == c).unwrap_or(6);
        self.actions[i] as f64 / self.records.max(1) as f64
    }

    /// Fraction of events of kind `k` (0 add, 1 cancel, 2 modify, 3 trade, 4 other).
    pub fn event_frac(&self, k: usize) -> f64 {
        self.event_kinds[k] as f64 / self.events.max(1) as f64
    }
}

impl fmt::Display for Measurement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = |v: &[u64]| {
            format!(
                "min {} p50 {} p90 {} p99 {} max {} mean {:.2}",
                pct(v, 0),
                pct(v, 50),
                pct(v, 90),
                pct(v, 99),
                pct(v, 100),
                mean(v)
            )
        };
        let pi = |v: &[i64]| {
            format!(
                "p1 {} p10 {} p50 {} p90 {} p99 {}",
                pct(v, 1),
                pct(v, 10),
                pct(v, 50),
                pct(v, 90),
                pct(v, 99)
            )
        };
        writeln!(f, "records {} events {}", self.records, self.events)?;
        write!(f, "actions:")?;
        for (i, c) in "ACMTFRN".chars().enumerate() {
            write!(
                f,
                " {c} {:.4}",
                self.actions[i] as f64 / self.records.max(1) as f64
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "events: add {:.4} cancel {:.4} modify {:.4} trade {:.4} other {:.4}",
            self.event_frac(0),
            self.event_frac(1),
            self.event_frac(2),
            self.event_frac(3),
            self.event_frac(4)
        )?;
        writeln!(f, "records/event: {}", p(&self.event_len))?;
        writeln!(f, "add size: {}", p(&self.add_sizes))?;
        for s in [1u64, 2, 3, 4, 5, 10, 20, 50] {
            write!(f, " <={s}: {:.4}", frac(&self.add_sizes, |&x| x <= s))?;
        }
        writeln!(f)?;
        writeln!(f, "add ticks behind touch: {}", pi(&self.add_dist))?;
        for d in -3i64..=20 {
            write!(f, " {d}:{:.4}", frac(&self.add_dist, |&x| x == d))?;
        }
        writeln!(f, " >20:{:.4}", frac(&self.add_dist, |&x| x > 20))?;
        writeln!(
            f,
            "adds while spread > 1 tick: {} of which inside {:.4}",
            self.wide_adds.0,
            self.wide_adds.1 as f64 / self.wide_adds.0.max(1) as f64
        )?;
        writeln!(f, "cancel ticks behind touch: {}", pi(&self.cancel_dist))?;
        writeln!(
            f,
            "cancels partial {} full {}",
            self.partial_cancels, self.full_cancels
        )?;
        writeln!(
            f,
            "modifies price {} size-down {} size-up {} same {}; price moves {}",
            self.modify_kinds[0],
            self.modify_kinds[1],
            self.modify_kinds[2],
            self.modify_kinds[3],
            pi(&self.modify_moves)
        )?;
        writeln!(f, "modified ticks behind touch: {}", pi(&self.modify_dist))?;
        writeln!(f, "latency ns: {}", p(&self.latency_ns))?;
        writeln!(f, "fills/trade: {}", p(&self.fills_per_trade))?;
        writeln!(f, "levels/trade: {}", p(&self.levels_per_trade))?;
        writeln!(
            f,
            "trade size: {}; with remainder add {} without fill {}; C {} M {}",
            p(&self.trade_sizes),
            self.trades_with_remainder,
            self.trades_without_fill,
            self.fill_updates.0,
            self.fill_updates.1
        )?;
        writeln!(f, "spread ticks: {}", pi(&self.spread_ticks))?;
        for d in 1i64..=5 {
            write!(f, " {d}:{:.4}", frac(&self.spread_ticks, |&x| x == d))?;
        }
        writeln!(f)?;
        writeln!(f, "levels/side: {}", p(&self.levels_per_side))?;
        writeln!(f, "orders/level (top 20): {}", p(&self.orders_per_level))?;
        writeln!(f, "orders at touch: {}", p(&self.orders_at_touch))?;
        writeln!(f, "orders/book: {}", p(&self.orders_per_book))?;
        writeln!(f, "event gap ns: {}", p(&self.event_gap_ns))?;
        writeln!(
            f,
            "mid: range {:.1} ticks, median |move| over 100 events {:.1}, over 1000 {:.1}",
            self.mid_range(),
            self.mid_move(100),
            self.mid_move(1000)
        )?;
        write!(
            f,
            "crossed boundaries {} unknown cancels {} modifies {}",
            self.crossed_boundaries, self.unknown.0, self.unknown.1
        )
    }
}
