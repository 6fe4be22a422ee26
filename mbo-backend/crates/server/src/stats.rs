//! `mbo stats`: what an MBO file looks like, in numbers.
//!
//! Two passes over the file: the first finds each instrument's tick (the gcd of its price
//! differences, so spreads can be given in ticks), the second applies every record to
//! `mbo_book::Market` and samples the book at event boundaries (`F_LAST`), the only points
//! where it is consistent. Distributions are kept as histograms (no per-sample storage), so
//! any file size streams in constant memory.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use mbo_book::{ActionCounts, BookKey, Counters, Market, Side, UNDEF_PRICE};
use mbo_feed::dbn_file::FileDecoder;
use serde_json::{json, Value};

use crate::cli::StatsArgs;

pub fn run(args: &StatsArgs) -> Result<()> {
    let stats = FileStats::compute(&args.file)?;
    let text = if args.json {
        format!("{}\n", stats.to_json())
    } else {
        stats.to_table()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

/// Values below this are counted in a dense array; others in a map.
const DENSE: i64 = 1 << 16;

/// A histogram of integer samples.
#[derive(Debug, Clone, Default)]
pub struct Hist {
    dense: Vec<u64>,
    sparse: BTreeMap<i64, u64>,
    n: u64,
    sum: i128,
}

impl Hist {
    /// Counts `v` once.
    #[inline]
    pub fn add(&mut self, v: i64) {
        self.add_n(v, 1);
    }

    /// Counts `v` `k` times.
    #[inline]
    pub fn add_n(&mut self, v: i64, k: u64) {
        if (0..DENSE).contains(&v) {
            let i = v as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, 0);
            }
            self.dense[i] += k;
        } else {
            *self.sparse.entry(v).or_default() += k;
        }
        self.n += k;
        self.sum += i128::from(v) * i128::from(k);
    }

    /// `(value, count)` in increasing value order.
    fn iter(&self) -> impl Iterator<Item = (i64, u64)> + '_ {
        let below = self.sparse.range(..0).map(|(&v, &c)| (v, c));
        let dense = self
            .dense
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(v, &c)| (v as i64, c));
        let above = self.sparse.range(DENSE..).map(|(&v, &c)| (v, c));
        below.chain(dense).chain(above)
    }

    /// Nearest-rank quantile, `q` in 0..=1 (0 = minimum, 1 = maximum).
    pub fn quantile(&self, q: f64) -> Option<i64> {
        if self.n == 0 {
            return None;
        }
        let rank = ((q * self.n as f64).ceil() as u64).clamp(1, self.n);
        let mut seen = 0;
        for (v, c) in self.iter() {
            seen += c;
            if seen >= rank {
                return Some(v);
            }
        }
        None
    }

    /// Mean of the samples.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }

    /// Fraction of samples equal to `v`.
    pub fn frac_eq(&self, v: i64) -> f64 {
        let c = if (0..DENSE).contains(&v) {
            self.dense.get(v as usize).copied().unwrap_or(0)
        } else {
            self.sparse.get(&v).copied().unwrap_or(0)
        };
        c as f64 / self.n.max(1) as f64
    }

    /// `{count, min, p50, p90, p99, max, mean}` (nulls when empty).
    pub fn summary(&self) -> Value {
        json!({
            "count": self.n,
            "min": self.quantile(0.0),
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
            "p99": self.quantile(0.99),
            "max": self.quantile(1.0),
            "mean": self.mean().map(round3),
        })
    }

    /// `{mean, p50, p90}` (nulls when empty).
    pub fn short(&self) -> Value {
        json!({
            "mean": self.mean().map(round3),
            "p50": self.quantile(0.5),
            "p90": self.quantile(0.9),
        })
    }
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.abs()
}

/// Statistics of one MBO file.
#[derive(Debug, Clone)]
pub struct FileStats {
    /// The file as given.
    pub file: String,
    /// Dataset from the metadata.
    pub dataset: String,
    /// Symbols from the metadata.
    pub symbols: Vec<String>,
    /// Records.
    pub records: u64,
    /// Books (instrument × publisher).
    pub books: usize,
    /// First and last `ts_recv` (ns).
    pub ts_range: Option<(u64, u64)>,
    /// Engine counters summed over books (actions, unknown orders, crossed boundaries...).
    pub counters: Counters,
    /// Tick of each instrument (1e-9 units): gcd of its price differences.
    pub ticks: BTreeMap<u32, i64>,
    /// Sizes of `A` records.
    pub add_size: Hist,
    /// Sizes of `T` records.
    pub trade_size: Hist,
    /// Events whose first record is a `T`.
    pub trade_events: u64,
    /// Records per event (per book).
    pub records_per_event: Hist,
    /// Price levels on each side at boundaries (both sides, empty ones as 0).
    pub levels_per_side: Hist,
    /// Orders in each price level at boundaries.
    pub orders_per_level: Hist,
    /// `best ask - best bid` in ticks at boundaries with both sides (≤ 0 when crossed).
    pub spread_ticks: Hist,
}

