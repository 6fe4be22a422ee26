//! Retention: deleting whole old ranges of history so the database stays bounded.
//!
//! A [`RetentionPolicy`] bounds the data by **age** (ingestion time: a 2023 file imported
//! today is new data) and/or by **rows** (an estimate of the stored events). [`enforce`]
//! turns both into one wall-clock horizon and deletes, in every session, what was ingested
//! before it:
//!
//! * **Cuts are at checkpoint rounds.** A book at any time is "the round before it plus the
//!   events after" ([`crate::schema`]), so retention keeps the newest round older than the
//!   horizon and deletes the events and trades up to and including its index and every older
//!   round: each retained instant still has a round at or before it, and time travel keeps
//!   working for everything retained. `feed_sessions.first_index` becomes `round + 1`.
//!   A session with no round older than the horizon is not cut at all (nothing could be
//!   reconstructed after a cut that is not at a round).
//! * **Finished sessions go whole.** A session that ended before the horizon
//!   (`ended_at` set) is dropped entirely: its events, trades, checkpoints, symbols and its
//!   row (so importing the same file again stores it again, as new data). A session still
//!   open (or left open by a crash) is only ever cut at a round.
//! * **Rows are estimated, not counted.** A session stores `last_index + 1 - first_index`
//!   events (indexes are dense; a live gap only makes the estimate high, which errs toward
//!   deleting). Summing `mbo_blocks.records` would read every block row each pass.
//!   For a row budget the horizon is the earliest ingestion time whose age cut brings the
//!   estimate within the budget (found by binary search over round and session-end times:
//!   the rows a horizon deletes only grow with it), so both rules delete oldest data first,
//!   across sessions.
//! * **Small transactions.** Deletion is a sequence of `IMMEDIATE` transactions of at most
//!   [`EVENT_CHUNK`] events (plus their trades) or [`CHECKPOINT_CHUNK`] checkpoint rows, so a
//!   concurrent [`crate::Writer`] waits at most one short chunk for the write lock (it waits
//!   through its busy timeout, never failing). `IMMEDIATE` takes the write lock at `BEGIN`: a
//!   deferred transaction that read first could not upgrade after the writer committed
//!   (`SQLITE_BUSY_SNAPSHOT`, which no busy timeout resolves).
//! * **Safe order, safe to interrupt.** Old rounds go first (oldest first), then the events
//!   from the oldest up, each event chunk raising `first_index` in its own transaction. At
//!   every commit the oldest remaining round has all of its following events, and no event
//!   below `first_index` remains: a crash or a stop between chunks leaves a consistent
//!   database and the next pass continues. The reverse order would let a reader start from
//!   an old round whose events are already gone and build a wrong book silently.
//!
//! Deleted pages go to SQLite's free list and are reused by new writes; the file only
//! shrinks with `VACUUM` (`mbo db vacuum`), which retention never runs on its own (it
//! rewrites the whole file under the write lock).

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::{Result, Store, StoreError};

/// Event indexes deleted per transaction, about (whole blocks starting in such a range, plus
/// their trades): a few tens of milliseconds of write lock.
pub const EVENT_CHUNK: i64 = 20_000;

/// Most checkpoint rows deleted per transaction (whole rounds; a round larger than this is
/// deleted alone). Checkpoint rows are kilobytes each, hence the smaller chunk.
pub const CHECKPOINT_CHUNK: u64 = 2_000;

/// One retention rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Keep data ingested within this long before now.
    Age(Duration),
    /// Keep at most about this many event rows (the newest).
    Rows(u64),
}

/// What retention keeps: data younger than `age` and/or at most `rows` events. With both,
/// the stricter rule wins at each pass; with neither, retention is off.
///
/// Parsed from text ([`FromStr`]): `7d`, `12h`, `30m`, `90s`, `2w` (ages); `5000000`, `5M`,
/// `500k`, `5000000rows` (rows); `7d,10M` (both); `off` or `none`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Longest time data is kept after its ingestion.
    pub age: Option<Duration>,
    /// Most event rows kept (estimated, see the module docs).
    pub rows: Option<u64>,
}

