//! The fast path and the `serde_json` path must agree exactly: same events, books, sync
//! states and counters, over every frame of the Binance recordings (spot, US, futures; as
//! recorded, spaced out, with keys reordered, without the envelope) with their REST
//! snapshots delivered at their recorded times, and over mutated frames.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;

use super::{scan_depth, Binance};
use crate::fast_test_util::{compact, edit, mutations, read, spaced, Twin};
use crate::fixtures::{read_cryptofeed_http, read_cryptofeed_ws};
use crate::scan::LevelScan;
use crate::state::Books;
use crate::SyncState;

/// (ws recording, REST recording, futures rules)
const FILES: [(&str, &str, bool); 3] = [
    (
        "binance/cryptofeed_BINANCE.ws.1.0",
        "binance/cryptofeed_BINANCE.http.0.0",
        false,
    ),
    (
        "binance/cryptofeed_BINANCE_US.ws.1.0",
        "binance/cryptofeed_BINANCE_US.http.0.0",
        false,
    ),
    (
        "binance/cryptofeed_BINANCE_FUTURES.ws.1.0",
        "binance/cryptofeed_BINANCE_FUTURES.http.0.0",
        true,
    ),
];

fn twin(futures: bool) -> Twin<Binance> {
    let make = |b| {
        if futures {
            Binance::futures(b)
        } else {
            Binance::spot(b)
        }
    };
    Twin {
        fast: make(Books::new()),
        serde: make(Books::new()).with_fast_path(false),
    }
}

/// A recording: frames and REST snapshots `(symbol, body)`, each with its receive time.
struct Recording {
    frames: Vec<(u64, String)>,
    snapshots: Vec<(u64, String, String)>,
    futures: bool,
}

fn recordings() -> Vec<Recording> {
    FILES
        .iter()
        .map(|&(ws, http, futures)| Recording {
            frames: read_cryptofeed_ws(&read(ws))
                .iter()
                .map(|f| (f.recv_ns.unwrap(), f.text.to_owned()))
                .collect(),
            snapshots: read_cryptofeed_http(&read(http))
                .unwrap()
                .iter()
                .map(|s| (s.recv_ns.unwrap(), s.symbol.clone(), s.body.to_owned()))
                .collect(),
            futures,
        })
        .collect()
}

/// Plays `frames` (rewritten by `f`) with the snapshots at their times through both.
fn play(p: &mut Twin<Binance>, r: &Recording, f: impl Fn(&str) -> String) {
    let mut snaps = r.snapshots.iter().peekable();
    for (t, frame) in &r.frames {
        while let Some((_, symbol, body)) = snaps.next_if(|s| s.0 <= *t) {
            p.rest(symbol, body);
        }
        p.feed(&f(frame));
    }
}

/// The `data` object of a combined-stream frame (the raw stream's frame).
fn unwrap_data(f: &str) -> String {
    let i = f.find("\"data\":").unwrap();
    f[i + 7..f.len() - 1].to_owned()
}

fn sorted(f: &str) -> String {
    serde_json::from_str::<serde_json::Value>(f)
        .unwrap()
        .to_string()
}

#[test]
fn recorded_frames_agree_and_take_the_fast_path() {
    let rewrites: [fn(&str) -> String; 6] = [
        str::to_owned,
        compact,
        |f| spaced(f, " "),
        |f| spaced(f, "\n\t\r"),
        sorted,
        unwrap_data,
    ];
    let mut scan = LevelScan::default();
    for r in recordings() {
        let mut depth = 0;
        for (_, f) in &r.frames {
            if f.contains("\"depthUpdate\"") {
                depth += 1;
                for rewrite in rewrites {
                    let g = rewrite(f);
                    assert!(scan_depth(&g, &mut scan).is_some(), "not taken: {g}");
                    assert!(!scan.bad_number);
                }
            }
        }
        assert!(depth > 150, "{depth}");
        for rewrite in rewrites {
            let mut p = twin(r.futures);
            play(&mut p, &r, rewrite);
            let live = p
                .fast
                .books
                .all()
                .iter()
                .filter(|b| b.state == SyncState::Live && b.counters.applied > 10)
                .count();
            assert!(live >= 2, "{:?}", p.fast.books.all());
        }
        // The other rules on the same frames: futures frames to a spot synchroniser and
        // spot frames (no `pu`) to a futures one.
        let mut p = twin(!r.futures);
        play(&mut p, &r, str::to_owned);
    }
}

