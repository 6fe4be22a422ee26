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
use std::sync::Arc;

use mbo_store::{Recorder, RecorderOptions, SessionId, StoreError, Writer, WriterProbe};

use crate::metrics::Metrics;

/// Batches queued for the writer at most (each up to `batch_records` records).
pub const WRITER_QUEUE: usize = 16;

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
#[derive(Debug, Clone)]
pub struct Storage {
    /// The SQLite file.
    pub path: PathBuf,
    /// The session being written.
    pub session: SessionId,
    probe: WriterProbe,
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
        });
        let recorder = Recorder::new(
            writer,
            config.recorder,
            config.stored_through,
            config.last_round,
        );
        Ok((recorder, storage))
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
