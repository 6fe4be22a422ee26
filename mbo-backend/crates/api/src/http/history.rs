//! History from storage: time travel, trades, bars, and a window of records as a stream.
//!
//! Every route reads the SQLite file through a pooled read connection on a blocking thread
//! ([`Storage::read`]): WAL readers never block the writer, and at most
//! [`MAX_READERS`](crate::storage::MAX_READERS) reads run at once, so a burst of history
//! requests cannot starve the live server of threads. Times (`ts`, `from`, `to`) are Unix ns
//! or RFC 3339 and refer to `ts_recv`, the stream's clock (the replay position and SSE
//! `ts_recv` use the same). Symbols are resolved against the books of the running feed, whose
//! session the routes read.
//!
//! `GET /api/v1/history/mbo` pages through the window (`EVENTS_PER_PAGE` records per query,
//! each resuming after the last index sent) into a bounded channel: a client that
//! reads slowly holds one page in the channel and one in flight, never the window.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use mbo_book::BookKey;
use mbo_store::query::{BarQuery, EventQuery, TradeQuery};
use mbo_store::StoreError;
use tokio::sync::mpsc;

use crate::engine::{build_frame, unix_ns};
use crate::error::ApiError;
use crate::http::control::parse_ts_str;
use crate::http::rest::{json_bytes, MAX_DEPTH};
use crate::http::{depth_param, find_book, int_param, params, AppState, Params};
use crate::hub::{write_record_array, HISTORY_FIELDS};
use crate::storage::{ReadError, Storage};

/// Trades per page by default, and at most.
const TRADES_DEFAULT: usize = 1_000;
const TRADES_MAX: usize = 10_000;
/// Bars per answer at most (a finer interval over a longer window is refused).
const BARS_MAX: usize = 100_000;
/// Records per page of a history stream.
const EVENTS_PER_PAGE: usize = 8_192;
/// Pages buffered between the reader thread and the client.
const PAGES_BUFFERED: usize = 2;

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", e.to_string()).retry_after(1)
            }
            ReadError::Store(StoreError::BeforeHorizon { .. }) => {
                ApiError::new(StatusCode::GONE, "before_retention", e.to_string())
            }
            ReadError::Store(_) | ReadError::Task => {
                tracing::error!(error = %e, "history read failed");
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "storage_error",
                    "reading the history failed; see the server log",
                )
            }
        }
    }
}

/// The storage, or 404 `storage_off`.
fn storage(s: &AppState) -> Result<Arc<Storage>, ApiError> {
    s.storage.clone().ok_or_else(|| {
        ApiError::not_found(
            "storage_off",
            "this server does not store history: start it with --db PATH (or MBO_DB)",
        )
    })
}

/// A required time parameter.
fn ts_param(p: &Params, name: &str) -> Result<u64, ApiError> {
    match p.get(name) {
        Some(v) => parse_ts_str(v.trim())
            .map_err(|e| ApiError::bad_request(format!("{name}: {}", e.message))),
        None => Err(ApiError::bad_request(format!(
            "{name} is required (Unix ns or RFC 3339)"
        ))),
    }
}

/// An optional time parameter.
fn opt_ts_param(p: &Params, name: &str, default: u64) -> Result<u64, ApiError> {
    if p.contains_key(name) {
        ts_param(p, name)
    } else {
        Ok(default)
    }
}

/// `from` and `to` (both optional: the whole session), checked `from <= to`. Stored
/// timestamps are below 2^63 (see mbo-store), so the open end is `i64::MAX`.
fn window(p: &Params) -> Result<(u64, u64), ApiError> {
    let from = opt_ts_param(p, "from", 0)?;
    let to = opt_ts_param(p, "to", i64::MAX as u64)?;
    if from > to {
        return Err(ApiError::bad_request(format!(
            "from ({from}) is after to ({to})"
        )));
    }
    Ok((from, to))
}

