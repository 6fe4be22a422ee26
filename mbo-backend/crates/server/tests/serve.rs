//! `mbo serve` end to end: the real binary on 127.0.0.1 port 0, replaying real DBN files,
//! checked through HTTP and SSE only.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "serve/harness.rs"]
mod harness;

use std::time::Duration;

use harness::{export_book, export_levels, http, levels, serve, Server, Sse};
use mbo_testkit::mbo_data;
use serde_json::Value;

fn clx5() -> String {
    mbo_data("CLX5_mbo.dbn").display().to_string()
}

const SECOND: Duration = Duration::from_secs(1);

/// Asserts a server book object equals `mbo export-book` at its event index.
fn assert_matches_export(book: &Value, exported: &std::collections::HashMap<u64, Value>) {
    let i = book["event_index"].as_u64().expect("event_index");
    let line = exported
        .get(&i)
        .unwrap_or_else(|| panic!("event_index {i} is not an F_LAST record of export-book"));
    assert_eq!(
        levels(book, "bids"),
        export_levels(line, "bids"),
        "bids at {i}"
    );
    assert_eq!(
        levels(book, "asks"),
        export_levels(line, "asks"),
        "asks at {i}"
    );
    assert_eq!(book["ts_recv"], line["ts_recv"], "ts_recv at {i}");
    assert_eq!(book["ts_event"], line["ts_event"], "ts_event at {i}");
}

