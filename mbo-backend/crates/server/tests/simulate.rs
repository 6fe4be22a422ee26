#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo simulate` and `mbo stats`, end to end: simulated files are read back by the `dbn`
//! crate's own decoder, by `mbo export-book`, and by Databento's Python package
//! (`scripts/check_dbn_python.py`); `mbo stats` is checked on the real CLX5 capture in
//! `../shared/data/mbo/` (numbers computed independently: counts by `dbn`'s decoder here,
//! the rest as measured once and recorded in the feed crate's calibration module).

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command as StdCommand, Output, Stdio};

use assert_cmd::Command;
use dbn::decode::{DbnMetadata, DecodeRecord, DynDecoder};
use dbn::{MboMsg, SType, Schema, VersionUpgradePolicy};
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

fn mbo() -> Command {
    Command::cargo_bin("mbo").expect("the mbo binary is built by cargo test")
}

fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mbo().args(args).output().expect("mbo runs")
}

fn run_ok<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(args);
    assert!(
        out.status.success(),
        "mbo failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `mbo simulate` into `path`; returns its JSON summary (stderr).
fn simulate(path: &Path, records: u64, instruments: u32, seed: u64, pre_open: bool) -> Value {
    let mut args = vec![
        "simulate".to_owned(),
        "--out".into(),
        path.display().to_string(),
        "--records".into(),
        records.to_string(),
        "--instruments".into(),
        instruments.to_string(),
        "--seed".into(),
        seed.to_string(),
    ];
    if pre_open {
        args.push("--pre-open".into());
    }
    let out = run_ok(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "one summary line: {stderr}");
    serde_json::from_str(stderr.trim()).unwrap()
}

/// Metadata and records through the `dbn` crate's general decoder (not mbo's reader).
fn decode_with_dbn(path: &Path) -> (dbn::Metadata, Vec<MboMsg>) {
    let mut dec = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs)
        .unwrap_or_else(|e| panic!("dbn cannot open {}: {e}", path.display()));
    let meta = dec.metadata().clone();
    let mut out = Vec::new();
    while let Some(rec) = dec.decode_record::<MboMsg>().unwrap() {
        out.push(rec.clone());
    }
    (meta, out)
}

fn stats_json(path: &Path) -> Value {
    let out = run_ok([OsStr::new("stats"), OsStr::new("--json"), path.as_os_str()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), 1, "one JSON object: {text}");
    serde_json::from_str(&text).unwrap()
}

fn python_check(input: &[u8], expected_records: u64) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/check_dbn_python.py");
    let child = StdCommand::new("python3")
        .arg(&script)
        .arg("-")
        .arg(expected_records.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = child.unwrap_or_else(|e| {
        panic!(
            "python3 is required to check simulated files with Databento's Python decoder \
             ({e}); install Python 3 and `pip install databento-dbn` (make python-deps)"
        )
    });
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(2),
        "the Python package databento_dbn is missing: `pip install databento-dbn` (or make \
         python-deps): {stderr}"
    );
    assert!(
        out.status.success(),
        "databento_dbn rejected the file: {stderr}"
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn simulated_files_are_real_dbn_that_export_book_reads() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["sim.dbn", "sim.dbn.zst"] {
        let path = dir.path().join(name);
        let summary = simulate(&path, 60_000, 3, 5, false);
        assert_eq!(summary["records"], 60_000);
        assert!(summary["seconds"].as_f64().unwrap() >= 0.0);
        assert!(summary["records_per_s"].as_u64().unwrap() > 0);
        let raw = std::fs::read(&path).unwrap();
        let zstd = name.ends_with(".zst");
        assert_eq!(raw.starts_with(&[0x28, 0xB5, 0x2F, 0xFD]), zstd, "{name}");
        assert_eq!(raw.starts_with(b"DBN"), !zstd, "{name}");
        assert_eq!(summary["compression"], if zstd { "zstd" } else { "none" });

        let (meta, records) = decode_with_dbn(&path);
        assert_eq!(meta.version, 3);
        assert_eq!(meta.dataset, "SIM");
        assert_eq!(meta.schema, Some(Schema::Mbo));
        assert_eq!(meta.stype_in, Some(SType::RawSymbol));
        assert_eq!(meta.stype_out, SType::InstrumentId);
        assert_eq!(meta.symbols, ["CL.SIM", "ES.SIM", "NQ.SIM"]);
        let mappings: BTreeMap<&str, &str> = meta
            .mappings
            .iter()
            .map(|m| (m.raw_symbol.as_str(), m.intervals[0].symbol.as_str()))
            .collect();
        assert_eq!(
            mappings,
            BTreeMap::from([("CL.SIM", "1001"), ("ES.SIM", "1002"), ("NQ.SIM", "1003")])
        );
        assert_eq!(records.len(), 60_000);
        assert_eq!(meta.start, records[0].hd.ts_event);
        assert_eq!(
            meta.end.map(|e| e.get()),
            Some(records.last().unwrap().ts_recv + 1)
        );
        assert!(records.last().unwrap().flags.is_last());

        // export-book: one line per event boundary, each a consistent, uncrossed book.
        let out = run_ok([
            OsStr::new("export-book"),
            path.as_os_str(),
            OsStr::new("--depth"),
            OsStr::new("3"),
        ]);
        let text = String::from_utf8(out.stdout).unwrap();
        let boundaries = records.iter().filter(|r| r.flags.is_last()).count();
        assert_eq!(text.lines().count(), boundaries);
        for line in text.lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            let (bids, asks) = (v["bids"].as_array().unwrap(), v["asks"].as_array().unwrap());
            if let (Some(b), Some(a)) = (bids.first(), asks.first()) {
                assert!(b[0].as_i64() < a[0].as_i64(), "crossed book: {line}");
            }
        }
    }
}

