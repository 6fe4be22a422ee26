//! Schema and migrations, versioned in code.
//!
//! Each entry of [`MIGRATIONS`] moves the database from version `i` to `i + 1`
//! (`PRAGMA user_version`); [`migrate`] applies the missing ones in one transaction at open,
//! so a database is always at a known version and opening twice is a no-op. Migrations are
//! append-only: a released one is never edited, a change is a new entry.
//!
//! Why these shapes:
//! * Events are stored in **blocks** (migration 3, [`crate::blocks`]): one `mbo_blocks` row
//!   per writer batch of consecutive records, keyed by `(session_id, first_index)`, holding
//!   every field of every record in a compact blob. One SQLite row per event (migrations 1-2,
//!   `mbo_events`) capped writes near 1 M records/s; a block moves SQLite's per-row cost to
//!   once per batch (16,384 records by default). Blocks never overlap: the writer only appends records past the
//!   session's stored end (`feed_sessions.last_index`), which is the idempotency rule.
//! * Readers find their starting point through `checkpoints (session_id, ts_recv)` and scan
//!   blocks forward by key; `trades`, keyed `(session_id, instrument_id, ts_recv,
//!   event_index)` since migration 4, serves trades and bars.
//! * A session's records are stored in `ts_recv` order (DBN files and Databento's feeds are
//!   ordered by `ts_recv`; so is the simulator), so an event index range is also a time range:
//!   time travel, trade cursors and retention's trade deletes rely on it to search by key.
//! * `checkpoints` hold every book's full L3 state ([`crate::checkpoint`]) in *rounds*: all
//!   books of a session at one event index (a point where no book is inside an event), every
//!   N events or T seconds. A book at any time is the round before it plus the events after.

use rusqlite::{params, Connection, Transaction};

use crate::blocks::{encode_block, BLOCK_FORMAT};
use crate::{u64_from_sql, Result, StoreError};

/// One schema step.
#[derive(Clone, Copy)]
pub enum Migration {
    /// Plain SQL.
    Sql(&'static str),
    /// SQL, then a data conversion in Rust (inside the same transaction).
    SqlThen(&'static str, fn(&Transaction<'_>) -> Result<()>),
}

impl std::fmt::Debug for Migration {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sql(sql) | Self::SqlThen(sql, _) => f.write_str(sql),
        }
    }
}

