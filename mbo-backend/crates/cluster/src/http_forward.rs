//! HTTP over NATS request/reply: how a gateway's history and replay requests reach the
//! ingest's router.
//!
//! The request travels as headers (`Mbo-Method`, `Mbo-Uri`, `Mbo-Peer`, and each kept
//! client header as `Mbo-H-{name}`) with the body as payload; the answer as `Mbo-Status`,
//! `Mbo-H-{name}` (content type, `Retry-After`) and the body. The ingest runs the request
//! through its own router with the client's address as the peer, so its answer (status,
//! JSON, token and loopback rules) is exactly what the client would have got from it.
//!
//! One NATS message carries one answer, so an answer is limited to the server's
//! `max_payload` (1 MiB by default): a larger one (a long `/history/mbo` window) is
//! answered `413 response_too_large` telling the client to narrow the window or ask the
//! ingest directly.

use std::net::SocketAddr;
use std::time::Duration;

use async_nats::{Client, HeaderMap};
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use mbo_api::error::ApiError;
use mbo_api::http::forward::{forwarded_headers, ForwardedRequest, Forwarder};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::metrics::ClusterMetrics;
use crate::wire::HTTP_REQUEST_SUBJECT;

const H_METHOD: &str = "Mbo-Method";
const H_URI: &str = "Mbo-Uri";
const H_PEER: &str = "Mbo-Peer";
const H_STATUS: &str = "Mbo-Status";
const H_PREFIX: &str = "Mbo-H-";
/// Longest a gateway waits for the ingest's answer.
pub const FORWARD_TIMEOUT: Duration = Duration::from_secs(15);
/// Room left for headers under the server's payload limit.
const HEADER_ROOM: usize = 8 * 1024;

/// The gateway's end: a [`Forwarder`] sending requests to the ingest over `client`.
pub fn forwarder(client: Client, metrics: ClusterMetrics) -> Forwarder {
    Forwarder(std::sync::Arc::new(move |req| {
        let client = client.clone();
        let metrics = metrics.clone();
        Box::pin(async move {
            metrics.forwarded.inc();
            forward(&client, req).await
        })
    }))
}

async fn forward(client: &Client, req: ForwardedRequest) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(H_METHOD, req.method.as_str());
    headers.insert(H_URI, req.uri.to_string().as_str());
    headers.insert(H_PEER, req.peer.to_string().as_str());
    for (name, value) in forwarded_headers(&req.headers) {
        headers.insert(format!("{H_PREFIX}{name}").as_str(), value);
    }
    let asked = client.request_with_headers(HTTP_REQUEST_SUBJECT, headers, req.body);
    let reply = match tokio::time::timeout(FORWARD_TIMEOUT, asked).await {
        Ok(Ok(reply)) => reply,
        Ok(Err(e)) if e.kind() == async_nats::RequestErrorKind::NoResponders => {
            return unavailable("the ingest is not running (no responder on NATS)")
        }
        Ok(Err(e)) => return unavailable(&format!("the ingest did not answer: {e}")),
        Err(_) => {
            return ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "ingest_timeout",
                format!(
                    "the ingest did not answer within {} s",
                    FORWARD_TIMEOUT.as_secs()
                ),
            )
            .into_response()
        }
    };
    let status = reply
        .headers
        .as_ref()
        .and_then(|h| h.get(H_STATUS))
        .and_then(|v| v.as_str().parse::<u16>().ok())
        .and_then(|s| StatusCode::from_u16(s).ok())
        .unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = Response::new(Body::from(reply.payload));
    *response.status_mut() = status;
    if let Some(h) = &reply.headers {
        for (name, values) in h.iter() {
            let name: &str = name.as_ref();
            let Some(header) = name.strip_prefix(H_PREFIX) else {
                continue;
            };
            let (Ok(header), Some(value)) = (
                axum::http::HeaderName::from_bytes(header.as_bytes()),
                values
                    .first()
                    .and_then(|v| HeaderValue::from_str(v.as_str()).ok()),
            ) else {
                continue;
            };
            response.headers_mut().insert(header, value);
        }
    }
    response
}

