//! `GET /api/v1/stream/mbo?symbol=S`: every record of the shared feed as it is applied.
//!
//! The engine answers the client's first request with an L3 snapshot (every resting order of
//! the symbol's books, in queue order) and, in the same step, subscribes the client to the
//! record ring, so the first `mbo` event starts right after the snapshot: applying the
//! events to the snapshot rebuilds the server's book exactly.
//!
//! Each wake-up drains what the ring holds into one chunk (several `mbo` events, up to
//! [`MAX_CHUNK`] bytes), so a fast feed costs few writes. A client that falls more than the
//! ring behind gets `lagged` with the number of records it missed, then a fresh snapshot;
//! after a feed reset (seek, loop) it gets a fresh snapshot too.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use mbo_book::{LevelView, OrderView};
use prometheus::IntCounter;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use tokio::sync::broadcast;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::{unix_ns, EngineClient, L3Book, MboSnapshot};
use crate::error::ApiError;
use crate::frame::{decimal, sse_id};
use crate::http::sse::{self, write_event, KEEP_ALIVE};
use crate::http::{find_book, params, AppState, Params, StreamSlot};
use crate::hub::{Hub, MboBatch, MBO_FIELDS};

/// Bytes gathered into one chunk at most.
pub const MAX_CHUNK: usize = 1 << 20;

/// `GET /api/v1/stream/mbo`.
#[utoipa::path(get, path = "/api/v1/stream/mbo", tag = "streams",
    params(("symbol" = Option<String>, Query, description = "Raw symbol or instrument id (all instruments when absent)"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "text/event-stream: snapshot, mbo, lagged", content_type = "text/event-stream"),
              (status = 404, description = "Unknown symbol"),
              (status = 503, description = "Too many streams (Retry-After)")))]
pub async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let instrument = match p.get("symbol").filter(|v| !v.trim().is_empty()) {
        Some(sym) => Some(find_book(&s.hub, Some(sym), &p)?.key.instrument_id),
        None => None,
    };
    let slot = s
        .streams
        .acquire(s.metrics.sse_clients.with_label_values(&["mbo"]))
        .inspect_err(|_| s.metrics.sse_rejected.inc())?;
    let snapshot = s.engine.mbo_snapshot(instrument).await?;
    let ev = |name: &str| s.metrics.sse_events.with_label_values(&["mbo", name]);
    let mut client = MboClient {
        hub: s.hub.clone(),
        engine: s.engine.clone(),
        instrument,
        keep_alive: s.config.keep_alive,
        shutdown: s.shutdown.clone(),
        receiver: None,
        epoch: 0,
        last_index: None,
        resume: sse::last_event_id(&headers),
        buf: Vec::with_capacity(64 * 1024),
        last_write: Instant::now(),
        snapshot_ev: ev("snapshot"),
        mbo_ev: ev("mbo"),
        lagged_ev: ev("lagged"),
        lagged_clients: s.metrics.sse_lagged.with_label_values(&["mbo"]),
        _slot: slot,
    };
    client.write_snapshot(snapshot, None);
    let first = client.take_buf();
    let chunks = futures::stream::unfold((client, Some(first)), |(mut c, first)| async move {
        if let Some(b) = first {
            return Some((Ok::<_, Infallible>(b), (c, None)));
        }
        c.next_chunk().await.map(|b| (Ok(b), (c, None)))
    });
    Ok(sse::response(chunks))
}

struct MboClient {
    hub: Arc<Hub>,
    engine: EngineClient,
    instrument: Option<u32>,
    keep_alive: Duration,
    shutdown: CancellationToken,
    receiver: Option<broadcast::Receiver<Arc<MboBatch>>>,
    epoch: u64,
    /// Index of the last record the client has (snapshot or batch).
    last_index: Option<u64>,
    resume: Option<(u64, u64)>,
    buf: Vec<u8>,
    last_write: Instant,
    snapshot_ev: IntCounter,
    mbo_ev: IntCounter,
    lagged_ev: IntCounter,
    lagged_clients: IntCounter,
    _slot: StreamSlot,
}

