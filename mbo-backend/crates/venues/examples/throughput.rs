//! Parse + sync + apply throughput per core over the real recordings, measured in CPU time
//! (`/proc/self/schedstat`), so a loaded machine does not skew it the way wall time does:
//! `cargo run --release -p mbo-venues --example throughput [SECONDS_PER_CASE [NAME_FILTER]]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mbo_venues::fixtures::read_frames;
use mbo_venues::{Precision, VenueKind, VenueOptions};

/// CPU time of this thread's process so far (Linux), nanoseconds.
fn cpu_ns() -> u64 {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    s.split_whitespace().next().unwrap().parse().unwrap()
}

/// JSON text without the whitespace outside strings (numbers keep their digits).
fn compact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in s.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map_or(3.0, |s| s.parse().expect("seconds"));
    let dir = std::env::var_os("MBO_CRYPTO_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
        PathBuf::from,
    );
    let v2 = VenueOptions {
        precision: Some(Precision { price: 1, qty: 8 }),
        ..VenueOptions::default()
    };
    let cases = [
        (
            "coinbase legacy level2",
            VenueKind::Coinbase,
            "coinbase/cryptofeed_COINBASE.ws.28.0",
            VenueOptions::default(),
        ),
        (
            "kraken v1 book-1000",
            VenueKind::KrakenV1,
            "kraken/cryptofeed_KRAKEN.ws.50.0",
            VenueOptions::default(),
        ),
        (
            "kraken v2 book-10",
            VenueKind::Kraken,
            "kraken/python-kraken-sdk_orderbook-v2.json",
            v2,
        ),
        (
            "kraken v1 book-10",
            VenueKind::KrakenV1,
            "kraken/python-kraken-sdk_orderbook-v1.json",
            VenueOptions::default(),
        ),
        (
            "bybit ob500",
            VenueKind::Bybit,
            "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data",
            VenueOptions::default(),
        ),
    ];
    let mut runs: Vec<(String, VenueKind, Vec<String>, VenueOptions)> = Vec::new();
    for (name, kind, file, opts) in cases {
        let path = dir.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (set MBO_CRYPTO_DATA)", path.display()));
        let frames: Vec<String> = read_frames(&text)
            .unwrap()
            .iter()
            .map(|f| f.text.to_owned())
            .collect();
        if kind == VenueKind::Kraken {
            // The SDK file is pretty-printed; live frames are compact.
            let compact = frames.iter().map(|f| compact(f)).collect();
            runs.push((format!("{name} (compact)"), kind, compact, opts.clone()));
        }
        runs.push((name.to_owned(), kind, frames, opts));
    }
    // Optional second argument: only cases whose name contains it.
    let only = std::env::args().nth(2).unwrap_or_default();
    for (name, kind, frames, opts) in runs.into_iter().filter(|r| r.0.contains(&only)) {
        let mut out = Vec::with_capacity(4096);
        let (wall, cpu0) = (Instant::now(), cpu_ns());
        let mut n = 0u64;
        while wall.elapsed() < Duration::from_secs_f64(secs) {
            let mut v = kind.create(&opts);
            for f in &frames {
                v.on_frame(std::hint::black_box(f), &mut out);
                out.clear();
            }
            n += frames.len() as u64;
        }
        let cpu = (cpu_ns() - cpu0) as f64 / 1e9;
        println!(
            "{name:<32} {:>6} frames/replay {:>10} frames  {:>5.2} M frames/s per core (CPU time)  {:>5.0} ns/frame",
            frames.len(),
            n,
            n as f64 / cpu / 1e6,
            cpu * 1e9 / n as f64
        );
    }
}
