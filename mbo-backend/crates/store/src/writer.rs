//! The writer: a dedicated thread that persists batches of records, off the hot path.
//!
//! Ingestion hands [`Batch`]es to [`Writer::send`]; they cross a bounded
//! `std::sync::mpsc::sync_channel` to a thread that owns its own SQLite connection. Why:
//! * **Bounded**: if SQLite falls behind, `send` blocks (backpressure) instead of dropping
//!   records or buffering without limit; the time spent blocked is counted
//!   ([`Writer::blocked_time`]) so a metric can say storage is the bottleneck.
//!   [`Writer::try_send`] hands the batch back instead of blocking.
//! * **One transaction per batch**: a crash leaves whole batches or nothing, and
//!   `feed_sessions.last_index` is updated inside the same transaction, so the committed data
//!   is always exactly the events `0..=last_index` of a stream written in order.
//! * **Idempotent**: records are stored in blocks ([`crate::blocks`]), one per batch, and
//!   the writer only appends records past the session's stored end (`last_index`, read at
//!   start and kept in step): the part of a batch at or below it is dropped, so re-sending a
//!   batch (resume after a crash, re-reading a file) adds nothing and blocks never overlap.
//!   Trades are rows, `INSERT OR IGNORE` on `(session_id, event_index)`.
//! * **Fast**: one encoded blob per batch (a reused buffer: no allocation per record) and
//!   cached prepared statements; SQLite's per-row cost is paid once per batch.
//! * **Never panics**: an error on the thread is stored, the thread stops, and the error is
//!   returned by the next [`Writer::send`] / [`Writer::finish`].

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use dbn::MboMsg;
use rusqlite::{Connection, TransactionBehavior};

use crate::store::configure;
use crate::{schema, u64_to_sql, Result, SessionId, StoreError};

const BLOCK_INSERT: &str = "INSERT OR IGNORE INTO mbo_blocks (session_id, first_index, \
     last_index, ts_first, ts_last, records, format, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const TRADE_INSERT: &str = "INSERT OR IGNORE INTO trades (session_id, event_index, \
     instrument_id, publisher_id, ts_recv, ts_event, price, size, side) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

const CHECKPOINT_INSERT: &str = "INSERT OR IGNORE INTO checkpoints (session_id, \
     instrument_id, publisher_id, event_index, ts_recv, format, data, written_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

const SYMBOL_UPSERT: &str = "INSERT INTO instruments (session_id, instrument_id, \
     publisher_id, symbol) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (session_id, instrument_id, \
     publisher_id) DO UPDATE SET symbol = excluded.symbol WHERE symbol <> excluded.symbol";

// `max`: an old batch re-sent after newer ones never moves the committed end backwards.
const LAST_INDEX_UPDATE: &str = "UPDATE feed_sessions SET last_index = \
     max(coalesce(last_index, -1), ?2) WHERE id = ?1";

/// A symbol ↔ instrument mapping to record for the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolMapping {
    /// Databento instrument id.
    pub instrument_id: u32,
    /// Databento publisher id.
    pub publisher_id: u16,
    /// Raw symbol (e.g. `CLX5`).
    pub symbol: String,
}

/// One book's checkpoint (see [`crate::checkpoint`]), stored with the batch that holds its
/// event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The book's instrument.
    pub instrument_id: u32,
    /// The book's publisher.
    pub publisher_id: u16,
    /// Index of the last record applied before the checkpoint (the round's index).
    pub event_index: u64,
    /// `ts_recv` of that record.
    pub ts_recv: u64,
    /// [`crate::encode_checkpoint`]'s blob.
    pub data: Vec<u8>,
}

/// Consecutive records of one session's stream.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// Stream index of `records[0]`; `records[i]` has index `first_index + i`. Indexes must
    /// stay below `2^63` (`last_index` is kept with a signed `max`).
    pub first_index: u64,
    /// The records, in stream order.
    pub records: Vec<MboMsg>,
    /// Symbol mappings to upsert with this batch (usually empty).
    pub symbols: Vec<SymbolMapping>,
    /// Book checkpoints taken at indexes inside this batch (usually empty).
    pub checkpoints: Vec<Checkpoint>,
}

