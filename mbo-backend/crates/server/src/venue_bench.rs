//! `mbo venue-bench`: receive → published latency of the crypto venue path, end to end, on
//! loopback.
//!
//! Four venue endpoints ([`mbo_venues_net::player`]) play real recordings in their venues'
//! framing (Kraken WS v2, Bybit v5, Coinbase's Exchange feed, Binance spot with its REST
//! snapshot) at `--rate / 4` messages per second each, looping; the server's own venue
//! runtime ([`mbo_api::venues::Venues`]: the real connection tasks, the venue engine, the
//! consolidated book) follows them, with all four venues' books under one symbol. The engine
//! records, for every venue book it publishes, the time from the socket read of the oldest
//! frame in it (taken before parsing) to the frame being visible to readers; this command
//! collects every sample after the warm-up and prints one JSON line: count, p50, p90, p99,
//! p99.9 and max in nanoseconds of updates, per venue and over all; apart, the books published
//! with a snapshot in them (the recordings loop, so snapshots of 500 to 1,000 levels come far
//! more often than live) and the consolidated book (published right after the venue books);
//! plus the message rate achieved.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mbo_api::venues::{VenueConfig, Venues};
use mbo_venues::{Precision, SymbolMap, VenueKind};
use mbo_venues_net::player::{Player, PlayerConfig};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// `mbo venue-bench`.
#[derive(Debug, Args)]
pub struct VenueBenchArgs {
    /// Messages per second over the four venues together.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Seconds played before measuring (connections, snapshots, caches).
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Keep the venue thread polling instead of sleeping (`mbo serve --venue-busy-poll`).
    #[arg(long)]
    pub busy_poll: bool,
    /// Directory of the crypto recordings (`shared/data/crypto`).
    #[arg(long, default_value = "../shared/data/crypto")]
    pub data: PathBuf,
}

/// (venue, recording, REST snapshots, venue symbol, Kraken precision).
type Source = (
    VenueKind,
    &'static str,
    Option<&'static str>,
    &'static str,
    Option<Precision>,
);

const SOURCES: [Source; 4] = [
    (
        VenueKind::Kraken,
        "kraken/python-kraken-sdk_orderbook-v2.json",
        None,
        "BTC/USD",
        Some(Precision { price: 1, qty: 8 }),
    ),
    (
        VenueKind::Bybit,
        "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data",
        None,
        "XRPUSDT",
        None,
    ),
    (
        VenueKind::Coinbase,
        "coinbase/cryptofeed_COINBASE.ws.28.0",
        None,
        "SKL-USD",
        None,
    ),
    (
        VenueKind::Binance,
        "binance/cryptofeed_BINANCE.ws.1.0",
        Some("binance/cryptofeed_BINANCE.http.0.0"),
        "NKNUSDT",
        None,
    ),
];

/// The normalized symbol every venue's book is mapped to.
const SYMBOL: &str = "BENCH";

