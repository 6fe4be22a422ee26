//! The replay engine: paces any [`RecordSource`] into a [`Feed`], with pause, resume, pace
//! changes, seek and loop.
//!
//! ## One task, absolute deadlines
//! [`spawn_replay`] starts one Tokio task that pulls records from the (synchronous, fast)
//! source, batches them and sends them through a bounded channel; awaiting the send is the
//! backpressure. Between releases it waits in a `tokio::select!` on the pacing deadline, the
//! command channel and the consumer going away, so commands act at once and no worker thread
//! is ever blocked (there is no `std::thread::sleep` anywhere).
//!
//! Pacing never sleeps "for the gap": it computes when each record is due from an anchor
//! (a [`tokio::time::Instant`] plus a position in the stream) and sleeps *until* that
//! instant. A late wake-up (timers tick every millisecond, machines are busy) is therefore
//! caught up at the next release instead of accumulating, so the long-run pace is exact:
//! * [`Pace::Rate`]`(n)`: by time `t` after the anchor exactly `floor(n·t)` records have been
//!   released. Each wake-up releases what is due; with a 1 ms timer that is at most
//!   `n/1000 + 1` records, except after the consumer stalled (the backlog then goes out in
//!   batches of at most `batch_size`, so the count stays exact).
//! * [`Pace::Realtime`]`{speed}`: a record is due at
//!   `anchor + (ts_recv − anchor_ts) / speed`. With `max_gap`, the *wall-clock* wait between
//!   consecutive records is capped: a record whose due time is more than `max_gap` after the
//!   previous record's due time becomes due exactly `max_gap` after it, and the anchor moves
//!   there (so later records keep their recorded spacing from it).
//! * [`Pace::Max`]: batches of `batch_size` as fast as the consumer takes them; the task yields
//!   to the scheduler after every batch so it never monopolises a worker.
//!
//! Pausing freezes the schedule: on resume every anchor is shifted by the time spent paused,
//! so the replay continues exactly where it was (no burst, no skipped gap). A pace change
//! re-anchors at the current position: a speed change keeps the current recorded time, and
//! a new rate starts counting from the change.
//!
//! ## Seek
//! Sources are deterministic and rewindable, so [`ReplayCommand::Seek`]`(ts)` rewinds the
//! source, sends [`FeedEvent::Reset`] (`next_index: 0`), then sends every record up to the
//! first one with `ts_recv > ts` as `catch_up` batches (unpaced), and continues paced from
//! that record: in realtime mode it is due `(its ts_recv − ts) / speed` after the seek. The
//! play/pause state is kept; a seek after the end plays. [`ReplayCommand::SeekFrom`] is the
//! same for a consumer that restores its own state at a stored checkpoint: the records
//! before the checkpoint are skipped in the source (decoded, not sent), and the reset says
//! where the stream resumes.
//!
//! ## Stream indexes
//! Indexes are positions in the source: record `i` is always the same record, whatever
//! seeks and loops happened before (the index of `mbo export-book`'s `i`). So every
//! [`FeedEvent::Reset`] (seek, loop, restart after the end) says `next_index: 0`, and
//! [`ReplayStatus::released`] is the only counter that runs across resets.
//!
//! ## Status
//! [`ReplayStatus`] is published on the handle's watch channel at once on every state, pace
//! or position change made by a command or the end, and refreshed at least every 100 ms while
//! playing (not after every batch: at max pace that would wake every watcher tens of
//! thousands of times a second). Commands are handled between batches: a send waiting for
//! room in the channel finishes first.
//!
//! ## End
//! At the end of the source, with looping the source is rewound and
//! `Reset { reason: Loop, next_index: 0 }` is sent (the first record of the new pass is due
//! right after the last one); without looping [`FeedEvent::End`] is sent and the task waits
//! for commands: `Play` restarts from the beginning (announced as a `Loop` reset), `Seek`
//! seeks. The task ends when the consumer drops the event receiver, or after forwarding a
//! source error (the last event).

use std::path::Path;
use std::time::Duration;

