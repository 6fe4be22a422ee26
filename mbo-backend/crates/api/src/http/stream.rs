//! `GET /api/v1/stream?symbol=S&depth=10&interval_ms=50`: a book as it moves.
//!
//! ## One client, one state machine, few wake-ups
//! A client subscribes to its book's update ring, then loads the book's latest frame and sends it
//! as `snapshot`. The engine stores a cycle's frames before it broadcasts the cycle, so every
//! update after the snapshot's position is in the client's ring and everything at or before
//! it is skipped by position: no gap, no duplicate.
//!
//! Then, with nothing pending, the client waits on its ring. The first update wakes it and is
//! sent at once if the last flush is older than `interval_ms`; otherwise the client sleeps
//! until the interval is over, then drains the ring without waiting (keeping only the latest
//! frame, and every trade) and flushes: its trades in order, then the latest frame as `book`.
//! So a client wakes at most about once per interval however fast the feed runs, the latest
//! state is never older than the interval when it is sent, and every trade goes out, in order.
//!
//! A client that cannot keep up (its socket is full, so hyper stops polling its stream)
//! stops draining its ring; the ring overwrites what it has not read and the client, when it
//! reads again, is told `lagged` and resynchronised with a snapshot. A slow client costs its
//! own position in a ring, never memory or engine time.
//!
//! `status` goes out first, on every replay state change (play, pause, speed, seek, end;
//! woken by the hub's control channel) and with position and progress at most once a second.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use prometheus::IntCounter;
use tokio::sync::{broadcast, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::frame::{sse_id, write_trade_json, BookFrame, FRAME_DEPTH, TRADE_FIELDS};
use crate::http::control::{state_changed, status_json, StatusJson};
use crate::http::sse::{self, write_event, KEEP_ALIVE};
use crate::http::{find_book, int_param, params, AppState, Params, StreamSlot};
use crate::hub::{BookEntry, Hub, Update};

/// `,"fields":[...]` of a `trade` event.
static TRADE_FIELDS_JSON: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        ",\"fields\":{}",
        serde_json::to_string(&TRADE_FIELDS).unwrap_or_default()
    )
});

/// Default and bounds of `interval_ms`.
const INTERVAL_DEFAULT_MS: u64 = 50;
const INTERVAL_MIN_MS: u64 = 10;
const INTERVAL_MAX_MS: u64 = 60_000;
/// How often a client waiting out a long interval drains its ring (a ring holds about a
/// second of a busy book's updates).
const DRAIN_EVERY: Duration = Duration::from_millis(250);
/// Position and progress are refreshed this often at most.
const STATUS_EVERY: Duration = Duration::from_secs(1);
/// Trades kept for one flush at most; beyond, the oldest are dropped and the client is told
/// `lagged` (only a feed with tens of thousands of trades per interval gets there).
const MAX_PENDING_TRADES: usize = 10_000;

/// `GET /api/v1/stream`.
#[utoipa::path(get, path = "/api/v1/stream", tag = "streams",
    params(("symbol" = Option<String>, Query, description = "Raw symbol or instrument id (optional with one book)"),
           ("depth" = Option<usize>, Query, description = "Levels per side, 1–100 (default 10)"),
           ("interval_ms" = Option<u64>, Query, description = "At most one book frame per interval, 10–60000 (default 50)"),
           ("publisher" = Option<u16>, Query, description = "Publisher id"),
           ("venue" = Option<String>, Query, description = "Crypto books: `consolidated` or a venue name (a crypto symbol without it: consolidated)")),
    responses((status = 200, description = "text/event-stream: snapshot, book, trade, status, lagged", content_type = "text/event-stream"),
              (status = 400, description = "Bad parameter"),
              (status = 404, description = "Unknown symbol"),
              (status = 503, description = "Too many streams (Retry-After)")))]
