//! `mbo loadtest`: many Server-Sent-Events clients against a running `mbo serve` on loopback,
//! for a bounded time, and a report of what they saw.
//!
//! Design:
//! - The URL is checked before anything is sent: `http://` to a loopback host only
//!   ([`target`]), so the tool cannot be turned on someone else's server.
//! - A two-worker tokio runtime runs one task per client ([`client`]). Client `i` starts at
//!   `i / --connect-rate` seconds, connects with hyper's HTTP/1 client and streams until the
//!   common end, `start + connect time + --duration`: every client streams at least
//!   `--duration`. Connecting may take at most [`MAX_CONNECT_SPAN`], and the whole run is
//!   cut at `--duration` + [`HARD_SLACK`] whatever happens (Ctrl-C ends it early, with a
//!   report).
//! - Events are parsed incrementally with bounded memory ([`sse`]): only the first bytes of
//!   each payload are kept, enough for `server_ts` (the first key), an mbo batch's `count`
//!   and a `lagged` notice's `skipped`, read without JSON parsing ([`payload`]). One clock
//!   read per received chunk gives the latency of every event in it: receive wall clock −
//!   `server_ts` (same machine, same clock).
//! - Clients count locally and hand latency samples to shared log-linear histograms
//!   ([`histogram`]) in small batches, and their totals once at the end ([`report`]): no
//!   lock per event, a few KiB per client, so 10,000 clients fit in one process.
//! - With `--pid`, the server's `VmRSS` is sampled every 250 ms ([`rss`]).

mod client;
pub(crate) mod histogram;
mod payload;
mod report;
mod rss;
pub(crate) mod sse;
pub(crate) mod target;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::client::{lock, Failure, Plan, Shared};
use self::histogram::Histogram;
use self::report::{Config, Report, SelfCost, Totals};
use self::rss::{RssProbe, RssSamples};
use self::target::Target;

/// Longest `--duration`.
const MAX_DURATION: Duration = Duration::from_secs(600);
/// Longest time the connection ramp (`--clients` / `--connect-rate`) may take.
const MAX_CONNECT_SPAN: Duration = Duration::from_secs(20);
/// The run is cut at `--duration` + this, whatever the clients are doing.
const HARD_SLACK: Duration = Duration::from_secs(30);
/// Server memory sampling period.
const RSS_PERIOD: Duration = Duration::from_millis(250);

/// `mbo loadtest`.
#[derive(Debug, Args)]
pub struct LoadtestArgs {
    /// Base URL of a running `mbo serve`; loopback only (127.0.0.0/8, [::1], localhost).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// Concurrent SSE clients (1 to 20000).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub clients: u32,
    /// How long every client streams once all are connected (e.g. 500ms, 30s, 2m; at most
    /// 10m).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_run_duration)]
    pub duration: Duration,
    /// Which stream: book (`/api/v1/stream`) or mbo (`/api/v1/stream/mbo`).
    #[arg(long, value_enum, default_value_t = StreamKind::Book)]
    pub stream: StreamKind,
    /// Symbol to stream (may be omitted when the server has one instrument).
    #[arg(long)]
    pub symbol: Option<String>,
    /// Book levels per side (book stream).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub depth: u32,
    /// Book update interval in ms (book stream).
    #[arg(long, value_name = "MS", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(0..=60_000))]
    pub interval_ms: u32,
    /// New connections per second (the ramp must fit in 20 s).
    #[arg(long, value_name = "PER_SECOND", default_value_t = 2000,
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connect_rate: u32,
    /// The server's process id: its resident memory (VmRSS) is sampled every 250 ms.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// One JSON object on standard output instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The stream the clients open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StreamKind {
    /// Books at an interval: `snapshot`, `book`, `trade`, `status`, `lagged` events.
    Book,
    /// Raw MBO records: `snapshot`, `mbo`, `lagged` events.
    Mbo,
}

impl StreamKind {
    fn name(self) -> &'static str {
        match self {
            Self::Book => "book",
            Self::Mbo => "mbo",
        }
    }
}

/// `--duration`: a humane duration, more than zero and at most [`MAX_DURATION`].
fn parse_run_duration(text: &str) -> Result<Duration, String> {
    let d = crate::cli::parse_duration(text)?;
    if d.is_zero() {
        return Err("must be greater than zero".into());
    }
    if d > MAX_DURATION {
        return Err(format!("at most {} s", MAX_DURATION.as_secs()));
    }
    Ok(d)
}

/// The request target for `args` under the URL's base path.
fn request_target(base_path: &str, args: &LoadtestArgs) -> String {
    let mut params = Vec::new();
    if let Some(symbol) = &args.symbol {
        params.push(format!("symbol={}", percent_encode(symbol)));
    }
    let path = match args.stream {
        StreamKind::Book => {
            params.push(format!("depth={}", args.depth));
            params.push(format!("interval_ms={}", args.interval_ms));
            "/api/v1/stream"
        }
        StreamKind::Mbo => "/api/v1/stream/mbo",
    };
    let mut target = format!("{base_path}{path}");
    if !params.is_empty() {
        target.push('?');
        target.push_str(&params.join("&"));
    }
    target
}

