//! The read side: time travel, trades, bars and event windows from a stored session.
//!
//! [`HistoryReader`] holds one read-only connection to a database the [`crate::Writer`]
//! fills. It runs beside the writer: the file is in WAL mode (set by [`crate::Store`]), so a
//! reader sees the last committed transaction at the start of each query and neither blocks
//! the writer nor is blocked by it. The connection is opened read-write without the create
//! flag and then made `query_only`: a `SQLITE_OPEN_READ_ONLY` connection cannot create the
//! WAL's shared-memory file when no writer has it open, while `query_only` refuses every
//! write all the same.
//!
//! ## Why rounds + a block scan
//!
//! Events are stored in blocks of consecutive records keyed by `(session_id, first_index)`
//! ([`crate::blocks`]), so any contiguous piece of the stream is a key seek and a scan of
//! consecutive blocks, decoded in place. What a reader needs is where to
//! start and where to stop, and the checkpoint rounds give both cheaply: every round is a row
//! per book in `checkpoints` with the round's `event_index` and `ts_recv`, indexed by
//! `(session_id, ts_recv)`.
//!
//! * **Time travel** ([`HistoryReader::book_at`]): the latest round with `ts_recv <= ts`
//!   holds the book's exact L3 state at that index ([`crate::checkpoint`]); the events after
//!   it are scanned in blocks (other books' records skipped while decoding) up to
//!   the first round after `ts` at most, so one call reads at most one round interval of
//!   events (`CheckpointPolicy::every_events`, 50,000 by default) and decodes one blob.
//! * **Event windows** ([`HistoryReader::events`]): the first page starts after the latest
//!   round with `ts_recv < from` (instead of scanning from index 0) and every page stops
//!   before the first round with `ts_recv > to`; later pages start at the cursor, so paging
//!   through a window costs what the window holds plus one round interval at each end.
//! * **Trades and bars** use the `trades (instrument_id, ts_recv)` index directly.
//!
//! ## The `ts_recv` order assumption
//!
//! All of this relies on a session's records being in **non-decreasing `ts_recv` order** in
//! stream (`event_index`) order: Databento files and the simulator are sorted by `ts_recv`
//! (the `travel` tests assert it on every real file). Then "the records with `ts_recv <= ts`"
//! is a prefix of the stream, a round with `ts_recv <= ts` lies inside that prefix, and a
//! round with `ts_recv > ts` lies after it. Where the two orders could differ the definition
//! is by stream order: time travel stops at the first record (of the book) with
//! `ts_recv > ts`, and trades come in `(ts_recv, event_index)` order, which is stream order.
//!
//! ## "The book at `ts`"
//!
//! A book is only consistent after an `F_LAST` record of that book (an event boundary, see
//! the book rules). [`HistoryReader::book_at`] returns the book after its **last boundary at
//! or before `ts`**: the last `F_LAST` record of that book whose `ts_recv <= ts`, scanning in
//! stream order. Records of an event still open at `ts` (its `F_LAST` comes later) are not
//! applied. A book with no boundary at or before `ts` (not yet seen, or `ts` before the
//! stream) is `None`.
//!
//! ## Retention
//!
//! `feed_sessions.first_index` is the retention horizon: events below it have been deleted.
//! A book can then only be rebuilt from a round whose following events all remain
//! (`round.event_index + 1 >= first_index`), so a `ts` before the earliest such round is
//! [`StoreError::BeforeHorizon`]. Without any round before `ts`, a book is rebuilt from the
//! session's first event, which only exists while `first_index == 0`.
//!
//! ## Integers
//!
//! Timestamps and indexes are compared in SQLite's `i64` space (see [`crate::u64_to_sql`]);
//! bounds above `i64::MAX` are clamped to it, which keeps every real timestamp in range.

use std::path::Path;
use std::time::Duration;

use std::ops::ControlFlow;

use dbn::MboMsg;
use mbo_book::{Book, BookKey};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};

use crate::{
    blocks, decode_checkpoint, schema, u64_from_sql, u64_to_sql, Result, SessionId, StoreError,
};

