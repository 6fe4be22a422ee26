//! Once a second: each connection's health into the `mbo_venue_*` metrics and the JSON of
//! `GET /api/v1/venues` (and of the venues stream's `health` events), and the latency
//! rings into the histograms. All of it off the hot path.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mbo_venues::ResyncReason;
use mbo_venues_net::{ConnState, Health};
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::venues::hub::VenueHub;
use crate::venues::latency::Percentiles;
use crate::venues::metrics::VenueMetrics;

/// A connection state's name.
pub fn state_name(s: ConnState) -> &'static str {
    match s {
        ConnState::Connecting => "connecting",
        ConnState::Subscribing => "subscribing",
        ConnState::Live => "live",
        ConnState::Backoff => "backoff",
        ConnState::Stopped => "stopped",
    }
}

fn state_code(s: ConnState) -> i64 {
    match s {
        ConnState::Connecting => 0,
        ConnState::Subscribing => 1,
        ConnState::Live => 2,
        ConnState::Backoff => 3,
        ConnState::Stopped => 4,
    }
}

/// Why a book needed a resync, in words.
pub fn reason_text(r: &ResyncReason) -> String {
    match r {
        ResyncReason::Gap { expected, got } => format!("gap: expected {expected}, got {got}"),
        ResyncReason::Checksum { expected, computed } => {
            format!("checksum: expected {expected}, computed {computed}")
        }
        ResyncReason::SnapshotTooOld => "snapshot older than the buffered updates".to_owned(),
        ResyncReason::BufferOverflow => "too many updates buffered before the snapshot".to_owned(),
        _ => "resync".to_owned(),
    }
}

/// What the sampler remembers between visits, per connection.
#[derive(Debug, Clone)]
pub struct Sampler {
    last: Vec<(Health, Instant, u64, u64)>,
}

impl Sampler {
    /// Nothing seen yet.
    pub fn new(hub: &VenueHub) -> Self {
        Self {
            last: hub
                .connections
                .iter()
                .map(|_| (Health::default(), Instant::now(), 0, 0))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct Latency {
    p50: Option<i64>,
    p99: Option<i64>,
}

impl From<Percentiles> for Latency {
    fn from(p: Percentiles) -> Self {
        Self {
            p50: p.p50,
            p99: p.p99,
        }
    }
}

#[derive(Serialize)]
struct Gap<'a> {
    symbol: &'a str,
    reason: String,
    at_ns: u64,
}

#[derive(Serialize)]
struct ConnectionJson<'a> {
    venue: &'static str,
    state: &'static str,
    url: &'a str,
    symbols: &'a [String],
    books_live: usize,
    books: usize,
    messages: u64,
    msgs_per_s: f64,
    bytes: u64,
    connects: u64,
    reconnects: u64,
    resyncs: u64,
    gaps: u64,
    checksum_failures: u64,
    last_gap: Option<Gap<'a>>,
    last_error: Option<&'a str>,
    events_dropped: u64,
    exchange_latency_ns: Latency,
    publish_latency_ns: Latency,
}

/// The `venues` array: every connection's health as of now (rates from the sampler's last
/// visit).
pub fn health_json(hub: &VenueHub) -> Bytes {
    let healths: Vec<Health> = hub
        .connections
        .iter()
        .map(|c| c.health.borrow().clone())
        .collect();
    let list: Vec<ConnectionJson<'_>> = hub
        .connections
        .iter()
        .zip(&healths)
        .map(|(c, h)| ConnectionJson {
            venue: c.venue.name(),
            state: state_name(h.state),
            url: &c.url,
            symbols: &c.symbols,
            books_live: h.books_live,
            books: h.books.max(c.symbols.len()),
            messages: h.messages,
            msgs_per_s: (f64::from_bits(c.msgs_per_s.load(Ordering::Relaxed)) * 10.0).round()
                / 10.0,
            bytes: h.bytes,
            connects: h.connects,
            reconnects: h.reconnects,
            resyncs: h.resyncs,
            gaps: h.gaps,
            checksum_failures: h.checksum_failures,
            last_gap: h.last_gap.as_ref().map(|g| Gap {
                symbol: &g.symbol,
                reason: reason_text(&g.reason),
                at_ns: g.at_ns,
            }),
            last_error: h.last_error.as_deref(),
            events_dropped: h.events_dropped,
            exchange_latency_ns: c.exchange_latency.percentiles().into(),
            publish_latency_ns: c.publish_latency.percentiles().into(),
        })
        .collect();
    match serde_json::to_vec(&list) {
        Ok(v) => Bytes::from(v),
        Err(e) => {
            tracing::error!(error = %e, "venue health serialisation failed");
            Bytes::from_static(b"[]")
        }
    }
}

/// One visit: metrics from the health deltas and the rings, then the JSON.
pub fn visit(hub: &VenueHub, metrics: &VenueMetrics, sampler: &mut Sampler) {
    let now = Instant::now();
    for (i, c) in hub.connections.iter().enumerate() {
        let h = c.health.borrow().clone();
        let name = [c.venue.name()];
        let (last, at, seen_publish, seen_exchange) = &mut sampler.last[i];
        metrics
            .messages
            .with_label_values(&name)
            .inc_by(h.messages.saturating_sub(last.messages));
        metrics
            .bytes
            .with_label_values(&name)
            .inc_by(h.bytes.saturating_sub(last.bytes));
        metrics
            .reconnects
            .with_label_values(&name)
            .inc_by(h.reconnects.saturating_sub(last.reconnects));
        metrics
            .events_dropped
            .with_label_values(&name)
            .inc_by(h.events_dropped.saturating_sub(last.events_dropped));
        metrics
            .connection_state
            .with_label_values(&name)
            .set(state_code(h.state));
        let dt = now.duration_since(*at).as_secs_f64();
        if dt > 0.0 {
            let rate = h.messages.saturating_sub(last.messages) as f64 / dt;
            c.msgs_per_s.store(rate.to_bits(), Ordering::Relaxed);
        }
        let publish = metrics.publish_latency.with_label_values(&name);
        for ns in c.publish_latency.since(*seen_publish) {
            publish.observe(ns.max(0) as f64 / 1e9);
        }
        *seen_publish = c.publish_latency.written();
        let exchange = metrics.exchange_latency.with_label_values(&name);
        for ns in c.exchange_latency.since(*seen_exchange) {
            exchange.observe(ns.max(0) as f64 / 1e9);
        }
        *seen_exchange = c.exchange_latency.written();
        *last = h;
        *at = now;
    }
    hub.health_json.store(Arc::new(health_json(hub)));
}

/// Visits every `every` until cancelled.
pub async fn sample(
    hub: Arc<VenueHub>,
    metrics: VenueMetrics,
    every: Duration,
    cancel: CancellationToken,
) {
    let mut sampler = Sampler::new(&hub);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => visit(&hub, &metrics, &mut sampler),
        }
    }
}