impl RetentionPolicy {
    /// No retention: everything is kept.
    pub const OFF: Self = Self {
        age: None,
        rows: None,
    };

    /// Whether this policy deletes nothing, ever.
    pub fn is_off(&self) -> bool {
        self.age.is_none() && self.rows.is_none()
    }
}

impl From<Retention> for RetentionPolicy {
    fn from(rule: Retention) -> Self {
        match rule {
            Retention::Age(age) => Self {
                age: Some(age),
                rows: None,
            },
            Retention::Rows(rows) => Self {
                age: None,
                rows: Some(rows),
            },
        }
    }
}

const EXPECTED: &str = "expected an age such as 7d, 12h, 30m, 90s or 2w, a row count such as \
     5000000, 500k, 5M or 5000000rows, both separated by a comma (7d,10M), or off";

fn invalid(input: &str, reason: impl Into<String>) -> StoreError {
    StoreError::InvalidRetention {
        input: input.to_owned(),
        reason: reason.into(),
    }
}

impl FromStr for Retention {
    type Err = StoreError;

    /// One rule: an age (`7d`, `12h`, `30m`, `90s`, `2w`; `m` is minutes) or a row count
    /// (`5000000`, `500k`, `5M`, `1G`, optionally followed by `rows`; `M` is millions).
    fn from_str(input: &str) -> Result<Self> {
        let text = input.trim();
        let digits = text
            .find(|c: char| !(c.is_ascii_digit() || c == '_'))
            .unwrap_or(text.len());
        let number: String = text[..digits].chars().filter(|&c| c != '_').collect();
        if number.is_empty() {
            return Err(invalid(input, format!("no number; {EXPECTED}")));
        }
        let n: u64 = number
            .parse()
            .map_err(|_| invalid(input, "number too large"))?;
        if n == 0 {
            return Err(invalid(
                input,
                "must be greater than zero (use \"off\" to keep everything)",
            ));
        }
        let unit = text[digits..].trim();
        let seconds = match unit {
            "s" | "sec" => Some(1),
            "m" | "min" => Some(60),
            "h" => Some(3_600),
            "d" | "day" | "days" => Some(86_400),
            "w" => Some(7 * 86_400),
            _ => None,
        };
        if let Some(scale) = seconds {
            return n
                .checked_mul(scale)
                .map(|s| Retention::Age(Duration::from_secs(s)))
                .ok_or_else(|| invalid(input, "age too large"));
        }
        let multiplier = unit
            .strip_suffix("rows")
            .or_else(|| unit.strip_suffix("row"))
            .unwrap_or(unit)
            .trim();
        let scale: u64 = match multiplier {
            "" => 1,
            "k" | "K" => 1_000,
            "M" => 1_000_000,
            "G" => 1_000_000_000,
            other => {
                return Err(invalid(
                    input,
                    format!("unknown unit {other:?}; {EXPECTED}"),
                ));
            }
        };
        n.checked_mul(scale)
            .map(Retention::Rows)
            .ok_or_else(|| invalid(input, "row count too large"))
    }
}

impl FromStr for RetentionPolicy {
    type Err = StoreError;

    /// `off`/`none`, or one or two comma-separated rules (at most one age and one row count).
    fn from_str(input: &str) -> Result<Self> {
        let text = input.trim();
        if text.eq_ignore_ascii_case("off") || text.eq_ignore_ascii_case("none") {
            return Ok(Self::OFF);
        }
        if text.is_empty() {
            return Err(invalid(input, format!("empty; {EXPECTED}")));
        }
        let mut policy = Self::OFF;
        for item in text.split(',') {
            if item.trim().is_empty() {
                return Err(invalid(input, format!("empty rule; {EXPECTED}")));
            }
            match item.parse::<Retention>().map_err(|e| match e {
                // Name the whole input, with the reason about the item.
                StoreError::InvalidRetention {
                    input: item,
                    reason,
                } => invalid(input, format!("{:?}: {reason}", item.trim())),
                other => other,
            })? {
                Retention::Age(age) if policy.age.is_none() => policy.age = Some(age),
                Retention::Rows(rows) if policy.rows.is_none() => policy.rows = Some(rows),
                Retention::Age(_) => return Err(invalid(input, "two ages given")),
                Retention::Rows(_) => return Err(invalid(input, "two row counts given")),
            }
        }
        Ok(policy)
    }
}