/// How long a query waits for a lock before `SQLITE_BUSY` (WAL readers rarely wait at all).
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// The latest round with `ts_recv <= ?2` (its highest index among rounds of that time).
const ROUND_AT_OR_BEFORE: &str = "SELECT max(event_index), ts_recv FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv = (SELECT max(ts_recv) FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv <= ?2)";

/// The latest round with `ts_recv < ?2`.
const ROUND_BEFORE: &str = "SELECT max(event_index) FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv = (SELECT max(ts_recv) FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv < ?2)";

/// The earliest round with `ts_recv > ?2`.
const ROUND_AFTER: &str = "SELECT min(event_index) FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv = (SELECT min(ts_recv) FROM checkpoints \
     WHERE session_id = ?1 AND ts_recv > ?2)";

/// One book's blob of one round.
const CHECKPOINT_BLOB: &str = "SELECT data FROM checkpoints WHERE session_id = ?1 \
     AND instrument_id = ?2 AND publisher_id = ?3 AND event_index = ?4";

/// Earliest round a book can be rebuilt from when events below `?2` are gone.
const HORIZON: &str = "SELECT min(ts_recv) FROM checkpoints \
     WHERE session_id = ?1 AND event_index >= ?2 - 1";

const FIRST_INDEX: &str = "SELECT first_index FROM feed_sessions WHERE id = ?1";

/// A lower bound on the `ts_recv` of the record at a cursor: the first `ts_recv` of the
/// stored block holding it (found by key). Records are stored in `ts_recv` order, so every
/// trade after the cursor has a `ts_recv` at least this large and the key scan can start there.
const TRADE_CURSOR_TS: &str = "SELECT ts_first FROM mbo_blocks WHERE session_id = ?1 \
     AND first_index <= ?2 ORDER BY first_index DESC LIMIT 1";

const TRADES: &str = "SELECT event_index, instrument_id, publisher_id, ts_recv, ts_event, \
     price, size, side FROM trades \
     WHERE instrument_id = ?1 AND ts_recv >= ?2 AND ts_recv <= ?3 AND session_id = ?4 \
     AND event_index > ?5 AND (?6 IS NULL OR publisher_id = ?6) \
     ORDER BY ts_recv, event_index LIMIT ?7";

/// Buckets aggregated in SQL; open and close are the prices of the bucket's first and last
/// trades (lowest and highest event index). Each is found by key inside its bucket's
/// `ts_recv` span (`lo..=hi`), so the whole query reads each bucket's rows a few times and
/// never the rest of the table.
const BARS: &str = "SELECT g.bucket, o.price, g.high, g.low, c.price, g.volume, g.n FROM \
     (SELECT (ts_recv / ?5) * ?5 AS bucket, min(event_index) AS first, \
             max(event_index) AS last, min(ts_recv) AS lo, max(ts_recv) AS hi, \
             max(price) AS high, min(price) AS low, sum(size) AS volume, count(*) AS n \
      FROM trades \
      WHERE session_id = ?4 AND instrument_id = ?1 AND ts_recv >= ?2 AND ts_recv <= ?3 \
        AND (?6 IS NULL OR publisher_id = ?6) \
      GROUP BY bucket) AS g \
     JOIN trades AS o ON o.session_id = ?4 AND o.instrument_id = ?1 \
        AND o.ts_recv BETWEEN g.lo AND g.hi AND o.event_index = g.first \
     JOIN trades AS c ON c.session_id = ?4 AND c.instrument_id = ?1 \
        AND c.ts_recv BETWEEN g.lo AND g.hi AND c.event_index = g.last \
     ORDER BY g.bucket";

/// Trades of one instrument in a `ts_recv` window, paged by an event-index cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TradeQuery {
    /// The session.
    pub session: SessionId,
    /// The instrument.
    pub instrument_id: u32,
    /// Only this publisher's trades (`None`: every publisher's).
    pub publisher_id: Option<u16>,
    /// Window start, `ts_recv` ns, inclusive.
    pub from: u64,
    /// Window end, `ts_recv` ns, inclusive.
    pub to: u64,
    /// Cursor: only trades with a larger `event_index` (the last index of the previous page).
    pub after: Option<u64>,
    /// At most this many rows.
    pub limit: usize,
}

