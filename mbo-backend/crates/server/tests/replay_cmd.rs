#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of `mbo replay` on the real CLX5 file (`../shared/data/mbo/`).

use std::path::PathBuf;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

const CLX5_RECORDS: u64 = 38_212;

/// The real CLX5 file; panics (never skips) when it is missing.
fn clx5() -> PathBuf {
    mbo_testkit::mbo_data("CLX5_mbo.dbn")
}

fn replay(args: &[&str]) -> Output {
    Command::cargo_bin("mbo")
        .unwrap()
        .arg("replay")
        .arg(clx5())
        .args(args)
        .output()
        .unwrap()
}

/// Runs `mbo replay` successfully; returns every stdout line as JSON.
fn replay_ok(args: &[&str]) -> Vec<Value> {
    let out = replay(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mbo replay {args:?} failed: {stderr}");
    assert!(stderr.is_empty(), "unexpected stderr: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn final_line(lines: &[Value]) -> &Value {
    let last = lines.last().expect("at least the final line");
    assert_eq!(last["kind"], "final", "{last}");
    last
}

#[test]
fn max_pace_releases_every_record_and_stops_at_the_end() {
    let lines = replay_ok(&["--pace", "max"]);
    let last = final_line(&lines);
    assert_eq!(last["records_released"], CLX5_RECORDS, "{last}");
    assert_eq!(last["stopped"], "end");
    assert_eq!(last["pace"], "max");
    assert!(last["target_rps"].is_null() && last["error_pct"].is_null());
    assert!(last["seconds"].as_f64().unwrap() > 0.0);
    assert!(lines[..lines.len() - 1]
        .iter()
        .all(|l| l["kind"] == "progress"));
}

#[test]
fn rate_pace_releases_the_rate_times_the_duration() {
    let lines = replay_ok(&[
        "--pace",
        "rate",
        "--rate",
        "20000",
        "--duration",
        "1s",
        "--report-interval",
        "250ms",
    ]);
    let last = final_line(&lines);
    let released = last["records_released"].as_u64().unwrap();
    assert!(
        (19_600..=20_400).contains(&released),
        "{released} released in 1 s at 20,000/s: {last}"
    );
    assert_eq!(last["stopped"], "duration");
    assert_eq!(last["target_rps"], 20_000);
    assert!(last["error_pct"].as_f64().unwrap().abs() < 2.0, "{last}");
    // Progress lines every 250 ms (the last may race the end).
    let progress: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "progress").collect();
    assert!((2..=4).contains(&progress.len()), "{progress:?}");
    for p in &progress {
        assert_eq!(p["state"], "playing");
        assert!(p["released"].as_u64().unwrap() <= released);
    }
}

#[test]
fn realtime_with_loop_and_max_gap_runs_for_the_duration() {
    let lines = replay_ok(&[
        "--pace",
        "realtime",
        "--speed",
        "1000",
        "--max-gap",
        "10ms",
        "--loop",
        "--duration",
        "500ms",
    ]);
    let last = final_line(&lines);
    assert_eq!(last["stopped"], "duration");
    assert_eq!(last["pace"], "realtime");
    assert!(last["records_released"].as_u64().unwrap() > 0);
}

#[test]
fn bad_options_exit_2_with_one_line() {
    for (args, phrase) in [
        (&["--pace", "realtime", "--speed", "0"][..], "--speed"),
        (&["--speed", "5000"][..], "between 0.1 and 1000"),
        (&["--speed", "fast"][..], "--speed"),
        (&["--rate", "0"][..], "at least 1"),
        (
            &["--pace", "warp"][..],
            "possible values: max, rate, realtime",
        ),
        (&["--max-gap", "xyz"][..], "expected a duration"),
        (&["--max-gap", "5"][..], "missing unit"),
        (&["--duration", "0s"][..], "greater than zero"),
    ] {
        let out = replay(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}: stdout not empty");
        assert!(
            stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
            "{args:?}: stderr is not one line: {stderr:?}"
        );
        assert!(stderr.starts_with("mbo: error: "), "{args:?}: {stderr}");
        assert!(
            stderr.contains(phrase),
            "{args:?}: {stderr} lacks {phrase:?}"
        );
    }
}

#[test]
fn missing_file_is_one_line_naming_it() {
    let out = Command::cargo_bin("mbo")
        .unwrap()
        .args(["replay", "/nonexistent/x.dbn"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches('\n').count(), 1, "{stderr:?}");
    assert!(
        stderr.contains("/nonexistent/x.dbn") && stderr.contains("no such file"),
        "{stderr}"
    );
}
