//! # mbo-cluster: one ingest, many gateways, on NATS JetStream
//!
//! `mbo serve --role all` (the default) is one process and never touches NATS. Past one
//! machine, `--role ingest` runs the feed, the exact books and storage exactly as `all`
//! does and publishes what its engine applied; any number of `--role gateway` processes
//! follow it and serve the same HTTP API. This crate is both sides of that protocol.
//!
//! ## The idea: gateways apply the same records
//! A gateway does not receive books: it receives the ingest's **applied record batches**
//! (whole events, in engine order, with their epoch and first index) and applies them with
//! the same engine. Its books therefore equal the ingest's at every event index, its L3
//! queues, trades and MBO stream are the same, and its SSE ids (`"{epoch}-{index}"`) are
//! the same, so a client can move between replicas with `Last-Event-ID`. To start (or after
//! any gap) a gateway loads a **snapshot round** (every book's exact L3 state at one index)
//! and follows the batches after it.
//!
//! ## Streams and subjects (created by the ingest at start; see [`wire`])
//! | stream | subjects | kept | content |
//! |---|---|---|---|
//! | `MBO_RECORDS` | `mbo.records` | 10 min; 256 MiB in memory (default) or 1 GiB on file (`--nats-storage`) | `records` batches (block-encoded, the storage format), `reset` and `end` markers, headers `Mbo-Kind`, `Mbo-Epoch`, `Mbo-Index`, `Mbo-Count`, `Mbo-Catch-Up`, `Mbo-Applied-Ns` |
//! | `MBO_SNAPSHOTS` | `mbo.snapshot.{instrument}.{publisher}`, `mbo.snapshot.round` | last per subject, file | one message per book (the checkpoint encoding of the storage crate) tagged `Mbo-Round: {epoch}.{next_index}`, then the round's marker (JSON: epoch, next index, books, last records sequence) |
//! | `MBO_BOOKS` | `mbo.book.{instrument}` | as `MBO_RECORDS` | per book and batch, the levels each event changed and its trades (JSON, see [`book_changes`]) for L2 consumers; gateways do not need them |
//! | `MBO_STATUS` | `mbo.status` | last, file | the ingest's status (JSON) every second and on every replay change |
//!
//! Crypto venue books go over core NATS (`mbo.venue.{symbol index}`, `mbo.venue.health`; see
//! [`venue_relay`]): whole frames, so a gateway's mirror repairs itself.
//!
//! Request/reply (core NATS): `mbo.ctl.snapshot` publishes a round now and names it;
//! `mbo.ctl.http` carries a gateway's forwarded HTTP request (history, replay commands) to
//! the ingest's own router.
//!
//! ## Ordering, idempotency, backpressure
//! * The ingest publishes from a [`mbo_api::tap::Tap`]: the engine hands over each batch as
//!   it applies it; when the publisher is behind, the engine waits (the feed slows down,
//!   nothing is dropped). Publishing is pipelined (acks awaited in a window).
//! * Every message has a `Nats-Msg-Id` built from `(kind, epoch, index)`: a message
//!   republished after a NATS reconnect is de-duplicated by JetStream. An ingest that
//!   restarts starts at an epoch above every epoch already in the streams, so its ids never
//!   collide with its predecessor's and gateways see a new epoch (a reset) rather than a
//!   rewind.
//! * A gateway checks that each batch starts exactly where the previous one ended (same
//!   epoch, `first_index == expected`); anything else is a gap: it marks itself `stale`,
//!   asks for a fresh round and resynchronises. It never serves a book it knows is wrong.
//!
//! ## Modules
//! * [`wire`]: names, headers, payloads.
//! * [`book_changes`]: the per-instrument level changes.
//! * [`ingest`]: stream setup, the publisher (with its replica of the market for rounds),
//!   status, and the request/reply services.
//! * [`gateway`]: the follower (a [`mbo_feed::Feed`] fed from NATS), health, forwarding.
//! * [`http_forward`]: HTTP requests over NATS request/reply, both ends.
//! * [`venue_relay`]: the crypto venue books, published by the ingest, mirrored by gateways
//!   (core NATS, whole frames; see the module).
//! * [`metrics`]: the `mbo_cluster_*` metrics.
#![deny(missing_docs)]

pub mod book_changes;
pub mod gateway;
pub mod http_forward;
pub mod ingest;
pub mod metrics;
pub mod venue_relay;
pub mod wire;

use std::time::Duration;

/// Errors of the scale-out roles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClusterError {
    /// NATS could not be reached or refused a request.
    #[error("NATS: {0}")]
    Nats(String),
    /// A message did not follow the protocol (corrupt or from an incompatible version).
    #[error("protocol: {0}")]
    Protocol(String),
    /// A gateway found a hole in the sequence of batches.
    #[error("gap: expected epoch {epoch} index {expected}, got epoch {got_epoch} index {got}")]
    Gap {
        /// Epoch followed.
        epoch: u64,
        /// Index expected next.
        expected: u64,
        /// Epoch received.
        got_epoch: u64,
        /// Index received.
        got: u64,
    },
    /// The ingest reset with restored books: a round of `epoch` is needed.
    #[error("the ingest restored books at epoch {0}: resynchronising from its round")]
    NeedRound(u64),
    /// Shutting down.
    #[error("stopped")]
    Stopped,
}

impl ClusterError {
    /// From any NATS client error.
    pub fn nats(e: impl std::fmt::Display) -> Self {
        Self::Nats(e.to_string())
    }
}

/// Connects to NATS, retrying in the background when the server is not up yet, and
/// reconnecting forever after a loss.
///
/// # Errors
/// [`ClusterError::Nats`] for an unusable URL.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, ClusterError> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(Duration::from_secs(2))
        .request_timeout(Some(Duration::from_secs(10)))
        .event_callback(|event| async move {
            tracing::info!(%event, "nats");
        })
        .connect(url)
        .await
        .map_err(|e| ClusterError::Nats(format!("{url}: {e}")))
}

/// Unix time in ns.
pub fn unix_ns() -> u64 {
    mbo_api::engine::unix_ns()
}
