//! Retention on real data: cuts land on checkpoint rounds and keep exactly what follows,
//! row budgets are met oldest first, finished sessions go whole, and a writer keeps writing
//! while retention deletes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{fields, import, read_file, stored, Checksum};
use dbn::MboMsg;
use mbo_store::{
    enforce, spawn_retention, Batch, CheckpointPolicy, Deleted, RecorderOptions, Retention,
    RetentionPolicy, SessionId, Store, StoreError, Writer,
};

fn options(every_events: u64) -> RecorderOptions {
    RecorderOptions {
        batch_records: 3000,
        max_age: Duration::from_secs(3600),
        checkpoints: CheckpointPolicy {
            every_events,
            every: Duration::from_secs(3600),
        },
    }
}

/// Checksum of `records[from..]` at their stream indexes.
fn checksum_from(records: &[MboMsg], from: usize) -> Checksum {
    let mut c = Checksum::default();
    for (i, r) in records.iter().enumerate().skip(from) {
        c.add(&fields(i as u64, r));
    }
    c
}

fn q(store: &Store, sql: &str, session: SessionId) -> i64 {
    store
        .connection()
        .query_row(sql, [session.0], |r| r.get(0))
        .unwrap()
}

fn first_index(store: &Store, s: SessionId) -> i64 {
    q(
        store,
        "SELECT first_index FROM feed_sessions WHERE id = ?1",
        s,
    )
}

/// Gives the rounds of `session` synthetic ingestion times `base + event_index`, so a test
/// can put the horizon exactly between two rounds.
fn set_round_times(store: &Store, session: SessionId, base: i64) {
    store
        .connection()
        .execute(
            "UPDATE checkpoints SET written_at = ?2 + event_index WHERE session_id = ?1",
            (session.0, base),
        )
        .unwrap();
}

fn rows_of_round(store: &Store, s: SessionId, round: u64) -> i64 {
    store
        .connection()
        .query_row(
            "SELECT count(*) FROM checkpoints WHERE session_id = ?1 AND event_index = ?2",
            (s.0, round as i64),
            |r| r.get(0),
        )
        .unwrap()
}

fn trades_through(records: &[MboMsg], through: u64) -> u64 {
    records
        .iter()
        .take(through as usize + 1)
        .filter(|r| r.action as u8 == b'T')
        .count() as u64
}

fn estimated_rows(store: &Store) -> i64 {
    store
        .connection()
        .query_row(
            "SELECT coalesce(sum(max(coalesce(last_index, -1) + 1 - first_index, 0)), 0) \
             FROM feed_sessions",
            [],
            |r| r.get(0),
        )
        .unwrap()
}

fn imported(db: &Path, name: &str, every: u64) -> (Store, SessionId, Vec<MboMsg>, Vec<u64>) {
    imported_as(db, name, &format!("file:test:{name}"), every)
}

fn imported_as(
    db: &Path,
    name: &str,
    key: &str,
    every: u64,
) -> (Store, SessionId, Vec<MboMsg>, Vec<u64>) {
    let (records, _) = read_file(name);
    let store = Store::open(db).unwrap();
    let session = store.session("file", key, None).unwrap();
    // Short runs: a round is only offered at the end of a run, where no book is mid-event.
    let (stats, rounds) = import(db, session, &records, options(every), 101);
    assert_eq!(stats.events_written, records.len() as u64);
    assert!(rounds.len() >= 6, "{} rounds", rounds.len());
    (store, session, records, rounds)
}

const NOW: i64 = 2_000_000_000_000_000_000;

