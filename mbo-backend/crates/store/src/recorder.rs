//! The recorder: what an ingesting process (the server's engine, `mbo db import`) hands
//! applied records and its market to, so the database gets batches and checkpoint rounds.
//!
//! The engine applies records to its [`Market`]; after each applied run it calls
//! [`Recorder::record`] with the same records, and, where no book is inside an event,
//! [`Recorder::boundary`]. The recorder:
//! * **batches** records into [`Batch`]es of [`RecorderOptions::batch_records`], flushed
//!   also when the oldest pending record is older than [`RecorderOptions::max_age`]
//!   ([`Recorder::tick`]), so a slow feed is persisted within that delay;
//! * **skips** records already stored: after a seek backwards or a `--resume` the engine
//!   re-applies the stream from a point the database already holds, and only records past
//!   the stored end are sent (the writer would drop them anyway, but
//!   at SQLite's speed instead of a comparison's). Stream indexes are positions in the
//!   source, so "already stored" is simply `index <= stored_through`;
//! * takes **checkpoint rounds**: every book of the market encoded at one stream index, at
//!   least [`CheckpointPolicy::every_events`] records or [`CheckpointPolicy::every`] after
//!   the previous round, only at a point where no book is mid-event. A round goes into the
//!   same batch (the same transaction) as the record it follows, and rounds only move
//!   forward, so re-applying old data after a seek does not re-encode books.
//!
//! Everything it sends goes through [`Writer::send`], which blocks when the writer's queue
//! is full: an ingest that outruns SQLite is slowed down (backpressure), never allowed to
//! buffer without bound.

use std::time::{Duration, Instant};

use dbn::MboMsg;
use mbo_book::Market;

use crate::{encode_checkpoint, Batch, Checkpoint, Result, SymbolMapping, Writer, WriterStats};

/// When checkpoint rounds are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointPolicy {
    /// Records between two rounds at most (a busy stream).
    pub every_events: u64,
    /// Time between two rounds at most (a quiet stream), if at least one record came.
    pub every: Duration,
}

impl Default for CheckpointPolicy {
    /// Every 50,000 records or 60 s: time travel then reads at most 50,000 events after a
    /// round (measured by `mbo bench travel`), and a round costs a few KB per book.
    fn default() -> Self {
        Self {
            every_events: 50_000,
            every: Duration::from_secs(60),
        }
    }
}

/// Batching and checkpoint settings of a [`Recorder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecorderOptions {
    /// Records per batch (one transaction each).
    pub batch_records: usize,
    /// Longest a record waits in a partial batch.
    pub max_age: Duration,
    /// When checkpoint rounds are taken.
    pub checkpoints: CheckpointPolicy,
}

impl Default for RecorderOptions {
    /// 16,384 records a batch (one block, one transaction): SQLite's cost per commit (the
    /// index and session pages it rewrites into the WAL) is paid per batch, and the
    /// `write_rate` example measured 4.4 M records/s at 4,096 a batch, 5.3 M at 16,384.
    /// A slow feed is still committed within `max_age`.
    fn default() -> Self {
        Self {
            batch_records: 16_384,
            max_age: Duration::from_millis(100),
            checkpoints: CheckpointPolicy::default(),
        }
    }
}

/// Turns applied records and market states into writer batches (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    writer: Writer,
    options: RecorderOptions,
    pending: Batch,
    pending_since: Option<Instant>,
    /// Highest index stored or sent to the writer.
    stored_through: Option<u64>,
    /// Index and `ts_recv` of the last record seen by [`Recorder::record`].
    last_seen: Option<(u64, u64)>,
    /// Index of the last checkpoint round.
    last_round: Option<u64>,
    last_round_at: Instant,
}

impl Recorder {
    /// A recorder writing through `writer`. `stored_through` is the session's last stored
    /// index and `last_round` its last checkpoint round (both from the database at start;
    /// `None` for a new session).
    pub fn new(
        writer: Writer,
        options: RecorderOptions,
        stored_through: Option<u64>,
        last_round: Option<u64>,
    ) -> Self {
        Self {
            writer,
            options: RecorderOptions {
                batch_records: options.batch_records.max(1),
                ..options
            },
            pending: Batch::default(),
            pending_since: None,
            stored_through,
            last_seen: None,
            last_round,
            last_round_at: Instant::now(),
        }
    }

    /// The writer (for its queue depth and backpressure time).
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// Highest stream index stored or on its way to the database.
    pub fn stored_through(&self) -> Option<u64> {
        self.stored_through
    }

