//! Simulator generation speed into a null sink (no encoding, no I/O).
//!
//! `cargo run --release -p mbo-feed --example sim_speed [RECORDS] [INSTRUMENTS] [SEED]`
//!
//! Prints one JSON line: records, seconds, records_per_s, through
//! `RecordSource::next_record` (what the replay engine calls) and through
//! `Simulator::next_event`.

use std::hint::black_box;
use std::time::Instant;

use mbo_feed::{RecordSource, SimConfig, Simulator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(default)
    };
    let records = arg(1, 20_000_000);
    let instruments = arg(2, 3) as usize;
    let seed = arg(3, 1);
    let mut config = SimConfig::new(seed, instruments);
    config.max_records = Some(records);

    let mut sim = Simulator::new(config.clone())?;
    let start = Instant::now();
    let mut sum = 0u64;
    while let Some(r) = sim.next_record()? {
        sum = sum.wrapping_add(r.order_id ^ r.price as u64);
    }
    let per_record = start.elapsed().as_secs_f64();
    black_box(sum);

    let mut sim = Simulator::new(config)?;
    let start = Instant::now();
    let mut n = 0u64;
    while let Some(ev) = sim.next_event() {
        n += ev.len() as u64;
        black_box(ev);
    }
    let per_event = start.elapsed().as_secs_f64();
    println!(
        "{{\"records\":{records},\"instruments\":{instruments},\"next_record_seconds\":{per_record:.3},\
         \"next_record_per_s\":{:.0},\"next_event_seconds\":{per_event:.3},\"next_event_per_s\":{:.0}}}",
        records as f64 / per_record,
        n as f64 / per_event
    );
    Ok(())
}
