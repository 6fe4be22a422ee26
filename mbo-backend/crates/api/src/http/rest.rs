//! Health, instruments, books and level queues.
//!
//! Books up to [`FRAME_DEPTH`] levels come from the latest published frame (no engine round
//! trip, no lock); deeper books and level queues are read by the engine between batches.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bytes::Bytes;
use mbo_book::Side;
use serde::Serialize;
use utoipa::ToSchema;

use crate::engine::unix_ns;
use crate::error::ApiError;
use crate::frame::{decimal, side_letter, FRAME_DEPTH};
use crate::http::{depth_param, find_book, params, AppState, Params};
use crate::hub::Health;

/// Most levels per side a numeric `depth` may ask for (`all` has no limit).
pub const MAX_DEPTH: usize = 100_000;

/// A JSON body that is already serialised.
pub fn json_bytes(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// `GET /health/live` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Live {
    /// Always `live`.
    pub status: &'static str,
}

/// `GET /health/live`: the process is up.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "The process is up", body = Live)))]
pub async fn live() -> Json<Live> {
    Json(Live { status: "live" })
}

/// `GET /health/ready` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Ready {
    /// `ready`.
    pub status: &'static str,
    /// Books served (MBO and crypto).
    pub books: usize,
    /// Feed epoch.
    pub epoch: u64,
}

/// `GET /health/ready`: 200 once the feed delivered its first event boundary, 503 before,
/// while the feed is in error, and while a gateway's books are stale.
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses((status = 200, description = "Serving books", body = Ready),
              (status = 503, description = "Starting, the feed failed, or (gateway) stale")))]
pub async fn ready(State(s): State<AppState>) -> Result<Json<Ready>, ApiError> {
    match s.hub.health() {
        Health::Ready => Ok(Json(Ready {
            status: "ready",
            books: s.hub.directory.load().entries.len()
                + s.venues
                    .as_ref()
                    .map_or(0, |v| v.symbols.iter().map(|e| e.books.len()).sum()),
            epoch: s.hub.epoch(),
        })),
        Health::Starting => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "waiting for the feed's first event",
        )
        .retry_after(1)),
        Health::Failed(why) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "feed_failed",
            why,
        )),
        Health::Stale(why) => {
            Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stale", why).retry_after(1))
        }
    }
}

/// One book in `GET /api/v1/instruments`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Instrument {
    /// Raw symbol (the instrument id as text when the feed named none); crypto books: the
    /// normalized pair (`BTC-USD`).
    pub symbol: String,
    /// Crypto books: `consolidated` or the venue's name; `null` for MBO books.
    pub venue: Option<&'static str>,
    /// Crypto venue books: the venue's own symbol (`BTC/USD`).
    pub native_symbol: Option<String>,
    /// Crypto books: `live`, `syncing` or `stale`.
    pub state: Option<&'static str>,
    /// Databento instrument id (`null` for crypto books).
    pub instrument_id: Option<u32>,
    /// Databento publisher id (`null` for crypto books).
    pub publisher_id: Option<u16>,
    /// Databento dataset (`crypto` for crypto books).
    pub dataset: String,
    /// Resting orders (`null` for crypto books: L2 has no orders).
    pub orders: Option<u64>,
    /// Bid price levels.
    pub bid_levels: u64,
    /// Ask price levels.
    pub ask_levels: u64,
    /// `ts_event` (ns) of the book's last record.
    pub last_ts_event: u64,
    /// `ts_recv` (ns) of the book's last record.
    pub last_ts_recv: u64,
    /// Stream index of the book's last event boundary.
    pub event_index: Option<u64>,
    /// Best bid ≥ best ask.
    pub crossed: bool,
    /// The publisher flagged a possible gap.
    pub maybe_bad_book: bool,
}

/// `GET /api/v1/instruments`.
#[utoipa::path(get, path = "/api/v1/instruments", tag = "books",
    responses((status = 200, description = "Every book", body = [Instrument])))]
pub async fn instruments(State(s): State<AppState>) -> Json<Vec<Instrument>> {
    let dir = s.hub.directory.load();
    let mut list: Vec<Instrument> = dir
        .entries
        .iter()
        .map(|e| {
            let f = e.frame.load();
            Instrument {
                symbol: e.symbol.to_string(),
                venue: None,
                native_symbol: None,
                state: None,
                instrument_id: Some(e.key.instrument_id),
                publisher_id: Some(e.key.publisher_id),
                dataset: s.hub.feed.metadata.dataset.clone(),
                orders: Some(f.order_count),
                bid_levels: f.bid_levels,
                ask_levels: f.ask_levels,
                last_ts_event: f.ts_event,
                last_ts_recv: f.ts_recv,
                event_index: f.event_index,
                crossed: f.crossed,
                maybe_bad_book: f.maybe_bad_book,
            }
        })
        .collect();
    if let Some(v) = &s.venues {
        for sym in &v.symbols {
            for b in &sym.books {
                let f = b.frame.load();
                list.push(Instrument {
                    symbol: sym.symbol.to_string(),
                    venue: Some(b.venue),
                    native_symbol: b.native_symbol.as_deref().map(str::to_owned),
                    state: Some(f.state.name()),
                    instrument_id: None,
                    publisher_id: None,
                    dataset: "crypto".to_owned(),
                    orders: None,
                    bid_levels: f.bid_levels,
                    ask_levels: f.ask_levels,
                    last_ts_event: 0,
                    last_ts_recv: f.ts_recv,
                    event_index: Some(f.seq),
                    crossed: f.crossed.is_some(),
                    maybe_bad_book: false,
                });
            }
        }
    }
    Json(list)
}