impl fmt::Display for RetentionPolicy {
    /// The canonical text (`off`, `7d`, `10000000rows`, `7d,10000000rows`): parses back to
    /// the same policy for whole-second ages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_off() {
            return f.write_str("off");
        }
        if let Some(age) = self.age {
            let s = age.as_secs();
            match s {
                _ if s % 86_400 == 0 => write!(f, "{}d", s / 86_400)?,
                _ if s % 3_600 == 0 => write!(f, "{}h", s / 3_600)?,
                _ if s % 60 == 0 => write!(f, "{}m", s / 60)?,
                _ => write!(f, "{s}s")?,
            }
            if self.rows.is_some() {
                f.write_str(",")?;
            }
        }
        if let Some(rows) = self.rows {
            write!(f, "{rows}rows")?;
        }
        Ok(())
    }
}

/// Rows deleted by retention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Deleted {
    /// Events (records of `mbo_blocks`).
    pub events: u64,
    /// Rows of `trades`.
    pub trades: u64,
    /// Rows of `checkpoints`.
    pub checkpoints: u64,
    /// Whole sessions dropped (their `feed_sessions` row included).
    pub sessions: u64,
}

impl Deleted {
    /// Whether nothing was deleted.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl std::ops::AddAssign for Deleted {
    fn add_assign(&mut self, o: Self) {
        self.events += o.events;
        self.trades += o.trades;
        self.checkpoints += o.checkpoints;
        self.sessions += o.sessions;
    }
}

/// One checkpoint round of a session, as planning sees it.
#[derive(Debug, Clone, Copy)]
struct Round {
    index: i64,
    written_at: i64,
    /// Largest stored `ts_recv` of the round's rows (a bound for the `checkpoints_ts` index).
    ts_recv: i64,
    rows: u64,
}

/// A session's retention-relevant state.
#[derive(Debug)]
struct Session {
    id: i64,
    first: i64,
    /// `-1` when nothing was committed.
    last: i64,
    ended_at: Option<i64>,
    /// Sorted by index.
    rounds: Vec<Round>,
}

/// What a horizon does to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Nothing,
    /// Cut at `rounds[i]`.
    Round(usize),
    Drop,
}

impl Session {
    fn stored(&self) -> u64 {
        u64::try_from(self.last + 1 - self.first).unwrap_or(0)
    }

    fn cut(&self, horizon: i64) -> Cut {
        if self.ended_at.is_some_and(|e| e < horizon) {
            return Cut::Drop;
        }
        // The newest round ingested before the horizon: everything up to it is older.
        match self.rounds.iter().rposition(|r| r.written_at < horizon) {
            Some(i) => Cut::Round(i),
            None => Cut::Nothing,
        }
    }

    /// Estimated event rows the horizon deletes.
    fn rows_deleted(&self, horizon: i64) -> u64 {
        match self.cut(horizon) {
            Cut::Nothing => 0,
            Cut::Drop => self.stored(),
            Cut::Round(i) => {
                let through = self.rounds[i].index.min(self.last);
                u64::try_from(through + 1 - self.first).unwrap_or(0)
            }
        }
    }
}

