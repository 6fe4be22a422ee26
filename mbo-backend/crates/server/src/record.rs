//! `mbo record`: live venue connections' raw frames written with their receive times, in the
//! cryptofeed raw formats `mbo venue-replay` (and `mbo venue-sim`) read back.
//!
//! One connector per venue (`mbo_venues_net`, the same code as live serving) with a raw-frame
//! tap; a writer thread per venue turns the tap into files in `--out`:
//!
//! * `VENUE.ws.N`: `url <-> ts` at each connect, then `ts: frame` per received text frame
//!   (newlines inside a frame are JSON whitespace and become spaces: one frame per line);
//! * `VENUE.http.N` (Binance): `url -> ts: body` per REST snapshot.
//!
//! `ts` is the receive time in decimal seconds since the epoch (nanosecond digits). `N` is
//! the first index not used yet in the directory, so earlier recordings are never
//! overwritten. Normalized symbols (`BTC-USD`) map to each venue's with
//! `SymbolMap::default()`; a symbol the map does not know is used as the venue's own. The
//! command stops after `--seconds` or on SIGINT/SIGTERM, flushes the files and prints one
//! JSON line per venue.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use mbo_venues::{SymbolMap, VenueKind};
use mbo_venues_net::{spawn_with, CancellationToken, ConnectionConfig, RawFrame, RawKind};
use tokio::sync::mpsc;

/// Raw frames buffered per venue between the connection and its writer.
const TAP_CAPACITY: usize = 100_000;

/// `mbo record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Venues, comma-separated: binance, binance-futures, bybit, kraken (WS v2), coinbase.
    #[arg(long, value_delimiter = ',', required = true, value_parser = crate::venue_replay::parse_venue)]
    pub venues: Vec<VenueKind>,
    /// Symbols, comma-separated: normalized (BTC-USD) or the venue's own.
    #[arg(long, value_delimiter = ',', required = true)]
    pub symbols: Vec<String>,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Stop after this many seconds (default: at SIGINT/SIGTERM).
    #[arg(long, value_parser = parse_seconds)]
    pub seconds: Option<f64>,
    /// A venue's WebSocket URL instead of the real one, e.g. kraken=ws://127.0.0.1:9000
    /// (repeatable). With a plain ws:// URL the REST base defaults to http:// on the same
    /// host and port (as `mbo venue-sim` serves them).
    #[arg(long = "venue-url", value_name = "VENUE=WS_URL")]
    pub venue_url: Vec<String>,
    /// A venue's REST base URL instead of the real one (repeatable).
    #[arg(long = "rest-url", value_name = "VENUE=URL")]
    pub rest_url: Vec<String>,
    /// Book depth subscribed (Bybit, Kraken; Binance REST limit). Default: the venue's.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Coinbase: the legacy Exchange feed instead of Advanced Trade.
    #[arg(long)]
    pub coinbase_legacy: bool,
}

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 => Ok(s),
        _ => Err("must be a positive number of seconds".into()),
    }
}

/// `VENUE=URL` pairs.
fn url_overrides(list: &[String], flag: &str) -> Result<Vec<(VenueKind, String)>> {
    list.iter()
        .map(|item| {
            let (venue, url) = item
                .split_once('=')
                .with_context(|| format!("{flag} {item:?}: expected VENUE=URL"))?;
            let venue: VenueKind = venue.parse().with_context(|| format!("{flag} {item:?}"))?;
            Ok((venue, url.to_owned()))
        })
        .collect()
}

/// A plain `ws://host:port/path` (a simulator such as `mbo venue-sim`) -> `http://host:port`;
/// `None` for `wss://` (real venues serve REST elsewhere).
fn rest_base(ws_url: &str) -> Option<String> {
    let rest = ws_url.strip_prefix("ws://")?;
    let host = rest.split('/').next().unwrap_or(rest);
    Some(format!("http://{host}"))
}

/// Decimal seconds with nanosecond digits.
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// One line: newlines (JSON whitespace) as spaces.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

/// The first `N` for which neither `VENUE.ws.N` nor `VENUE.http.N` exists.
fn free_index(dir: &Path, venue: &str) -> u32 {
    (0..)
        .find(|n| {
            !dir.join(format!("{venue}.ws.{n}")).exists()
                && !dir.join(format!("{venue}.http.{n}")).exists()
        })
        .unwrap_or(0)
}

/// What a writer wrote.
struct Written {
    frames: u64,
    rest: u64,
    connects: u64,
    bytes: u64,
    files: Vec<PathBuf>,
}

/// Writes one venue's raw frames until the tap closes.
fn write_venue(
    mut rx: mpsc::Receiver<RawFrame>,
    ws_path: PathBuf,
    http_path: Option<PathBuf>,
) -> Result<Written> {
    let create = |p: &Path| -> Result<BufWriter<File>> {
        Ok(BufWriter::new(File::create(p).with_context(|| {
            format!("{}: cannot create", p.display())
        })?))
    };
    let mut ws = create(&ws_path)?;
    let mut http = http_path.as_deref().map(create).transpose()?;
    let mut w = Written {
        frames: 0,
        rest: 0,
        connects: 0,
        bytes: 0,
        files: vec![ws_path.clone()],
    };
    if let Some(p) = &http_path {
        w.files.push(p.clone());
    }
    while let Some(f) = rx.blocking_recv() {
        let ts = seconds(f.recv_ns);
        match f.kind {
            RawKind::Connected { url } => {
                w.connects += 1;
                writeln!(ws, "{url} <-> {ts}")
            }
            RawKind::Ws => {
                w.frames += 1;
                w.bytes += f.text.len() as u64;
                writeln!(ws, "{ts}: {}", one_line(&f.text))
            }
            RawKind::Rest { url, .. } => {
                w.rest += 1;
                w.bytes += f.text.len() as u64;
                match http.as_mut() {
                    Some(h) => writeln!(h, "{url} -> {ts}: {}", one_line(&f.text)),
                    None => Ok(()),
                }
            }
        }
        .with_context(|| format!("{}: write failed", ws_path.display()))?;
    }
    ws.flush()
        .with_context(|| format!("{}: write failed", ws_path.display()))?;
    if let (Some(h), Some(p)) = (http.as_mut(), &http_path) {
        h.flush()
            .with_context(|| format!("{}: write failed", p.display()))?;
    }
    Ok(w)
}