/// A price level (documentation of the JSON the server writes).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct LevelDoc {
    /// Price, integer 1e-9 units.
    pub price: i64,
    /// Price as an exact decimal string.
    pub price_decimal: String,
    /// Total resting size.
    pub size: u64,
    /// Resting orders.
    pub orders: u32,
}

/// A book (documentation of the JSON the server writes; `snapshot` and `book` SSE events
/// carry the same object).
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BookDoc {
    /// Unix ns at which the server published this state.
    pub server_ts: u64,
    /// Raw symbol.
    pub symbol: String,
    /// Instrument id.
    pub instrument_id: u32,
    /// Publisher id.
    pub publisher_id: u16,
    /// Feed epoch (resets so far).
    pub epoch: u64,
    /// Stream index of the book's last event boundary (`mbo export-book`'s `i`).
    pub event_index: Option<u64>,
    /// `ts_event` (ns) of the book's last record.
    pub ts_event: u64,
    /// `ts_recv` (ns) of the book's last record.
    pub ts_recv: u64,
    /// Best bid.
    pub best_bid: Option<LevelDoc>,
    /// Best ask.
    pub best_ask: Option<LevelDoc>,
    /// Best ask − best bid, 1e-9 units (negative when crossed).
    pub spread: Option<i64>,
    /// Spread as a decimal string.
    pub spread_decimal: Option<String>,
    /// (best bid + best ask) / 2, 1e-9 units rounded down.
    pub mid: Option<i64>,
    /// Mid as an exact decimal string (may end in a half unit: 10 decimals).
    pub mid_decimal: Option<String>,
    /// Best bid ≥ best ask (shown as is, never matched away).
    pub crossed: bool,
    /// The publisher flagged a possible gap that no clear has repaired.
    pub maybe_bad_book: bool,
    /// Resting orders, both sides.
    pub orders: u64,
    /// Bid levels in the whole book.
    pub bid_levels: u64,
    /// Ask levels in the whole book.
    pub ask_levels: u64,
    /// Bids, best first, at most `depth`.
    pub bids: Vec<LevelDoc>,
    /// Asks, best first, at most `depth`.
    pub asks: Vec<LevelDoc>,
}

/// `GET /api/v1/book/{symbol}?depth=N[&publisher=P]`.
#[utoipa::path(get, path = "/api/v1/book/{symbol}", tag = "books",
    params(("symbol" = String, Path, description = "Raw symbol or instrument id"),
           ("depth" = Option<String>, Query, description = "Levels per side, 1–100000 or `all` (default 10)"),
           ("publisher" = Option<u16>, Query, description = "Publisher id (default: the lowest)"),
           ("venue" = Option<String>, Query, description = "Crypto books: `consolidated` or a venue name (a crypto symbol without it: consolidated); sizes are exact decimal strings")),
    responses((status = 200, description = "The book at its last event boundary", body = BookDoc),
              (status = 400, description = "Bad depth or publisher"),
              (status = 404, description = "Unknown symbol")))]
pub async fn book(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Path(symbol) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let p = params(q)?;
    if let Some(t) = crate::http::venues::target(&s, Some(&symbol), &p)? {
        return crate::http::venues::book(&t, &p);
    }
    let depth = depth_param(&p, 10, MAX_DEPTH, true)?;
    let entry = find_book(&s.hub, Some(&symbol), &p)?;
    let published = entry.frame.load_full();
    let frame = if published.covers(depth) {
        published
    } else {
        s.engine.book(entry.key, depth).await?.unwrap_or(published)
    };
    Ok(json_bytes(frame.json(depth)))
}

/// One order in a level queue.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueueOrder {
    /// Position in the queue, 0 = next to trade.
    pub position: usize,
    /// Venue order id.
    pub order_id: u64,
    /// Remaining size.
    pub size: u32,
    /// `ts_event` (ns) of the record that last gave the order its priority.
    pub ts_priority: u64,
}

/// `GET /api/v1/book/{symbol}/level` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct LevelQueueJson {
    /// Unix ns of the read.
    pub server_ts: u64,
    /// Raw symbol.
    pub symbol: String,
    /// Instrument id.
    pub instrument_id: u32,
    /// Publisher id.
    pub publisher_id: u16,
    /// Feed epoch.
    pub epoch: u64,
    /// Stream index of the book's last event boundary.
    pub event_index: Option<u64>,
    /// `ts_event` (ns) of the book's last record.
    pub ts_event: u64,
    /// `ts_recv` (ns) of the book's last record.
    pub ts_recv: u64,
    /// `B` or `A`.
    pub side: &'static str,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Price as an exact decimal string.
    pub price_decimal: String,
    /// Total size at the level (0 when empty).
    pub size: u64,
    /// Orders in the queue.
    pub order_count: u32,
    /// The queue, first to trade first.
    pub orders: Vec<QueueOrder>,
}