pub async fn stream(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    if let Some(t) = crate::http::venues::target(&s, p.get("symbol").map(String::as_str), &p)? {
        return crate::http::venues::stream(&s, t, &p, "status");
    }
    let depth = crate::http::depth_param(&p, 10, FRAME_DEPTH, false)?;
    let interval_ms = int_param::<u64>(&p, "interval_ms", INTERVAL_MIN_MS..=INTERVAL_MAX_MS)?
        .unwrap_or(INTERVAL_DEFAULT_MS);
    let entry = find_book(&s.hub, p.get("symbol").map(String::as_str), &p)?;
    let slot = s
        .streams
        .acquire(s.metrics.sse_clients.with_label_values(&["book"]))
        .inspect_err(|_| s.metrics.sse_rejected.inc())?;
    // Subscribe before the first frame is read: see the module docs.
    let updates = entry.updates.subscribe();
    let mut control = s.hub.control_changes.subscribe();
    control.mark_unchanged();
    let resume = sse::last_event_id(&headers);
    let ev = |name: &str| s.metrics.sse_events.with_label_values(&["book", name]);
    let client = BookClient {
        hub: s.hub.clone(),
        entry,
        depth,
        interval: Duration::from_millis(interval_ms),
        keep_alive: s.config.keep_alive,
        token_set: s.config.control_token.is_some(),
        updates,
        control,
        shutdown: s.shutdown.clone(),
        resume,
        position: None,
        need_snapshot: true,
        pending_frame: None,
        pending_trades: VecDeque::new(),
        pending_trade_count: 0,
        lagged: None,
        last_flush: None,
        last_drain: Instant::now(),
        last_write: Instant::now(),
        last_status: None,
        last_status_at: Instant::now(),
        status_due: true,
        buf: Vec::new(),
        counters: Counters {
            snapshot: ev("snapshot"),
            book: ev("book"),
            trade: ev("trade"),
            status: ev("status"),
            lagged: ev("lagged"),
            conflated: s.metrics.sse_conflated.with_label_values(&["book"]),
            lagged_clients: s.metrics.sse_lagged.with_label_values(&["book"]),
        },
        _slot: slot,
    };
    let chunks = futures::stream::unfold(client, |mut c| async move {
        c.next_chunk().await.map(|b| (Ok::<_, Infallible>(b), c))
    });
    Ok(sse::response(chunks))
}

struct Counters {
    snapshot: IntCounter,
    book: IntCounter,
    trade: IntCounter,
    status: IntCounter,
    lagged: IntCounter,
    conflated: IntCounter,
    lagged_clients: IntCounter,
}

struct BookClient {
    hub: Arc<Hub>,
    entry: Arc<BookEntry>,
    depth: usize,
    interval: Duration,
    keep_alive: Duration,
    token_set: bool,
    updates: broadcast::Receiver<Arc<Update>>,
    control: watch::Receiver<u64>,
    shutdown: CancellationToken,
    /// `Last-Event-ID` of a resuming client: nothing at or before it is sent again.
    resume: Option<(u64, u64)>,
    /// `(epoch, index)` of the last thing sent (frame or trade).
    position: Option<(u64, u64)>,
    need_snapshot: bool,
    pending_frame: Option<Arc<BookFrame>>,
    /// Updates holding trades not yet sent, oldest first, and how many trades they hold.
    pending_trades: VecDeque<Arc<Update>>,
    pending_trade_count: usize,
    /// Updates lost to the ring since the last flush.
    lagged: Option<u64>,
    last_flush: Option<Instant>,
    last_drain: Instant,
    last_write: Instant,
    last_status: Option<StatusJson>,
    last_status_at: Instant,
    status_due: bool,
    buf: Vec<u8>,
    counters: Counters,
    _slot: StreamSlot,
}

impl BookClient {
    fn pending(&self) -> bool {
        self.pending_frame.is_some()
            || !self.pending_trades.is_empty()
            || self.need_snapshot
            || self.lagged.is_some()
    }

