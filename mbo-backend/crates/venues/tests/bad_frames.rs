//! Bad frames (truncated JSON, unknown types, wrong symbols, bad numbers) are counted and
//! skipped by every venue, never applied and never a panic; random truncations and byte flips
//! of real frames likewise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::read;
use mbo_venues::fixtures::read_frames;
use mbo_venues::{SyncState, VenueKind, VenueOptions};
use proptest::prelude::*;

fn only(symbol: &str) -> VenueOptions {
    VenueOptions {
        symbols: vec![symbol.to_owned()],
        ..VenueOptions::default()
    }
}

/// Feeds `good` then each bad frame; returns bad frames counted and the book's counters.
fn run(kind: VenueKind, symbol: &str, good: &[&str], bad: &[&str]) -> (u64, u64, SyncState) {
    let mut v = kind.create(&only(symbol));
    let mut out = Vec::new();
    for f in good {
        v.on_frame(f, &mut out);
    }
    let applied = v.books().get(symbol).unwrap().counters.applied;
    for f in bad {
        v.on_frame(f, &mut out);
    }
    let b = v.books().get(symbol).unwrap();
    assert_eq!(b.counters.applied, applied, "a bad frame was applied");
    assert_eq!(v.books().all().len(), 1, "a wrong symbol got a book");
    (v.counters().bad_frames, b.counters.applied, b.state)
}

#[test]
fn bybit_bad_frames() {
    let snap = r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["100.5","1"]],"a":[["101","2"]],"u":7,"seq":1},"cts":1}"#;
    let bad = [
        r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["100.5","#,
        r#"{"topic":"orderbook.50.BTCUSDT","type":"weird","data":{"s":"BTCUSDT","b":[],"a":[],"u":8}}"#,
        r#"{"topic":"orderbook.50.ETHUSDT","type":"delta","data":{"s":"ETHUSDT","b":[],"a":[],"u":8}}"#,
        r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["1x","1"]],"a":[],"u":8}}"#,
        r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[["1","-1"]],"a":[],"u":8}}"#,
        "",
        "null",
        "[1,2,3]",
    ];
    let (n, applied, state) = run(VenueKind::Bybit, "BTCUSDT", &[snap], &bad);
    assert_eq!((n, applied, state), (8, 1, SyncState::Live));
}