/// One stored trade (an action `T` record).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TradeRow {
    /// Stream index of the record.
    pub event_index: u64,
    /// Instrument.
    pub instrument_id: u32,
    /// Publisher.
    pub publisher_id: u16,
    /// Capture time, ns since the epoch.
    pub ts_recv: u64,
    /// Exchange time, ns since the epoch.
    pub ts_event: u64,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Size.
    pub size: u32,
    /// Aggressor side as ASCII (`A`, `B` or `N`).
    pub side: u8,
}

/// OHLCV bars of one instrument's trades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BarQuery {
    /// The session.
    pub session: SessionId,
    /// The instrument.
    pub instrument_id: u32,
    /// Only this publisher's trades (`None`: every publisher's).
    pub publisher_id: Option<u16>,
    /// Window start, `ts_recv` ns, inclusive (trades before it are not counted, even in the
    /// bucket it falls in).
    pub from: u64,
    /// Window end, `ts_recv` ns, inclusive.
    pub to: u64,
    /// Bucket width, ns (1 to `i64::MAX`); buckets start at multiples of it since the epoch.
    pub interval_ns: u64,
}

/// One OHLCV bar (a bucket holding at least one trade).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Bar {
    /// Bucket start: `ts_recv / interval_ns * interval_ns`.
    pub start_ts: u64,
    /// Price of the bucket's first trade (lowest event index), 1e-9 units.
    pub open: i64,
    /// Highest trade price.
    pub high: i64,
    /// Lowest trade price.
    pub low: i64,
    /// Price of the bucket's last trade (highest event index).
    pub close: i64,
    /// Sum of trade sizes.
    pub volume: u64,
    /// Number of trades.
    pub trades: u64,
}

/// Stored records of a `ts_recv` window, paged by an event-index cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventQuery {
    /// The session.
    pub session: SessionId,
    /// Only this instrument's records (`None`: all).
    pub instrument_id: Option<u32>,
    /// Window start, `ts_recv` ns, inclusive.
    pub from: u64,
    /// Window end, `ts_recv` ns, inclusive.
    pub to: u64,
    /// Cursor: only records with a larger `event_index` (the last index of the previous page).
    pub after: Option<u64>,
    /// At most this many records.
    pub limit: usize,
}

/// Read-only queries over a database (see the module docs).
#[derive(Debug)]
pub struct HistoryReader {
    conn: Connection,
}

