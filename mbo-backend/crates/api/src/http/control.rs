//! `GET`/`POST /api/v1/replay`: the state of the shared replay, and control of it.
//!
//! Control changes what every client sees, so it is guarded: with `MBO_CONTROL_TOKEN` set, a
//! request needs `Authorization: Bearer <token>` (compared in constant time); without a
//! token, only loopback clients may control. There is no built-in credential.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use mbo_feed::{Pace, ReplayCommand, ReplayStatus};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::engine::unix_ns;
use crate::error::ApiError;
use crate::http::AppState;
use crate::hub::{Health, Hub};

/// The replay's state.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StatusJson {
    /// Unix ns of this status.
    pub server_ts: u64,
    /// `file`, `simulator`, `historical` or `live`.
    pub source: &'static str,
    /// The file's name, the simulator's seed, the dataset.
    pub description: String,
    /// Databento dataset (`SIM` for the simulator).
    pub dataset: String,
    /// `playing`, `paused`, `ended`, or `live` for sources that cannot be controlled.
    pub state: &'static str,
    /// `max`, `rate` or `realtime` (null for live sources).
    pub pace: Option<&'static str>,
    /// Realtime speed factor.
    pub speed: Option<f64>,
    /// Records per second at `rate` pace.
    pub rate: Option<u64>,
    /// `ts_recv` (ns) of the last released record.
    pub position_ts: Option<u64>,
    /// Fraction of the source played, 0–1.
    pub progress: Option<f64>,
    /// Stream index of the next record.
    pub next_index: Option<u64>,
    /// Records released since start, over every loop and seek.
    pub released: Option<u64>,
    /// Feed epoch (resets so far).
    pub epoch: u64,
    /// First `ts_recv` (ns) of the source, when known.
    pub start_ts: Option<u64>,
    /// Last `ts_recv` (ns) of the source, when known.
    pub end_ts: Option<u64>,
    /// Records in the source, when known.
    pub record_count: Option<u64>,
    /// Whether `POST /api/v1/replay` can work for this source.
    pub controllable: bool,
    /// `token` (a bearer token is required) or `loopback` (loopback clients only).
    pub control_auth: &'static str,
    /// `starting`, `ready`, `failed`, or `stale` (a gateway whose books may be behind its
    /// ingest's).
    pub health: &'static str,
    /// Why the server is not ready (`null` when ready).
    pub health_detail: Option<String>,
}

/// The status of the hub's feed now.
pub fn status_json(hub: &Hub, token_set: bool) -> StatusJson {
    let m = &hub.feed.metadata;
    let status: Option<ReplayStatus> = hub.replay.as_ref().map(|r| r.status());
    let health = hub.health();
    let (state, pace, speed, rate) = match &status {
        None => ("live", None, None, None),
        Some(s) => {
            let (p, speed, rate) = match s.pace {
                Pace::Max => ("max", None, None),
                Pace::Rate(n) => ("rate", None, Some(n)),
                Pace::Realtime { speed } => ("realtime", Some(speed), None),
            };
            (s.state.label(), Some(p), speed, rate)
        }
    };
    StatusJson {
        server_ts: unix_ns(),
        source: hub.feed.source,
        description: hub.feed.description.clone(),
        dataset: m.dataset.clone(),
        state,
        pace,
        speed,
        rate,
        position_ts: status.as_ref().map(|s| s.position_ts),
        progress: status.as_ref().map(|s| s.progress),
        next_index: status.as_ref().map(|s| s.next_index),
        released: status.as_ref().map(|s| s.released),
        epoch: hub.epoch(),
        start_ts: m.start_ts,
        end_ts: m.end_ts,
        record_count: m.record_count,
        controllable: hub.replay.is_some(),
        control_auth: if token_set { "token" } else { "loopback" },
        health: health.label(),
        health_detail: match health {
            Health::Failed(why) | Health::Stale(why) => Some(why),
            Health::Starting => Some("waiting for the feed's first event".into()),
            Health::Ready => None,
        },
    }
}

/// A replay command.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandJson {
    /// `play`, `pause`, `seek`, or `speed` (only change the pace).
    pub action: String,
    /// A realtime speed factor (0.1–1000), or `"max"` for as fast as possible. Applied with
    /// any action.
    #[schema(value_type = Option<serde_json::Value>)]
    pub speed: Option<serde_json::Value>,
    /// Seek target: Unix ns, or an RFC 3339 time (`2025-10-08T14:30:00.123Z`).
    #[schema(value_type = Option<serde_json::Value>)]
    pub ts: Option<serde_json::Value>,
}