    /// Records `first_index..` just applied to the market, in stream order.
    ///
    /// # Errors
    /// The writer's error, if it stopped.
    pub fn record(&mut self, first_index: u64, records: &[MboMsg]) -> Result<()> {
        let Some(last) = records.last() else {
            return Ok(());
        };
        self.last_seen = Some((first_index + records.len() as u64 - 1, last.ts_recv));
        let skip = match self.stored_through {
            Some(s) if s >= first_index => {
                usize::try_from(s - first_index + 1).map_or(records.len(), |n| n.min(records.len()))
            }
            _ => 0,
        };
        let fresh = &records[skip..];
        if fresh.is_empty() {
            return Ok(());
        }
        let start = first_index + skip as u64;
        let pending_end = self.pending.first_index + self.pending.records.len() as u64;
        if !self.pending.records.is_empty() && pending_end != start {
            // A jump in the stream (a live gap): batches hold consecutive records.
            self.flush()?;
        }
        if self.pending.records.is_empty() {
            self.pending.first_index = start;
            self.pending_since.get_or_insert_with(Instant::now);
        }
        self.pending.records.extend_from_slice(fresh);
        self.stored_through = Some(start + fresh.len() as u64 - 1);
        if self.pending.records.len() >= self.options.batch_records {
            self.flush()?;
        }
        Ok(())
    }

    /// Symbol mappings to store with the next batch.
    pub fn symbols(&mut self, mappings: impl IntoIterator<Item = SymbolMapping>) {
        self.pending.symbols.extend(mappings);
        self.pending_since.get_or_insert_with(Instant::now);
    }

    /// Called where no book of `market` is inside an event, after the records applied so
    /// far were passed to [`Recorder::record`]: takes a checkpoint round if one is due.
    /// Returns whether it took one.
    ///
    /// # Errors
    /// The writer's error, if it stopped.
    pub fn boundary(&mut self, market: &Market) -> Result<bool> {
        let Some((index, ts_recv)) = self.last_seen else {
            return Ok(false);
        };
        if market.next_index() != index + 1 || market.books().iter().any(|b| b.state().in_event) {
            return Ok(false);
        }
        let since = match self.last_round {
            Some(r) if r >= index => return Ok(false),
            Some(r) => index - r,
            None => index + 1,
        };
        let policy = self.options.checkpoints;
        if since < policy.every_events && self.last_round_at.elapsed() < policy.every {
            return Ok(false);
        }
        for book in market.books() {
            let key = book.key();
            self.pending.checkpoints.push(Checkpoint {
                instrument_id: key.instrument_id,
                publisher_id: key.publisher_id,
                event_index: index,
                ts_recv,
                data: encode_checkpoint(book),
            });
        }
        self.pending_since.get_or_insert_with(Instant::now);
        self.last_round = Some(index);
        self.last_round_at = Instant::now();
        Ok(true)
    }

    /// Flushes a partial batch older than [`RecorderOptions::max_age`]. Call it regularly
    /// (the server's engine does on every cycle and on a timer).
    ///
    /// # Errors
    /// The writer's error, if it stopped.
    pub fn tick(&mut self) -> Result<()> {
        match self.pending_since {
            Some(t) if t.elapsed() >= self.options.max_age => self.flush(),
            _ => Ok(()),
        }
    }

    /// Whether records or checkpoints wait in a partial batch.
    pub fn has_pending(&self) -> bool {
        self.pending_since.is_some()
    }

    /// Sends the partial batch now (blocking while the writer's queue is full).
    ///
    /// # Errors
    /// The writer's error, if it stopped.
    pub fn flush(&mut self) -> Result<()> {
        self.pending_since = None;
        if self.pending.records.is_empty()
            && self.pending.checkpoints.is_empty()
            && self.pending.symbols.is_empty()
        {
            return Ok(());
        }
        let capacity = self.options.batch_records;
        let records = match self.writer.spare_records() {
            Some(mut spare) => {
                spare.reserve(capacity);
                spare
            }
            None => Vec::with_capacity(capacity),
        };
        let batch = std::mem::replace(
            &mut self.pending,
            Batch {
                records,
                ..Batch::default()
            },
        );
        self.writer.send(batch)
    }

    /// Flushes, waits for every batch to be committed and returns the writer's statistics.
    ///
    /// # Errors
    /// The writer's error, if it stopped.
    pub fn finish(mut self) -> Result<WriterStats> {
        self.flush()?;
        self.writer.finish()
    }
}
