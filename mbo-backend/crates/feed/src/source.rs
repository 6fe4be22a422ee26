//! The one interface every MBO source implements, and what consumers (the server) receive.
//!
//! ## Shape
//! A source is split in two layers:
//! * [`RecordSource`] — synchronous, sans-I/O-timing: hands out records in stream order and can
//!   rewind. DBN files and the simulator implement it; the replay engine paces any of them
//!   (max / rate / realtime×speed), and gives pause, resume, speed changes, seek and loop for
//!   free (seek = rewind and fast-forward; both sources are deterministic).
//! * [`Feed`] — what the server consumes: [`FeedMetadata`] plus a bounded channel of
//!   [`FeedEvent`]s produced by a Tokio task, and, for replayable sources, a [`ReplayHandle`]
//!   to control it. Databento live and historical sources produce the same `Feed`.
//!
//! Records travel in batches (one allocation per batch, never per record) through a bounded
//! channel: a slow consumer slows the source down; nothing is dropped or buffered without
//! bound.
//!
//! ## Stream index
//! Every record has a 0-based position in its source's stream (`first_index + i` within a
//! batch). Consumers name events by it (`event_index`). A [`FeedEvent::Reset`] (seek, loop,
//! live reconnect) tells the consumer to clear every book and continue numbering from
//! `next_index`.

use std::path::PathBuf;
use std::time::Duration;

use dbn::MboMsg;
use tokio::sync::{mpsc, watch};

use crate::DbnFileError;

/// Errors of feed sources.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FeedError {
    /// A DBN file problem (missing, not DBN, truncated, wrong schema).
    #[error(transparent)]
    File(#[from] DbnFileError),
    /// No Databento API key is configured.
    #[error("no Databento API key: set DATABENTO_API_KEY (or DBN_KEY) to use Databento sources")]
    NoApiKey,
    /// Databento rejected the key or the session.
    #[error("Databento authentication failed: {0}")]
    Auth(String),
    /// Any other Databento client error.
    #[error("Databento: {0}")]
    Databento(String),
    /// A historical request's estimated cost is above the limit and was not confirmed.
    #[error(
        "estimated cost ${estimate_usd:.2} is above the ${limit_usd:.2} limit: confirm the \
         request (mbo fetch --yes) or raise the limit (--max-cost USD)"
    )]
    CostAboveLimit {
        /// Databento's estimate (`metadata.get_cost`), US dollars.
        estimate_usd: f64,
        /// The limit in force, US dollars.
        limit_usd: f64,
    },
    /// Invalid options (pace, speed, symbols...).
    #[error("invalid feed option: {0}")]
    Options(String),
    /// I/O outside DBN decoding (cache, output files).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// Result alias for feed operations.
pub type Result<T> = std::result::Result<T, FeedError>;

/// Where records come from.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum SourceKind {
    /// A DBN file replayed.
    File {
        /// Its path.
        path: PathBuf,
    },
    /// The built-in market simulator.
    Simulator {
        /// Seed of the generator (same seed, same records).
        seed: u64,
    },
    /// Databento historical API (`timeseries.get_range`).
    Historical,
    /// Databento live API.
    Live,
    /// No MBO source (`mbo serve --no-mbo`: crypto venues only).
    None,
}

impl SourceKind {
    /// Short label for status and metrics: `file`, `simulator`, `historical`, `live`.
    pub fn label(&self) -> &'static str {
        match self {
            SourceKind::File { .. } => "file",
            SourceKind::Simulator { .. } => "simulator",
            SourceKind::Historical => "historical",
            SourceKind::Live => "live",
            SourceKind::None => "none",
        }
    }
}

/// One symbol and the instrument id its records carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolInfo {
    /// Raw symbol (e.g. `CLX5`).
    pub symbol: String,
    /// Databento instrument id.
    pub instrument_id: u32,
}

/// What a feed says about itself before the first record.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedMetadata {
    /// The source.
    pub source: SourceKind,
    /// Databento dataset code (e.g. `GLBX.MDP3`), or `SIM` for the simulator.
    pub dataset: String,
    /// Symbol → instrument mappings known up front.
    pub symbols: Vec<SymbolInfo>,
    /// First record's `ts_recv` (ns), when known before streaming (files).
    pub start_ts: Option<u64>,
    /// Last record's `ts_recv` (ns), when known before streaming (files).
    pub end_ts: Option<u64>,
    /// Number of records, when known before streaming.
    pub record_count: Option<u64>,
}

