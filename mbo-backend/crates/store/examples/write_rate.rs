//! Write-rate benchmark of the store's writer (issue 5 target: ≥ 1 M records/s).
//!
//! `cargo run --release -p mbo-store --example write_rate -- [N]` generates N simulator
//! records (seed 1, 3 instruments) in memory first, so only storage is timed, then sends
//! them through a [`Writer`] in batches of the recorder's default size (or `BATCH=n`) into
//! a fresh file in a temp dir and prints
//! one JSON line: records, seconds, records_per_s, db_bytes, bytes_per_million.

use std::time::Instant;

use mbo_feed::{RecordSource, SimConfig, Simulator};
use mbo_store::{Batch, Store, Writer};

fn batch_len() -> usize {
    std::env::var("BATCH")
        .ok()
        .and_then(|b| b.parse().ok())
        .unwrap_or(mbo_store::RecorderOptions::default().batch_records)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => 2_000_000,
    };
    let mut sim = Simulator::new(SimConfig::new(1, 3))?;
    let mut records = Vec::with_capacity(n);
    while records.len() < n {
        match sim.next_record()? {
            Some(r) => records.push(r.clone()),
            None => break,
        }
    }
    let batches: Vec<Batch> = records
        .chunks(batch_len())
        .enumerate()
        .map(|(k, c)| Batch::new((k * batch_len()) as u64, c.to_vec()))
        .collect();
    drop(records);

    let dir = tempfile::tempdir()?;
    let db = dir.path().join("bench.db");
    let store = Store::open(&db)?;
    let session = store.session("simulator", "sim:seed:1", Some("SIM"))?;
    let start = Instant::now();
    let writer = Writer::spawn(&db, session, 16)?;
    for b in batches {
        writer.send(b)?;
    }
    let stats = writer.finish()?;
    let secs = start.elapsed().as_secs_f64();
    // Fold the WAL into the main file so the size is the data's.
    store
        .connection()
        .pragma_update(None, "wal_checkpoint", "TRUNCATE")?;
    let db_bytes = store.stats()?.db_bytes;
    let written = stats.events_written;
    println!(
        "{{\"records\":{written},\"seconds\":{secs:.3},\"records_per_s\":{:.0},\"db_bytes\":{db_bytes},\"bytes_per_million\":{:.0},\"commit_ms_max\":{:.2},\"blocked_s\":{:.3}}}",
        written as f64 / secs,
        db_bytes as f64 * 1e6 / written.max(1) as f64,
        stats.commit_time_max.as_secs_f64() * 1e3,
        stats.blocked_time.as_secs_f64(),
    );
    Ok(())
}