#[test]
fn an_age_cut_keeps_the_round_at_the_cut_and_exactly_the_events_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let (store, s, records, rounds) = imported(&db, "CLX5_mbo.dbn", 4000);
    let base = 1_000_000_000_000_000_000;
    set_round_times(&store, s, base);
    let k = rounds.len() / 2;
    let cut = rounds[k];
    // Horizon just after round k was ingested: rounds 0..=k are older than the age.
    let horizon = base + cut as i64 + 1;
    let age = Duration::from_nanos((NOW - horizon) as u64);
    let policy = RetentionPolicy::from(Retention::Age(age));
    let older_rounds: i64 = rounds[..k]
        .iter()
        .map(|&r| rows_of_round(&store, s, r))
        .sum();
    let kept_round_rows = rows_of_round(&store, s, cut);
    let trades_before = q(
        &store,
        "SELECT count(*) FROM trades WHERE session_id = ?1",
        s,
    );

    let deleted = enforce(store.connection(), &policy, NOW).unwrap();

    assert_eq!(
        deleted,
        Deleted {
            events: cut + 1,
            trades: trades_through(&records, cut),
            checkpoints: older_rounds as u64,
            sessions: 0,
        }
    );
    let (n, sum, min, max) = stored(&store, s);
    assert_eq!(n, records.len() as u64 - cut - 1);
    assert_eq!(sum, checksum_from(&records, cut as usize + 1));
    assert_eq!(min, Some(cut as i64 + 1));
    assert_eq!(max, Some(records.len() as i64 - 1));
    assert_eq!(first_index(&store, s), cut as i64 + 1);
    assert_eq!(
        q(
            &store,
            "SELECT min(event_index) FROM checkpoints WHERE session_id = ?1",
            s
        ),
        cut as i64,
        "the round at the cut is kept"
    );
    assert_eq!(rows_of_round(&store, s, cut), kept_round_rows);
    assert_eq!(
        q(
            &store,
            "SELECT min(event_index) FROM trades WHERE session_id = ?1",
            s
        ),
        records
            .iter()
            .enumerate()
            .skip(cut as usize + 1)
            .find(|(_, r)| r.action as u8 == b'T')
            .map(|(i, _)| i as i64)
            .unwrap()
    );
    assert_eq!(
        q(
            &store,
            "SELECT count(*) FROM trades WHERE session_id = ?1",
            s
        ),
        trades_before - trades_through(&records, cut) as i64
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
    assert_eq!(
        store.last_index(s).unwrap(),
        Some(records.len() as u64 - 1),
        "the end is untouched"
    );

    // The same horizon again: nothing more to delete.
    assert!(enforce(store.connection(), &policy, NOW)
        .unwrap()
        .is_empty());
    // Off deletes nothing, whatever the data's age.
    assert!(enforce(store.connection(), &RetentionPolicy::OFF, i64::MAX)
        .unwrap()
        .is_empty());
}

