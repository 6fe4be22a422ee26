//! What a run found: totals merged from every client, and the report (JSON or a table).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::client::{EventKind, Failure, Local, KINDS};
use super::histogram::{Histogram, Summary};
use super::rss::RssReport;

/// Every client's numbers, merged (each client adds itself once, at its end).
#[derive(Debug, Default)]
pub struct Totals {
    /// Clients that handed their numbers in (or were counted as failed by the run).
    pub reported: u64,
    connected: u64,
    complete: u64,
    errors: BTreeMap<String, u64>,
    error_examples: BTreeMap<String, String>,
    snapshot: Histogram,
    frames_min: Option<u64>,
    frames_max: u64,
    frames_sum: u64,
    events: [u64; KINDS],
    bytes: u64,
    records: u64,
    skipped: u64,
    bad_payloads: u64,
    negative_latency: u64,
    keepalives: u64,
}

impl Totals {
    /// Adds one client: its counts, and either completion or why not.
    pub fn add_client(&mut self, local: &Local, result: Result<(), Failure>) {
        self.reported += 1;
        if local.connected {
            self.connected += 1;
            let frames = local.frames();
            self.frames_min = Some(self.frames_min.map_or(frames, |m| m.min(frames)));
            self.frames_max = self.frames_max.max(frames);
            self.frames_sum += frames;
        }
        match result {
            Ok(()) => self.complete += 1,
            Err(failure) => self.add_failure(failure, 1),
        }
        if let Some(ns) = local.snapshot_ns {
            self.snapshot.record(ns);
        }
        for (total, n) in self.events.iter_mut().zip(local.events) {
            *total += n;
        }
        self.bytes += local.bytes;
        self.records += local.records;
        self.skipped += local.skipped;
        self.bad_payloads += local.bad_payloads;
        self.negative_latency += local.negative_latency;
        self.keepalives += local.keepalives;
    }

    /// Counts `n` clients that failed for `failure` (the first detail is kept as example).
    pub fn add_failure(&mut self, failure: Failure, n: u64) {
        let key = failure.key.into_owned();
        if let Some(detail) = failure.detail {
            self.error_examples.entry(key.clone()).or_insert(detail);
        }
        *self.errors.entry(key).or_default() += n;
    }
}

/// The run's settings, echoed in the report.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Base URL.
    pub url: String,
    /// `book` or `mbo`.
    pub stream: &'static str,
    /// Requested symbol, if any.
    pub symbol: Option<String>,
    /// Book depth (book stream).
    pub depth: Option<u32>,
    /// Book interval, ms (book stream).
    pub interval_ms: Option<u32>,
    /// New connections per second.
    pub connect_rate: u32,
    /// Requested streaming time per client, s.
    pub duration_s: f64,
}

/// Minimum, mean and maximum frames per connected client.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Frames {
    /// Fewest.
    pub min: Option<u64>,
    /// Mean.
    pub mean: Option<f64>,
    /// Most.
    pub max: Option<u64>,
}

/// `lagged` notices: how many, and how many updates they said were skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Lagged {
    /// `lagged` events.
    pub events: u64,
    /// Sum of their `skipped`.
    pub skipped: u64,
}

