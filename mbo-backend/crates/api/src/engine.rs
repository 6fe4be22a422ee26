//! The engine: the one task that owns the [`Market`], applies the feed and publishes.
//!
//! ## Cycle
//! The engine waits for a feed event, then takes whatever else is already queued (without
//! waiting) for at most [`CYCLE_BUDGET`], applying each batch as it comes; then it publishes
//! once: a new [`BookFrame`] for each book that changed, and one [`Update`] (those frames and
//! the cycle's trades) on the update ring. Raw record batches go to the MBO ring as they are
//! applied. At a paced rate a cycle is one batch (publication follows every release); at
//! `max` pace cycles bound the publication rate to about a thousand a second while the
//! ingest runs at full speed.
//!
//! ## Only whole events are applied
//! Feed batches are cut by count or time, not by event, so a batch may end inside an event.
//! The engine scans each batch for the last point where no book is inside an event (every
//! book's last record carried `F_LAST`), applies the records up to there, and holds the rest
//! back until the next batch completes them. Everything the engine publishes or answers
//! therefore describes books at an event boundary, and `MboBatch`es hold whole events. A
//! source that never closes its events (a broken capture) cannot make the engine hold records
//! without bound: past [`MAX_HELD`] records they are applied anyway, and books then inside an
//! event keep their previous frame until they close one.
//!
//! ## Requests
//! Whole-book reads (`depth=all`, a level's L3 queue, the MBO stream's snapshot) are sent to
//! the engine, which answers between batches from its own market: no reader ever locks the
//! book. An MBO snapshot subscribes its client to the MBO ring at the moment it copies the
//! books, so the client's next record is exactly the one after the snapshot.
//!
//! ## Resets
//! A feed reset (seek, loop, live reconnect) empties the market, drops held records and bumps
//! the epoch; the next update carries `reset: true` and frames of every book, so every client
//! resynchronises with a snapshot. Trades of catch-up batches (fast-forward after a seek) are
//! not published: they are history the clients jumped over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use dbn::MboMsg;
use mbo_book::{Book, BookKey, Counters, LevelView, Market, OrderView, Side};
use mbo_feed::{FeedError, FeedEvent};
use mbo_store::Recorder;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::frame::{BookFrame, JsonCache, Trade, FRAME_DEPTH};
use crate::hub::{BookEntry, Directory, Health, Hub, MboBatch, Update};
use crate::metrics::Metrics;

/// Longest a cycle keeps taking queued batches before it publishes.
pub const CYCLE_BUDGET: Duration = Duration::from_millis(1);
/// Records held back waiting for an event to close before they are applied anyway.
pub const MAX_HELD: usize = 1 << 16;
/// Requests queued for the engine; beyond this, readers are told the server is busy.
pub const REQUEST_QUEUE: usize = 1024;
/// How often an idle engine checks whether a partial storage batch is due.
const STORAGE_FLUSH_CHECK: Duration = Duration::from_millis(50);
/// Requests answered between two feed batches at most (the feed is never starved).
const REQUESTS_PER_TURN: usize = 64;

/// Unix time in ns.
pub fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// A level's queue, in priority order.
#[derive(Debug, Clone)]
pub struct LevelQueue {
    /// The book's frame header at the time of the read (no levels).
    pub frame: Arc<BookFrame>,
    /// Side of the level.
    pub side: Side,
    /// The level's totals; `None` when no order rests at that price.
    pub level: Option<LevelView>,
    /// Orders, first in queue first.
    pub orders: Vec<OrderView>,
}

/// One book's resting orders, level by level, for the MBO stream's snapshot.
#[derive(Debug, Clone)]
pub struct L3Book {
    /// The book's frame header (no levels).
    pub frame: Arc<BookFrame>,
    /// Bid levels, best first, each with its queue.
    pub bids: Vec<(LevelView, Vec<OrderView>)>,
    /// Ask levels, best first, each with its queue.
    pub asks: Vec<(LevelView, Vec<OrderView>)>,
}

/// Answer to [`Request::MboSnapshot`].
#[derive(Debug)]
pub struct MboSnapshot {
    /// Feed epoch.
    pub epoch: u64,
    /// Index of the last applied record (`None`: nothing applied in this epoch).
    pub last_index: Option<u64>,
    /// Unix ns of the copy.
    pub server_ts: u64,
    /// The books.
    pub books: Vec<L3Book>,
    /// Record batches after the snapshot.
    pub receiver: broadcast::Receiver<Arc<MboBatch>>,
}

