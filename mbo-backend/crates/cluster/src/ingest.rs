//! `--role ingest`: stream setup, the publisher, status and the request/reply services.
//!
//! ## Publisher
//! One task receives the engine's [`TapEvent`]s in order and publishes each one on
//! `mbo.records`, pipelined: up to [`ACK_WINDOW`] messages wait for their JetStream ack at
//! once. A failed ack (NATS restarting) sends every unacknowledged message again, in order,
//! with the same `Nats-Msg-Id`, until they land; meanwhile the tap fills and the engine
//! waits. The task also applies every batch to a **replica** of the market, so it can
//! publish a snapshot round of the exact books at any batch boundary without asking the
//! engine: every [`ROUND_EVERY`] when something changed, right after a reset that restored
//! books, and whenever a gateway asks (`mbo.ctl.snapshot`).
//!
//! A round never waits for acks (it would stall the feed): its marker names the last records
//! message known to have landed, which the round includes (and maybe more after it); a
//! gateway follows from the next one and skips the batches the round already holds.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::context::PublishError;
use async_nats::jetstream::publish::PublishAck;
use async_nats::jetstream::{self, Context};
use async_nats::{Client, HeaderMap};
use axum::Router;
use bytes::Bytes;
use futures::FutureExt;
use futures::StreamExt;
use mbo_api::hub::Hub;
use mbo_api::tap::{Tap, TapEvent};
use mbo_book::Market;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::metrics::ClusterMetrics;
use crate::wire::{self, RoundMarker, RoundReply, StatusMessage};
use crate::ClusterError;

/// Messages awaiting their ack at most.
pub const ACK_WINDOW: usize = 256;
/// Engine events buffered between the engine and the publisher.
pub const TAP_CAPACITY: usize = 256;
/// A round at least this often while the market changes.
pub const ROUND_EVERY: Duration = Duration::from_secs(1);
/// Status at least this often.
pub const STATUS_EVERY: Duration = Duration::from_secs(1);

/// An ingest connected to NATS with its streams ready.
#[derive(Debug)]
pub struct Prepared {
    client: Client,
    js: Context,
    /// The epoch the engine starts at: above every epoch already published.
    pub epoch: u64,
    /// The tap to give the engine.
    pub tap: Tap,
    events: mpsc::Receiver<TapEvent>,
    metrics: ClusterMetrics,
    book_changes: bool,
    storage: wire::RecordsStorage,
    /// Last sequence of the records stream when this ingest started.
    records_seq: u64,
}

/// Connects, creates (or reuses) the streams, and finds the epoch to start from. Waits,
/// logging, while NATS is unreachable.
///
/// # Errors
/// [`ClusterError`] for an unusable URL or a stream that exists with an incompatible
/// configuration.
pub async fn prepare(
    url: &str,
    metrics: ClusterMetrics,
    options: IngestOptions,
) -> Result<Prepared, ClusterError> {
    let IngestOptions {
        book_changes,
        storage,
    } = options;
    let client = crate::connect(url, "mbo-ingest").await?;
    let js = jetstream::new(client.clone());
    let mut wait = Duration::from_millis(100);
    let records = loop {
        match create_streams(&js, storage).await {
            Ok(records) => break records,
            Err(e) => {
                tracing::warn!(error = %e, url, "waiting for NATS JetStream");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
        }
    };
    let records_seq = records.cached_info().state.last_sequence;
    let mut epoch = 0;
    if let Ok(last) = records
        .get_last_raw_message_by_subject(wire::RECORDS_SUBJECT)
        .await
    {
        if let Ok(e) = wire::header_u64(Some(&last.headers), wire::H_EPOCH) {
            epoch = e + 1;
        }
    }
    if let Ok(snapshots) = js.get_stream(wire::SNAPSHOTS_STREAM).await {
        if let Ok(m) = snapshots
            .get_last_raw_message_by_subject(wire::ROUND_SUBJECT)
            .await
        {
            if let Ok(marker) = serde_json::from_slice::<RoundMarker>(&m.payload) {
                epoch = epoch.max(marker.epoch + 1);
            }
        }
    }
    tracing::info!(url, epoch, "NATS JetStream ready: streams created");
    let (tap, events) = Tap::channel(TAP_CAPACITY);
    let tap = tap.with_blocked_counter(metrics.tap_blocked.clone());
    Ok(Prepared {
        client,
        js,
        epoch,
        tap,
        events,
        metrics,
        book_changes,
        storage,
        records_seq,
    })
}

/// What an ingest publishes, and where JetStream keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestOptions {
    /// Publish `mbo.book.*` too.
    pub book_changes: bool,
    /// Memory or file for the records and book-change streams.
    pub storage: wire::RecordsStorage,
}

