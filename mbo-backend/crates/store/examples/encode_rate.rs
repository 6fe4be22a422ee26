//! Encode/decode speed of the event block format alone (no SQLite):
//! `cargo run --release -p mbo-store --example encode_rate -- [N]` encodes N simulator records
//! in blocks of the recorder's batch size, five times, and prints one JSON line with the best
//! nanoseconds per record for encoding and decoding, and the encoded bytes per record.

use std::time::Instant;

use mbo_feed::{RecordSource, SimConfig, Simulator};
use mbo_store::blocks::{decode_block, encode_block, BLOCK_FORMAT};

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
    let batch = mbo_store::RecorderOptions::default().batch_records;
    let mut buf = Vec::new();
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut best_enc = f64::MAX;
    for round in 0..5 {
        let t = Instant::now();
        for c in records.chunks(batch) {
            encode_block(c, &mut buf);
            if round == 0 {
                blocks.push(buf.clone());
            }
        }
        best_enc = best_enc.min(t.elapsed().as_secs_f64());
    }
    let mut best_dec = f64::MAX;
    let mut decoded = 0usize;
    for _ in 0..5 {
        decoded = 0;
        let t = Instant::now();
        for b in &blocks {
            for r in decode_block(BLOCK_FORMAT, b)? {
                std::hint::black_box(r?);
                decoded += 1;
            }
        }
        best_dec = best_dec.min(t.elapsed().as_secs_f64());
    }
    let bytes: usize = blocks.iter().map(Vec::len).sum();
    println!(
        "{{\"records\":{},\"encode_ns_per_record\":{:.1},\"decode_ns_per_record\":{:.1},\"bytes_per_record\":{:.2}}}",
        decoded,
        best_enc * 1e9 / records.len() as f64,
        best_dec * 1e9 / records.len() as f64,
        bytes as f64 / records.len() as f64
    );
    Ok(())
}
