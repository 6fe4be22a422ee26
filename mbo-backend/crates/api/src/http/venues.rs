//! Crypto venue books over HTTP: `GET /api/v1/venues`, crypto books in `GET /api/v1/book`
//! and `GET /api/v1/stream` (with `venue=`), and `GET /api/v1/stream/venues` (every book of a
//! symbol in one stream, for the dashboard's venues view). See [`crate::venues`].
//!
//! ## A stream client
//! It subscribes to its symbol's update ring, then sends every book it follows as
//! `snapshot` (loaded after subscribing: a frame in the ring with a sequence at or below the
//! snapshot's is skipped, so nothing is sent twice or missed). Updates are absorbed as they
//! come: per book only the latest frame is kept (conflation), trades are kept in order. A
//! flush writes the trades then the latest frames, at once when the previous flush is older
//! than `interval_ms`, otherwise when the interval is over. A client that falls behind the
//! ring is told `lagged` and gets fresh snapshots. The venues' health goes out every second
//! (`health` on the venues stream, `status` on a single-book stream).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use bytes::Bytes;
use prometheus::IntCounter;
use tokio::sync::broadcast;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;

use crate::error::ApiError;
use crate::http::rest::json_bytes;
use crate::http::sse::{self, write_event, KEEP_ALIVE};
use crate::http::{depth_param, int_param, params, AppState, Params, StreamSlot};
use crate::venues::engine::now_ns;
use crate::venues::frame::{
    write_venue_trade, VenueFrame, VenueTrade, CONSOLIDATED, VENUE_FRAME_DEPTH, VENUE_TRADE_FIELDS,
};
use crate::venues::hub::{VenueHub, VenueUpdateBatch};

const INTERVAL_DEFAULT_MS: u64 = 100;
const INTERVAL_MIN_MS: u64 = 10;
const INTERVAL_MAX_MS: u64 = 60_000;
const HEALTH_EVERY: Duration = Duration::from_secs(1);
/// Trades kept for one flush at most; beyond, the oldest are dropped and counted as lagged.
const MAX_PENDING_TRADES: usize = 10_000;

/// A crypto book (or all books of a symbol) a request names.
#[derive(Debug, Clone)]
pub struct Target {
    /// The venues.
    pub hub: Arc<VenueHub>,
    /// Index of the symbol.
    pub symbol: usize,
    /// Index of the book in the symbol's books (`None`: all of them).
    pub book: Option<usize>,
}

impl Target {
    fn books(&self) -> Vec<usize> {
        match self.book {
            Some(b) => vec![b],
            None => (0..self.hub.symbols[self.symbol].books.len()).collect(),
        }
    }
}

fn no_venues() -> ApiError {
    ApiError::not_found(
        "unknown_venue",
        "this server runs no crypto venues (start it with --venues, e.g. --venues kraken,coinbase)",
    )
}

/// Resolves `symbol` + `venue` to a crypto book: with `venue` given it must name one
/// (404 otherwise); without, a symbol that only the venues know means its consolidated book.
/// `Ok(None)`: not a crypto request (the MBO handlers answer it).
///
/// # Errors
/// 404 JSON for an unknown venue or symbol.
pub fn target(s: &AppState, symbol: Option<&str>, p: &Params) -> Result<Option<Target>, ApiError> {
    let venue = p.get("venue").map(|v| v.trim());
    let symbol = symbol.map(str::trim).filter(|s| !s.is_empty());
    let Some(hub) = s.venues.clone() else {
        return match venue {
            Some(_) => Err(no_venues()),
            None => Ok(None),
        };
    };
    let Some(symbol) = symbol else {
        return match venue {
            Some(_) => Err(ApiError::bad_request("symbol is required with venue")),
            None => Ok(None),
        };
    };
    let si = hub
        .symbols
        .iter()
        .position(|e| e.symbol.eq_ignore_ascii_case(symbol));
    match (venue, si) {
        (None, None) => Ok(None),
        (None, Some(si)) => {
            // An MBO book of that name wins; the venues' symbols are normalized pairs.
            if s.hub.directory.load().find(symbol, None).is_ok() {
                return Ok(None);
            }
            Ok(Some(Target {
                hub,
                symbol: si,
                book: Some(0),
            }))
        }
        (Some(_), None) => Err(ApiError::not_found(
            "unknown_symbol",
            format!(
                "unknown crypto symbol {symbol:?}; the venues serve {:?}",
                hub.symbols.iter().map(|e| &*e.symbol).collect::<Vec<_>>()
            ),
        )),
        (Some(v), Some(si)) => match hub.symbols[si].book(v) {
            Some((bi, _)) => Ok(Some(Target {
                hub,
                symbol: si,
                book: Some(bi),
            })),
            None => Err(ApiError::not_found(
                "unknown_venue",
                format!(
                    "unknown venue {v:?}; this server has {CONSOLIDATED} and {:?}",
                    hub.venue_names()
                ),
            )),
        },
    }
}