/// Creates the streams that do not exist (a NATS server restarted without its memory
/// streams gets them back); returns the records stream.
async fn create_streams(
    js: &Context,
    storage: wire::RecordsStorage,
) -> Result<jetstream::stream::Stream, ClusterError> {
    let mut records = None;
    for config in wire::stream_configs(storage) {
        let name = config.name.clone();
        let wanted = config.storage;
        let stream = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| ClusterError::Nats(format!("stream {name}: {e}")))?;
        if stream.cached_info().config.storage != wanted {
            tracing::warn!(
                stream = %name,
                wanted = ?wanted,
                found = ?stream.cached_info().config.storage,
                "the stream exists with another storage type: kept as it is (delete it to change)"
            );
        }
        if name == wire::RECORDS_STREAM {
            records = Some(stream);
        }
    }
    records.ok_or_else(|| ClusterError::Protocol("no records stream configured".into()))
}

impl Prepared {
    /// Starts publishing (the engine must run with [`Prepared::tap`]), the status and the
    /// services, on the current runtime. Everything stops with `shutdown`; the publisher
    /// first publishes whatever the engine handed over.
    pub fn start(
        self,
        hub: Arc<Hub>,
        venues: Option<Arc<mbo_api::venues::hub::VenueHub>>,
        router: Router,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let Prepared {
            client,
            js,
            epoch,
            tap,
            events,
            metrics,
            book_changes,
            storage,
            records_seq,
        } = self;
        drop(tap);
        let (round_tx, round_rx) = mpsc::channel(64);
        tokio::spawn(serve_round_requests(
            client.clone(),
            round_tx,
            shutdown.clone(),
        ));
        tokio::spawn({
            let (client, metrics, shutdown) = (client.clone(), metrics.clone(), shutdown.clone());
            async move {
                if let Err(e) = crate::http_forward::serve(client, router, metrics, shutdown).await
                {
                    tracing::error!(error = %e, "forwarded requests cannot be answered");
                }
            }
        });
        let layout = venues
            .as_deref()
            .map(mbo_api::venues::mirror::MirrorLayout::of);
        if let Some(v) = venues {
            crate::venue_relay::publish(client.clone(), v, shutdown.clone());
        }
        tokio::spawn(publish_status(client, hub, layout, shutdown));
        let publisher = Publisher {
            js,
            replica: Market::new(),
            epoch,
            window: VecDeque::new(),
            records_seq,
            storage,
            metrics,
            buffer: Vec::new(),
            changes: book_changes.then(crate::book_changes::BookChanges::default),
            changed: true,
            last_round: None,
        };
        tokio::spawn(publisher.run(events, round_rx))
    }
}

/// A message to publish (kept until acknowledged, to publish again if need be).
#[derive(Debug, Clone)]
struct Outgoing {
    subject: String,
    headers: HeaderMap,
    payload: Bytes,
    kind: &'static str,
}

/// The future of a JetStream ack.
type AckFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<PublishAck, PublishError>> + Send>>;

struct Pending {
    msg: Outgoing,
    ack: AckFuture,
}

struct Publisher {
    js: Context,
    replica: Market,
    epoch: u64,
    window: VecDeque<Pending>,
    /// Sequence of the last acknowledged message of the records stream.
    records_seq: u64,
    /// Where the records stream lives (to create it again after a NATS restart).
    storage: wire::RecordsStorage,
    metrics: ClusterMetrics,
    buffer: Vec<u8>,
    /// Level changes per book, for `mbo.book.*` (`None`: not published).
    changes: Option<crate::book_changes::BookChanges>,
    /// The replica changed since the last round.
    changed: bool,
    last_round: Option<(u64, u64)>,
}

