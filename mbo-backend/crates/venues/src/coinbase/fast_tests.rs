//! The fast path and the `serde_json` path must agree exactly: same events, books, sync
//! states and counters, over every frame of the Coinbase legacy recording (as recorded,
//! spaced out, with keys reordered) and over mutated frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::{scan_legacy, Coinbase};
use crate::fast_test_util::{compact, edit, frames, mutations, spaced, Twin};
use crate::scan::LevelScan;
use crate::state::Books;
use crate::SyncState;

const FILE: &str = "coinbase/cryptofeed_COINBASE.ws.28.0";

fn twin(only: Option<&str>) -> Twin<Coinbase> {
    let books = || only.map_or_else(Books::new, |s| Books::only(&[s]));
    Twin {
        fast: Coinbase::new(books()),
        serde: Coinbase::new(books()).with_fast_path(false),
    }
}

fn is_book(f: &str) -> bool {
    f.starts_with("{\"type\":\"l2update\"") || f.starts_with("{\"type\":\"snapshot\"")
}

fn sorted(f: &str) -> String {
    serde_json::from_str::<serde_json::Value>(f)
        .unwrap()
        .to_string()
}

#[test]
fn recorded_frames_agree_and_take_the_fast_path() {
    let recorded = frames(FILE);
    let rewrites: [fn(&str) -> String; 4] = [
        str::to_owned,
        |f| spaced(f, " "),
        |f| spaced(f, "\n\t\r"),
        sorted,
    ];
    let mut scan = LevelScan::default();
    let mut books = 0;
    for f in &recorded {
        if is_book(f) {
            books += 1;
            for rewrite in rewrites {
                let g = rewrite(f);
                assert!(scan_legacy(&g, &mut scan).is_some(), "not taken: {g}");
                assert!(!scan.bad_number);
            }
        }
    }
    assert_eq!(books, 9729);
    for rewrite in rewrites {
        for only in [None, Some("BAND-GBP")] {
            let mut p = twin(only);
            for f in &recorded {
                p.feed(&rewrite(f));
            }
            let live = p
                .fast
                .books
                .all()
                .iter()
                .filter(|b| b.state == SyncState::Live && b.counters.applied > 10)
                .count();
            assert!(live >= 1, "{:?}", p.fast.counters);
        }
    }
}

#[test]
fn other_coinbase_frames_agree() {
    let mut p = twin(None);
    for f in [
        r#"{"type":"snapshot","product_id":"X-USD","bids":[["1.0","2"]],"asks":[["1.5","3"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["buy","1.1","2"],["sell","1.4","0"]],"time":"2021-04-17T16:43:37.075687Z"}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["buy","1.1","2","x"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["bid","1.1","2"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["sell","1.1","x"],["bid","1","1"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["sell","9999999997","1"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[["sell","1.1"]]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[]}"#,
        r#"{"type":"l2update","product_id":"X-USD"}"#,
        r#"{"type":"l2update","changes":[]}"#,
        r#"{"type":"l2update","product_id":"Y-USD","changes":[]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[],"bids":[]}"#,
        r#"{"type":"snapshot","product_id":"X-USD","bids":[],"changes":[]}"#,
        r#"{"type":"snapshot","product_id":"X-USD","asks":[["1","x"]],"bids":[["1","2"]]}"#,
        r#"{"type":"snapshot","product_id":"X-USD"}"#,
        r#"{"type":"match","product_id":"X-USD","price":"1.2","size":"1","side":"buy","time":"2021-04-17T16:43:37.075687Z"}"#,
        r#"{"type":"heartbeat"}"#,
        r#"{"channel":"l2_data","type":"l2update","sequence_num":1,"events":[]}"#,
        r#"{"type":"l2update","product_id":"X-USD","changes":[],"channel":"x"}"#,
        "",
        "null",
        "[]",
        "{}",
    ] {
        p.feed(f);
    }
}

/// Swaps worth trying on a legacy book frame.
const SWAPS: &[(&str, &str)] = &[
    ("\"l2update\"", "\"l2\\u0075pdate\""),
    ("\"l2update\"", "\"snapshot\""),
    ("\"l2update\"", "\"match\""),
    ("\"l2update\"", "null"),
    ("\"snapshot\"", "\"l2update\""),
    ("\"buy\"", "\"sell\""),
    ("\"buy\"", "\"bid\""),
    ("\"buy\"", "\"b\\u0075y\""),
    ("\"sell\"", "\"buy\""),
    ("\"sell\"", "null"),
    ("\"product_id\":\"", "\"product_id\":\"X"),
    ("\"product_id\":\"", "\"product_id\":\"\\t"),
    ("\"product_id\"", "\"type\""),
    ("\"product_id\"", "\"channel\""),
    ("\"changes\"", "\"bids\""),
    ("\"changes\"", "\"change\""),
    ("\"time\"", "\"product_id\""),
    ("\"time\":\"", "\"time\":\"\\u0031"),
    ("\"time\":\"", "\"time\":1,\"x\":\""),
    ("\"bids\"", "\"asks\""),
    ("\"asks\"", "\"bids\""),
    ("\"asks\"", "\"changes\""),
    ("{\"type\"", "{\"sequence_num\":1,\"type\""),
];

#[test]
fn mutated_frames_agree() {
    let recorded = frames(FILE);
    // A small snapshot (keys sorted: asks first) and the first updates of its product.
    let snap: serde_json::Value = serde_json::from_str(
        recorded
            .iter()
            .find(|f| f.starts_with("{\"type\":\"snapshot\""))
            .unwrap(),
    )
    .unwrap();
    let product = snap["product_id"].as_str().unwrap().to_owned();
    let mut small = snap.clone();
    for side in ["bids", "asks"] {
        small[side] = serde_json::Value::Array(snap[side].as_array().unwrap()[..5].to_vec());
    }
    let small = small.to_string();
    let updates: Vec<&String> = recorded
        .iter()
        .filter(|f| f.contains("l2update") && f.contains(&product))
        .take(40)
        .collect();
    let mut checked = 0;
    for only in [None, Some(product.as_str())] {
        let mut p = twin(only);
        for f in std::iter::once(&small).chain(updates.iter().copied()) {
            for m in mutations(f, 4, &["time"], SWAPS) {
                p.feed(&m);
                checked += 1;
            }
            p.feed(f);
            if p.fast.books.get(&product).map(|b| b.state) != Some(SyncState::Live) {
                p.feed(&small);
            }
        }
    }
    assert!(checked > 20_000, "{checked}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random edits of recorded update frames: both paths agree.
    #[test]
    fn edited_frames_agree(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        static FRAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
        let all = FRAMES.get_or_init(|| frames(FILE).into_iter().take(2000).collect());
        let mut p = twin(None);
        // The snapshots come first in the recording.
        for f in all.iter().filter(|f| f.contains("\"snapshot\"")) {
            p.feed(f);
        }
        let f = &all[pick.index(all.len())];
        p.feed(&edit(f, &edits));
        p.feed(&edit(&compact(f), &edits));
    }
}