impl Batch {
    /// A batch of records only.
    pub fn new(first_index: u64, records: Vec<MboMsg>) -> Self {
        Self {
            first_index,
            records,
            symbols: Vec::new(),
            checkpoints: Vec::new(),
        }
    }
}

/// What one committed batch did, handed to the writer's observer (metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// Records in the batch.
    pub records: u64,
    /// Events stored (records already stored are not counted).
    pub events_written: u64,
    /// Trade rows inserted.
    pub trades_written: u64,
    /// Checkpoint rows inserted.
    pub checkpoints_written: u64,
    /// Time to write and commit the batch.
    pub commit_time: Duration,
}

/// Called on the writer thread after each committed batch.
pub type BatchObserver = Box<dyn FnMut(&BatchReport) + Send>;

/// What a writer did, returned by [`Writer::finish`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches committed.
    pub batches: u64,
    /// Records received in those batches.
    pub records: u64,
    /// Events actually stored (records already stored are ignored, not counted).
    pub events_written: u64,
    /// Trade rows actually inserted.
    pub trades_written: u64,
    /// Checkpoint rows actually inserted.
    pub checkpoints_written: u64,
    /// Total time spent writing and committing batches.
    pub commit_time_total: Duration,
    /// Longest single batch write + commit.
    pub commit_time_max: Duration,
    /// Total time [`Writer::send`] callers spent blocked on a full queue.
    pub blocked_time: Duration,
}

/// State shared by the writer handle and its thread.
#[derive(Debug, Default)]
struct Shared {
    /// The thread's first error, until a caller takes it.
    error: Mutex<Option<StoreError>>,
    /// Batches sent and not yet taken by the thread.
    queue_depth: AtomicU64,
    /// Nanoseconds senders spent blocked.
    blocked_ns: AtomicU64,
    /// Events stored so far.
    events_written: AtomicU64,
    /// Set by the checkpointer: the WAL is large, the writer should truncate it.
    reset_wal: AtomicBool,
    /// Record buffers of written batches, emptied, for the sender's next batches (see
    /// [`Writer::spare_records`]). At most [`SPARE_BUFFERS`].
    spare: Mutex<Vec<Vec<MboMsg>>>,
}

/// Emptied record buffers kept for reuse. A batch buffer is about 1 MB (16,384 records) and a
/// fresh one per batch is first touched page by page by the ingest thread: with the simulator
/// at max pace, perf put 5.8 % of that thread's samples in the kernel (page faults), 1.8 %
/// with buffers reused. A few in rotation cover the queue's turnover.
const SPARE_BUFFERS: usize = 4;

impl Shared {
    fn take_error(&self) -> Option<StoreError> {
        self.error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
    }
}

/// Reads a [`Writer`]'s live figures from anywhere (see [`Writer::probe`]).
#[derive(Debug, Clone)]
pub struct WriterProbe(Arc<Shared>);

impl WriterProbe {
    /// Batches queued and not yet being written.
    pub fn queue_depth(&self) -> u64 {
        self.0.queue_depth.load(Ordering::Relaxed)
    }

    /// Total time senders spent blocked on a full queue.
    pub fn blocked_time(&self) -> Duration {
        Duration::from_nanos(self.0.blocked_ns.load(Ordering::Relaxed))
    }

    /// Events stored so far.
    pub fn events_written(&self) -> u64 {
        self.0.events_written.load(Ordering::Relaxed)
    }
}

/// A handle to the writer thread (see the module docs).
///
/// Dropping it without [`Writer::finish`] also flushes: every batch already sent is written
/// and committed before `drop` returns (it joins the thread); only an error of those last
/// writes is lost, so call `finish` where it matters.
#[derive(Debug)]
pub struct Writer {
    tx: Option<SyncSender<Batch>>,
    thread: Option<JoinHandle<WriterStats>>,
    checkpointer: Option<JoinHandle<()>>,
    shared: Arc<Shared>,
}