/// A read that needs the whole book.
#[derive(Debug)]
pub enum Request {
    /// A frame with `depth` levels per side (`usize::MAX`: all).
    Book {
        /// The book.
        key: BookKey,
        /// Levels per side.
        depth: usize,
        /// Where the answer goes (`None`: no such book).
        reply: oneshot::Sender<Option<Arc<BookFrame>>>,
    },
    /// The queue at one price level.
    Level {
        /// The book.
        key: BookKey,
        /// Side.
        side: Side,
        /// Price, 1e-9 units.
        price: i64,
        /// Where the answer goes (`None`: no such book).
        reply: oneshot::Sender<Option<LevelQueue>>,
    },
    /// Every resting order of the books of one instrument (all books when `None`), plus a
    /// subscription to the record batches that follow.
    MboSnapshot {
        /// Instrument filter.
        instrument: Option<u32>,
        /// Where the answer goes.
        reply: oneshot::Sender<MboSnapshot>,
    },
}

/// Errors of [`EngineClient`] calls.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum EngineError {
    /// The request queue is full.
    #[error("the server is busy: too many book requests queued")]
    Busy,
    /// The engine has stopped (shutting down).
    #[error("the book engine has stopped")]
    Stopped,
}

/// Cloneable handle to send [`Request`]s.
#[derive(Debug, Clone)]
pub struct EngineClient {
    requests: mpsc::Sender<Request>,
}

impl EngineClient {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Request,
    ) -> Result<T, EngineError> {
        let (tx, rx) = oneshot::channel();
        self.requests.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => EngineError::Busy,
            mpsc::error::TrySendError::Closed(_) => EngineError::Stopped,
        })?;
        rx.await.map_err(|_| EngineError::Stopped)
    }

    /// A frame of `key` with `depth` levels per side (`usize::MAX`: all).
    ///
    /// # Errors
    /// [`EngineError`] when the engine is busy or stopped.
    pub async fn book(
        &self,
        key: BookKey,
        depth: usize,
    ) -> Result<Option<Arc<BookFrame>>, EngineError> {
        self.ask(|reply| Request::Book { key, depth, reply }).await
    }

    /// The queue at `price` on `side` of `key`.
    ///
    /// # Errors
    /// [`EngineError`] when the engine is busy or stopped.
    pub async fn level(
        &self,
        key: BookKey,
        side: Side,
        price: i64,
    ) -> Result<Option<LevelQueue>, EngineError> {
        self.ask(|reply| Request::Level {
            key,
            side,
            price,
            reply,
        })
        .await
    }

    /// An L3 snapshot and a subscription to what follows it.
    ///
    /// # Errors
    /// [`EngineError`] when the engine is busy or stopped.
    pub async fn mbo_snapshot(&self, instrument: Option<u32>) -> Result<MboSnapshot, EngineError> {
        self.ask(|reply| Request::MboSnapshot { instrument, reply })
            .await
    }
}