fn unavailable(why: &str) -> Response {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ingest_unavailable", why)
        .retry_after(1)
        .into_response()
}

/// The ingest's end: answers forwarded requests with `router` until `shutdown`.
///
/// # Errors
/// [`crate::ClusterError::Nats`] when the subscription cannot be made.
pub async fn serve(
    client: Client,
    router: Router,
    metrics: ClusterMetrics,
    shutdown: CancellationToken,
) -> Result<(), crate::ClusterError> {
    let mut requests = client
        .subscribe(HTTP_REQUEST_SUBJECT)
        .await
        .map_err(crate::ClusterError::nats)?;
    let limit = client
        .server_info()
        .max_payload
        .saturating_sub(HEADER_ROOM)
        .max(64 * 1024);
    loop {
        let msg = tokio::select! {
            () = shutdown.cancelled() => return Ok(()),
            msg = requests.next() => match msg {
                Some(msg) => msg,
                None => return Ok(()),
            },
        };
        let Some(reply_to) = msg.reply.clone() else {
            continue;
        };
        let (client, router, metrics) = (client.clone(), router.clone(), metrics.clone());
        tokio::spawn(async move {
            let (headers, body) = answer(router, msg.headers.as_ref(), msg.payload, limit).await;
            metrics.forwarded_answered.inc();
            if let Err(e) = client.publish_with_headers(reply_to, headers, body).await {
                tracing::warn!(error = %e, "could not reply to a forwarded request");
            }
        });
    }
}

/// Runs one forwarded request through `router`.
async fn answer(
    router: Router,
    headers: Option<&HeaderMap>,
    body: Bytes,
    limit: usize,
) -> (HeaderMap, Bytes) {
    let get = |name: &str| {
        headers
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
            .unwrap_or_default()
    };
    let peer: SocketAddr = get(H_PEER)
        .parse()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mut builder = Request::builder()
        .method(get(H_METHOD).as_str())
        .uri(get(H_URI));
    if let Some(h) = headers {
        for (name, values) in h.iter() {
            let name: &str = name.as_ref();
            if let (Some(header), Some(value)) = (name.strip_prefix(H_PREFIX), values.first()) {
                builder = builder.header(header, value.as_str());
            }
        }
    }
    let response = match builder.body(Body::from(body)) {
        Ok(mut req) => {
            req.extensions_mut()
                .insert(axum::extract::ConnectInfo(peer));
            match router.oneshot(req).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
        Err(e) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_forwarded_request",
            format!("the gateway forwarded an unusable request: {e}"),
        )
        .into_response(),
    };
    let (parts, body) = response.into_parts();
    let (status, body) = match axum::body::to_bytes(body, limit).await {
        Ok(b) => (parts.status, b),
        Err(_) => {
            let e = ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "response_too_large",
                format!(
                    "the answer is larger than a NATS message ({limit} bytes): narrow the \
                     window (from/to/limit) or ask the ingest directly"
                ),
            )
            .into_response();
            let (p, b) = e.into_parts();
            let b = axum::body::to_bytes(b, 64 * 1024).await.unwrap_or_default();
            let mut out = HeaderMap::new();
            out.insert(H_STATUS, p.status.as_str());
            out.insert(
                format!("{H_PREFIX}content-type").as_str(),
                "application/json",
            );
            return (out, b);
        }
    };
    let mut out = HeaderMap::new();
    out.insert(H_STATUS, status.as_str());
    for name in ["content-type", "retry-after", "cache-control"] {
        if let Some(v) = parts.headers.get(name).and_then(|v| v.to_str().ok()) {
            out.insert(format!("{H_PREFIX}{name}").as_str(), v);
        }
    }
    (out, body)
}
