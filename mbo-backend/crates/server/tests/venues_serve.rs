//! `mbo serve --venues` end to end: the real binary follows a real Kraken WS v2 recording
//! played on loopback by the real `mbo venue-sim`, beside the MBO replay, checked through
//! HTTP, SSE and `/metrics` only: the venue book equals a plain replay of the recording, the
//! consolidated book follows it, the streams carry the same event types, bad parameters get
//! JSON 4xx, and when the venue goes away the book turns `syncing` until the venue is back
//! and the book is live again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "serve/harness.rs"]
mod harness;

use std::process::Command;
use std::time::Duration;

use harness::{venue_sim, Server, Sse};
use mbo_testkit::{crypto_data, mbo_data};
use mbo_venues::{Precision, Side, VenueKind, VenueOptions};
use serde_json::Value;

/// `(price, size)` per level.
type Levels = Vec<(i64, String)>;

const KRAKEN: &str = "kraken/python-kraken-sdk_orderbook-v2.json";

/// The recording's final Kraken book, replayed without any network: `(price, size)` per
/// level, sizes as exact decimal strings.
fn expected_book() -> (Levels, Levels) {
    let options = VenueOptions {
        symbols: vec!["BTC/USD".into()],
        depth: Some(10),
        precision: Some(Precision { price: 1, qty: 8 }),
    };
    let text = std::fs::read_to_string(crypto_data(KRAKEN)).unwrap();
    let frames = mbo_venues::fixtures::read_frames(&text).unwrap();
    let mut venue = VenueKind::Kraken.create(&options);
    let mut events = Vec::new();
    for f in &frames {
        venue.on_frame(f.text, &mut events);
    }
    let b = venue.books().get("BTC/USD").unwrap();
    assert_eq!((b.counters.checksum_ok, b.counters.checksum_bad), (510, 0));
    let book = &b.book;
    let side = |s| {
        book.levels(s)
            .map(|l| (l.price, l.level.qty.format(0)))
            .collect::<Vec<_>>()
    };
    (side(Side::Bid), side(Side::Ask))
}

