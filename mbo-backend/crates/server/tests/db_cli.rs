#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! `mbo db` end to end, on the real binary: import (idempotent), stats against the file's
//! own numbers (counted here by the `dbn` crate's decoder), retention, vacuum, and clear
//! failures that never create a database.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use dbn::decode::{DbnMetadata, DecodeRecord, DynDecoder};
use dbn::{MboMsg, VersionUpgradePolicy};
use serde_json::Value;

/// `mbo` run in `dir` (so no `.env` of the repository applies) without `MBO_DB`.
fn mbo(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("mbo").expect("the mbo binary is built by cargo test");
    cmd.current_dir(dir).env_remove("MBO_DB");
    cmd
}

fn run<I, S>(dir: &Path, args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mbo(dir).args(args).output().expect("mbo runs")
}

fn run_ok<I, S>(dir: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(dir, args);
    assert!(
        out.status.success(),
        "mbo failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json_ok<I, S>(dir: &Path, args: I) -> Value
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let text = run_ok(dir, args);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Fails with status 2 and a one-line `mbo: error:` message; returns that message.
fn run_err<I, S>(dir: &Path, args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(dir, args);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.starts_with("mbo: error: "), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    err
}

fn clx5() -> PathBuf {
    mbo_testkit::mbo_data("CLX5_mbo.dbn")
}

/// Every record of a file, decoded by the `dbn` crate.
fn records(path: &Path) -> Vec<MboMsg> {
    let mut dec = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = dec.decode_record::<MboMsg>().unwrap() {
        out.push(rec.clone());
    }
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn importing_twice_stores_the_file_once_and_stats_match_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("nested/dir/mbo.db");
    let file = clx5();
    let recs = records(&file);
    let n = recs.len() as u64;
    let trades = recs.iter().filter(|r| r.action as u8 == b'T').count() as u64;

    let first = json_ok(
        d,
        [
            "db",
            "import",
            s(&file),
            "--db",
            s(&db),
            "--checkpoint-every",
            "5000",
            "--json",
        ],
    );
    assert_eq!(first["records"], n);
    assert_eq!(first["events_written"], n);
    assert_eq!(first["trades_written"], trades);
    assert_eq!(first["already_stored"], false);
    assert!(first["checkpoints_written"].as_u64().unwrap() > 0);
    assert!(first["symbols"].as_u64().unwrap() >= 1);
    assert_eq!(first["dataset"], "GLBX.MDP3");
    assert!(first["source_key"]
        .as_str()
        .unwrap()
        .starts_with("file:sha256:"));

    let again = run_ok(d, ["db", "import", s(&file), "--db", s(&db)]);
    assert!(again.contains("already stored"), "{again}");
    assert!(again.contains("nothing added"), "{again}");
    let again = json_ok(d, ["db", "import", s(&file), "--db", s(&db), "--json"]);
    assert_eq!(again["events_written"], 0);
    assert_eq!(again["trades_written"], 0);
    assert_eq!(again["checkpoints_written"], 0);
    assert_eq!(again["already_stored"], true);
    assert_eq!(again["session"], first["session"]);

    let stats = json_ok(d, ["db", "stats", "--db", s(&db), "--json"]);
    assert_eq!(stats["schema_version"], mbo_store::schema::CURRENT_VERSION);
    assert_eq!(stats["rows"]["events"], n);
    assert_eq!(stats["rows"]["trades"], trades);
    assert_eq!(stats["rows"]["sessions"], 1);
    assert!(stats["rows"]["instruments"].as_u64().unwrap() >= 1);
    assert_eq!(
        stats["rows"]["checkpoints"], first["checkpoints_written"],
        "the second import added no round"
    );
    assert!(stats["file_bytes"].as_u64().unwrap() > 0);
    assert!(stats["bytes_per_million_events"].as_f64().unwrap() > 0.0);
    let session = &stats["sessions"][0];
    assert_eq!(session["events"], n);
    assert_eq!(session["first_index"], 0);
    assert_eq!(session["last_index"], n - 1);
    assert_eq!(session["first_ts_recv"], recs[0].ts_recv);
    assert_eq!(session["last_ts_recv"], recs[recs.len() - 1].ts_recv);
    assert!(session["first_time"].as_str().unwrap().ends_with('Z'));
    assert!(session["ended_at"].is_i64());
    assert_eq!(session["source"], "file");

    let text = run_ok(d, ["db", "stats", "--db", s(&db)]);
    for want in [
        &format!("schema    version {}", mbo_store::schema::CURRENT_VERSION),
        &format!("{n} events"),
        &format!("{n} stored, indexes 0..={}", n - 1),
        "session 1  file  file:sha256:",
        &format!("({} ns)", recs[0].ts_recv),
    ] {
        assert!(text.contains(want), "{want:?} missing from:\n{text}");
    }
}

#[test]
fn retention_deletes_old_rounds_and_vacuum_shrinks_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("mbo.db");
    let file = clx5();
    let n = records(&file).len() as u64;
    run_ok(
        d,
        [
            "db",
            "import",
            s(&file),
            "--db",
            s(&db),
            "--checkpoint-every",
            "2000",
        ],
    );

    // Everything was ingested just now: an age of a day deletes nothing.
    let none = run_ok(d, ["db", "retention", "--policy", "1d", "--db", s(&db)]);
    assert!(none.contains("nothing to delete"), "{none}");

    let budget = 10_000u64;
    let out = json_ok(
        d,
        [
            "db",
            "retention",
            "--policy",
            "10000rows",
            "--db",
            s(&db),
            "--json",
        ],
    );
    assert_eq!(out["policy"], "10000rows");
    let deleted = out["deleted"]["events"].as_u64().unwrap();
    assert!(deleted > 0 && deleted < n, "{out}");
    assert!(out["deleted"]["checkpoints"].as_u64().unwrap() > 0);
    assert_eq!(out["deleted"]["sessions"], 0, "a cut at a round suffices");

    let stats = json_ok(d, ["db", "stats", "--db", s(&db), "--json"]);
    let kept = stats["rows"]["events"].as_u64().unwrap();
    assert_eq!(kept, n - deleted);
    assert!(kept <= budget && kept > 0, "{kept}");
    assert_eq!(stats["sessions"][0]["events"], kept);
    assert_eq!(stats["sessions"][0]["first_index"], deleted);

    let before = stats["file_bytes"].as_u64().unwrap() + stats["wal_bytes"].as_u64().unwrap();
    let vac = json_ok(d, ["db", "vacuum", "--db", s(&db), "--json"]);
    assert_eq!(
        vac["before"]["file_bytes"].as_u64().unwrap()
            + vac["before"]["wal_bytes"].as_u64().unwrap(),
        before
    );
    let after = vac["after"]["file_bytes"].as_u64().unwrap();
    assert_eq!(vac["after"]["wal_bytes"], 0);
    assert!(after < before / 2, "{before} -> {after}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), after);
    let text = run_ok(d, ["db", "vacuum", "--db", s(&db)]);
    assert!(
        text.contains("vacuumed") && text.contains("after"),
        "{text}"
    );

    // The data survived the vacuum.
    let stats = json_ok(d, ["db", "stats", "--db", s(&db), "--json"]);
    assert_eq!(stats["rows"]["events"], kept);
}

#[test]
fn bad_paths_fail_clearly_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let missing = d.join("missing.db");
    for cmd in [
        vec!["db", "stats", "--db", s(&missing)],
        vec!["db", "vacuum", "--db", s(&missing)],
        vec!["db", "retention", "--policy", "7d", "--db", s(&missing)],
    ] {
        let err = run_err(d, &cmd);
        assert!(
            err.contains("missing.db: cannot open database"),
            "{cmd:?}: {err}"
        );
        assert!(err.contains("No such file"), "{err}");
        assert!(!missing.exists(), "{cmd:?} created the database");
    }

    // The default path (data/mbo.db) and MBO_DB.
    let err = run_err(d, ["db", "stats"]);
    assert!(err.contains("data/mbo.db: cannot open database"), "{err}");
    assert!(!d.join("data").exists());
    let from_env = d.join("env.db");
    let out = mbo(d)
        .env("MBO_DB", &from_env)
        .args(["db", "stats"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("env.db: cannot open database"));

    let text = d.join("notes.txt");
    std::fs::write(
        &text,
        "this is not a database, just some text long enough to matter\n".repeat(20),
    )
    .unwrap();
    let err = run_err(d, ["db", "stats", "--db", s(&text)]);
    assert!(err.contains("notes.txt: not an SQLite database"), "{err}");
    let err = run_err(d, ["db", "vacuum", "--db", s(&text)]);
    assert!(err.contains("notes.txt: not an SQLite database"), "{err}");

    let err = run_err(d, ["db", "stats", "--db", s(d)]);
    assert!(err.contains("cannot open database: not a file"), "{err}");

    // Another program's SQLite file is refused, and left untouched.
    let other = d.join("other.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE notes (body TEXT)")
            .unwrap();
    }
    for cmd in [
        vec!["db", "stats", "--db", s(&other)],
        vec!["db", "retention", "--policy", "5M", "--db", s(&other)],
        vec!["db", "import", s(&clx5()), "--db", s(&other)],
    ] {
        let err = run_err(d, &cmd);
        assert!(
            err.contains("other.db: not an mbo database"),
            "{cmd:?}: {err}"
        );
    }
    let conn = rusqlite::Connection::open(&other).unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 1, "no mbo table was added");

    // A DBN file that is not there: named, and no database appears.
    let db = d.join("new.db");
    let err = run_err(d, ["db", "import", s(&d.join("nope.dbn")), "--db", s(&db)]);
    assert!(err.contains("nope.dbn"), "{err}");
    assert!(!db.exists());

    // A policy that does not parse: clap's one-line error with the reason.
    let err = run_err(
        d,
        ["db", "retention", "--policy", "7x", "--db", s(&missing)],
    );
    assert!(err.contains("invalid retention policy \"7x\""), "{err}");
    assert!(err.contains("unknown unit"), "{err}");
    let err = run_err(
        d,
        [
            "db",
            "import",
            s(&clx5()),
            "--checkpoint-every",
            "0",
            "--db",
            s(&db),
        ],
    );
    assert!(err.contains("--checkpoint-every"), "{err}");
}