/// The report (`--json` prints it as one object).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Settings.
    pub config: Config,
    /// Clients started.
    pub clients: u64,
    /// Got 200 and at least one event.
    pub connected: u64,
    /// Stayed connected without error until the end.
    pub complete: u64,
    /// Why the others did not complete: reason → clients (one reason per client).
    pub errors: BTreeMap<String, u64>,
    /// One message per reason (the server's JSON error or the I/O error).
    pub error_examples: BTreeMap<String, String>,
    /// Request start to first `snapshot` event.
    pub snapshot_ms: Summary,
    /// Book (or mbo) events plus snapshots per connected client.
    pub frames_per_client: Frames,
    /// Events by type.
    pub events: BTreeMap<&'static str, u64>,
    /// Receive time − `server_ts` over market-data updates (book, trade, mbo); snapshots,
    /// whose `server_ts` is the age of the state they carry, and `status`/`lagged` notices
    /// are reported only by type.
    pub latency_ms: Summary,
    /// The same per event type.
    pub latency_ms_by_event: BTreeMap<&'static str, Summary>,
    /// Body bytes received.
    pub bytes: u64,
    /// Bytes per second of run time.
    pub bytes_per_s: f64,
    /// MBO records received (`count` of `mbo` events).
    pub records: u64,
    /// Records per second of run time.
    pub records_per_s: f64,
    /// Lagged notices.
    pub lagged: Lagged,
    /// Comment lines (keep-alives) received.
    pub keepalives: u64,
    /// Events without a readable `server_ts` (or mbo `count`).
    pub bad_payload_events: u64,
    /// Events received before their `server_ts` (a clock problem; counted as 0 ms).
    pub negative_latency_events: u64,
    /// Wall time of the run, s.
    pub duration_s: f64,
    /// Ctrl-C ended the run early (`complete` then means: until the interruption).
    pub interrupted: bool,
    /// The server's resident memory (with `--pid`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_mb: Option<RssReport>,
    /// What the load tester itself cost.
    pub loadtest: SelfCost,
}

/// The load tester's own cost: near two cores of CPU means the numbers measure the client as
/// much as the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct SelfCost {
    /// CPU time used during the run (user + system), s.
    pub cpu_s: Option<f64>,
    /// Peak resident memory, MB.
    pub peak_rss_mb: Option<f64>,
}

impl Report {
    /// Builds the report from the merged numbers.
    pub fn new(
        config: Config,
        clients: u64,
        totals: &Totals,
        latency: &[Histogram],
        duration_s: f64,
        server_rss_mb: Option<RssReport>,
        loadtest: SelfCost,
    ) -> Self {
        let mut live = Histogram::new();
        let mut latency_ms_by_event = BTreeMap::new();
        for (kind, hist) in EventKind::ALL.iter().zip(latency) {
            if hist.count() == 0 {
                continue;
            }
            if kind.is_live_update() {
                live.merge(hist);
            }
            latency_ms_by_event.insert(kind.name(), hist.summary_ms());
        }
        let main_kind = if config.stream == "mbo" {
            EventKind::Mbo
        } else {
            EventKind::Book
        };
        let events = EventKind::ALL
            .iter()
            .zip(totals.events)
            .filter(|&(&kind, n)| n > 0 || kind == main_kind || kind == EventKind::Snapshot)
            .map(|(kind, n)| (kind.name(), n))
            .collect();
        let per_s = |n: u64| {
            if duration_s > 0.0 {
                round3(n as f64 / duration_s)
            } else {
                0.0
            }
        };
        Self {
            config,
            clients,
            connected: totals.connected,
            complete: totals.complete,
            errors: totals.errors.clone(),
            error_examples: totals.error_examples.clone(),
            snapshot_ms: totals.snapshot.summary_ms(),
            frames_per_client: Frames {
                min: totals.frames_min,
                mean: (totals.connected > 0)
                    .then(|| round3(totals.frames_sum as f64 / totals.connected as f64)),
                max: (totals.connected > 0).then_some(totals.frames_max),
            },
            events,
            latency_ms: live.summary_ms(),
            latency_ms_by_event,
            bytes: totals.bytes,
            bytes_per_s: per_s(totals.bytes),
            records: totals.records,
            records_per_s: per_s(totals.records),
            lagged: Lagged {
                events: totals.events[EventKind::Lagged as usize],
                skipped: totals.skipped,
            },
            keepalives: totals.keepalives,
            bad_payload_events: totals.bad_payloads,
            negative_latency_events: totals.negative_latency,
            duration_s: round3(duration_s),
            interrupted: false,
            server_rss_mb,
            loadtest,
        }
    }

