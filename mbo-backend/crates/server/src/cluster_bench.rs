//! `mbo cluster-bench`: the latency a gateway adds, measured where clients see it.
//!
//! One MBO stream (`/api/v1/stream/mbo`) is read from the ingest and one from each gateway,
//! at the same time, in this process. Every `mbo` event carries the id `"{epoch}-{index}"`
//! of its last record, the same on every replica (gateways apply the ingest's batches as
//! they are). For each id received from both, the gateway's **added latency** is its
//! receive time minus the ingest's (one clock, one process): NATS publish, JetStream,
//! delivery to the gateway, its engine and its SSE fan-out, compared with the ingest's own
//! path to the same client. Loopback URLs only, like `mbo loadtest`.

use std::collections::HashMap;
use std::pin::pin;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use clap::Args;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper::header::{ACCEPT, HOST};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::cli::parse_duration;
use crate::loadtest::histogram::{ns_to_ms, Histogram};
use crate::loadtest::sse::SseParser;
use crate::loadtest::target::Target;

/// Longest run.
const MAX_DURATION: Duration = Duration::from_secs(600);

/// `mbo cluster-bench`.
#[derive(Debug, Args)]
pub struct ClusterBenchArgs {
    /// Base URL of the ingest (`mbo serve --role ingest`); loopback only.
    #[arg(long)]
    pub ingest: String,
    /// Base URL of a gateway (`--role gateway`); repeat for several.
    #[arg(long = "gateway", required = true)]
    pub gateways: Vec<String>,
    /// How long to read (e.g. 20s; at most 10m).
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
}

/// What one stream saw.
struct Seen {
    /// Event id → receive time (Unix ns).
    ids: HashMap<(u64, u64), u64>,
    records: u64,
    last: Option<(u64, u64)>,
}

/// One gateway's figures.
#[derive(Debug, Serialize)]
struct GatewayReport {
    url: String,
    /// Events received from both.
    matched: u64,
    /// Events the ingest stream had and this gateway's did not (lag at the end, or a gap).
    missing: u64,
    /// Events that reached this gateway's client before the ingest's (counted as 0 added).
    earlier: u64,
    added_ms_p50: Option<f64>,
    added_ms_p90: Option<f64>,
    added_ms_p99: Option<f64>,
    added_ms_p999: Option<f64>,
    added_ms_max: Option<f64>,
    records_per_s: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    seconds: f64,
    ingest_records_per_s: f64,
    gateways: Vec<GatewayReport>,
}

/// Runs the benchmark and prints one JSON line.
///
/// # Errors
/// A non-loopback URL, or a stream that cannot be opened.
pub fn run(args: &ClusterBenchArgs) -> Result<()> {
    if args.duration > MAX_DURATION || args.duration.is_zero() {
        bail!("--duration must be between 1ms and 10m");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    runtime.block_on(bench(args))
}

async fn bench(args: &ClusterBenchArgs) -> Result<()> {
    let end = Instant::now() + args.duration;
    let mut tasks = Vec::new();
    for url in std::iter::once(&args.ingest).chain(&args.gateways) {
        let target = Target::parse(url)?;
        tasks.push(tokio::spawn(read_stream(target, end)));
    }
    let mut seen = Vec::new();
    for (t, url) in tasks
        .into_iter()
        .zip(std::iter::once(&args.ingest).chain(&args.gateways))
    {
        seen.push(
            t.await
                .context("reader task")?
                .with_context(|| format!("streaming {url}"))?,
        );
    }
    let secs = args.duration.as_secs_f64();
    let ingest = &seen[0];
    let mut gateways = Vec::new();
    for (gw, url) in seen[1..].iter().zip(&args.gateways) {
        let mut h = Histogram::new();
        let (mut matched, mut missing, mut earlier) = (0, 0, 0);
        // Ids after the gateway's last one are lag at the end, not misses.
        let horizon = gw.last.unwrap_or((0, 0));
        for (id, &t_ing) in &ingest.ids {
            match gw.ids.get(id) {
                Some(&t_gw) => {
                    matched += 1;
                    if t_gw < t_ing {
                        earlier += 1;
                    }
                    h.record(t_gw.saturating_sub(t_ing));
                }
                None if *id <= horizon => missing += 1,
                None => {}
            }
        }
        let q = |p| h.quantile(p).map(ns_to_ms);
        gateways.push(GatewayReport {
            url: url.clone(),
            matched,
            missing,
            earlier,
            added_ms_p50: q(0.5),
            added_ms_p90: q(0.9),
            added_ms_p99: q(0.99),
            added_ms_p999: q(0.999),
            added_ms_max: h.max().map(ns_to_ms),
            records_per_s: gw.records as f64 / secs,
        });
    }
    let report = Report {
        seconds: secs,
        ingest_records_per_s: ingest.records as f64 / secs,
        gateways,
    };
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}

/// Reads `/api/v1/stream/mbo` of `target` until `end`.
async fn read_stream(target: Target, end: Instant) -> Result<Seen> {
    let tcp = TcpStream::connect(target.resolve()?)
        .await
        .with_context(|| format!("connecting to {}", target.host_header()))?;
    tcp.set_nodelay(true)?;
    let (mut sender, conn) = http1::Builder::new()
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await?;
    tokio::spawn(conn);
    let request = Request::get("/api/v1/stream/mbo")
        .header(HOST, target.host_header())
        .header(ACCEPT, "text/event-stream")
        .body(Empty::<Bytes>::new())?;
    let response = sender.send_request(request).await?;
    if !response.status().is_success() {
        bail!("HTTP {}", response.status());
    }
    let mut body = response.into_body();
    let mut parser = SseParser::new(256);
    let mut seen = Seen {
        ids: HashMap::new(),
        records: 0,
        last: None,
    };
    let mut stop = pin!(tokio::time::sleep_until(end));
    loop {
        let frame = tokio::select! {
            () = &mut stop => return Ok(seen),
            f = body.frame() => f,
        };
        let Some(frame) = frame else {
            bail!("the stream ended");
        };
        let Ok(data) = frame?.into_data() else {
            continue;
        };
        let now = mbo_api::engine::unix_ns();
        parser.feed(&data, |ev| {
            if ev.name != b"mbo" {
                return;
            }
            let Some(id) = parse_id(ev.id) else {
                return;
            };
            seen.ids.entry(id).or_insert(now);
            seen.last = seen.last.max(Some(id));
            seen.records += count(ev.data);
        });
    }
}

fn parse_id(id: &[u8]) -> Option<(u64, u64)> {
    let text = std::str::from_utf8(id).ok()?;
    let (e, i) = text.split_once('-')?;
    Some((e.parse().ok()?, i.parse().ok()?))
}

/// The `count` of an `mbo` event, from the start of its data.
fn count(data: &[u8]) -> u64 {
    let key = b"\"count\":";
    data.windows(key.len())
        .position(|w| w == key)
        .map(|p| {
            data[p + key.len()..]
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .fold(0u64, |n, c| n * 10 + u64::from(c - b'0'))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_counts_parse() {
        assert_eq!(parse_id(b"3-41"), Some((3, 41)));
        assert_eq!(parse_id(b"3"), None);
        assert_eq!(
            count(br#"{"server_ts":1,"epoch":0,"first_index":5,"count":17,"records":["#),
            17
        );
        assert_eq!(count(b"{}"), 0);
    }
}
