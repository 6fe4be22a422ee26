#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo venue-replay` on the real crypto recordings (`../shared/data/crypto`): the figures of
//! its CHECK_RESULTS.txt through the binary, and clear errors for bad arguments and files.

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

/// A recording under `../shared/data/crypto` (from the repository root); missing = failure.
fn crypto(rel: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/crypto")
        .join(rel);
    assert!(
        path.is_file(),
        "required real recording is missing: {} (expected in ../shared/data/crypto relative to \
         the repository root); it is never skipped",
        path.display()
    );
    path
}

fn venue_replay(args: &[&str]) -> Output {
    Command::cargo_bin("mbo")
        .expect("the mbo binary is built by cargo test")
        .arg("venue-replay")
        .args(args)
        .output()
        .expect("mbo runs")
}

fn lines(out: &Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "mbo venue-replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

#[test]
fn kraken_v2_verifies_every_checksum_with_the_given_precision() {
    let file = crypto("kraken/python-kraken-sdk_orderbook-v2.json");
    let out = venue_replay(&[
        "--venue",
        "kraken",
        file.to_str().unwrap(),
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
    ]);
    let got = lines(&out);
    assert_eq!(got.len(), 1);
    let l = &got[0];
    // The documented keys, all present.
    for key in [
        "venue",
        "symbol",
        "messages",
        "applied",
        "dropped",
        "gaps",
        "resyncs",
        "checksum_ok",
        "checksum_bad",
        "crossed_events",
        "best_bid",
        "best_ask",
        "bid_levels",
        "ask_levels",
    ] {
        assert!(l.get(key).is_some(), "missing key {key} in {l}");
    }
    assert_eq!(l["symbol"], "BTC/USD");
    assert_eq!(l["messages"], 510);
    assert_eq!(l["checksum_ok"], 510);
    assert_eq!(l["checksum_bad"], 0);
    assert_eq!(l["crossed_events"], 0);
    // Prices come back as the venue's decimal strings.
    assert!(l["best_bid"].as_str().unwrap().parse::<f64>().is_ok());
}

#[test]
fn binance_spot_with_its_rest_snapshot_bridges_without_gaps() {
    let ws = crypto("binance/cryptofeed_BINANCE.ws.1.0");
    let rest = crypto("binance/cryptofeed_BINANCE.http.0.0");
    let out = venue_replay(&[
        "--venue",
        "binance",
        ws.to_str().unwrap(),
        "--snapshot",
        rest.to_str().unwrap(),
    ]);
    let got = lines(&out);
    let nkn = got
        .iter()
        .find(|l| l["symbol"] == "NKNUSDT")
        .expect("NKNUSDT in the output");
    // CHECK_RESULTS.txt: events 150, dropped 1, applied 149, gaps 0, never crossed.
    assert_eq!(nkn["messages"], 150);
    assert_eq!(nkn["dropped"], 1);
    assert_eq!(nkn["applied"], 149);
    assert_eq!(nkn["gaps"], 0);
    assert_eq!(nkn["crossed_events"], 0);
    assert!(got.iter().all(|l| l["gaps"] == 0), "{got:?}");
}

#[test]
fn bybit_final_best_matches_the_recording() {
    let file = crypto("bybit/nautilus_2024-12-01_XRPUSDT_ob500.data");
    let got = lines(&venue_replay(&["--venue", "bybit", file.to_str().unwrap()]));
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["best_bid"], "1.9537");
    assert_eq!(got[0]["best_ask"], "1.9538");
    assert_eq!(got[0]["gaps"], 0);
}

#[test]
fn unknown_venue_and_missing_file_are_clear_errors() {
    let out = venue_replay(&["--venue", "nasdaq", "x"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown venue") && err.contains("kraken"),
        "{err}"
    );

    let out = venue_replay(&["--venue", "bybit", "/nonexistent/recording"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot read /nonexistent/recording"), "{err}");
    // The OS cause once, not repeated by the error chain.
    assert_eq!(err.matches("No such file").count(), 1, "{err}");

    let out = venue_replay(&["--venue", "kraken", "x", "--price-precision", "1"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--qty-precision"));
}