/// Why consumers must clear their books.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResetReason {
    /// The replay was sought (records up to the target follow with `catch_up = true`).
    Seek {
        /// Target `ts_recv` (ns).
        ts: u64,
    },
    /// The replay reached the end and started again (`--loop`).
    Loop,
    /// A live session reconnected: the books were stale; a fresh snapshot follows.
    Reconnect {
        /// What broke the previous session.
        cause: String,
    },
}

/// What a feed delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum FeedEvent {
    /// Records in stream order.
    Records {
        /// Stream index of `records[0]`.
        first_index: u64,
        /// The records.
        records: Vec<MboMsg>,
        /// True while fast-forwarding after a seek: apply, but there is no need to publish
        /// every intermediate boundary.
        catch_up: bool,
    },
    /// Clear every book; the next record has stream index `next_index`.
    Reset {
        /// Why.
        reason: ResetReason,
        /// Index of the next record.
        next_index: u64,
    },
    /// The source is exhausted (a file without `--loop`). The replay can still be sought.
    End,
    /// Replace every book by `books` (their state after record `next_index - 1`), continue
    /// numbering from `next_index`, and call the feed's epoch `epoch` from now on. A server
    /// following another one (an `mbo serve --role gateway` following its ingest) starts and
    /// resynchronises this way, so its books and event ids equal the ingest's.
    Restore {
        /// The epoch the books belong to (the ingest's).
        epoch: u64,
        /// Index of the next record.
        next_index: u64,
        /// The books (books of the market not named here are emptied).
        books: RestoredBooks,
    },
}

/// The books of a [`FeedEvent::Restore`].
#[derive(Debug, Clone, Default)]
pub struct RestoredBooks(pub Vec<mbo_book::Book>);

impl PartialEq for RestoredBooks {
    /// Same keys, same event state, same resting orders in the same queue order.
    fn eq(&self, other: &Self) -> bool {
        use mbo_book::Side;
        self.0.len() == other.0.len()
            && self.0.iter().zip(&other.0).all(|(a, b)| {
                a.key() == b.key()
                    && a.state() == b.state()
                    && [Side::Bid, Side::Ask].into_iter().all(|side| {
                        a.levels(side).eq(b.levels(side))
                            && a.levels(side).all(|l| {
                                a.level_orders(side, l.price)
                                    .eq(b.level_orders(side, l.price))
                            })
                    })
            })
    }
}

/// How fast records are released.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pace {
    /// As fast as the consumer takes them.
    Max,
    /// A fixed number of records per second, smoothly (no burst larger than one timer tick).
    Rate(u64),
    /// Following the records' `ts_recv` gaps, scaled by a speed factor (0.1–1000).
    Realtime {
        /// 1.0 = the recorded speed; 10.0 = ten times faster.
        speed: f64,
    },
}

/// Allowed range of the realtime speed factor.
pub const SPEED_RANGE: std::ops::RangeInclusive<f64> = 0.1..=1000.0;

impl Pace {
    /// Checks the pace's parameters.
    ///
    /// # Errors
    /// [`FeedError::Options`] for a rate of 0 or a speed outside [`SPEED_RANGE`] (or NaN).
    pub fn validate(&self) -> Result<()> {
        match *self {
            Pace::Max => Ok(()),
            Pace::Rate(0) => Err(FeedError::Options(
                "rate must be at least 1 record/s".into(),
            )),
            Pace::Rate(_) => Ok(()),
            Pace::Realtime { speed } if SPEED_RANGE.contains(&speed) => Ok(()),
            Pace::Realtime { speed } => Err(FeedError::Options(format!(
                "speed {speed} outside {}..={}",
                SPEED_RANGE.start(),
                SPEED_RANGE.end()
            ))),
        }
    }
}

/// Replay options (`--pace`, `--rate`, `--speed`, `--max-gap`, `--loop`).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayOptions {
    /// Pacing mode.
    pub pace: Pace,
    /// In realtime mode, the longest wait between two records (caps trading halts).
    pub max_gap: Option<Duration>,
    /// Start again at the end of the source.
    pub looping: bool,
    /// Start paused.
    pub start_paused: bool,
    /// Records per [`FeedEvent::Records`] batch at most.
    pub batch_size: usize,
    /// Capacity of the event channel (batches). Bounded: a slow consumer slows the replay.
    pub channel_capacity: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            pace: Pace::Max,
            max_gap: None,
            looping: false,
            start_paused: false,
            batch_size: 1024,
            channel_capacity: 64,
        }
    }
}

/// Whether a replay is running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlayState {
    /// Releasing records.
    Playing,
    /// Holding.
    Paused,
    /// At the end of the source (not looping).
    Ended,
}