    /// The next chunk to write; `None` ends the stream (shutdown, or the server is gone).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if self.need_snapshot {
                self.write_status(true);
                self.write_snapshot();
                return Some(self.take_buf());
            }
            let now = Instant::now();
            let due = self.last_flush.map_or(now, |t| t + self.interval);
            let status_at = self.last_status_at + STATUS_EVERY;
            if self.status_due || (self.pending() && now >= due) {
                if now >= due {
                    if !self.drain() {
                        return None;
                    }
                    self.flush(now);
                }
                if self.status_due || (self.hub.replay.is_some() && now >= status_at) {
                    self.write_status(false);
                }
                if !self.buf.is_empty() {
                    return Some(self.take_buf());
                }
            }
            let keep_alive_at = self.last_write + self.keep_alive;
            let pending = self.pending();
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                r = self.updates.recv(), if !pending => match r {
                    Ok(u) => self.take(&u),
                    Err(broadcast::error::RecvError::Lagged(n)) => self.lost(n),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                // While a flush waits for its interval, the ring is still drained now and
                // then, so a long interval never lets it wrap for a client that reads.
                () = tokio::time::sleep_until(due.min(self.last_drain + DRAIN_EVERY)), if pending => {
                    if !self.drain() {
                        return None;
                    }
                }
                r = self.control.changed() => {
                    if r.is_err() {
                        return None;
                    }
                    self.status_due = true;
                }
                () = tokio::time::sleep_until(status_at), if self.hub.replay.is_some() && !pending => {
                    self.write_status(false);
                    if !self.buf.is_empty() {
                        return Some(self.take_buf());
                    }
                }
                () = tokio::time::sleep_until(keep_alive_at) => {
                    self.last_write = Instant::now();
                    return Some(Bytes::from_static(KEEP_ALIVE));
                }
            }
        }
    }

    /// Takes everything the ring holds now; false when the ring is closed.
    fn drain(&mut self) -> bool {
        self.last_drain = Instant::now();
        loop {
            match self.updates.try_recv() {
                Ok(u) => self.take(&u),
                Err(broadcast::error::TryRecvError::Empty) => return true,
                Err(broadcast::error::TryRecvError::Lagged(n)) => self.lost(n),
                Err(broadcast::error::TryRecvError::Closed) => return false,
            }
        }
    }

    fn lost(&mut self, n: u64) {
        *self.lagged.get_or_insert(0) += n;
        self.counters.lagged_clients.inc();
    }

    /// Keeps what `u` holds for this client.
    fn take(&mut self, u: &Arc<Update>) {
        if u.reset {
            self.need_snapshot = true;
            self.pending_frame = None;
            self.clear_trades();
            return;
        }
        if let Some(last) = u.trades.last() {
            if self.after_position(last.epoch, Some(last.event_index)) {
                self.pending_trade_count += u.trades.len();
                self.pending_trades.push_back(u.clone());
                while self.pending_trade_count > MAX_PENDING_TRADES {
                    if let Some(old) = self.pending_trades.pop_front() {
                        self.pending_trade_count -= old.trades.len();
                        *self.lagged.get_or_insert(0) += 1;
                    }
                }
            }
        }
        if let Some(f) = &u.frame {
            if self.after_position(f.epoch, f.event_index)
                && self.pending_frame.replace(f.clone()).is_some()
            {
                self.counters.conflated.inc();
            }
        }
    }

    fn clear_trades(&mut self) {
        self.pending_trades.clear();
        self.pending_trade_count = 0;
    }

    fn after_position(&self, epoch: u64, index: Option<u64>) -> bool {
        match (self.position, index) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(p), Some(i)) => (epoch, i) > p,
        }
    }

    fn write_snapshot(&mut self) {
        self.need_snapshot = false;
        self.pending_frame = None;
        let frame = self.entry.frame.load_full();
        let mut position = frame.event_index.map(|i| (frame.epoch, i));
        // A resuming client already has everything up to its Last-Event-ID.
        if let (Some(r), Some(p)) = (self.resume.take(), position) {
            if r.0 == p.0 && r > p {
                position = Some(r);
            }
        }
        self.position = position;
        // Trades the snapshot already holds are dropped when the next flush writes them
        // (`write_trades` filters by position).
        if let Some(skipped) = self.lagged.take() {
            let data = format!(
                "{{\"server_ts\":{},\"skipped\":{skipped},\"unit\":\"updates\"}}",
                crate::engine::unix_ns()
            );
            write_event(&mut self.buf, "lagged", &frame.sse_id(), data.as_bytes());
            self.counters.lagged.inc();
        }
        write_event(
            &mut self.buf,
            "snapshot",
            &frame.sse_id(),
            &frame.json(self.depth),
        );
        self.counters.snapshot.inc();
        self.last_flush = Some(Instant::now());
    }

    fn flush(&mut self, now: Instant) {
        if self.lagged.is_some() {
            // Whatever was lost, the client resynchronises from a snapshot.
            self.clear_trades();
            self.write_snapshot();
            return;
        }
        if self.need_snapshot {
            self.write_snapshot();
            return;
        }
        self.write_trades();
        if let Some(f) = self.pending_frame.take() {
            write_event(&mut self.buf, "book", &f.sse_id(), &f.json(self.depth));
            self.counters.book.inc();
            if let Some(i) = f.event_index {
                self.position = Some((f.epoch, i));
            }
        }
        self.last_flush = Some(now);
    }

    /// Writes the pending trades as one `trade` event: `{"server_ts", "symbol",
    /// "instrument_id", "publisher_id", "epoch", "count", "fields", "trades": [[...], ...]}`
    /// (each trade an array in `fields` order), in stream order, each
    /// trade once. `server_ts` is when the newest of them was published. The trades' JSON is
    /// the engine's, shared by every client; it is rebuilt here only for an update that the
    /// client's position cuts in two (right after a snapshot).
    fn write_trades(&mut self) {
        let mut body = Vec::new();
        let mut last = None;
        let mut newest = 0;
        let mut count = 0usize;
        for u in self.pending_trades.drain(..) {
            let Some(first) = u.trades.first() else {
                continue;
            };
            let whole = match self.position {
                None => true,
                Some(p) => (first.epoch, first.event_index) > p,
            };
            if whole && !u.trades_json.is_empty() {
                if count > 0 {
                    body.push(b',');
                }
                body.extend_from_slice(&u.trades_json);
                count += u.trades.len();
            } else {
                for t in &u.trades {
                    if self.position.is_some_and(|p| (t.epoch, t.event_index) <= p) {
                        continue;
                    }
                    if count > 0 {
                        body.push(b',');
                    }
                    write_trade_json(&mut body, t);
                    count += 1;
                }
            }
            if let Some(t) = u.trades.last() {
                last = Some((t.epoch, t.event_index));
            }
            newest = newest.max(u.server_ts);
        }
        self.pending_trade_count = 0;
        let Some(last) = last.filter(|_| count > 0) else {
            return;
        };
        let key = self.entry.key;
        let mut n = itoa::Buffer::new();
        let mut data = Vec::with_capacity(body.len() + 160);
        data.extend_from_slice(b"{\"server_ts\":");
        data.extend_from_slice(n.format(newest).as_bytes());
        data.extend_from_slice(b",\"symbol\":");
        // A symbol is plain text, but it is escaped like any string.
        let _ = serde_json::to_writer(&mut data, &*self.entry.symbol);
        data.extend_from_slice(b",\"instrument_id\":");
        data.extend_from_slice(n.format(key.instrument_id).as_bytes());
        data.extend_from_slice(b",\"publisher_id\":");
        data.extend_from_slice(n.format(key.publisher_id).as_bytes());
        data.extend_from_slice(b",\"epoch\":");
        data.extend_from_slice(n.format(last.0).as_bytes());
        data.extend_from_slice(b",\"count\":");
        data.extend_from_slice(n.format(count).as_bytes());
        data.extend_from_slice(TRADE_FIELDS_JSON.as_bytes());
        data.extend_from_slice(b",\"trades\":[");
        data.extend_from_slice(&body);
        data.extend_from_slice(b"]}");
        write_event(&mut self.buf, "trade", &sse_id(last.0, Some(last.1)), &data);
        self.counters.trade.inc();
        self.position = Some(last);
    }

    /// Writes `status` when it changed (always when `force`).
    fn write_status(&mut self, force: bool) {
        self.status_due = false;
        let now = Instant::now();
        let st = status_json(&self.hub, self.token_set);
        let changed = match &self.last_status {
            None => true,
            Some(prev) => {
                state_changed(prev, &st)
                    || (now >= self.last_status_at + STATUS_EVERY
                        && (prev.position_ts != st.position_ts || prev.progress != st.progress))
            }
        };
        if !(force || changed) {
            return;
        }
        if let Ok(data) = serde_json::to_vec(&st) {
            let id = match self.position {
                Some((e, i)) => sse_id(e, Some(i)),
                None => sse_id(st.epoch, None),
            };
            write_event(&mut self.buf, "status", &id, &data);
            self.counters.status.inc();
        }
        self.last_status = Some(st);
        self.last_status_at = now;
    }

    fn take_buf(&mut self) -> Bytes {
        self.last_write = Instant::now();
        // The buffer goes with the chunk: an idle client holds no buffer at all (10,000
        // clients must fit in well under a gigabyte).
        Bytes::from(std::mem::take(&mut self.buf))
    }
}