use dbn::MboMsg;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::dbn_file::DbnFileSource;
use crate::source::{
    Feed, FeedError, FeedEvent, FeedMetadata, Pace, PlayState, RecordSource, ReplayCommand,
    ReplayHandle, ReplayOptions, ReplayStatus, ResetReason, Result, SourceKind, SymbolInfo,
};

/// How often the status is refreshed while playing.
const STATUS_EVERY: Duration = Duration::from_millis(100);
/// Commands waiting for the replay task (they are handled within a batch, so few queue up).
const COMMAND_CAPACITY: usize = 32;

/// Starts replaying `source` in a new Tokio task and returns the [`Feed`] to consume it,
/// with its [`ReplayHandle`] in [`Feed::control`].
///
/// `options.batch_size` and `options.channel_capacity` of 0 are taken as 1. Invalid pacing
/// options (a rate of 0, a speed outside [`SPEED_RANGE`](crate::source::SPEED_RANGE)) make
/// the feed's first and only event an `Err`.
///
/// # Panics
/// Outside a Tokio runtime (as [`tokio::spawn`]).
pub fn spawn_replay(
    source: Box<dyn RecordSource>,
    metadata: FeedMetadata,
    options: ReplayOptions,
) -> Feed {
    let (events_tx, events_rx) = mpsc::channel(options.channel_capacity.max(1));
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_CAPACITY);
    let now = Instant::now();
    let state = if options.start_paused {
        PlayState::Paused
    } else {
        PlayState::Playing
    };
    let position_ts = metadata.start_ts.unwrap_or(0);
    let (status_tx, status_rx) = watch::channel(ReplayStatus {
        state,
        pace: options.pace,
        position_ts,
        next_index: 0,
        progress: 0.0,
        released: 0,
    });
    let replay = Replay {
        source,
        metadata: metadata.clone(),
        batch_size: options.batch_size.max(1),
        max_gap: options.max_gap,
        looping: options.looping,
        events: events_tx,
        commands: Some(commands_rx),
        status: status_tx,
        state,
        pace: options.pace,
        clock: Clock::new(options.pace, now, None),
        paused_at: options.start_paused.then_some(now),
        pending: None,
        exhausted: false,
        next_index: 0,
        position_ts,
        released: 0,
        next_status: now,
    };
    tokio::spawn(replay.run());
    Feed {
        metadata,
        events: events_rx,
        control: Some(ReplayHandle {
            commands: commands_tx,
            status: status_rx,
        }),
    }
}

/// Opens a DBN file for replay: reads it once end to end (so a truncated or foreign file is
/// refused before the first record goes out) to learn its record count, first and last
/// `ts_recv` and symbols, then rewinds it.
///
/// This reads the whole file synchronously: in async code, call it through
/// [`tokio::task::spawn_blocking`] for large files.
///
/// # Errors
/// Any [`Problem`](crate::Problem) of the file, as [`FeedError::File`].
pub fn open_file_source(path: impl AsRef<Path>) -> Result<(DbnFileSource, FeedMetadata)> {
    let path = path.as_ref();
    let mut source = DbnFileSource::open(path)?;
    let meta = source.metadata();
    let dataset = meta.dataset.clone();
    let mut symbols: Vec<SymbolInfo> = Vec::new();
    for mapping in &meta.mappings {
        for interval in &mapping.intervals {
            if let Ok(instrument_id) = interval.symbol.parse::<u32>() {
                let info = SymbolInfo {
                    symbol: mapping.raw_symbol.clone(),
                    instrument_id,
                };
                if !symbols.contains(&info) {
                    symbols.push(info);
                }
            }
        }
    }
    let (mut count, mut start_ts, mut end_ts) = (0u64, None, None);
    while let Some(rec) = source.next_record()? {
        count += 1;
        start_ts.get_or_insert(rec.ts_recv);
        end_ts = Some(rec.ts_recv);
    }
    source.rewind()?;
    let metadata = FeedMetadata {
        source: SourceKind::File {
            path: path.to_owned(),
        },
        dataset,
        symbols,
        start_ts,
        end_ts,
        record_count: Some(count),
    };
    Ok((source, metadata))
}

/// Why the replay task stops.
enum Halt {
    /// The consumer dropped the event receiver.
    Closed,
    /// The source failed; the error is forwarded as the last event.
    Failed(FeedError),
}