/// The migrations, in order; the database's `user_version` is how many have been applied.
pub const MIGRATIONS: &[Migration] = &[
    // 1: the initial schema.
    Migration::Sql(
        "
    CREATE TABLE feed_sessions (
        id INTEGER PRIMARY KEY,
        source TEXT NOT NULL,
        source_key TEXT NOT NULL UNIQUE,
        dataset TEXT,
        started_at INTEGER NOT NULL,
        ended_at INTEGER,
        last_index INTEGER
    ) STRICT;

    CREATE TABLE instruments (
        session_id INTEGER NOT NULL REFERENCES feed_sessions(id) ON DELETE CASCADE,
        instrument_id INTEGER NOT NULL,
        publisher_id INTEGER NOT NULL,
        symbol TEXT NOT NULL,
        PRIMARY KEY (session_id, instrument_id, publisher_id)
    ) STRICT, WITHOUT ROWID;

    CREATE TABLE mbo_events (
        session_id INTEGER NOT NULL,
        event_index INTEGER NOT NULL,
        ts_recv INTEGER NOT NULL,
        ts_event INTEGER NOT NULL,
        instrument_id INTEGER NOT NULL,
        publisher_id INTEGER NOT NULL,
        action INTEGER NOT NULL,
        side INTEGER NOT NULL,
        price INTEGER NOT NULL,
        size INTEGER NOT NULL,
        order_id INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        sequence INTEGER NOT NULL,
        channel_id INTEGER NOT NULL,
        ts_in_delta INTEGER NOT NULL,
        PRIMARY KEY (session_id, event_index)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX mbo_events_instrument_ts
        ON mbo_events (session_id, instrument_id, ts_recv);

    CREATE TABLE trades (
        session_id INTEGER NOT NULL,
        event_index INTEGER NOT NULL,
        instrument_id INTEGER NOT NULL,
        publisher_id INTEGER NOT NULL,
        ts_recv INTEGER NOT NULL,
        ts_event INTEGER NOT NULL,
        price INTEGER NOT NULL,
        size INTEGER NOT NULL,
        side INTEGER NOT NULL,
        PRIMARY KEY (session_id, event_index)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX trades_instrument_ts ON trades (instrument_id, ts_recv);

    CREATE TABLE checkpoints (
        session_id INTEGER NOT NULL,
        instrument_id INTEGER NOT NULL,
        publisher_id INTEGER NOT NULL,
        event_index INTEGER NOT NULL,
        ts_recv INTEGER NOT NULL,
        format INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (session_id, instrument_id, publisher_id, event_index)
    ) STRICT, WITHOUT ROWID;
    ",
    ),
    // 2: no secondary index on the event table. It cost 45 % of the write rate (the
    // `write_rate` example: 0.60 M vs 1.08 M rows/s) and every reader it served is
    // better served by the primary key: time travel and history windows start from a
    // checkpoint round (which knows its event index and time) and scan `event_index` forward.
    Migration::Sql(
        "
    DROP INDEX mbo_events_instrument_ts;
    CREATE INDEX checkpoints_ts ON checkpoints (session_id, ts_recv);
    -- Wall-clock time (ns) the checkpoint was taken: age-based retention measures the age of
    -- data by when it was ingested, not by its market timestamps (a 2023 file replayed today
    -- is new data).
    ALTER TABLE checkpoints ADD COLUMN written_at INTEGER NOT NULL DEFAULT 0;
    -- Retention horizon: events below `first_index` have been deleted.
    ALTER TABLE feed_sessions ADD COLUMN first_index INTEGER NOT NULL DEFAULT 0;
    ",
    ),
    // 3: events in blocks (see the module docs and `crate::blocks`); existing rows are
    // converted, then `mbo_events` is dropped. A rowid table, not `WITHOUT ROWID`: rows are
    // large blobs, which SQLite stores best with a rowid (its docs advise `WITHOUT ROWID`
    // only for rows smaller than a twentieth of a page); the key is then a small index.
    Migration::SqlThen(
        "
    CREATE TABLE mbo_blocks (
        session_id INTEGER NOT NULL,
        first_index INTEGER NOT NULL,
        last_index INTEGER NOT NULL,
        ts_first INTEGER NOT NULL,
        ts_last INTEGER NOT NULL,
        records INTEGER NOT NULL,
        format INTEGER NOT NULL,
        data BLOB NOT NULL,
        PRIMARY KEY (session_id, first_index)
    ) STRICT;
    ",
        events_to_blocks,
    ),
    // 4: trades in one B-tree, keyed for their readers: `(session_id, instrument_id,
    // ts_recv, event_index)`. Before, a trade was two B-tree inserts (the `(session_id,
    // event_index)` key and the `(instrument_id, ts_recv)` index), which made trade rows 62 %
    // of the writer's instructions (callgrind of `write_rate`) although only about one record
    // in ten is a trade; one insert lifted `write_rate` by about a third. Uniqueness is kept:
    // a session's event index fixes its record, so its instrument and `ts_recv` too. Readers
    // that found trades by event index now bound the search by time (see `query` and
    // `retention`).
    Migration::Sql(
        "
    CREATE TABLE trades_by_instrument (
        session_id INTEGER NOT NULL,
        instrument_id INTEGER NOT NULL,
        ts_recv INTEGER NOT NULL,
        event_index INTEGER NOT NULL,
        publisher_id INTEGER NOT NULL,
        ts_event INTEGER NOT NULL,
        price INTEGER NOT NULL,
        size INTEGER NOT NULL,
        side INTEGER NOT NULL,
        PRIMARY KEY (session_id, instrument_id, ts_recv, event_index)
    ) STRICT, WITHOUT ROWID;
    INSERT INTO trades_by_instrument (session_id, instrument_id, ts_recv, event_index,
        publisher_id, ts_event, price, size, side)
        SELECT session_id, instrument_id, ts_recv, event_index, publisher_id, ts_event, price,
               size, side FROM trades;
    DROP TABLE trades;
    ALTER TABLE trades_by_instrument RENAME TO trades;
    ",
    ),
];

/// Records per block when migration 3 converts existing rows (the writer's batch size).
const MIGRATION_BLOCK: usize = 4096;

/// Migration 3's conversion: every session's `mbo_events` rows, in index order, become
/// blocks of up to [`MIGRATION_BLOCK`] consecutive records; then the table goes.
fn events_to_blocks(tx: &Transaction<'_>) -> Result<()> {
    let mut read = tx.prepare(
        "SELECT session_id, event_index, ts_recv, ts_event, instrument_id, publisher_id, \
         action, side, price, size, order_id, flags, sequence, channel_id, ts_in_delta \
         FROM mbo_events ORDER BY session_id, event_index",
    )?;
    let mut insert = tx.prepare(
        "INSERT INTO mbo_blocks (session_id, first_index, last_index, ts_first, ts_last, \
         records, format, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    let mut rows = read.query([])?;
    let mut pending: Vec<dbn::MboMsg> = Vec::with_capacity(MIGRATION_BLOCK);
    let mut key: Option<(i64, i64)> = None; // (session, first index) of `pending`
    let mut buf = Vec::new();
    let mut flush = |key: (i64, i64), pending: &mut Vec<dbn::MboMsg>| -> Result<()> {
        if let (Some(first), Some(last)) = (pending.first(), pending.last()) {
            encode_block(pending, &mut buf);
            insert.execute(params![
                key.0,
                key.1,
                key.1 + pending.len() as i64 - 1,
                first.ts_recv as i64,
                last.ts_recv as i64,
                pending.len() as i64,
                BLOCK_FORMAT,
                buf
            ])?;
        }
        pending.clear();
        Ok(())
    };
    while let Some(r) = rows.next()? {
        let session: i64 = r.get(0)?;
        let index: i64 = r.get(1)?;
        let action: u8 = r.get(6)?;
        let side: u8 = r.get(7)?;
        let rec = dbn::MboMsg {
            hd: dbn::RecordHeader::new::<dbn::MboMsg>(
                dbn::rtype::MBO,
                r.get(5)?,
                r.get(4)?,
                u64_from_sql(r.get(3)?),
            ),
            order_id: u64_from_sql(r.get(10)?),
            price: r.get(8)?,
            size: r.get(9)?,
            flags: dbn::FlagSet::new(r.get(11)?),
            channel_id: r.get(13)?,
            action: action as std::ffi::c_char,
            side: side as std::ffi::c_char,
            ts_recv: u64_from_sql(r.get(2)?),
            ts_in_delta: r.get(14)?,
            sequence: r.get(12)?,
        };
        // A block holds consecutive indexes of one session.
        let continues = matches!(key, Some((s, first))
            if s == session && first + pending.len() as i64 == index
                && pending.len() < MIGRATION_BLOCK);
        if !continues {
            if let Some(k) = key {
                flush(k, &mut pending)?;
            }
            key = Some((session, index));
        }
        pending.push(rec);
    }
    if let Some(k) = key {
        flush(k, &mut pending)?;
    }
    drop(rows);
    drop(read);
    tx.execute_batch("DROP TABLE mbo_events;")?;
    Ok(())
}

/// The schema version this build writes (`PRAGMA user_version` after [`migrate`]).
pub const CURRENT_VERSION: i64 = MIGRATIONS.len() as i64;

/// The database's `PRAGMA user_version`.
///
/// # Errors
/// Any SQLite error.
pub fn version(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |r| r.get(0))?)
}

/// Applies the missing migrations in one transaction; a no-op on an up-to-date database.
///
/// # Errors
/// [`StoreError::SchemaTooNew`] for a database from a newer build; any SQLite error (the
/// transaction is rolled back, the file is left at its previous version).
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, CURRENT_VERSION)
}

/// Applies the migrations that take the database up to version `target` (at most
/// [`CURRENT_VERSION`]) in one transaction; a no-op on a database at or past `target`. Tests
/// build databases of earlier versions with it, to check the later migrations' conversions.
///
/// # Errors
/// As [`migrate`].
pub fn migrate_to(conn: &mut Connection, target: i64) -> Result<()> {
    let found = version(conn)?;
    if found > CURRENT_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: CURRENT_VERSION,
        });
    }
    let target = target.min(CURRENT_VERSION);
    if found >= target {
        return Ok(());
    }
    // IMMEDIATE: two processes opening a fresh file at once serialize here; the loser sees
    // the winner's version below and applies nothing.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let steps = MIGRATIONS.iter().enumerate().take(target.max(0) as usize);
    for (i, step) in steps.skip(found.max(0) as usize) {
        match step {
            Migration::Sql(sql) => tx.execute_batch(sql)?,
            Migration::SqlThen(sql, convert) => {
                tx.execute_batch(sql)?;
                convert(&tx)?;
            }
        }
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()?;
    Ok(())
}
