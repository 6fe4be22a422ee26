//! `mbo replay`: a DBN file through the replay engine into a book, with progress as JSON lines.
//!
//! It is a realistic consumer (every record is applied to a [`Market`], resets clear it) and
//! the pacing benchmark: the final line compares the records released with what the pace
//! promises. With `--pace rate --rate N --loop --duration D`, `error_pct` is the drift of the
//! engine's rate pacing over `D`.
//!
//! Lines (one JSON object each):
//! * progress, every `--report-interval`:
//!   `{"kind":"progress","seconds","released","interval_rps","state","position_ts","progress"}`
//! * final: `{"kind":"final","pace","stopped","records_released","seconds","rate_rps",
//!   "target_rps","error_pct"}` (`target_rps` and `error_pct` are `null` unless the pace is
//!   `rate`; `stopped` is `end`, `duration` or `interrupted`).
//!
//! The file is read once end to end before the clock starts (a bad file is refused before
//! anything is printed).

use std::io::{self, Write};

use anyhow::{bail, Context, Result};
use mbo_book::Market;
use mbo_feed::replay::open_file_source;
use mbo_feed::{spawn_replay, Feed, FeedEvent, Pace};
use serde_json::{json, Value};
use tokio::time::{Instant, MissedTickBehavior};

use crate::cli::ReplayArgs;

pub fn run(args: &ReplayArgs) -> Result<()> {
    let options = args.pacing.to_options()?;
    let (source, metadata) = open_file_source(&args.file)?;
    // Two workers: the replay task paces on one while this thread applies records.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the Tokio runtime")?;
    runtime.block_on(async move {
        let pace = options.pace;
        let start = Instant::now();
        let feed = spawn_replay(Box::new(source), metadata, options);
        consume(args, pace, start, feed).await
    })
}

/// Why the replay stopped.
#[derive(Debug, Clone, Copy)]
enum Stopped {
    End,
    Duration,
    Interrupted,
}

impl Stopped {
    fn label(self) -> &'static str {
        match self {
            Stopped::End => "end",
            Stopped::Duration => "duration",
            Stopped::Interrupted => "interrupted",
        }
    }
}

/// Applies every event to a market until the end, the duration or Ctrl-C.
async fn consume(args: &ReplayArgs, pace: Pace, start: Instant, mut feed: Feed) -> Result<()> {
    let mut market = Market::new();
    let mut released = 0u64;
    let deadline = args.duration.map(|d| start + d);
    let mut report = tokio::time::interval_at(start + args.report_interval, args.report_interval);
    report.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut last_report = (start, 0u64);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);

    let stopped = loop {
        tokio::select! {
            event = feed.events.recv() => {
                if apply(event, &mut market, &mut released)? {
                    break Stopped::End;
                }
            }
            () = sleep_until_opt(deadline) => break Stopped::Duration,
            _ = report.tick() => {
                let now = Instant::now();
                let status = feed.control.as_ref().map(|c| c.status());
                let interval = now.duration_since(last_report.0).as_secs_f64();
                let line = json!({
                    "kind": "progress",
                    "seconds": round(now.duration_since(start).as_secs_f64(), 3),
                    "released": released,
                    "interval_rps": ((released - last_report.1) as f64 / interval).round(),
                    "state": status.as_ref().map(|s| s.state.label()),
                    "position_ts": status.as_ref().map(|s| s.position_ts),
                    "progress": status.as_ref().map(|s| round(s.progress, 6)),
                });
                last_report = (now, released);
                if !emit(&line)? {
                    return Ok(());
                }
            }
            _ = &mut interrupted => break Stopped::Interrupted,
        }
    };
    // What was released before the stop but not yet received still counts.
    if !matches!(stopped, Stopped::End) {
        while let Ok(event) = feed.events.try_recv() {
            if apply(Some(event), &mut market, &mut released)? {
                break;
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let (pace_label, target) = match pace {
        Pace::Max => ("max", None),
        Pace::Rate(n) => ("rate", Some(n)),
        Pace::Realtime { .. } => ("realtime", None),
    };
    let error_pct = target.map(|n| {
        let want = n as f64 * seconds;
        round((released as f64 - want) / want * 100.0, 4)
    });
    emit(&json!({
        "kind": "final",
        "pace": pace_label,
        "stopped": stopped.label(),
        "records_released": released,
        "seconds": round(seconds, 6),
        "rate_rps": (released as f64 / seconds).round(),
        "target_rps": target,
        "error_pct": error_pct,
    }))?;
    Ok(())
}

/// Applies one event; `Ok(true)` at the end of the file.
fn apply(
    event: Option<mbo_feed::source::Result<FeedEvent>>,
    market: &mut Market,
    released: &mut u64,
) -> Result<bool> {
    match event {
        Some(Ok(FeedEvent::Records {
            first_index,
            records,
            ..
        })) => {
            if market.next_index() != first_index {
                market.set_next_index(first_index);
            }
            for rec in &records {
                market.apply(rec);
            }
            *released += records.len() as u64;
            Ok(false)
        }
        Some(Ok(FeedEvent::Reset { next_index, .. })) => {
            market.reset();
            market.set_next_index(next_index);
            Ok(false)
        }
        Some(Ok(FeedEvent::Restore {
            next_index, books, ..
        })) => {
            market.reset();
            for book in books.0 {
                market.insert_book(book);
            }
            market.set_next_index(next_index);
            Ok(false)
        }
        Some(Ok(FeedEvent::End)) => Ok(true),
        Some(Err(e)) => Err(e.into()),
        None => bail!("the replay stopped unexpectedly"),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

fn round(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// Writes one line; `Ok(false)` when the reader went away (`| head`), which is not an error.
fn emit(line: &Value) -> Result<bool> {
    match writeln!(io::stdout().lock(), "{line}") {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
        Err(e) => Err(e).context("writing standard output"),
    }
}
