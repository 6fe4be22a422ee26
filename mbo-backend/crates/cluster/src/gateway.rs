//! `--role gateway`: a [`Feed`] fed from the ingest over NATS, and the gateway's health.
//!
//! ## Follower
//! 1. Load a snapshot round: the latest marker on `mbo.snapshot.round`, then each of its
//!    books' latest message; all must carry the marker's round (a round being replaced
//!    while it is read is read again). When the latest round is too old (after a gap, or
//!    older than the epoch a reset announced), ask the ingest for a new one first.
//! 2. Hand the engine a [`FeedEvent::Restore`] with the round's epoch, index and books.
//! 3. Follow `mbo.records` from the round's last records sequence + 1 with an ordered
//!    consumer. A batch that starts where the previous ended is applied; one that is
//!    already covered (older epoch, or ending at or before the expected index) is skipped;
//!    anything else is a gap: back to 1. A reset without restored books becomes an empty
//!    `Restore` of the new epoch; one with restored books means back to 1 (its round).
//!
//! ## Health
//! Ready = connected, synced, the ingest's status fresh (within [`STALE_AFTER`]) and the
//! ingest itself ready. Otherwise `stale` with the reason (`starting` before the first
//! sync). The replay status served locally (`GET /api/v1/replay`, the `status` events) is
//! the ingest's, from its status messages.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_nats::jetstream::consumer::push::OrderedConfig;
use async_nats::jetstream::consumer::DeliverPolicy;
use async_nats::jetstream::{self, Context};
use async_nats::Client;
use futures::StreamExt;
use mbo_api::hub::{Health, Hub};
use mbo_book::BookKey;
use mbo_feed::{
    Feed, FeedError, FeedEvent, ReplayCommand, ReplayHandle, ReplayStatus, RestoredBooks,
};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::metrics::ClusterMetrics;
use crate::wire::{self, RecordsMessage, RoundMarker, RoundReply, StatusMessage};
use crate::ClusterError;

/// No status from the ingest for this long: the books are stale.
pub const STALE_AFTER: Duration = Duration::from_secs(3);
/// Events buffered between the follower and the engine.
const FEED_CAPACITY: usize = 256;

/// What a gateway needs to build its server.
#[derive(Debug)]
pub struct GatewayStart {
    /// The feed (metadata from the ingest's status, events from NATS, replay status).
    pub feed: Feed,
    /// The ingest's source description.
    pub description: String,
    /// How history and replay requests reach the ingest.
    pub forward: mbo_api::http::forward::Forwarder,
    /// Give it the server's hub once built.
    pub link: GatewayLink,
    /// The ingest's crypto venue books, mirrored (`None`: it runs no venues).
    pub venue_hub: Option<Arc<mbo_api::venues::hub::VenueHub>>,
}

/// Shared between the follower, the status task and the server.
#[derive(Debug, Clone, Default)]
pub struct GatewayLink {
    hub: Arc<OnceLock<Arc<Hub>>>,
    synced: Arc<AtomicBool>,
    ever_synced: Arc<AtomicBool>,
    last_status_ns: Arc<AtomicU64>,
    ingest_health: Arc<Mutex<(String, Option<String>)>>,
    why_unsynced: Arc<Mutex<String>>,
}

impl GatewayLink {
    /// Hands over the server's hub (health and status changes are reported there).
    pub fn attach(&self, hub: Arc<Hub>) {
        let _ = self.hub.set(hub);
    }

    fn set_synced(&self, synced: bool, why: &str) {
        self.synced.store(synced, Ordering::Release);
        if synced {
            self.ever_synced.store(true, Ordering::Release);
        } else if let Ok(mut w) = self.why_unsynced.lock() {
            why.clone_into(&mut w);
        }
    }

    /// The health the gateway should report now.
    fn health(&self, connected: bool) -> Health {
        if !connected {
            return Health::Stale("not connected to NATS".into());
        }
        if !self.synced.load(Ordering::Acquire) {
            let why = self
                .why_unsynced
                .lock()
                .map(|w| w.clone())
                .unwrap_or_default();
            return if self.ever_synced.load(Ordering::Acquire) {
                Health::Stale(format!("resynchronising with the ingest: {why}"))
            } else {
                Health::Starting
            };
        }
        let age_ns = crate::unix_ns().saturating_sub(self.last_status_ns.load(Ordering::Acquire));
        if age_ns > STALE_AFTER.as_nanos() as u64 {
            return Health::Stale(format!(
                "no status from the ingest for {:.1} s",
                age_ns as f64 / 1e9
            ));
        }
        let (health, detail) = self
            .ingest_health
            .lock()
            .map(|h| h.clone())
            .unwrap_or_default();
        match health.as_str() {
            "ready" => Health::Ready,
            other => Health::Stale(format!(
                "the ingest is {other}{}",
                detail.map(|d| format!(": {d}")).unwrap_or_default()
            )),
        }
    }
}