/// A `u64` bound in SQLite's `i64` space: values above `i64::MAX` clamp to it.
fn bound(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A `limit` as an SQL value.
fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// The exclusive lower cursor `after` as the first index to read.
fn start_after(after: Option<u64>) -> i64 {
    after.map_or(0, |a| bound(a.saturating_add(1)))
}

impl HistoryReader {
    /// Opens an existing database for reading (see the module docs for the connection).
    ///
    /// # Errors
    /// [`StoreError::NoDatabase`] if `path` is not a file (it is never created);
    /// [`StoreError::SchemaMismatch`] if its schema version is not
    /// [`schema::CURRENT_VERSION`] (readers do not migrate); any SQLite error.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if !path.is_file() {
            return Err(StoreError::NoDatabase {
                path: path.to_owned(),
            });
        }
        // No SQLITE_OPEN_CREATE: a file removed since the check is an error, not a new file.
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", "ON")?;
        // 64 MiB of page cache (negative = KiB), as the writer has.
        conn.pragma_update(None, "cache_size", -65_536)?;
        conn.set_prepared_statement_cache_capacity(32);
        let found = schema::version(&conn)?;
        if found != schema::CURRENT_VERSION {
            return Err(StoreError::SchemaMismatch {
                found,
                expected: schema::CURRENT_VERSION,
            });
        }
        Ok(Self { conn })
    }

    /// The book `key` after its last event boundary (an `F_LAST` record of that book) whose
    /// `ts_recv <= ts`, rebuilt exactly from the latest checkpoint round with
    /// `ts_recv <= ts` plus the book's whole events after it (see the module docs).
    /// `Ok(None)` when the book has no boundary at or before `ts`.
    ///
    /// # Errors
    /// [`StoreError::BeforeHorizon`] when the events needed are below the session's
    /// retention horizon; [`StoreError::Checkpoint`] for a corrupt blob; any SQLite error.
    pub fn book_at(&self, session: SessionId, key: BookKey, ts: u64) -> Result<Option<Book>> {
        let ts_sql = bound(ts);
        let first_index: i64 = self
            .conn
            .prepare_cached(FIRST_INDEX)?
            .query_row([session.0], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let round: Option<(i64, i64)> = self
            .conn
            .prepare_cached(ROUND_AT_OR_BEFORE)?
            .query_row(params![session.0, ts_sql], |r| {
                Ok(r.get::<_, Option<i64>>(0)?.zip(r.get::<_, Option<i64>>(1)?))
            })?;
        // The events from the starting point on must all remain.
        let start_ok = match round {
            Some((index, _)) => index.saturating_add(1) >= first_index,
            None => first_index <= 0,
        };
        if !start_ok {
            let horizon: Option<i64> = self
                .conn
                .prepare_cached(HORIZON)?
                .query_row(params![session.0, first_index], |r| r.get(0))?;
            return Err(StoreError::BeforeHorizon {
                session: session.0,
                ts,
                horizon: horizon.map(u64_from_sql),
            });
        }
        let (mut book, after) = match round {
            Some((index, _)) => {
                let blob: Option<Vec<u8>> = self
                    .conn
                    .prepare_cached(CHECKPOINT_BLOB)?
                    .query_row(
                        params![
                            session.0,
                            i64::from(key.instrument_id),
                            i64::from(key.publisher_id),
                            index
                        ],
                        |r| r.get(0),
                    )
                    .optional()?;
                // A book missing from a round had no record before it: it starts empty.
                let book = match blob {
                    Some(b) => decode_checkpoint(&b)?.into_book(key),
                    None => Book::new(key),
                };
                (book, index)
            }
            None => (Book::new(key), -1),
        };
        // Records at and after the next round's index all have ts_recv > ts.
        let until: i64 = self
            .conn
            .prepare_cached(ROUND_AFTER)?
            .query_row(params![session.0, ts_sql], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(i64::MAX);

        // Records of the event in progress: applied only once its F_LAST record arrives.
        let mut open: Vec<(u64, MboMsg)> = Vec::new();
        let from = u64::try_from(after.saturating_add(1)).unwrap_or(0);
        let until = u64::try_from(until).unwrap_or(u64::MAX);
        blocks::scan(&self.conn, session, from, until, |index, rec| {
            if rec.hd.instrument_id != key.instrument_id || rec.hd.publisher_id != key.publisher_id
            {
                return Ok(ControlFlow::Continue(()));
            }
            if u64_to_sql(rec.ts_recv) > ts_sql {
                return Ok(ControlFlow::Break(()));
            }
            if rec.flags.is_last() {
                for (i, r) in open.drain(..) {
                    book.apply(&r, i);
                }
                book.apply(&rec, index);
            } else {
                open.push((index, rec));
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(book.state().event_index.is_some().then_some(book))
    }

    /// Trades (action `T` records) of an instrument with `ts_recv` in `[from, to]`, in
    /// stream order, after the `after` cursor (exclusive), at most `limit` rows.
    ///
    /// # Errors
    /// Any SQLite error (also for a stored value out of its field's range).
    pub fn trades(&self, q: &TradeQuery) -> Result<Vec<TradeRow>> {
        let mut out = Vec::new();
        if q.limit == 0 || q.from > q.to {
            return Ok(out);
        }
        let mut from = bound(q.from);
        if let Some(after) = q.after {
            // Start the index scan at the cursor's time instead of the window's start.
            let cursor_ts: Option<i64> = self
                .conn
                .prepare_cached(TRADE_CURSOR_TS)?
                .query_row(params![q.session.0, bound(after)], |r| r.get(0))
                .optional()?;
            if let Some(t) = cursor_ts {
                from = from.max(t);
            }
        }
        let mut stmt = self.conn.prepare_cached(TRADES)?;
        let mut rows = stmt.query(params![
            i64::from(q.instrument_id),
            from,
            bound(q.to),
            q.session.0,
            q.after.map_or(-1, bound),
            q.publisher_id.map(i64::from),
            sql_limit(q.limit)
        ])?;
        while let Some(r) = rows.next()? {
            out.push(TradeRow {
                event_index: u64_from_sql(r.get(0)?),
                instrument_id: r.get(1)?,
                publisher_id: r.get(2)?,
                ts_recv: u64_from_sql(r.get(3)?),
                ts_event: u64_from_sql(r.get(4)?),
                price: r.get(5)?,
                size: r.get(6)?,
                side: r.get(7)?,
            });
        }
        Ok(out)
    }

    /// OHLCV bars of an instrument's trades with `ts_recv` in `[from, to]`, computed in SQL:
    /// one per non-empty bucket `ts_recv / interval_ns * interval_ns`, ascending.
    ///
    /// # Errors
    /// [`StoreError::InvalidQuery`] for an interval of 0 or above `i64::MAX`; any SQLite
    /// error.
    pub fn bars(&self, q: &BarQuery) -> Result<Vec<Bar>> {
        let interval = i64::try_from(q.interval_ns).ok().filter(|&i| i > 0).ok_or(
            StoreError::InvalidQuery("bar interval must be between 1 ns and i64::MAX ns"),
        )?;
        let mut out = Vec::new();
        if q.from > q.to {
            return Ok(out);
        }
        let mut stmt = self.conn.prepare_cached(BARS)?;
        let mut rows = stmt.query(params![
            i64::from(q.instrument_id),
            bound(q.from),
            bound(q.to),
            q.session.0,
            interval,
            q.publisher_id.map(i64::from)
        ])?;
        while let Some(r) = rows.next()? {
            let volume: i64 = r.get(5)?;
            let trades: i64 = r.get(6)?;
            out.push(Bar {
                start_ts: u64_from_sql(r.get(0)?),
                open: r.get(1)?,
                high: r.get(2)?,
                low: r.get(3)?,
                close: r.get(4)?,
                volume: u64::try_from(volume).unwrap_or(0),
                trades: u64::try_from(trades).unwrap_or(0),
            });
        }
        Ok(out)
    }

    /// Stored records with `ts_recv` in `[from, to]` (optionally of one instrument), in
    /// stream order, with `event_index > after`, at most `limit`. Page through a window by
    /// passing the last returned index as the next `after`: each page starts at the cursor
    /// by key, the first one after the latest round with `ts_recv < from`.
    ///
    /// # Errors
    /// Any SQLite error (also for a stored value out of its field's range).
    pub fn events(&self, q: &EventQuery) -> Result<Vec<(u64, MboMsg)>> {
        let mut out = Vec::new();
        if q.limit == 0 || q.from > q.to {
            return Ok(out);
        }
        let (from, to) = (bound(q.from), bound(q.to));
        // Every record up to the latest round before `from` has ts_recv < from.
        let lower: i64 = self
            .conn
            .prepare_cached(ROUND_BEFORE)?
            .query_row(params![q.session.0, from], |r| r.get::<_, Option<i64>>(0))?
            .map_or(0, |i| i.saturating_add(1));
        // Every record from the earliest round after `to` on has ts_recv > to.
        let until: i64 = self
            .conn
            .prepare_cached(ROUND_AFTER)?
            .query_row(params![q.session.0, to], |r| r.get::<_, Option<i64>>(0))?
            .unwrap_or(i64::MAX);
        // Nothing below the retention horizon is served (a block cut there keeps none).
        let horizon: i64 = self
            .conn
            .prepare_cached(FIRST_INDEX)?
            .query_row([q.session.0], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let start = lower.max(start_after(q.after)).max(horizon).max(0);
        let start = u64::try_from(start).unwrap_or(0);
        let until = u64::try_from(until).unwrap_or(u64::MAX);
        blocks::scan(&self.conn, q.session, start, until, |index, rec| {
            let ts = u64_to_sql(rec.ts_recv);
            if ts >= from && ts <= to && q.instrument_id.is_none_or(|i| i == rec.hd.instrument_id) {
                out.push((index, rec));
                if out.len() >= q.limit {
                    return Ok(ControlFlow::Break(()));
                }
            }
            Ok(ControlFlow::Continue(()))
        })?;
        Ok(out)
    }

    /// `(min, max)` `ts_recv` of the session's stored events (its first and last records by
    /// key, which are the extremes in `ts_recv` order); `None` if it has none.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn time_range(&self, session: SessionId) -> Result<Option<(u64, u64)>> {
        blocks::time_range(&self.conn, session)
    }

    /// Publishers of `instrument_id` in the session's checkpoint rounds, ascending (how a
    /// history request names a book the live market has not shown yet).
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn publishers(&self, session: SessionId, instrument_id: u32) -> Result<Vec<u16>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT DISTINCT publisher_id FROM checkpoints \
             WHERE session_id = ?1 AND instrument_id = ?2 ORDER BY publisher_id",
        )?;
        let rows = stmt.query_map(rusqlite::params![session.0, instrument_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<Vec<u16>>>()?)
    }

    /// What the session holds: its source, stored index range, time range and rounds.
    ///
    /// # Errors
    /// Any SQLite error.
    pub fn session_summary(&self, session: SessionId) -> Result<Option<SessionSummary>> {
        let row = self
            .conn
            .prepare_cached(
                "SELECT source, source_key, dataset, first_index, last_index, \
                 (SELECT count(DISTINCT event_index) FROM checkpoints WHERE session_id = ?1) \
                 FROM feed_sessions WHERE id = ?1",
            )?
            .query_row([session.0], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<i64>>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            })
            .optional()?;
        let Some((source, source_key, dataset, first, last, rounds)) = row else {
            return Ok(None);
        };
        let range = self.time_range(session)?;
        Ok(Some(SessionSummary {
            source,
            source_key,
            dataset,
            first_index: u64_from_sql(first),
            last_index: last.map(u64_from_sql),
            first_ts: range.map(|r| r.0),
            last_ts: range.map(|r| r.1),
            rounds: rounds.max(0) as u64,
        }))
    }
}

/// What a session holds ([`HistoryReader::session_summary`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    /// `file`, `simulator`, `live`.
    pub source: String,
    /// The content key (`file:sha256:...`, `sim:seed:...`, `live:...`).
    pub source_key: String,
    /// Databento dataset, when known.
    pub dataset: Option<String>,
    /// First stored index (the retention horizon).
    pub first_index: u64,
    /// Last stored index (`None`: nothing stored yet).
    pub last_index: Option<u64>,
    /// `ts_recv` of the first stored event.
    pub first_ts: Option<u64>,
    /// `ts_recv` of the last stored event.
    pub last_ts: Option<u64>,
    /// Checkpoint rounds stored.
    pub rounds: u64,
}

#[cfg(test)]
mod plan_tests {
    use crate::{is_full_scan, query_plan};

    /// The trade readers seek the `trades` key (migration 4): none reads the whole table.
    #[test]
    fn trade_readers_seek_by_key() {
        for (name, sql) in [
            ("TRADES", super::TRADES),
            ("BARS", super::BARS),
            ("TRADE_CURSOR_TS", super::TRADE_CURSOR_TS),
        ] {
            let plan = query_plan(sql);
            assert!(
                plan.iter().all(|s| !is_full_scan(s)),
                "{name} scans a table: {plan:?}"
            );
            assert!(
                plan.iter().any(|s| s.starts_with("SEARCH ")),
                "{name} seeks nothing: {plan:?}"
            );
        }
    }
}