/// The engine task's state.
pub struct Engine {
    market: Market,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    events: mpsc::Receiver<Result<FeedEvent, FeedError>>,
    requests: mpsc::Receiver<Request>,
    shutdown: CancellationToken,
    epoch: u64,
    /// Books inside an event after the last scanned record.
    open: Vec<BookKey>,
    /// Records scanned but not applied (the tail of an unfinished event).
    held: Vec<MboMsg>,
    /// Books changed since the last publication.
    touched: Vec<BookKey>,
    /// Trades since the last publication.
    trades: Vec<Trade>,
    /// A reset happened since the last publication.
    reset: bool,
    /// When the oldest unpublished batch was taken off the feed.
    oldest_unpublished: Option<Instant>,
    last_counters: Counters,
    feed_open: bool,
    /// When the last cycle was published.
    last_publish: Instant,
    /// Where applied records are stored (`None`: storage off, or failed).
    recorder: Option<Recorder>,
    /// The database seeks restore checkpoint rounds from (`None`: storage off).
    storage: Option<Arc<crate::storage::Storage>>,
    /// Its connection, opened at the first restore.
    rounds: Option<mbo_store::Store>,
    /// A seek's checkpoint round could not be restored and a full seek was asked for: the
    /// records until its reset would build on empty books, so they are dropped.
    awaiting_reseek: bool,
    /// The follower of the applied stream (`--role ingest`'s publisher), if any.
    tap: Option<crate::tap::Tap>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("epoch", &self.epoch)
            .field("books", &self.market.books().len())
            .field("held", &self.held.len())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine for `events`, publishing into `hub`; returns it and the client to query it.
    pub fn new(
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        events: mpsc::Receiver<Result<FeedEvent, FeedError>>,
        shutdown: CancellationToken,
        recorder: Option<Recorder>,
    ) -> (Self, EngineClient) {
        let (tx, rx) = mpsc::channel(REQUEST_QUEUE);
        let engine = Self {
            market: Market::new(),
            hub,
            metrics,
            events,
            requests: rx,
            shutdown,
            epoch: 0,
            open: Vec::new(),
            held: Vec::new(),
            touched: Vec::new(),
            trades: Vec::new(),
            reset: false,
            oldest_unpublished: None,
            last_counters: Counters::default(),
            feed_open: true,
            last_publish: Instant::now(),
            recorder,
            storage: None,
            rounds: None,
            awaiting_reseek: false,
            tap: None,
        };
        (engine, EngineClient { requests: tx })
    }

    /// Lets seeks restore checkpoint rounds from `storage` (see
    /// [`ReplayCommand::SeekFrom`](mbo_feed::ReplayCommand::SeekFrom)).
    #[must_use]
    pub fn with_storage(mut self, storage: Option<Arc<crate::storage::Storage>>) -> Self {
        self.storage = storage;
        self
    }

    /// Hands every applied batch, reset and end to `tap`'s follower (see [`crate::tap`]).
    #[must_use]
    pub fn with_tap(mut self, tap: Option<crate::tap::Tap>) -> Self {
        self.tap = tap;
        self
    }

    /// Starts counting epochs at `epoch` instead of 0 (an ingest continues the epochs of
    /// the one before it, so event ids never repeat across a restart).
    #[must_use]
    pub fn with_epoch(mut self, epoch: u64) -> Self {
        self.epoch = epoch;
        self.hub.epoch.store(epoch, Ordering::Release);
        self
    }

    fn tap(&mut self, ev: crate::tap::TapEvent) {
        if let Some(tap) = &self.tap {
            if !tap.send(ev) {
                tracing::error!("the applied-stream follower stopped: no longer publishing");
                self.tap = None;
            }
        }
    }

    /// Empties the market before a reset or a restore; counters of what came before are
    /// recorded first.
    fn clear_market(&mut self, next_index: u64) {
        self.held.clear();
        self.open.clear();
        self.trades.clear();
        // Counters restart with the market: count what happened before the reset.
        self.metrics
            .record_counters(&self.last_counters, &self.market.counters());
        self.last_counters = Counters::default();
        self.market.reset();
        self.market.set_next_index(next_index);
        self.awaiting_reseek = false;
    }

    /// After a reset or a restore: the new epoch is published, every book goes out.
    fn mark_reset(&mut self, epoch: u64) {
        self.epoch = epoch;
        self.hub.epoch.store(self.epoch, Ordering::Release);
        self.reset = true;
        self.metrics.feed_resets.inc();
        self.touched.clear();
        self.touched
            .extend(self.market.books().iter().map(Book::key));
    }

    /// Restores every book of the round `index` into the (just reset) market.
    fn restore_round(&mut self, index: u64) -> Result<usize, mbo_store::StoreError> {
        let Some(storage) = &self.storage else {
            return Err(mbo_store::StoreError::WriterStopped);
        };
        let store = match self.rounds.take() {
            Some(store) => store,
            None => mbo_store::Store::open(&storage.path)?,
        };
        let books = store.round_books(storage.session, index);
        self.rounds = Some(store);
        let books = books?;
        let n = books.len();
        for book in books {
            self.market.insert_book(book);
        }
        Ok(n)
    }

