//! The HTTP surface: routes, shared state, and the pieces every handler uses (query parsing,
//! symbol lookup, the stream cap).
//!
//! * [`rest`]: health, instruments, books, level queues.
//! * [`stream`]: `GET /api/v1/stream` (snapshot, conflated book frames, trades, status).
//! * [`mbo_stream`]: `GET /api/v1/stream/mbo` (every record, batched, with L3 snapshots).
//! * [`control`]: `GET`/`POST /api/v1/replay` (token or loopback).
//! * [`docs`]: `GET /api/openapi.json`, the offline docs page, the status page at `/`.
//! * [`observe`]: `GET /metrics` and the request-metrics middleware.

pub mod control;
pub mod docs;
pub mod forward;
pub mod history;
pub mod mbo_stream;
pub mod observe;
pub mod rest;
pub mod sse;
pub mod stream;
pub mod venues;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use prometheus::IntGauge;
use tokio_util::sync::CancellationToken;
use tower_http::services::{ServeDir, ServeFile};

use crate::config::ServerConfig;
use crate::engine::EngineClient;
use crate::error::ApiError;
use crate::hub::{BookEntry, Hub, LookupError};
use crate::metrics::Metrics;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Published books, rings, feed info, health.
    pub hub: Arc<Hub>,
    /// Whole-book reads.
    pub engine: EngineClient,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub config: Arc<ServerConfig>,
    /// Open streams.
    pub streams: Arc<StreamSlots>,
    /// Cancelled at shutdown: streams end.
    pub shutdown: CancellationToken,
    /// The database the feed is stored in (`None`: storage off).
    pub storage: Option<Arc<crate::storage::Storage>>,
    /// The crypto venues (`None`: none configured).
    pub venues: Option<Arc<crate::venues::hub::VenueHub>>,
    /// A gateway's way to its ingest: history and replay commands go there (`None`:
    /// answered here).
    pub forward: Option<forward::Forwarder>,
}

/// The router with every route.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/health/live", get(rest::live))
        .route("/health/ready", get(rest::ready))
        .route("/api/v1/instruments", get(rest::instruments))
        .route("/api/v1/book/{symbol}", get(rest::book))
        .route("/api/v1/book/{symbol}/level", get(rest::level))
        .route("/api/v1/stream", get(stream::stream))
        .route("/api/v1/stream/mbo", get(mbo_stream::stream))
        .route("/api/v1/stream/venues", get(venues::stream_all))
        .route("/api/v1/venues", get(venues::status))
        .route("/api/openapi.json", get(docs::openapi))
        .route("/api/docs", get(docs::page))
        .route("/metrics", get(observe::metrics))
        .merge(history_routes(state.forward.is_some()))
        .route("/api/{*rest}", get(api_not_found).post(api_not_found))
        .method_not_allowed_fallback(method_not_allowed);
    let dashboard = state
        .config
        .static_dir
        .as_ref()
        .filter(|d| d.join("index.html").is_file())
        .cloned();
    let router = match dashboard {
        // A single-page app: unknown paths get index.html so client-side routes work.
        Some(dir) => api
            .fallback_service(ServeDir::new(&dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => api
            .route("/", get(docs::status_page))
            .fallback(api_not_found),
    };
    router
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            observe::track,
        ))
        .with_state(state)
}

/// History and replay control: answered here, or forwarded to the ingest by a gateway.
fn history_routes(forwarded: bool) -> Router<AppState> {
    if forwarded {
        let f = || get(forward::handle);
        Router::new()
            .route("/api/v1/book/{symbol}/at", f())
            .route("/api/v1/history", f())
            .route("/api/v1/trades", f())
            .route("/api/v1/bars", f())
            .route("/api/v1/history/mbo", f())
            .route("/api/v1/replay", get(control::status).post(forward::handle))
    } else {
        Router::new()
            .route("/api/v1/book/{symbol}/at", get(history::book_at))
            .route("/api/v1/history", get(history::summary))
            .route("/api/v1/trades", get(history::trades))
            .route("/api/v1/bars", get(history::bars))
            .route("/api/v1/history/mbo", get(history::history_mbo))
            .route(
                "/api/v1/replay",
                get(control::status).post(control::command),
            )
    }
}

async fn api_not_found() -> ApiError {
    ApiError::not_found("not_found", "no such route; see /api/docs")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route; see /api/docs",
    )
}

/// Counts open streams against the cap.
#[derive(Debug)]
pub struct StreamSlots {
    open: AtomicUsize,
    max: usize,
}