fn percentiles(mut v: Vec<i64>) -> serde_json::Value {
    if v.is_empty() {
        return json!({"count": 0});
    }
    v.sort_unstable();
    let at = |q: f64| {
        let rank = (q * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    };
    json!({
        "count": v.len(),
        "p50_ns": at(0.50),
        "p90_ns": at(0.90),
        "p99_ns": at(0.99),
        "p999_ns": at(0.999),
        "max_ns": v[v.len() - 1],
    })
}

pub fn run(args: &VenueBenchArgs) -> Result<()> {
    if !(args.rate > 0.0 && args.rate.is_finite()) {
        bail!("--rate must be a positive number of messages per second");
    }
    if args.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    let data: &Path = &args.data;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the player runtime")?;
    rt.block_on(bench(args, data))
}

async fn bench(args: &VenueBenchArgs, data: &Path) -> Result<()> {
    let cancel = CancellationToken::new();
    let mut config = VenueConfig {
        venues: Vec::new(),
        symbols: vec![SYMBOL.to_owned()],
        symbol_map: SymbolMap::empty(),
        ws_urls: Vec::new(),
        rest_urls: Vec::new(),
        depth: None,
        coinbase_legacy: true,
        busy_poll: args.busy_poll,
    };
    let mut players = Vec::new();
    for (venue, file, rest, native, precision) in SOURCES {
        let path = data.join(file);
        let snapshots = rest.map(|r| data.join(r));
        let mut cfg =
            PlayerConfig::from_files(venue, &path, snapshots.as_deref()).with_context(|| {
                format!(
                    "loading {} (set --data to shared/data/crypto)",
                    path.display()
                )
            })?;
        cfg.rate = Some(args.rate / SOURCES.len() as f64);
        cfg.looped = true;
        cfg.kraken_precision = precision;
        let player = Player::bind("127.0.0.1:0", cfg)
            .await
            .context("binding a loopback venue endpoint")?;
        config.venues.push(venue);
        config.symbol_map.insert(venue.name(), SYMBOL, native);
        config.ws_urls.push((venue, player.ws_url()));
        config.rest_urls.push((venue, player.rest_url()));
        players.push(tokio::spawn(player.run(cancel.clone())));
    }
    let registry = prometheus::Registry::new();
    let venues = Venues::start(&config, &registry, &cancel).context("starting the venues")?;
    let hub = Arc::clone(&venues.hub);

    tokio::time::sleep(Duration::from_secs(args.warmup)).await;
    // Per connection: update samples and snapshot samples seen so far; per symbol: the
    // consolidated book's.
    let mut seen: Vec<(u64, u64)> = hub
        .connections
        .iter()
        .map(|c| (c.publish_latency.written(), c.snapshot_latency.written()))
        .collect();
    let consolidated = &hub.symbols[0].consolidated_latency;
    let mut seen_consolidated = consolidated.written();
    let mut snapshots: Vec<i64> = Vec::new();
    let mut merged: Vec<i64> = Vec::new();
    let messages_before: u64 = hub
        .connections
        .iter()
        .map(|c| c.health.borrow().messages)
        .sum();
    let mut samples: Vec<Vec<i64>> = vec![Vec::new(); hub.connections.len()];
    let start = tokio::time::Instant::now();
    let end = start + Duration::from_secs(args.seconds);
    // The rings hold the latest 1,024 samples of each venue; at this rate a 100 ms visit
    // never misses one (a missed sample would show as a count below the publishes).
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    while tokio::time::Instant::now() < end {
        tick.tick().await;
        for (i, c) in hub.connections.iter().enumerate() {
            samples[i].extend(c.publish_latency.since(seen[i].0));
            seen[i].0 = c.publish_latency.written();
            snapshots.extend(c.snapshot_latency.since(seen[i].1));
            seen[i].1 = c.snapshot_latency.written();
        }
        merged.extend(consolidated.since(seen_consolidated));
        seen_consolidated = consolidated.written();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let messages_after: u64 = hub
        .connections
        .iter()
        .map(|c| c.health.borrow().messages)
        .sum();
    let mut per_venue = serde_json::Map::new();
    for (i, c) in hub.connections.iter().enumerate() {
        let h = c.health.borrow().clone();
        let mut p = percentiles(samples[i].clone());
        if let Some(o) = p.as_object_mut() {
            o.insert("gaps".into(), json!(h.gaps));
            o.insert("checksum_failures".into(), json!(h.checksum_failures));
            o.insert("reconnects".into(), json!(h.reconnects));
        }
        per_venue.insert(c.venue.name().to_owned(), p);
    }
    let all: Vec<i64> = samples.into_iter().flatten().collect();
    let line = json!({
        "rate_offered": args.rate,
        "busy_poll": args.busy_poll,
        "msgs_per_s": ((messages_after - messages_before) as f64 / elapsed).round(),
        "seconds": (elapsed * 10.0).round() / 10.0,
        "publish_latency": percentiles(all),
        "snapshot_publish_latency": percentiles(snapshots),
        "consolidated_publish_latency": percentiles(merged),
        "per_venue": per_venue,
    });
    cancel.cancel();
    drop(venues);
    for p in players {
        let _ = p.await;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").context("writing standard output")?;
    Ok(())
}
