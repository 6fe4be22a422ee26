//! Every record of each real file lands exactly once, also when the file is ingested again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use common::{file_checksum, ingest, read_file, stored, REAL_FILES};
use mbo_store::{Batch, Store, SymbolMapping, Writer};

fn check_file(name: &str) {
    let (records, meta) = read_file(name);
    assert!(!records.is_empty(), "{name} has records");
    let expected = file_checksum(&records);
    let n = records.len() as u64;
    let trades = records.iter().filter(|r| r.action as u8 == b'T').count() as u64;

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let key = mbo_store::file_source_key(mbo_testkit::mbo_data(name)).unwrap();
    assert!(
        key.starts_with("file:sha256:") && key.len() == 12 + 64,
        "{key}"
    );
    let store = Store::open(&db).unwrap();
    let session = store.session("file", &key, Some(&meta.dataset)).unwrap();

    // Symbol mappings travel with the first batch.
    let writer = Writer::spawn(&db, session, 4).unwrap();
    let symbols: Vec<SymbolMapping> = meta
        .symbols
        .iter()
        .map(|s| SymbolMapping {
            instrument_id: s.instrument_id,
            publisher_id: records[0].hd.publisher_id,
            symbol: s.symbol.clone(),
        })
        .collect();
    let mut first = Batch::new(0, Vec::new());
    first.symbols = symbols.clone();
    writer.send(first).unwrap();
    for (k, chunk) in records.chunks(4096).enumerate() {
        writer
            .send(Batch::new((k * 4096) as u64, chunk.to_vec()))
            .unwrap();
    }
    let stats = writer.finish().unwrap();
    assert_eq!(
        stats.events_written, n,
        "{name}: every record inserted once"
    );
    assert_eq!(stats.trades_written, trades);
    assert_eq!(stats.records, n);

    let check = |store: &Store| {
        let (count, sum, min, max) = stored(store, session);
        assert_eq!(count, n, "{name}: row count == record count");
        assert_eq!(sum, expected, "{name}: checksum of stored rows == file's");
        assert_eq!((min, max), (Some(0), Some(n as i64 - 1)));
        assert_eq!(store.last_index(session).unwrap(), Some(n - 1));
        let st = store.stats().unwrap();
        assert_eq!(st.events, n);
        assert_eq!(st.trades, trades, "{name}: trades == T records");
        assert_eq!(st.sessions, 1);
        assert_eq!(st.instruments, symbols.len() as u64);
        assert!(st.db_bytes > 0);
        assert_eq!(store.integrity_check().unwrap(), "ok");
    };
    check(&store);

    // Again: the same content gives the same session; batches split differently, starting
    // with a partial overlap and an odd size, add nothing.
    let again = store.session("file", &key, Some(&meta.dataset)).unwrap();
    assert_eq!(again, session);
    let stats = ingest(
        &db,
        again,
        &records[1000.min(records.len())..],
        1000.min(n),
        997,
    );
    assert_eq!(stats.events_written, 0, "{name}: re-ingest inserts nothing");
    assert_eq!(stats.trades_written, 0);
    let stats = ingest(&db, again, &records, 0, 5000);
    assert_eq!(stats.events_written, 0);
    check(&store);
    // And through a fresh connection.
    drop(store);
    check(&Store::open(&db).unwrap());
}

#[test]
fn clx5_lands_exactly_once() {
    check_file(REAL_FILES[0]);
}

#[test]
fn esh4_20231224_lands_exactly_once() {
    check_file(REAL_FILES[1]);
}

#[test]
fn esh4_20231225_lands_exactly_once() {
    check_file(REAL_FILES[2]);
}

#[test]
fn esm4_20240508_lands_exactly_once() {
    check_file(REAL_FILES[3]);
}

/// A written batch's record buffer comes back empty with its capacity, for the next batch
/// (so a steady stream of batches does not map fresh memory for each), and a batch built on
/// it is stored like any other.
#[test]
fn written_batches_hand_their_buffers_back() {
    use std::time::{Duration, Instant};
    let (records, _) = read_file("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", "buffers", None).unwrap();
    let writer = Writer::spawn(&db, session, 4).unwrap();
    assert!(writer.spare_records().is_none(), "nothing written yet");
    let first = records[..5_000].to_vec();
    let capacity = first.capacity();
    writer.send(Batch::new(0, first)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while writer.events_written() < 5_000 {
        assert!(
            Instant::now() < deadline,
            "the batch was not written in 30 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut spare = writer.spare_records().expect("the written batch's buffer");
    assert!(spare.is_empty());
    assert!(spare.capacity() >= capacity);
    assert!(writer.spare_records().is_none(), "one batch, one buffer");
    spare.extend_from_slice(&records[5_000..6_000]);
    writer.send(Batch::new(5_000, spare)).unwrap();
    assert_eq!(writer.finish().unwrap().events_written, 6_000);
    let (n, sum, _, hi) = stored(&store, session);
    assert_eq!((n, hi), (6_000, Some(5_999)));
    assert_eq!(sum, file_checksum(&records[..6_000]));
}