#[test]
fn standard_output_gets_plain_dbn_and_seeds_are_deterministic() {
    let out = run_ok(["simulate", "--out", "-", "--records", "5000", "--seed", "9"]);
    assert!(out.stdout.starts_with(b"DBN\x03"));
    let again = run_ok(["simulate", "--out", "-", "--records", "5000", "--seed", "9"]);
    assert!(out.stdout == again.stdout, "same seed, different bytes");
    let other = run_ok([
        "simulate",
        "--out",
        "-",
        "--records",
        "5000",
        "--seed",
        "10",
    ]);
    assert!(out.stdout != other.stdout, "different seeds, same bytes");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stdout.dbn");
    std::fs::write(&path, &out.stdout).unwrap();
    let (meta, records) = decode_with_dbn(&path);
    assert_eq!(meta.symbols, ["CL.SIM"]);
    assert_eq!(records.len(), 5_000);
}

/// A pipe (like `/dev/null` or any device) is written in place, never replaced by a file.
#[cfg(unix)]
#[test]
fn devices_and_pipes_are_written_in_place() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe");
    let made = StdCommand::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo runs");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    simulate(&fifo, 3_000, 1, 2, false);
    let bytes = reader.join().unwrap();
    assert!(bytes.starts_with(b"DBN"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let expected = run_ok(["simulate", "--out", "-", "--records", "3000", "--seed", "2"]);
    assert!(bytes == expected.stdout);
}

#[test]
fn databento_python_package_reads_simulated_files() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("py.dbn");
    simulate(&plain, 40_000, 2, 21, false);
    let report = python_check(&std::fs::read(&plain).unwrap(), 40_000);
    assert_eq!(report["dataset"], "SIM");
    assert_eq!(report["schema"], "mbo");
    assert_eq!(report["version"], 3);
    assert_eq!(report["symbols"], serde_json::json!(["CL.SIM", "ES.SIM"]));
    assert_eq!(
        report["instruments"],
        serde_json::json!({"1001": "CL.SIM", "1002": "ES.SIM"})
    );
    for action in ["A", "C", "M", "T", "F"] {
        assert!(report["actions"][action].as_u64().unwrap() > 0, "{action}");
    }

    // The zstd file holds the same DBN stream (decompressed here: Python's standard
    // library has no zstd before 3.14).
    let zst = dir.path().join("py.dbn.zst");
    simulate(&zst, 40_000, 2, 21, false);
    let inflated = zstd::stream::decode_all(&std::fs::read(&zst).unwrap()[..]).unwrap();
    assert!(inflated == std::fs::read(&plain).unwrap());
    let again = python_check(&inflated, 40_000);
    assert_eq!(again, report);
}

#[test]
fn pre_open_files_are_crossed_and_have_no_trades() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pre.dbn.zst");
    simulate(&path, 50_000, 2, 3, true);
    let s = stats_json(&path);
    assert!(s["crossed_boundaries"].as_u64().unwrap() > 1_000, "{s}");
    assert_eq!(s["actions"]["T"]["count"], 0);
    assert_eq!(s["actions"]["F"]["count"], 0);
    assert_eq!(s["unknown_cancels"], 0);
    assert_eq!(s["unknown_modifies"], 0);
}