pub fn run(args: &RecordArgs) -> Result<()> {
    let ws_urls = url_overrides(&args.venue_url, "--venue-url")?;
    let rest_urls = url_overrides(&args.rest_url, "--rest-url")?;
    let map = SymbolMap::default();
    let mut configs = Vec::new();
    for &venue in &args.venues {
        if configs.iter().any(|c: &ConnectionConfig| c.venue == venue) {
            bail!("--venues: {venue} given twice");
        }
        let symbols: Vec<&str> = args
            .symbols
            .iter()
            .map(|s| map.native(venue.name(), s).unwrap_or(s))
            .collect();
        let mut cfg =
            ConnectionConfig::new(venue, &symbols).with_context(|| format!("--venues {venue}"))?;
        if venue == VenueKind::Coinbase && args.coinbase_legacy {
            cfg = cfg.coinbase_legacy();
        }
        cfg.depth = args.depth;
        if let Some((_, url)) = ws_urls.iter().find(|(v, _)| *v == venue) {
            cfg.ws_url.clone_from(url);
            if let Some(base) = rest_base(url) {
                cfg.rest_url = base;
            }
        }
        if let Some((_, url)) = rest_urls.iter().find(|(v, _)| *v == venue) {
            cfg.rest_url.clone_from(url);
        }
        configs.push(cfg);
    }
    for (v, _) in ws_urls.iter().chain(&rest_urls) {
        if !args.venues.contains(v) {
            bail!("a URL is given for {v}, which is not in --venues");
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create directory", args.out.display()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let stop = crate::venue_sim::stop_signal().context("installing signal handlers")?;
        let cancel = CancellationToken::new();
        let mut running = Vec::new();
        for cfg in configs {
            let name = cfg.venue.name();
            let n = free_index(&args.out, name);
            let ws_path = args.out.join(format!("{name}.ws.{n}"));
            let http_path = mbo_venues_net::protocol::snapshot_url(&cfg, "X")
                .map(|_| args.out.join(format!("{name}.http.{n}")));
            let (tap, rx) = mpsc::channel(TAP_CAPACITY);
            let writer = std::thread::Builder::new()
                .name(format!("record-{name}"))
                .spawn(move || write_venue(rx, ws_path, http_path))
                .context("starting a writer thread")?;
            let venue = cfg.venue;
            let handle = spawn_with(cfg, None, Some(tap), cancel.clone())
                .with_context(|| format!("connecting {venue}"))?;
            running.push((venue, handle, writer));
        }
        match args.seconds {
            Some(s) => {
                tokio::select! {
                    () = stop => {}
                    () = tokio::time::sleep(Duration::from_secs_f64(s)) => {}
                }
            }
            None => stop.await,
        }
        cancel.cancel();
        let mut lines = Vec::new();
        let mut failed = None;
        for (venue, handle, writer) in running {
            let health = handle.health.clone();
            // The task ends and drops its tap; the writer drains it and flushes.
            let _ = handle.join().await;
            let raw_dropped = health.borrow().raw_dropped;
            let written = tokio::task::spawn_blocking(move || writer.join())
                .await
                .ok()
                .and_then(Result::ok);
            match written {
                Some(Ok(w)) => {
                    let files: Vec<String> =
                        w.files.iter().map(|p| p.display().to_string()).collect();
                    // Keys in a readable order (serde_json's maps sort them).
                    lines.push(format!(
                        r#"{{"venue":"{}","frames":{},"bytes":{},"rest_snapshots":{},"connects":{},"dropped":{},"files":{}}}"#,
                        venue.name(),
                        w.frames,
                        w.bytes,
                        w.rest,
                        w.connects,
                        raw_dropped,
                        serde_json::Value::from(files),
                    ));
                }
                Some(Err(e)) => failed = Some(e),
                None => failed = Some(anyhow::anyhow!("{venue}: the writer thread failed")),
            }
        }
        let mut out = std::io::stdout().lock();
        for l in &lines {
            writeln!(out, "{l}").context("writing standard output")?;
        }
        out.flush().context("writing standard output")?;
        match failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(seconds(1_634_053_394_253_720_500), "1634053394.253720500");
        assert_eq!(one_line("{\n \"a\": 1\r\n}"), "{  \"a\": 1  }");
        assert_eq!(
            rest_base("ws://127.0.0.1:9000/ws").as_deref(),
            Some("http://127.0.0.1:9000")
        );
        assert!(rest_base("wss://stream.binance.com:9443/ws").is_none());
        assert!(rest_base("nope").is_none());
    }
}