/// Per-book event in progress.
#[derive(Debug, Default, Clone, Copy)]
struct Open {
    records: u64,
    trade: bool,
}

impl FileStats {
    /// Reads `path` twice (ticks, then the book) and gathers the statistics.
    ///
    /// # Errors
    /// Any problem of the file (missing, not DBN, not MBO, truncated), named with its path.
    pub fn compute(path: &Path) -> Result<Self> {
        let ticks = Self::ticks(path)?;
        let mut dec = FileDecoder::open(path)?;
        let meta = dec.metadata().clone();
        let mut s = FileStats {
            file: path.display().to_string(),
            dataset: meta.dataset.clone(),
            symbols: meta.symbols.clone(),
            records: 0,
            books: 0,
            ts_range: None,
            counters: Counters::default(),
            ticks,
            add_size: Hist::default(),
            trade_size: Hist::default(),
            trade_events: 0,
            records_per_event: Hist::default(),
            levels_per_side: Hist::default(),
            orders_per_level: Hist::default(),
            spread_ticks: Hist::default(),
        };
        let mut market = Market::new();
        let mut open: HashMap<BookKey, Open> = HashMap::new();
        while let Some(rec) = dec.next_record()? {
            s.records += 1;
            s.ts_range = Some(match s.ts_range {
                None => (rec.ts_recv, rec.ts_recv),
                Some((first, _)) => (first, rec.ts_recv),
            });
            match rec.action as u8 {
                b'A' => s.add_size.add(i64::from(rec.size)),
                b'T' => s.trade_size.add(i64::from(rec.size)),
                _ => {}
            }
            let applied = market.apply(rec);
            let ev = open.entry(applied.key).or_default();
            if ev.records == 0 {
                ev.trade = rec.action as u8 == b'T';
            }
            ev.records += 1;
            if !applied.boundary {
                continue;
            }
            let done = std::mem::take(ev);
            s.records_per_event.add(done.records as i64);
            s.trade_events += u64::from(done.trade);
            let Some(book) = market.book(applied.key) else {
                continue;
            };
            for side in [Side::Bid, Side::Ask] {
                s.levels_per_side.add(book.level_count(side) as i64);
                for level in book.levels(side) {
                    s.orders_per_level.add(i64::from(level.count));
                }
            }
            if let (Some(bid), Some(ask)) = (book.best_bid(), book.best_ask()) {
                let tick = s
                    .ticks
                    .get(&applied.key.instrument_id)
                    .copied()
                    .unwrap_or(1);
                s.spread_ticks.add((ask.price - bid.price) / tick);
            }
        }
        s.counters = market.counters();
        s.books = market.books().len();
        Ok(s)
    }

    fn ticks(path: &Path) -> Result<BTreeMap<u32, i64>> {
        let mut dec = FileDecoder::open(path)?;
        let mut first: HashMap<u32, i64> = HashMap::new();
        let mut ticks: BTreeMap<u32, i64> = BTreeMap::new();
        while let Some(rec) = dec.next_record()? {
            if rec.price == UNDEF_PRICE || rec.price <= 0 {
                continue;
            }
            let id = rec.hd.instrument_id;
            let f = *first.entry(id).or_insert(rec.price);
            let t = ticks.entry(id).or_insert(0);
            *t = gcd(*t, rec.price - f);
        }
        ticks.retain(|_, t| *t > 0);
        Ok(ticks)
    }

    fn action_rows(a: &ActionCounts) -> [(char, u64); 8] {
        a.by_code()
    }

