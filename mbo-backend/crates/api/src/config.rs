//! Server settings (what `mbo serve` resolved from defaults, `.env`, `MBO_*` and flags).

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// A secret that never prints.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret's text, for comparison only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Settings of the HTTP side of the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on (port 0: any free port).
    pub bind: SocketAddr,
    /// Concurrent SSE streams at most; more get 503 with `Retry-After`.
    pub max_streams: usize,
    /// Bearer token for replay control; without one, control is accepted from loopback only.
    pub control_token: Option<Secret>,
    /// Directory of the dashboard's static files, served at `/` when it exists.
    pub static_dir: Option<PathBuf>,
    /// Longest wait for connections to finish at shutdown.
    pub shutdown_timeout: Duration,
    /// Interval of SSE keep-alive comments.
    pub keep_alive: Duration,
    /// Store the feed in SQLite (`None`: storage off).
    pub storage: Option<crate::storage::StorageConfig>,
    /// Crypto venues to run beside the MBO feed (`None`: none).
    pub venues: Option<crate::venues::VenueConfig>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_streams: 10_000,
            control_token: None,
            static_dir: None,
            shutdown_timeout: Duration::from_secs(10),
            keep_alive: Duration::from_secs(15),
            storage: None,
            venues: None,
        }
    }
}
