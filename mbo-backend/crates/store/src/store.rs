//! Opening a database, feed sessions, statistics.
//!
//! Every connection (the [`Store`]'s and each writer's) is configured the same way by
//! [`configure`]: WAL so readers never block the writer, `synchronous=NORMAL` (durable at
//! each checkpoint, and a crash never corrupts the file or leaves half a transaction: a
//! power loss may drop the last commits, which resume re-ingests), foreign keys on, and a busy
//! timeout so concurrent connections wait instead of failing.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};

use crate::{schema, u64_from_sql, Result};

/// How long a connection waits for a lock held by another one before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Page size of new databases: larger pages mean fewer B-tree splits and less per-page
/// overhead for the append-heavy block table (measured with the `write_rate` example).
const PAGE_SIZE: i64 = 16_384;

/// A feed session's id (`feed_sessions.id`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub i64);

/// Row counts and size of a database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Rows of `feed_sessions`.
    pub sessions: u64,
    /// Rows of `instruments`.
    pub instruments: u64,
    /// Events stored (records in `mbo_blocks`).
    pub events: u64,
    /// Rows of `trades`.
    pub trades: u64,
    /// Rows of `checkpoints`.
    pub checkpoints: u64,
    /// `page_count * page_size`, bytes (the main file; the WAL is not counted).
    pub db_bytes: u64,
}

/// Opens `path` with the house settings (see the module docs), creating the file if needed.
pub(crate) fn configure(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path)?;
    // page_size only takes effect before the first table exists (and before WAL is on).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 64 MiB of page cache (negative = KiB): the block table's right edge and the index pages
    // being appended to stay in memory.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Fewer, larger WAL checkpoints (8192 pages = 128 MiB) for the append-heavy writer.
    conn.pragma_update(None, "wal_autocheckpoint", 8192)?;
    // A reset WAL keeps up to 128 MiB of its file for reuse (see the writer's WAL restart).
    conn.pragma_update(None, "journal_size_limit", 128_i64 << 20)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// Nanoseconds since the Unix epoch now (0 if the clock is before 1970).
pub(crate) fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A database of MBO history: sessions, events, trades, checkpoints.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
}