impl Writer {
    /// Opens `path` (creating and migrating it if needed) on a new thread's own connection,
    /// writing into `session`, with a queue of `capacity` batches (at least 1).
    ///
    /// # Errors
    /// Opening or migrating the database; [`StoreError::Spawn`] if the thread cannot start.
    pub fn spawn(path: impl AsRef<Path>, session: SessionId, capacity: usize) -> Result<Self> {
        Self::spawn_observed(path, session, capacity, Box::new(|_| {}))
    }

    /// As [`Writer::spawn`], calling `observer` on the writer thread after every committed
    /// batch (how the server feeds its storage metrics without this crate knowing them).
    ///
    /// # Errors
    /// As [`Writer::spawn`].
    pub fn spawn_observed(
        path: impl AsRef<Path>,
        session: SessionId,
        capacity: usize,
        observer: BatchObserver,
    ) -> Result<Self> {
        // Opened here, so a bad path fails the call instead of the first send.
        let mut conn = configure(path.as_ref())?;
        schema::migrate(&mut conn)?;
        // The writer never checkpoints the WAL itself: copying WAL pages into the database
        // is done by the checkpointer thread beside it, so commits never wait for it (the
        // `write_rate` example measured autocheckpoint in the writer at a third of its time).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpoint_conn = configure(path.as_ref())?;
        let mut wal = path.as_ref().as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::path::PathBuf::from(wal);
        let (stop_checkpoints, checkpoint_stop) = std::sync::mpsc::channel::<()>();
        let shared = Arc::new(Shared::default());
        let ckpt_shared = Arc::clone(&shared);
        let checkpointer = std::thread::Builder::new()
            .name("mbo-store-ckpt".into())
            .spawn(move || {
                checkpoint_wal(
                    &checkpoint_conn,
                    &wal,
                    &ckpt_shared.reset_wal,
                    &checkpoint_stop,
                );
            })
            .map_err(StoreError::Spawn)?;
        let (tx, rx) = sync_channel(capacity.max(1));
        let thread_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("mbo-store-writer".into())
            .spawn(move || {
                let stats = run(conn, session.0, &rx, &thread_shared, observer);
                // Stops the checkpointer (after one last checkpoint).
                drop(stop_checkpoints);
                stats
            })
            .map_err(StoreError::Spawn)?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            checkpointer: Some(checkpointer),
            shared,
        })
    }

    fn stopped(&self) -> StoreError {
        self.shared
            .take_error()
            .unwrap_or(StoreError::WriterStopped)
    }

    /// An empty record buffer from a batch already written, to fill as the next batch's
    /// `records` (its capacity kept), if one is spare. Reusing them keeps a steady stream of
    /// batches from mapping fresh memory for each.
    pub fn spare_records(&self) -> Option<Vec<MboMsg>> {
        self.shared
            .spare
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
    }

    /// Queues `batch`, blocking while the queue is full (backpressure).
    ///
    /// # Errors
    /// The error that stopped the writer thread (reported once), then
    /// [`StoreError::WriterStopped`].
    pub fn send(&self, batch: Batch) -> Result<()> {
        if let Some(e) = self.shared.take_error() {
            return Err(e);
        }
        let Some(tx) = &self.tx else {
            return Err(StoreError::WriterStopped);
        };
        self.shared.queue_depth.fetch_add(1, Ordering::Relaxed);
        let sent = match tx.try_send(batch) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(batch)) => {
                let start = Instant::now();
                let r = tx.send(batch).map_err(|_| ());
                let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
                self.shared.blocked_ns.fetch_add(ns, Ordering::Relaxed);
                r
            }
            Err(TrySendError::Disconnected(_)) => Err(()),
        };
        sent.map_err(|()| {
            self.shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
            self.stopped()
        })
    }

    /// Queues `batch` if there is room; `Ok(Some(batch))` hands it back when the queue is
    /// full.
    ///
    /// # Errors
    /// As [`Writer::send`].
    pub fn try_send(&self, batch: Batch) -> Result<Option<Batch>> {
        if let Some(e) = self.shared.take_error() {
            return Err(e);
        }
        let Some(tx) = &self.tx else {
            return Err(StoreError::WriterStopped);
        };
        self.shared.queue_depth.fetch_add(1, Ordering::Relaxed);
        match tx.try_send(batch) {
            Ok(()) => Ok(None),
            Err(TrySendError::Full(batch)) => {
                self.shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                Ok(Some(batch))
            }
            Err(TrySendError::Disconnected(_)) => {
                self.shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
                Err(self.stopped())
            }
        }
    }

    /// Total time [`Writer::send`] has spent blocked on a full queue (backpressure metric).
    pub fn blocked_time(&self) -> Duration {
        Duration::from_nanos(self.shared.blocked_ns.load(Ordering::Relaxed))
    }

    /// Batches queued and not yet being written (queue depth metric).
    pub fn queue_depth(&self) -> u64 {
        self.shared.queue_depth.load(Ordering::Relaxed)
    }

    /// A cheap handle reading this writer's queue depth and backpressure time from another
    /// thread (the metrics endpoint), valid after the writer is gone.
    pub fn probe(&self) -> WriterProbe {
        WriterProbe(Arc::clone(&self.shared))
    }

    /// Events stored so far.
    pub fn events_written(&self) -> u64 {
        self.shared.events_written.load(Ordering::Relaxed)
    }

    /// Writes and commits everything queued, stops the thread and returns its statistics.
    ///
    /// # Errors
    /// The error that stopped the writer thread, if any; [`StoreError::WriterStopped`] if the
    /// thread panicked.
    pub fn finish(mut self) -> Result<WriterStats> {
        let stats = self.join();
        if let Some(e) = self.shared.take_error() {
            return Err(e);
        }
        let mut stats = stats.ok_or(StoreError::WriterStopped)?;
        stats.blocked_time = self.blocked_time();
        Ok(stats)
    }

    /// Closes the queue and waits for the thread to drain it.
    fn join(&mut self) -> Option<WriterStats> {
        drop(self.tx.take());
        let stats = self.thread.take().and_then(|t| t.join().ok());
        if let Some(c) = self.checkpointer.take() {
            let _ = c.join();
        }
        stats
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.join();
    }
}

