//! Parse + sync + apply throughput per core over the real recordings, measured in CPU time
//! (`/proc/self/schedstat`), so a loaded machine does not skew it the way wall time does:
//! `cargo run --release -p mbo-venues --example throughput [SECONDS_PER_CASE [NAME_FILTER]]`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mbo_venues::fixtures::{read_cryptofeed_http, read_frames};
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

/// A case: name, venue, frames, REST snapshots `(symbol, body)` loaded before each replay,
/// options.
type Run = (
    String,
    VenueKind,
    Vec<String>,
    Vec<(String, String)>,
    VenueOptions,
);

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
    // Binance books need their REST snapshots: each replay loads them first (timed apart
    // and not counted), so diffs before a snapshot are dropped and the rest applied live.
    let binance = [
        (
            "binance spot depth",
            VenueKind::Binance,
            "binance/cryptofeed_BINANCE.ws.1.0",
            "binance/cryptofeed_BINANCE.http.0.0",
        ),
        (
            "binance us depth",
            VenueKind::Binance,
            "binance/cryptofeed_BINANCE_US.ws.1.0",
            "binance/cryptofeed_BINANCE_US.http.0.0",
        ),
        (
            "binance futures depth",
            VenueKind::BinanceFutures,
            "binance/cryptofeed_BINANCE_FUTURES.ws.1.0",
            "binance/cryptofeed_BINANCE_FUTURES.http.0.0",
        ),
    ];
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
    let read = |file: &str| {
        let path = dir.join(file);
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (set MBO_CRYPTO_DATA)", path.display()))
    };
    let frames_of = |text: &str| -> Vec<String> {
        read_frames(text)
            .unwrap()
            .iter()
            .map(|f| f.text.to_owned())
            .collect()
    };
    let mut runs: Vec<Run> = Vec::new();
    for (name, kind, file, http) in binance {
        let snaps = read_cryptofeed_http(&read(http))
            .unwrap()
            .iter()
            .map(|s| (s.symbol.clone(), s.body.to_owned()))
            .collect();
        let frames = frames_of(&read(file));
        runs.push((
            name.to_owned(),
            kind,
            frames,
            snaps,
            VenueOptions::default(),
        ));
    }
    for (name, kind, file, opts) in cases {
        let frames = frames_of(&read(file));
        if kind == VenueKind::Kraken {
            // The SDK file is pretty-printed; live frames are compact.
            let compact = frames.iter().map(|f| compact(f)).collect();
            runs.push((
                format!("{name} (compact)"),
                kind,
                compact,
                Vec::new(),
                opts.clone(),
            ));
        }
        runs.push((name.to_owned(), kind, frames, Vec::new(), opts));
    }
    // Optional second argument: only cases whose name contains it.
    let only = std::env::args().nth(2).unwrap_or_default();
    for (name, kind, frames, snaps, opts) in runs.into_iter().filter(|r| r.0.contains(&only)) {
        let mut out = Vec::with_capacity(4096);
        let (wall, cpu0) = (Instant::now(), cpu_ns());
        let mut n = 0u64;
        let mut excluded = 0u64;
        while wall.elapsed() < Duration::from_secs_f64(secs) {
            let mut v = kind.create(&opts);
            if !snaps.is_empty() {
                let t = cpu_ns();
                for (symbol, body) in &snaps {
                    v.on_rest_snapshot(symbol, body, &mut out);
                    out.clear();
                }
                excluded += cpu_ns() - t;
            }
            for f in &frames {
                v.on_frame(std::hint::black_box(f), &mut out);
                out.clear();
            }
            n += frames.len() as u64;
        }
        let cpu = (cpu_ns() - cpu0 - excluded) as f64 / 1e9;
        println!(
            "{name:<32} {:>6} frames/replay {:>10} frames  {:>5.2} M frames/s per core (CPU time)  {:>5.0} ns/frame",
            frames.len(),
            n,
            n as f64 / cpu / 1e6,
            cpu * 1e9 / n as f64
        );
    }
}