impl Publisher {
    async fn run(
        mut self,
        mut events: mpsc::Receiver<TapEvent>,
        mut rounds: mpsc::Receiver<async_nats::Subject>,
    ) {
        // A round at start: gateways that see a new ingest resynchronise on it.
        self.round(None).await;
        let mut tick = tokio::time::interval(ROUND_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Rounds first: at max pace the tap is never empty, and a gateway waiting for
            // a round must not wait for the feed to pause.
            tokio::select! {
                biased;
                Some(reply) = rounds.recv() => self.round(Some(reply)).await,
                _ = tick.tick() => if self.changed { self.round(None).await },
                ev = events.recv() => match ev {
                    Some(ev) => self.handle(ev).await,
                    // The engine stopped (shutdown): everything it applied is queued.
                    None => break,
                },
            }
        }
        self.settle_all().await;
        tracing::info!(
            records_seq = self.records_seq,
            "publisher stopped: everything acknowledged"
        );
    }

    async fn handle(&mut self, ev: TapEvent) {
        match ev {
            TapEvent::Batch { batch, catch_up } => {
                if self.replica.next_index() != batch.first_index {
                    self.replica.set_next_index(batch.first_index);
                }
                match &mut self.changes {
                    Some(changes) => {
                        for r in &batch.records {
                            changes.apply(&mut self.replica, r);
                        }
                    }
                    None => {
                        for r in &batch.records {
                            self.replica.apply(r);
                        }
                    }
                }
                self.epoch = batch.epoch;
                self.changed = true;
                mbo_store::blocks::encode_block(&batch.records, &mut self.buffer);
                let h = wire::records_headers(
                    batch.epoch,
                    batch.first_index,
                    batch.records.len(),
                    batch.server_ts,
                    catch_up,
                );
                let payload = Bytes::copy_from_slice(&self.buffer);
                self.metrics
                    .published_records
                    .inc_by(batch.records.len() as u64);
                self.publish(Outgoing {
                    subject: wire::RECORDS_SUBJECT.into(),
                    headers: h,
                    payload,
                    kind: "records",
                })
                .await;
                self.publish_book_changes(batch.first_index).await;
            }
            TapEvent::Reset {
                epoch,
                next_index,
                books,
            } => {
                let restored = books.len();
                self.replica.reset();
                for book in books {
                    self.replica.insert_book(book);
                }
                self.replica.set_next_index(next_index);
                self.epoch = epoch;
                self.changed = true;
                if let Some(changes) = &mut self.changes {
                    changes.reset(&self.replica);
                }
                let mut h = HeaderMap::new();
                h.insert(wire::H_MSG_ID, format!("x.{epoch}.{next_index}").as_str());
                h.insert(wire::H_KIND, "reset");
                h.insert(wire::H_EPOCH, epoch.to_string().as_str());
                h.insert(wire::H_INDEX, next_index.to_string().as_str());
                h.insert(wire::H_RESTORED, restored.to_string().as_str());
                self.publish(Outgoing {
                    subject: wire::RECORDS_SUBJECT.into(),
                    headers: h,
                    payload: Bytes::new(),
                    kind: "reset",
                })
                .await;
                self.publish_book_changes(next_index).await;
                if restored > 0 {
                    // Gateways wait for this round to get the restored books.
                    self.round(None).await;
                }
            }
            TapEvent::End { epoch } => {
                let next = self.replica.next_index();
                let mut h = HeaderMap::new();
                h.insert(wire::H_MSG_ID, format!("e.{epoch}.{next}").as_str());
                h.insert(wire::H_KIND, "end");
                h.insert(wire::H_EPOCH, epoch.to_string().as_str());
                h.insert(wire::H_INDEX, next.to_string().as_str());
                self.publish(Outgoing {
                    subject: wire::RECORDS_SUBJECT.into(),
                    headers: h,
                    payload: Bytes::new(),
                    kind: "end",
                })
                .await;
            }
        }
    }

    /// Publishes the book changes collected since the last call (`index`: the batch's).
    async fn publish_book_changes(&mut self, index: u64) {
        let Some(changes) = &mut self.changes else {
            return;
        };
        for (key, json) in changes.take(self.epoch) {
            let mut h = HeaderMap::new();
            h.insert(
                wire::H_MSG_ID,
                format!(
                    "b.{}.{index}.{}.{}",
                    self.epoch, key.instrument_id, key.publisher_id
                )
                .as_str(),
            );
            h.insert(wire::H_EPOCH, self.epoch.to_string().as_str());
            self.publish(Outgoing {
                subject: crate::book_changes::subject(key.instrument_id),
                headers: h,
                payload: Bytes::from(json),
                kind: "book",
            })
            .await;
        }
    }