/// A book named by a history request.
struct HistoryBook {
    key: BookKey,
    symbol: Arc<str>,
}

/// The book `symbol` names: a book of the live market, else (a server started paused, a
/// seek back before a book's first event) an instrument of the feed's metadata whose
/// publisher comes from `publisher` or the stored checkpoint rounds.
async fn resolve(s: &AppState, symbol: &str, p: &Params) -> Result<HistoryBook, ApiError> {
    let live = match find_book(&s.hub, Some(symbol), p) {
        Ok(entry) => {
            return Ok(HistoryBook {
                key: entry.key,
                symbol: entry.symbol.clone(),
            })
        }
        Err(e) if e.code == "no_data_yet" => e,
        Err(e) => return Err(e),
    };
    let Some((&instrument_id, name)) = s
        .hub
        .feed
        .symbols
        .iter()
        .find(|(_, name)| &***name == symbol.trim())
    else {
        return Err(live);
    };
    let publisher = match int_param::<u16>(p, "publisher", 0..=u16::MAX)? {
        Some(publisher) => publisher,
        None => {
            let storage = storage(s)?;
            let publishers = storage
                .read(move |r, session| r.publishers(session, instrument_id))
                .await?;
            *publishers.first().ok_or(live)?
        }
    };
    Ok(HistoryBook {
        key: BookKey {
            instrument_id,
            publisher_id: publisher,
        },
        symbol: name.clone(),
    })
}

/// The book a history request names (`symbol` required, `publisher` optional).
async fn history_book(s: &AppState, p: &Params) -> Result<HistoryBook, ApiError> {
    let symbol = p
        .get("symbol")
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| ApiError::bad_request("symbol is required"))?;
    resolve(s, symbol, p).await
}

/// `GET /api/v1/history` answer.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct HistorySummary {
    /// Unix ns of the answer.
    pub server_ts: u64,
    /// The feed session being stored (`feed_sessions.id`).
    pub session: i64,
    /// `file`, `simulator` or `live`.
    pub source: String,
    /// Content key of the session (`file:sha256:...`, `sim:seed:...`, `live:...`).
    pub source_key: String,
    /// Databento dataset, when known.
    pub dataset: Option<String>,
    /// First stored stream index (raised by retention).
    pub first_index: u64,
    /// Last stored stream index (`null`: nothing stored yet).
    pub last_index: Option<u64>,
    /// `ts_recv` (ns) of the first stored event: the earliest time `/book/{symbol}/at` can
    /// show.
    pub first_ts: Option<u64>,
    /// `ts_recv` (ns) of the last stored event.
    pub last_ts: Option<u64>,
    /// Checkpoint rounds stored.
    pub rounds: u64,
}

/// `GET /api/v1/history`: what the storage holds for the running feed (the range a
/// timeline can offer for time travel).
#[utoipa::path(get, path = "/api/v1/history", tag = "history",
    responses((status = 200, description = "The stored range of the running feed's session", body = HistorySummary),
              (status = 404, description = "Storage off")))]
pub async fn summary(State(s): State<AppState>) -> Result<Response, ApiError> {
    let storage = storage(&s)?;
    let session = storage.session;
    let summary = storage
        .read(move |r, session| r.session_summary(session))
        .await?
        .ok_or_else(|| ApiError::not_found("no_session", "the feed session is not stored"))?;
    Ok(axum::Json(HistorySummary {
        server_ts: unix_ns(),
        session: session.0,
        source: summary.source,
        source_key: summary.source_key,
        dataset: summary.dataset,
        first_index: summary.first_index,
        last_index: summary.last_index,
        first_ts: summary.first_ts,
        last_ts: summary.last_ts,
        rounds: summary.rounds,
    })
    .into_response())
}