/// How often the checkpointer copies committed WAL pages into the database.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// WAL size past which the checkpointer resets it (`TRUNCATE`).
const WAL_RESET_BYTES: u64 = 64 << 20;

/// The checkpointer thread: a `PASSIVE` WAL checkpoint every [`CHECKPOINT_EVERY`] (it never
/// blocks the writer or readers), and one last when the writer stops.
///
/// A passive checkpoint alone lets the WAL grow without bound under a writer that never
/// pauses: SQLite restarts the log only at a transaction that finds every frame already
/// copied, and a busy writer has always appended more by then. A blocking checkpoint from
/// this thread would starve instead (the writer takes the lock again at once). So past
/// [`WAL_RESET_BYTES`] this thread raises `reset`, and the writer itself truncates the WAL
/// between two batches, when the passive checkpoints have already copied nearly every frame.
/// Errors are not fatal: the next attempt retries.
fn checkpoint_wal(conn: &Connection, wal: &Path, reset: &AtomicBool, stop: &Receiver<()>) {
    let checkpoint = |mode: &str| {
        let _ = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()));
    };
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_EVERY)
    {
        checkpoint("PASSIVE");
        if std::fs::metadata(wal).map_or(0, |m| m.len()) > WAL_RESET_BYTES {
            reset.store(true, Ordering::Relaxed);
        }
    }
    checkpoint("TRUNCATE");
}