impl From<FeedError> for Halt {
    fn from(e: FeedError) -> Self {
        Halt::Failed(e)
    }
}

type Step = std::result::Result<(), Halt>;

/// When records are due.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// Always.
    Max,
    /// The `k`-th record after `anchor` (1-based) is due at `anchor + k / per_sec`.
    Rate {
        per_sec: u64,
        anchor: Instant,
        /// Records released since `anchor`.
        sent: u64,
    },
    /// A record is due at `anchor + (ts_recv - anchor_ts) / speed`.
    Realtime {
        speed: f64,
        anchor: Instant,
        /// `None`: the next record sets it (it is then due at `anchor`).
        anchor_ts: Option<u64>,
        /// Due time of the last released record (the reference of `max_gap`).
        last_due: Instant,
    },
}

impl Clock {
    fn new(pace: Pace, at: Instant, anchor_ts: Option<u64>) -> Self {
        match pace {
            Pace::Max => Clock::Max,
            Pace::Rate(per_sec) => Clock::Rate {
                per_sec: per_sec.max(1),
                anchor: at,
                sent: 0,
            },
            Pace::Realtime { speed } => Clock::Realtime {
                speed,
                anchor: at,
                anchor_ts,
                last_due: at,
            },
        }
    }

    /// When the next record (received at `ts`) is due; `None` means now.
    fn due(&mut self, ts: u64, max_gap: Option<Duration>) -> Option<Instant> {
        match self {
            Clock::Max => None,
            Clock::Rate {
                per_sec,
                anchor,
                sent,
            } => {
                // ceil((sent + 1) / per_sec) in ns: the first instant at which
                // floor(per_sec * t) reaches sent + 1.
                let nanos = (u128::from(*sent) + 1) * 1_000_000_000;
                let per_sec = u128::from(*per_sec);
                Some(after(*anchor, nanos.div_ceil(per_sec)))
            }
            Clock::Realtime {
                speed,
                anchor,
                anchor_ts,
                last_due,
            } => {
                let base = *anchor_ts.get_or_insert(ts);
                let due = after(*anchor, scaled(ts.saturating_sub(base), *speed));
                if let Some(cap) = max_gap.and_then(|gap| last_due.checked_add(gap)) {
                    if due > cap {
                        // A long gap (halt, overnight): wait `max_gap` only, and keep the
                        // recorded spacing of what follows from here.
                        *anchor = cap;
                        *anchor_ts = Some(ts);
                        return Some(cap);
                    }
                }
                Some(due)
            }
        }
    }

    /// How many records may go out at `now` (at most `limit`); realtime checks each record.
    fn quota(&self, now: Instant, limit: usize) -> usize {
        match *self {
            Clock::Rate {
                per_sec,
                anchor,
                sent,
            } => {
                let elapsed = now.saturating_duration_since(anchor).as_nanos();
                let allowed = elapsed * u128::from(per_sec) / 1_000_000_000;
                let quota = allowed.saturating_sub(u128::from(sent));
                usize::try_from(quota).map_or(limit, |q| q.min(limit))
            }
            Clock::Max | Clock::Realtime { .. } => limit,
        }
    }

    /// Realtime: takes note that the record due at `due` went out.
    fn released(&mut self, due: Option<Instant>) {
        if let (Clock::Realtime { last_due, .. }, Some(due)) = (self, due) {
            *last_due = due;
        }
    }

    /// Rate: takes note that `count` records went out.
    fn sent(&mut self, count: usize) {
        if let Clock::Rate { sent, .. } = self {
            *sent += count as u64;
        }
    }

    /// Delays the whole schedule by `by` (the time spent paused).
    fn shift(&mut self, by: Duration) {
        match self {
            Clock::Max => {}
            Clock::Rate { anchor, .. } => *anchor = after(*anchor, by.as_nanos()),
            Clock::Realtime {
                anchor, last_due, ..
            } => {
                *anchor = after(*anchor, by.as_nanos());
                *last_due = after(*last_due, by.as_nanos());
            }
        }
    }