/// `GET /api/v1/replay`.
#[utoipa::path(get, path = "/api/v1/replay", tag = "replay",
    responses((status = 200, description = "Replay state", body = StatusJson)))]
pub async fn status(State(s): State<AppState>) -> Json<StatusJson> {
    Json(status_json(&s.hub, s.config.control_token.is_some()))
}

/// `POST /api/v1/replay`.
#[utoipa::path(post, path = "/api/v1/replay", tag = "replay", request_body = CommandJson,
    responses(
        (status = 200, description = "Command applied; the new state", body = StatusJson),
        (status = 400, description = "Malformed or invalid command"),
        (status = 401, description = "Token required"),
        (status = 403, description = "Wrong token, or not loopback"),
        (status = 409, description = "The source cannot be controlled (live)")))]
pub async fn command(
    State(s): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<CommandJson>, JsonRejection>,
) -> Result<Json<StatusJson>, ApiError> {
    authorize(s.config.control_token.as_ref(), peer, &headers)?;
    let Json(cmd) = body.map_err(|e| match e {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the command as JSON (Content-Type: application/json)",
        ),
        other => ApiError::new(StatusCode::BAD_REQUEST, "bad_json", other.body_text()),
    })?;
    let Some(replay) = s.hub.replay.as_ref() else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_controllable",
            format!(
                "the {} source cannot be paused or sought",
                s.hub.feed.source
            ),
        ));
    };
    let mut commands = Vec::with_capacity(2);
    if let Some(v) = &cmd.speed {
        commands.push(ReplayCommand::SetPace(parse_speed(v)?));
    }
    match cmd.action.as_str() {
        "play" => commands.push(ReplayCommand::Play),
        "pause" => commands.push(ReplayCommand::Pause),
        "seek" => {
            let ts = cmd
                .ts
                .as_ref()
                .ok_or_else(|| ApiError::bad_request("seek needs ts (Unix ns or RFC 3339)"))?;
            let ts = parse_ts(ts)?;
            commands.push(seek_command(&s, ts).await);
        }
        "speed" if cmd.speed.is_some() => {}
        "speed" => return Err(ApiError::bad_request("action speed needs speed")),
        other => {
            return Err(ApiError::bad_request(format!(
                "unknown action {other:?}: use play, pause, seek or speed"
            )))
        }
    }
    let mut watch = replay.status.clone();
    watch.mark_unchanged();
    for c in commands {
        replay
            .send(c)
            .await
            .map_err(|e| ApiError::new(StatusCode::CONFLICT, "replay_stopped", e.to_string()))?;
    }
    // The replay applies commands between batches: wait (briefly) until its status shows
    // it, so the answer and the next GET agree.
    let _ = tokio::time::timeout(Duration::from_millis(500), watch.changed()).await;
    s.hub.control_changed();
    Ok(Json(status_json(&s.hub, s.config.control_token.is_some())))
}

/// A seek to `ts`: from the latest stored checkpoint round at or before `ts` when storage
/// has one (the replay skips the records before it and the engine restores the round's
/// books), else from the start of the source.
async fn seek_command(s: &AppState, ts: u64) -> ReplayCommand {
    let Some(storage) = s.storage.clone() else {
        return ReplayCommand::Seek(ts);
    };
    let round = tokio::task::spawn_blocking(move || {
        mbo_store::Store::open(&storage.path)?.round_at(storage.session, ts)
    })
    .await;
    match round {
        Ok(Ok(Some(index))) => ReplayCommand::SeekFrom {
            index: index + 1,
            ts,
        },
        Ok(Ok(None)) => ReplayCommand::Seek(ts),
        other => {
            tracing::warn!(?other, "no checkpoint lookup: seeking from the start");
            ReplayCommand::Seek(ts)
        }
    }
}

/// Whether a request from `peer` with `headers` may control the replay.
fn authorize(
    token: Option<&crate::config::Secret>,
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    match token {
        Some(token) => {
            let given = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "replay control needs Authorization: Bearer <MBO_CONTROL_TOKEN>",
                    )
                })?;
            if bool::from(given.trim().as_bytes().ct_eq(token.expose().as_bytes())) {
                Ok(())
            } else {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "wrong control token",
                ))
            }
        }
        None if peer.ip().is_loopback() => Ok(()),
        None => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "replay control is accepted only from loopback clients when MBO_CONTROL_TOKEN is not set",
        )),
    }
}