#[test]
fn binance_bad_frames() {
    let bad = [
        r#"{"stream":"btcusdt@depth","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1","#,
        r#"{"e":"whatIsThis"#,
        r#"{"stream":"ethusdt@depth","data":{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":1,"u":2,"b":[],"a":[]}}"#,
        r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[["1.0000000001","1"]],"a":[]}"#,
        r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","u":2,"b":[],"a":[]}"#,
        r#"{"e":"trade","s":"BTCUSDT","p":"abc","q":"1"}"#,
        r#"{"foo":1}"#,
    ];
    let mut v = VenueKind::Binance.create(&only("BTCUSDT"));
    let mut out = Vec::new();
    v.on_frame(r#"{"result":null,"id":1}"#, &mut out);
    assert_eq!((v.counters().bad_frames, v.counters().control), (0, 1));
    v.on_frame(
        r#"{"e":"depthUpdate","E":1,"s":"BTCUSDT","U":1,"u":2,"b":[],"a":[]}"#,
        &mut out,
    );
    for f in bad {
        v.on_frame(f, &mut out);
    }
    // The price with 10 decimals is well formed but finer than 1e-9: that level is skipped
    // and counted, the frame is not bad.
    assert_eq!(v.counters().bad_frames, 6);
    assert_eq!(
        v.books()
            .get("BTCUSDT")
            .unwrap()
            .counters
            .unrepresentable_levels,
        1
    );
    // A bad REST body and a snapshot for a symbol not subscribed.
    v.on_rest_snapshot("BTCUSDT", r#"{"lastUpdateId":1,"bids":[["#, &mut out);
    v.on_rest_snapshot(
        "ETHUSDT",
        r#"{"lastUpdateId":1,"bids":[],"asks":[]}"#,
        &mut out,
    );
    assert_eq!(v.counters().bad_frames, 8);
    // The good one bridges the buffered diff.
    v.on_rest_snapshot(
        "BTCUSDT",
        r#"{"lastUpdateId":1,"bids":[["1","1"]],"asks":[["2","1"]]}"#,
        &mut out,
    );
    let b = v.books().get("BTCUSDT").unwrap();
    assert_eq!(
        (b.state, b.counters.applied, b.last_id),
        (SyncState::Live, 1, 2)
    );
}

#[test]
fn kraken_bad_frames() {
    let snap = r#"{"channel":"book","type":"snapshot","data":[{"symbol":"BTC/USD","bids":[{"price":100.0,"qty":1.5}],"asks":[{"price":101.0,"qty":2.0}],"checksum":0}]}"#;
    let mut v = VenueKind::Kraken.create(&only("BTC/USD"));
    let mut out = Vec::new();
    v.on_frame(snap, &mut out);
    // Checksum 0 is wrong for that book: stale, resync.
    assert_eq!(v.books().get("BTC/USD").unwrap().state, SyncState::Stale);
    for f in [
        r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":1"#,
        r#"{"channel":"book","type":"mystery","data":[]}"#,
        r#"{"channel":"book","type":"update","data":[{"symbol":"ETH/USD","bids":[],"asks":[],"checksum":1}]}"#,
        r#"{"channel":"book","type":"update","data":[{"symbol":"BTC/USD","bids":[{"price":"x","qty":1}],"asks":[],"checksum":1}]}"#,
        r#"{"channel":"nope"}"#,
    ] {
        v.on_frame(f, &mut out);
    }
    assert_eq!(v.counters().bad_frames, 5);
    v.on_frame(r#"{"channel":"heartbeat"}"#, &mut out);
    v.on_frame(r#"{"method":"pong","req_id":1}"#, &mut out);
    assert_eq!(v.counters().control, 2);

    let mut v1 = VenueKind::KrakenV1.create(&only("XBT/USD"));
    for f in [
        r#"[336,{"a":[["1.0","1.0","1.0"]],"c":"1"},"book-10","XBT/USD"#,
        r#"[336,{"a":[["1.0","1.0","1.0"]],"c":"1"},"book-10","ETH/USD"]"#,
        r#"[336,{"a":[["1.0","1.0","1.0"]],"c":"notanumber"},"book-10","XBT/USD"]"#,
        r#"[336,{"a":[["1.0","1.0","1.0"]]},"book-x","XBT/USD"]"#,
        r#"[1,2]"#,
        r#"{"nothing":1}"#,
    ] {
        v1.on_frame(f, &mut out);
    }
    assert_eq!(v1.counters().bad_frames, 6);
    assert!(v1.books().all().is_empty());
}

#[test]
fn coinbase_bad_frames() {
    let snap =
        r#"{"type":"snapshot","product_id":"BTC-USD","bids":[["100","1"]],"asks":[["101","1"]]}"#;
    let bad = [
        r#"{"type":"l2update","product_id":"BTC-USD","changes":[["buy","100","#,
        r#"{"type":"l2update","product_id":"ETH-USD","changes":[["buy","100","2"]]}"#,
        r#"{"type":"l2update","product_id":"BTC-USD","changes":[["up","100","2"]]}"#,
        r#"{"type":"l2update","product_id":"BTC-USD","changes":[["buy","1e","2"]]}"#,
        r#"{"type":"unknown_type"}"#,
        r#"{"channel":"l2_data","sequence_num":0,"events":[{"type":"update","product_id":"BTC-USD","updates":[{"side":"middle","price_level":"1","new_quantity":"1"}]}]}"#,
        r#"{"channel":"mystery","sequence_num":1}"#,
        r#"{}"#,
    ];
    let (n, applied, state) = run(VenueKind::Coinbase, "BTC-USD", &[snap], &bad);
    assert_eq!((n, applied, state), (8, 1, SyncState::Live));
}

fn real_frames() -> Vec<(VenueKind, String)> {
    let mut v = Vec::new();
    for (kind, file) in [
        (VenueKind::Binance, "binance/cryptofeed_BINANCE.ws.1.0"),
        (
            VenueKind::Bybit,
            "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data",
        ),
        (
            VenueKind::Kraken,
            "kraken/python-kraken-sdk_orderbook-v2.json",
        ),
        (VenueKind::KrakenV1, "kraken/cryptofeed_KRAKEN.ws.50.0"),
        (VenueKind::Coinbase, "coinbase/cryptofeed_COINBASE.ws.28.0"),
    ] {
        let text = read(file);
        for f in read_frames(&text).unwrap().into_iter().take(40) {
            v.push((kind, f.text.to_owned()));
        }
    }
    v
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any truncation or byte change of a real frame is either handled or counted: no panic.
    #[test]
    fn mangled_real_frames_never_panic(pick in any::<prop::sample::Index>(), cut in any::<prop::sample::Index>(), flip in any::<u8>(), at in any::<prop::sample::Index>()) {
        static FRAMES: std::sync::OnceLock<Vec<(VenueKind, String)>> = std::sync::OnceLock::new();
        let frames = FRAMES.get_or_init(real_frames);
        let (kind, text) = &frames[pick.index(frames.len())];
        let mut bytes = text.as_bytes()[..cut.index(text.len() + 1)].to_vec();
        if !bytes.is_empty() {
            let i = at.index(bytes.len());
            bytes[i] = flip;
        }
        let mangled = String::from_utf8_lossy(&bytes);
        let mut v = kind.create(&VenueOptions::default());
        let mut out = Vec::new();
        v.on_frame(text, &mut out);
        v.on_frame(&mangled, &mut out);
        prop_assert_eq!(v.counters().frames, 2);
    }
}