    /// In realtime mode, the recorded time (ns) the schedule has reached at `at`.
    fn recorded_time(&self, at: Instant) -> Option<u64> {
        match *self {
            Clock::Realtime {
                speed,
                anchor,
                anchor_ts: Some(base),
                ..
            } => {
                let ahead = at.saturating_duration_since(anchor).as_nanos() as f64 * speed;
                let behind = anchor.saturating_duration_since(at).as_nanos() as f64 * speed;
                Some(
                    base.saturating_add(ahead as u64)
                        .saturating_sub(behind as u64),
                )
            }
            _ => None,
        }
    }

    /// Realtime: the first record of the next pass follows the last one at once.
    fn restart_after_last(&mut self) {
        if let Clock::Realtime {
            anchor,
            anchor_ts,
            last_due,
            ..
        } = self
        {
            *anchor = *last_due;
            *anchor_ts = None;
        }
    }
}

/// `at + nanos`, saturating at `at` for absurd values (never panics).
fn after(at: Instant, nanos: u128) -> Instant {
    let nanos = u64::try_from(nanos).unwrap_or(u64::MAX);
    at.checked_add(Duration::from_nanos(nanos)).unwrap_or(at)
}

/// A recorded interval (ns) divided by the speed factor, rounded to the nanosecond.
fn scaled(recorded: u64, speed: f64) -> u128 {
    (recorded as f64 / speed).round() as u128
}

/// The replay task's state.
struct Replay {
    source: Box<dyn RecordSource>,
    metadata: FeedMetadata,
    batch_size: usize,
    max_gap: Option<Duration>,
    looping: bool,
    events: mpsc::Sender<Result<FeedEvent>>,
    /// `None` once every [`ReplayHandle`] is gone.
    commands: Option<mpsc::Receiver<ReplayCommand>>,
    status: watch::Sender<ReplayStatus>,
    state: PlayState,
    pace: Pace,
    clock: Clock,
    /// While paused: since when (the schedule is frozen from then).
    paused_at: Option<Instant>,
    /// The next record, read from the source but not yet due.
    pending: Option<MboMsg>,
    /// The source returned its end since the last rewind.
    exhausted: bool,
    /// Stream index of the next record to release.
    next_index: u64,
    /// `ts_recv` of the last released record (or the reset's position).
    position_ts: u64,
    /// Records released since the start, across resets.
    released: u64,
    /// When the status must be refreshed next while playing.
    next_status: Instant,
}

impl Replay {
    async fn run(mut self) {
        if let Err(Halt::Failed(e)) = self.main_loop().await {
            self.state = PlayState::Ended;
            self.publish();
            // The consumer may be gone too; there is no one else to tell.
            let _ = self.events.send(Err(e)).await;
        }
    }

    async fn main_loop(&mut self) -> Step {
        self.pace.validate()?;
        self.publish();
        loop {
            self.drain_commands().await?;
            if self.state == PlayState::Playing {
                self.play_step().await?;
            } else {
                tokio::select! {
                    biased;
                    () = self.events.closed() => return Err(Halt::Closed),
                    cmd = next_command(&mut self.commands) => self.on_command(cmd).await?,
                }
            }
        }
    }

    /// Handles the commands already queued, without waiting.
    async fn drain_commands(&mut self) -> Step {
        loop {
            let Some(commands) = self.commands.as_mut() else {
                return Ok(());
            };
            match commands.try_recv() {
                Ok(cmd) => self.handle(cmd).await?,
                Err(TryRecvError::Empty) => return Ok(()),
                Err(TryRecvError::Disconnected) => self.commands = None,
            }
        }
    }

    /// Releases what is due, or waits for the next due time (or a command).
    async fn play_step(&mut self) -> Step {
        if self.pending.is_none() && !self.exhausted {
            self.pull()?;
        }
        let Some(ts) = self.pending.as_ref().map(|r| r.ts_recv) else {
            return self.at_end().await;
        };
        let now = Instant::now();
        match self.clock.due(ts, self.max_gap) {
            Some(due) if due > now => {
                tokio::select! {
                    biased;
                    () = self.events.closed() => return Err(Halt::Closed),
                    cmd = next_command(&mut self.commands) => self.on_command(cmd).await?,
                    () = tokio::time::sleep_until(due.min(self.next_status)) => {}
                }
            }
            _ => {
                self.release(now).await?;
                // Never monopolise a worker, whatever the pace and the channel's room.
                tokio::task::yield_now().await;
            }
        }
        if self.state == PlayState::Playing && Instant::now() >= self.next_status {
            self.publish();
        }
        Ok(())
    }