    /// The human-readable table.
    pub fn to_table(&self) -> String {
        let mut t = String::new();
        let c = &self.config;
        let mut target = format!("{} stream at {}", c.stream, c.url);
        if let Some(symbol) = &c.symbol {
            let _ = write!(target, ", symbol {symbol}");
        }
        if let (Some(depth), Some(interval)) = (c.depth, c.interval_ms) {
            let _ = write!(target, ", depth {depth}, interval {interval} ms");
        }
        row(&mut t, "target", &target);
        row(
            &mut t,
            "clients",
            &format!(
                "{} started ({} /s), {} connected, {} complete",
                self.clients, c.connect_rate, self.connected, self.complete
            ),
        );
        if self.errors.is_empty() {
            row(&mut t, "errors", "none");
        } else {
            for (i, (key, n)) in self.errors.iter().enumerate() {
                let mut line = format!("{key} {n}");
                if let Some(example) = self.error_examples.get(key) {
                    let _ = write!(line, "  ({example})");
                }
                row(&mut t, if i == 0 { "errors" } else { "" }, &line);
            }
        }
        row(
            &mut t,
            "duration",
            &format!(
                "{:.2} s (streaming {} s per client){}",
                self.duration_s,
                c.duration_s,
                if self.interrupted {
                    ", interrupted by Ctrl-C"
                } else {
                    ""
                }
            ),
        );
        row(
            &mut t,
            "snapshot",
            &summary_text(&self.snapshot_ms, "clients"),
        );
        let f = &self.frames_per_client;
        row(
            &mut t,
            "frames/client",
            &format!(
                "min {}  mean {}  max {}",
                opt(f.min),
                f.mean.map_or_else(|| "-".into(), |m| format!("{m:.1}")),
                opt(f.max)
            ),
        );
        let events: Vec<String> = self
            .events
            .iter()
            .map(|(k, n)| format!("{k} {n}"))
            .collect();
        row(&mut t, "events", &events.join("  "));
        row(
            &mut t,
            "latency",
            &summary_text(&self.latency_ms, "updates"),
        );
        for (kind, s) in &self.latency_ms_by_event {
            row(&mut t, &format!("  {kind}"), &summary_text(s, "events"));
        }
        row(
            &mut t,
            "bytes",
            &format!(
                "{} ({}/s)",
                human_bytes(self.bytes as f64),
                human_bytes(self.bytes_per_s)
            ),
        );
        if c.stream == "mbo" || self.records > 0 {
            row(
                &mut t,
                "records",
                &format!("{} ({:.0}/s)", self.records, self.records_per_s),
            );
        }
        row(
            &mut t,
            "lagged",
            &format!(
                "{} events, {} updates skipped",
                self.lagged.events, self.lagged.skipped
            ),
        );
        row(&mut t, "keep-alives", &self.keepalives.to_string());
        if self.bad_payload_events > 0 {
            row(
                &mut t,
                "bad payloads",
                &format!("{} events without server_ts/count", self.bad_payload_events),
            );
        }
        if self.negative_latency_events > 0 {
            row(
                &mut t,
                "clock",
                &format!(
                    "{} events arrived before their server_ts",
                    self.negative_latency_events
                ),
            );
        }
        if let Some(rss) = &self.server_rss_mb {
            row(
                &mut t,
                "server RSS",
                &format!(
                    "max {:.1} MB, last {:.1} MB ({} samples)",
                    rss.max, rss.last, rss.samples
                ),
            );
        }
        let mut cost = Vec::new();
        if let Some(cpu) = self.loadtest.cpu_s {
            let share = if self.duration_s > 0.0 {
                cpu / self.duration_s * 100.0
            } else {
                0.0
            };
            cost.push(format!("CPU {cpu:.2} s ({share:.0} % of a core)"));
        }
        if let Some(mb) = self.loadtest.peak_rss_mb {
            cost.push(format!("peak RSS {mb:.1} MB"));
        }
        if !cost.is_empty() {
            row(&mut t, "load tester", &cost.join(", "));
        }
        t
    }
}

fn row(t: &mut String, label: &str, value: &str) {
    let _ = writeln!(t, "{label:<15} {value}");
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".into(), |v| v.to_string())
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.3} ms"))
}

