//! `mbo bench`: decode-only versus decode+apply throughput over the same in-memory bytes.
//!
//! The file is validated and decompressed once, before timing, so zstd never enters the
//! figures. Both measurements use the same strict decoder; decode-only touches every record
//! (a checksum the optimiser cannot drop). The market is reset between passes (capacity is
//! kept, so later passes measure the steady state). The two kinds of pass alternate.

use std::hint::black_box;
use std::time::Instant;

use std::io::Write;

use anyhow::{Context, Result};
use mbo_book::Market;
use mbo_feed::dbn_file::{read_decompressed, SliceDecoder};

use crate::cli::BenchArgs;

pub fn run(args: &BenchArgs) -> Result<()> {
    let bytes = read_decompressed(&args.file)?;
    let name = args.file.as_path();
    let loops = u64::from(args.loops);

    // Warm-up pass: page in the buffer and size the market's storage.
    let mut market = Market::new();
    let per_pass = apply_pass(name, &bytes, &mut market)?;

    // Decode-only and decode+apply passes alternate, so a machine that speeds up or slows
    // down during the run (shared cores, frequency changes) affects both alike and the ratio
    // stays meaningful.
    let mut decode_secs = 0.0;
    let mut apply_secs = 0.0;
    let mut checksum = 0u64;
    for _ in 0..loops {
        let start = Instant::now();
        checksum = checksum.wrapping_add(decode_pass(name, &bytes)?);
        decode_secs += start.elapsed().as_secs_f64();

        market.reset();
        let start = Instant::now();
        apply_pass(name, &bytes, &mut market)?;
        apply_secs += start.elapsed().as_secs_f64();
    }
    black_box(checksum);

    let records = per_pass * loops;
    let decode_rps = records as f64 / decode_secs;
    let apply_rps = records as f64 / apply_secs;
    let line = serde_json::json!({
        "file": args.file.display().to_string(),
        "loops": loops,
        "records": records,
        "decode_only_rps": decode_rps.round(),
        "apply_rps": apply_rps.round(),
        "ratio": (apply_rps / decode_rps * 1000.0).round() / 1000.0,
        "boundaries": market.counters().boundaries,
    });
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{line}") {
        // A reader that went away (`| head`) is not a failure of the benchmark.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

fn decode_pass(name: &std::path::Path, bytes: &[u8]) -> Result<u64> {
    let mut dec = SliceDecoder::new(name, bytes)?;
    let mut sum = 0u64;
    while let Some(rec) = dec.next_record()? {
        sum = sum
            .wrapping_add(rec.order_id)
            .wrapping_add(rec.price as u64)
            .wrapping_add(u64::from(rec.size));
    }
    Ok(sum)
}

fn apply_pass(name: &std::path::Path, bytes: &[u8], market: &mut Market) -> Result<u64> {
    let mut dec = SliceDecoder::new(name, bytes)?;
    let mut n = 0u64;
    while let Some(rec) = dec.next_record()? {
        black_box(market.apply(rec));
        n += 1;
    }
    Ok(n)
}