impl PlayState {
    /// `playing`, `paused` or `ended`.
    pub fn label(self) -> &'static str {
        match self {
            PlayState::Playing => "playing",
            PlayState::Paused => "paused",
            PlayState::Ended => "ended",
        }
    }
}

/// Snapshot of a replay's state, published on every change and periodically while playing.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayStatus {
    /// Playing, paused or ended.
    pub state: PlayState,
    /// Current pace.
    pub pace: Pace,
    /// `ts_recv` (ns) of the last released record.
    pub position_ts: u64,
    /// Stream index of the next record to release.
    pub next_index: u64,
    /// Fraction of the source released, 0–1 (by record count when known, else by time).
    pub progress: f64,
    /// Records released since start (all loops and seeks included).
    pub released: u64,
}

/// A command to a running replay.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplayCommand {
    /// Resume releasing records.
    Play,
    /// Stop releasing records (the position is kept).
    Pause,
    /// Change the pace (and realtime speed).
    SetPace(Pace),
    /// Jump to the last record with `ts_recv <= ts` (ns): consumers get a `Reset`, then the
    /// records up to the target flagged `catch_up`.
    Seek(u64),
    /// As `Seek(ts)`, for a consumer that can rebuild its state at record `index - 1` by
    /// itself (from a stored checkpoint): the records before `index` are skipped, not sent,
    /// and the `Reset` says `next_index: index`. `index` must be the index of a record with
    /// `ts_recv <= ts` plus one.
    SeekFrom {
        /// First record to send.
        index: u64,
        /// Target `ts_recv` (ns).
        ts: u64,
    },
}

/// Cloneable control of a replay task.
#[derive(Debug, Clone)]
pub struct ReplayHandle {
    /// Commands to the replay task.
    pub commands: mpsc::Sender<ReplayCommand>,
    /// Latest status.
    pub status: watch::Receiver<ReplayStatus>,
}

impl ReplayHandle {
    /// Sends a command.
    ///
    /// # Errors
    /// [`FeedError::Options`] if the replay task has stopped or the command is invalid
    /// (e.g. a speed outside [`SPEED_RANGE`]).
    pub async fn send(&self, cmd: ReplayCommand) -> Result<()> {
        if let ReplayCommand::SetPace(pace) = &cmd {
            pace.validate()?;
        }
        self.commands
            .send(cmd)
            .await
            .map_err(|_| FeedError::Options("the replay has stopped".into()))
    }

    /// The latest status.
    pub fn status(&self) -> ReplayStatus {
        self.status.borrow().clone()
    }
}

/// A running source: metadata, events, and (for replays) control.
#[derive(Debug)]
pub struct Feed {
    /// What the source is.
    pub metadata: FeedMetadata,
    /// Events in order. Closed when the source task stops; an `Err` is the last item.
    pub events: mpsc::Receiver<Result<FeedEvent>>,
    /// Control of the replay, for replayable sources.
    pub control: Option<ReplayHandle>,
}

impl Feed {
    /// A feed that never delivers a record (`mbo serve --no-mbo`). Its channel stays open
    /// until the receiver is dropped, so a consumer waits on it quietly instead of seeing the
    /// end of a feed. Must be called within a Tokio runtime.
    pub fn idle() -> Self {
        let (tx, events) = mpsc::channel(1);
        tokio::spawn(async move { tx.closed().await });
        Self {
            metadata: FeedMetadata {
                source: SourceKind::None,
                dataset: String::new(),
                symbols: Vec::new(),
                start_ts: None,
                end_ts: None,
                record_count: None,
            },
            events,
            control: None,
        }
    }
}

/// A synchronous, rewindable stream of MBO records: what the replay engine paces.
pub trait RecordSource: Send + 'static {
    /// The next record in stream order, `None` at the end.
    ///
    /// # Errors
    /// Any problem of the underlying data (the replay stops and forwards it).
    fn next_record(&mut self) -> Result<Option<&MboMsg>>;

    /// Back to the first record.
    ///
    /// # Errors
    /// If the source cannot be reopened.
    fn rewind(&mut self) -> Result<()>;

    /// Skips `n` records; returns how many there were (fewer at the end of the stream).
    /// Decoding without copying or sending is what makes a seek from a checkpoint fast.
    ///
    /// # Errors
    /// As [`RecordSource::next_record`].
    fn skip(&mut self, n: u64) -> Result<u64> {
        let mut done = 0;
        while done < n {
            if self.next_record()?.is_none() {
                break;
            }
            done += 1;
        }
        Ok(done)
    }
}