    /// Publishes `msg` (waiting for room in the ack window), retrying until NATS takes it.
    async fn publish(&mut self, msg: Outgoing) {
        while self.window.len() >= ACK_WINDOW {
            self.settle_one().await;
        }
        self.send(msg).await;
        self.settle_ready().await;
    }

    /// Hands `msg` to NATS (retrying until the client takes it) and queues its ack.
    async fn send(&mut self, msg: Outgoing) {
        let mut wait = Duration::from_millis(50);
        loop {
            match self
                .js
                .publish_with_headers(
                    msg.subject.clone(),
                    msg.headers.clone(),
                    msg.payload.clone(),
                )
                .await
            {
                Ok(ack) => {
                    let ack: AckFuture = std::future::IntoFuture::into_future(ack);
                    self.metrics.published.with_label_values(&[msg.kind]).inc();
                    self.metrics
                        .published_bytes
                        .with_label_values(&[msg.kind])
                        .inc_by(msg.payload.len() as u64);
                    self.window.push_back(Pending { msg, ack });
                    return;
                }
                Err(e) => {
                    tracing::warn!(error = %e, subject = %msg.subject, "publish failed: retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(2));
                    self.ensure_streams().await;
                }
            }
        }
    }

    /// After a failure: the streams exist again (a NATS server restarted loses its memory
    /// streams), and the records sequence is the stream's (a new stream starts at 1).
    async fn ensure_streams(&mut self) {
        match create_streams(&self.js, self.storage).await {
            Ok(records) => {
                let last = records.cached_info().state.last_sequence;
                if last < self.records_seq {
                    tracing::warn!(
                        last,
                        was = self.records_seq,
                        "the records stream was created again"
                    );
                    self.records_seq = last;
                }
            }
            Err(e) => tracing::debug!(error = %e, "streams not available yet"),
        }
    }

    /// Waits for the oldest ack; on failure publishes every unacknowledged message again.
    async fn settle_one(&mut self) {
        let Some(p) = self.window.pop_front() else {
            return;
        };
        let result = p.ack.await;
        self.acked(p.msg, result).await;
    }

    /// Takes the acks that have already arrived, without waiting.
    async fn settle_ready(&mut self) {
        while let Some(front) = self.window.front_mut() {
            let Some(result) = (&mut front.ack).now_or_never() else {
                return;
            };
            if let Some(p) = self.window.pop_front() {
                self.acked(p.msg, result).await;
            }
        }
    }

    async fn acked(&mut self, msg: Outgoing, result: Result<PublishAck, PublishError>) {
        match result {
            Ok(ack) => {
                if msg.subject == wire::RECORDS_SUBJECT {
                    self.records_seq = self.records_seq.max(ack.sequence);
                }
            }
            Err(e) => {
                let mut again = vec![msg];
                again.extend(self.window.drain(..).map(|p| p.msg));
                tracing::warn!(error = %e, messages = again.len(), "ack failed: publishing again");
                tokio::time::sleep(Duration::from_millis(100)).await;
                self.ensure_streams().await;
                // The window was emptied: there is room for all of them.
                for msg in again {
                    self.metrics.republished.inc();
                    self.send(msg).await;
                }
            }
        }
    }

    async fn settle_all(&mut self) {
        while !self.window.is_empty() {
            self.settle_one().await;
        }
    }

    /// Publishes a round of the replica's books (then replies to `reply`, if any).
    async fn round(&mut self, reply: Option<async_nats::Subject>) {
        // No waiting for acks: the marker names the last records message known to have
        // landed, which the round includes; a gateway starting from there skips the batches
        // the round already holds. The feed is never held up by a round.
        self.settle_ready().await;
        let next_index = self.replica.next_index();
        let name = wire::round_name(self.epoch, next_index);
        let books: Vec<(u32, u16)> = self
            .replica
            .books()
            .iter()
            .map(|b| (b.key().instrument_id, b.key().publisher_id))
            .collect();
        if self.last_round != Some((self.epoch, next_index)) {
            let encoded: Vec<(String, Bytes)> = self
                .replica
                .books()
                .iter()
                .map(|b| {
                    let k = b.key();
                    (
                        wire::book_subject(k.instrument_id, k.publisher_id),
                        Bytes::from(mbo_store::encode_checkpoint(b)),
                    )
                })
                .collect();
            for (subject, payload) in encoded {
                let mut h = HeaderMap::new();
                h.insert(wire::H_MSG_ID, format!("s.{name}.{subject}").as_str());
                h.insert(wire::H_ROUND, name.as_str());
                self.publish(Outgoing {
                    subject,
                    headers: h,
                    payload,
                    kind: "snapshot",
                })
                .await;
            }
            let marker = RoundMarker {
                epoch: self.epoch,
                next_index,
                records_seq: self.records_seq,
                books,
            };
            let payload = match serde_json::to_vec(&marker) {
                Ok(p) => Bytes::from(p),
                Err(e) => {
                    tracing::error!(error = %e, "round marker not serialisable");
                    return;
                }
            };
            let mut h = HeaderMap::new();
            h.insert(wire::H_MSG_ID, format!("m.{name}").as_str());
            h.insert(wire::H_ROUND, name.as_str());
            self.publish(Outgoing {
                subject: wire::ROUND_SUBJECT.into(),
                headers: h,
                payload,
                kind: "round",
            })
            .await;
            self.metrics.rounds.inc();
            self.last_round = Some((self.epoch, next_index));
            tracing::debug!(round = %name, records_seq = self.records_seq, "snapshot round published");
        }
        self.changed = false;
        if let Some(reply) = reply {
            let body = serde_json::to_vec(&RoundReply {
                epoch: self.epoch,
                next_index,
            })
            .unwrap_or_default();
            if let Err(e) = self.js.client().publish(reply, body.into()).await {
                tracing::debug!(error = %e, "round request reply lost");
            }
        }
    }
}

async fn serve_round_requests(
    client: Client,
    rounds: mpsc::Sender<async_nats::Subject>,
    shutdown: CancellationToken,
) {
    let mut requests = match client.subscribe(wire::SNAPSHOT_REQUEST_SUBJECT).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "snapshot requests cannot be answered");
            return;
        }
    };
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            msg = requests.next() => match msg {
                Some(msg) => if let Some(reply) = msg.reply {
                    // Full: a round is coming anyway; the asker retries.
                    let _ = rounds.try_send(reply);
                },
                None => return,
            },
        }
    }
}