/// `mbo db export`: a stored session comes back out as a DBN file holding exactly the
/// file's records and symbols (read back by the `dbn` crate), and as NDJSON windows that
/// hold exactly the records the file has in that window; bad arguments are clear errors.
#[test]
fn export_gives_back_exactly_the_stored_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let db = d.join("mbo.db");
    let clx = clx5();
    let esh = mbo_testkit::mbo_data("esh4-glbx-mdp3-20231225.mbo.dbn.zst");
    run_ok(d, ["db", "import", s(&clx), "--db", s(&db)]);
    run_ok(d, ["db", "import", s(&esh), "--db", s(&db)]);
    let clx_recs = records(&clx);
    let esh_recs = records(&esh);

    // Whole sessions as DBN (plain and zstd): the same records, in order, same metadata.
    for (session, want, name) in [("1", &clx_recs, "clx.dbn"), ("2", &esh_recs, "esh.dbn.zst")] {
        let out = d.join(name);
        run_ok(
            d,
            [
                "db",
                "export",
                "--db",
                s(&db),
                "--session",
                session,
                "--out",
                s(&out),
            ],
        );
        assert_eq!(&records(&out), want, "session {session}");
        let dec = DynDecoder::from_file(&out, VersionUpgradePolicy::AsIs).unwrap();
        let meta = dec.metadata();
        assert_eq!(meta.dataset, "GLBX.MDP3");
        assert_eq!(meta.schema, Some(dbn::Schema::Mbo));
        assert_eq!(meta.start, want[0].ts_recv);
        assert!(!meta.symbols.is_empty() && !meta.mappings.is_empty());
    }
    let meta = DynDecoder::from_file(d.join("clx.dbn"), VersionUpgradePolicy::AsIs)
        .unwrap()
        .metadata()
        .clone();
    assert_eq!(meta.symbols, vec!["CLX5".to_string()]);

    // A window of one symbol as NDJSON (the default on stdout): exactly the file's records
    // with ts_recv in [from, to], with their stream indexes and every field.
    let (from, to) = (clx_recs[1000].ts_recv, clx_recs[20_000].ts_recv);
    let text = run_ok(
        d,
        [
            "db",
            "export",
            "--db",
            s(&db),
            "--session",
            "1",
            "--symbol",
            "CLX5",
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
        ],
    );
    let want: Vec<(usize, &MboMsg)> = clx_recs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ts_recv >= from && r.ts_recv <= to)
        .collect();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), want.len());
    for (line, (i, r)) in lines.iter().zip(&want) {
        assert_eq!(line["index"], *i as u64);
        assert_eq!(line["ts_recv"], r.ts_recv);
        assert_eq!(line["ts_event"], r.hd.ts_event);
        assert_eq!(line["order_id"], r.order_id);
        assert_eq!(line["price"], r.price);
        assert_eq!(line["size"], r.size);
        assert_eq!(line["flags"], r.flags.raw());
        assert_eq!(line["sequence"], r.sequence);
        assert_eq!(line["ts_in_delta"], r.ts_in_delta);
        assert_eq!(line["action"], (r.action as u8 as char).to_string());
        assert_eq!(line["side"], (r.side as u8 as char).to_string());
    }
    // The default session is the most recent one (ESH4); RFC 3339 bounds work.
    let text = run_ok(
        d,
        [
            "db",
            "export",
            "--db",
            s(&db),
            "--to",
            "2023-12-25T00:00:00Z",
            "--format",
            "ndjson",
        ],
    );
    let before = esh_recs
        .iter()
        .filter(|r| r.ts_recv <= 1_703_462_400_000_000_000)
        .count();
    assert_eq!(text.lines().count(), before);

    for (args, want) in [
        (vec!["--symbol", "NOPE"], "unknown symbol \"NOPE\""),
        (vec!["--session", "9"], "no session 9"),
        (vec!["--from", "5", "--to", "4"], "--from is after --to"),
    ] {
        let mut all = vec!["db", "export", "--db", s(&db)];
        all.extend(args);
        let err = run_err(d, all);
        assert!(err.contains(want), "{err}");
    }
    let err = run_err(d, ["db", "export", "--db", s(&d.join("missing.db"))]);
    assert!(err.contains("cannot open database"), "{err}");
    assert!(!d.join("missing.db").exists(), "never creates a database");
}
