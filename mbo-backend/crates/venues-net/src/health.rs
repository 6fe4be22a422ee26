//! Per-connection health, published on a `watch` channel.

use mbo_venues::ResyncReason;

/// Connection state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnState {
    /// Opening the socket (TCP, TLS, WebSocket handshake).
    #[default]
    Connecting,
    /// Subscribed, waiting for the first applied book message.
    Subscribing,
    /// At least one book message applied on this session.
    Live,
    /// Waiting before the next reconnect attempt.
    Backoff,
    /// Cancelled; the task has ended.
    Stopped,
}

/// The last gap or checksum failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GapInfo {
    /// Venue symbol.
    pub symbol: String,
    /// What the venue state machine saw.
    pub reason: ResyncReason,
    /// Receive time of the frame that showed it, nanoseconds since the Unix epoch.
    pub at_ns: u64,
}

/// Health of one venue connection. Counters are totals over the task's life.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// Current state.
    pub state: ConnState,
    /// Successful WebSocket handshakes.
    pub connects: u64,
    /// Sessions that ended (error, close, silence) and were retried.
    pub reconnects: u64,
    /// Failed attempts in a row (reset by a session that stayed up
    /// [`Backoff::stable_after`](crate::Backoff::stable_after)).
    pub consecutive_failures: u32,
    /// Text frames received (counted once handled: venue state machine, events, resync).
    pub messages: u64,
    /// Books of this connection that are live (in sync with the venue).
    pub books_live: usize,
    /// Books of this connection (symbols seen so far).
    pub books: usize,
    /// Payload bytes received (text and binary frames).
    pub bytes: u64,
    /// Resyncs requested by the venue state machine (gap, checksum, snapshot too old…).
    pub resyncs: u64,
    /// Sequence gaps seen.
    pub gaps: u64,
    /// Checksum failures seen.
    pub checksum_failures: u64,
    /// The last gap or checksum failure.
    pub last_gap: Option<GapInfo>,
    /// REST snapshots applied (Binance).
    pub snapshots_fetched: u64,
    /// Resubscriptions sent to get a fresh snapshot (Bybit, Kraken, Coinbase).
    pub resubscribes: u64,
    /// Application pings sent (Bybit, Kraken).
    pub pings_sent: u64,
    /// WebSocket pings received from the server (answered with their payload).
    pub server_pings: u64,
    /// Events dropped because the consumer's channel was full.
    pub events_dropped: u64,
    /// Raw frames dropped because the raw tap's channel was full.
    pub raw_dropped: u64,
    /// Receive time of the last frame, nanoseconds since the Unix epoch (0: none yet).
    pub last_recv_ns: u64,
    /// Receive time minus venue time of the last trade that carried one, nanoseconds (the
    /// venues put no time on every book message; clocks may disagree, so it can be negative).
    pub exchange_latency_ns: Option<i64>,
    /// Why the last session ended or the last REST fetch failed.
    pub last_error: Option<String>,
}
