//! Prometheus metrics (prefix `mbo_`), in one registry owned by the server.
//!
//! The engine updates them once per cycle from the market's counters (never per record);
//! SSE clients hold pre-resolved counter handles (no label lookup per event); HTTP metrics
//! are labelled by route template. Replay position and speed are read from the replay's
//! status when `/metrics` is scraped, so they cost nothing between scrapes.

use mbo_book::Counters;
use prometheus::{
    Counter, Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec,
    IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::frame::BookFrame;

/// Every metric of the server.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    /// Records applied, by action (`add`, `cancel`, `modify`, `clear`, `trade`, `fill`, `none`, `other`).
    pub records: IntCounterVec,
    /// Event boundaries (`F_LAST` records) applied.
    pub events: IntCounter,
    /// Event boundaries that left a book crossed.
    pub crossed_events: IntCounter,
    /// Cancels and modifies of orders not in the book (`kind` = cancel | modify).
    pub unknown_orders: IntCounterVec,
    /// Trades published to streams.
    pub trades: IntCounter,
    /// Feed errors.
    pub feed_errors: IntCounter,
    /// Feed resets (seek, loop, reconnect).
    pub feed_resets: IntCounter,
    /// Time to apply one feed batch to the market.
    pub apply_seconds: Histogram,
    /// From a batch being taken off the feed to its state being visible to streams.
    pub publish_seconds: Histogram,
    /// 1 while the book of a symbol is crossed.
    pub book_crossed: IntGaugeVec,
    /// 1 while the book of a symbol has `maybe_bad_book` set.
    pub book_maybe_bad: IntGaugeVec,
    /// Resting orders per symbol.
    pub book_orders: IntGaugeVec,
    /// Price levels per symbol and side.
    pub book_levels: IntGaugeVec,
    /// Replay position (`ts_recv` of the last released record), Unix seconds.
    pub replay_position: Gauge,
    /// Replay speed factor (0 when paused, -1 at max pace).
    pub replay_speed: Gauge,
    /// Replay progress, 0–1.
    pub replay_progress: Gauge,
    /// 1 when the server is ready.
    pub ready: IntGauge,
    /// Connected SSE clients by stream (`book`, `mbo`).
    pub sse_clients: IntGaugeVec,
    /// SSE events sent by stream and event name.
    pub sse_events: IntCounterVec,
    /// Book frames a client never saw because a newer one replaced them (conflation).
    pub sse_conflated: IntCounterVec,
    /// Times a client fell behind a ring and was resynchronised.
    pub sse_lagged: IntCounterVec,
    /// Stream requests refused because the cap was reached.
    pub sse_rejected: IntCounter,
    /// HTTP requests by route template, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request duration (time to response headers) by route template and method.
    pub http_seconds: HistogramVec,
    /// Rows inserted into storage by table (`events`, `trades`, `checkpoints`).
    pub storage_rows: IntCounterVec,
    /// Records per committed storage batch.
    pub storage_batch_records: Histogram,
    /// Time to write and commit one storage batch.
    pub storage_commit_seconds: Histogram,
    /// Batches waiting for the storage writer (set at scrape time).
    pub storage_queue_depth: IntGauge,
    /// Time the ingest spent blocked because storage fell behind (brought up to date at
    /// scrape time).
    pub storage_backpressure_seconds: Counter,
    /// Database file plus WAL size, bytes (set at scrape time).
    pub storage_db_bytes: IntGauge,
    /// Storage failures (the server then keeps serving without storage).
    pub storage_errors: IntCounter,
    /// Rows deleted by retention, by table.
    pub storage_retention_deleted: IntCounterVec,
    /// Seeks whose books were restored from a stored checkpoint round.
    pub seeks_from_checkpoint: IntCounter,
}

fn reg<T: prometheus::core::Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<T>,
) -> prometheus::Result<T> {
    let m = metric?;
    registry.register(Box::new(m.clone()))?;
    Ok(m)
}

/// Latency buckets from 10 µs to 5 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

