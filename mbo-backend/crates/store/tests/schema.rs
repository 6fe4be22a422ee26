//! Migrations, sessions, and the exact u64 ↔ i64 mapping.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use dbn::MboMsg;
use mbo_store::schema::CURRENT_VERSION;
use mbo_store::{Batch, Store, Writer};

#[test]
fn opening_twice_is_a_no_op_at_the_current_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    let s = store.session("file", "file:sha256:00", None).unwrap();
    drop(store);
    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    assert_eq!(store.stats().unwrap().sessions, 1, "data kept across opens");
    assert_eq!(store.session("file", "file:sha256:00", None).unwrap(), s);
    let mode: String = store
        .connection()
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    // Every table is STRICT.
    let mut stmt = store
        .connection()
        .prepare("SELECT name, strict FROM pragma_table_list WHERE schema = 'main' AND name NOT LIKE 'sqlite_%'")
        .unwrap();
    let tables: Vec<(String, i64)> = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(tables.len(), 5, "{tables:?}");
    assert!(tables.iter().all(|(_, strict)| *strict == 1), "{tables:?}");
}

#[test]
fn a_newer_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    drop(Store::open(&db).unwrap());
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", CURRENT_VERSION + 1)
        .unwrap();
    drop(conn);
    assert!(matches!(
        Store::open(&db),
        Err(mbo_store::StoreError::SchemaTooNew { .. })
    ));
}

#[test]
fn sessions_are_get_or_create_by_source_key() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("a.db")).unwrap();
    let a = store
        .session("simulator", "sim:seed:1", Some("SIM"))
        .unwrap();
    let b = store
        .session("simulator", "sim:seed:2", Some("SIM"))
        .unwrap();
    assert_ne!(a, b);
    assert_eq!(store.session("simulator", "sim:seed:1", None).unwrap(), a);
    assert_eq!(store.last_index(a).unwrap(), None);
    store.end_session(a).unwrap();
    let ended: Option<i64> = store
        .connection()
        .query_row(
            "SELECT ended_at FROM feed_sessions WHERE id = ?1",
            [a.0],
            |r| r.get(0),
        )
        .unwrap();
    assert!(ended.is_some_and(|t| t > 0));
}