/// `GET /api/v1/book/{symbol}` for a crypto book.
///
/// # Errors
/// 400 for a bad depth.
pub fn book(t: &Target, p: &Params) -> Result<Response, ApiError> {
    let depth = depth_param(p, 10, VENUE_FRAME_DEPTH, true)?;
    let entry = &t.hub.symbols[t.symbol].books[t.book.unwrap_or(0)];
    Ok(json_bytes(entry.frame.load().json(depth)))
}

/// The object of `GET /api/v1/venues` (`fresh`: health as of now) and of `health`/`status`
/// events (the sampler's copy, refreshed every second: a thousand streams do not each rebuild
/// it).
fn venues_json(hub: Option<&VenueHub>, fresh: bool) -> Bytes {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"server_ts\":");
    out.extend_from_slice(itoa::Buffer::new().format(now_ns()).as_bytes());
    out.extend_from_slice(b",\"symbols\":");
    let symbols: Vec<&str> =
        hub.map_or_else(Vec::new, |h| h.symbols.iter().map(|s| &*s.symbol).collect());
    out.extend_from_slice(&serde_json::to_vec(&symbols).unwrap_or_else(|_| b"[]".to_vec()));
    out.extend_from_slice(b",\"venues\":");
    match hub {
        Some(h) if fresh && !h.mirrored.load(std::sync::atomic::Ordering::Relaxed) => {
            out.extend_from_slice(&crate::venues::health::health_json(h));
        }
        Some(h) => out.extend_from_slice(&h.health_json.load()),
        None => out.extend_from_slice(b"[]"),
    }
    out.push(b'}');
    Bytes::from(out)
}

/// `GET /api/v1/venues`.
#[utoipa::path(get, path = "/api/v1/venues", tag = "venues",
    responses((status = 200, description = "The crypto symbols and each venue connection's health (state, msgs/s, gaps, resyncs, checksum failures, latency p50/p99); empty lists when no venue runs", content_type = "application/json")))]
pub async fn status(State(s): State<AppState>) -> Response {
    json_bytes(venues_json(s.venues.as_deref(), true))
}

/// `GET /api/v1/stream/venues`.
#[utoipa::path(get, path = "/api/v1/stream/venues", tag = "streams",
    params(("symbol" = String, Query, description = "Normalized symbol (BTC-USD)"),
           ("depth" = Option<usize>, Query, description = "Levels per side, 1–100 (default 10)"),
           ("interval_ms" = Option<u64>, Query, description = "At most one frame per book per interval, 10–60000 (default 100)")),
    responses((status = 200, description = "text/event-stream: snapshot and book per book (consolidated and each venue), trade, health, lagged", content_type = "text/event-stream"),
              (status = 400, description = "Bad parameter"),
              (status = 404, description = "Unknown symbol, or no venues")))]
pub async fn stream_all(
    State(s): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let Some(hub) = s.venues.clone() else {
        return Err(no_venues());
    };
    let symbol = p.get("symbol").map(|v| v.trim()).unwrap_or_default();
    let Some(si) = hub
        .symbols
        .iter()
        .position(|e| e.symbol.eq_ignore_ascii_case(symbol))
    else {
        return Err(ApiError::not_found(
            "unknown_symbol",
            format!(
                "unknown crypto symbol {symbol:?}; the venues serve {:?}",
                hub.symbols.iter().map(|e| &*e.symbol).collect::<Vec<_>>()
            ),
        ));
    };
    stream(
        &s,
        Target {
            hub,
            symbol: si,
            book: None,
        },
        &p,
        "health",
    )
}