impl Metrics {
    /// Creates and registers every metric (and the process collector on Linux).
    ///
    /// # Errors
    /// A registration error (a bug: names are fixed).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new_custom(Some("mbo".into()), None)?;
        #[cfg(target_os = "linux")]
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        let hist = |name: &str, help: &str| {
            Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
        };
        Ok(Self {
            records: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("records_total", "Records applied, by action"),
                    &["action"],
                ),
            )?,
            events: reg(
                &r,
                IntCounter::new("events_total", "Event boundaries (F_LAST) applied"),
            )?,
            crossed_events: reg(
                &r,
                IntCounter::new(
                    "crossed_events_total",
                    "Event boundaries that left a book crossed",
                ),
            )?,
            unknown_orders: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "unknown_orders_total",
                        "Cancels and modifies of unknown orders",
                    ),
                    &["kind"],
                ),
            )?,
            trades: reg(&r, IntCounter::new("trades_total", "Trades published"))?,
            feed_errors: reg(&r, IntCounter::new("feed_errors_total", "Feed errors"))?,
            feed_resets: reg(
                &r,
                IntCounter::new("feed_resets_total", "Feed resets (seek, loop, reconnect)"),
            )?,
            apply_seconds: reg(
                &r,
                hist(
                    "apply_batch_seconds",
                    "Time to apply one feed batch to the market",
                ),
            )?,
            publish_seconds: reg(
                &r,
                hist(
                    "publish_latency_seconds",
                    "From a batch taken off the feed to its state visible to streams",
                ),
            )?,
            book_crossed: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("book_crossed", "1 while the book is crossed"),
                    &["symbol"],
                ),
            )?,
            book_maybe_bad: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("book_maybe_bad", "1 while the book has maybe_bad_book set"),
                    &["symbol"],
                ),
            )?,
            book_orders: reg(
                &r,
                IntGaugeVec::new(Opts::new("book_orders", "Resting orders"), &["symbol"]),
            )?,
            book_levels: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("book_levels", "Price levels"),
                    &["symbol", "side"],
                ),
            )?,
            replay_position: reg(
                &r,
                Gauge::new(
                    "replay_position_seconds",
                    "Replay position (ts_recv), Unix seconds",
                ),
            )?,
            replay_speed: reg(
                &r,
                Gauge::new(
                    "replay_speed",
                    "Replay speed factor (0 paused, -1 max pace)",
                ),
            )?,
            replay_progress: reg(&r, Gauge::new("replay_progress", "Replay progress 0-1"))?,
            ready: reg(&r, IntGauge::new("ready", "1 when the server is ready"))?,
            sse_clients: reg(
                &r,
                IntGaugeVec::new(
                    Opts::new("sse_clients", "Connected SSE clients"),
                    &["stream"],
                ),
            )?,
            sse_events: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("sse_events_total", "SSE events sent"),
                    &["stream", "event"],
                ),
            )?,
            sse_conflated: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "sse_conflated_total",
                        "Book frames replaced before a client saw them",
                    ),
                    &["stream"],
                ),
            )?,
            sse_lagged: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "sse_lagged_total",
                        "Clients that fell behind and were resynchronised",
                    ),
                    &["stream"],
                ),
            )?,
            sse_rejected: reg(
                &r,
                IntCounter::new("sse_rejected_total", "Stream requests refused at the cap"),
            )?,
            http_requests: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("http_requests_total", "HTTP requests"),
                    &["route", "method", "status"],
                ),
            )?,
            http_seconds: reg(
                &r,
                HistogramVec::new(
                    HistogramOpts::new("http_request_duration_seconds", "HTTP time to headers")
                        .buckets(LATENCY_BUCKETS.to_vec()),
                    &["route", "method"],
                ),
            )?,
            storage_rows: reg(
                &r,
                IntCounterVec::new(
                    Opts::new("storage_rows_written_total", "Rows inserted into storage"),
                    &["table"],
                ),
            )?,
            storage_batch_records: reg(
                &r,
                Histogram::with_opts(
                    HistogramOpts::new(
                        "storage_batch_records",
                        "Records per committed storage batch",
                    )
                    .buckets(vec![
                        1.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 8192.0, 16384.0, 32768.0,
                    ]),
                ),
            )?,
            storage_commit_seconds: reg(
                &r,
                hist(
                    "storage_commit_seconds",
                    "Time to write and commit one storage batch",
                ),
            )?,
            storage_queue_depth: reg(
                &r,
                IntGauge::new(
                    "storage_queue_depth",
                    "Batches waiting for the storage writer",
                ),
            )?,
            storage_backpressure_seconds: reg(
                &r,
                Counter::new(
                    "storage_backpressure_seconds_total",
                    "Time the ingest spent blocked because storage fell behind",
                ),
            )?,
            storage_db_bytes: reg(
                &r,
                IntGauge::new("storage_db_bytes", "Database file plus WAL size, bytes"),
            )?,
            storage_errors: reg(
                &r,
                IntCounter::new("storage_errors_total", "Storage failures"),
            )?,
            storage_retention_deleted: reg(
                &r,
                IntCounterVec::new(
                    Opts::new(
                        "storage_retention_deleted_total",
                        "Rows deleted by retention",
                    ),
                    &["table"],
                ),
            )?,
            seeks_from_checkpoint: reg(
                &r,
                IntCounter::new(
                    "seeks_from_checkpoint_total",
                    "Seeks whose books were restored from a stored checkpoint round",
                ),
            )?,
            registry: r,
        })
    }

    /// The registry (other parts of the server register their metrics in it).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Adds the difference between two snapshots of the market's counters.
    pub fn record_counters(&self, before: &Counters, now: &Counters) {
        let b = before.actions.by_code();
        let n = now.actions.by_code();
        for ((code, was), (_, is)) in b.iter().zip(n.iter()) {
            if is > was {
                self.records
                    .with_label_values(&[action_label(*code)])
                    .inc_by(is - was);
            }
        }
        // Counters restart from zero when the market is reset; only growth is recorded.
        let grow = |c: &IntCounter, was: u64, is: u64| {
            if is > was {
                c.inc_by(is - was);
            }
        };
        grow(&self.events, before.boundaries, now.boundaries);
        grow(
            &self.crossed_events,
            before.crossed_boundaries,
            now.crossed_boundaries,
        );
        grow(
            &self.unknown_orders.with_label_values(&["cancel"]),
            before.unknown_cancels,
            now.unknown_cancels,
        );
        grow(
            &self.unknown_orders.with_label_values(&["modify"]),
            before.unknown_modifies,
            now.unknown_modifies,
        );
    }

    /// Sets the per-symbol gauges from a new frame.
    pub fn record_book(&self, f: &BookFrame) {
        let s = &*f.symbol;
        self.book_crossed
            .with_label_values(&[s])
            .set(i64::from(f.crossed));
        self.book_maybe_bad
            .with_label_values(&[s])
            .set(i64::from(f.maybe_bad_book));
        self.book_orders
            .with_label_values(&[s])
            .set(i64::try_from(f.order_count).unwrap_or(i64::MAX));
        self.book_levels
            .with_label_values(&[s, "bid"])
            .set(i64::try_from(f.bid_levels).unwrap_or(i64::MAX));
        self.book_levels
            .with_label_values(&[s, "ask"])
            .set(i64::try_from(f.ask_levels).unwrap_or(i64::MAX));
    }

    /// Counts one committed storage batch (called on the writer thread).
    pub fn record_storage_batch(&self, report: &mbo_store::BatchReport) {
        let rows = [
            ("events", report.events_written),
            ("trades", report.trades_written),
            ("checkpoints", report.checkpoints_written),
        ];
        for (table, n) in rows {
            if n > 0 {
                self.storage_rows.with_label_values(&[table]).inc_by(n);
            }
        }
        self.storage_batch_records.observe(report.records as f64);
        self.storage_commit_seconds
            .observe(report.commit_time.as_secs_f64());
    }

    /// Refreshes the storage gauges (at scrape time: they cost nothing between scrapes).
    pub fn record_storage_state(&self, storage: &crate::storage::Storage) {
        self.storage_queue_depth
            .set(i64::try_from(storage.queue_depth()).unwrap_or(i64::MAX));
        let blocked = storage.backpressure_seconds();
        let counted = self.storage_backpressure_seconds.get();
        if blocked > counted {
            self.storage_backpressure_seconds.inc_by(blocked - counted);
        }
        self.storage_db_bytes
            .set(i64::try_from(storage.db_bytes()).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 * 1024);
        // Encoding into a Vec cannot fail for well-formed metrics; an error is logged.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::error!(error = %e, "metrics encoding failed");
        }
        out
    }
}

fn action_label(code: char) -> &'static str {
    match code {
        'A' => "add",
        'C' => "cancel",
        'M' => "modify",
        'R' => "clear",
        'T' => "trade",
        'F' => "fill",
        'N' => "none",
        _ => "other",
    }
}