#[test]
fn u64_fields_round_trip_exactly_including_max() {
    for v in [0, 1, i64::MAX as u64, 1u64 << 63, u64::MAX - 1, u64::MAX] {
        assert_eq!(mbo_store::u64_from_sql(mbo_store::u64_to_sql(v)), v);
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = Store::open(&db).unwrap();
    let s = store.session("test", "test:u64", None).unwrap();
    let mut hd = MboMsg::default().hd;
    hd.ts_event = u64::MAX - 1;
    hd.instrument_id = u32::MAX;
    hd.publisher_id = u16::MAX;
    let rec = MboMsg {
        hd,
        order_id: u64::MAX,
        ts_recv: u64::MAX,
        size: u32::MAX,
        sequence: u32::MAX,
        price: i64::MIN,
        ts_in_delta: i32::MIN,
        action: b'T' as std::ffi::c_char,
        side: b'B' as std::ffi::c_char,
        ..MboMsg::default()
    };
    let w = Writer::spawn(&db, s, 1).unwrap();
    w.send(Batch::new(1 << 62, vec![rec.clone()])).unwrap();
    w.finish().unwrap();
    let mut got = Vec::new();
    mbo_store::blocks::scan(store.connection(), s, 0, u64::MAX, |i, r| {
        got.push((i, r));
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .unwrap();
    assert_eq!(got, vec![(1u64 << 62, rec.clone())]);
    let r = &got[0].1;
    assert_eq!(r.order_id, u64::MAX);
    assert_eq!(r.ts_recv, u64::MAX);
    assert_eq!(r.hd.ts_event, u64::MAX - 1);
    assert_eq!(r.price, i64::MIN);
    assert_eq!(r.ts_in_delta, i32::MIN);
    assert_eq!(store.last_index(s).unwrap(), Some(1 << 62));
    assert_eq!(store.stats().unwrap().trades, 1);
}

#[test]
fn writer_errors_are_reported_not_panicked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = Store::open(&db).unwrap();
    // A symbol mapping for a session that does not exist violates the foreign key.
    let w = Writer::spawn(&db, mbo_store::SessionId(999), 1).unwrap();
    let mut b = Batch::new(0, Vec::new());
    b.symbols.push(mbo_store::SymbolMapping {
        instrument_id: 1,
        publisher_id: 1,
        symbol: "X".into(),
    });
    w.send(b).unwrap();
    let err = (0..100).find_map(|_| {
        std::thread::sleep(std::time::Duration::from_millis(5));
        w.send(Batch::new(0, Vec::new())).err()
    });
    assert!(err.is_some(), "the failure is reported by a later send");
    // The error was reported once; finishing afterwards just stops the thread.
    let _ = w.finish();
    assert_eq!(store.stats().unwrap().instruments, 0);
}

#[path = "support/common.rs"]
mod common;

/// A version-2 database (one row per event in `mbo_events`) is converted to blocks at open:
/// every record of two sessions, with a gap in one, comes back exactly, and the old table
/// is gone.
#[test]
fn migration_3_converts_event_rows_into_exact_blocks() {
    let (records, _) = common::read_file("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v2.db");
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    mbo_store::schema::migrate_to(&mut conn, 2).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "INSERT INTO feed_sessions (id, source, source_key, started_at, last_index) \
         VALUES (1, 'file', 'a', 0, 9999), (2, 'file', 'b', 0, 38211);",
    )
    .unwrap();
    {
        let mut ins = tx
            .prepare(
                "INSERT INTO mbo_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, \
                 ?12, ?13, ?14, ?15)",
            )
            .unwrap();
        // Session 1: records 0..10_000 without 5_000..5_100 (a live gap); session 2: all.
        let gap = 5_000..5_100;
        for (s, n) in [(1i64, 10_000usize), (2, records.len())] {
            for (i, r) in records[..n].iter().enumerate() {
                if s == 1 && gap.contains(&i) {
                    continue;
                }
                let f = common::fields(i as u64, r);
                let mut p: Vec<i64> = vec![s];
                p.extend_from_slice(&f);
                ins.execute(rusqlite::params_from_iter(p)).unwrap();
            }
        }
    }
    tx.commit().unwrap();
    drop(conn);

    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    let gone: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'mbo_events'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(gone, 0, "mbo_events is dropped");
    let (n, sum, lo, hi) = common::stored(&store, mbo_store::SessionId(2));
    assert_eq!(n, records.len() as u64);
    assert_eq!(sum, common::file_checksum(&records));
    assert_eq!((lo, hi), (Some(0), Some(records.len() as i64 - 1)));
    let (n, sum, _, hi) = common::stored(&store, mbo_store::SessionId(1));
    assert_eq!(n, 9_900);
    let mut want = common::Checksum::default();
    for (i, r) in records[..10_000].iter().enumerate() {
        if !(5_000..5_100).contains(&i) {
            want.add(&common::fields(i as u64, r));
        }
    }
    assert_eq!(sum, want);
    assert_eq!(hi, Some(9_999));
    assert_eq!(store.stats().unwrap().events, 9_900 + records.len() as u64);
}

/// A version-3 database (trades keyed by event index, plus a time index) is converted at open
/// to migration 4's single `(session_id, instrument_id, ts_recv, event_index)` key: every
/// trade row comes back exactly through the history reader, and the old index is gone.
#[test]
fn migration_4_rekeys_trades_and_keeps_every_row() {
    use mbo_store::{HistoryReader, SessionId, TradeQuery, TradeRow};
    let (records, _) = common::read_file("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("v3.db");
    let mut conn = rusqlite::Connection::open(&db).unwrap();
    mbo_store::schema::migrate_to(&mut conn, 3).unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(
        "INSERT INTO feed_sessions (id, source, source_key, started_at, last_index) \
         VALUES (1, 'file', 'a', 0, 38211);",
    )
    .unwrap();
    let mut want: Vec<TradeRow> = Vec::new();
    {
        let mut ins = tx
            .prepare("INSERT INTO trades VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .unwrap();
        for (i, r) in records.iter().enumerate() {
            if r.action as u8 != b'T' {
                continue;
            }
            let row = common::trade_row(i as u64, r);
            ins.execute(rusqlite::params![
                row.event_index as i64,
                row.instrument_id,
                row.publisher_id,
                row.ts_recv as i64,
                row.ts_event as i64,
                row.price,
                row.size,
                row.side
            ])
            .unwrap();
            want.push(row);
        }
    }
    tx.commit().unwrap();
    drop(conn);
    assert!(want.len() > 1_000, "CLX5 holds {} trades", want.len());

    let store = Store::open(&db).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    let old_index: i64 = store
        .connection()
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'trades_instrument_ts'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(old_index, 0, "the old time index went with the old table");
    assert_eq!(store.stats().unwrap().trades, want.len() as u64);
    let reader = HistoryReader::open(&db).unwrap();
    let mut got = Vec::new();
    let instruments: std::collections::BTreeSet<u32> =
        want.iter().map(|t| t.instrument_id).collect();
    for instrument_id in instruments {
        got.extend(
            reader
                .trades(&TradeQuery {
                    session: SessionId(1),
                    instrument_id,
                    publisher_id: None,
                    from: 0,
                    to: u64::MAX,
                    after: None,
                    limit: usize::MAX,
                })
                .unwrap(),
        );
    }
    got.sort_by_key(|t| t.event_index);
    assert_eq!(got, want);
}