/// A crypto stream of `t`'s books (`health_event`: the name of the health events).
///
/// # Errors
/// 400 for bad parameters, 503 when the stream cap is reached.
pub fn stream(
    s: &AppState,
    t: Target,
    p: &Params,
    health_event: &'static str,
) -> Result<Response, ApiError> {
    let depth = depth_param(p, 10, VENUE_FRAME_DEPTH, false)?;
    let interval_ms = int_param::<u64>(p, "interval_ms", INTERVAL_MIN_MS..=INTERVAL_MAX_MS)?
        .unwrap_or(INTERVAL_DEFAULT_MS);
    let slot = s
        .streams
        .acquire(s.metrics.sse_clients.with_label_values(&["venues"]))
        .inspect_err(|_| s.metrics.sse_rejected.inc())?;
    let updates = t.hub.symbols[t.symbol].updates.subscribe();
    let books = t.books();
    let trade_venue = match t.book {
        Some(b) if b > 0 => Some(t.hub.symbols[t.symbol].books[b].venue),
        _ => None,
    };
    let ev = |name: &str| s.metrics.sse_events.with_label_values(&["venues", name]);
    let n = t.hub.symbols[t.symbol].books.len();
    let client = Client {
        target: t,
        books,
        trade_venue,
        depth,
        interval: Duration::from_millis(interval_ms),
        keep_alive: s.config.keep_alive,
        health_event,
        updates,
        shutdown: s.shutdown.clone(),
        need_snapshot: true,
        sent_seq: vec![0; n],
        pending: vec![None; n],
        trades: Vec::new(),
        lagged: 0,
        last_flush: None,
        last_write: Instant::now(),
        last_health: Instant::now(),
        buf: Vec::new(),
        counters: [
            ev("snapshot"),
            ev("book"),
            ev("trade"),
            ev(health_event),
            ev("lagged"),
        ],
        _slot: slot,
    };
    let chunks = futures::stream::unfold(client, |mut c| async move {
        c.next_chunk().await.map(|b| (Ok::<_, Infallible>(b), c))
    });
    Ok(sse::response(chunks))
}

struct Client {
    target: Target,
    books: Vec<usize>,
    /// A single venue book's stream carries that venue's trades only.
    trade_venue: Option<&'static str>,
    depth: usize,
    interval: Duration,
    keep_alive: Duration,
    health_event: &'static str,
    updates: broadcast::Receiver<Arc<VenueUpdateBatch>>,
    shutdown: CancellationToken,
    need_snapshot: bool,
    /// Per book of the symbol: the sequence of the last frame sent.
    sent_seq: Vec<u64>,
    /// Per book: the latest frame not yet sent.
    pending: Vec<Option<Arc<VenueFrame>>>,
    trades: Vec<VenueTrade>,
    /// Batches (or trades) lost since the last flush.
    lagged: u64,
    last_flush: Option<Instant>,
    last_write: Instant,
    last_health: Instant,
    buf: Vec<u8>,
    /// snapshot, book, trade, health, lagged.
    counters: [IntCounter; 5],
    _slot: StreamSlot,
}

impl Client {
    fn has_pending(&self) -> bool {
        !self.trades.is_empty() || self.pending.iter().any(Option::is_some)
    }

    fn take_buf(&mut self) -> Bytes {
        self.last_write = Instant::now();
        Bytes::from(std::mem::take(&mut self.buf))
    }

    fn write_health(&mut self) {
        let data = venues_json(Some(&self.target.hub), false);
        write_event(&mut self.buf, self.health_event, "", &data);
        self.counters[3].inc();
        self.last_health = Instant::now();
    }

    fn write_snapshots(&mut self) {
        let sym = &self.target.hub.symbols[self.target.symbol];
        for &b in &self.books {
            let f = sym.books[b].frame.load_full();
            self.sent_seq[b] = f.seq;
            self.pending[b] = None;
            write_event(&mut self.buf, "snapshot", &f.sse_id(), &f.json(self.depth));
            self.counters[0].inc();
        }
        self.need_snapshot = false;
    }