/// `GET /api/v1/book/{symbol}/at`: the book at a past moment.
#[utoipa::path(get, path = "/api/v1/book/{symbol}/at", tag = "history",
    params(("symbol" = String, Path, description = "Raw symbol or instrument id"),
           ("ts" = String, Query, description = "Unix ns or RFC 3339 (ts_recv)"),
           ("depth" = Option<String>, Query, description = "Levels per side (1..100000 or all), default 10"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "The book after its last event boundary at or before ts: the same object as /api/v1/book/{symbol}"),
              (status = 400, description = "Bad parameter"),
              (status = 404, description = "Unknown symbol, no event of the book at or before ts, or storage off"),
              (status = 410, description = "ts is before the retention horizon")))]
pub async fn book_at(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(symbol) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let p = params(q)?;
    let storage = storage(&s)?;
    let ts = ts_param(&p, "ts")?;
    let depth = depth_param(&p, 10, MAX_DEPTH, true)?;
    let entry = resolve(&s, &symbol, &p).await?;
    let key: BookKey = entry.key;
    let book = storage
        .read(move |r, session| r.book_at(session, key, ts))
        .await?
        .ok_or_else(|| {
            ApiError::not_found(
                "no_data_at",
                format!("{symbol} had no event at or before ts {ts}"),
            )
        })?;
    let frame = build_frame(&book, entry.symbol.clone(), s.hub.epoch(), unix_ns(), depth);
    Ok(json_bytes(frame.json(depth)))
}

/// `GET /api/v1/trades`: stored trades of a symbol, paginated.
#[utoipa::path(get, path = "/api/v1/trades", tag = "history",
    params(("symbol" = String, Query, description = "Raw symbol or instrument id"),
           ("from" = Option<String>, Query, description = "Start, Unix ns or RFC 3339 (inclusive)"),
           ("to" = Option<String>, Query, description = "End, Unix ns or RFC 3339 (inclusive)"),
           ("after" = Option<u64>, Query, description = "Cursor: the `next` of the previous page"),
           ("limit" = Option<usize>, Query, description = "Trades per page, 1..10000, default 1000"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "{server_ts, symbol, fields, trades: [[event_index, ts_recv, ts_event, price, size, side]...], next}"),
              (status = 400, description = "Bad parameter"),
              (status = 404, description = "Unknown symbol or storage off")))]
pub async fn trades(
    State(s): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let storage = storage(&s)?;
    let entry = history_book(&s, &p).await?;
    let (from, to) = window(&p)?;
    let limit = int_param::<usize>(&p, "limit", 1..=TRADES_MAX)?.unwrap_or(TRADES_DEFAULT);
    let after = int_param::<u64>(&p, "after", 0..=i64::MAX as u64)?;
    let publisher = p
        .contains_key("publisher")
        .then_some(entry.key.publisher_id);
    let instrument_id = entry.key.instrument_id;
    let rows = storage
        .read(move |r, session| {
            r.trades(&TradeQuery {
                session,
                instrument_id,
                publisher_id: publisher,
                from,
                to,
                after,
                limit,
            })
        })
        .await?;
    let mut out = Vec::with_capacity(160 + rows.len() * 72);
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"server_ts\":");
    out.extend_from_slice(n.format(unix_ns()).as_bytes());
    push_symbol(&mut out, &entry);
    out.extend_from_slice(b",\"count\":");
    out.extend_from_slice(n.format(rows.len()).as_bytes());
    out.extend_from_slice(
        b",\"fields\":[\"event_index\",\"ts_recv\",\"ts_event\",\"price\",\"size\",\"side\"],\"trades\":[",
    );
    for (i, t) in rows.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        for v in [t.event_index, t.ts_recv, t.ts_event] {
            out.extend_from_slice(n.format(v).as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(n.format(t.price).as_bytes());
        out.push(b',');
        out.extend_from_slice(n.format(t.size).as_bytes());
        out.extend_from_slice(b",\"");
        out.push(if t.side.is_ascii_alphanumeric() {
            t.side
        } else {
            b'?'
        });
        out.extend_from_slice(b"\"]");
    }
    out.extend_from_slice(b"],\"next\":");
    match rows.last().filter(|_| rows.len() == limit) {
        Some(last) => out.extend_from_slice(n.format(last.event_index).as_bytes()),
        None => out.extend_from_slice(b"null"),
    }
    out.push(b'}');
    Ok(json_bytes(Bytes::from(out)))
}