#[test]
fn a_horizon_before_every_round_deletes_nothing_and_an_open_session_keeps_its_tail() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let (store, s, records, rounds) = imported(&db, "CLX5_mbo.dbn", 4000);
    set_round_times(&store, s, 1_000);
    let policy = RetentionPolicy::from(Retention::Age(Duration::from_nanos(10)));
    // Horizon 1_000 - 10 + 1000: before the first round (written at 1_000 + its index).
    assert!(enforce(store.connection(), &policy, 1_000)
        .unwrap()
        .is_empty());
    // Everything is old, but the session is open: cut at its last round, tail kept.
    let deleted = enforce(store.connection(), &policy, NOW).unwrap();
    let last = *rounds.last().unwrap();
    assert_eq!(deleted.events, last + 1);
    assert_eq!(deleted.sessions, 0);
    assert_eq!(stored(&store, s).0, records.len() as u64 - last - 1);
    assert_eq!(first_index(&store, s), last as i64 + 1);
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn a_finished_session_older_than_the_horizon_is_dropped_whole_and_can_be_imported_again() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let (store, s, records, _) = imported(&db, "CLX5_mbo.dbn", 4000);
    store
        .connection()
        .execute("INSERT INTO instruments VALUES (?1, 1, 1, 'CLX5')", [s.0])
        .unwrap();
    store.end_session(s).unwrap();
    let policy: RetentionPolicy = "1h".parse().unwrap();
    let before = store.stats().unwrap();
    let now = mbo_store_now() + 2 * 3_600_000_000_000;
    let deleted = enforce(store.connection(), &policy, now).unwrap();
    assert_eq!(deleted.sessions, 1);
    assert_eq!(deleted.events, records.len() as u64);
    assert_eq!(deleted.trades, before.trades);
    assert_eq!(deleted.checkpoints, before.checkpoints);
    let after = store.stats().unwrap();
    assert_eq!(
        (
            after.sessions,
            after.instruments,
            after.events,
            after.trades,
            after.checkpoints
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");

    // The same content again is new data: stored again, in full.
    let again = store
        .session("file", "file:test:CLX5_mbo.dbn", None)
        .unwrap();
    // (The id itself may be reused: `feed_sessions.id` is a plain INTEGER PRIMARY KEY.)
    let _ = s;
    let (stats, _) = import(&db, again, &records, options(4000), 997);
    assert_eq!(stats.events_written, records.len() as u64);
}

fn mbo_store_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[test]
fn a_row_budget_drops_the_oldest_finished_session_then_cuts_the_next_at_a_round() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let (store, old, old_records, _) = imported_as(&db, "CLX5_mbo.dbn", "file:test:old", 5000);
    let (_, new, records, rounds) = imported(&db, "CLX5_mbo.dbn", 3000);
    // The old session was ingested and finished before any round of the new one.
    set_round_times(&store, old, 1_000);
    store
        .connection()
        .execute(
            "UPDATE feed_sessions SET ended_at = 1000000 WHERE id = ?1",
            [old.0],
        )
        .unwrap();
    set_round_times(&store, new, 10_000_000);
    let total = (old_records.len() + records.len()) as i64;
    assert_eq!(estimated_rows(&store), total);

    // A budget above the total deletes nothing.
    let roomy: RetentionPolicy = format!("{total}rows").parse().unwrap();
    assert!(enforce(store.connection(), &roomy, NOW).unwrap().is_empty());

    let budget = records.len() as u64 / 2;
    let policy = RetentionPolicy {
        age: None,
        rows: Some(budget),
    };
    let deleted = enforce(store.connection(), &policy, NOW).unwrap();
    assert_eq!(deleted.sessions, 1, "the old finished session went whole");
    // The new session is cut at the first round that meets the budget.
    let n = records.len() as u64;
    let cut = *rounds
        .iter()
        .find(|&&r| n - r - 1 <= budget)
        .expect("a round meets the budget");
    assert_eq!(first_index(&store, new), cut as i64 + 1);
    assert_eq!(deleted.events, old_records.len() as u64 + cut + 1);
    let kept = estimated_rows(&store);
    assert!(kept as u64 <= budget, "{kept} rows kept, budget {budget}");
    assert_eq!(
        stored(&store, new).0,
        kept as u64,
        "the estimate is exact here"
    );
    assert_eq!(stored(&store, old).0, 0);
    assert_eq!(
        store
            .connection()
            .query_row("SELECT count(*) FROM feed_sessions", [], |r| r
                .get::<_, i64>(0))
            .unwrap(),
        1
    );
    assert_eq!(
        stored(&store, new).1,
        checksum_from(&records, cut as usize + 1)
    );
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

/// Writes `records[from..]` through a writer, in batches, while `running` holds.
fn write_rest(db: &Path, s: SessionId, records: &[MboMsg], from: usize) -> mbo_store::WriterStats {
    let writer = Writer::spawn(db, s, 4).unwrap();
    for (k, chunk) in records[from..].chunks(500).enumerate() {
        writer
            .send(Batch::new((from + k * 500) as u64, chunk.to_vec()))
            .unwrap();
    }
    writer.finish().unwrap()
}

#[test]
fn a_writer_keeps_writing_while_retention_deletes() {
    let (records, _) = read_file("esh4-glbx-mdp3-20231225.mbo.dbn.zst");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let s = store.session("file", "file:test:esh4-25", None).unwrap();
    // Three quarters imported with rounds, the rest written while retention runs.
    let half = records.len() * 3 / 4;
    let (_, rounds) = import(&db, s, &records[..half], options(2000), 101);
    assert!(rounds.len() > 20, "{} rounds", rounds.len());
    let last_round = *rounds.last().unwrap();
    assert!(
        last_round > 2 * mbo_store::retention::EVENT_CHUNK as u64,
        "several event chunks to delete"
    );

    let done = Arc::new(AtomicBool::new(false));
    let passes = Arc::new(AtomicU64::new(0));
    let enforcer = {
        let (db, done, passes) = (db.clone(), Arc::clone(&done), Arc::clone(&passes));
        std::thread::spawn(move || {
            let store = Store::open(&db).unwrap();
            // Every round is older than "now + 1 h": each pass cuts at the latest round.
            let policy = RetentionPolicy::from(Retention::Age(Duration::from_secs(1)));
            let mut total = Deleted::default();
            loop {
                let finished = done.load(Ordering::Relaxed);
                total += enforce(
                    store.connection(),
                    &policy,
                    mbo_store_now() + 3_600_000_000_000,
                )
                .unwrap();
                passes.fetch_add(1, Ordering::Relaxed);
                if finished {
                    return total;
                }
            }
        })
    };
    let stats = write_rest(&db, s, &records, half);
    done.store(true, Ordering::Relaxed);
    let deleted = enforcer.join().unwrap();

    assert_eq!(stats.events_written, (records.len() - half) as u64);
    assert!(passes.load(Ordering::Relaxed) >= 1);
    assert_eq!(deleted.events, last_round + 1);
    assert_eq!(first_index(&store, s), last_round as i64 + 1);
    // Every record after the cut is there, the writer's included, exactly once.
    let (n, sum, min, max) = stored(&store, s);
    assert_eq!(n, records.len() as u64 - last_round - 1);
    assert_eq!(min, Some(last_round as i64 + 1));
    assert_eq!(max, Some(records.len() as i64 - 1));
    assert_eq!(sum, checksum_from(&records, last_round as usize + 1));
    assert_eq!(store.integrity_check().unwrap(), "ok");
}

#[test]
fn the_retention_thread_reports_each_pass_and_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let (store, s, records, rounds) = imported(&db, "CLX5_mbo.dbn", 4000);
    // Rounds ingested at the epoch: far older than a day.
    set_round_times(&store, s, 0);
    let seen = Arc::new(AtomicU64::new(0));
    let observer_seen = Arc::clone(&seen);
    let task = spawn_retention(
        &db,
        "1d".parse().unwrap(),
        Duration::from_secs(3600),
        Box::new(move |result| {
            assert!(result.is_ok(), "{result:?}");
            observer_seen.fetch_add(1, Ordering::Relaxed);
        }),
    )
    .unwrap();
    let start = Instant::now();
    while seen.load(Ordering::Relaxed) == 0 {
        assert!(start.elapsed() < Duration::from_secs(30), "no pass ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    // It now sleeps for an hour; stopping must not wait for that.
    let stopping = Instant::now();
    let totals = task.stop().unwrap();
    assert!(stopping.elapsed() < Duration::from_secs(2));
    assert_eq!(totals.passes, 1);
    assert_eq!(totals.failed_passes, 0);
    let last = *rounds.last().unwrap();
    assert_eq!(totals.deleted.events, last + 1);
    assert_eq!(stored(&store, s).0, records.len() as u64 - last - 1);

    // A path that cannot be opened fails the call, not the thread.
    let bad = dir.path().join("no/such/dir/mbo.db");
    assert!(spawn_retention(&bad, RetentionPolicy::OFF, Duration::ZERO, Box::new(|_| {})).is_err());
}

#[test]
fn policies_parse_from_text() {
    let day = Duration::from_secs(86_400);
    let cases: [(&str, Option<Duration>, Option<u64>); 16] = [
        ("7d", Some(7 * day), None),
        ("12h", Some(Duration::from_secs(12 * 3600)), None),
        ("30m", Some(Duration::from_secs(30 * 60)), None),
        ("90s", Some(Duration::from_secs(90)), None),
        ("2w", Some(14 * day), None),
        ("5000000", None, Some(5_000_000)),
        ("5M", None, Some(5_000_000)),
        ("500k", None, Some(500_000)),
        ("5000000rows", None, Some(5_000_000)),
        ("10Mrows", None, Some(10_000_000)),
        ("5_000_000", None, Some(5_000_000)),
        ("7d,10M", Some(7 * day), Some(10_000_000)),
        (" 10M , 7d ", Some(7 * day), Some(10_000_000)),
        ("off", None, None),
        ("none", None, None),
        ("OFF", None, None),
    ];
    for (text, age, rows) in cases {
        let p: RetentionPolicy = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!((p.age, p.rows), (age, rows), "{text}");
        // The canonical text parses back to the same policy.
        assert_eq!(
            p.to_string().parse::<RetentionPolicy>().unwrap(),
            p,
            "{text}"
        );
    }
    assert_eq!(
        "30m".parse::<Retention>().unwrap(),
        Retention::Age(Duration::from_secs(1800)),
        "m is minutes"
    );
    assert_eq!(
        "30M".parse::<Retention>().unwrap(),
        Retention::Rows(30_000_000),
        "M is millions"
    );

    for (bad, says) in [
        ("", "empty"),
        ("7x", "unknown unit \"x\""),
        ("d", "no number"),
        ("0d", "greater than zero"),
        ("0", "greater than zero"),
        ("7d,", "empty rule"),
        ("7d,3h", "two ages"),
        ("5M,6M", "two row counts"),
        ("-7d", "no number"),
        ("7.5d", "unknown unit"),
        ("99999999999999999999", "too large"),
        ("999999999999999999G", "too large"),
        ("forever", "no number"),
    ] {
        let err = bad.parse::<RetentionPolicy>().unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidRetention { .. }),
            "{bad}: {err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(says), "{bad}: {text}");
        assert!(
            text.contains(&format!("{bad:?}")),
            "names the input: {text}"
        );
    }
}
