//! A writer that stops mid-stream leaves a sound database holding an exact prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use common::{file_checksum, read_file, stored};
use mbo_store::{Batch, Store, Writer};

#[test]
fn dropped_writer_leaves_an_exact_prefix() {
    let (records, _) = read_file("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", "file:test:clx5", None).unwrap();
    let writer = Writer::spawn(&db, session, 2).unwrap();
    let half = records.len() / 2;
    for (k, chunk) in records[..half].chunks(1500).enumerate() {
        writer
            .send(Batch::new((k * 1500) as u64, chunk.to_vec()))
            .unwrap();
    }
    drop(writer); // No finish: drop still flushes what was sent.

    let store = Store::open(&db).unwrap();
    assert_eq!(store.integrity_check().unwrap(), "ok");
    let last = store.last_index(session).unwrap().unwrap();
    let (count, sum, min, max) = stored(&store, session);
    assert_eq!(count, last + 1, "rows 0..=last_index, no gaps");
    assert_eq!((min, max), (Some(0), Some(last as i64)));
    assert_eq!(last as usize, half - 1, "drop flushed every queued batch");
    assert_eq!(sum, file_checksum(&records[..=last as usize]));

    // Resume from last_index + 1 completes the file exactly once.
    let rest = &records[last as usize + 1..];
    let writer = Writer::spawn(&db, session, 2).unwrap();
    for (k, chunk) in rest.chunks(777).enumerate() {
        writer
            .send(Batch::new(last + 1 + (k * 777) as u64, chunk.to_vec()))
            .unwrap();
    }
    writer.finish().unwrap();
    let (count, sum, _, _) = stored(&store, session);
    assert_eq!(count, records.len() as u64);
    assert_eq!(sum, file_checksum(&records));
}