/// Connects to NATS, waits for the ingest's first status (logging while it waits), and
/// starts following it on `runtime` (the engine's runtime: the follower and the engine
/// then share a thread, as a file replay and the engine do).
///
/// # Errors
/// [`ClusterError`] for an unusable URL, or `Stopped` when `shutdown` comes first.
pub async fn start(
    url: &str,
    metrics: ClusterMetrics,
    runtime: &tokio::runtime::Handle,
    shutdown: CancellationToken,
) -> Result<GatewayStart, ClusterError> {
    let client = crate::connect(url, "mbo-gateway").await?;
    let js = jetstream::new(client.clone());
    let mut statuses = client
        .subscribe(wire::STATUS_SUBJECT)
        .await
        .map_err(ClusterError::nats)?;
    let first = first_status(&js, &mut statuses, &shutdown).await?;
    tracing::info!(ingest = %first.ingest_id, epoch = first.epoch, "ingest found");
    let link = GatewayLink::default();
    link.last_status_ns
        .store(crate::unix_ns(), Ordering::Release);
    let initial_replay = first
        .replay
        .as_ref()
        .map(wire::ReplayStatusMessage::to_status);
    let (status_tx, status_rx) = watch::channel(initial_replay.clone().unwrap_or(ReplayStatus {
        state: mbo_feed::PlayState::Playing,
        pace: mbo_feed::Pace::Max,
        position_ts: 0,
        next_index: 0,
        progress: 0.0,
        released: 0,
    }));
    // Commands are forwarded as HTTP requests; this channel only exists so the local
    // status route sees a controllable replay, like the ingest's.
    let (commands, command_rx) = mpsc::channel::<ReplayCommand>(1);
    tokio::spawn(drain_commands(command_rx));
    let control = initial_replay.is_some().then(|| ReplayHandle {
        commands,
        status: status_rx,
    });
    let (events_tx, events) = mpsc::channel(FEED_CAPACITY);
    let feed = Feed {
        metadata: first.feed.metadata(),
        events,
        control,
    };
    *link
        .ingest_health
        .lock()
        .map_err(|_| ClusterError::Stopped)? = (first.health.clone(), first.health_detail.clone());
    tokio::spawn(watch_status(
        client.clone(),
        statuses,
        status_tx,
        link.clone(),
        shutdown.clone(),
    ));
    let venue_hub = match &first.venues {
        Some(layout) => {
            let hub = layout
                .build()
                .map_err(|e| ClusterError::Protocol(e.to_string()))?;
            tokio::spawn(crate::venue_relay::mirror(
                client.clone(),
                hub.clone(),
                shutdown.clone(),
            ));
            Some(hub)
        }
        None => None,
    };
    runtime.spawn(
        Follower {
            js,
            events: events_tx,
            link: link.clone(),
            metrics: metrics.clone(),
            shutdown,
        }
        .run(),
    );
    Ok(GatewayStart {
        description: first.feed.description.clone(),
        feed,
        forward: crate::http_forward::forwarder(client, metrics),
        link,
        venue_hub,
    })
}

async fn drain_commands(mut rx: mpsc::Receiver<ReplayCommand>) {
    while let Some(cmd) = rx.recv().await {
        tracing::warn!(?cmd, "a gateway does not run a replay: command ignored");
    }
}

async fn first_status(
    js: &Context,
    live: &mut async_nats::Subscriber,
    shutdown: &CancellationToken,
) -> Result<StatusMessage, ClusterError> {
    let mut logged = false;
    loop {
        if let Ok(stream) = js.get_stream(wire::STATUS_STREAM).await {
            if let Ok(m) = stream
                .get_last_raw_message_by_subject(wire::STATUS_SUBJECT)
                .await
            {
                if let Ok(s) = serde_json::from_slice::<StatusMessage>(&m.payload) {
                    return Ok(s);
                }
            }
        }
        if !logged {
            tracing::info!("waiting for the ingest's first status on NATS");
            logged = true;
        }
        tokio::select! {
            () = shutdown.cancelled() => return Err(ClusterError::Stopped),
            msg = live.next() => if let Some(m) = msg {
                if let Ok(s) = serde_json::from_slice::<StatusMessage>(&m.payload) {
                    return Ok(s);
                }
            },
            () = tokio::time::sleep(Duration::from_secs(1)) => {},
        }
    }
}

