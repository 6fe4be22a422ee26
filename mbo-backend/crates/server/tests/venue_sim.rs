#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo venue-sim` (the real binary) serving the real crypto recordings on loopback: the live
//! connector gets the same books as a replay; SIGTERM stops it cleanly; bad input is one
//! line and exit code 2. And `mbo record` against it: the recorded files replay (through
//! `mbo venue-replay`) to the same books as the original recordings.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mbo_venues::{Precision, VenueKind, VenueOptions};
use mbo_venues_net::{spawn, CancellationToken, ConnectionConfig};
use serde_json::Value;

/// A recording under `$MBO_CRYPTO_DATA` or `../shared/data/crypto` from the repository root;
/// missing = failure, never skipped.
fn crypto(rel: &str) -> PathBuf {
    let dir = std::env::var_os("MBO_CRYPTO_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
        PathBuf::from,
    );
    let path = dir.join(rel);
    assert!(
        path.is_file(),
        "required real recording is missing: {} (expected in ../shared/data/crypto relative to \
         the repository root, or set MBO_CRYPTO_DATA); it is never skipped",
        path.display()
    );
    path
}

/// A running `mbo venue-sim`, killed if the test fails before stopping it.
struct Sim {
    child: Child,
    ws_url: String,
    rest_url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sim {
    fn start(args: &[&str]) -> Sim {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mbo"))
            .arg("venue-sim")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        // Exactly one line, keys in the documented order.
        assert!(
            line.starts_with(r#"{"venue":""#) && line.ends_with("}\n"),
            "{line:?}"
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 3, "{line:?}");
        assert!(line.find("ws_url") < line.find("rest_url"), "{line:?}");
        let ws_url = v["ws_url"].as_str().unwrap().to_owned();
        let rest_url = v["rest_url"].as_str().unwrap().to_owned();
        assert!(ws_url.starts_with("ws://127.0.0.1:"), "{v}");
        assert!(rest_url.starts_with("http://127.0.0.1:"), "{v}");
        Sim {
            child,
            ws_url,
            rest_url,
        }
    }

    /// SIGTERM; the process must exit successfully, soon.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "venue-sim exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "venue-sim did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn mbo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mbo"))
        .args(args)
        .output()
        .unwrap()
}

fn json_lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "mbo failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn kraken_sim_gives_the_connector_the_replayed_book() {
    let file = crypto("kraken/python-kraken-sdk_orderbook-v2.json");
    let sim = Sim::start(&[
        "--venue",
        "kraken",
        file.to_str().unwrap(),
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
    ]);
    let options = VenueOptions {
        symbols: vec!["BTC/USD".into()],
        depth: Some(10),
        precision: Some(Precision { price: 1, qty: 8 }),
    };
    let expected = mbo_venues::replay_files(VenueKind::Kraken, &file, None, &options).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let venue = rt.block_on(async {
        let mut cfg = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
        cfg.ws_url.clone_from(&sim.ws_url);
        let cancel = CancellationToken::new();
        let mut handle = spawn(cfg, None, cancel.clone()).unwrap();
        // 510 frames + 3 subscribe acks + the instrument message.
        let h = tokio::time::timeout(
            Duration::from_secs(10),
            handle.health.wait_for(|h| h.messages == 514),
        )
        .await
        .expect("all frames in time")
        .unwrap()
        .clone();
        assert_eq!(
            (h.gaps, h.checksum_failures, h.books_live),
            (0, 0, 1),
            "{h:?}"
        );
        cancel.cancel();
        handle.join().await.unwrap()
    });
    let b = venue.books().get("BTC/USD").unwrap();
    assert_eq!((b.counters.checksum_ok, b.counters.checksum_bad), (510, 0));
    let got = b.summary("kraken");
    let want = &expected.summaries[0];
    assert_eq!(
        (&got.best_bid, &got.best_ask, got.bid_levels, got.ask_levels),
        (
            &want.best_bid,
            &want.best_ask,
            want.bid_levels,
            want.ask_levels
        )
    );
    sim.stop();
}

#[test]
fn bad_input_is_one_line_and_exit_code_2() {
    let file = crypto("kraken/python-kraken-sdk_orderbook-v2.json");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let bad_sdk = dir.path().join("bad");
    std::fs::write(&bad_sdk, "{\"init\": {}, \"updates\": 5}\n").unwrap();
    for (args, needle) in [
        (
            vec!["--venue", "kraken", missing.to_str().unwrap()],
            "missing.json",
        ),
        (
            vec!["--venue", "nasdaq", file.to_str().unwrap()],
            "unknown venue",
        ),
        (
            vec!["--venue", "kraken", empty.to_str().unwrap()],
            "no frames",
        ),
        (
            vec!["--venue", "kraken", file.to_str().unwrap(), "--rate", "0"],
            "rate",
        ),
        (
            vec![
                "--venue",
                "kraken",
                file.to_str().unwrap(),
                "--bind",
                "256.0.0.1:0",
            ],
            "256.0.0.1",
        ),
    ] {
        let mut full = vec!["venue-sim"];
        full.extend(args.iter().copied());
        let out = mbo(&full);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

/// `mbo venue-replay` summary lines keyed by symbol.
fn replay_lines(args: &[&str]) -> Vec<Value> {
    let mut full = vec!["venue-replay"];
    full.extend(args);
    let mut lines = json_lines(&mbo(&full));
    lines.sort_by(|a, b| a["symbol"].as_str().cmp(&b["symbol"].as_str()));
    lines
}

fn same_books(got: &[Value], want: &[Value]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        for key in ["symbol", "best_bid", "best_ask", "bid_levels", "ask_levels"] {
            assert_eq!(g[key], w[key], "{key}: {g} vs {w}");
        }
        assert_eq!(g["gaps"], 0, "{g}");
        assert_eq!(g["checksum_bad"], 0, "{g}");
    }
}

#[test]
fn record_against_the_sim_replays_to_the_same_books() {
    let kraken = crypto("kraken/python-kraken-sdk_orderbook-v2.json");
    let binance_ws = crypto("binance/cryptofeed_BINANCE.ws.1.0");
    let binance_http = crypto("binance/cryptofeed_BINANCE.http.0.0");
    let k = Sim::start(&[
        "--venue",
        "kraken",
        kraken.to_str().unwrap(),
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
    ]);
    let b = Sim::start(&[
        "--venue",
        "binance",
        binance_ws.to_str().unwrap(),
        "--snapshot",
        binance_http.to_str().unwrap(),
    ]);
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("rec");
    let out = mbo(&[
        "record",
        "--venues",
        "kraken,binance",
        "--symbols",
        "BTC-USD,NKNUSDT,BLZETH,LRCBTC,RUNEEUR",
        "--out",
        out_dir.to_str().unwrap(),
        "--seconds",
        "3",
        "--venue-url",
        &format!("kraken={}", k.ws_url),
        "--venue-url",
        &format!("binance={}/ws", b.ws_url),
    ]);
    let summary = json_lines(&out);
    assert_eq!(summary.len(), 2, "{summary:?}");
    assert_eq!(summary[0]["venue"], "kraken");
    // 510 frames, 3 subscribe acks, the instrument message.
    assert_eq!(summary[0]["frames"], 514, "{}", summary[0]);
    assert_eq!(summary[1]["venue"], "binance");
    assert_eq!(summary[1]["rest_snapshots"], 4, "{}", summary[1]);
    assert_eq!(summary[1]["dropped"], 0);
    let file = |s: &Value, i: usize| s["files"][i].as_str().unwrap().to_owned();
    let kraken_rec = file(&summary[0], 0);
    assert!(
        Path::new(&kraken_rec).ends_with("kraken.ws.0"),
        "{kraken_rec}"
    );
    let (binance_rec, binance_rest) = (file(&summary[1], 0), file(&summary[1], 1));
    // One port for both: the REST base is the WebSocket's host (what --venue-url derives).
    assert_eq!(b.rest_url, b.ws_url.replacen("ws://", "http://", 1));
    assert!(Path::new(&binance_rest).ends_with("binance.http.0"));
    k.stop();
    b.stop();

    // Kraken: the recording carries the instrument message, so no precision is given.
    let got = replay_lines(&["--venue", "kraken", &kraken_rec]);
    let want = replay_lines(&[
        "--venue",
        "kraken",
        kraken.to_str().unwrap(),
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
    ]);
    same_books(&got, &want);
    assert_eq!(got[0]["checksum_ok"], 510, "{}", got[0]);

    let got = replay_lines(&[
        "--venue",
        "binance",
        &binance_rec,
        "--snapshot",
        &binance_rest,
    ]);
    let want = replay_lines(&[
        "--venue",
        "binance",
        binance_ws.to_str().unwrap(),
        "--snapshot",
        binance_http.to_str().unwrap(),
    ]);
    same_books(&got, &want);

    // A second recording never overwrites the first: the next index.
    let again = mbo(&[
        "record",
        "--venues",
        "kraken",
        "--symbols",
        "BTC-USD",
        "--out",
        out_dir.to_str().unwrap(),
        "--seconds",
        "0.2",
        "--venue-url",
        "kraken=ws://127.0.0.1:9",
    ]);
    let s = json_lines(&again);
    assert!(
        s[0]["files"][0].as_str().unwrap().ends_with("kraken.ws.1"),
        "{}",
        s[0]
    );
    assert_eq!(s[0]["frames"], 0);
}