/// The ingest's status now.
pub fn status_message(
    hub: &Hub,
    ingest_id: &str,
    venues: Option<&mbo_api::venues::mirror::MirrorLayout>,
) -> StatusMessage {
    let health = hub.health();
    let status = mbo_api::http::control::status_json(hub, false);
    StatusMessage {
        ingest_id: ingest_id.to_owned(),
        ts: crate::unix_ns(),
        health: health.label().into(),
        health_detail: status.health_detail,
        epoch: hub.epoch(),
        feed: wire::FeedStatus::new(&hub.feed.metadata, &hub.feed.description),
        replay: hub.replay.as_ref().map(|r| (&r.status()).into()),
        venues: venues.cloned(),
    }
}

/// Publishes the status every [`STATUS_EVERY`] and at every replay change.
async fn publish_status(
    client: Client,
    hub: Arc<Hub>,
    venues: Option<mbo_api::venues::mirror::MirrorLayout>,
    shutdown: CancellationToken,
) {
    let ingest_id = format!("{:016x}", crate::unix_ns() ^ u64::from(std::process::id()));
    let mut changes = hub.control_changes.subscribe();
    let mut last_sent: Option<Instant> = None;
    loop {
        let due = last_sent.map_or(Duration::ZERO, |t| STATUS_EVERY.saturating_sub(t.elapsed()));
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() {
                // The hub is gone: the server is stopping.
                return;
            },
            () = tokio::time::sleep(due) => {},
        }
        let msg = status_message(&hub, &ingest_id, venues.as_ref());
        match serde_json::to_vec(&msg) {
            Ok(body) => {
                if let Err(e) = client.publish(wire::STATUS_SUBJECT, body.into()).await {
                    tracing::debug!(error = %e, "status not published");
                }
            }
            Err(e) => tracing::error!(error = %e, "status not serialisable"),
        }
        last_sent = Some(Instant::now());
    }
}