    /// Sends one batch of the records due at `now`.
    async fn release(&mut self, now: Instant) -> Step {
        let limit = self.clock.quota(now, self.batch_size);
        let mut records = Vec::with_capacity(limit.min(self.batch_size));
        let mut failure = None;
        // Max and Rate know their count up front; realtime decides record by record.
        let each = matches!(self.clock, Clock::Realtime { .. });
        while records.len() < limit {
            let Some(rec) = self.pending.take() else {
                break;
            };
            if each {
                let due = self.clock.due(rec.ts_recv, self.max_gap);
                if due.is_some_and(|d| d > now) {
                    self.pending = Some(rec);
                    break;
                }
                self.clock.released(due);
            }
            records.push(rec);
            if let Err(e) = self.pull() {
                failure = Some(e);
                break;
            }
        }
        if !each {
            self.clock.sent(records.len());
        }
        // Records read before a source error still go out, then the error.
        self.send_records(records, false).await?;
        match failure {
            Some(e) => Err(Halt::Failed(e)),
            None => Ok(()),
        }
    }

    /// Reads the next record into `pending` (or notes the end).
    fn pull(&mut self) -> Result<()> {
        match self.source.next_record()? {
            Some(rec) => self.pending = Some(rec.clone()),
            None => {
                self.pending = None;
                self.exhausted = true;
            }
        }
        Ok(())
    }

    async fn at_end(&mut self) -> Step {
        // An empty source would loop forever without releasing anything.
        if self.looping && self.next_index > 0 {
            self.clock.restart_after_last();
            self.rewind(ResetReason::Loop).await
        } else {
            self.send(FeedEvent::End).await?;
            self.state = PlayState::Ended;
            self.publish();
            Ok(())
        }
    }

    /// Back to the first record; consumers clear their books.
    async fn rewind(&mut self, reason: ResetReason) -> Step {
        self.rewind_to(reason, 0).await
    }

    /// Back to record `index` (the records before it skipped, not sent); consumers clear
    /// their books, and rebuild the state at `index - 1` themselves when `index > 0`.
    async fn rewind_to(&mut self, reason: ResetReason, index: u64) -> Step {
        self.source.rewind()?;
        let skipped = if index > 0 {
            self.source.skip(index)?
        } else {
            0
        };
        self.pending = None;
        self.exhausted = false;
        self.next_index = skipped;
        self.position_ts = match reason {
            ResetReason::Seek { ts } => ts,
            _ => self.metadata.start_ts.unwrap_or(0),
        };
        self.send(FeedEvent::Reset {
            reason,
            next_index: skipped,
        })
        .await
    }

    async fn on_command(&mut self, cmd: Option<ReplayCommand>) -> Step {
        match cmd {
            Some(cmd) => self.handle(cmd).await,
            None => {
                self.commands = None;
                Ok(())
            }
        }
    }

    async fn handle(&mut self, cmd: ReplayCommand) -> Step {
        let now = Instant::now();
        match cmd {
            ReplayCommand::Play => match self.state {
                PlayState::Playing => {}
                PlayState::Paused => {
                    if let Some(since) = self.paused_at.take() {
                        self.clock.shift(now.saturating_duration_since(since));
                    }
                    self.state = PlayState::Playing;
                }
                PlayState::Ended => {
                    self.clock = Clock::new(self.pace, now, None);
                    self.state = PlayState::Playing;
                    self.rewind(ResetReason::Loop).await?;
                }
            },
            ReplayCommand::Pause => {
                if self.state == PlayState::Playing {
                    self.state = PlayState::Paused;
                    self.paused_at = Some(now);
                }
            }
            ReplayCommand::SetPace(pace) => {
                // Commands sent through `ReplayHandle::send` are validated there; a raw
                // invalid one is ignored rather than stopping the replay.
                if pace != self.pace && pace.validate().is_ok() {
                    self.set_pace(pace, now);
                }
            }
            ReplayCommand::Seek(ts) => self.seek(ts, 0).await?,
            ReplayCommand::SeekFrom { index, ts } => self.seek(ts, index).await?,
        }
        self.publish();
        Ok(())
    }

