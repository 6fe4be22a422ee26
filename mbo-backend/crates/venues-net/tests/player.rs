//! The live connector (`spawn` + `ConnectionConfig`) against the recording player
//! (`mbo_venues_net::player`) for each venue: the final books equal a plain replay of the
//! recording, every checksum verifies, no gaps; looping keeps the books live and clean.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::{assert_same_books, read, replay_venue, wait_health, STEP};
use mbo_venues::fixtures::{read_cryptofeed_http, read_frames, Frame, RestSnapshot};
use mbo_venues::{Precision, Venue, VenueKind, VenueOptions};
use mbo_venues_net::player::{Player, PlayerConfig, PlayerStats};
use mbo_venues_net::{protocol, spawn, Backoff, CancellationToken, ConnState, ConnectionConfig};
use tokio::sync::watch;
use tokio::time::timeout;

/// Whole-test limit.
const TEST: Duration = Duration::from_secs(30);

const KRAKEN: &str = "kraken/python-kraken-sdk_orderbook-v2.json";
const BYBIT: &str = "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data";
const COINBASE: &str = "coinbase/cryptofeed_COINBASE.ws.28.0";
const BINANCE_WS: &str = "binance/cryptofeed_BINANCE.ws.1.0";
const BINANCE_HTTP: &str = "binance/cryptofeed_BINANCE.http.0.0";

fn fast_backoff() -> Backoff {
    Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        fast_attempts: 3,
        floor: Duration::from_millis(50),
        stable_after: Duration::from_secs(30),
    }
}

