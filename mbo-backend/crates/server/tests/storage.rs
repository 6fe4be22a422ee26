//! `mbo serve --db`: the real binary stores every record of a real file exactly once, a
//! SIGTERM flushes, SIGKILL at random moments leaves a sound database, and `--resume`
//! completes it with nothing lost and nothing duplicated.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "serve/harness.rs"]
mod harness;

use std::path::Path;
use std::time::Duration;

use harness::Server;
use mbo_feed::RecordSource;
use mbo_testkit::{mbo_data, stored_fields, RowChecksum};

/// Every record of a DBN file, in order.
fn records_of(path: &Path) -> Vec<dbn::MboMsg> {
    let (mut source, _) = mbo_feed::replay::open_file_source(path).unwrap();
    let mut out = Vec::new();
    while let Some(r) = source.next_record().unwrap() {
        out.push(r.clone());
    }
    out
}

/// Checksum of every stored event of the database, session after session, decoded from
/// its blocks.
fn stored(db: &Path) -> RowChecksum {
    let conn = rusqlite::Connection::open(db).unwrap();
    let sessions: Vec<i64> = conn
        .prepare("SELECT id FROM feed_sessions ORDER BY id")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let mut sum = RowChecksum::default();
    for s in sessions {
        mbo_store::blocks::scan(&conn, mbo_store::SessionId(s), 0, u64::MAX, |i, r| {
            sum.add(&stored_fields(i, &r));
            Ok(std::ops::ControlFlow::Continue(()))
        })
        .unwrap();
    }
    sum
}

fn scalar(db: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row(sql, [], |r| r.get::<_, Option<i64>>(0))
        .unwrap()
        .unwrap_or(-1)
}

fn integrity(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

fn serve_db(file: &Path, db: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "serve",
        "--bind",
        "127.0.0.1:0",
        "--dbn",
        file.to_str().unwrap(),
        "--db",
        db.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    Server::start(&args, &[])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_file_is_stored_exactly_once_and_serving_it_again_adds_nothing() {
    let file = mbo_data("esh4-glbx-mdp3-20231225.mbo.dbn.zst");
    let records = records_of(&file);
    let expected = RowChecksum::of_records(&records);
    let trades = records.iter().filter(|r| r.action as u8 == b'T').count() as i64;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data").join("mbo.db");

    for pass in 0..2 {
        let mut server = serve_db(
            &file,
            &db,
            &["--pace", "max", "--checkpoint-events", "20000"],
        );
        server.ready().await;
        server.wait_state("ended", Duration::from_secs(60)).await;
        let metrics = server.metrics_text().await;
        assert!(metrics.contains("mbo_storage_db_bytes"), "{metrics}");
        assert!(server.terminate(Duration::from_secs(20)).success());
        assert_eq!(integrity(&db), "ok");
        assert_eq!(
            stored(&db),
            expected,
            "pass {pass}: every record exactly once"
        );
        assert_eq!(scalar(&db, "SELECT count(*) FROM feed_sessions"), 1);
        assert_eq!(scalar(&db, "SELECT count(*) FROM trades"), trades);
        assert_eq!(
            scalar(&db, "SELECT last_index FROM feed_sessions"),
            records.len() as i64 - 1
        );
        let rounds = scalar(&db, "SELECT count(DISTINCT event_index) FROM checkpoints");
        assert!(
            rounds >= records.len() as i64 / 20_000 - 1,
            "{rounds} checkpoint rounds for {} records",
            records.len()
        );
        if pass == 0 {
            let metric_rows = metrics
                .lines()
                .find(|l| l.starts_with("mbo_storage_rows_written_total{table=\"events\"}"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            assert!(metric_rows > 0.0, "rows written are counted: {metrics}");
        }
    }
}

/// A tiny deterministic generator for kill moments.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_then_resume_stores_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sim.dbn");
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("mbo"))
        .args([
            "simulate",
            "--records",
            "600000",
            "--instruments",
            "3",
            "--seed",
            "5",
        ])
        .arg("--out")
        .arg(&file)
        .status()
        .unwrap();
    assert!(status.success());
    let records = records_of(&file);
    let expected = RowChecksum::of_records(&records);
    let db = dir.path().join("mbo.db");

    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut progress = Vec::new();
    for round in 0..4 {
        // 200,000 records/s: each run stores part of the file before it is killed.
        let mut server = serve_db(
            &file,
            &db,
            &["--pace", "rate", "--rate", "200000", "--resume"],
        );
        let wait = 150 + rng.next() % 700;
        tokio::time::sleep(Duration::from_millis(wait)).await;
        server.kill();
        assert_eq!(integrity(&db), "ok", "round {round}: sound after SIGKILL");
        let rows = scalar(&db, "SELECT sum(records) FROM mbo_blocks");
        let last = scalar(&db, "SELECT last_index FROM feed_sessions");
        let max = scalar(&db, "SELECT max(last_index) FROM mbo_blocks");
        assert_eq!(
            rows,
            last + 1,
            "round {round}: an exact prefix 0..=last_index"
        );
        assert_eq!(max, last, "round {round}");
        progress.push((wait, rows));
    }
    assert!(
        progress.windows(2).all(|w| w[1].1 >= w[0].1),
        "stored data never shrinks: {progress:?}"
    );
    assert!(
        progress.last().unwrap().1 > progress[0].1,
        "resumed runs made progress: {progress:?}"
    );
    assert!(
        (progress.last().unwrap().1 as usize) < records.len(),
        "the kills happened mid-file: {progress:?}"
    );

    // The last run resumes and completes; everything is there exactly once.
    let mut server = serve_db(&file, &db, &["--pace", "max", "--resume"]);
    server.ready().await;
    server.wait_state("ended", Duration::from_secs(60)).await;
    assert!(server.terminate(Duration::from_secs(20)).success());
    assert_eq!(integrity(&db), "ok");
    assert_eq!(stored(&db), expected, "kills {progress:?}");
    assert_eq!(scalar(&db, "SELECT count(*) FROM feed_sessions"), 1);
}

#[test]
fn resume_without_a_database_is_refused() {
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("mbo"))
        .args(["serve", "--bind", "127.0.0.1:0", "--resume"])
        .env_remove("MBO_DB")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--resume needs storage"), "{err}");
}