/// `,"symbol":"S","instrument_id":N,"publisher_id":P` (symbols are printable raw symbols;
/// serde_json escapes them anyway).
fn push_symbol(out: &mut Vec<u8>, entry: &HistoryBook) {
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b",\"symbol\":");
    let quoted = serde_json::to_vec(&*entry.symbol).unwrap_or_else(|_| b"\"\"".to_vec());
    out.extend_from_slice(&quoted);
    out.extend_from_slice(b",\"instrument_id\":");
    out.extend_from_slice(n.format(entry.key.instrument_id).as_bytes());
    out.extend_from_slice(b",\"publisher_id\":");
    out.extend_from_slice(n.format(entry.key.publisher_id).as_bytes());
}

/// Bar intervals by name.
fn interval_ns(name: &str) -> Option<u64> {
    const S: u64 = 1_000_000_000;
    Some(match name {
        "1s" => S,
        "5s" => 5 * S,
        "15s" => 15 * S,
        "1m" => 60 * S,
        "5m" => 300 * S,
        "15m" => 900 * S,
        "1h" => 3600 * S,
        "1d" => 86_400 * S,
        _ => return None,
    })
}

/// `GET /api/v1/bars`: OHLCV bars computed in SQL from stored trades.
#[utoipa::path(get, path = "/api/v1/bars", tag = "history",
    params(("symbol" = String, Query, description = "Raw symbol or instrument id"),
           ("interval" = String, Query, description = "1s, 5s, 15s, 1m, 5m, 15m, 1h or 1d"),
           ("from" = Option<String>, Query, description = "Start, Unix ns or RFC 3339"),
           ("to" = Option<String>, Query, description = "End, Unix ns or RFC 3339"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "{server_ts, symbol, interval, fields, bars: [[start_ts, open, high, low, close, volume, trades]...]}: non-empty intervals only"),
              (status = 400, description = "Bad parameter, or more than 100000 bars"),
              (status = 404, description = "Unknown symbol or storage off")))]
pub async fn bars(
    State(s): State<AppState>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let storage = storage(&s)?;
    let entry = history_book(&s, &p).await?;
    let (from, to) = window(&p)?;
    let name = p
        .get("interval")
        .map(|v| v.trim().to_owned())
        .ok_or_else(|| {
            ApiError::bad_request("interval is required: 1s, 5s, 15s, 1m, 5m, 15m, 1h or 1d")
        })?;
    let interval = interval_ns(&name).ok_or_else(|| {
        ApiError::bad_request(format!(
            "interval must be 1s, 5s, 15s, 1m, 5m, 15m, 1h or 1d, got {name:?}"
        ))
    })?;
    let publisher = p
        .contains_key("publisher")
        .then_some(entry.key.publisher_id);
    let instrument_id = entry.key.instrument_id;
    let bars = storage
        .read(move |r, session| {
            r.bars(&BarQuery {
                session,
                instrument_id,
                publisher_id: publisher,
                from,
                to,
                interval_ns: interval,
            })
        })
        .await?;
    if bars.len() > BARS_MAX {
        return Err(ApiError::bad_request(format!(
            "{} bars: at most {BARS_MAX} per request; use a longer interval or a shorter window",
            bars.len()
        )));
    }
    let mut out = Vec::with_capacity(200 + bars.len() * 100);
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"{\"server_ts\":");
    out.extend_from_slice(n.format(unix_ns()).as_bytes());
    push_symbol(&mut out, &entry);
    out.extend_from_slice(b",\"interval\":\"");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\",\"interval_ns\":");
    out.extend_from_slice(n.format(interval).as_bytes());
    out.extend_from_slice(b",\"fields\":[\"start_ts\",\"open\",\"high\",\"low\",\"close\",\"volume\",\"trades\"],\"bars\":[");
    for (i, b) in bars.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        out.extend_from_slice(n.format(b.start_ts).as_bytes());
        for v in [b.open, b.high, b.low, b.close] {
            out.push(b',');
            out.extend_from_slice(n.format(v).as_bytes());
        }
        for v in [b.volume, b.trades] {
            out.push(b',');
            out.extend_from_slice(n.format(v).as_bytes());
        }
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
    Ok(json_bytes(Bytes::from(out)))
}