/// Query-component encoding: unreserved characters as is, every other byte as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Warns when the open-file limit is below the client count: connections past it would fail
/// (as `too_many_open_files`) because of this machine, not the server.
fn warn_open_files(clients: u32) {
    let Ok(limits) = std::fs::read_to_string("/proc/self/limits") else {
        return;
    };
    let soft = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse::<u64>().ok());
    // A few descriptors go to the runtime and standard streams.
    let needed = u64::from(clients) + 32;
    if let Some(soft) = soft.filter(|&s| s < needed) {
        eprintln!(
            "mbo loadtest: warning: the open-file limit is {soft}, below the {needed} this \
             run needs; raise it (ulimit -n) or expect too_many_open_files errors"
        );
    }
}

/// Runs the load test and prints the report.
///
/// # Errors
/// Invalid options (a non-loopback URL, a ramp longer than 20 s, an unknown pid), or the
/// runtime or standard output failing. Client failures are not errors: they are reported.
pub fn run(args: &LoadtestArgs) -> Result<()> {
    let target = Target::parse(&args.url)?;
    let addr = target.resolve()?;
    let spacing = Duration::from_secs(1)
        .checked_div(args.connect_rate)
        .context("--connect-rate must be at least 1")?;
    let connect_span = spacing.saturating_mul(args.clients.saturating_sub(1));
    if connect_span > MAX_CONNECT_SPAN {
        bail!(
            "--clients {} at --connect-rate {}/s take {:.1} s to connect, more than the {} s \
             allowed: raise --connect-rate",
            args.clients,
            args.connect_rate,
            connect_span.as_secs_f64(),
            MAX_CONNECT_SPAN.as_secs()
        );
    }
    let probe = args.pid.map(RssProbe::open).transpose()?;
    warn_open_files(args.clients);

    let config = Config {
        url: args.url.trim().to_owned(),
        stream: args.stream.name(),
        symbol: args.symbol.clone(),
        depth: (args.stream == StreamKind::Book).then_some(args.depth),
        interval_ms: (args.stream == StreamKind::Book).then_some(args.interval_ms),
        connect_rate: args.connect_rate,
        duration_s: args.duration.as_secs_f64(),
    };
    let path_and_query = request_target(&target.base_path, args);
    eprintln!(
        "mbo loadtest: {} clients on {}{} (ramp {:.1} s), streaming {:.1} s",
        args.clients,
        args.url.trim_end_matches('/'),
        path_and_query,
        connect_span.as_secs_f64(),
        args.duration.as_secs_f64()
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("mbo-loadtest")
        .build()
        .context("starting the async runtime")?;
    let cpu_before = rss::self_cpu_s();
    let outcome = runtime.block_on(execute(
        Plan {
            addr,
            host_header: target.host_header(),
            path_and_query,
            t0: Instant::now(),
            spacing,
            // Set by `execute` at the real start.
            end: Instant::now(),
        },
        args.clients,
        connect_span,
        args.duration,
        probe,
    ));
    // Aborted clients are dropped here; nothing blocks, so this is quick.
    runtime.shutdown_timeout(Duration::from_secs(1));
    let loadtest = SelfCost {
        cpu_s: rss::self_cpu_s()
            .zip(cpu_before)
            .map(|(after, before)| ((after - before) * 100.0).round() / 100.0),
        peak_rss_mb: rss::self_peak_rss_mb(),
    };

    let mut report = Report::new(
        config,
        u64::from(args.clients),
        &outcome.totals,
        &outcome.latency,
        outcome.elapsed.as_secs_f64(),
        outcome.rss.report(),
        loadtest,
    );
    report.interrupted = outcome.interrupted;
    let text = if args.json {
        let mut s = serde_json::to_string(&report).context("encoding the report")?;
        s.push('\n');
        s
    } else {
        report.to_table()
    };
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}

/// What the run collected.
struct Outcome {
    totals: Totals,
    latency: Vec<Histogram>,
    elapsed: Duration,
    rss: RssSamples,
    /// Ctrl-C ended the run early.
    interrupted: bool,
}

/// Starts the clients (and the memory sampler), waits for them within the hard limit, and
/// collects their numbers.
async fn execute(
    mut plan: Plan,
    clients: u32,
    connect_span: Duration,
    duration: Duration,
    probe: Option<RssProbe>,
) -> Outcome {
    let t0 = Instant::now();
    plan.t0 = t0;
    plan.end = t0 + connect_span + duration;
    let hard_end = t0 + duration + HARD_SLACK;
    let plan = Arc::new(plan);
    let shared = Arc::new(Shared::new());

    let (early_tx, early_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    for i in 0..clients {
        tasks.spawn(client::run(
            i,
            Arc::clone(&plan),
            Arc::clone(&shared),
            early_rx.clone(),
        ));
    }
    drop(early_rx);

    let samples = Arc::new(Mutex::new(RssSamples::default()));
    let sampler = probe
        .clone()
        .map(|probe| tokio::spawn(sample_rss(probe, Arc::clone(&samples))));
    let interrupted = Arc::new(AtomicBool::new(false));
    let interrupt_flag = Arc::clone(&interrupted);
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            interrupt_flag.store(true, Ordering::Relaxed);
            eprintln!("mbo loadtest: interrupted; stopping the clients (Ctrl-C again to quit)");
            let _ = early_tx.send(true);
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(130);
            }
        }
    });

    // A client task that panicked never hands its numbers in: it is counted as missing below.
    let finished = tokio::time::timeout_at(hard_end, async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    tasks.abort_all();
    interrupt.abort();
    if let Some(sampler) = sampler {
        sampler.abort();
    }
    let elapsed = t0.elapsed();

    let mut totals = std::mem::take(&mut *lock(&shared.totals));
    let missing = u64::from(clients).saturating_sub(totals.reported);
    if missing > 0 {
        let key = if finished.is_err() {
            "hard_timeout"
        } else {
            "task_failed"
        };
        totals.add_failure(
            Failure {
                key: key.into(),
                detail: None,
            },
            missing,
        );
    }
    let latency = std::mem::take(&mut *lock(&shared.latency));
    let mut rss = *lock(&samples);
    // One last sample now, so `last` is the memory at the end of the run.
    if let Some(kib) = probe.as_ref().and_then(RssProbe::sample_kib) {
        rss.add(kib);
    }
    Outcome {
        totals,
        latency,
        elapsed,
        rss,
        interrupted: interrupted.load(Ordering::Relaxed),
    }
}