    /// Re-anchors the schedule at the current position (frozen position while paused).
    fn set_pace(&mut self, pace: Pace, now: Instant) {
        let at = self.paused_at.unwrap_or(now);
        let released_since_reset = self.next_index > 0;
        let anchor_ts = match (self.clock, pace) {
            (Clock::Realtime { .. }, Pace::Realtime { .. }) => {
                self.clock.recorded_time(at).map(|t| {
                    if released_since_reset {
                        t.max(self.position_ts)
                    } else {
                        t
                    }
                })
            }
            (_, Pace::Realtime { .. }) => released_since_reset.then_some(self.position_ts),
            _ => None,
        };
        self.pace = pace;
        self.clock = Clock::new(pace, at, anchor_ts);
    }

    /// Seeks to `ts`, sending records from `from_index` (see [`ReplayCommand::SeekFrom`]).
    async fn seek(&mut self, ts: u64, from_index: u64) -> Step {
        self.rewind_to(ResetReason::Seek { ts }, from_index).await?;
        let mut records = Vec::with_capacity(self.batch_size);
        let mut failure = None;
        loop {
            if let Err(e) = self.pull() {
                failure = Some(e);
                break;
            }
            match self.pending.take() {
                Some(rec) if rec.ts_recv <= ts => {
                    records.push(rec);
                    if records.len() == self.batch_size {
                        let full =
                            std::mem::replace(&mut records, Vec::with_capacity(self.batch_size));
                        self.send_records(full, true).await?;
                        tokio::task::yield_now().await;
                    }
                }
                other => {
                    self.pending = other;
                    break;
                }
            }
        }
        self.send_records(records, true).await?;
        if let Some(e) = failure {
            return Err(Halt::Failed(e));
        }
        let now = Instant::now();
        if self.state == PlayState::Ended {
            self.state = PlayState::Playing;
        }
        if self.state == PlayState::Paused {
            self.paused_at = Some(now);
        }
        self.clock = Clock::new(self.pace, now, Some(ts));
        Ok(())
    }

    async fn send_records(&mut self, records: Vec<MboMsg>, catch_up: bool) -> Step {
        let Some(last_ts) = records.last().map(|r| r.ts_recv) else {
            return Ok(());
        };
        let count = records.len() as u64;
        let first_index = self.next_index;
        self.send(FeedEvent::Records {
            first_index,
            records,
            catch_up,
        })
        .await?;
        self.next_index += count;
        self.released += count;
        self.position_ts = last_ts;
        Ok(())
    }

    async fn send(&mut self, event: FeedEvent) -> Step {
        self.events.send(Ok(event)).await.map_err(|_| Halt::Closed)
    }

    fn progress(&self) -> f64 {
        if self.state == PlayState::Ended {
            return 1.0;
        }
        let fraction = match (
            self.metadata.record_count,
            self.metadata.start_ts,
            self.metadata.end_ts,
        ) {
            (Some(count), _, _) if count > 0 => self.next_index as f64 / count as f64,
            (_, Some(start), Some(end)) if end > start => {
                self.position_ts.saturating_sub(start) as f64 / (end - start) as f64
            }
            _ => 0.0,
        };
        fraction.clamp(0.0, 1.0)
    }

    /// Publishes the status if it changed, and schedules the next periodic refresh.
    fn publish(&mut self) {
        let status = ReplayStatus {
            state: self.state,
            pace: self.pace,
            position_ts: self.position_ts,
            next_index: self.next_index,
            progress: self.progress(),
            released: self.released,
        };
        self.status.send_if_modified(|current| {
            let changed = *current != status;
            if changed {
                *current = status;
            }
            changed
        });
        self.next_status = Instant::now() + STATUS_EVERY;
    }
}

/// The next command; never resolves once every handle is gone (`None` is reported once).
async fn next_command(
    commands: &mut Option<mpsc::Receiver<ReplayCommand>>,
) -> Option<ReplayCommand> {
    match commands {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