/// The writer thread: one transaction per batch until the queue closes or an error.
fn run(
    mut conn: Connection,
    session: i64,
    rx: &Receiver<Batch>,
    shared: &Shared,
    mut observer: BatchObserver,
) -> WriterStats {
    let mut stats = WriterStats::default();
    let mut state = BlockState {
        through: match stored_end(&conn, session) {
            Ok(t) => t,
            Err(e) => {
                *shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                return stats;
            }
        },
        buf: Vec::new(),
        pending_trades: Vec::with_capacity(TRADE_ROWS),
        trade_insert_many: trade_insert_sql(TRADE_ROWS),
    };
    while let Ok(batch) = rx.recv() {
        shared.queue_depth.fetch_sub(1, Ordering::Relaxed);
        let start = Instant::now();
        let written = write_batch(&mut conn, session, &batch, &mut state);
        let mut records = batch.records;
        records.clear();
        {
            let mut spare = shared.spare.lock().unwrap_or_else(PoisonError::into_inner);
            if spare.len() < SPARE_BUFFERS {
                spare.push(records);
            }
        }
        match written {
            Ok(report) => {
                let took = start.elapsed();
                let report = BatchReport {
                    commit_time: took,
                    ..report
                };
                stats.batches += 1;
                stats.records += report.records;
                stats.events_written += report.events_written;
                stats.trades_written += report.trades_written;
                stats.checkpoints_written += report.checkpoints_written;
                stats.commit_time_total += took;
                stats.commit_time_max = stats.commit_time_max.max(took);
                shared
                    .events_written
                    .fetch_add(report.events_written, Ordering::Relaxed);
                observer(&report);
                if shared.reset_wal.swap(false, Ordering::Relaxed) {
                    // Between batches the writer holds no lock: the restart copies the few
                    // frames the passive checkpoints have not, and the next batch writes the
                    // WAL from its start again. RESTART, not TRUNCATE: the file keeps its
                    // blocks, so the writer overwrites pages the kernel already has instead
                    // of allocating new ones (ext4 block allocation was a fifth of the
                    // writer's time under TRUNCATE; `journal_size_limit` caps the file).
                    let _ = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()));
                }
            }
            Err(e) => {
                *shared.error.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                break;
            }
        }
    }
    stats
}

/// What the writer keeps between batches.
struct BlockState {
    /// The session's stored end (`feed_sessions.last_index`): only records past it are
    /// written.
    through: Option<u64>,
    /// The encoding buffer, reused batch after batch.
    buf: Vec<u8>,
    /// Trade rows waiting for a full multi-row insert.
    pending_trades: Vec<[i64; 9]>,
    /// `TRADE_INSERT` with `TRADE_ROWS` rows of values.
    trade_insert_many: String,
}

/// Rows per multi-row trade insert.
const TRADE_ROWS: usize = 32;

/// `TRADE_INSERT` for `rows` rows at once.
fn trade_insert_sql(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT OR IGNORE INTO trades (session_id, event_index, instrument_id, publisher_id, \
         ts_recv, ts_event, price, size, side) VALUES ",
    );
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str("(?,?,?,?,?,?,?,?,?)");
    }
    sql
}

/// The session's `last_index`, `None` when nothing is stored (or no such session yet).
fn stored_end(conn: &Connection, session: i64) -> Result<Option<u64>> {
    use rusqlite::OptionalExtension;
    let v: Option<Option<i64>> = conn
        .query_row(
            "SELECT last_index FROM feed_sessions WHERE id = ?1",
            [session],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.flatten().map(crate::u64_from_sql))
}