    /// One JSON object.
    pub fn to_json(&self) -> Value {
        let total = self.records.max(1) as f64;
        let actions: serde_json::Map<String, Value> = Self::action_rows(&self.counters.actions)
            .iter()
            .map(|&(code, count)| {
                let key = if code == '?' {
                    "other".to_owned()
                } else {
                    code.to_string()
                };
                let pct = round3(count as f64 * 100.0 / total);
                (key, json!({ "count": count, "pct": pct }))
            })
            .collect();
        let ticks: serde_json::Map<String, Value> = self
            .ticks
            .iter()
            .map(|(id, t)| (id.to_string(), json!(mbo_book::format_price(*t))))
            .collect();
        let c = &self.counters;
        let mut spread = self.spread_ticks.summary();
        if let Value::Object(m) = &mut spread {
            m.insert(
                "one_tick_pct".into(),
                json!(round3(self.spread_ticks.frac_eq(1) * 100.0)),
            );
        }
        json!({
            "file": self.file,
            "dataset": self.dataset,
            "symbols": self.symbols,
            "records": self.records,
            "events": c.boundaries,
            "books": self.books,
            "ts_first": self.ts_range.map(|r| r.0),
            "ts_last": self.ts_range.map(|r| r.1),
            "actions": actions,
            "records_per_event": self.records_per_event.summary(),
            "add_size": self.add_size.summary(),
            "trades": {
                "records": c.actions.trade,
                "events": self.trade_events,
                "size": self.trade_size.summary(),
            },
            "levels_per_side": self.levels_per_side.short(),
            "orders_per_level": self.orders_per_level.short(),
            "spread_ticks": spread,
            "ticks": ticks,
            "unknown_cancels": c.unknown_cancels,
            "unknown_modifies": c.unknown_modifies,
            "crossed_boundaries": c.crossed_boundaries,
            "invalid_records": c.invalid_records,
            "duplicate_adds": c.duplicate_adds,
            "over_cancels": c.over_cancels,
            "snapshot_records": c.snapshot_records,
            "maybe_bad_records": c.maybe_bad_records,
            "aggregated_records": c.aggregated_records,
        })
    }

    /// A human-readable table.
    pub fn to_table(&self) -> String {
        use std::fmt::Write as _;
        let num = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        let mean = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        let dist = |h: &Hist| {
            format!(
                "min {}  p50 {}  p90 {}  p99 {}  max {}  mean {}",
                num(h.quantile(0.0)),
                num(h.quantile(0.5)),
                num(h.quantile(0.9)),
                num(h.quantile(0.99)),
                num(h.quantile(1.0)),
                mean(h.mean())
            )
        };
        let short = |h: &Hist| {
            format!(
                "mean {}  p50 {}  p90 {}",
                mean(h.mean()),
                num(h.quantile(0.5)),
                num(h.quantile(0.9))
            )
        };
        let c = &self.counters;
        let mut t = String::new();
        // Writing to a String cannot fail.
        let mut row = |label: &str, value: String| {
            let _ = writeln!(t, "{label:<20} {value}");
        };
        row("file", self.file.clone());
        row(
            "dataset",
            format!("{}  symbols {}", self.dataset, self.symbols.join(",")),
        );
        row("records", self.records.to_string());
        row("events", c.boundaries.to_string());
        row("books", self.books.to_string());
        if let Some((a, b)) = self.ts_range {
            row("ts_recv", format!("{a} .. {b}"));
        }
        let total = self.records.max(1) as f64;
        for (code, count) in Self::action_rows(&c.actions) {
            if count > 0 || "ACMTF".contains(code) {
                row(
                    &format!("action {code}"),
                    format!("{count:>10}  {:6.2} %", count as f64 * 100.0 / total),
                );
            }
        }
        row("records per event", dist(&self.records_per_event));
        row("add size", dist(&self.add_size));
        row(
            "trades",
            format!(
                "{} T records in {} events",
                c.actions.trade, self.trade_events
            ),
        );
        row("trade size", dist(&self.trade_size));
        row("levels per side", short(&self.levels_per_side));
        row("orders per level", short(&self.orders_per_level));
        row(
            "spread (ticks)",
            format!(
                "{}  one tick {:.2} %",
                dist(&self.spread_ticks),
                self.spread_ticks.frac_eq(1) * 100.0
            ),
        );
        let ticks: Vec<String> = self
            .ticks
            .iter()
            .map(|(id, t)| format!("{id}: {}", mbo_book::format_price(*t)))
            .collect();
        row("tick", ticks.join("  "));
        row("unknown cancels", c.unknown_cancels.to_string());
        row("unknown modifies", c.unknown_modifies.to_string());
        row("crossed boundaries", c.crossed_boundaries.to_string());
        row("invalid records", c.invalid_records.to_string());
        row("snapshot records", c.snapshot_records.to_string());
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantiles_and_means() {
        let mut h = Hist::default();
        for v in [5, 1, 3, 2, 4, -2, 100_000] {
            h.add(v);
        }
        assert_eq!(h.n, 7);
        assert_eq!(h.quantile(0.0), Some(-2));
        assert_eq!(h.quantile(0.5), Some(3));
        assert_eq!(h.quantile(1.0), Some(100_000));
        assert_eq!(h.quantile(0.9), Some(100_000));
        assert!((h.frac_eq(1) - 1.0 / 7.0).abs() < 1e-12);
        assert_eq!(Hist::default().quantile(0.5), None);
        let mut g = Hist::default();
        g.add_n(2, 3);
        g.add(5);
        assert_eq!(g.mean(), Some(2.75));
    }

    #[test]
    fn gcd_of_price_steps() {
        assert_eq!(gcd(0, 250_000_000), 250_000_000);
        assert_eq!(gcd(30_000_000, -20_000_000), 10_000_000);
    }
}
