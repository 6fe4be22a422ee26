//! `mbo_cluster_*` metrics, registered in the server's registry (which adds the `mbo_`
//! prefix), so `/metrics` of an ingest or a gateway shows them beside the others.

use prometheus::{
    Counter, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// Metrics of either role (a role leaves the other's at zero).
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// Ingest: messages published, by kind (`records`, `reset`, `end`, `snapshot`, `round`).
    pub published: IntCounterVec,
    /// Ingest: payload bytes published, by kind.
    pub published_bytes: IntCounterVec,
    /// Ingest: records published.
    pub published_records: IntCounter,
    /// Ingest: messages published again after a failed ack (de-duplicated by JetStream).
    pub republished: IntCounter,
    /// Ingest: seconds the engine waited for the publisher (backpressure).
    pub tap_blocked: Counter,
    /// Ingest: snapshot rounds published.
    pub rounds: IntCounter,
    /// Ingest: forwarded HTTP requests answered.
    pub forwarded_answered: IntCounter,
    /// Gateway: resynchronisations, by reason (`start`, `gap`, `restore`, `error`).
    pub resyncs: IntCounterVec,
    /// Gateway: record batches followed.
    pub followed_batches: IntCounter,
    /// Gateway: records followed.
    pub followed_records: IntCounter,
    /// Gateway: ingest apply → gateway receive, seconds.
    pub follow_latency: Histogram,
    /// Gateway: 1 while synced to the ingest.
    pub synced: IntGauge,
    /// Gateway: requests forwarded to the ingest.
    pub forwarded: IntCounter,
    /// 1 for this process's role (`all`, `ingest`, `gateway`).
    pub role: IntGaugeVec,
}

impl ClusterMetrics {
    /// Unregistered metrics (see [`ClusterMetrics::register`]).
    ///
    /// # Errors
    /// Only for invalid metric definitions (a bug).
    pub fn new() -> Result<Self, prometheus::Error> {
        Ok(Self {
            published: IntCounterVec::new(
                Opts::new(
                    "cluster_published_messages_total",
                    "Messages the ingest published to JetStream, by kind",
                ),
                &["kind"],
            )?,
            published_bytes: IntCounterVec::new(
                Opts::new(
                    "cluster_published_bytes_total",
                    "Payload bytes the ingest published, by kind",
                ),
                &["kind"],
            )?,
            published_records: IntCounter::new(
                "cluster_published_records_total",
                "MBO records the ingest published",
            )?,
            republished: IntCounter::new(
                "cluster_republished_messages_total",
                "Messages published again after a failed ack (JetStream drops the duplicates)",
            )?,
            tap_blocked: Counter::new(
                "cluster_tap_blocked_seconds_total",
                "Seconds the ingest's engine waited for the NATS publisher (backpressure)",
            )?,
            rounds: IntCounter::new(
                "cluster_snapshot_rounds_total",
                "Snapshot rounds the ingest published",
            )?,
            forwarded_answered: IntCounter::new(
                "cluster_forwarded_answered_total",
                "HTTP requests forwarded by gateways that the ingest answered",
            )?,
            resyncs: IntCounterVec::new(
                Opts::new(
                    "cluster_resyncs_total",
                    "Gateway resynchronisations from a snapshot round, by reason",
                ),
                &["reason"],
            )?,
            followed_batches: IntCounter::new(
                "cluster_followed_batches_total",
                "Record batches a gateway applied from the ingest",
            )?,
            followed_records: IntCounter::new(
                "cluster_followed_records_total",
                "Records a gateway applied from the ingest",
            )?,
            follow_latency: Histogram::with_opts(
                HistogramOpts::new(
                    "cluster_follow_latency_seconds",
                    "Ingest apply to gateway receive of a record batch, seconds",
                )
                .buckets(vec![
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    1.0,
                ]),
            )?,
            synced: IntGauge::new(
                "cluster_synced",
                "1 while the gateway follows its ingest without a known gap",
            )?,
            forwarded: IntCounter::new(
                "cluster_forwarded_requests_total",
                "HTTP requests a gateway forwarded to its ingest",
            )?,
            role: IntGaugeVec::new(
                Opts::new(
                    "cluster_role",
                    "1 for the process's role: all (one process), ingest or gateway",
                ),
                &["role"],
            )?,
        })
    }

    /// Sets the role gauge and creates every labelled series at 0, so dashboards and alerts
    /// see them from the start (in every role).
    pub fn init(&self, role: &str) {
        self.role.with_label_values(&[role]).set(1);
        for kind in ["records", "reset", "end", "book", "snapshot", "round"] {
            self.published.with_label_values(&[kind]);
            self.published_bytes.with_label_values(&[kind]);
        }
        for reason in ["start", "gap", "restore", "error"] {
            self.resyncs.with_label_values(&[reason]);
        }
    }

    /// Registers every metric in `registry`.
    ///
    /// # Errors
    /// When a name is already registered (a bug).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.published.clone()))?;
        registry.register(Box::new(self.published_bytes.clone()))?;
        registry.register(Box::new(self.published_records.clone()))?;
        registry.register(Box::new(self.republished.clone()))?;
        registry.register(Box::new(self.tap_blocked.clone()))?;
        registry.register(Box::new(self.rounds.clone()))?;
        registry.register(Box::new(self.forwarded_answered.clone()))?;
        registry.register(Box::new(self.resyncs.clone()))?;
        registry.register(Box::new(self.followed_batches.clone()))?;
        registry.register(Box::new(self.followed_records.clone()))?;
        registry.register(Box::new(self.follow_latency.clone()))?;
        registry.register(Box::new(self.synced.clone()))?;
        registry.register(Box::new(self.forwarded.clone()))?;
        registry.register(Box::new(self.role.clone()))?;
        Ok(())
    }
}
