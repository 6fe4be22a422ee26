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

/// Result alias for store operations.
pub type Result<T> = std::result::Result<T, StoreError>;
