//! Prints the statistics the simulator is calibrated on, for the real Databento files in
//! `../shared/data/mbo/` (or the files given as arguments), or for the simulator itself.
//!
//! ```text
//! cargo run --release -p mbo-feed --example calibrate [FILE...]
//! cargo run --release -p mbo-feed --example calibrate -- --sim SEED INSTRUMENTS RECORDS
//! ```
//!
//! The numbers in `mbo_feed::sim::calibration` come from this output for `CLX5_mbo.dbn`
//! (continuous session only: records before 21:00 UTC; the file ends in CME pre-open).

use std::path::PathBuf;

use mbo_feed::dbn_file::FileDecoder;
use mbo_feed::{RecordSource, SimConfig, Simulator};

#[path = "../tests/sim/measure.rs"]
#[allow(dead_code)]
mod measure;

/// 2025-09-24 21:00:00 UTC: CL's daily close; after it CLX5_mbo.dbn holds the pre-open.
const CLX5_CLOSE: u64 = 1_758_747_600_000_000_000;

const BUCKETS: [i64; 23] = [
    -1, 0, 1, 2, 3, 4, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 160, 200,
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--sim") {
        let num = |i: usize, default: u64| {
            args.get(i)
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(default)
        };
        let mut config = SimConfig::new(num(1, 1), num(2, 1) as usize);
        config.max_records = Some(num(3, 500_000));
        let mut sim = Simulator::new(config)?;
        let mut records = Vec::new();
        while let Some(r) = sim.next_record()? {
            records.push(r.clone());
        }
        report("simulator", &records, u64::MAX);
        return Ok(());
    }
    let mut files: Vec<PathBuf> = args.iter().map(PathBuf::from).collect();
    if files.is_empty() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/mbo");
        for name in [
            "CLX5_mbo.dbn",
            "esh4-glbx-mdp3-20231225.mbo.dbn.zst",
            "esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst",
        ] {
            files.push(dir.join(name));
        }
    }
    for path in files {
        let mut dec = FileDecoder::open(&path)?;
        let mut records = Vec::new();
        while let Some(r) = dec.next_record()? {
            records.push(r.clone());
        }
        let until = if path.ends_with("CLX5_mbo.dbn") {
            CLX5_CLOSE
        } else {
            u64::MAX
        };
        report(&path.display().to_string(), &records, until);
    }
    Ok(())
}

fn report(name: &str, records: &[mbo_book::MboMsg], until: u64) {
    let m = measure::Measurement::of(records, until);
    println!("== {name}");
    println!("ticks: {:?}", measure::ticks(records));
    println!("{m}");
    print!("orders per tick by depth:");
    let mut lo = 0;
    for &hi in &BUCKETS[1..] {
        print!(" {lo}-{hi}:{:.3}", m.depth_mean(lo as usize, hi as usize));
        lo = hi + 1;
    }
    println!();
    hist("add depth", &m.add_dist, &BUCKETS);
    hist("cancel depth", &m.cancel_dist, &BUCKETS);
    hist("modify depth", &m.modify_dist, &BUCKETS);
    let moves = [
        -200, -120, -110, -100, -50, -10, -5, -3, -2, -1, 0, 1, 2, 3, 5, 10, 50, 100, 110, 120, 200,
    ];
    hist("modify moves", &m.modify_moves, &moves);
    let as_i = |v: &[u64]| v.iter().map(|&x| x as i64).collect::<Vec<_>>();
    hist(
        "trade size",
        &as_i(&m.trade_sizes),
        &[1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 50],
    );
    hist(
        "fills per trade",
        &as_i(&m.fills_per_trade),
        &[0, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20],
    );
    hist(
        "add size",
        &as_i(&m.add_sizes),
        &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 20, 30, 50],
    );
    hist(
        "event gap ns",
        &as_i(&m.event_gap_ns),
        &[
            0,
            1_000,
            10_000,
            100_000,
            1_000_000,
            10_000_000,
            100_000_000,
            1_000_000_000,
        ],
    );
    hist(
        "latency ns",
        &as_i(&m.latency_ns),
        &[
            100_000, 200_000, 300_000, 400_000, 500_000, 1_000_000, 2_000_000, 5_000_000,
        ],
    );
    println!();
}

/// Fractions of `v` in `(previous edge, edge]`, then above the last edge.
fn hist(name: &str, v: &[i64], edges: &[i64]) {
    print!("{name}:");
    let mut lo = i64::MIN;
    let n = v.len().max(1) as f64;
    for &e in edges {
        let k = v.iter().filter(|&&x| x > lo && x <= e).count();
        print!(" <={e}:{:.4}", k as f64 / n);
        lo = e;
    }
    let k = v.iter().filter(|&&x| x > lo).count();
    println!(" >:{:.4}", k as f64 / n);
}