/// Follows the ingest's status and keeps the hub's health and replay status current.
async fn watch_status(
    client: Client,
    mut statuses: async_nats::Subscriber,
    replay: watch::Sender<ReplayStatus>,
    link: GatewayLink,
    shutdown: CancellationToken,
) {
    let mut check = tokio::time::interval(Duration::from_millis(250));
    let mut last_health = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            msg = statuses.next() => {
                let Some(msg) = msg else { return };
                let Ok(s) = serde_json::from_slice::<StatusMessage>(&msg.payload) else {
                    tracing::warn!("unreadable status message");
                    continue;
                };
                link.last_status_ns.store(crate::unix_ns(), Ordering::Release);
                if let Ok(mut h) = link.ingest_health.lock() {
                    *h = (s.health.clone(), s.health_detail.clone());
                }
                if let Some(r) = &s.replay {
                    let new = r.to_status();
                    let changed = {
                        let old = replay.borrow();
                        old.state != new.state || old.pace != new.pace
                    };
                    replay.send_replace(new);
                    if changed {
                        if let Some(hub) = link.hub.get() {
                            hub.control_changed();
                        }
                    }
                }
            }
            _ = check.tick() => {}
        }
        let connected = client.connection_state() == async_nats::connection::State::Connected;
        let health = link.health(connected);
        if let Some(hub) = link.hub.get() {
            if last_health.as_ref() != Some(&health) {
                // A gateway that never synced leaves `Starting` to the engine's first
                // publication; every other transition is the link's.
                if health != Health::Starting || hub.health() != Health::Ready {
                    tracing::info!(health = health.label(), "gateway health");
                    hub.set_health(health.clone());
                    hub.control_changed();
                }
                last_health = Some(health);
            }
        }
    }
}

struct Follower {
    js: Context,
    events: mpsc::Sender<Result<FeedEvent, FeedError>>,
    link: GatewayLink,
    metrics: ClusterMetrics,
    shutdown: CancellationToken,
}

/// A round read from the snapshots stream.
struct Round {
    marker: RoundMarker,
    books: Vec<mbo_book::Book>,
}