/// `GET /api/v1/book/{symbol}/level?side=B|A&price=..`.
#[utoipa::path(get, path = "/api/v1/book/{symbol}/level", tag = "books",
    params(("symbol" = String, Path, description = "Raw symbol or instrument id"),
           ("side" = String, Query, description = "`B` (bid) or `A` (ask)"),
           ("price" = String, Query, description = "Integer 1e-9 units, or a decimal with a point (`64.67`)"),
           ("publisher" = Option<u16>, Query, description = "Publisher id")),
    responses((status = 200, description = "The level's L3 queue in priority order (empty when no order rests there)", body = LevelQueueJson),
              (status = 400, description = "Bad side or price"),
              (status = 404, description = "Unknown symbol")))]
pub async fn level(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<Params>, QueryRejection>,
) -> Result<Json<LevelQueueJson>, ApiError> {
    let Path(symbol) = path.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let p = params(q)?;
    let side = match p.get("side").map(|s| s.trim()) {
        Some("B" | "b" | "bid") => Side::Bid,
        Some("A" | "a" | "ask") => Side::Ask,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "side must be B or A, got {other:?}"
            )))
        }
        None => return Err(ApiError::bad_request("side is required (B or A)")),
    };
    let price = match p.get("price") {
        Some(raw) => parse_price(raw)?,
        None => return Err(ApiError::bad_request("price is required")),
    };
    let entry = find_book(&s.hub, Some(&symbol), &p)?;
    let q = s
        .engine
        .level(entry.key, side, price)
        .await?
        .ok_or_else(|| ApiError::not_found("unknown_symbol", "the book is gone"))?;
    let f = &q.frame;
    Ok(Json(LevelQueueJson {
        server_ts: unix_ns(),
        symbol: f.symbol.to_string(),
        instrument_id: f.key.instrument_id,
        publisher_id: f.key.publisher_id,
        epoch: f.epoch,
        event_index: f.event_index,
        ts_event: f.ts_event,
        ts_recv: f.ts_recv,
        side: side_letter(side),
        price,
        price_decimal: decimal(price),
        size: q.level.map_or(0, |l| l.size),
        order_count: q.level.map_or(0, |l| l.count),
        orders: q
            .orders
            .iter()
            .enumerate()
            .map(|(position, o)| QueueOrder {
                position,
                order_id: o.order_id,
                size: o.size,
                ts_priority: o.ts_priority,
            })
            .collect(),
    }))
}

/// A price: an integer of 1e-9 units, or a decimal with a point and at most 9 decimals,
/// parsed exactly (no floating point).
///
/// # Errors
/// 400 for anything else.
pub fn parse_price(raw: &str) -> Result<i64, ApiError> {
    let s = raw.trim();
    let bad = || {
        ApiError::bad_request(format!(
            "price must be an integer of 1e-9 units or a decimal like 64.67, got {raw:?}"
        ))
    };
    let Some((int, frac)) = s.split_once('.') else {
        return s.parse::<i64>().map_err(|_| bad());
    };
    let neg = int.starts_with('-');
    let int_digits = int.strip_prefix('-').unwrap_or(int);
    if frac.len() > 9
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || !int_digits.bytes().all(|b| b.is_ascii_digit())
        || (int_digits.is_empty() && frac.is_empty())
    {
        return Err(bad());
    }
    let whole: i64 = if int_digits.is_empty() {
        0
    } else {
        int_digits.parse().map_err(|_| bad())?
    };
    let mut nanos: i64 = if frac.is_empty() {
        0
    } else {
        frac.parse().map_err(|_| bad())?
    };
    for _ in frac.len()..9 {
        nanos *= 10;
    }
    let v = whole
        .checked_mul(1_000_000_000)
        .and_then(|w| w.checked_add(nanos))
        .ok_or_else(bad)?;
    Ok(if neg { -v } else { v })
}

/// Levels copied into frames (re-exported for docs).
pub const STREAM_MAX_DEPTH: usize = FRAME_DEPTH;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn prices_parse_exactly() {
        assert_eq!(parse_price("64670000000").unwrap(), 64_670_000_000);
        assert_eq!(parse_price("64.67").unwrap(), 64_670_000_000);
        assert_eq!(parse_price("0.000000001").unwrap(), 1);
        assert_eq!(parse_price("-1.5").unwrap(), -1_500_000_000);
        assert_eq!(parse_price(".5").unwrap(), 500_000_000);
        for bad in ["", "abc", "1.2.3", "1.0000000001", "1e9", "--1", "."] {
            assert!(parse_price(bad).is_err(), "{bad}");
        }
    }
}