/// Every session with its rounds, oldest session first.
fn plan(conn: &Connection) -> Result<Vec<Session>> {
    let mut stmt = conn.prepare(
        "SELECT id, first_index, coalesce(last_index, -1), ended_at FROM feed_sessions \
         ORDER BY started_at, id",
    )?;
    let mut sessions = stmt
        .query_map([], |r| {
            Ok(Session {
                id: r.get(0)?,
                first: r.get(1)?,
                last: r.get(2)?,
                ended_at: r.get(3)?,
                rounds: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    // The rounds of a session: reads its checkpoint rows (bounded by retention itself).
    let mut rounds = conn.prepare(
        "SELECT event_index, max(written_at), max(ts_recv), count(*) FROM checkpoints \
         WHERE session_id = ?1 GROUP BY event_index ORDER BY event_index",
    )?;
    for s in &mut sessions {
        s.rounds = rounds
            .query_map([s.id], |r| {
                Ok(Round {
                    index: r.get(0)?,
                    written_at: r.get(1)?,
                    ts_recv: r.get(2)?,
                    rows: u64::try_from(r.get::<_, i64>(3)?).unwrap_or(0),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    }
    Ok(sessions)
}

/// The earliest horizon whose cuts bring the estimated rows within `budget` (the latest
/// possible one if none does); `None` when already within it.
fn rows_horizon(sessions: &[Session], budget: u64) -> Option<i64> {
    let total: u64 = sessions.iter().map(Session::stored).sum();
    if total <= budget {
        return None;
    }
    // A horizon just past each round and each session end: where the cuts change.
    let mut candidates: Vec<i64> = sessions
        .iter()
        .flat_map(|s| {
            s.rounds
                .iter()
                .map(|r| r.written_at)
                .chain(s.ended_at)
                .map(|t| t.saturating_add(1))
        })
        .collect();
    candidates.sort_unstable();
    candidates.dedup();
    let within = |h: i64| {
        let deleted: u64 = sessions.iter().map(|s| s.rows_deleted(h)).sum();
        total.saturating_sub(deleted) <= budget
    };
    // Deleted rows only grow with the horizon, so "within budget" is monotonic.
    let i = candidates.partition_point(|&h| !within(h));
    candidates.get(i).or(candidates.last()).copied()
}

/// Deletes what `policy` does not keep, `now_ns` being the current wall-clock time (ns since
/// the Unix epoch; a parameter so tests and callers control the clock). See the module docs
/// for what is deleted and in which order.
///
/// # Errors
/// Any SQLite error (what was committed before it stays deleted, consistently).
pub fn enforce(conn: &Connection, policy: &RetentionPolicy, now_ns: i64) -> Result<Deleted> {
    enforce_until(conn, policy, now_ns, &|| false)
}

/// As [`enforce`] on the [`Store`]'s connection.
///
/// # Errors
/// As [`enforce`].
pub fn enforce_store(store: &Store, policy: &RetentionPolicy, now_ns: i64) -> Result<Deleted> {
    enforce(store.connection(), policy, now_ns)
}

/// [`enforce`], returning early (with what was deleted so far) once `stop()` is true.
fn enforce_until(
    conn: &Connection,
    policy: &RetentionPolicy,
    now_ns: i64,
    stop: &dyn Fn() -> bool,
) -> Result<Deleted> {
    if policy.is_off() {
        return Ok(Deleted::default());
    }
    let sessions = plan(conn)?;
    let by_age = policy.age.map(|age| {
        let age = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
        now_ns.saturating_sub(age)
    });
    let by_rows = policy
        .rows
        .and_then(|budget| rows_horizon(&sessions, budget));
    let Some(horizon) = by_age.max(by_rows) else {
        return Ok(Deleted::default());
    };
    let mut deleted = Deleted::default();
    for s in &sessions {
        if stop() {
            break;
        }
        match s.cut(horizon) {
            Cut::Nothing => {}
            Cut::Round(i) => cut_at_round(conn, s, i, stop, &mut deleted)?,
            Cut::Drop => drop_session(conn, s, stop, &mut deleted)?,
        }
    }
    Ok(deleted)
}

fn immediate(conn: &Connection) -> Result<Transaction<'_>> {
    Ok(Transaction::new_unchecked(
        conn,
        TransactionBehavior::Immediate,
    )?)
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// Deletes `rounds` (oldest first) in transactions of at most [`CHECKPOINT_CHUNK`] rows.
fn delete_rounds(
    conn: &Connection,
    session: i64,
    rounds: &[Round],
    stop: &dyn Fn() -> bool,
    deleted: &mut Deleted,
) -> Result<bool> {
    let mut start = 0;
    // Largest `ts_recv` of the rounds so far: every row of rounds `..=end` is below it, so
    // the `checkpoints_ts (session_id, ts_recv)` index can bound the scan whatever the order
    // of round times, while `event_index` decides which rows go.
    let mut ts_bound = i64::MIN;
    while start < rounds.len() {
        if stop() {
            return Ok(false);
        }
        let mut end = start;
        let mut rows = 0;
        while end < rounds.len() && (end == start || rows + rounds[end].rows <= CHECKPOINT_CHUNK) {
            rows += rounds[end].rows;
            ts_bound = ts_bound.max(rounds[end].ts_recv);
            end += 1;
        }
        let tx = immediate(conn)?;
        let n = tx.execute(
            "DELETE FROM checkpoints WHERE session_id = ?1 AND ts_recv <= ?4 \
             AND event_index BETWEEN ?2 AND ?3",
            params![
                session,
                rounds[start].index,
                rounds[end - 1].index,
                ts_bound
            ],
        )?;
        tx.commit()?;
        deleted.checkpoints += count(n);
        start = end;
    }
    Ok(true)
}

/// Deletes the trades of session `?1` with `event_index` in `?2..=?3`, all of which have
/// `ts_recv <= ?4` (a session's records are stored in `ts_recv` order).
///
/// Trades are keyed `(session_id, instrument_id, ts_recv, event_index)` (schema migration 4):
/// the session's instruments are listed by a loose index scan (one key seek each, the
/// recursive query) and each instrument's rows are cut by key up to `?4`, so only rows at
/// least as old as the range are read, however many newer trades the session holds.
const TRADES_DELETE: &str = "WITH RECURSIVE ins(i) AS ( \
       SELECT (SELECT min(instrument_id) FROM trades WHERE session_id = ?1) \
       UNION ALL \
       SELECT (SELECT min(instrument_id) FROM trades \
               WHERE session_id = ?1 AND instrument_id > ins.i) \
       FROM ins WHERE ins.i IS NOT NULL) \
     DELETE FROM trades WHERE session_id = ?1 \
       AND instrument_id IN (SELECT i FROM ins WHERE i IS NOT NULL) \
       AND ts_recv <= ?4 AND event_index BETWEEN ?2 AND ?3";

/// Deletes the events and trades of `session` with index `<= through`, oldest first, in
/// transactions of whole blocks of at most about [`EVENT_CHUNK`] indexes, each raising
/// `first_index` past them. A block holding `through` itself is rewritten without the
/// records at or below it, so no event below `first_index` remains.
fn delete_events(
    conn: &Connection,
    session: i64,
    through: i64,
    stop: &dyn Fn() -> bool,
    deleted: &mut Deleted,
) -> Result<bool> {
    let mut next = conn.prepare(
        "SELECT first_index, last_index, ts_last FROM mbo_blocks WHERE session_id = ?1 \
         AND first_index >= ?2 ORDER BY first_index LIMIT 1",
    )?;
    let mut from = i64::MIN;
    loop {
        if stop() {
            return Ok(false);
        }
        // A key seek: skips gaps in the indexes instead of walking them.
        let block: Option<(i64, i64, i64)> = next
            .query_row(params![session, from], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        let Some((lo, lo_last, lo_ts_last)) = block.filter(|&(lo, _, _)| lo <= through) else {
            return Ok(true);
        };
        let tx = immediate(conn)?;
        // `ts_hi`: the latest `ts_recv` of the deleted records (stored in `ts_recv` order).
        let (hi, ts_hi) = if lo_last > through {
            split_block(&tx, session, lo, through)?;
            deleted.events += count(usize::try_from(through - lo + 1).unwrap_or(0));
            (through, lo_ts_last)
        } else {
            // Whole blocks starting in the chunk and ending by `through`.
            let chunk_end = lo.saturating_add(EVENT_CHUNK - 1);
            let (records, hi, ts_hi): (i64, Option<i64>, Option<i64>) = tx.query_row(
                "SELECT coalesce(sum(records), 0), max(last_index), max(ts_last) \
                 FROM mbo_blocks \
                 WHERE session_id = ?1 AND first_index BETWEEN ?2 AND ?3 AND last_index <= ?4",
                params![session, lo, chunk_end, through],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            tx.execute(
                "DELETE FROM mbo_blocks WHERE session_id = ?1 AND first_index BETWEEN ?2 AND ?3 \
                 AND last_index <= ?4",
                params![session, lo, chunk_end, through],
            )?;
            deleted.events += u64::try_from(records).unwrap_or(0);
            (hi.unwrap_or(lo_last), ts_hi.unwrap_or(lo_ts_last))
        };
        let trades = tx.execute(TRADES_DELETE, params![session, lo, hi, ts_hi])?;
        tx.execute(
            "UPDATE feed_sessions SET first_index = max(first_index, ?2) WHERE id = ?1",
            params![session, hi.saturating_add(1)],
        )?;
        tx.commit()?;
        deleted.trades += count(trades);
        if hi >= through {
            return Ok(true);
        }
        from = hi + 1;
    }
}

/// Replaces the block starting at `first` by one holding only its records after `through`.
fn split_block(tx: &Transaction<'_>, session: i64, first: i64, through: i64) -> Result<()> {
    let (format, data): (i64, Vec<u8>) = tx.query_row(
        "SELECT format, data FROM mbo_blocks WHERE session_id = ?1 AND first_index = ?2",
        params![session, first],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let keep_from = usize::try_from(through - first + 1).unwrap_or(usize::MAX);
    let kept = crate::blocks::decode_block(format, &data)?
        .skip(keep_from)
        .collect::<Result<Vec<_>>>()?;
    tx.execute(
        "DELETE FROM mbo_blocks WHERE session_id = ?1 AND first_index = ?2",
        params![session, first],
    )?;
    if let (Some(a), Some(z)) = (kept.first(), kept.last()) {
        let mut buf = Vec::new();
        crate::blocks::encode_block(&kept, &mut buf);
        tx.execute(
            "INSERT INTO mbo_blocks (session_id, first_index, last_index, ts_first, ts_last, \
             records, format, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                session,
                through + 1,
                through + kept.len() as i64,
                crate::u64_to_sql(a.ts_recv),
                crate::u64_to_sql(z.ts_recv),
                kept.len() as i64,
                crate::blocks::BLOCK_FORMAT,
                buf
            ],
        )?;
    }
    Ok(())
}

/// Cuts `s` at `s.rounds[i]`: older rounds, then events and trades through its index.
fn cut_at_round(
    conn: &Connection,
    s: &Session,
    i: usize,
    stop: &dyn Fn() -> bool,
    deleted: &mut Deleted,
) -> Result<()> {
    let round = s.rounds[i].index;
    if !delete_rounds(conn, s.id, &s.rounds[..i], stop, deleted)? {
        return Ok(());
    }
    if !delete_events(conn, s.id, round, stop, deleted)? {
        return Ok(());
    }
    // Trades with no event row (none are written so, but the range must end clean) and the
    // horizon itself, even when there were no events left to delete.
    let tx = immediate(conn)?;
    deleted.trades += count(tx.execute(
        TRADES_DELETE,
        params![s.id, i64::MIN, round, s.rounds[i].ts_recv],
    )?);
    tx.execute(
        "UPDATE feed_sessions SET first_index = max(first_index, ?2) WHERE id = ?1",
        params![s.id, round.saturating_add(1)],
    )?;
    tx.commit()?;
    Ok(())
}

/// Deletes every row of the finished session `s`, its own row last.
fn drop_session(
    conn: &Connection,
    s: &Session,
    stop: &dyn Fn() -> bool,
    deleted: &mut Deleted,
) -> Result<()> {
    if !delete_rounds(conn, s.id, &s.rounds, stop, deleted)? {
        return Ok(());
    }
    if !delete_events(conn, s.id, i64::MAX, stop, deleted)? {
        return Ok(());
    }
    let tx = immediate(conn)?;
    // Whatever arrived after planning (nothing, for a finished session) goes too, so no row
    // outlives its session. `instruments` follows the session row (ON DELETE CASCADE).
    deleted.trades += count(tx.execute("DELETE FROM trades WHERE session_id = ?1", [s.id])?);
    deleted.checkpoints +=
        count(tx.execute("DELETE FROM checkpoints WHERE session_id = ?1", [s.id])?);
    let leftover: Option<i64> = tx
        .query_row(
            "SELECT 1 FROM mbo_blocks WHERE session_id = ?1 LIMIT 1",
            [s.id],
            |r| r.get(0),
        )
        .optional()?;
    // Events written since the pass started mean the session is in use again: keep its row
    // (the next pass sees it as it is then).
    if leftover.is_none() {
        deleted.sessions += count(tx.execute("DELETE FROM feed_sessions WHERE id = ?1", [s.id])?);
    }
    tx.commit()?;
    Ok(())
}

/// Called on the retention thread after every pass with its outcome (how the server feeds
/// metrics and logs without this crate knowing them).
pub type RetentionObserver = Box<dyn FnMut(&Result<Deleted>) + Send>;

/// What a retention thread did over its life, returned by [`RetentionTask::stop`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionTotals {
    /// Passes run.
    pub passes: u64,
    /// Passes that ended in an error (the thread keeps going: the next pass may succeed).
    pub failed_passes: u64,
    /// Rows deleted by all passes.
    pub deleted: Deleted,
}

/// A running retention thread (see [`spawn_retention`]). Dropping it stops it too.
#[derive(Debug)]
pub struct RetentionTask {
    stop: Arc<AtomicBool>,
    wake: Option<Sender<()>>,
    thread: Option<JoinHandle<RetentionTotals>>,
}

impl RetentionTask {
    /// Stops the thread (between two transactions if a pass is running) and returns its
    /// totals (`None` if it panicked).
    pub fn stop(mut self) -> Option<RetentionTotals> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Option<RetentionTotals> {
        self.stop.store(true, Ordering::Relaxed);
        // Disconnecting wakes the thread from its wait at once.
        drop(self.wake.take());
        self.thread.take().and_then(|t| t.join().ok())
    }
}

impl Drop for RetentionTask {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// Runs [`enforce`] with `policy` on its own connection to `path` now and then every
/// `every` (at least 10 ms), on a dedicated thread, calling `observer` after each pass.
///
/// # Errors
/// Opening or migrating the database (done here, so a bad path fails the call);
/// [`StoreError::RetentionSpawn`] if the thread cannot start.
pub fn spawn_retention(
    path: impl AsRef<Path>,
    policy: RetentionPolicy,
    every: Duration,
    mut observer: RetentionObserver,
) -> Result<RetentionTask> {
    let store = Store::open(path)?;
    let stop = Arc::new(AtomicBool::new(false));
    let (wake, sleep) = channel::<()>();
    let every = every.max(Duration::from_millis(10));
    let flag = Arc::clone(&stop);
    let thread = std::thread::Builder::new()
        .name("mbo-store-retention".into())
        .spawn(move || {
            let mut totals = RetentionTotals::default();
            let stopping = || flag.load(Ordering::Relaxed);
            while !stopping() {
                let result = enforce_until(
                    store.connection(),
                    &policy,
                    crate::store::now_ns(),
                    &stopping,
                );
                totals.passes += 1;
                match &result {
                    Ok(d) => totals.deleted += *d,
                    Err(_) => totals.failed_passes += 1,
                }
                observer(&result);
                match sleep.recv_timeout(every) {
                    Err(RecvTimeoutError::Timeout) => {}
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => break,
                }
            }
            totals
        })
        .map_err(StoreError::RetentionSpawn)?;
    Ok(RetentionTask {
        stop,
        wake: Some(wake),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod plan_tests {
    use crate::{is_full_scan, query_plan};

    /// Retention's trade delete seeks each instrument's old rows by key instead of scanning
    /// the session's trades (the key has no `event_index` prefix since migration 4).
    #[test]
    fn trade_delete_seeks_by_key() {
        let plan = query_plan(super::TRADES_DELETE);
        assert!(
            plan.iter().all(|s| !is_full_scan(s)),
            "scans a table: {plan:?}"
        );
        assert!(
            plan.iter()
                .any(|s| s.starts_with("SEARCH trades") && s.contains("ts_recv<?")),
            "no key range on ts_recv: {plan:?}"
        );
    }
}