    fn absorb(&mut self, batch: &VenueUpdateBatch) {
        for (b, f) in &batch.frames {
            if self.books.contains(b) && f.seq > self.sent_seq[*b] {
                self.pending[*b] = Some(f.clone());
            }
        }
        for t in &batch.trades {
            if self.trade_venue.is_none_or(|v| v == t.venue) {
                if self.trades.len() >= MAX_PENDING_TRADES {
                    self.trades.remove(0);
                    self.lagged += 1;
                }
                self.trades.push(*t);
            }
        }
    }

    fn flush(&mut self) {
        if self.lagged > 0 {
            let mut data = Vec::with_capacity(64);
            data.extend_from_slice(b"{\"server_ts\":");
            data.extend_from_slice(itoa::Buffer::new().format(now_ns()).as_bytes());
            data.extend_from_slice(b",\"skipped\":");
            data.extend_from_slice(itoa::Buffer::new().format(self.lagged).as_bytes());
            data.push(b'}');
            write_event(&mut self.buf, "lagged", "", &data);
            self.counters[4].inc();
            self.lagged = 0;
        }
        if !self.trades.is_empty() {
            let sym = &self.target.hub.symbols[self.target.symbol];
            let mut data = Vec::with_capacity(128 + self.trades.len() * 64);
            data.extend_from_slice(b"{\"server_ts\":");
            data.extend_from_slice(itoa::Buffer::new().format(now_ns()).as_bytes());
            data.extend_from_slice(b",\"symbol\":");
            data.extend_from_slice(&serde_json::to_vec(&*sym.symbol).unwrap_or_default());
            if let Some(v) = self.trade_venue {
                data.extend_from_slice(b",\"venue\":\"");
                data.extend_from_slice(v.as_bytes());
                data.push(b'"');
            }
            data.extend_from_slice(b",\"count\":");
            data.extend_from_slice(itoa::Buffer::new().format(self.trades.len()).as_bytes());
            data.extend_from_slice(b",\"fields\":");
            data.extend_from_slice(&serde_json::to_vec(&VENUE_TRADE_FIELDS).unwrap_or_default());
            data.extend_from_slice(b",\"trades\":[");
            for (i, t) in self.trades.iter().enumerate() {
                if i > 0 {
                    data.push(b',');
                }
                write_venue_trade(&mut data, t);
            }
            data.extend_from_slice(b"]}");
            let id = format!("0-{}", self.trades.last().map_or(0, |t| t.seq));
            write_event(&mut self.buf, "trade", &id, &data);
            self.counters[2].inc();
            self.trades.clear();
        }
        for b in 0..self.pending.len() {
            if let Some(f) = self.pending[b].take() {
                self.sent_seq[b] = f.seq;
                write_event(&mut self.buf, "book", &f.sse_id(), &f.json(self.depth));
                self.counters[1].inc();
            }
        }
        self.last_flush = Some(Instant::now());
    }

    /// The next chunk to write; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.shutdown.is_cancelled() {
                return None;
            }
            if self.need_snapshot {
                if self.lagged > 0 {
                    self.flush();
                }
                self.write_health();
                self.write_snapshots();
                return Some(self.take_buf());
            }
            let now = Instant::now();
            let flush_at = self.last_flush.map_or(now, |t| t + self.interval);
            if self.has_pending() && flush_at <= now {
                self.flush();
                return Some(self.take_buf());
            }
            let health_at = self.last_health + HEALTH_EVERY;
            let keep_alive_at = self.last_write + self.keep_alive;
            let pending = self.has_pending();
            tokio::select! {
                () = self.shutdown.cancelled() => return None,
                r = self.updates.recv() => match r {
                    Ok(batch) => self.absorb(&batch),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        self.lagged += n;
                        self.need_snapshot = true;
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                () = sleep_until(flush_at), if pending => {}
                () = sleep_until(health_at) => {
                    self.write_health();
                    return Some(self.take_buf());
                }
                () = sleep_until(keep_alive_at) => {
                    self.last_write = Instant::now();
                    return Some(Bytes::from_static(KEEP_ALIVE));
                }
            }
        }
    }
}
