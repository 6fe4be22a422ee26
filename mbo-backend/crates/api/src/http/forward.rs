//! Routes a gateway does not answer itself: it forwards them to its ingest.
//!
//! A gateway (`mbo serve --role gateway`) has books but no storage and no feed of its own, so
//! history (`/api/v1/book/{symbol}/at`, `/trades`, `/bars`, `/history`, `/history/mbo`) and
//! replay commands (`POST /api/v1/replay`) go to the ingest, which answers them with its own
//! router exactly as if the client had called it: same status, same JSON, same token and
//! loopback rules (the client's address travels with the request). How the request travels
//! (NATS request/reply) is the [`Forwarder`]'s business.

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;

use crate::error::ApiError;
use crate::http::AppState;

/// Largest request body forwarded (replay commands are a few dozen bytes).
pub const MAX_FORWARDED_BODY: usize = 64 * 1024;

/// A request on its way to the ingest.
#[derive(Debug, Clone)]
pub struct ForwardedRequest {
    /// Method.
    pub method: Method,
    /// Path and query.
    pub uri: Uri,
    /// Headers (`authorization`, `accept`, ...).
    pub headers: HeaderMap,
    /// The client's address, for the loopback rule of replay control.
    pub peer: SocketAddr,
    /// Body.
    pub body: Bytes,
}

/// Sends a request to the ingest and returns its answer (or an error response saying why
/// it could not: 503 when the ingest does not answer).
#[derive(Clone)]
pub struct Forwarder(
    pub Arc<dyn Fn(ForwardedRequest) -> BoxFuture<'static, Response> + Send + Sync>,
);

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Forwarder")
    }
}

/// The handler of every forwarded route.
pub async fn handle(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    req: Request,
) -> Response {
    let Some(forwarder) = s.forward.clone() else {
        return ApiError::not_found("not_found", "no such route; see /api/docs").into_response();
    };
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, MAX_FORWARDED_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("request bodies are limited to {MAX_FORWARDED_BODY} bytes"),
            )
            .into_response()
        }
    };
    (forwarder.0)(ForwardedRequest {
        method: parts.method,
        uri: parts.uri,
        headers: parts.headers,
        peer,
        body,
    })
    .await
}

/// Headers worth forwarding: what the ingest's handlers read.
pub fn forwarded_headers(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    const KEEP: [&str; 4] = ["authorization", "accept", "content-type", "last-event-id"];
    headers.iter().filter_map(|(name, value)| {
        let name = name.as_str();
        if KEEP.contains(&name) {
            value.to_str().ok().map(|v| (name, v))
        } else {
            None
        }
    })
}