/// `GET /api/v1/history/mbo`: every stored record of a window, as SSE or NDJSON.
#[utoipa::path(get, path = "/api/v1/history/mbo", tag = "history",
    params(("symbol" = Option<String>, Query, description = "Raw symbol or instrument id (all instruments when absent)"),
           ("from" = Option<String>, Query, description = "Start, Unix ns or RFC 3339 (inclusive)"),
           ("to" = Option<String>, Query, description = "End, Unix ns or RFC 3339 (inclusive)"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "text/event-stream (default): `meta`, then `mbo` events of record arrays (columns in `fields`), then `end`; with `Accept: application/x-ndjson`, one JSON object per record", content_type = "text/event-stream"),
              (status = 400, description = "Bad parameter"),
              (status = 404, description = "Unknown symbol or storage off"),
              (status = 503, description = "Every history reader busy (Retry-After)")))]
pub async fn history_mbo(
    State(s): State<AppState>,
    headers: HeaderMap,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = params(q)?;
    let storage = storage(&s)?;
    let entry = match p.get("symbol").filter(|v| !v.trim().is_empty()) {
        Some(sym) => Some(resolve(&s, sym, &p).await?),
        None => None,
    };
    let (from, to) = window(&p)?;
    let ndjson = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/x-ndjson"));
    // The read slot is taken before answering, so a busy server says 503 instead of
    // accepting a stream it cannot feed.
    let slot = storage.read_slot().await?;
    let (tx, rx) = mpsc::channel::<Bytes>(PAGES_BUFFERED);
    let instrument_id = entry.as_ref().map(|e| e.key.instrument_id);
    let publisher = entry.as_ref().map(|e| e.key.publisher_id);
    let publisher_filter = p.contains_key("publisher");
    let mut head = Vec::new();
    if !ndjson {
        let mut meta = Vec::new();
        let mut n = itoa::Buffer::new();
        meta.extend_from_slice(b"{\"server_ts\":");
        meta.extend_from_slice(n.format(unix_ns()).as_bytes());
        if let Some(e) = &entry {
            push_symbol(&mut meta, e);
        }
        meta.extend_from_slice(b",\"from\":");
        meta.extend_from_slice(n.format(from).as_bytes());
        meta.extend_from_slice(b",\"to\":");
        meta.extend_from_slice(n.format(to).as_bytes());
        meta.extend_from_slice(b",\"fields\":");
        let fields = serde_json::to_vec(&HISTORY_FIELDS).unwrap_or_default();
        meta.extend_from_slice(&fields);
        meta.push(b'}');
        crate::http::sse::write_event(&mut head, "meta", "0", &meta);
    }
    tokio::spawn(async move {
        if !head.is_empty() && tx.send(Bytes::from(head)).await.is_err() {
            return;
        }
        // Each page takes a read slot only while it queries: a slow client holds a page in
        // the channel, never a reader.
        let mut slot = Some(slot);
        let mut after = None;
        let mut total = 0u64;
        loop {
            let q = EventQuery {
                session: storage.session,
                instrument_id,
                from,
                to,
                after,
                limit: EVENTS_PER_PAGE,
            };
            let read = move |r: &mbo_store::query::HistoryReader, _| r.events(&q);
            let page = match slot.take() {
                Some(first) => storage.read_with(first, read).await,
                None => storage.read(read).await,
            };
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    // Headers are sent: the stream can only end; it ends without `end`.
                    tracing::warn!(error = %e, "history stream ended early");
                    return;
                }
            };
            let full = page.len() == EVENTS_PER_PAGE;
            let Some(&(last, _)) = page.last() else {
                break;
            };
            after = Some(last);
            let page: Vec<_> = page
                .into_iter()
                .filter(|(_, rec)| !publisher_filter || Some(rec.hd.publisher_id) == publisher)
                .collect();
            total += page.len() as u64;
            if !page.is_empty() {
                let chunk = if ndjson {
                    ndjson_page(&page)
                } else {
                    sse_page(&page)
                };
                // A client gone (the receiver dropped) ends the read.
                if tx.send(chunk).await.is_err() {
                    return;
                }
            }
            if !full {
                break;
            }
        }
        if !ndjson {
            let mut end = Vec::new();
            let mut n = itoa::Buffer::new();
            let mut data = b"{\"server_ts\":".to_vec();
            data.extend_from_slice(n.format(unix_ns()).as_bytes());
            data.extend_from_slice(b",\"records\":");
            data.extend_from_slice(n.format(total).as_bytes());
            data.push(b'}');
            let id = after.map_or_else(|| "0".to_owned(), |i| i.to_string());
            crate::http::sse::write_event(&mut end, "end", &id, &data);
            let _ = tx.send(Bytes::from(end)).await;
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    });
    if ndjson {
        Ok((
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            )],
            axum::body::Body::from_stream(body),
        )
            .into_response())
    } else {
        Ok(crate::http::sse::response(body))
    }
}