    /// Runs until shutdown (or until both the feed and every request sender are gone), then
    /// flushes storage: every applied record is committed before this returns.
    pub async fn run(mut self) {
        if let Some(recorder) = &mut self.recorder {
            recorder.symbols(self.hub.feed.symbol_mappings());
        }
        loop {
            let flush_due = self.recorder.as_ref().is_some_and(Recorder::has_pending);
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(STORAGE_FLUSH_CHECK), if flush_due => self.storage_tick(),
                req = self.requests.recv() => match req {
                    Some(req) => {
                        self.answer(req);
                        for _ in 1..REQUESTS_PER_TURN {
                            match self.requests.try_recv() {
                                Ok(req) => self.answer(req),
                                Err(_) => break,
                            }
                        }
                    }
                    None if !self.feed_open => break,
                    None => {
                        // No reader can ask anything any more; keep applying the feed.
                        self.drain_feed_only().await;
                        break;
                    }
                },
                ev = self.events.recv(), if self.feed_open => self.cycle(ev).await,
            }
        }
        if let Some(recorder) = self.recorder.take() {
            // Blocking on the ingest thread at shutdown: nothing else needs it any more.
            match recorder.finish() {
                Ok(stats) => tracing::info!(
                    batches = stats.batches,
                    events_written = stats.events_written,
                    trades_written = stats.trades_written,
                    checkpoints_written = stats.checkpoints_written,
                    backpressure_s = stats.blocked_time.as_secs_f64(),
                    "storage flushed"
                ),
                Err(e) => {
                    self.metrics.storage_errors.inc();
                    tracing::error!(error = %e, "storage: the last batches were not written");
                }
            }
        }
        tracing::debug!(engine = ?self, "engine stopped");
    }

    /// Flushes a partial storage batch that has waited long enough.
    fn storage_tick(&mut self) {
        if let Some(recorder) = &mut self.recorder {
            if let Err(e) = recorder.tick() {
                self.storage_failed(&e);
            }
        }
    }

    /// Storage stopped working (disk full, file removed...): say so loudly and keep serving
    /// the live market without it, rather than stopping the feed for every client.
    fn storage_failed(&mut self, e: &mbo_store::StoreError) {
        self.metrics.storage_errors.inc();
        tracing::error!(error = %e, "storage failed: continuing without storage");
        self.recorder = None;
    }

    async fn drain_feed_only(&mut self) {
        while self.feed_open {
            tokio::select! {
                () = self.shutdown.cancelled() => return,
                ev = self.events.recv() => self.cycle(ev).await,
            }
        }
    }

    /// One cycle: `first`, then whatever is queued within the budget, then publish. When
    /// the feed is faster than the engine publishes (max pace), the cycle also waits for
    /// more input until [`CYCLE_BUDGET`] after the previous publication: at most about a
    /// thousand publications a second, at most a millisecond late.
    async fn cycle(&mut self, first: Option<Result<FeedEvent, FeedError>>) {
        let started = Instant::now();
        let mut next = first;
        loop {
            match next {
                None => {
                    self.feed_open = false;
                    self.apply_held();
                    if self.hub.health() != Health::Ready {
                        // A feed that closes before its first boundary gave nothing to serve.
                        if let Health::Starting = self.hub.health() {
                            self.hub.set_health(Health::Failed(
                                "the feed closed before its first event".into(),
                            ));
                        }
                    }
                    tracing::info!("feed closed");
                    break;
                }
                Some(Err(e)) => {
                    tracing::error!(error = %e, "feed failed");
                    self.hub.set_health(Health::Failed(e.to_string()));
                    self.metrics.feed_errors.inc();
                    break;
                }
                Some(Ok(ev)) => self.handle(ev, started),
            }
            if started.elapsed() >= CYCLE_BUDGET {
                break;
            }
            next = match self.events.try_recv() {
                Ok(ev) => Some(ev),
                Err(mpsc::error::TryRecvError::Empty) => {
                    let publish_at = self.last_publish + CYCLE_BUDGET;
                    if Instant::now() >= publish_at {
                        break;
                    }
                    let deadline = tokio::time::Instant::from_std(publish_at);
                    match tokio::time::timeout_at(deadline, self.events.recv()).await {
                        Ok(ev) => ev,
                        Err(_) => break,
                    }
                }
                Err(mpsc::error::TryRecvError::Disconnected) => None,
            };
        }
        self.publish();
        self.storage_tick();
        self.last_publish = Instant::now();
    }

    fn handle(&mut self, ev: FeedEvent, taken: Instant) {
        match ev {
            FeedEvent::Records { .. } if self.awaiting_reseek => {}
            FeedEvent::Records {
                records, catch_up, ..
            } => {
                self.oldest_unpublished.get_or_insert(taken);
                self.ingest(records, catch_up);
            }
            FeedEvent::Reset { reason, next_index } => {
                tracing::info!(?reason, next_index, "feed reset");
                self.clear_market(next_index);
                let mut restored = false;
                if next_index > 0 {
                    // A seek from a checkpoint round: the replay skipped the records up to
                    // it, the round gives the books there.
                    let started = Instant::now();
                    match self.restore_round(next_index - 1) {
                        Ok(books) if books > 0 => {
                            restored = true;
                            self.metrics.seeks_from_checkpoint.inc();
                            tracing::info!(
                                round = next_index - 1,
                                books,
                                ms = started.elapsed().as_secs_f64() * 1e3,
                                "books restored from a checkpoint round"
                            );
                        }
                        outcome => {
                            // Cannot happen unless the file changed under us; a full seek
                            // rebuilds from the beginning instead.
                            tracing::error!(
                                ?outcome,
                                round = next_index - 1,
                                "checkpoint round unavailable: seeking from the start"
                            );
                            if let (mbo_feed::ResetReason::Seek { ts }, Some(replay)) =
                                (&reason, &self.hub.replay)
                            {
                                let _ =
                                    replay.commands.try_send(mbo_feed::ReplayCommand::Seek(*ts));
                            }
                        }
                    }
                }
                self.mark_reset(self.epoch + 1);
                // No `control_changed`: the reset update on every book's ring resynchronises
                // clients, and the new epoch reaches `status` with its next refresh (a
                // looping file at max pace resets hundreds of times a second).
                if self.tap.is_some() {
                    let books = if restored {
                        self.market.books().to_vec()
                    } else {
                        Vec::new()
                    };
                    self.tap(crate::tap::TapEvent::Reset {
                        epoch: self.epoch,
                        next_index,
                        books,
                    });
                }
            }
            FeedEvent::Restore {
                epoch,
                next_index,
                books,
            } => {
                tracing::info!(epoch, next_index, books = books.0.len(), "books restored");
                self.clear_market(next_index);
                for book in books.0 {
                    self.market.insert_book(book);
                }
                self.mark_reset(epoch);
                if self.tap.is_some() {
                    let books = self.market.books().to_vec();
                    self.tap(crate::tap::TapEvent::Reset {
                        epoch,
                        next_index,
                        books,
                    });
                }
            }
            FeedEvent::End => {
                self.apply_held();
                self.tap(crate::tap::TapEvent::End { epoch: self.epoch });
                // Nothing more is coming: commit the partial batch now instead of after
                // `max_age`, so the whole file is stored as soon as it is applied.
                if let Some(recorder) = &mut self.recorder {
                    if let Err(e) = recorder.flush() {
                        self.storage_failed(&e);
                    }
                }
                self.hub.control_changed();
                tracing::info!("feed reached its end");
            }
        }
    }

    /// Scans `records` for the last point where no book is inside an event, applies
    /// everything held plus the records up to it, and holds the rest.
    fn ingest(&mut self, records: Vec<MboMsg>, catch_up: bool) {
        let mut cut = if self.open.is_empty() { 0 } else { usize::MAX };
        for (i, r) in records.iter().enumerate() {
            let key = BookKey {
                instrument_id: r.hd.instrument_id,
                publisher_id: r.hd.publisher_id,
            };
            let pos = self.open.iter().position(|k| *k == key);
            if r.flags.is_last() {
                if let Some(p) = pos {
                    self.open.swap_remove(p);
                }
            } else if pos.is_none() {
                self.open.push(key);
            }
            if self.open.is_empty() {
                cut = i + 1;
            }
        }
        let held_total = self.held.len() + records.len();
        if cut == usize::MAX && held_total < MAX_HELD {
            // The whole batch continues an open event.
            self.held.extend_from_slice(&records);
            return;
        }
        let cut = if held_total >= MAX_HELD {
            records.len()
        } else {
            cut.min(records.len())
        };
        let batch = if self.held.is_empty() && cut == records.len() {
            records
        } else {
            let mut b = Vec::with_capacity(self.held.len() + cut);
            b.append(&mut self.held);
            b.extend_from_slice(&records[..cut]);
            self.held.extend_from_slice(&records[cut..]);
            b
        };
        self.apply(batch, catch_up);
    }

    fn apply_held(&mut self) {
        if !self.held.is_empty() {
            let batch = std::mem::take(&mut self.held);
            self.apply(batch, false);
        }
    }

    fn apply(&mut self, batch: Vec<MboMsg>, catch_up: bool) {
        if batch.is_empty() {
            return;
        }
        let started = Instant::now();
        let first_index = self.market.next_index();
        let mut last_key = None;
        for r in &batch {
            let applied = self.market.apply(r);
            if last_key != Some(applied.key) {
                last_key = Some(applied.key);
                if !self.touched.contains(&applied.key) {
                    self.touched.push(applied.key);
                }
            }
            if r.action as u8 == b'T' && !catch_up {
                self.trades.push(Trade {
                    key: applied.key,
                    epoch: self.epoch,
                    event_index: applied.index,
                    price: r.price,
                    size: r.size,
                    side: r.side as u8,
                    ts_event: r.hd.ts_event,
                    ts_recv: r.ts_recv,
                });
            }
        }
        self.metrics
            .apply_seconds
            .observe(started.elapsed().as_secs_f64());
        if let Some(recorder) = &mut self.recorder {
            // Blocks while the writer's queue is full: backpressure (see `storage`).
            let mut stored = recorder.record(first_index, &batch);
            if stored.is_ok() && self.open.is_empty() {
                stored = recorder.boundary(&self.market).map(|_| ());
            }
            if let Err(e) = stored {
                self.storage_failed(&e);
            }
        }
        let streamed = self.hub.mbo.receiver_count() > 0;
        if streamed || self.tap.is_some() {
            let b = Arc::new(MboBatch::new(self.epoch, first_index, unix_ns(), batch));
            if streamed {
                // No receiver left between the check and the send is harmless.
                let _ = self.hub.mbo.send(b.clone());
            }
            self.tap(crate::tap::TapEvent::Batch { batch: b, catch_up });
        }
    }

    /// Publishes a frame of each changed book, then each book's update (its frame and
    /// trades) on its ring: frames are stored before any update is sent (see the module docs
    /// of `http::stream` for why the order matters).
    fn publish(&mut self) {
        let counters = self.market.counters();
        self.metrics.record_counters(&self.last_counters, &counters);
        self.last_counters = counters;
        if self.touched.is_empty() && self.trades.is_empty() && !self.reset {
            return;
        }
        let server_ts = unix_ns();
        let mut published: Vec<(Arc<BookEntry>, Arc<BookFrame>)> =
            Vec::with_capacity(self.touched.len());
        let mut still_open = Vec::new();
        for key in std::mem::take(&mut self.touched) {
            let Some(book) = self.market.book(key) else {
                continue;
            };
            if book.state().in_event {
                still_open.push(key);
                continue;
            }
            let symbol = self.hub.feed.symbol_of(key.instrument_id);
            let frame = Arc::new(build_frame(
                book,
                symbol.clone(),
                self.epoch,
                server_ts,
                FRAME_DEPTH,
            ));
            self.metrics.record_book(&frame);
            let entry = match self.hub.directory.load().get(key) {
                Some(entry) => {
                    entry.frame.store(frame.clone());
                    entry.clone()
                }
                None => self.add_entry(key, symbol, frame.clone()),
            };
            published.push((entry, frame));
        }
        self.touched = still_open;
        if published.iter().any(|(_, f)| f.event_index.is_some())
            && self.hub.health() == Health::Starting
        {
            self.hub.set_health(Health::Ready);
            tracing::info!("ready: first event boundary published");
        }
        let reset = std::mem::replace(&mut self.reset, false);
        let mut trades = std::mem::take(&mut self.trades);
        let mut sent_trades = 0;
        for (entry, frame) in published {
            let key = entry.key;
            let mine: Vec<Trade> = trades.iter().filter(|t| t.key == key).copied().collect();
            sent_trades += mine.len();
            let trades_json = if mine.is_empty() || entry.updates.receiver_count() == 0 {
                bytes::Bytes::new()
            } else {
                crate::frame::trades_json(&mine)
            };
            let update = Update {
                epoch: self.epoch,
                server_ts,
                frame: Some(frame),
                trades: mine,
                trades_json,
                reset,
            };
            // No subscriber is fine: nobody streams this book.
            let _ = entry.updates.send(Arc::new(update));
        }
        // Trades of books still inside an event wait for the frame that holds them.
        trades.retain(|t| self.touched.contains(&t.key));
        self.trades = trades;
        self.metrics.trades.inc_by(sent_trades as u64);
        if let Some(t) = self.oldest_unpublished.take() {
            self.metrics
                .publish_seconds
                .observe(t.elapsed().as_secs_f64());
        }
    }

    /// Registers a book seen for the first time (the directory is copied: books appear
    /// rarely, readers never wait).
    fn add_entry(&self, key: BookKey, symbol: Arc<str>, frame: Arc<BookFrame>) -> Arc<BookEntry> {
        let entry = Arc::new(BookEntry::new(key, symbol, frame));
        let current = self.hub.directory.load_full();
        let mut entries = current.entries.clone();
        entries.push(entry.clone());
        entries.sort_by_key(|e| e.key);
        self.hub.directory.store(Arc::new(Directory { entries }));
        tracing::info!(
            instrument_id = key.instrument_id,
            publisher_id = key.publisher_id,
            "new book"
        );
        entry
    }

    fn answer(&mut self, req: Request) {
        let server_ts = unix_ns();
        match req {
            Request::Book { key, depth, reply } => {
                let frame = self.market.book(key).map(|b| {
                    Arc::new(build_frame(
                        b,
                        self.hub.feed.symbol_of(key.instrument_id),
                        self.epoch,
                        server_ts,
                        depth,
                    ))
                });
                let _ = reply.send(frame);
            }
            Request::Level {
                key,
                side,
                price,
                reply,
            } => {
                let queue = self.market.book(key).map(|b| LevelQueue {
                    frame: Arc::new(build_frame(
                        b,
                        self.hub.feed.symbol_of(key.instrument_id),
                        self.epoch,
                        server_ts,
                        0,
                    )),
                    side,
                    level: b.level(side, price),
                    orders: b.level_orders(side, price).collect(),
                });
                let _ = reply.send(queue);
            }
            Request::MboSnapshot { instrument, reply } => {
                let books = self
                    .market
                    .books()
                    .iter()
                    .filter(|b| instrument.is_none_or(|id| b.key().instrument_id == id))
                    .map(|b| L3Book {
                        frame: Arc::new(build_frame(
                            b,
                            self.hub.feed.symbol_of(b.key().instrument_id),
                            self.epoch,
                            server_ts,
                            0,
                        )),
                        bids: l3_side(b, Side::Bid),
                        asks: l3_side(b, Side::Ask),
                    })
                    .collect();
                let next = self.market.next_index();
                let snapshot = MboSnapshot {
                    epoch: self.epoch,
                    last_index: next.checked_sub(1),
                    server_ts,
                    books,
                    receiver: self.hub.mbo.subscribe(),
                };
                let _ = reply.send(snapshot);
            }
        }
    }
}

fn l3_side(book: &Book, side: Side) -> Vec<(LevelView, Vec<OrderView>)> {
    book.levels(side)
        .map(|l| (l, book.level_orders(side, l.price).collect()))
        .collect()
}

/// A frame of `book` with at most `depth` levels per side.
pub fn build_frame(
    book: &Book,
    symbol: Arc<str>,
    epoch: u64,
    server_ts: u64,
    depth: usize,
) -> BookFrame {
    let state = book.state();
    BookFrame {
        key: book.key(),
        symbol,
        epoch,
        event_index: state.event_index,
        ts_event: state.ts_event,
        ts_recv: state.ts_recv,
        server_ts,
        crossed: book.is_crossed(),
        maybe_bad_book: state.maybe_bad_book,
        order_count: book.order_count() as u64,
        bid_levels: book.level_count(Side::Bid) as u64,
        ask_levels: book.level_count(Side::Ask) as u64,
        bids: book.levels(Side::Bid).take(depth).collect(),
        asks: book.levels(Side::Ask).take(depth).collect(),
        json: JsonCache::default(),
    }
}
