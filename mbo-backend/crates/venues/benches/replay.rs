//! Parse + sync + apply throughput over the real recordings (`shared/data/crypto`):
//! `cargo bench -p mbo-venues`. Each iteration replays a whole recording through a fresh
//! venue state machine (book frames plus the control/trade frames around them), so the
//! figure is frames per second including JSON parsing, fixed-point conversion, sequence or
//! checksum checks and book updates.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mbo_venues::fixtures::read_frames;
use mbo_venues::{Precision, VenueKind, VenueOptions};

fn read(rel: &str) -> String {
    let dir = std::env::var_os("MBO_CRYPTO_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
        PathBuf::from,
    );
    let path = dir.join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "recording missing: {} ({e}); set MBO_CRYPTO_DATA or put ../shared/data/crypto \
             beside the repository",
            path.display()
        )
    })
}

fn bench(c: &mut Criterion) {
    let cases = [
        (
            "coinbase_legacy_level2",
            VenueKind::Coinbase,
            "coinbase/cryptofeed_COINBASE.ws.28.0",
            VenueOptions::default(),
        ),
        (
            "kraken_v1_book1000",
            VenueKind::KrakenV1,
            "kraken/cryptofeed_KRAKEN.ws.50.0",
            VenueOptions::default(),
        ),
        (
            "kraken_v2_book10",
            VenueKind::Kraken,
            "kraken/python-kraken-sdk_orderbook-v2.json",
            VenueOptions {
                precision: Some(Precision { price: 1, qty: 8 }),
                ..VenueOptions::default()
            },
        ),
        (
            "bybit_ob500",
            VenueKind::Bybit,
            "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data",
            VenueOptions::default(),
        ),
    ];
    let mut g = c.benchmark_group("replay");
    for (name, kind, file, opts) in cases {
        let text = read(file);
        let frames = read_frames(&text).unwrap();
        g.throughput(Throughput::Elements(frames.len() as u64));
        g.bench_function(name, |b| {
            let mut out = Vec::with_capacity(4096);
            b.iter(|| {
                let mut v = kind.create(&opts);
                for f in &frames {
                    v.on_frame(black_box(f.text), &mut out);
                    out.clear();
                }
                black_box(v.counters().frames)
            });
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
