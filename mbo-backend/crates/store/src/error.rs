//! The crate's one error type.

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database was written by a newer version of mbo (its schema is unknown here).
    #[error("database schema version {found} is newer than this build supports ({supported})")]
    SchemaTooNew {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The writer thread has stopped (after an error already reported, or a panic).
    #[error("the store writer has stopped")]
    WriterStopped,
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread: {0}")]
    Spawn(#[source] std::io::Error),
    /// Reading a source file (to hash it) failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A checkpoint blob is malformed.
    #[error("corrupt checkpoint: {0}")]
    Checkpoint(&'static str),
    /// An event block is malformed (see [`crate::blocks`]).
    #[error("corrupt event block: {0}")]
    Block(&'static str),
    /// A reader was asked to open a database file that does not exist (readers never create
    /// one).
    #[error("no database at {}", path.display())]
    NoDatabase {
        /// The path given.
        path: std::path::PathBuf,
    },
    /// A reader found a schema version other than the one this build reads (readers do not
    /// migrate: open the file with [`crate::Store`] once to bring it up to date).
    #[error(
        "database schema version {found} is not the version this build reads ({expected}); \
         open it with the store (which migrates) first"
    )]
    SchemaMismatch {
        /// `PRAGMA user_version` of the file.
        found: i64,
        /// [`crate::schema::CURRENT_VERSION`].
        expected: i64,
    },
    /// A time-travel request for a time older than the session's retention horizon: the
    /// events needed to rebuild the book there have been deleted.
    #[error(
        "ts_recv {ts} is before the retention horizon of session {session}: {}",
        horizon_text(.horizon)
    )]
    BeforeHorizon {
        /// The session (`feed_sessions.id`).
        session: i64,
        /// The requested time (ns since the epoch).
        ts: u64,
        /// `ts_recv` of the earliest checkpoint round a book can still be rebuilt from
        /// (`None`: no usable round remains).
        horizon: Option<u64>,
    },
    /// A query's parameters are invalid (e.g. a zero bar interval).
    #[error("invalid query: {0}")]
    InvalidQuery(&'static str),
    /// A retention policy string could not be parsed.
    #[error("invalid retention policy {input:?}: {reason}")]
    InvalidRetention {
        /// The text given.
        input: String,
        /// What is wrong with it, and what is expected.
        reason: String,
    },
    /// The retention thread could not be started.
    #[error("cannot start the retention thread: {0}")]
    RetentionSpawn(#[source] std::io::Error),
}

fn horizon_text(horizon: &Option<u64>) -> String {
    match horizon {
        Some(h) => format!("the earliest time still available is ts_recv {h}"),
        None => "no checkpoint round to rebuild from remains".to_owned(),
    }
}

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, StoreError>;