/// One open stream; frees its slot and decrements its gauge when dropped (client gone,
/// stream ended, server shutting down).
#[derive(Debug)]
pub struct StreamSlot {
    slots: Arc<StreamSlots>,
    gauge: IntGauge,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.slots.open.fetch_sub(1, Ordering::AcqRel);
        self.gauge.dec();
    }
}

impl StreamSlots {
    /// At most `max` streams.
    pub fn new(max: usize) -> Self {
        Self {
            open: AtomicUsize::new(0),
            max,
        }
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Takes a slot, counted in `gauge`.
    ///
    /// # Errors
    /// 503 `too_many_streams` with `Retry-After` when the cap is reached.
    pub fn acquire(self: &Arc<Self>, gauge: IntGauge) -> Result<StreamSlot, ApiError> {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            });
        match taken {
            Ok(_) => {
                gauge.inc();
                Ok(StreamSlot {
                    slots: self.clone(),
                    gauge,
                })
            }
            Err(n) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_streams",
                format!("{n} streams are open, the most this server accepts (MBO_MAX_STREAMS)"),
            )
            .retry_after(5)),
        }
    }
}

/// Query parameters, or a 400 JSON error when the query string is malformed.
pub type Params = HashMap<String, String>;

/// Unwraps a query extraction.
///
/// # Errors
/// 400 when the query string cannot be decoded.
pub fn params(q: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    q.map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(format!("malformed query string: {}", e.body_text())))
}

/// Parses an optional integer parameter within `range`.
///
/// # Errors
/// 400 naming the parameter when it is not an integer in range.
pub fn int_param<T>(
    p: &Params,
    name: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<Option<T>, ApiError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
{
    let Some(raw) = p.get(name) else {
        return Ok(None);
    };
    match raw.trim().parse::<T>() {
        Ok(v) if range.contains(&v) => Ok(Some(v)),
        _ => Err(ApiError::bad_request(format!(
            "{name} must be an integer from {} to {}, got {raw:?}",
            range.start(),
            range.end()
        ))),
    }
}

/// `depth`: 1..=`max`, or `all` when `allow_all` (as `usize::MAX`); default `default`.
///
/// # Errors
/// 400 for anything else.
pub fn depth_param(
    p: &Params,
    default: usize,
    max: usize,
    allow_all: bool,
) -> Result<usize, ApiError> {
    match p.get("depth").map(|s| s.trim()) {
        None => Ok(default),
        Some("all") if allow_all => Ok(usize::MAX),
        Some(raw) => match raw.parse::<usize>() {
            Ok(d) if (1..=max).contains(&d) => Ok(d),
            _ => Err(ApiError::bad_request(format!(
                "depth must be an integer from 1 to {max}{}, got {raw:?}",
                if allow_all { " or \"all\"" } else { "" }
            ))),
        },
    }
}

/// The book a request names: `symbol` (raw symbol or instrument id) and optional
/// `publisher`. With `symbol` absent, the only book when there is exactly one.
///
/// # Errors
/// 400 for a bad publisher or a missing symbol with several books, 404 for an unknown one.
pub fn find_book(hub: &Hub, symbol: Option<&str>, p: &Params) -> Result<Arc<BookEntry>, ApiError> {
    let publisher = int_param::<u16>(p, "publisher", 0..=u16::MAX)?;
    let dir = hub.directory.load();
    let symbol = match symbol.map(str::trim) {
        Some(s) if !s.is_empty() => s,
        _ => {
            return match dir.entries.as_slice() {
                [only] => Ok(only.clone()),
                [] => Err(not_ready_yet()),
                _ => Err(ApiError::bad_request(format!(
                    "symbol is required: this server has {} books (see /api/v1/instruments)",
                    dir.entries.len()
                ))),
            }
        }
    };
    match dir.find(symbol, publisher) {
        Ok(e) => Ok(e.clone()),
        Err(LookupError::UnknownPublisher(have)) => Err(ApiError::not_found(
            "unknown_publisher",
            format!("{symbol} has no book from that publisher; publishers: {have:?}"),
        )),
        Err(LookupError::UnknownSymbol) => {
            if hub.feed.symbols.values().any(|s| &**s == symbol) {
                Err(ApiError::not_found(
                    "no_data_yet",
                    format!("no record of {symbol} has arrived yet"),
                ))
            } else {
                Err(ApiError::not_found(
                    "unknown_symbol",
                    format!("unknown symbol {symbol:?}; see /api/v1/instruments"),
                ))
            }
        }
    }
}

fn not_ready_yet() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        "no book yet: the feed has not delivered its first event",
    )
    .retry_after(1)
}
