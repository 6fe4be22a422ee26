//! Time-travel latency benchmark of [`HistoryReader::book_at`] (issue 5 target: p99 < 50 ms
//! at 10 M records with the default checkpoint settings).
//!
//! `cargo run --release -p mbo-store --example travel -- [N]` generates N simulator records
//! (seed 1, 3 instruments; default 10,000,000) in memory, imports them into a fresh file in a
//! temp dir through a [`Recorder`] with [`RecorderOptions::default()`] (as the server does:
//! applied to a market in runs, a round offered wherever no book is mid-event), then asks
//! `book_at` for 100 random (seeded) points across the whole time range, each for a random
//! instrument, and prints one JSON line: records, import_s, rounds, points, p50_ms, p99_ms,
//! max_ms.
//!
//! Measured (2-core AMD EPYC shared with other builds, load average ~6, N = 10,000,000,
//! default rounds every 50,000 records): import 25.6 s, 199 rounds, p50 13.3 ms, p99 36.2 ms,
//! max 36.5 ms. A query costs one blob decode plus the scan of the records between the
//! round and `ts` (about 0.5 µs per record scanned), so latency grows linearly with
//! `CheckpointPolicy::every_events`.

use std::time::Instant;

use mbo_book::{BookKey, Market};
use mbo_feed::{RecordSource, SimConfig, Simulator};
use mbo_store::{HistoryReader, Recorder, RecorderOptions, Store, Writer};

/// Records applied to the market between two `Recorder::record` calls.
const RUN: usize = 256;
const POINTS: usize = 100;

/// A tiny seeded xorshift64*.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 10_000_000,
    };
    let mut sim = Simulator::new(SimConfig::new(1, 3))?;
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        match sim.next_record()? {
            Some(r) => records.push(r.clone()),
            None => break,
        }
    }

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("travel.db");
    let store = Store::open(&db)?;
    let session = store.session("simulator", "sim:seed:1", Some("SIM"))?;
    let start = Instant::now();
    let writer = Writer::spawn(&db, session, 16)?;
    let mut recorder = Recorder::new(writer, RecorderOptions::default(), None, None);
    let mut market = Market::new();
    let mut rounds = 0u64;
    for chunk in records.chunks(RUN) {
        let first = market.next_index();
        for r in chunk {
            market.apply(r);
        }
        recorder.record(first, chunk)?;
        if recorder.boundary(&market)? {
            rounds += 1;
        }
    }
    recorder.finish()?;
    let import_s = start.elapsed().as_secs_f64();
    let keys: Vec<BookKey> = market.books().iter().map(|b| b.key()).collect();
    drop(market);

    let reader = HistoryReader::open(&db)?;
    let (lo, hi) = reader.time_range(session)?.ok_or("no events stored")?;
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut ms = Vec::with_capacity(POINTS);
    let mut found = 0;
    let mut orders = 0;
    for _ in 0..POINTS {
        let ts = lo + rng.next() % (hi - lo + 1);
        let key = keys[(rng.next() % keys.len() as u64) as usize];
        let t = Instant::now();
        let book = reader.book_at(session, key, ts)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        if let Some(b) = book {
            found += 1;
            orders += b.order_count();
        }
    }
    ms.sort_by(f64::total_cmp);
    let pct = |p: f64| ms[((ms.len() as f64 * p).ceil() as usize).clamp(1, ms.len()) - 1];
    println!(
        "{{\"records\":{},\"import_s\":{import_s:.3},\"rounds\":{rounds},\"points\":{POINTS},\"books_found\":{found},\"avg_orders\":{},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"max_ms\":{:.3}}}",
        records.len(),
        orders / found.max(1),
        pct(0.50),
        pct(0.99),
        ms.last().copied().unwrap_or(0.0),
    );
    Ok(())
}
