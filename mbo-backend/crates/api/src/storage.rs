//! Storage wiring: the engine's [`Recorder`] and what the HTTP side needs to read history.
//!
//! The caller (`mbo serve`) opens the database and picks the feed session (it must know the
//! session before the feed starts, to resume). [`StorageConfig`] carries that choice here;
//! [`Storage::start`] spawns the writer thread with an observer feeding the storage metrics
//! and returns the recorder the engine owns plus a [`Storage`] handle for readers.
//!
//! Why the engine records from its own thread with a *blocking* send: the engine runs on the
//! dedicated ingest thread ([`crate::IngestRuntime`]), so a full writer queue stops exactly
//! the feed and the engine — ingestion slows to SQLite's pace (backpressure, counted in
//! `mbo_storage_backpressure_seconds_total`) — while HTTP clients, on other threads, keep
//! being served from the last published state.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use mbo_store::query::HistoryReader;
use mbo_store::{Recorder, RecorderOptions, SessionId, StoreError, Writer, WriterProbe};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics::Metrics;

/// Batches queued for the writer at most (each up to `batch_records` records).
pub const WRITER_QUEUE: usize = 8;
/// History reads (time travel, trades, bars, a history stream's pages) running at once at
/// most: each holds a blocking thread and a SQLite connection.
pub const MAX_READERS: usize = 4;
/// Longest a history read waits for a free reader before the client is told to retry.
pub const READER_WAIT: Duration = Duration::from_secs(5);

/// Why a history read failed.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Every reader stayed busy for [`READER_WAIT`].
    #[error("every history reader is busy; retry shortly")]
    Busy,
    /// The store answered an error.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The blocking task died (a bug).
    #[error("history read task failed")]
    Task,
}

/// Where and how the server stores its feed.
#[derive(Debug, Clone)]
pub struct StorageConfig {
    /// The SQLite file (created if missing).
    pub path: PathBuf,
    /// The feed session the records belong to (from `Store::session`).
    pub session: SessionId,
    /// The session's last stored index at start (records up to it are not sent again).
    pub stored_through: Option<u64>,
    /// The session's last checkpoint round at start.
    pub last_round: Option<u64>,
    /// Batching and checkpoint settings.
    pub recorder: RecorderOptions,
}

/// What readers (history endpoints, metrics) know about the storage.
#[derive(Debug)]
pub struct Storage {
    /// The SQLite file.
    pub path: PathBuf,
    /// The session being written.
    pub session: SessionId,
    probe: WriterProbe,
    /// Idle read connections, reused (opening one costs a file open and a schema check).
    idle: Mutex<Vec<HistoryReader>>,
    permits: Arc<Semaphore>,
}

impl Storage {
    /// Starts the writer thread; returns the recorder for the engine and the readers' handle.
    ///
    /// # Errors
    /// Opening the database or starting the thread.
    pub fn start(
        config: &StorageConfig,
        metrics: &Arc<Metrics>,
    ) -> Result<(Recorder, Arc<Storage>), StoreError> {
        let observer_metrics = Arc::clone(metrics);
        let writer = Writer::spawn_observed(
            &config.path,
            config.session,
            WRITER_QUEUE,
            Box::new(move |report| observer_metrics.record_storage_batch(report)),
        )?;
        let storage = Arc::new(Storage {
            path: config.path.clone(),
            session: config.session,
            probe: writer.probe(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        });
        let recorder = Recorder::new(
            writer,
            config.recorder,
            config.stored_through,
            config.last_round,
        );
        Ok((recorder, storage))
    }

    /// Waits (at most [`READER_WAIT`]) for one of the [`MAX_READERS`] read slots.
    ///
    /// # Errors
    /// [`ReadError::Busy`] when none frees up in time.
    pub async fn read_slot(&self) -> Result<OwnedSemaphorePermit, ReadError> {
        match tokio::time::timeout(READER_WAIT, Arc::clone(&self.permits).acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(ReadError::Busy),
        }
    }

    /// Runs `f` with a read connection on a blocking thread, holding `slot` (from
    /// [`Storage::read_slot`]). The connection returns to the pool afterwards.
    ///
    /// # Errors
    /// The store's error, or [`ReadError::Task`].
    pub async fn read_with<T, F>(
        self: &Arc<Self>,
        slot: OwnedSemaphorePermit,
        f: F,
    ) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&HistoryReader, SessionId) -> Result<T, StoreError> + Send + 'static,
    {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = me.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
            let reader = match pooled {
                Some(r) => r,
                None => HistoryReader::open(&me.path)?,
            };
            let out = f(&reader, me.session);
            me.idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(reader);
            Ok(out?)
        })
        .await
        .map_err(|_| ReadError::Task)?
    }

    /// [`Storage::read_with`] after waiting for a slot.
    ///
    /// # Errors
    /// As both.
    pub async fn read<T, F>(self: &Arc<Self>, f: F) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&HistoryReader, SessionId) -> Result<T, StoreError> + Send + 'static,
    {
        let slot = self.read_slot().await?;
        self.read_with(slot, f).await
    }

    /// Batches waiting for the writer.
    pub fn queue_depth(&self) -> u64 {
        self.probe.queue_depth()
    }

    /// Seconds the ingest spent blocked on a full writer queue.
    pub fn backpressure_seconds(&self) -> f64 {
        self.probe.blocked_time().as_secs_f64()
    }

    /// Size of the database file plus its WAL, bytes (0 for a file that cannot be read).
    pub fn db_bytes(&self) -> u64 {
        let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        size(&self.path) + size(std::path::Path::new(&wal))
    }
}