/// One `mbo` SSE event holding a page of records as arrays ([`HISTORY_FIELDS`]).
fn sse_page(page: &[(u64, dbn::MboMsg)]) -> Bytes {
    let mut data = Vec::with_capacity(64 + page.len() * 120);
    let mut n = itoa::Buffer::new();
    data.extend_from_slice(b"{\"server_ts\":");
    data.extend_from_slice(n.format(unix_ns()).as_bytes());
    data.extend_from_slice(b",\"count\":");
    data.extend_from_slice(n.format(page.len()).as_bytes());
    data.extend_from_slice(b",\"records\":[");
    for (i, (index, rec)) in page.iter().enumerate() {
        if i > 0 {
            data.push(b',');
        }
        write_record_array(&mut data, &mut n, *index, rec, true);
    }
    data.extend_from_slice(b"]}");
    let mut out = Vec::with_capacity(data.len() + 64);
    let id = page.last().map_or(0, |(i, _)| *i).to_string();
    crate::http::sse::write_event(&mut out, "mbo", &id, &data);
    Bytes::from(out)
}

/// NDJSON lines: one object per record, keys as [`HISTORY_FIELDS`].
fn ndjson_page(page: &[(u64, dbn::MboMsg)]) -> Bytes {
    let mut out = Vec::with_capacity(page.len() * 260);
    let mut row = Vec::with_capacity(160);
    let mut n = itoa::Buffer::new();
    for (index, rec) in page {
        row.clear();
        write_record_array(&mut row, &mut n, *index, rec, true);
        // The array's values in order, named: `[a,b,...]` → `{"index":a,...}`. Values
        // never contain commas (numbers and one-letter codes).
        out.push(b'{');
        let inner = row.get(1..row.len().saturating_sub(1)).unwrap_or_default();
        for (k, (name, value)) in HISTORY_FIELDS
            .iter()
            .zip(inner.split(|&b| b == b','))
            .enumerate()
        {
            if k > 0 {
                out.push(b',');
            }
            out.push(b'"');
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(value);
        }
        out.extend_from_slice(b"}\n");
    }
    Bytes::from(out)
}