/// Writes one batch in one transaction; the report's `commit_time` is left to the caller.
fn write_batch(
    conn: &mut Connection,
    session: i64,
    batch: &Batch,
    state: &mut BlockState,
) -> Result<BatchReport> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut events = 0u64;
    let mut trades = 0u64;
    let mut checkpoints = 0u64;
    // Records at or below the stored end are already stored (idempotency).
    let skip = match state.through {
        Some(t) if t >= batch.first_index => usize::try_from(t - batch.first_index + 1)
            .map_or(batch.records.len(), |n| n.min(batch.records.len())),
        _ => 0,
    };
    let fresh = &batch.records[skip..];
    let fresh_first = batch.first_index + skip as u64;
    let mut new_end = state.through;
    {
        if let (Some(first), Some(last)) = (fresh.first(), fresh.last()) {
            crate::blocks::encode_block(fresh, &mut state.buf);
            let last_index = fresh_first + fresh.len() as u64 - 1;
            let n = tx.prepare_cached(BLOCK_INSERT)?.execute(rusqlite::params![
                session,
                u64_to_sql(fresh_first),
                u64_to_sql(last_index),
                u64_to_sql(first.ts_recv),
                u64_to_sql(last.ts_recv),
                fresh.len() as i64,
                crate::blocks::BLOCK_FORMAT,
                state.buf
            ])?;
            if n > 0 {
                events = fresh.len() as u64;
            }
            new_end = Some(last_index);
        }

        // Trades go TRADE_ROWS at a time (one statement step for all of them), the rest one
        // by one: about 7 % fewer instructions on the writer thread than a step per trade
        // (cachegrind of `write_rate 400000`: 19 M fewer, 49 per record).
        let mut many = tx.prepare_cached(&state.trade_insert_many)?;
        let mut one = tx.prepare_cached(TRADE_INSERT)?;
        // Rows left by a batch that failed half-way must not leak into this one.
        state.pending_trades.clear();
        for (i, rec) in fresh.iter().enumerate() {
            if rec.action as u8 != b'T' {
                continue;
            }
            let values: [i64; 9] = [
                session,
                u64_to_sql(fresh_first + i as u64),
                i64::from(rec.hd.instrument_id),
                i64::from(rec.hd.publisher_id),
                u64_to_sql(rec.ts_recv),
                u64_to_sql(rec.hd.ts_event),
                rec.price,
                i64::from(rec.size),
                i64::from(rec.side as u8),
            ];
            state.pending_trades.push(values);
            if state.pending_trades.len() == TRADE_ROWS {
                for (k, v) in state.pending_trades.iter().flatten().enumerate() {
                    many.raw_bind_parameter(k + 1, *v)?;
                }
                trades += many.raw_execute()? as u64;
                state.pending_trades.clear();
            }
        }
        for values in state.pending_trades.drain(..) {
            for (k, v) in values.into_iter().enumerate() {
                one.raw_bind_parameter(k + 1, v)?;
            }
            trades += one.raw_execute()? as u64;
        }

        if !batch.checkpoints.is_empty() {
            let written_at = crate::store::now_ns();
            let mut ins = tx.prepare_cached(CHECKPOINT_INSERT)?;
            for c in &batch.checkpoints {
                checkpoints += ins.execute(rusqlite::params![
                    session,
                    i64::from(c.instrument_id),
                    i64::from(c.publisher_id),
                    u64_to_sql(c.event_index),
                    u64_to_sql(c.ts_recv),
                    i64::from(crate::CHECKPOINT_FORMAT),
                    c.data,
                    written_at
                ])? as u64;
            }
        }

        if !batch.symbols.is_empty() {
            let mut sym = tx.prepare_cached(SYMBOL_UPSERT)?;
            for m in &batch.symbols {
                sym.execute(rusqlite::params![
                    session,
                    i64::from(m.instrument_id),
                    i64::from(m.publisher_id),
                    m.symbol
                ])?;
            }
        }

        if let (Some(last), false) = (new_end, fresh.is_empty()) {
            tx.prepare_cached(LAST_INDEX_UPDATE)?
                .execute(rusqlite::params![session, u64_to_sql(last)])?;
        }
    }
    tx.commit()?;
    // Only once committed: a failed batch leaves the stored end where it was.
    state.through = new_end;
    Ok(BatchReport {
        records: batch.records.len() as u64,
        events_written: events,
        trades_written: trades,
        checkpoints_written: checkpoints,
        commit_time: Duration::ZERO,
    })
}