fn levels(book: &Value, side: &str) -> Levels {
    book[side]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["price"].as_i64().unwrap(),
                l["size"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn wait_for(server: &Server, path: &str, what: &str, ok: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..400 {
        let (status, v) = server.get(path).await;
        if status == 200 && ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (_, v) = server.get(path).await;
    panic!("{what}: not reached within 10 s; last {path}: {v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_follows_a_kraken_recording_beside_the_mbo_replay() {
    let file = crypto_data(KRAKEN).display().to_string();
    let sim_args = [
        "--venue",
        "kraken",
        &file,
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
        "--rate",
        "2000",
    ];
    let (mut sim, ws) = venue_sim(&sim_args);
    let clx5 = mbo_data("CLX5_mbo.dbn").display().to_string();
    let venue_url = format!("kraken={ws}");
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            &clx5,
            "--no-db",
            "--venues",
            "kraken",
            "--symbols",
            "BTC-USD",
            "--venue-url",
            &venue_url,
        ],
        &[],
    );
    server.ready().await;
    let (bids, asks) = expected_book();
    assert_eq!((bids.len(), asks.len()), (10, 10));

    // The venue book converges to the replay's final book, exactly, and is live.
    let book = wait_for(
        &server,
        "/api/v1/book/BTC-USD?venue=kraken",
        "kraken final book",
        |b| levels(b, "bids") == bids && levels(b, "asks") == asks,
    )
    .await;
    assert_eq!(book["state"], "live");
    assert_eq!(book["native_symbol"], "BTC/USD");
    assert_eq!(book["crossed"], false);
    assert_eq!(book["best_bid"]["venue"], "kraken");
    // One venue: the consolidated book (the default for a crypto symbol) is its book.
    let (status, cons) = server.get("/api/v1/book/BTC-USD").await;
    assert_eq!(status, 200);
    assert_eq!(cons["venue"], "consolidated");
    assert_eq!(cons["venues"], serde_json::json!(["kraken"]));
    assert_eq!(levels(&cons, "bids"), bids);
    assert_eq!(levels(&cons, "asks"), asks);
    assert_eq!(cons["bids"][0]["venues"]["kraken"], cons["bids"][0]["size"]);

    // Health: connected, every checksum verified, nothing dropped.
    let (_, venues) = server.get("/api/v1/venues").await;
    assert_eq!(venues["symbols"], serde_json::json!(["BTC-USD"]));
    let k = &venues["venues"][0];
    assert_eq!(k["venue"], "kraken");
    assert_eq!(k["state"], "live");
    assert_eq!(k["books_live"], 1);
    assert_eq!(
        (k["gaps"].as_u64(), k["checksum_failures"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(k["messages"].as_u64().unwrap() >= 510, "{k}");

    // Instruments list the MBO books and the crypto books, with their venue.
    let (_, list) = server.get("/api/v1/instruments").await;
    let list = list.as_array().unwrap();
    assert!(list
        .iter()
        .any(|i| i["symbol"] == "CLX5" && i["venue"].is_null()));
    let crypto: Vec<&Value> = list.iter().filter(|i| i["dataset"] == "crypto").collect();
    assert_eq!(crypto.len(), 2);
    assert_eq!(crypto[0]["venue"], "consolidated");
    assert_eq!(crypto[1]["venue"], "kraken");
    assert_eq!(crypto[1]["state"], "live");

    // Streams: the same event types; the venues stream has every book of the symbol.
    let mut one = Sse::open(
        &server.url("/api/v1/stream?symbol=BTC-USD&venue=kraken"),
        None,
    )
    .await;
    let status = one
        .next_named("status", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(status.json()["venues"][0]["venue"], "kraken");
    let snap = one
        .next_named("snapshot", Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(levels(&snap.json(), "bids"), bids);
    let mut all = Sse::open(
        &server.url("/api/v1/stream/venues?symbol=btc-usd&depth=5"),
        None,
    )
    .await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let e = all
            .next_named("snapshot", Duration::from_secs(5))
            .await
            .unwrap();
        let v = e.json();
        assert_eq!(v["bids"].as_array().unwrap().len(), 5);
        seen.push(v["venue"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["consolidated", "kraken"]);
    assert!(all
        .next_named("health", Duration::from_secs(3))
        .await
        .is_some());

    // Metrics, with the venue (and symbol) labels.
    let m = server.metrics_text().await;
    for needle in [
        "mbo_venue_messages_total{venue=\"kraken\"}",
        "mbo_venue_book_live{symbol=\"BTC-USD\",venue=\"kraken\"} 1",
        "mbo_venue_connection_state{venue=\"kraken\"} 2",
        "mbo_venue_checksum_failures_total{symbol=\"BTC-USD\",venue=\"kraken\"} 0",
        "mbo_venue_publish_latency_seconds_count{venue=\"kraken\"}",
    ] {
        assert!(m.contains(needle), "missing {needle} in /metrics");
    }

    // Bad parameters: JSON 4xx, never 5xx.
    for (path, code, want) in [
        ("/api/v1/book/BTC-USD?venue=nope", 404, "unknown_venue"),
        ("/api/v1/book/DOGE-EUR?venue=kraken", 404, "unknown_symbol"),
        (
            "/api/v1/book/BTC-USD?venue=kraken&depth=0",
            400,
            "bad_request",
        ),
        ("/api/v1/stream/venues?symbol=NOPE", 404, "unknown_symbol"),
        (
            "/api/v1/stream?symbol=BTC-USD&venue=kraken&interval_ms=1",
            400,
            "bad_request",
        ),
    ] {
        let (status, v) = server.get(path).await;
        assert_eq!(status, code, "{path}: {v}");
        assert_eq!(v["error"]["code"], want, "{path}: {v}");
    }
    // The MBO side is untouched.
    let (status, clx) = server.get("/api/v1/book/CLX5").await;
    assert_eq!((status, clx["symbol"].as_str()), (200, Some("CLX5")));

    // The venue goes away: the book is unknown (syncing, no levels) until it is back, then
    // live again with the same final book.
    sim.kill().unwrap();
    let _ = sim.wait();
    let gone = wait_for(
        &server,
        "/api/v1/book/BTC-USD?venue=kraken",
        "book dropped",
        |b| b["state"] == "syncing",
    )
    .await;
    assert!(gone["bids"].as_array().unwrap().is_empty());
    let port = ws
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_owned();
    let bind = format!("127.0.0.1:{port}");
    let mut again = sim_args.to_vec();
    again.extend(["--bind", &bind]);
    let (mut sim, _) = venue_sim(&again);
    let back = wait_for(
        &server,
        "/api/v1/book/BTC-USD?venue=kraken",
        "book back",
        |b| b["state"] == "live" && levels(b, "bids") == bids && levels(b, "asks") == asks,
    )
    .await;
    assert_eq!(back["stale"], false);
    let (_, venues) = server.get("/api/v1/venues").await;
    assert!(venues["venues"][0]["reconnects"].as_u64().unwrap() >= 1);
    sim.kill().unwrap();
    let _ = sim.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_the_venues_alone_with_no_mbo_busy_polling() {
    let file = crypto_data(KRAKEN).display().to_string();
    let (mut sim, ws) = venue_sim(&[
        "--venue",
        "kraken",
        &file,
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
        "--rate",
        "2000",
    ]);
    let venue_url = format!("kraken={ws}");
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--no-mbo",
            "--venues",
            "kraken",
            "--symbols",
            "BTC-USD",
            "--venue-url",
            &venue_url,
            // The venue thread polls instead of sleeping: the same books must come out.
            "--venue-busy-poll",
        ],
        &[("MBO_DB", "should-not-be-created.db")],
    );
    // Ready at once: there is no MBO feed to wait for.
    server.ready().await;
    let (_, ready) = server.get("/health/ready").await;
    assert_eq!(ready["books"], 2, "{ready}");
    let (bids, asks) = expected_book();
    wait_for(
        &server,
        "/api/v1/book/BTC-USD",
        "consolidated final book",
        |b| levels(b, "bids") == bids && levels(b, "asks") == asks,
    )
    .await;
    let (_, list) = server.get("/api/v1/instruments").await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|i| i["dataset"] == "crypto"), "{list:?}");
    // Nothing to control, said plainly.
    let (status, v) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (409, Some("not_controllable"))
    );
    sim.kill().unwrap();
    let _ = sim.wait();

    // Without venues there would be nothing to serve: a one-line error, exit code 2.
    let out = Command::new(assert_cmd::cargo::cargo_bin("mbo"))
        .args(["serve", "--bind", "127.0.0.1:0", "--no-mbo"])
        .env_remove("MBO_VENUES")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--no-mbo needs --venues"), "{err}");
}
