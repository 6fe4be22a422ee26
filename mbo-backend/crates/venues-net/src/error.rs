//! The crate's error type.

use mbo_venues::VenueKind;

/// Why a connection attempt or session ended (the task logs it, records it in
/// [`Health::last_error`](crate::Health::last_error) and reconnects).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The venue kind has no live connector here (Kraken v1 is replay-only).
    #[error("venue {0} has no live connector")]
    Unsupported(VenueKind),
    /// WebSocket handshake or transport error.
    #[error("websocket: {0}")]
    WebSocket(#[from] Box<tokio_tungstenite::tungstenite::Error>),
    /// REST request error.
    #[error("rest: {0}")]
    Http(#[from] reqwest::Error),
    /// The connect (TCP + TLS + WebSocket handshake) did not finish in time.
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(std::time::Duration),
    /// Nothing was received for the silence timeout.
    #[error("no message for {0:?}")]
    Silence(std::time::Duration),
    /// The session reached [`ConnectionConfig::max_session`](crate::ConnectionConfig) and is
    /// renewed.
    #[error("session renewed after {0:?}")]
    SessionExpired(std::time::Duration),
    /// The server closed the connection (close frame, end of stream, or Binance
    /// `serverShutdown`).
    #[error("closed by the server")]
    Closed,
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}

/// Result alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;
