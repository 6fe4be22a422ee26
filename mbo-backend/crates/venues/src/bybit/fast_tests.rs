//! The fast path and the `serde_json` path must agree exactly: same events, books, sync
//! states and counters, over every frame of the Bybit recording (as recorded, spaced out,
//! with keys reordered) and over mutated frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::{scan_book, Bybit};
use crate::fast_test_util::{compact, edit, frames, mutations, spaced, Twin};
use crate::scan::LevelScan;
use crate::state::Books;
use crate::SyncState;

const FILE: &str = "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data";
const SYMBOL: &str = "XRPUSDT";

fn twin(only: Option<&str>) -> Twin<Bybit> {
    let books = || only.map_or_else(Books::new, |s| Books::only(&[s]));
    Twin {
        fast: Bybit::new(books()),
        serde: Bybit::new(books()).with_fast_path(false),
    }
}

/// The recording's frames as recorded, spaced out, and with keys in sorted order (which
/// puts `a` before `b`, `data` before `topic`).
fn variants() -> Vec<Vec<String>> {
    let recorded = frames(FILE);
    let sorted = recorded
        .iter()
        .map(|f| {
            serde_json::from_str::<serde_json::Value>(f)
                .unwrap()
                .to_string()
        })
        .collect();
    vec![
        recorded.iter().map(|f| compact(f)).collect(),
        recorded.iter().map(|f| spaced(f, " ")).collect(),
        recorded.iter().map(|f| spaced(f, "\r\n\t")).collect(),
        sorted,
        recorded,
    ]
}

#[test]
fn recorded_frames_agree_and_take_the_fast_path() {
    let mut scan = LevelScan::default();
    for stream in variants() {
        assert_eq!(stream.len(), 50);
        for f in &stream {
            assert!(scan_book(f, &mut scan).is_some(), "not taken: {f}");
            assert!(!scan.bad_number);
        }
        for only in [None, Some(SYMBOL), Some("BTCUSDT")] {
            let mut p = twin(only);
            for f in &stream {
                p.feed(f);
            }
            if only != Some("BTCUSDT") {
                let b = p.fast.books.get(SYMBOL).unwrap();
                assert_eq!(b.state, SyncState::Live);
                assert_eq!(b.counters.applied, 50, "{:?}", b.counters);
            }
        }
    }
}

#[test]
fn other_bybit_frames_agree() {
    let mut p = twin(None);
    p.feed(&frames(FILE)[0]);
    for f in [
        r#"{"success":true,"ret_msg":"subscribe","conn_id":"x","op":"subscribe"}"#,
        r#"{"op":"pong"}"#,
        r#"{"topic":"publicTrade.XRPUSDT","type":"snapshot","ts":1,"data":[{"T":1,"s":"XRPUSDT","S":"Buy","v":"10","p":"1.95","L":"PlusTick","i":"a","BT":false}]}"#,
        r#"{"topic":"tickers.XRPUSDT","type":"snapshot","ts":1,"data":{"symbol":"XRPUSDT"}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","ts":1,"data":{"s":"XRPUSDT","b":[["1.9","5"]],"a":[["2.0","6"]],"u":1,"seq":7},"cts":1}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUSDT","b":[["1.9","0"]],"u":2},"cts":1}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","data":{"s":"XRPUSDT","a":[],"u":3,"seq":6}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","data":{"s":"XRPUSDT","u":3}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","data":{"s":"XRPUSDT","u":9}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","data":{"s":"ETHUSDT","u":10}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"delta","data":{"s":"XRPUSDT","b":[["9999999997","1"],["1","x"]],"u":11}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":{"s":"XRPUSDT","a":[["9999999997","1"]],"b":[["1","2"]],"u":1}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":{"s":"XRPUSDT","b":[["1","2","3"]],"u":1}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":{"s":"XRPUSDT","b":[["1"]],"u":1}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":{"s":"XRPUSDT","b":[["1","2",3]],"u":1}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":{"s":"XRPUSDT"}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot","data":[]}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"snapshot"}"#,
        r#"{"topic":"orderbook","type":"snapshot","data":{"s":"XRPUSDT","u":1}}"#,
        r#"{"topic":"orderbook.1.XRPUSDT","type":"update","data":{"s":"XRPUSDT","u":1}}"#,
        r#"{"type":"snapshot","data":{"s":"XRPUSDT","u":1}}"#,
        "",
        "null",
        "[]",
        "{}",
    ] {
        p.feed(f);
    }
}

/// Swaps worth trying on a Bybit book frame.
const SWAPS: &[(&str, &str)] = &[
    ("\"XRPUSDT\"", "\"XRP\\u0055SDT\""),
    ("\"XRPUSDT\"", "\"ETHUSDT\""),
    ("\"XRPUSDT\"", "null"),
    ("\"XRPUSDT\"", "1"),
    ("\"XRPUSDT\"", "\"XRPUSDT\u{1}\""),
    ("\"orderbook.", "\"orderbook\\u002e"),
    ("\"orderbook.", "\"publicTrade."),
    ("\"orderbook.", "\"orderbook"),
    ("\"delta\"", "\"snapshot\""),
    ("\"delta\"", "\"Delta\""),
    ("\"delta\"", "null"),
    ("\"snapshot\"", "\"delta\""),
    ("\"topic\"", "\"op\""),
    ("\"topic\"", "\"topic\\u0020\""),
    ("\"type\"", "\"topic\""),
    ("\"data\"", "\"type\""),
    ("\"b\":", "\"a\":"),
    ("\"a\":", "\"b\":"),
    ("\"b\":", "\"B\":"),
    ("\"s\":", "\"symbol\":"),
    ("\"u\":", "\"U\":"),
    ("\"seq\":", "\"u\":"),
    ("\"data\":{", "\"data\":{\"ts\":1,"),
    ("\"data\":{", "\"x\":{},\"data\":{"),
    ("\"data\":{", "\"data\":[{"),
    ("{\"topic\"", "[{\"topic\""),
];

#[test]
fn mutated_frames_agree() {
    let all: Vec<String> = frames(FILE).iter().map(|f| compact(f)).collect();
    let mut checked = 0;
    for only in [None, Some(SYMBOL)] {
        let mut p = twin(only);
        p.feed(&all[0]);
        for (i, f) in all.iter().enumerate() {
            // The snapshot is 20 KB: its truncations are plenty, its levels few.
            for m in mutations(f, 6, &["u", "seq", "ts", "cts"], SWAPS) {
                p.feed(&m);
                checked += 1;
            }
            // The original frame too, so the book moves on as recorded.
            p.feed(f);
            if p.fast.books.get(SYMBOL).map(|b| b.state) != Some(SyncState::Live) {
                p.feed(&all[0]);
                for g in &all[1..=i] {
                    p.feed(g);
                }
            }
        }
    }
    assert!(checked > 50_000, "{checked}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random edits of recorded frames: both paths agree.
    #[test]
    fn edited_frames_agree(
        pick in 1usize..50,
        edits in prop::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        static FRAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let all = FRAMES.get_or_init(|| frames(FILE));
        let mut p = twin(None);
        for f in &all[..pick] {
            p.feed(f);
        }
        p.feed(&edit(&all[pick], &edits));
    }
}
