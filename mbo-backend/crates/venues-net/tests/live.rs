//! The live connector (not a test double) against loopback WebSocket + REST servers that
//! serve the real recordings of `shared/data/crypto` in each venue's framing: subscribe
//! messages checked, ping/pong, the server drops the connection mid-stream (TCP close,
//! close frame, or silence) → reconnect, resubscribe or new REST snapshot, and the final
//! books equal a plain replay of the whole recording.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{
    assert_same_books, drain, http_server, read, recv_json, replay_venue, send_all, text_levels,
    wait_health, WsServer,
};
use futures_util::{SinkExt, StreamExt};
use mbo_venues::fixtures::{read_cryptofeed_http, read_frames};
use mbo_venues::{Precision, Side, VenueKind, VenueOptions};
use mbo_venues_net::{spawn, Backoff, CancellationToken, ConnState, ConnectionConfig};
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;

/// Whole-test limit.
const TEST: Duration = Duration::from_secs(9);

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        fast_attempts: 3,
        floor: Duration::from_millis(200),
        stable_after: Duration::from_secs(30),
    }
}

/// Levels as JSON `[["p","q"], ...]` (Binance, Bybit, Coinbase legacy).
fn pairs(levels: &[(String, String)]) -> Value {
    Value::Array(levels.iter().map(|(p, q)| json!([p, q])).collect())
}