fn without_server_ts(mut v: Value) -> Value {
    v.as_object_mut().unwrap().remove("server_ts");
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_streamed_frame_equals_export_book_and_snapshot_equals_rest() {
    let file = clx5();
    let exported = export_book(&file, 10);
    let server = serve(&file, &["--pace", "rate", "--rate", "20000"]);
    server.ready().await;
    let mut sse = Sse::open(
        &server.url("/api/v1/stream?symbol=CLX5&depth=10&interval_ms=20"),
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    let first = sse
        .next_named("snapshot", 5 * SECOND)
        .await
        .expect("snapshot");
    assert_matches_export(&first.json(), &exported);
    let mut frames = 0;
    let mut last_index = first.json()["event_index"].as_u64().unwrap();
    while let Some(ev) = sse.next(2 * SECOND).await {
        match ev.event.as_str() {
            "book" => {
                let b = ev.json();
                assert_matches_export(&b, &exported);
                let i = b["event_index"].as_u64().unwrap();
                assert!(i > last_index, "frames go forward: {i} after {last_index}");
                assert_eq!(ev.id.as_deref(), Some(format!("0-{i}").as_str()));
                last_index = i;
                frames += 1;
            }
            "trade" => {
                let batch = ev.json();
                assert_eq!(batch["symbol"], "CLX5");
                let trades = batch["trades"].as_array().unwrap();
                assert_eq!(batch["count"].as_u64().unwrap() as usize, trades.len());
                let mut prev = last_index;
                assert_eq!(batch["fields"][0], "event_index");
                for t in trades {
                    let i = t[0].as_u64().unwrap();
                    assert!(i > prev, "trades in order, after the frame that holds them");
                    prev = i;
                }
                assert_eq!(ev.id.as_deref(), Some(format!("0-{prev}").as_str()));
            }
            "status" if ev.json()["state"] == "ended" => break,
            _ => {}
        }
    }
    assert!(frames > 20, "only {frames} book frames during the replay");

    // Paused, a new snapshot and the REST book describe the same boundary, identically.
    // At the end, a seek plays again from the target (slowly: 0.1x); pause right after it.
    let (code, st) = server
        .post(
            "/api/v1/replay",
            r#"{"action":"seek","ts":"2025-09-24T20:33:20Z","speed":0.1}"#,
            None,
        )
        .await;
    assert_eq!(code, 200, "{st}");
    let (code, st) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(code, 200);
    assert_eq!(st["state"], "paused");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = Sse::open(&server.url("/api/v1/stream?symbol=CLX5&depth=10"), None).await;
    let snap = again
        .next_named("snapshot", 5 * SECOND)
        .await
        .unwrap()
        .json();
    let (code, rest) = server.get("/api/v1/book/CLX5?depth=10").await;
    assert_eq!(code, 200);
    assert_eq!(
        without_server_ts(snap.clone()),
        without_server_ts(rest.clone())
    );
    assert_eq!(snap["epoch"], 1, "the seek started a new epoch");
    assert_matches_export(&rest, &exported);
    let ts = rest["ts_recv"].as_u64().unwrap();
    assert!(
        (1_758_745_940_000_000_000..1_758_746_001_000_000_000).contains(&ts),
        "position {ts} after the seek"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_event_id_resume_gets_a_snapshot_and_no_duplicates() {
    let file = clx5();
    let server = serve(&file, &["--pace", "rate", "--rate", "5000"]);
    server.ready().await;
    let url = server.url("/api/v1/stream?symbol=CLX5&depth=5&interval_ms=10");
    let mut sse = Sse::open(&url, None).await;
    let mut last_id = None;
    let mut seen = 0;
    while seen < 30 {
        let ev = sse.next(5 * SECOND).await.expect("events");
        if ev.event == "book" || ev.event == "trade" {
            last_id = ev.id.clone();
            seen += 1;
        }
    }
    drop(sse);
    let last_id = last_id.unwrap();
    let (_, last) = last_id.split_once('-').unwrap();
    let last: u64 = last.parse().unwrap();
    let mut resumed = Sse::open(&url, Some(&last_id)).await;
    let mut first_data = None;
    for _ in 0..100 {
        let Some(ev) = resumed.next(2 * SECOND).await else {
            break;
        };
        match ev.event.as_str() {
            "status" => {}
            "snapshot" if first_data.is_none() => first_data = Some(ev),
            _ => {
                assert!(
                    first_data.is_some(),
                    "the first data event of a resume is a snapshot, got {}",
                    ev.event
                );
                let id = ev.id.unwrap();
                let (_, i) = id.split_once('-').unwrap();
                assert!(
                    i.parse::<u64>().unwrap() > last,
                    "{} {id} repeats what the client had (up to {last})",
                    ev.event
                );
            }
        }
    }
    assert!(first_data.is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_json_4xx() {
    let file = clx5();
    let server = serve(&file, &["--start-paused"]);
    // Paused at start: nothing applied yet, so the book is not there; play a little first.
    let (code, _) = server
        .post("/api/v1/replay", r#"{"action":"play","speed":"max"}"#, None)
        .await;
    assert_eq!(code, 200);
    server.ready().await;
    let cases: &[(&str, u16, &str)] = &[
        ("/api/v1/book/NOPE", 404, "unknown_symbol"),
        ("/api/v1/book/CLX5?depth=-1", 400, "bad_request"),
        ("/api/v1/book/CLX5?depth=abc", 400, "bad_request"),
        ("/api/v1/book/CLX5?depth=0", 400, "bad_request"),
        ("/api/v1/book/CLX5?publisher=x", 400, "bad_request"),
        ("/api/v1/book/CLX5?publisher=9", 404, "unknown_publisher"),
        ("/api/v1/book/CLX5/level?side=X&price=1", 400, "bad_request"),
        ("/api/v1/book/CLX5/level?side=B", 400, "bad_request"),
        (
            "/api/v1/book/CLX5/level?side=B&price=abc",
            400,
            "bad_request",
        ),
        ("/api/v1/stream?symbol=NOPE", 404, "unknown_symbol"),
        ("/api/v1/stream?symbol=CLX5&depth=1000", 400, "bad_request"),
        (
            "/api/v1/stream?symbol=CLX5&interval_ms=1",
            400,
            "bad_request",
        ),
        (
            "/api/v1/stream?symbol=CLX5&interval_ms=x",
            400,
            "bad_request",
        ),
        ("/api/v1/stream/mbo?symbol=NOPE", 404, "unknown_symbol"),
        ("/api/v1/nothing-here", 404, "not_found"),
    ];
    for (path, status, code) in cases {
        let (s, body) = server.get(path).await;
        assert_eq!(
            (s, body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{path}: {body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().len() > 5,
            "{path}: {body}"
        );
    }
    let posts: &[(&str, u16, &str)] = &[
        ("{not json", 400, "bad_json"),
        (r#"{"action":"fly"}"#, 400, "bad_request"),
        (r#"{"action":"seek"}"#, 400, "bad_request"),
        (r#"{"action":"seek","ts":"yesterday"}"#, 400, "bad_request"),
        (r#"{"action":"play","speed":0}"#, 400, "bad_request"),
        (r#"{"action":"play","speed":"warp"}"#, 400, "bad_request"),
        (r#"{"action":"play","extra":1}"#, 400, "bad_json"),
    ];
    for (body, status, code) in posts {
        let (s, v) = server.post("/api/v1/replay", body, None).await;
        assert_eq!(
            (s, v["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{body}: {v}"
        );
    }
    // Wrong content type.
    let r = http()
        .post(server.url("/api/v1/replay"))
        .body(r#"{"action":"play"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported_media_type");
    // Wrong method.
    let r = http()
        .delete(server.url("/api/v1/instruments"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "method_not_allowed");
    // The server is still fine, and no request was a 5xx.
    let (s, _) = server.get("/api/v1/book/CLX5?depth=all").await;
    assert_eq!(s, 200);
    let errors_5xx = server.metrics_text().await;
    assert!(
        !errors_5xx
            .lines()
            .any(|l| l.starts_with("mbo_http_requests_total") && l.contains("status=\"5")),
        "{errors_5xx}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_needs_the_token_when_one_is_set() {
    let file = clx5();
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            &file,
            "--pace",
            "rate",
            "--rate",
            "1000",
        ],
        &[("MBO_CONTROL_TOKEN", "s3cret-token")],
    );
    server.ready().await;
    let (s, v) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (s, v) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, Some("wrong"))
        .await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("forbidden")));
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(st["state"], "playing", "a refused command changed nothing");
    assert_eq!(st["control_auth"], "token");
    let (s, st) = server
        .post(
            "/api/v1/replay",
            r#"{"action":"pause"}"#,
            Some("s3cret-token"),
        )
        .await;
    assert_eq!((s, st["state"].as_str()), (200, Some("paused")));
    // The token never appears in what the server says about itself.
    let text = server.metrics_text().await;
    assert!(!text.contains("s3cret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_over_the_cap_get_503_with_retry_after() {
    let file = clx5();
    let server = serve(
        &file,
        &["--max-streams", "3", "--pace", "rate", "--rate", "1000"],
    );
    server.ready().await;
    let mut open = Vec::new();
    for path in [
        "/api/v1/stream?symbol=CLX5",
        "/api/v1/stream",
        "/api/v1/stream/mbo",
    ] {
        let mut s = Sse::open(&server.url(path), None).await;
        assert_eq!(s.status, 200, "{path}");
        assert!(s.next_named("snapshot", 5 * SECOND).await.is_some());
        open.push(s);
    }
    for path in ["/api/v1/stream?symbol=CLX5", "/api/v1/stream/mbo"] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert_eq!(r.headers()["retry-after"], "5");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "too_many_streams");
    }
    assert_eq!(server.metric("mbo_sse_rejected_total").await, Some(2.0));
    drop(open);
    // Slots come back when clients leave.
    let mut deadline = 0;
    loop {
        let s = Sse::open(&server.url("/api/v1/stream/mbo"), None).await;
        if s.status == 200 {
            break;
        }
        deadline += 1;
        assert!(deadline < 100, "slots never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_gauge_returns_to_zero_after_500_abrupt_disconnects() {
    let file = clx5();
    let server = serve(&file, &["--pace", "rate", "--rate", "2000", "--loop"]);
    server.ready().await;
    let addr = server.base.trim_start_matches("http://").to_owned();
    let mut conns = Vec::new();
    for i in 0..500 {
        let path = if i % 5 == 0 {
            "/api/v1/stream/mbo?symbol=CLX5"
        } else {
            "/api/v1/stream?symbol=CLX5&interval_ms=10"
        };
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        use tokio::io::AsyncWriteExt;
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        conns.push(s);
    }
    // Wait until the server counts them all.
    let mut n = 0.0;
    for _ in 0..200 {
        n = server
            .metric("mbo_sse_clients{stream=\"book\"}")
            .await
            .unwrap_or(0.0)
            + server
                .metric("mbo_sse_clients{stream=\"mbo\"}")
                .await
                .unwrap_or(0.0);
        if n >= 500.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(n, 500.0);
    // Abrupt: reset, no FIN handshake.
    for s in conns {
        // Linger 0 makes the close a reset (what an abrupt client does); with 0 the drop
        // cannot block, which is what the deprecation warns about.
        #[allow(deprecated)]
        s.set_linger(Some(Duration::ZERO)).unwrap();
        drop(s);
    }
    let mut left = f64::NAN;
    for _ in 0..300 {
        left = server
            .metric("mbo_sse_clients{stream=\"book\"}")
            .await
            .unwrap_or(0.0)
            + server
                .metric("mbo_sse_clients{stream=\"mbo\"}")
                .await
                .unwrap_or(0.0);
        if left == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(left, 0.0, "clients gauge after the disconnects");
    let (s, _) = server.get("/health/ready").await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_open_streams_and_exits_cleanly() {
    let file = clx5();
    let mut server = serve(&file, &["--pace", "rate", "--rate", "1000"]);
    server.ready().await;
    let mut a = Sse::open(&server.url("/api/v1/stream?symbol=CLX5"), None).await;
    let mut b = Sse::open(&server.url("/api/v1/stream/mbo"), None).await;
    assert!(a.next_named("snapshot", 5 * SECOND).await.is_some());
    assert!(b.next_named("snapshot", 5 * SECOND).await.is_some());
    let status = server.terminate(5 * SECOND);
    assert!(status.success(), "{status:?}");
    // The streams ended (not hung).
    let end = async {
        while a.next(SECOND).await.is_some() {}
        while b.next(SECOND).await.is_some() {}
    };
    tokio::time::timeout(5 * SECOND, end).await.unwrap();
}