impl MboClient {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            let rx = self.receiver.as_mut()?;
            let keep_alive_at = self.last_write + self.keep_alive;
            let first = tokio::select! {
                () = self.shutdown.cancelled() => return None,
                r = rx.recv() => r,
                () = tokio::time::sleep_until(keep_alive_at) => {
                    if self.hub.epoch() != self.epoch {
                        // A reset with no record after it (a seek while paused).
                        if !self.resnapshot(None).await {
                            return None;
                        }
                        return Some(self.take_buf());
                    }
                    self.last_write = Instant::now();
                    return Some(Bytes::from_static(KEEP_ALIVE));
                }
            };
            let mut next = Some(first);
            while let Some(r) = next.take() {
                match r {
                    Ok(b) => {
                        if b.epoch != self.epoch {
                            if !self.resnapshot(None).await {
                                return None;
                            }
                            break;
                        }
                        self.write_batch(&b);
                    }
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        self.lagged_clients.inc();
                        let had = self.last_index;
                        if !self.resnapshot(Some(had)).await {
                            return None;
                        }
                        break;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
                if self.buf.len() >= MAX_CHUNK {
                    break;
                }
                let Some(rx) = self.receiver.as_mut() else {
                    break;
                };
                next = match rx.try_recv() {
                    Ok(b) => Some(Ok(b)),
                    Err(broadcast::error::TryRecvError::Lagged(n)) => {
                        Some(Err(broadcast::error::RecvError::Lagged(n)))
                    }
                    Err(_) => None,
                };
            }
            if !self.buf.is_empty() {
                return Some(self.take_buf());
            }
        }
    }

    fn write_batch(&mut self, b: &MboBatch) {
        if self.last_index.is_some_and(|i| b.last_index() <= i) {
            return;
        }
        let (data, count) = b.json(self.instrument);
        self.last_index = Some(b.last_index());
        if count == 0 {
            return;
        }
        write_event(
            &mut self.buf,
            "mbo",
            &sse_id(b.epoch, Some(b.last_index())),
            &data,
        );
        self.mbo_ev.inc();
    }

    /// Asks the engine for a fresh snapshot; after a lag (`had` = the last index the client
    /// had) first says how many records were skipped. False when the engine is gone.
    async fn resnapshot(&mut self, had: Option<Option<u64>>) -> bool {
        self.receiver = None;
        match self.engine.mbo_snapshot(self.instrument).await {
            Ok(snap) => {
                self.write_snapshot(snap, had);
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "mbo stream ends: no snapshot");
                false
            }
        }
    }

    fn write_snapshot(&mut self, snap: MboSnapshot, had: Option<Option<u64>>) {
        let id = sse_id(snap.epoch, snap.last_index);
        if let Some(had) = had {
            let skipped = match (had, snap.last_index) {
                (Some(h), Some(l)) if snap.epoch == self.epoch => l.saturating_sub(h),
                (_, Some(l)) => l + 1,
                _ => 0,
            };
            let data = format!(
                "{{\"server_ts\":{},\"skipped\":{skipped},\"unit\":\"records\"}}",
                unix_ns()
            );
            write_event(&mut self.buf, "lagged", &id, data.as_bytes());
            self.lagged_ev.inc();
        }
        let body = SnapshotJson { snap: &snap };
        match serde_json::to_vec(&body) {
            Ok(data) => {
                write_event(&mut self.buf, "snapshot", &id, &data);
                self.snapshot_ev.inc();
            }
            Err(e) => tracing::error!(error = %e, "mbo snapshot serialisation failed"),
        }
        self.epoch = snap.epoch;
        self.last_index = snap.last_index;
        // Records a resuming client already had are not sent again.
        if let (Some((e, i)), Some(l)) = (self.resume.take(), snap.last_index) {
            if e == snap.epoch && i > l {
                self.last_index = Some(i);
            }
        }
        self.receiver = Some(snap.receiver);
    }

    fn take_buf(&mut self) -> Bytes {
        self.last_write = Instant::now();
        Bytes::from(std::mem::replace(
            &mut self.buf,
            Vec::with_capacity(64 * 1024),
        ))
    }
}

struct SnapshotJson<'a> {
    snap: &'a MboSnapshot,
}

impl Serialize for SnapshotJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("server_ts", &self.snap.server_ts)?;
        m.serialize_entry("epoch", &self.snap.epoch)?;
        m.serialize_entry("last_index", &self.snap.last_index)?;
        m.serialize_entry("fields", &MBO_FIELDS)?;
        m.serialize_entry("books", &Books(&self.snap.books))?;
        m.end()
    }
}

struct Books<'a>(&'a [L3Book]);

impl Serialize for Books<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for b in self.0 {
            seq.serialize_element(&BookL3(b))?;
        }
        seq.end()
    }
}

struct BookL3<'a>(&'a L3Book);

impl Serialize for BookL3<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = &self.0.frame;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("symbol", &*f.symbol)?;
        m.serialize_entry("instrument_id", &f.key.instrument_id)?;
        m.serialize_entry("publisher_id", &f.key.publisher_id)?;
        m.serialize_entry("event_index", &f.event_index)?;
        m.serialize_entry("ts_event", &f.ts_event)?;
        m.serialize_entry("ts_recv", &f.ts_recv)?;
        m.serialize_entry("crossed", &f.crossed)?;
        m.serialize_entry("maybe_bad_book", &f.maybe_bad_book)?;
        m.serialize_entry("bids", &Levels(&self.0.bids))?;
        m.serialize_entry("asks", &Levels(&self.0.asks))?;
        m.end()
    }
}

struct Levels<'a>(&'a [(LevelView, Vec<OrderView>)]);

impl Serialize for Levels<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for (l, orders) in self.0 {
            seq.serialize_element(&Level(l, orders))?;
        }
        seq.end()
    }
}

struct Level<'a>(&'a LevelView, &'a [OrderView]);

impl Serialize for Level<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("price", &self.0.price)?;
        m.serialize_entry("price_decimal", &decimal(self.0.price))?;
        m.serialize_entry("size", &self.0.size)?;
        m.serialize_entry("count", &self.0.count)?;
        // [order_id, size, ts_priority], first in queue first.
        let orders: Vec<(u64, u32, u64)> = self
            .1
            .iter()
            .map(|o| (o.order_id, o.size, o.ts_priority))
            .collect();
        m.serialize_entry("orders", &orders)?;
        m.end()
    }
}