impl Store {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    ///
    /// # Errors
    /// Any SQLite error; [`crate::StoreError::SchemaTooNew`] for a newer database.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let mut conn = configure(path.as_ref())?;
        schema::migrate(&mut conn)?;
        Ok(Self { conn })
    }

    /// The underlying connection, for queries this crate does not wrap yet.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The schema version of the open database.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn schema_version(&self) -> Result<i64> {
        schema::version(&self.conn)
    }

    /// The session whose `source_key` is given, created if new (get-or-create): reading the
    /// same source again returns the same id, so its rows are not duplicated.
    ///
    /// `source` is a label (`file`, `simulator`, `live`...); `source_key` identifies the
    /// content (`file:sha256:<hex>`, `sim:seed:N`); `dataset` is Databento's code.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn session(
        &self,
        source: &str,
        source_key: &str,
        dataset: Option<&str>,
    ) -> Result<SessionId> {
        // One statement: two connections racing on the same key both end with the one row.
        self.conn.execute(
            "INSERT INTO feed_sessions (source, source_key, dataset, started_at)
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (source_key) DO NOTHING",
            params![source, source_key, dataset, now_ns()],
        )?;
        let id = self.conn.query_row(
            "SELECT id FROM feed_sessions WHERE source_key = ?1",
            [source_key],
            |r| r.get(0),
        )?;
        Ok(SessionId(id))
    }

    /// Index of the last event committed for `session` (`None`: nothing committed yet, or no
    /// such session). Resume continues at `last_index + 1`.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn last_index(&self, session: SessionId) -> Result<Option<u64>> {
        let v: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT last_index FROM feed_sessions WHERE id = ?1",
                [session.0],
                |r| r.get(0),
            )
            .optional()?;
        Ok(v.flatten().map(u64_from_sql))
    }

    /// `ts_recv` of the stored event `index` of `session` (`None`: not stored).
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn event_ts(&self, session: SessionId, index: u64) -> Result<Option<u64>> {
        crate::blocks::event_ts(&self.conn, session, index)
    }

    /// The most recent session whose `source_key` starts with `prefix` (how a restarted
    /// simulator finds the run it resumes): its id and key.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn latest_session_with_prefix(&self, prefix: &str) -> Result<Option<(SessionId, String)>> {
        let v = self
            .conn
            .query_row(
                "SELECT id, source_key FROM feed_sessions \
                 WHERE substr(source_key, 1, length(?1)) = ?1 ORDER BY id DESC LIMIT 1",
                [prefix],
                |r| Ok((SessionId(r.get(0)?), r.get(1)?)),
            )
            .optional()?;
        Ok(v)
    }

    /// Index of the last checkpoint round of `session` (`None`: none yet).
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn last_checkpoint(&self, session: SessionId) -> Result<Option<u64>> {
        let v: Option<i64> = self.conn.query_row(
            "SELECT max(event_index) FROM checkpoints WHERE session_id = ?1",
            [session.0],
            |r| r.get(0),
        )?;
        Ok(v.map(u64_from_sql))
    }

    /// The latest checkpoint round of `session` taken at or before `ts` (`ts_recv`), by its
    /// event index: where a seek to `ts` can start instead of the beginning.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn round_at(&self, session: SessionId, ts: u64) -> Result<Option<u64>> {
        let v: Option<i64> = self.conn.query_row(
            "SELECT max(event_index) FROM checkpoints WHERE session_id = ?1 AND ts_recv <= ?2",
            params![session.0, crate::u64_to_sql(ts)],
            |r| r.get(0),
        )?;
        Ok(v.map(u64_from_sql))
    }

    /// Every book of the round `index` of `session`, restored exactly (empty: no such round).
    ///
    /// # Errors
    /// Any SQLite error; a corrupt checkpoint.
    pub fn round_books(&self, session: SessionId, index: u64) -> Result<Vec<mbo_book::Book>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT instrument_id, publisher_id, data FROM checkpoints \
             WHERE session_id = ?1 AND event_index = ?2",
        )?;
        let mut rows = stmt.query(params![session.0, crate::u64_to_sql(index)])?;
        let mut books = Vec::new();
        while let Some(row) = rows.next()? {
            let key = mbo_book::BookKey {
                instrument_id: row.get(0)?,
                publisher_id: row.get(1)?,
            };
            let data: Vec<u8> = row.get(2)?;
            books.push(crate::decode_checkpoint(&data)?.into_book(key));
        }
        Ok(books)
    }

    /// Marks `session` as open again (a server writing into it once more): retention never
    /// drops an open session whole.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn reopen_session(&self, session: SessionId) -> Result<()> {
        self.conn.execute(
            "UPDATE feed_sessions SET ended_at = NULL WHERE id = ?1",
            [session.0],
        )?;
        Ok(())
    }

    /// Marks `session` as ended now.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn end_session(&self, session: SessionId) -> Result<()> {
        self.conn.execute(
            "UPDATE feed_sessions SET ended_at = ?2 WHERE id = ?1",
            params![session.0, now_ns()],
        )?;
        Ok(())
    }

    /// Row counts and database size.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn stats(&self) -> Result<StoreStats> {
        let count = |table: &str| -> Result<u64> {
            let n: i64 =
                self.conn
                    .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))?;
            Ok(n.max(0) as u64)
        };
        let pages: i64 = self
            .conn
            .pragma_query_value(None, "page_count", |r| r.get(0))?;
        let page_size: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))?;
        Ok(StoreStats {
            sessions: count("feed_sessions")?,
            instruments: count("instruments")?,
            events: self
                .conn
                .query_row(
                    "SELECT coalesce(sum(records), 0) FROM mbo_blocks",
                    [],
                    |r| r.get::<_, i64>(0),
                )?
                .max(0) as u64,
            trades: count("trades")?,
            checkpoints: count("checkpoints")?,
            db_bytes: (pages.max(0) as u64) * (page_size.max(0) as u64),
        })
    }

    /// `PRAGMA integrity_check`'s report (`"ok"` for a sound file).
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn integrity_check(&self) -> Result<String> {
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        let lines = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(lines.join("\n"))
    }
}