fn parse_speed(v: &serde_json::Value) -> Result<Pace, ApiError> {
    let pace = match v {
        serde_json::Value::String(s) if s == "max" => Pace::Max,
        serde_json::Value::Number(n) => Pace::Realtime {
            speed: n.as_f64().unwrap_or(f64::NAN),
        },
        _ => {
            return Err(ApiError::bad_request(
                "speed must be a number (0.1–1000) or \"max\"",
            ))
        }
    };
    pace.validate()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    Ok(pace)
}

/// A time as Unix ns (integer or digit string) or RFC 3339.
///
/// # Errors
/// 400 for anything else.
pub fn parse_ts(v: &serde_json::Value) -> Result<u64, ApiError> {
    match v {
        serde_json::Value::Number(n) => n
            .as_u64()
            .ok_or_else(|| ApiError::bad_request("ts must be a non-negative integer of ns")),
        serde_json::Value::String(s) => parse_ts_str(s),
        _ => Err(ApiError::bad_request(
            "ts must be Unix ns or an RFC 3339 time",
        )),
    }
}

/// [`parse_ts`] for text.
///
/// # Errors
/// 400 when `s` is neither.
pub fn parse_ts_str(s: &str) -> Result<u64, ApiError> {
    let s = s.trim();
    if let Ok(n) = s.parse::<u64>() {
        return Ok(n);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|_| {
            ApiError::bad_request(format!("ts {s:?} is neither Unix ns nor an RFC 3339 time"))
        })?;
    u64::try_from(t.unix_timestamp_nanos())
        .map_err(|_| ApiError::bad_request(format!("ts {s:?} is before 1970")))
}

/// True when a state change (not only a position change) separates two statuses.
pub fn state_changed(a: &StatusJson, b: &StatusJson) -> bool {
    a.state != b.state
        || a.pace != b.pace
        || a.speed != b.speed
        || a.rate != b.rate
        || a.epoch != b.epoch
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn times_parse_as_ns_or_rfc3339() {
        assert_eq!(parse_ts(&json!(5)).unwrap(), 5);
        assert_eq!(parse_ts(&json!("17")).unwrap(), 17);
        assert_eq!(
            parse_ts(&json!("1970-01-01T00:00:01.5Z")).unwrap(),
            1_500_000_000
        );
        assert!(parse_ts(&json!(-1)).is_err());
        assert!(parse_ts(&json!("yesterday")).is_err());
        assert!(parse_ts(&json!(true)).is_err());
    }

    #[test]
    fn control_without_a_token_is_for_loopback_only() {
        let h = HeaderMap::new();
        let lo: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lo6: SocketAddr = "[::1]:5000".parse().unwrap();
        let lan: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        assert!(authorize(None, lo, &h).is_ok());
        assert!(authorize(None, lo6, &h).is_ok());
        let e = authorize(None, lan, &h).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, "forbidden"));
    }

    #[test]
    fn with_a_token_the_peer_does_not_matter_only_the_token() {
        let token = crate::config::Secret::new("t0k");
        let lan: SocketAddr = "192.0.2.7:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        assert_eq!(
            authorize(Some(&token), lan, &h).unwrap_err().status,
            StatusCode::UNAUTHORIZED
        );
        h.insert(header::AUTHORIZATION, "Bearer nope".parse().unwrap());
        assert_eq!(
            authorize(Some(&token), lan, &h).unwrap_err().status,
            StatusCode::FORBIDDEN
        );
        h.insert(header::AUTHORIZATION, "Bearer t0k".parse().unwrap());
        assert!(authorize(Some(&token), lan, &h).is_ok());
        let lo: SocketAddr = "127.0.0.1:1".parse().unwrap();
        h.insert(header::AUTHORIZATION, "Basic t0k".parse().unwrap());
        assert!(
            authorize(Some(&token), lo, &h).is_err(),
            "loopback needs the token too"
        );
    }

    #[test]
    fn speeds_are_validated() {
        assert_eq!(parse_speed(&json!("max")).unwrap(), Pace::Max);
        assert_eq!(
            parse_speed(&json!(2)).unwrap(),
            Pace::Realtime { speed: 2.0 }
        );
        assert!(parse_speed(&json!(0)).is_err());
        assert!(parse_speed(&json!(5000)).is_err());
        assert!(parse_speed(&json!("fast")).is_err());
    }
}
