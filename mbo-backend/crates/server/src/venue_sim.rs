//! `mbo venue-sim`: a crypto venue recording served on loopback in the venue's own framing,
//! so the live connectors (and `mbo record`) can run offline against it.
//!
//! A thin shell over [`mbo_venues_net::player`]: the recording's format is detected from its
//! content (as `mbo venue-replay` does), the optional REST snapshot file (cryptofeed HTTP
//! format) is served at `/api/v3/depth` and `/fapi/v1/depth`, and one JSON line on standard
//! output gives the URLs (`{"venue":..,"ws_url":..,"rest_url":..}`) once the port is bound.
//! It serves until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mbo_venues::{Precision, VenueKind};
use mbo_venues_net::player::{Player, PlayerConfig};
use mbo_venues_net::CancellationToken;
use serde_json::Value;

/// `mbo venue-sim`.
#[derive(Debug, Args)]
pub struct VenueSimArgs {
    /// Venue whose protocol the recording speaks: binance (also Binance US), binance-futures,
    /// bybit, kraken (WS v2), kraken-v1, coinbase.
    #[arg(long, value_parser = crate::venue_replay::parse_venue)]
    pub venue: VenueKind,
    /// The recording, in any format `mbo venue-replay` reads.
    pub file: PathBuf,
    /// REST order-book snapshot file (cryptofeed HTTP format) served to Binance clients.
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Address to listen on (WebSocket and REST on the same port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub bind: String,
    /// Messages per second (default: as fast as the client reads).
    #[arg(long, value_parser = parse_rate)]
    pub rate: Option<f64>,
    /// At the end, start again (Binance: close the socket so the client bridges again).
    #[arg(long = "loop")]
    pub looping: bool,
    /// Kraken WS v2: announce this price precision on an `instrument` snapshot before the
    /// first frame. With --qty-precision.
    #[arg(long, requires = "qty_precision")]
    pub price_precision: Option<u8>,
    /// Kraken WS v2: the size precision announced. With --price-precision.
    #[arg(long, requires = "price_precision")]
    pub qty_precision: Option<u8>,
}

fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r),
        _ => Err("must be a positive number of messages per second".into()),
    }
}

pub fn run(args: &VenueSimArgs) -> Result<()> {
    let mut cfg = PlayerConfig::from_files(args.venue, &args.file, args.snapshot.as_deref())
        .with_context(|| format!("loading {} as {}", args.file.display(), args.venue))?;
    if cfg.frames.is_empty() {
        bail!("{}: no frames in the recording", args.file.display());
    }
    cfg.rate = args.rate;
    cfg.looped = args.looping;
    cfg.kraken_precision = match (args.price_precision, args.qty_precision) {
        (Some(price), Some(qty)) => Some(Precision { price, qty }),
        (None, None) => None,
        _ => bail!("--price-precision and --qty-precision go together"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = stop_signal().context("installing signal handlers")?;
        let player = Player::bind(args.bind.as_str(), cfg)
            .await
            .with_context(|| format!("cannot listen on {}", args.bind))?;
        // Keys in this order: venue, ws_url, rest_url.
        let text = |v: &str| Value::String(v.to_owned());
        let line = format!(
            r#"{{"venue":{},"ws_url":{},"rest_url":{}}}"#,
            text(args.venue.name()),
            text(&player.ws_url()),
            text(&player.rest_url()),
        );
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .context("writing standard output")?;
        }
        let cancel = CancellationToken::new();
        let task = tokio::spawn(player.run(cancel.clone()));
        stop.await;
        cancel.cancel();
        task.await.context("player task")?;
        Ok(())
    })
}

/// Registers SIGINT and SIGTERM handlers now (before anything announces readiness, so a
/// signal sent right after never meets the default action) and completes on either.
///
/// # Errors
/// The handlers could not be installed.
pub(crate) fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt())?;
        let mut term = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