/// Levels as Kraken v2 objects with JSON numbers carrying the venue's digits.
fn kraken_levels(levels: &[(String, String)]) -> String {
    let items: Vec<String> = levels
        .iter()
        .map(|(p, q)| format!(r#"{{"price":{p},"qty":{q}}}"#))
        .collect();
    format!("[{}]", items.join(","))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_v2_reconnects_after_tcp_drop_and_checksums_stay_ok() {
    timeout(TEST, kraken_v2())
        .await
        .expect("test took too long");
}

async fn kraken_v2() {
    let text = read("kraken/python-kraken-sdk_orderbook-v2.json");
    let frames = read_frames(&text).unwrap();
    assert_eq!(frames.len(), 510);
    let precision = Some(Precision { price: 1, qty: 8 });
    let options = VenueOptions {
        symbols: vec!["BTC/USD".into()],
        depth: Some(10),
        precision,
    };
    let cut = 300;
    let expected = replay_venue(VenueKind::Kraken, &frames, &[], &options);
    let at_cut = replay_venue(VenueKind::Kraken, &frames[..cut], &[], &options);
    let book_at_cut = &at_cut.books().get("BTC/USD").unwrap().book;
    // The snapshot Kraken would send on resubscribing at the cut.
    let snapshot = format!(
        r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"BTC/USD","bids":{},"asks":{},"checksum":{}}}]}}"#,
        kraken_levels(&text_levels(at_cut.as_ref(), "BTC/USD", Side::Bid)),
        kraken_levels(&text_levels(at_cut.as_ref(), "BTC/USD", Side::Ask)),
        mbo_venues::kraken::checksum(book_at_cut, precision),
    );

    // A venue that is down (nothing listens on its port) beside it must not stall it.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut dead_cfg = ConnectionConfig::new(VenueKind::Coinbase, &["BTC-USD"]).unwrap();
    dead_cfg.ws_url = format!("ws://127.0.0.1:{dead_port}");
    dead_cfg.backoff = fast_backoff();
    let dead_cancel = CancellationToken::new();
    let mut dead = spawn(dead_cfg, None, dead_cancel.clone()).unwrap();

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
    cfg.ws_url.clone_from(&server.url);
    cfg.precision = precision;
    cfg.ping_interval = Some(Duration::from_millis(50));
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
    let mut handle = spawn(cfg, Some(tx), cancel.clone()).unwrap();

    let sub_book = json!({"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true},"req_id":1});
    let sub_trade = json!({"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"],"snapshot":false},"req_id":2});
    // The pairs' printed decimals (this recording gets them from `cfg.precision` instead).
    let sub_instrument =
        json!({"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":3});

    // Session 1: the recording up to the cut, then the server drops TCP (no close frame).
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, sub_book);
    assert_eq!(recv_json(&mut ws).await, sub_trade);
    assert_eq!(recv_json(&mut ws).await, sub_instrument);
    send_all(&mut ws, frames[..cut].iter().map(|f| f.text)).await;
    ws.get_mut().shutdown().await.unwrap();
    tokio::spawn(drain(ws));

    // Session 2: subscribed again; a ping is answered, then a fresh snapshot and the rest.
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, sub_book);
    assert_eq!(recv_json(&mut ws).await, sub_trade);
    assert_eq!(recv_json(&mut ws).await, sub_instrument);
    let ping = recv_json(&mut ws).await;
    assert_eq!(ping["method"], "ping", "{ping}");
    assert!(ping["req_id"].is_u64(), "{ping}");
    let pong = json!({"method":"pong","req_id":ping["req_id"],"time_in":"2023-01-01T00:00:00.000000Z","time_out":"2023-01-01T00:00:00.000001Z"});
    let pong = pong.to_string();
    let mut second = vec![pong.as_str(), snapshot.as_str()];
    second.extend(frames[cut..].iter().map(|f| f.text));
    let total = (cut + second.len()) as u64;
    send_all(&mut ws, second).await;
    tokio::spawn(drain(ws));

    let h = wait_health(&mut handle.health, |h| {
        h.messages == total && h.books_live == 1 && h.state == ConnState::Live
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!((h.reconnects, h.connects), (1, 2), "{h:?}");
    assert_eq!((h.gaps, h.checksum_failures, h.resyncs), (0, 0, 0), "{h:?}");
    assert!(h.pings_sent >= 1, "{h:?}");
    let b = venue.books().get("BTC/USD").unwrap();
    // Every book message was verified: 300 + the new snapshot + 210, all checksums OK.
    assert_eq!(
        (b.counters.checksum_ok, b.counters.checksum_bad),
        (511, 0),
        "{:?}",
        b.counters
    );
    assert_same_books(venue.as_ref(), expected.as_ref());
    // Events reached the consumer: a snapshot per session, nothing dropped.
    // The reconnect told the consumer to drop its copy of the book (a `Reset` between the
    // two sessions' snapshots).
    let mut kinds = Vec::new();
    while let Ok(u) = rx.try_recv() {
        assert_eq!(u.lagged, 0);
        match u.event {
            mbo_venues::Event::Snapshot { .. } | mbo_venues::Event::Reset { .. } => {
                assert_eq!(&*u.symbol, "BTC/USD");
                kinds.push(matches!(u.event, mbo_venues::Event::Reset { .. }));
            }
            _ => {}
        }
    }
    assert_eq!(kinds, [false, true, false], "snapshot, reset, snapshot");
    // Meanwhile the dead venue kept retrying on its own.
    let d = wait_health(&mut dead.health, |h| h.reconnects >= 2).await;
    assert_eq!((d.connects, d.messages), (0, 0), "{d:?}");
    dead_cancel.cancel();
    let dead_venue = dead.join().await.unwrap();
    assert!(dead_venue.books().all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_spot_rest_snapshot_bridges_again_after_server_close() {
    timeout(TEST, binance_spot())
        .await
        .expect("test took too long");
}

async fn binance_spot() {
    let ws_text = read("binance/cryptofeed_BINANCE.ws.1.0");
    let http_text = read("binance/cryptofeed_BINANCE.http.0.0");
    let frames = read_frames(&ws_text).unwrap();
    let snaps = read_cryptofeed_http(&http_text).unwrap();
    assert_eq!((frames.len(), snaps.len()), (265, 4));
    let symbols = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"];
    let options = VenueOptions::default();
    let expected = replay_venue(VenueKind::Binance, &frames, &snaps, &options);
    // Session 1 carries frames[..cut]; session 2 resumes `overlap` frames earlier (diffs the
    // new snapshot already covers: dropped by the bridging rule).
    let (cut, overlap) = (200, 10);
    let at_cut = replay_venue(VenueKind::Binance, &frames[..cut], &snaps, &options);
    // REST: the recorded snapshots on session 1, the book at the cut afterwards.
    let mut recorded = std::collections::HashMap::new();
    let mut fresh = std::collections::HashMap::new();
    for s in &snaps {
        recorded.insert(s.symbol.clone(), s.body.to_owned());
        let b = at_cut.books().get(&s.symbol).unwrap();
        assert_eq!(b.state, mbo_venues::SyncState::Live);
        let body = json!({
            "lastUpdateId": b.last_id,
            "bids": pairs(&text_levels(at_cut.as_ref(), &s.symbol, Side::Bid)),
            "asks": pairs(&text_levels(at_cut.as_ref(), &s.symbol, Side::Ask)),
        });
        fresh.insert(s.symbol.clone(), body.to_string());
    }
    let session = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    let paths = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let handler = {
        let session = session.clone();
        let paths = paths.clone();
        Arc::new(move |path: &str| {
            paths.lock().unwrap().push(path.to_owned());
            let symbol = path
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("symbol="))
                .unwrap_or_default();
            let table = if session.load(std::sync::atomic::Ordering::SeqCst) == 1 {
                &recorded
            } else {
                &fresh
            };
            table.get(symbol).cloned().unwrap_or_default()
        })
    };
    let (rest_url, mut rest_count) = http_server(handler).await;

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Binance, &symbols).unwrap();
    cfg.ws_url = format!("{}/ws", server.url);
    cfg.rest_url = rest_url;
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.snapshot_delay = Duration::from_millis(300);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();

    let subscribe = json!({"method":"SUBSCRIBE","params":[
        "nknusdt@depth@100ms","nknusdt@trade","blzeth@depth@100ms","blzeth@trade",
        "lrcbtc@depth@100ms","lrcbtc@trade","runeeur@depth@100ms","runeeur@trade"],"id":1});
    let ack = r#"{"result":null,"id":1}"#;

    // Session 1: subscribe checked; a server ping must come back as a pong with its payload;
    // frames up to the cut; once the four snapshots were served, a close frame.
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    ws.send(Message::Ping(b"mbo-ping-1".to_vec().into()))
        .await
        .unwrap();
    loop {
        let m = timeout(common::STEP, ws.next())
            .await
            .expect("no pong in time")
            .unwrap()
            .unwrap();
        if let Message::Pong(p) = m {
            assert_eq!(&p[..], b"mbo-ping-1");
            break;
        }
    }
    let mut first = vec![ack];
    first.extend(frames[..cut].iter().map(|f| f.text));
    send_all(&mut ws, first).await;
    timeout(common::STEP, rest_count.wait_for(|n| *n >= 4))
        .await
        .expect("session 1 snapshots not requested in time")
        .unwrap();
    session.store(2, std::sync::atomic::Ordering::SeqCst);
    ws.close(None).await.unwrap();
    tokio::spawn(drain(ws));

    // Session 2: subscribed again, the stream resumes; the connector fetches new snapshots
    // and bridges them.
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    let mut second = vec![ack];
    second.extend(frames[cut - overlap..].iter().map(|f| f.text));
    let total = (1 + cut + second.len()) as u64;
    send_all(&mut ws, second).await;
    tokio::spawn(drain(ws));

    let h = wait_health(&mut handle.health, |h| {
        h.messages == total && h.books_live == 4 && h.connects == 2
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!(h.reconnects, 1, "{h:?}");
    assert_eq!(h.server_pings, 1, "{h:?}");
    assert_eq!((h.gaps, h.checksum_failures, h.resyncs), (0, 0, 0), "{h:?}");
    let paths = paths.lock().unwrap().clone();
    assert!(paths.len() >= 8, "{paths:?}");
    for p in &paths {
        assert!(
            p.starts_with("/api/v3/depth?symbol=") && p.ends_with("&limit=1000"),
            "{p}"
        );
    }
    for s in symbols {
        let b = venue.books().get(s).unwrap();
        assert_eq!(b.counters.gaps, 0, "{s}");
        let tag = format!(r#""s":"{s}""#);
        if !frames[cut..]
            .iter()
            .any(|f| f.text.contains("depthUpdate") && f.text.contains(&tag))
        {
            continue; // no diff after the cut (BLZETH): nothing to bridge
        }
        // Bridged again on session 2: the first applied diff spans the new snapshot's id.
        let (first, last, id) = b.bridge.unwrap();
        assert_eq!(id, at_cut.books().get(s).unwrap().last_id, "{s}");
        assert!(first <= id + 1 && id < last, "{s}: {:?}", b.bridge);
    }
    assert_same_books(venue.as_ref(), expected.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_pings_and_reconnects_after_silence() {
    timeout(TEST, bybit()).await.expect("test took too long");
}

async fn bybit() {
    let text = read("bybit/nautilus_2024-12-01_XRPUSDT_ob500.data");
    let frames = read_frames(&text).unwrap();
    assert_eq!(frames.len(), 50);
    let options = VenueOptions {
        symbols: vec!["XRPUSDT".into()],
        ..VenueOptions::default()
    };
    let cut = 25;
    let expected = replay_venue(VenueKind::Bybit, &frames, &[], &options);
    let at_cut = replay_venue(VenueKind::Bybit, &frames[..cut], &[], &options);
    let b = at_cut.books().get("XRPUSDT").unwrap();
    // The cross sequence only grows: the new snapshot's lies between the cut and the next.
    let seq = b.last_seq.unwrap() + 1;
    let next: Value = serde_json::from_str(frames[cut].text).unwrap();
    assert!(
        next["data"]["seq"].as_u64().unwrap() > seq,
        "{}",
        next["data"]["seq"]
    );
    // The snapshot Bybit would push on resubscribing at the cut.
    let snapshot = json!({
        "topic": "orderbook.500.XRPUSDT", "type": "snapshot", "ts": 1_733_011_300_000u64,
        "data": {
            "s": "XRPUSDT",
            "b": pairs(&text_levels(at_cut.as_ref(), "XRPUSDT", Side::Bid)),
            "a": pairs(&text_levels(at_cut.as_ref(), "XRPUSDT", Side::Ask)),
            "u": b.last_id, "seq": seq,
        },
        "cts": 1_733_011_300_000u64,
    })
    .to_string();

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Bybit, &["XRPUSDT"]).unwrap();
    cfg.ws_url.clone_from(&server.url);
    cfg.depth = Some(500);
    cfg.ping_interval = Some(Duration::from_millis(50));
    // Long enough that a loaded machine never trips it while pongs flow (session 2).
    cfg.silence_timeout = Duration::from_secs(2);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();

    let subscribe = json!({"req_id":"sub-1","op":"subscribe","args":["orderbook.500.XRPUSDT","publicTrade.XRPUSDT"]});
    let ack = r#"{"success":true,"ret_msg":"","conn_id":"c1","op":"subscribe"}"#;

    // Session 1: frames up to the cut, then silence (pings unanswered): the connector must
    // give up on the socket by itself.
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    let mut first = vec![ack];
    first.extend(frames[..cut].iter().map(|f| f.text));
    send_all(&mut ws, first).await;
    tokio::spawn(drain(ws));

    // Session 2: subscribed again; its pings answered; a fresh snapshot and the rest.
    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    let ping = recv_json(&mut ws).await;
    assert_eq!(ping["op"], "ping", "{ping}");
    let mut second = vec![ack.to_owned(), snapshot];
    second.extend(frames[cut..].iter().map(|f| f.text.to_owned()));
    let total = (1 + cut + second.len()) as u64;
    send_all(&mut ws, second.iter().map(String::as_str)).await;
    // Keep answering pings so session 2 is never silent.
    tokio::spawn(async move {
        while let Some(Ok(m)) = ws.next().await {
            if let Message::Text(t) = m {
                let v: Value = serde_json::from_str(t.as_str()).unwrap_or_default();
                if v["op"] == "ping" {
                    let pong = json!({"success":true,"ret_msg":"pong","conn_id":"c2","req_id":v["req_id"],"op":"ping"});
                    if ws.send(Message::text(pong.to_string())).await.is_err() {
                        break;
                    }
                }
            }
        }
    });

    let h = wait_health(&mut handle.health, |h| {
        h.messages >= total && h.books_live == 1 && h.connects == 2
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!(h.reconnects, 1, "{h:?}");
    assert!(
        h.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no message")),
        "{h:?}"
    );
    assert!(h.pings_sent >= 2, "{h:?}");
    assert_eq!((h.gaps, h.resyncs), (0, 0), "{h:?}");
    let b = venue.books().get("XRPUSDT").unwrap();
    assert_eq!((b.counters.gaps, b.counters.seq_regressions), (0, 0));
    assert_eq!(b.book.best_bid().unwrap().price_text(), "1.9537");
    assert_eq!(b.book.best_ask().unwrap().price_text(), "1.9538");
    assert_same_books(venue.as_ref(), expected.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_legacy_resubscribes_after_close_frame() {
    timeout(TEST, coinbase_legacy())
        .await
        .expect("test took too long");
}

async fn coinbase_legacy() {
    let text = read("coinbase/cryptofeed_COINBASE.ws.28.0");
    let frames = read_frames(&text).unwrap();
    let products = [
        "SKL-USD", "SKL-BTC", "BAND-GBP", "NMR-EUR", "BAND-BTC", "YFI-BTC", "DASH-BTC", "NU-GBP",
        "CRV-EUR", "SKL-GBP",
    ];
    let options = VenueOptions {
        symbols: products.iter().map(|p| (*p).to_owned()).collect(),
        ..VenueOptions::default()
    };
    let cut = frames.len() / 2;
    let expected = replay_venue(VenueKind::Coinbase, &frames, &[], &options);
    let at_cut = replay_venue(VenueKind::Coinbase, &frames[..cut], &[], &options);
    // The snapshots the feed sends on subscribing at the cut.
    let snapshots: Vec<String> = products
        .iter()
        .map(|p| {
            json!({
                "type": "snapshot", "product_id": p,
                "bids": pairs(&text_levels(at_cut.as_ref(), p, Side::Bid)),
                "asks": pairs(&text_levels(at_cut.as_ref(), p, Side::Ask)),
            })
            .to_string()
        })
        .collect();

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Coinbase, &products)
        .unwrap()
        .coinbase_legacy();
    cfg.ws_url.clone_from(&server.url);
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();
    let subscribe = json!({"type":"subscribe","product_ids":products,"channels":["level2_batch","matches","heartbeat"]});

    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    send_all(&mut ws, frames[..cut].iter().map(|f| f.text)).await;
    ws.close(None).await.unwrap();
    tokio::spawn(drain(ws));

    let mut ws = server.accept().await;
    assert_eq!(recv_json(&mut ws).await, subscribe);
    let mut second: Vec<&str> = snapshots.iter().map(String::as_str).collect();
    second.extend(frames[cut..].iter().map(|f| f.text));
    let total = (cut + second.len()) as u64;
    send_all(&mut ws, second).await;
    tokio::spawn(drain(ws));

    let h = wait_health(&mut handle.health, |h| {
        h.messages == total && h.books_live == products.len() && h.connects == 2
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!((h.reconnects, h.gaps, h.resyncs), (1, 0, 0), "{h:?}");
    assert!(
        h.exchange_latency_ns.is_some(),
        "matches carry a venue time: {h:?}"
    );
    assert_eq!(venue.counters().bad_frames, 0);
    assert_same_books(venue.as_ref(), expected.as_ref());
}

/// `frame` with the first digit of its first `"qty"` changed.
fn mutate_first_qty(frame: &str) -> String {
    let at = frame.find("\"qty\"").unwrap();
    let digit = at + frame[at..].find(|c: char| c.is_ascii_digit()).unwrap();
    let old = frame.as_bytes()[digit];
    let new = if old == b'1' { '2' } else { '1' };
    format!("{}{new}{}", &frame[..digit], &frame[digit + 1..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_v2_checksum_failure_resubscribes_for_a_new_snapshot() {
    timeout(TEST, kraken_v2_checksum_resync())
        .await
        .expect("test took too long");
}

async fn kraken_v2_checksum_resync() {
    let text = read("kraken/python-kraken-sdk_orderbook-v2.json");
    let frames = read_frames(&text).unwrap();
    let precision = Some(Precision { price: 1, qty: 8 });
    let options = VenueOptions {
        symbols: vec!["BTC/USD".into()],
        depth: Some(10),
        precision,
    };
    // The first update from 200 on whose mutation the checksum catches (checked by a replay).
    let (k, bad) = (200..frames.len())
        .find_map(|k| {
            let bad = mutate_first_qty(frames[k].text);
            let mut v = VenueKind::Kraken.create(&options);
            let mut out = Vec::new();
            for f in &frames[..k] {
                v.on_frame(f.text, &mut out);
            }
            v.on_frame(&bad, &mut out);
            (v.books().get("BTC/USD").unwrap().counters.checksum_bad == 1).then_some((k, bad))
        })
        .unwrap();
    let expected = replay_venue(VenueKind::Kraken, &frames, &[], &options);
    let truth = replay_venue(VenueKind::Kraken, &frames[..=k], &[], &options);
    let snapshot = format!(
        r#"{{"channel":"book","type":"snapshot","data":[{{"symbol":"BTC/USD","bids":{},"asks":{},"checksum":{}}}]}}"#,
        kraken_levels(&text_levels(truth.as_ref(), "BTC/USD", Side::Bid)),
        kraken_levels(&text_levels(truth.as_ref(), "BTC/USD", Side::Ask)),
        mbo_venues::kraken::checksum(&truth.books().get("BTC/USD").unwrap().book, precision),
    );

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
    cfg.ws_url.clone_from(&server.url);
    cfg.precision = precision;
    cfg.trades = false;
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();

    let mut ws = server.accept().await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["params"]["channel"], "book");
    let instrument = recv_json(&mut ws).await;
    assert_eq!(instrument["params"]["channel"], "instrument");
    let mut first: Vec<&str> = frames[..k].iter().map(|f| f.text).collect();
    first.push(&bad);
    send_all(&mut ws, first).await;
    // The connector asks for a new snapshot: unsubscribe, then subscribe with a snapshot.
    let unsub = recv_json(&mut ws).await;
    let resub = recv_json(&mut ws).await;
    assert_eq!(
        unsub["params"],
        json!({"channel":"book","symbol":["BTC/USD"],"depth":10}),
        "{unsub}"
    );
    assert_eq!(unsub["method"], "unsubscribe");
    assert_eq!(resub["method"], "subscribe");
    assert_eq!(resub["params"], sub["params"], "{resub}");
    let mut rest = vec![snapshot.as_str()];
    rest.extend(frames[k + 1..].iter().map(|f| f.text));
    let total = (k + 1 + rest.len()) as u64;
    send_all(&mut ws, rest).await;
    tokio::spawn(drain(ws));

    let h = wait_health(&mut handle.health, |h| {
        h.messages == total && h.books_live == 1
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!(
        (h.checksum_failures, h.resyncs, h.resubscribes, h.reconnects),
        (1, 1, 1, 0),
        "{h:?}"
    );
    assert!(
        matches!(
            h.last_gap.as_ref().map(|g| g.reason),
            Some(mbo_venues::ResyncReason::Checksum { .. })
        ),
        "{h:?}"
    );
    let b = venue.books().get("BTC/USD").unwrap();
    assert_eq!(b.counters.checksum_bad, 1);
    assert_same_books(venue.as_ref(), expected.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_gap_fetches_a_new_rest_snapshot() {
    timeout(TEST, binance_gap())
        .await
        .expect("test took too long");
}

async fn binance_gap() {
    let ws_text = read("binance/cryptofeed_BINANCE.ws.1.0");
    let http_text = read("binance/cryptofeed_BINANCE.http.0.0");
    let frames = read_frames(&ws_text).unwrap();
    let snaps = read_cryptofeed_http(&http_text).unwrap();
    let symbols = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"];
    let options = VenueOptions::default();
    let nkn: Vec<usize> = (0..frames.len())
        .filter(|&i| {
            frames[i].text.contains("depthUpdate") && frames[i].text.contains(r#""s":"NKNUSDT""#)
        })
        .collect();
    // One NKNUSDT diff goes missing; the next one shows the gap.
    let pos = nkn.iter().position(|&i| i >= 100).unwrap();
    let (missing, shows) = (nkn[pos], nkn[pos + 1]);
    let expected = replay_venue(VenueKind::Binance, &frames, &snaps, &options);
    let truth = replay_venue(VenueKind::Binance, &frames[..=shows], &snaps, &options);
    let b = truth.books().get("NKNUSDT").unwrap();
    let fresh = json!({
        "lastUpdateId": b.last_id,
        "bids": pairs(&text_levels(truth.as_ref(), "NKNUSDT", Side::Bid)),
        "asks": pairs(&text_levels(truth.as_ref(), "NKNUSDT", Side::Ask)),
    })
    .to_string();
    let recorded: std::collections::HashMap<String, String> = snaps
        .iter()
        .map(|s| (s.symbol.clone(), s.body.to_owned()))
        .collect();
    let served = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let handler = {
        let served = served.clone();
        Arc::new(move |path: &str| {
            let symbol = path
                .split(['?', '&'])
                .find_map(|kv| kv.strip_prefix("symbol="))
                .unwrap_or_default()
                .to_owned();
            let mut served = served.lock().unwrap();
            let again = served.contains(&symbol);
            served.push(symbol.clone());
            if again && symbol == "NKNUSDT" {
                fresh.clone()
            } else {
                recorded.get(&symbol).cloned().unwrap_or_default()
            }
        })
    };
    let (rest_url, _count) = http_server(handler).await;

    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Binance, &symbols).unwrap();
    cfg.ws_url = format!("{}/ws", server.url);
    cfg.rest_url = rest_url;
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();

    let mut ws = server.accept().await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["method"], "SUBSCRIBE");
    let sent: Vec<&str> = (0..frames.len())
        .filter(|&i| i != missing)
        .map(|i| frames[i].text)
        .collect();
    let total = sent.len() as u64;
    send_all(&mut ws, sent).await;
    tokio::spawn(drain(ws));

    let h = wait_health(&mut handle.health, |h| {
        h.messages == total && h.books_live == 4 && h.gaps == 1
    })
    .await;
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!(
        (h.reconnects, h.resyncs, h.snapshots_fetched),
        (0, 1, 5),
        "{h:?}"
    );
    let gap = h.last_gap.clone().unwrap();
    assert_eq!(gap.symbol, "NKNUSDT");
    assert!(
        matches!(gap.reason, mbo_venues::ResyncReason::Gap { .. }),
        "{gap:?}"
    );
    let served = served.lock().unwrap().clone();
    assert_eq!(
        served.iter().filter(|s| *s == "NKNUSDT").count(),
        2,
        "{served:?}"
    );
    assert_eq!(venue.books().get("NKNUSDT").unwrap().counters.gaps, 1);
    assert_same_books(venue.as_ref(), expected.as_ref());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_never_blocks_the_reader() {
    timeout(TEST, slow_consumer())
        .await
        .expect("test took too long");
}

async fn slow_consumer() {
    let text = read("kraken/python-kraken-sdk_orderbook-v2.json");
    let frames = read_frames(&text).unwrap();
    let precision = Some(Precision { price: 1, qty: 8 });
    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
    cfg.ws_url.clone_from(&server.url);
    cfg.precision = precision;
    cfg.trades = false;
    cfg.silence_timeout = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    // A consumer that reads nothing until the end, behind a channel of 4.
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let mut handle = spawn(cfg, Some(tx), cancel.clone()).unwrap();
    let mut ws = server.accept().await;
    recv_json(&mut ws).await;
    send_all(&mut ws, frames.iter().map(|f| f.text)).await;
    // Every frame is processed although nobody reads the events.
    let h = wait_health(&mut handle.health, |h| {
        h.messages == 510 && h.books_live == 1
    })
    .await;
    assert!(h.events_dropped > 0, "{h:?}");
    let mut got = Vec::new();
    while let Ok(u) = rx.try_recv() {
        got.push(u);
    }
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|u| u.lagged == 0));
    // The next event delivered says how many were lost before it.
    send_all(&mut ws, [frames[0].text]).await;
    let next = timeout(common::STEP, rx.recv()).await.unwrap().unwrap();
    assert!(matches!(next.event, mbo_venues::Event::Snapshot { .. }));
    assert_eq!(next.lagged, h.events_dropped);
    cancel.cancel();
    let venue = handle.join().await.unwrap();
    assert_eq!(
        venue.books().get("BTC/USD").unwrap().counters.checksum_bad,
        0
    );
    tokio::spawn(drain(ws));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_endpoint_failure_is_retried_not_fatal() {
    // A `wss://` endpoint whose server is not TLS: the rustls path (ring provider, native
    // roots) must fail the handshake cleanly, back off and retry.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let mut cfg = ConnectionConfig::new(VenueKind::Bybit, &["BTCUSDT"]).unwrap();
    cfg.ws_url = format!("wss://127.0.0.1:{port}/v5/public/spot");
    cfg.backoff = fast_backoff();
    let cancel = CancellationToken::new();
    let mut handle = spawn(cfg, None, cancel.clone()).unwrap();
    let h = timeout(
        TEST,
        common::wait_health(&mut handle.health, |h| h.reconnects >= 2),
    )
    .await
    .unwrap();
    assert_eq!(h.connects, 0, "{h:?}");
    assert!(
        h.last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("websocket")),
        "{h:?}"
    );
    cancel.cancel();
    handle.join().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resync_request_resubscribes_for_a_new_snapshot() {
    timeout(TEST, consumer_resync())
        .await
        .expect("test took too long");
}

/// A consumer that lost events asks for a fresh snapshot of one book: the connector
/// resubscribes it on the live session (no reconnect), like after a checksum failure.
async fn consumer_resync() {
    let text = read("kraken/python-kraken-sdk_orderbook-v2.json");
    let frames = read_frames(&text).unwrap();
    let mut server = WsServer::bind().await;
    let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
    cfg.ws_url.clone_from(&server.url);
    cfg.precision = Some(Precision { price: 1, qty: 8 });
    cfg.trades = false;
    cfg.silence_timeout = Duration::from_secs(30);
    cfg.backoff = fast_backoff();
    let (conn, mut health) = mbo_venues_net::Connection::new(cfg, None).unwrap();
    let (requests, rx) = tokio::sync::mpsc::channel(4);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(conn.with_resync_requests(rx).run(cancel.clone()));

    let mut ws = server.accept().await;
    let sub = recv_json(&mut ws).await;
    assert_eq!(sub["params"]["channel"], "book");
    let _instrument = recv_json(&mut ws).await;
    send_all(&mut ws, frames[..50].iter().map(|f| f.text)).await;
    wait_health(&mut health, |h| h.messages == 50 && h.books_live == 1).await;
    requests.send(Arc::from("BTC/USD")).await.unwrap();
    let unsub = recv_json(&mut ws).await;
    let resub = recv_json(&mut ws).await;
    assert_eq!(unsub["method"], "unsubscribe", "{unsub}");
    assert_eq!(resub["method"], "subscribe", "{resub}");
    assert_eq!(resub["params"], sub["params"], "{resub}");
    let h = wait_health(&mut health, |h| h.resubscribes == 1).await;
    assert_eq!((h.reconnects, h.resyncs), (0, 1), "{h:?}");
    cancel.cancel();
    tokio::spawn(drain(ws));
    let _ = task.await.unwrap();
}
