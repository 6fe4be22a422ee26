#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo loadtest` end to end: the real binary against a tiny real SSE server started in the
//! test on 127.0.0.1 (an axum app speaking the server's wire format: a `snapshot`, then
//! `book`/`trade` events with `server_ts` first, keep-alive comments, and a route that
//! answers 503 with a JSON error and `Retry-After`, as `mbo serve` does over its cap).

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use assert_cmd::Command;
use axum::extract::RawQuery;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures::stream::{self, Stream};
use serde_json::{json, Value};

/// Time between two events of the test stream; keep-alives come in the gaps.
const EVENT_GAP: Duration = Duration::from_millis(150);

fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        [(header::RETRY_AFTER, "1")],
        Json(json!({ "error": { "code": code, "message": message } })),
    )
        .into_response()
}

/// The book stream: snapshot, then books (every fifth a trade), `server_ts` first.
fn events() -> impl Stream<Item = Result<Event, Infallible>> {
    stream::unfold(0u64, |i| async move {
        if i > 0 {
            tokio::time::sleep(EVENT_GAP).await;
        }
        let name = match i {
            0 => "snapshot",
            i if i % 5 == 0 => "trade",
            _ => "book",
        };
        let data = format!(
            r#"{{"server_ts":{},"symbol":"TEST","seq":{i},"bids":[["70.01",3]],"asks":[]}}"#,
            unix_ns()
        );
        let event = Event::default().event(name).id(format!("0-{i}")).data(data);
        Some((Ok(event), i + 1))
    })
}

async fn stream_handler(RawQuery(query): RawQuery) -> Response {
    // The load test must send exactly the parameters it was given.
    if query.as_deref() != Some("symbol=TEST&depth=10&interval_ms=50") {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_query",
            &format!("unexpected query {query:?}"),
        );
    }
    Sse::new(events())
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_millis(40))
                .text("keep-alive"),
        )
        .into_response()
}

async fn full_handler() -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "too_many_streams",
        "the stream limit is reached",
    )
}

/// Starts the server on 127.0.0.1:0; returns its runtime (keep it alive) and port.
fn start_server() -> (tokio::runtime::Runtime, u16) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/api/v1/stream", get(stream_handler))
        .route("/full/api/v1/stream", get(full_handler));
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, port)
}

fn loadtest(args: &[&str]) -> Value {
    let out = Command::cargo_bin("mbo")
        .unwrap()
        .arg("loadtest")
        .args(args)
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "status {:?}, stderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "one JSON object: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn streams_from_every_client() {
    let (_rt, port) = start_server();
    let url = format!("http://127.0.0.1:{port}");
    let pid = std::process::id().to_string();
    let r = loadtest(&[
        "--url",
        &url,
        "--clients",
        "20",
        "--duration",
        "2s",
        "--symbol",
        "TEST",
        "--pid",
        &pid,
        "--json",
    ]);
    assert_eq!(r["clients"], 20, "{r:#}");
    assert_eq!(r["connected"], 20, "{r:#}");
    assert_eq!(r["complete"], 20, "{r:#}");
    assert_eq!(r["errors"], json!({}), "{r:#}");

    // Every client got its snapshot, and at 150 ms a dozen frames in 2 s.
    assert_eq!(r["events"]["snapshot"], 20);
    assert_eq!(r["snapshot_ms"]["count"], 20);
    assert!(r["snapshot_ms"]["p50"].as_f64().unwrap() >= 0.0);
    let frames = &r["frames_per_client"];
    assert!(frames["min"].as_u64().unwrap() >= 5, "{frames}");
    assert!(frames["mean"].as_f64().unwrap() >= frames["min"].as_f64().unwrap());
    assert!(frames["max"].as_u64().unwrap() <= 20, "{frames}");
    assert!(r["events"]["book"].as_u64().unwrap() > 0);
    assert!(r["events"]["trade"].as_u64().unwrap() > 0);

    // Latency is measured, small (same machine) and ordered.
    for summary in [
        &r["latency_ms"],
        &r["latency_ms_by_event"]["book"],
        &r["latency_ms_by_event"]["trade"],
        &r["latency_ms_by_event"]["snapshot"],
    ] {
        let p50 = summary["p50"].as_f64().unwrap();
        let p99 = summary["p99"].as_f64().unwrap();
        let max = summary["max"].as_f64().unwrap();
        assert!(0.0 <= p50 && p50 <= p99 && p99 <= max, "{summary}");
        assert!(max < 1000.0, "{summary}");
    }
    // Live updates only: books and trades, not snapshots.
    let live = r["events"]["book"].as_u64().unwrap() + r["events"]["trade"].as_u64().unwrap();
    assert_eq!(r["latency_ms"]["count"].as_u64().unwrap(), live);

    assert!(r["bytes"].as_u64().unwrap() > 0);
    assert!(r["bytes_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(r["records"], 0);
    assert_eq!(r["lagged"], json!({ "events": 0, "skipped": 0 }));
    assert!(r["keepalives"].as_u64().unwrap() > 0, "{r:#}");
    assert_eq!(r["bad_payload_events"], 0);
    let duration = r["duration_s"].as_f64().unwrap();
    assert!((2.0..10.0).contains(&duration), "{duration}");
    assert!(r["server_rss_mb"]["max"].as_f64().unwrap() > 0.0);
    assert!(r["server_rss_mb"]["last"].as_f64().unwrap() > 0.0);
}

#[test]
fn reports_503_per_client() {
    let (_rt, port) = start_server();
    let url = format!("http://127.0.0.1:{port}/full");
    let r = loadtest(&[
        "--url",
        &url,
        "--clients",
        "20",
        "--duration",
        "1s",
        "--json",
    ]);
    assert_eq!(r["clients"], 20, "{r:#}");
    assert_eq!(r["connected"], 0, "{r:#}");
    assert_eq!(r["complete"], 0, "{r:#}");
    assert_eq!(r["errors"], json!({ "http_503": 20 }), "{r:#}");
    let example = r["error_examples"]["http_503"].as_str().unwrap();
    assert!(example.contains("too_many_streams"), "{example}");
    assert!(example.contains("Retry-After: 1"), "{example}");
    assert!(r["latency_ms"]["p50"].is_null());
    assert!(r["frames_per_client"]["min"].is_null());
}

#[test]
fn table_output() {
    let (_rt, port) = start_server();
    let url = format!("http://127.0.0.1:{port}");
    let out = Command::cargo_bin("mbo")
        .unwrap()
        .args([
            "loadtest",
            "--url",
            &url,
            "--clients",
            "3",
            "--duration",
            "500ms",
        ])
        .args(["--symbol", "TEST"])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("3 started"), "{table}");
    assert!(table.contains("3 complete"), "{table}");
    assert!(table.contains("latency"), "{table}");
}

#[test]
fn refuses_non_loopback_without_a_request() {
    for url in ["http://10.0.0.1:8080", "http://example.com"] {
        let out = Command::cargo_bin("mbo")
            .unwrap()
            .args(["loadtest", "--url", url, "--duration", "1s"])
            .timeout(Duration::from_secs(10))
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("only loopback hosts"), "{stderr}");
        assert!(out.stdout.is_empty());
    }
}