/// `mbo stats` on CLX5: counts agree with the `dbn` crate's decoder; the rest are the
/// numbers measured on the file (also in `mbo_feed::sim::calibration`'s provenance).
#[test]
fn stats_on_clx5_gives_the_measured_numbers() {
    let path = data("CLX5_mbo.dbn");
    let s = stats_json(&path);
    let (_, records) = decode_with_dbn(&path);
    let count = |a: u8| records.iter().filter(|r| r.action as u8 == a).count() as u64;
    assert_eq!(s["records"], records.len() as u64);
    assert_eq!(s["records"], 38_212);
    assert_eq!(
        s["events"],
        records.iter().filter(|r| r.flags.is_last()).count() as u64
    );
    for (code, a) in [
        ("A", b'A'),
        ("C", b'C'),
        ("M", b'M'),
        ("T", b'T'),
        ("F", b'F'),
    ] {
        assert_eq!(s["actions"][code]["count"], count(a), "{code}");
    }
    assert_eq!(s["actions"]["A"]["count"], 14_959);
    assert_eq!(s["actions"]["C"]["count"], 16_252);
    assert_eq!(s["actions"]["A"]["pct"], 39.147);
    assert_eq!(s["dataset"], "GLBX.MDP3");
    assert_eq!(s["symbols"], serde_json::json!(["CLX5"]));
    assert_eq!(s["books"], 1);
    assert_eq!(s["ticks"], serde_json::json!({"432669": "0.01"}));
    // Adds: mostly 1 lot.
    let add = &s["add_size"];
    assert_eq!(add["count"], 14_959);
    assert_eq!(
        [
            &add["min"],
            &add["p50"],
            &add["p90"],
            &add["p99"],
            &add["max"]
        ],
        [1, 1, 2, 9, 125]
    );
    // Events: single records at the median; the pre-open tail has one of 648 records.
    let rpe = &s["records_per_event"];
    assert_eq!([&rpe["p50"], &rpe["p99"], &rpe["max"]], [1, 5, 648]);
    // Trades.
    assert_eq!(s["trades"]["records"], 1_599);
    assert_eq!(s["trades"]["events"], 1_587);
    assert_eq!(s["trades"]["size"]["p50"], 1);
    assert_eq!(s["trades"]["size"]["max"], 91);
    // Book shape and spread at boundaries (the pre-open tail is crossed: negative spreads).
    assert_eq!(s["levels_per_side"]["p50"], 76);
    assert_eq!(s["orders_per_level"]["p50"], 1);
    assert_eq!(s["spread_ticks"]["p50"], 1);
    assert_eq!(s["spread_ticks"]["p90"], 2);
    assert_eq!(s["spread_ticks"]["min"], -62);
    assert_eq!(s["spread_ticks"]["one_tick_pct"], 83.055);
    // Anomalies: the file starts mid-session and ends in pre-open.
    assert_eq!(s["unknown_cancels"], 1_224);
    assert_eq!(s["unknown_modifies"], 216);
    assert_eq!(s["crossed_boundaries"], 172);
    assert_eq!(s["invalid_records"], 0);

    // The table says the same things.
    let out = run_ok([OsStr::new("stats"), path.as_os_str()]);
    let table = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "records              38212",
        "events               32053",
        "unknown cancels      1224",
        "crossed boundaries   172",
        "432669: 0.01",
    ] {
        assert!(table.contains(needle), "missing {needle:?} in\n{table}");
    }
}

#[test]
fn stats_on_a_simulated_file_has_every_key_and_no_anomaly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.dbn.zst");
    simulate(&path, 100_000, 3, 8, false);
    let s = stats_json(&path);
    let keys: Vec<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    for key in [
        "records",
        "events",
        "books",
        "actions",
        "add_size",
        "records_per_event",
        "trades",
        "levels_per_side",
        "orders_per_level",
        "spread_ticks",
        "ticks",
        "unknown_cancels",
        "unknown_modifies",
        "crossed_boundaries",
    ] {
        assert!(keys.contains(&key), "missing {key}: {keys:?}");
    }
    assert_eq!(s["records"], 100_000);
    assert_eq!(s["books"], 3);
    assert_eq!(
        s["ticks"],
        serde_json::json!({"1001": "0.01", "1002": "0.25", "1003": "0.25"})
    );
    for key in [
        "unknown_cancels",
        "unknown_modifies",
        "crossed_boundaries",
        "invalid_records",
    ] {
        assert_eq!(s[key], 0, "{key}");
    }
    // Plausibly CLX5-like (see the feed crate's tests for the detailed comparison).
    assert_eq!(s["add_size"]["p50"], 1);
    assert_eq!(s["spread_ticks"]["p50"], 1);
    assert_eq!(s["records_per_event"]["p50"], 1);
    let pct = |a: &str| s["actions"][a]["pct"].as_f64().unwrap();
    assert!((35.0..46.0).contains(&pct("A")), "{}", pct("A"));
    assert!((35.0..46.0).contains(&pct("C")), "{}", pct("C"));
}

#[test]
fn errors_are_one_line_and_name_the_problem() {
    let out = run(["stats", "/nonexistent/x.dbn"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("/nonexistent/x.dbn") && err.contains("no such file"),
        "{err}"
    );

    let mbp = data("other-schemas/test_data.mbp-10.dbn.zst");
    let out = run([OsStr::new("stats"), mbp.as_os_str()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("expected mbo"), "{err}");

    let out = run([
        "simulate",
        "--out",
        "/nonexistent/dir/x.dbn",
        "--records",
        "10",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent/dir/x.dbn"), "{err}");

    for bad in [
        vec!["simulate", "--out", "x.dbn", "--records", "0"],
        vec!["simulate", "--out", "x.dbn"],
        vec![
            "simulate",
            "--out",
            "x.dbn",
            "--records",
            "5",
            "--instruments",
            "0",
        ],
    ] {
        let out = run(&bad);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(!Path::new("x.dbn").exists());
    }
}