#[test]
fn other_binance_frames_agree() {
    for futures in [false, true] {
        let mut p = twin(futures);
        for f in [
            r#"{"result":null,"id":1}"#,
            r#"{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"s":"ETHUSDT","t":7,"p":"4149.74000000","q":"0.43870000","b":1,"a":2,"T":1639351062243,"m":true,"M":true}}"#,
            r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":5,"u":7,"pu":4,"b":[["1.0","2.0"]],"a":[]}"#,
            r#"{"e":"depthUpdate","E":1,"s":"ETHUSDT","U":5,"u":7,"b":[["1.0","2.0","x"]],"a":[["9999999997","1"]]}"#,
            r#"{"e":"depthUpdate","s":"ETHUSDT","U":8,"u":9,"pu":7}"#,
            r#"{"e":"depthUpdate","s":"ETHUSDT","U":8,"u":9,"pu":7,"a":[["2","3"]],"b":[["1","x"]]}"#,
            r#"{"e":"depthUpdate","s":"ETHUSDT","U":8,"pu":7}"#,
            r#"{"e":"depthUpdate","U":8,"u":9,"pu":7}"#,
            r#"{"e":"depthupdate","s":"ETHUSDT","U":8,"u":9,"pu":7}"#,
            r#"{"stream":"x","e":"depthUpdate","s":"ETHUSDT","U":8,"u":9,"pu":7}"#,
            r#"{"stream":"x","data":{"e":"depthUpdate","s":"ETHUSDT","U":8,"u":9,"pu":7},"s":"X"}"#,
            r#"{"data":{"e":"depthUpdate","s":"ETHUSDT","U":10,"u":11,"pu":9}}"#,
            r#"{"data":null}"#,
            r#"{"data":[]}"#,
            "",
            "null",
            "[]",
            "{}",
        ] {
            p.feed(f);
        }
        p.rest(
            "ETHUSDT",
            r#"{"lastUpdateId":6,"bids":[["1.0","1"]],"asks":[]}"#,
        );
        p.feed(r#"{"e":"depthUpdate","s":"ETHUSDT","U":12,"u":13,"pu":11}"#);
    }
}

/// Swaps worth trying on a Binance depth frame.
const SWAPS: &[(&str, &str)] = &[
    ("\"depthUpdate\"", "\"depth\\u0055pdate\""),
    ("\"depthUpdate\"", "\"trade\""),
    ("\"depthUpdate\"", "null"),
    ("\"depthUpdate\"", "1"),
    ("\"s\":\"", "\"s\":\"X"),
    ("\"s\":\"", "\"s\":\"\\u0041"),
    ("\"s\":", "\"S\":"),
    ("\"stream\":\"", "\"stream\":\"\\n"),
    ("\"stream\":\"", "\"stream\":1,\"x\":\""),
    ("\"stream\"", "\"data\""),
    ("\"stream\"", "\"e\""),
    ("\"data\":{", "\"data\":{\"x\":1,"),
    ("\"data\":{", "\"data\":[{"),
    ("\"data\":{", "\"data\":{\"data\":{},"),
    ("\"e\":", "\"E\":"),
    ("\"U\":", "\"u\":"),
    ("\"u\":", "\"U\":"),
    ("\"pu\":", "\"u\":"),
    ("\"T\":", "\"t\":"),
    ("\"b\":", "\"a\":"),
    ("\"a\":", "\"b\":"),
    ("\"b\":", "\"B\":"),
];

#[test]
fn mutated_frames_agree() {
    let mut checked = 0;
    for r in recordings() {
        let depth: Vec<String> = r
            .frames
            .iter()
            .map(|f| &f.1)
            .filter(|f| f.contains("depthUpdate"))
            .take(40)
            .cloned()
            .collect();
        for raw in [false, true] {
            let mut p = twin(r.futures);
            for (_, symbol, body) in &r.snapshots {
                p.rest(symbol, body);
            }
            for f in &depth {
                let f = if raw { unwrap_data(f) } else { f.clone() };
                for m in mutations(&f, 4, &["U", "u", "pu", "E", "T", "stream"], SWAPS) {
                    p.feed(&m);
                    checked += 1;
                }
                p.feed(&f);
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
        which in 0usize..3,
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((0u8..4, any::<prop::sample::Index>(), any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        static RECORDINGS: std::sync::OnceLock<Vec<Recording>> = std::sync::OnceLock::new();
        let r = &RECORDINGS.get_or_init(recordings)[which];
        let mut p = twin(r.futures);
        for (_, symbol, body) in &r.snapshots {
            p.rest(symbol, body);
        }
        let i = pick.index(r.frames.len().min(200));
        for (_, f) in &r.frames[..i] {
            p.feed(f);
        }
        p.feed(&edit(&r.frames[i].1, &edits));
    }
}