/// Samples the server's memory until aborted or the process is gone. Reading a `/proc` file
/// does not block on a device, so it is done inline.
async fn sample_rss(probe: RssProbe, samples: Arc<Mutex<RssSamples>>) {
    let mut tick = tokio::time::interval(RSS_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        match probe.sample_kib() {
            Some(kib) => lock(&samples).add(kib),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: LoadtestArgs,
    }

    fn parse(argv: &[&str]) -> Result<LoadtestArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("loadtest").chain(argv.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        assert_eq!(parse_run_duration("30s").unwrap(), ms(30_000));
        assert_eq!(parse_run_duration("2m").unwrap(), ms(120_000));
        assert_eq!(parse_run_duration("500ms").unwrap(), ms(500));
        assert_eq!(parse_run_duration("10m").unwrap(), MAX_DURATION);
        for bad in ["0s", "", "10", "11m", "1h", "fast", "-1s"] {
            assert!(parse_run_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn defaults_and_limits() {
        let a = parse(&[]).unwrap();
        assert_eq!(a.url, "http://127.0.0.1:8080");
        assert_eq!(a.clients, 100);
        assert_eq!(a.duration, Duration::from_secs(10));
        assert_eq!(a.stream, StreamKind::Book);
        assert_eq!((a.depth, a.interval_ms, a.connect_rate), (10, 50, 2000));
        assert!(a.symbol.is_none() && a.pid.is_none() && !a.json);
        let a = parse(&["--clients", "20000", "--stream", "mbo", "--duration", "2m"]).unwrap();
        assert_eq!((a.clients, a.stream), (20_000, StreamKind::Mbo));
        for bad in [
            &["--clients", "0"][..],
            &["--clients", "20001"],
            &["--duration", "601s"],
            &["--stream", "trades"],
            &["--connect-rate", "0"],
            &["--depth", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refused_before_any_request() {
        for url in ["http://10.0.0.1:8080", "http://example.com"] {
            let args = parse(&["--url", url]).unwrap();
            let err = run(&args).unwrap_err().to_string();
            assert!(err.contains("only loopback hosts"), "{err}");
        }
        // A ramp longer than 20 s.
        let args = parse(&["--clients", "20000", "--connect-rate", "100"]).unwrap();
        let err = run(&args).unwrap_err().to_string();
        assert!(err.contains("raise --connect-rate"), "{err}");
    }

    #[test]
    fn request_targets() {
        let a = parse(&[
            "--symbol",
            "CL Z5/&",
            "--depth",
            "5",
            "--interval-ms",
            "100",
        ])
        .unwrap();
        assert_eq!(
            request_target("", &a),
            "/api/v1/stream?symbol=CL%20Z5%2F%26&depth=5&interval_ms=100"
        );
        let a = parse(&["--stream", "mbo", "--symbol", "CLX5"]).unwrap();
        assert_eq!(
            request_target("/base", &a),
            "/base/api/v1/stream/mbo?symbol=CLX5"
        );
        let a = parse(&["--stream", "mbo"]).unwrap();
        assert_eq!(request_target("", &a), "/api/v1/stream/mbo");
    }
}
