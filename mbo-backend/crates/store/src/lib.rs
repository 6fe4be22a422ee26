//! # mbo-store: every MBO event persisted in SQLite
//!
//! The foundation of time travel, history queries and crash-safe resume (issue 5): one SQLite
//! file (WAL, `synchronous=NORMAL`), schema migrations versioned in code, and a writer that
//! keeps storage off the ingestion hot path.
//!
//! ## Design
//!
//! * [`Store`] opens (and creates or migrates) a database and answers bookkeeping questions:
//!   feed sessions, row counts, size. Every table is `STRICT`; the schema lives in [`schema`].
//! * [`Writer`] owns a second connection on a dedicated thread and receives [`Batch`]es over a
//!   bounded channel. A full channel blocks the sender (backpressure, never unbounded
//!   buffering, never dropping) and the time spent blocked is exposed as a metric. One
//!   transaction per batch, the batch's records as one block ([`blocks`]), and only records
//!   past the session's stored end appended: re-sending any batch, or re-ingesting a whole
//!   file under the same session, never duplicates a record, and a crash never leaves half a
//!   batch.
//! * A feed session is keyed by its `source_key` (`file:sha256:<hex>`, `sim:seed:N`): reading
//!   the same content again lands in the same session, which is what makes re-ingest
//!   idempotent. `feed_sessions.last_index` is updated in each batch's transaction, so after a
//!   crash it says exactly where the committed data ends.
//! * [`checkpoint`] encodes a book's full L3 state compactly (varint, delta-coded) for the
//!   `checkpoints` table.
//! * [`Recorder`] is what an ingesting process talks to: it batches applied records, skips
//!   what is already stored, and takes checkpoint rounds of the whole market.
//! * [`retention`] deletes whole old ranges (by ingestion age and/or a row budget), cut at
//!   checkpoint rounds so time travel keeps working for everything retained.
//!
//! ## Integer mapping
//!
//! SQLite integers are `i64`. `u64` fields (`order_id`, `ts_recv`, `ts_event`) are stored
//! **bit-cast** ([`u64_to_sql`], [`u64_from_sql`]): exact both ways for every value, including
//! `u64::MAX` (Databento's undefined timestamp, stored as `-1`). Real nanosecond timestamps
//! are below `2^63`, so their order is preserved and range queries on `ts_recv` work as is.
//! Every narrower field (`u32`, `u16`, `u8`, `i32`, `c_char` action/side as ASCII codes) fits
//! an `i64` losslessly.
#![deny(missing_docs)]

pub mod blocks;
pub mod checkpoint;
mod error;
pub mod query;
mod recorder;
pub mod retention;
pub mod schema;
mod store;
mod writer;

pub use checkpoint::{decode_checkpoint, encode_checkpoint, DecodedCheckpoint, CHECKPOINT_FORMAT};
pub use error::{Result, StoreError};
pub use query::{Bar, BarQuery, EventQuery, HistoryReader, SessionSummary, TradeQuery, TradeRow};
pub use recorder::{CheckpointPolicy, Recorder, RecorderOptions};
pub use retention::{
    enforce, enforce_store, spawn_retention, Deleted, Retention, RetentionObserver,
    RetentionPolicy, RetentionTask, RetentionTotals,
};
pub use store::{SessionId, Store, StoreStats};
pub use writer::{
    Batch, BatchObserver, BatchReport, Checkpoint, SymbolMapping, Writer, WriterProbe, WriterStats,
};

/// The session key of a file's content: `file:sha256:<64 hex digits>` of its bytes as stored
/// (compressed or not). The same file read again, under any name, maps to the same session.
///
/// # Errors
/// [`StoreError::Io`] if the file cannot be read.
pub fn file_source_key(path: impl AsRef<std::path::Path>) -> Result<String> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let path = path.as_ref();
    let io = |source| StoreError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let mut key = String::with_capacity(12 + 64);
    key.push_str("file:sha256:");
    for b in hasher.finalize().iter() {
        key.push(char::from(HEX[usize::from(b >> 4)]));
        key.push(char::from(HEX[usize::from(b & 15)]));
    }
    Ok(key)
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Bit-casts a `u64` to the `i64` SQLite stores (exact; see the crate docs).
#[inline]
pub const fn u64_to_sql(v: u64) -> i64 {
    v as i64
}

/// Inverse of [`u64_to_sql`]: exact for every value.
#[inline]
pub const fn u64_from_sql(v: i64) -> u64 {
    v as u64
}

/// `EXPLAIN QUERY PLAN` of a statement against a fresh database at the current schema, one
/// line per plan step: tests assert that readers and deletes seek by key.
#[cfg(test)]
pub(crate) fn query_plan(sql: &str) -> Vec<String> {
    #![allow(clippy::unwrap_used)]
    let mut conn = rusqlite::Connection::open_in_memory().unwrap();
    schema::migrate(&mut conn).unwrap();
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    // Unbound parameters are NULL, which does not change the plan.
    let mut rows = stmt.raw_query();
    let mut plan = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        plan.push(r.get::<_, String>(3).unwrap());
    }
    plan
}

/// True for a plan step that reads a whole table (or a whole index) instead of seeking.
/// Scans of a subquery's or a recursive query's own rows (`g`, `ins`, a constant row) are
/// not table scans.
#[cfg(test)]
pub(crate) fn is_full_scan(step: &str) -> bool {
    let Some(rest) = step.strip_prefix("SCAN ") else {
        return false;
    };
    let name = rest.split_whitespace().next().unwrap_or("");
    !matches!(name, "g" | "ins" | "CONSTANT")
}