fn summary_text(s: &Summary, what: &str) -> String {
    format!(
        "p50 {}  p99 {}  max {}  ({} {what})",
        ms(s.p50),
        ms(s.p99),
        ms(s.max),
        s.count
    )
}

fn human_bytes(b: f64) -> String {
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.1} kB", b / 1e3)
    } else {
        format!("{b:.0} B")
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn config() -> Config {
        Config {
            url: "http://127.0.0.1:8080".into(),
            stream: "book",
            symbol: Some("CLX5".into()),
            depth: Some(10),
            interval_ms: Some(50),
            connect_rate: 2000,
            duration_s: 10.0,
        }
    }

    #[test]
    fn report_from_totals() {
        let mut totals = Totals::default();
        let mut a = Local {
            connected: true,
            snapshot_ns: Some(2_000_000),
            bytes: 1000,
            ..Local::default()
        };
        a.events[EventKind::Snapshot as usize] = 1;
        a.events[EventKind::Book as usize] = 9;
        totals.add_client(&a, Ok(()));
        let mut b = Local {
            connected: true,
            bytes: 500,
            ..Local::default()
        };
        b.events[EventKind::Book as usize] = 3;
        totals.add_client(
            &b,
            Err(Failure {
                key: "reset".into(),
                detail: Some("connection reset".into()),
            }),
        );
        for _ in 0..2 {
            totals.add_client(
                &Local::default(),
                Err(Failure {
                    key: "http_503".into(),
                    detail: Some("too_many_streams: full (Retry-After: 1)".into()),
                }),
            );
        }
        let mut latency: Vec<Histogram> = EventKind::ALL.iter().map(|_| Histogram::new()).collect();
        for ms in 1..=100 {
            latency[EventKind::Book as usize].record(ms * 1_000_000);
        }
        latency[EventKind::Snapshot as usize].record(5_000_000_000);
        let r = Report::new(
            config(),
            4,
            &totals,
            &latency,
            2.0,
            None,
            SelfCost::default(),
        );
        assert_eq!((r.clients, r.connected, r.complete), (4, 2, 1));
        assert_eq!(r.errors.get("http_503"), Some(&2));
        assert_eq!(r.errors.get("reset"), Some(&1));
        assert_eq!(
            r.frames_per_client,
            Frames {
                min: Some(3),
                mean: Some(6.5),
                max: Some(10)
            }
        );
        assert_eq!(r.events.get("book"), Some(&12));
        assert_eq!(r.events.get("snapshot"), Some(&1));
        assert_eq!(r.events.get("trade"), None);
        // The snapshot's 5 s does not count as a live update.
        assert_eq!(r.latency_ms.max, Some(100.0));
        assert_eq!(r.latency_ms.count, 100);
        assert_eq!(r.latency_ms_by_event["snapshot"].max, Some(5000.0));
        assert_eq!(r.snapshot_ms.max, Some(2.0));
        assert_eq!(r.bytes_per_s, 750.0);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["errors"]["http_503"], 2);
        assert!(json.get("server_rss_mb").is_none());
        let p50 = json["latency_ms"]["p50"].as_f64().unwrap();
        assert!((p50 - 50.0).abs() < 0.5, "{p50}");
        let table = r.to_table();
        assert!(table.contains("http_503 2  (too_many_streams: full (Retry-After: 1))"));
        assert!(table.contains("4 started"));
    }

    #[test]
    fn empty_report() {
        let latency: Vec<Histogram> = EventKind::ALL.iter().map(|_| Histogram::new()).collect();
        let r = Report::new(
            config(),
            0,
            &Totals::default(),
            &latency,
            0.0,
            None,
            SelfCost::default(),
        );
        let json = serde_json::to_value(&r).unwrap();
        assert!(json["latency_ms"]["p50"].is_null());
        assert!(json["frames_per_client"]["mean"].is_null());
        assert_eq!(json["bytes_per_s"], 0.0);
        assert!(!r.to_table().is_empty());
    }
}
