//! `mbo_venue_*` metrics (labels `venue`, and `symbol` = the normalized symbol where a count
//! is per book).
//!
//! Connection totals (messages, bytes, reconnects, dropped events) come from each
//! connection's [`Health`](mbo_venues_net::Health), copied once a second by the sampler;
//! per-book counts (gaps, checksum failures, resyncs, trades) are counted by the engine
//! through handles resolved at start (no label lookup per event); the latency histograms
//! are filled by the sampler from the engine's lock-free rings, off the hot path.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry};

/// Buckets from 1 µs to 10 s: publish latency lives in microseconds, exchange latency in
/// milliseconds.
const BUCKETS: &[f64] = &[
    0.000_001,
    0.000_002_5,
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
];

/// Every venue metric.
#[derive(Debug, Clone)]
pub struct VenueMetrics {
    /// Text frames received, per connection.
    pub messages: IntCounterVec,
    /// Payload bytes received (frames and REST snapshots).
    pub bytes: IntCounterVec,
    /// Sessions that ended and were retried.
    pub reconnects: IntCounterVec,
    /// Events the connection's consumer could not take (a full channel; never with the
    /// server's in-place engine).
    pub events_dropped: IntCounterVec,
    /// Connection state: 0 connecting, 1 subscribing, 2 live, 3 backoff, 4 stopped.
    pub connection_state: IntGaugeVec,
    /// Resyncs requested, per book.
    pub resyncs: IntCounterVec,
    /// Sequence gaps, per book.
    pub gaps: IntCounterVec,
    /// Checksum failures, per book.
    pub checksum_failures: IntCounterVec,
    /// Trades, per book.
    pub trades: IntCounterVec,
    /// 1 while a venue book is live (in sync).
    pub book_live: IntGaugeVec,
    /// Venue time → receive (trades that carry a venue time; clocks may disagree).
    pub exchange_latency: HistogramVec,
    /// Frame received → its book published to readers.
    pub publish_latency: HistogramVec,
}

impl VenueMetrics {
    /// Creates the metrics and registers them in `registry`.
    ///
    /// # Errors
    /// A registration error (names are fixed, so a second registration is a bug).
    pub fn register(registry: &Registry) -> prometheus::Result<Self> {
        fn reg<T: prometheus::core::Collector + Clone + 'static>(
            r: &Registry,
            m: prometheus::Result<T>,
        ) -> prometheus::Result<T> {
            let m = m?;
            r.register(Box::new(m.clone()))?;
            Ok(m)
        }
        let counter = |name: &str, help: &str, labels: &[&str]| {
            reg(registry, IntCounterVec::new(Opts::new(name, help), labels))
        };
        let hist = |name: &str, help: &str| {
            reg(
                registry,
                HistogramVec::new(
                    HistogramOpts::new(name, help).buckets(BUCKETS.to_vec()),
                    &["venue"],
                ),
            )
        };
        Ok(Self {
            messages: counter("venue_messages_total", "Text frames received", &["venue"])?,
            bytes: counter("venue_bytes_total", "Payload bytes received", &["venue"])?,
            reconnects: counter(
                "venue_reconnects_total",
                "Venue sessions that ended and were retried",
                &["venue"],
            )?,
            events_dropped: counter(
                "venue_events_dropped_total",
                "Events the venue connection's consumer could not take (dropped)",
                &["venue"],
            )?,
            connection_state: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new(
                        "venue_connection_state",
                        "0 connecting, 1 subscribing, 2 live, 3 backoff, 4 stopped",
                    ),
                    &["venue"],
                ),
            )?,
            resyncs: counter(
                "venue_resyncs_total",
                "Resyncs requested (gap, checksum, old snapshot)",
                &["venue", "symbol"],
            )?,
            gaps: counter("venue_gaps_total", "Sequence gaps", &["venue", "symbol"])?,
            checksum_failures: counter(
                "venue_checksum_failures_total",
                "Checksum failures",
                &["venue", "symbol"],
            )?,
            trades: counter("venue_trades_total", "Trades", &["venue", "symbol"])?,
            book_live: reg(
                registry,
                IntGaugeVec::new(
                    Opts::new("venue_book_live", "1 while the venue book is in sync"),
                    &["venue", "symbol"],
                ),
            )?,
            exchange_latency: hist(
                "venue_exchange_latency_seconds",
                "Venue time to receive time, per trade with a venue time",
            )?,
            publish_latency: hist(
                "venue_publish_latency_seconds",
                "Frame received to its book published to readers",
            )?,
        })
    }
}
