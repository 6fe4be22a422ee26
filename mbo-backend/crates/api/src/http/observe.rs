//! `GET /metrics` and the middleware that times every request by route template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::AppState;
use crate::hub::Health;

/// `GET /metrics`: Prometheus text. Replay gauges are read from the replay's status now.
#[utoipa::path(get, path = "/metrics", tag = "observability",
    responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn metrics(State(s): State<AppState>) -> Response {
    let m = &s.metrics;
    m.ready.set(i64::from(s.hub.health() == Health::Ready));
    if let Some(r) = &s.hub.replay {
        let st = r.status();
        m.replay_position.set(st.position_ts as f64 / 1e9);
        m.replay_progress.set(st.progress);
        m.replay_speed.set(match (st.state, st.pace) {
            (mbo_feed::PlayState::Playing, mbo_feed::Pace::Realtime { speed }) => speed,
            (mbo_feed::PlayState::Playing, mbo_feed::Pace::Max) => -1.0,
            (mbo_feed::PlayState::Playing, mbo_feed::Pace::Rate(_)) => 1.0,
            _ => 0.0,
        });
    }
    if let Some(storage) = &s.storage {
        m.record_storage_state(storage);
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        m.encode(),
    )
        .into_response()
}

/// Counts and times requests, labelled by the matched route template (never the raw path,
/// whose cardinality a client controls); unmatched paths are labelled `unmatched`.
pub async fn track(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let resp = next.run(req).await;
    let status = resp.status();
    s.metrics
        .http_seconds
        .with_label_values(&[&route, &method])
        .observe(started.elapsed().as_secs_f64());
    s.metrics
        .http_requests
        .with_label_values(&[&route, &method, status.as_str()])
        .inc();
    if status.is_server_error() {
        tracing::warn!(%route, %method, status = status.as_u16(), "server error");
    }
    resp
}
