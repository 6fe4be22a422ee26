//! Helpers shared by the integration tests (each includes it with `#[path] mod common;`:
//! a file directly under `tests/` would be a test target of its own).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use dbn::MboMsg;
use mbo_feed::RecordSource;
use mbo_store::{Batch, SessionId, Store, Writer};

/// The stored trade row of record `index` (an action `T` record).
pub fn trade_row(index: u64, r: &MboMsg) -> mbo_store::TradeRow {
    mbo_store::TradeRow {
        event_index: index,
        instrument_id: r.hd.instrument_id,
        publisher_id: r.hd.publisher_id,
        ts_recv: r.ts_recv,
        ts_event: r.hd.ts_event,
        price: r.price,
        size: r.size,
        side: r.side as u8,
    }
}

/// The real files every ingest test covers.
pub const REAL_FILES: [&str; 4] = [
    "CLX5_mbo.dbn",
    "esh4-glbx-mdp3-20231224.mbo.dbn.zst",
    "esh4-glbx-mdp3-20231225.mbo.dbn.zst",
    "esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst",
];

/// Every record of a real file, in order, plus its dataset and symbol mappings.
pub fn read_file(name: &str) -> (Vec<MboMsg>, mbo_feed::FeedMetadata) {
    let path = mbo_testkit::mbo_data(name);
    let (mut source, meta) = mbo_feed::replay::open_file_source(&path).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = source.next_record().unwrap() {
        out.push(rec.clone());
    }
    (out, meta)
}

#[allow(unused_imports)] // Each test binary uses a part of this module.
pub use mbo_testkit::stored_fields as fields;
/// Order-sensitive checksum of stored rows (see [`mbo_testkit::RowChecksum`]).
pub type Checksum = mbo_testkit::RowChecksum;

/// Checksum of records `0..n` of `records` (index = position).
pub fn file_checksum(records: &[MboMsg]) -> Checksum {
    Checksum::of_records(records)
}

/// (row count, checksum, min index, max index) of a session's stored events.
pub fn stored(store: &Store, session: SessionId) -> (u64, Checksum, Option<i64>, Option<i64>) {
    let mut c = Checksum::default();
    let mut n = 0u64;
    let (mut min, mut max) = (None, None);
    mbo_store::blocks::scan(store.connection(), session, 0, u64::MAX, |index, rec| {
        let f = fields(index, &rec);
        min = min.or(Some(f[0]));
        max = Some(f[0]);
        c.add(&f);
        n += 1;
        Ok(std::ops::ControlFlow::Continue(()))
    })
    .unwrap();
    (n, c, min, max)
}

/// Sends `records` (stream indexes from `first`) through a writer in batches of `batch`.
pub fn ingest(
    db: &Path,
    session: SessionId,
    records: &[MboMsg],
    first: u64,
    batch: usize,
) -> mbo_store::WriterStats {
    let writer = Writer::spawn(db, session, 8).unwrap();
    for (k, chunk) in records.chunks(batch).enumerate() {
        writer
            .send(Batch::new(first + (k * batch) as u64, chunk.to_vec()))
            .unwrap();
    }
    writer.finish().unwrap()
}

/// Imports `records` the way the server's engine does: applied to a market in runs of
/// `run` records, each run handed to a [`mbo_store::Recorder`] and a checkpoint round
/// offered wherever no book is inside an event. Returns the writer's statistics and the
/// indexes of the rounds taken.
pub fn import(
    db: &Path,
    session: SessionId,
    records: &[MboMsg],
    options: mbo_store::RecorderOptions,
    run: usize,
) -> (mbo_store::WriterStats, Vec<u64>) {
    let writer = Writer::spawn(db, session, 8).unwrap();
    let mut recorder = mbo_store::Recorder::new(writer, options, None, None);
    let mut market = mbo_book::Market::new();
    let mut rounds = Vec::new();
    for chunk in records.chunks(run) {
        let first = market.next_index();
        for r in chunk {
            market.apply(r);
        }
        recorder.record(first, chunk).unwrap();
        if recorder.boundary(&market).unwrap() {
            rounds.push(market.next_index() - 1);
        }
    }
    (recorder.finish().unwrap(), rounds)
}