impl Follower {
    async fn run(self) {
        let mut reason = "start";
        let mut wanted: Option<(u64, u64)> = None;
        let mut wait = Duration::from_millis(50);
        loop {
            if self.shutdown.is_cancelled() {
                return;
            }
            self.metrics.resyncs.with_label_values(&[reason]).inc();
            let outcome = tokio::select! {
                () = self.shutdown.cancelled() => return,
                r = self.sync_and_follow(wanted) => r,
            };
            self.link.set_synced(false, &outcome.to_string());
            self.metrics.synced.set(0);
            match &outcome {
                ClusterError::Stopped => return,
                ClusterError::Gap { .. } => {
                    reason = "gap";
                    wanted = None;
                }
                ClusterError::NeedRound(epoch) => {
                    reason = "restore";
                    wanted = Some((*epoch, 0));
                    wait = Duration::from_millis(50);
                    continue;
                }
                _ => reason = "error",
            }
            tracing::warn!(error = %outcome, "gateway lost sync: resynchronising");
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_secs(2));
            if matches!(outcome, ClusterError::Gap { .. }) {
                wait = Duration::from_millis(50);
            }
        }
    }

    /// Loads a round (at or after `wanted`, asking for a fresh one when needed), restores
    /// it and follows the records after it. Returns why it stopped.
    async fn sync_and_follow(&self, wanted: Option<(u64, u64)>) -> ClusterError {
        let round = match self.load_round(wanted).await {
            Ok(r) => r,
            Err(e) => return e,
        };
        let marker = round.marker;
        let restore = FeedEvent::Restore {
            epoch: marker.epoch,
            next_index: marker.next_index,
            books: RestoredBooks(round.books),
        };
        if self.events.send(Ok(restore)).await.is_err() {
            return ClusterError::Stopped;
        }
        let stream = match self.js.get_stream(wire::RECORDS_STREAM).await {
            Ok(s) => s,
            Err(e) => return ClusterError::nats(e),
        };
        let last = stream.cached_info().state.last_sequence;
        if last < marker.records_seq {
            // A memory stream lost with a NATS restart: the round predates the new stream.
            return ClusterError::Protocol(format!(
                "the round names records sequence {} but the stream ends at {last}: asking for a new round",
                marker.records_seq
            ));
        }
        let consumer = match stream
            .create_consumer(OrderedConfig {
                deliver_subject: self.js.client().new_inbox(),
                filter_subject: wire::RECORDS_SUBJECT.into(),
                deliver_policy: DeliverPolicy::ByStartSequence {
                    start_sequence: marker.records_seq + 1,
                },
                ..OrderedConfig::default()
            })
            .await
        {
            Ok(c) => c,
            Err(e) => return ClusterError::nats(e),
        };
        let mut messages = match consumer.messages().await {
            Ok(m) => m,
            Err(e) => return ClusterError::nats(e),
        };
        tracing::info!(
            epoch = marker.epoch,
            next_index = marker.next_index,
            books = marker.books.len(),
            records_seq = marker.records_seq,
            "synced to a snapshot round"
        );
        self.link.set_synced(true, "");
        self.metrics.synced.set(1);
        let mut epoch = marker.epoch;
        let mut expected = marker.next_index;
        loop {
            let msg = match messages.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return ClusterError::nats(e),
                None => return ClusterError::Nats("the records consumer ended".into()),
            };
            let decoded = match RecordsMessage::decode(msg.headers.as_ref(), &msg.payload) {
                Ok(d) => d,
                Err(e) => return e,
            };
            match decoded {
                RecordsMessage::Records {
                    epoch: e,
                    first_index,
                    catch_up,
                    applied_ns,
                    records,
                } => {
                    let n = records.len() as u64;
                    if e < epoch || (e == epoch && first_index + n <= expected) {
                        continue;
                    }
                    if e != epoch || first_index != expected {
                        return ClusterError::Gap {
                            epoch,
                            expected,
                            got_epoch: e,
                            got: first_index,
                        };
                    }
                    if applied_ns > 0 {
                        let lag = crate::unix_ns().saturating_sub(applied_ns);
                        self.metrics.follow_latency.observe(lag as f64 / 1e9);
                    }
                    self.metrics.followed_batches.inc();
                    self.metrics.followed_records.inc_by(n);
                    expected += n;
                    let ev = FeedEvent::Records {
                        first_index,
                        records,
                        catch_up,
                    };
                    if self.events.send(Ok(ev)).await.is_err() {
                        return ClusterError::Stopped;
                    }
                }
                RecordsMessage::Reset {
                    epoch: e,
                    next_index,
                    restored,
                } => {
                    if e <= epoch {
                        continue;
                    }
                    if restored > 0 {
                        return ClusterError::NeedRound(e);
                    }
                    epoch = e;
                    expected = next_index;
                    let ev = FeedEvent::Restore {
                        epoch,
                        next_index,
                        books: RestoredBooks::default(),
                    };
                    if self.events.send(Ok(ev)).await.is_err() {
                        return ClusterError::Stopped;
                    }
                }
                RecordsMessage::End { epoch: e } => {
                    if e == epoch && self.events.send(Ok(FeedEvent::End)).await.is_err() {
                        return ClusterError::Stopped;
                    }
                }
            }
        }
    }

    /// The latest complete round at or after `wanted` (`None`: a fresh one is asked for
    /// first, so a gap is not met again).
    async fn load_round(&self, wanted: Option<(u64, u64)>) -> Result<Round, ClusterError> {
        let wanted = match wanted {
            Some(w) => w,
            None => self.ask_round().await.unwrap_or((0, 0)),
        };
        let stream = self
            .js
            .get_stream(wire::SNAPSHOTS_STREAM)
            .await
            .map_err(ClusterError::nats)?;
        for attempt in 0u32.. {
            if self.shutdown.is_cancelled() {
                return Err(ClusterError::Stopped);
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt.min(50)))).await;
            }
            let m = stream
                .get_last_raw_message_by_subject(wire::ROUND_SUBJECT)
                .await
                .map_err(ClusterError::nats)?;
            let marker: RoundMarker = serde_json::from_slice(&m.payload)
                .map_err(|e| ClusterError::Protocol(format!("round marker: {e}")))?;
            if (marker.epoch, marker.next_index) < wanted {
                if attempt % 25 == 24 {
                    // The request may have been lost (ingest restarting): ask again.
                    let _ = self.ask_round().await;
                }
                continue;
            }
            let name = wire::round_name(marker.epoch, marker.next_index);
            let mut books = Vec::with_capacity(marker.books.len());
            let mut complete = true;
            for &(instrument_id, publisher_id) in &marker.books {
                let msg = stream
                    .get_last_raw_message_by_subject(&wire::book_subject(
                        instrument_id,
                        publisher_id,
                    ))
                    .await
                    .map_err(ClusterError::nats)?;
                if wire::header_str(Some(&msg.headers), wire::H_ROUND) != name {
                    complete = false;
                    break;
                }
                let decoded = mbo_store::decode_checkpoint(&msg.payload).map_err(|e| {
                    ClusterError::Protocol(format!("snapshot of {instrument_id}: {e}"))
                })?;
                books.push(decoded.into_book(BookKey {
                    instrument_id,
                    publisher_id,
                }));
            }
            if complete {
                return Ok(Round { marker, books });
            }
        }
        Err(ClusterError::Stopped)
    }

    /// Asks the ingest for a round now; returns its name.
    async fn ask_round(&self) -> Option<(u64, u64)> {
        let reply = self
            .js
            .client()
            .request(wire::SNAPSHOT_REQUEST_SUBJECT, bytes::Bytes::new())
            .await
            .ok()?;
        let r: RoundReply = serde_json::from_slice(&reply.payload).ok()?;
        Some((r.epoch, r.next_index))
    }
}