fn player_config(
    venue: VenueKind,
    frames: &[Frame<'_>],
    snaps: &[RestSnapshot<'_>],
) -> PlayerConfig {
    let mut p = PlayerConfig::new(venue, frames.iter().map(|f| f.text.to_owned()).collect());
    p.rest_snapshots = snaps
        .iter()
        .map(|s| (s.symbol.clone(), s.body.to_owned()))
        .collect();
    p
}

/// Binds the player and runs it; returns its URLs' config base and stats.
async fn start(
    cfg: PlayerConfig,
    cancel: &CancellationToken,
) -> (String, String, watch::Receiver<PlayerStats>) {
    let player = Player::bind("127.0.0.1:0", cfg).await.unwrap();
    let (ws, rest, stats) = (player.ws_url(), player.rest_url(), player.stats());
    assert!(ws.starts_with("ws://127.0.0.1:"), "{ws}");
    tokio::spawn(player.run(cancel.clone()));
    (ws, rest, stats)
}

fn symbols(v: &dyn Venue) -> Vec<String> {
    v.books().all().iter().map(|b| b.symbol.clone()).collect()
}

/// Plays the whole recording once through the connector; returns its final venue and health.
async fn once(
    mut player: PlayerConfig,
    mut cfg: ConnectionConfig,
    extra_messages: u64,
) -> (Box<dyn Venue + Send>, mbo_venues_net::Health) {
    player.looped = false;
    let frames = player.frames.len() as u64;
    let cancel = CancellationToken::new();
    let (ws, rest, stats) = start(player, &cancel).await;
    cfg.ws_url = ws;
    cfg.rest_url = rest;
    cfg.backoff = fast_backoff();
    cfg.silence_timeout = Duration::from_secs(30);
    // Every subscribe message is acknowledged (Coinbase's answers are in its recording).
    let acks = if cfg.venue == VenueKind::Coinbase {
        0
    } else {
        protocol::subscribe_messages(&cfg).len() as u64
    };
    let total = frames + acks + extra_messages;
    let c = cancel.child_token();
    let mut handle = spawn(cfg, None, c.clone()).unwrap();
    let h = wait_health(&mut handle.health, |h| h.messages == total).await;
    assert_eq!(stats.borrow().frames_sent, frames);
    c.cancel();
    let venue = handle.join().await.unwrap();
    cancel.cancel();
    assert_eq!((h.connects, h.reconnects), (1, 0), "{h:?}");
    assert_eq!((h.gaps, h.checksum_failures, h.resyncs), (0, 0, 0), "{h:?}");
    assert_eq!(h.state, ConnState::Live, "{h:?}");
    (venue, h)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_v2_through_the_player_equals_a_replay() {
    timeout(TEST, async {
        let text = read(KRAKEN);
        let frames = read_frames(&text).unwrap();
        let precision = Precision { price: 1, qty: 8 };
        let options = VenueOptions {
            symbols: vec!["BTC/USD".into()],
            depth: Some(10),
            precision: Some(precision),
        };
        let expected = replay_venue(VenueKind::Kraken, &frames, &[], &options);
        let mut player = player_config(VenueKind::Kraken, &frames, &[]);
        player.kraken_precision = Some(precision);
        // No precision on the connector: it comes from the player's `instrument` message.
        let cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
        let (venue, h) = once(player, cfg, 1).await;
        assert_eq!(h.books_live, 1);
        let b = venue.books().get("BTC/USD").unwrap();
        assert_eq!((b.counters.checksum_ok, b.counters.checksum_bad), (510, 0));
        assert_same_books(venue.as_ref(), expected.as_ref());
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_through_the_player_equals_a_replay() {
    timeout(TEST, async {
        let text = read(BYBIT);
        let frames = read_frames(&text).unwrap();
        assert_eq!(frames.len(), 50);
        let expected = replay_venue(VenueKind::Bybit, &frames, &[], &VenueOptions::default());
        let mut cfg = ConnectionConfig::new(VenueKind::Bybit, &["XRPUSDT"]).unwrap();
        cfg.depth = Some(500);
        let (venue, _) = once(player_config(VenueKind::Bybit, &frames, &[]), cfg, 0).await;
        assert_same_books(venue.as_ref(), expected.as_ref());
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coinbase_legacy_through_the_player_equals_a_replay() {
    timeout(TEST, async {
        let text = read(COINBASE);
        let frames = read_frames(&text).unwrap();
        let expected = replay_venue(VenueKind::Coinbase, &frames, &[], &VenueOptions::default());
        let syms = symbols(expected.as_ref());
        assert_eq!(syms.len(), 10);
        let refs: Vec<&str> = syms.iter().map(String::as_str).collect();
        let cfg = ConnectionConfig::new(VenueKind::Coinbase, &refs)
            .unwrap()
            .coinbase_legacy();
        let (venue, h) = once(player_config(VenueKind::Coinbase, &frames, &[]), cfg, 0).await;
        assert_eq!(h.books_live, 10, "{h:?}");
        assert_same_books(venue.as_ref(), expected.as_ref());
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_spot_through_the_player_bridges_from_its_rest_snapshots() {
    timeout(TEST, async {
        let ws_text = read(BINANCE_WS);
        let http_text = read(BINANCE_HTTP);
        let frames = read_frames(&ws_text).unwrap();
        let snaps = read_cryptofeed_http(&http_text).unwrap();
        let expected = replay_venue(
            VenueKind::Binance,
            &frames,
            &snaps,
            &VenueOptions::default(),
        );
        let syms = symbols(expected.as_ref());
        assert_eq!(syms.len(), 4);
        let refs: Vec<&str> = syms.iter().map(String::as_str).collect();
        let mut cfg = ConnectionConfig::new(VenueKind::Binance, &refs).unwrap();
        // No waiting for symbols without a diff yet (every symbol has one early anyway).
        cfg.snapshot_delay = Duration::from_millis(200);
        let player = player_config(VenueKind::Binance, &frames, &snaps);
        let cancel = CancellationToken::new();
        let (ws, rest, stats) = start(player, &cancel).await;
        cfg.ws_url = ws;
        cfg.rest_url = rest;
        cfg.backoff = fast_backoff();
        let total = frames.len() as u64 + 1;
        let c = cancel.child_token();
        let mut handle = spawn(cfg, None, c.clone()).unwrap();
        let h = wait_health(&mut handle.health, |h| {
            h.messages == total && h.snapshots_fetched == 4 && h.books_live == 4
        })
        .await;
        c.cancel();
        let venue = handle.join().await.unwrap();
        assert_eq!(stats.borrow().rest_requests, 4);
        cancel.cancel();
        assert_eq!((h.gaps, h.resyncs, h.reconnects), (0, 0, 0), "{h:?}");
        assert_same_books(venue.as_ref(), expected.as_ref());
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn player_answers_rest_requests_for_unknown_symbols_and_paths_with_404() {
    let http_text = read(BINANCE_HTTP);
    let snaps = read_cryptofeed_http(&http_text).unwrap();
    let cancel = CancellationToken::new();
    let (_, rest, _) = start(player_config(VenueKind::Binance, &[], &snaps), &cancel).await;
    let client = reqwest_get(&format!("{rest}/api/v3/depth?symbol=nknusdt&limit=1000")).await;
    assert_eq!(client.0, 200);
    assert_eq!(client.1, snaps[0].body);
    let futures = reqwest_get(&format!("{rest}/fapi/v1/depth?symbol=BLZETH&limit=5")).await;
    assert_eq!(futures.0, 200);
    let unknown = reqwest_get(&format!("{rest}/api/v3/depth?symbol=NOPE&limit=5")).await;
    assert_eq!(unknown.0, 404);
    assert!(serde_json::from_str::<serde_json::Value>(&unknown.1).is_ok());
    assert_eq!(reqwest_get(&format!("{rest}/elsewhere")).await.0, 404);
    cancel.cancel();
}

/// A minimal HTTP GET over a raw socket: (status, body).
async fn reqwest_get(url: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_once('/').unwrap();
    let mut tcp = tokio::net::TcpStream::connect(host).await.unwrap();
    tcp.write_all(format!("GET /{path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = String::new();
    timeout(STEP, tcp.read_to_string(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let status = buf.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = buf.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kraken_loop_keeps_the_book_live_and_every_checksum_ok() {
    timeout(TEST, async {
        let text = read(KRAKEN);
        let frames = read_frames(&text).unwrap();
        let precision = Precision { price: 1, qty: 8 };
        let mut player = player_config(VenueKind::Kraken, &frames, &[]);
        player.kraken_precision = Some(precision);
        player.looped = true;
        player.rate = Some(4000.0);
        let cancel = CancellationToken::new();
        let (ws, _, mut stats) = start(player, &cancel).await;
        let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
        cfg.ws_url = ws;
        cfg.ping_interval = Some(Duration::from_millis(50));
        cfg.backoff = fast_backoff();
        let c = cancel.child_token();
        let handle = spawn(cfg, None, c.clone()).unwrap();
        // Two full passes and into the third.
        timeout(
            Duration::from_secs(10),
            stats.wait_for(|s| s.ends >= 2 && s.frames_sent > 1100),
        )
        .await
        .unwrap()
        .unwrap();
        let h = handle.health.borrow().clone();
        c.cancel();
        let venue = handle.join().await.unwrap();
        cancel.cancel();
        assert_eq!((h.connects, h.reconnects), (1, 0), "{h:?}");
        assert_eq!((h.gaps, h.checksum_failures, h.resyncs), (0, 0, 0), "{h:?}");
        assert_eq!((h.state, h.books_live), (ConnState::Live, 1), "{h:?}");
        assert!(h.pings_sent >= 1, "{h:?}");
        let b = venue.books().get("BTC/USD").unwrap();
        assert!(b.counters.checksum_ok > 1020, "{:?}", b.counters);
        assert_eq!(b.counters.checksum_bad, 0);
        assert_eq!(b.state, mbo_venues::SyncState::Live);
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bybit_loop_restarts_from_the_snapshot_and_pings_are_answered() {
    timeout(TEST, async {
        let text = read(BYBIT);
        let frames = read_frames(&text).unwrap();
        let expected = replay_venue(VenueKind::Bybit, &frames, &[], &VenueOptions::default());
        let mut player = player_config(VenueKind::Bybit, &frames, &[]);
        player.looped = true;
        player.rate = Some(500.0);
        let cancel = CancellationToken::new();
        let (ws, _, mut stats) = start(player, &cancel).await;
        let mut cfg = ConnectionConfig::new(VenueKind::Bybit, &["XRPUSDT"]).unwrap();
        cfg.depth = Some(500);
        cfg.ws_url = ws;
        cfg.ping_interval = Some(Duration::from_millis(50));
        cfg.backoff = fast_backoff();
        let c = cancel.child_token();
        let (tx, mut rx) = tokio::sync::mpsc::channel(100_000);
        let handle = spawn(cfg, Some(tx), c.clone()).unwrap();
        // Three passes: the book is rebuilt from each pass's snapshot.
        timeout(Duration::from_secs(10), stats.wait_for(|s| s.ends >= 3))
            .await
            .unwrap()
            .unwrap();
        let h = handle.health.borrow().clone();
        c.cancel();
        let venue = handle.join().await.unwrap();
        cancel.cancel();
        assert_eq!((h.gaps, h.resyncs, h.reconnects), (0, 0, 0), "{h:?}");
        assert!(h.pings_sent >= 1, "{h:?}");
        let mut snapshots = 0;
        while let Ok(u) = rx.try_recv() {
            if matches!(u.event, mbo_venues::Event::Snapshot { .. }) {
                snapshots += 1;
            }
        }
        assert!(snapshots >= 3, "{snapshots}");
        let b = venue.books().get("XRPUSDT").unwrap();
        assert_eq!(b.state, mbo_venues::SyncState::Live);
        assert!(!expected.books().get("XRPUSDT").unwrap().book.is_empty());
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binance_loop_closes_the_socket_and_the_client_bridges_again() {
    timeout(TEST, async {
        let ws_text = read(BINANCE_WS);
        let http_text = read(BINANCE_HTTP);
        let frames = read_frames(&ws_text).unwrap();
        let snaps = read_cryptofeed_http(&http_text).unwrap();
        let expected = replay_venue(
            VenueKind::Binance,
            &frames,
            &snaps,
            &VenueOptions::default(),
        );
        let syms = symbols(expected.as_ref());
        let refs: Vec<&str> = syms.iter().map(String::as_str).collect();
        let mut player = player_config(VenueKind::Binance, &frames, &snaps);
        player.looped = true;
        // Paced: a pass sent in one burst ends (and closes the socket) before the client's
        // REST snapshot requests come back, so on a busy machine no pass ever bridges.
        player.rate = Some(1000.0);
        let cancel = CancellationToken::new();
        let (ws, rest, mut stats) = start(player, &cancel).await;
        let mut cfg = ConnectionConfig::new(VenueKind::Binance, &refs).unwrap();
        cfg.ws_url = ws;
        cfg.rest_url = rest;
        cfg.backoff = fast_backoff();
        cfg.snapshot_delay = Duration::from_millis(200);
        let c = cancel.child_token();
        let mut handle = spawn(cfg, None, c.clone()).unwrap();
        timeout(Duration::from_secs(10), stats.wait_for(|s| s.ends >= 2))
            .await
            .unwrap()
            .unwrap();
        let h = wait_health(&mut handle.health, |h| {
            h.connects >= 2 && h.snapshots_fetched >= 8
        })
        .await;
        c.cancel();
        handle.join().await.unwrap();
        cancel.cancel();
        assert_eq!((h.gaps, h.resyncs), (0, 0), "{h:?}");
        assert!(h.reconnects >= 1, "{h:?}");
    })
    .await
    .expect("test took too long");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_tap_sees_every_frame_and_rest_body_as_received() {
    use mbo_venues_net::{spawn_with, RawKind};
    timeout(TEST, async {
        let ws_text = read(BINANCE_WS);
        let http_text = read(BINANCE_HTTP);
        let frames = read_frames(&ws_text).unwrap();
        let snaps = read_cryptofeed_http(&http_text).unwrap();
        let syms = ["NKNUSDT", "BLZETH", "LRCBTC", "RUNEEUR"];
        let cancel = CancellationToken::new();
        let (ws, rest, _) =
            start(player_config(VenueKind::Binance, &frames, &snaps), &cancel).await;
        let mut cfg = ConnectionConfig::new(VenueKind::Binance, &syms).unwrap();
        cfg.ws_url.clone_from(&ws);
        cfg.rest_url = rest;
        let (tap, mut raw) = tokio::sync::mpsc::channel(10_000);
        let c = cancel.child_token();
        let mut handle = spawn_with(cfg, None, Some(tap), c.clone()).unwrap();
        let total = frames.len() as u64 + 1;
        let h = wait_health(&mut handle.health, |h| {
            h.messages == total && h.snapshots_fetched == 4
        })
        .await;
        c.cancel();
        handle.join().await.unwrap();
        cancel.cancel();
        assert_eq!(h.raw_dropped, 0);
        let mut got = Vec::new();
        while let Some(f) = raw.recv().await {
            got.push(f);
        }
        assert_eq!(got[0].kind, RawKind::Connected { url: ws });
        let texts: Vec<&str> = got
            .iter()
            .filter(|f| f.kind == RawKind::Ws)
            .map(|f| f.text.as_str())
            .collect();
        assert_eq!(texts[0], r#"{"result":null,"id":1}"#);
        assert_eq!(
            &texts[1..],
            frames.iter().map(|f| f.text).collect::<Vec<_>>()
        );
        let rest: Vec<_> = got
            .iter()
            .filter_map(|f| match &f.kind {
                RawKind::Rest { symbol, url } => Some((symbol, url, &f.text)),
                _ => None,
            })
            .collect();
        assert_eq!(rest.len(), 4);
        for (symbol, url, body) in rest {
            assert!(url.contains(&format!("symbol={symbol}")), "{url}");
            let s = snaps.iter().find(|s| &s.symbol == symbol).unwrap();
            assert_eq!(body, s.body);
        }
        assert!(got.windows(2).all(|w| w[0].recv_ns <= w[1].recv_ns));
    })
    .await
    .expect("test took too long");
}
