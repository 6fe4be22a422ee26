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
    let (idx, oid, ts_recv, ts_event, iid, pid, size, seq, price, delta): (
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
        i64,
    ) = store
        .connection()
        .query_row(
            "SELECT event_index, order_id, ts_recv, ts_event, instrument_id, publisher_id, size, \
             sequence, price, ts_in_delta FROM mbo_events",
            [],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                    r.get(7)?,
                    r.get(8)?,
                    r.get(9)?,
                ))
            },
        )
        .unwrap();
    use mbo_store::u64_from_sql as back;
    assert_eq!(back(idx), 1 << 62);
    assert_eq!(back(oid), u64::MAX);
    assert_eq!(back(ts_recv), u64::MAX);
    assert_eq!(back(ts_event), u64::MAX - 1);
    assert_eq!(iid, i64::from(u32::MAX));
    assert_eq!(pid, i64::from(u16::MAX));
    assert_eq!(size, i64::from(u32::MAX));
    assert_eq!(seq, i64::from(u32::MAX));
    assert_eq!(price, i64::MIN);
    assert_eq!(delta, i64::from(i32::MIN));
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
