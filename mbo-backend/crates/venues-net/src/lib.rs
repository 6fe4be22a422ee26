//! # mbo-venues-net: live WebSocket/REST connections for the `mbo-venues` state machines
//!
//! One Tokio task per venue connection ([`spawn`] / [`Connection::run`]): connect, subscribe
//! ([`protocol`] builds the exact messages of `shared/docs/crypto-venues.md`), feed every text
//! frame to the venue's sans-I/O [`Venue`](mbo_venues::Venue), act on
//! [`Event::ResyncNeeded`](mbo_venues::Event) (Binance: a new REST snapshot; Bybit, Kraken,
//! Coinbase: unsubscribe + subscribe for a fresh snapshot), keep the socket alive per venue
//! (Binance: answer server pings with their payload; Bybit `{"op":"ping"}` every 20 s; Kraken
//! `{"method":"ping"}`; Coinbase: the `heartbeats` channel), and on close, error or silence
//! reconnect with jittered exponential [`Backoff`] that respects each venue's limits.
//!
//! ## Output policy
//!
//! Events go to an optional bounded `tokio::sync::mpsc` sender with `try_send`: the socket
//! reader never waits for a slow consumer. When the channel is full the event is dropped and
//! counted ([`Health::events_dropped`]); the next event delivered carries the number dropped
//! before it ([`VenueUpdate::lagged`]), so a consumer knows its view is incomplete and should
//! treat the books as unknown until their next `Snapshot` (or read the final books the task
//! returns). A closed receiver just stops delivery. Any [`EventSink`] can take the place of
//! the channel ([`Connection::with_sink`]): a consumer on the connection's own thread applies
//! the events in place, and its `frame_done` runs after each frame's last event (the server's
//! venue engine does this: no channel, no task switch). A consumer that lost events can ask
//! for fresh snapshots ([`Connection::with_resync_requests`]); after a reconnect every book
//! is announced with `Event::Reset` until its next snapshot.
//!
//! Health ([`Health`]: state, messages, bytes, reconnects, resyncs, last gap, checksum
//! failures, receive timestamps and exchange→receive latency) is published on a
//! `tokio::sync::watch` channel. Connections are independent tasks: one venue down never
//! stalls another. Shutdown: cancel the [`CancellationToken`]; the task closes its socket and
//! returns the venue state machine (its books and counters).
//!
//! A raw-frame tap ([`spawn_with`], [`Connection::with_raw_tap`]) sends every received text
//! frame and REST body with its receive time ([`RawFrame`]) to a second bounded channel, for
//! recording; same policy (`try_send`, drops counted in [`Health::raw_dropped`]).
//!
//! [`player`] is the other side: a loopback venue endpoint that plays a recording in the
//! venue's framing (WebSocket and Binance REST snapshots), for tests, benchmarks and demos.
#![deny(missing_docs)]

mod backoff;
mod config;
mod connection;
mod error;
mod health;
pub mod player;
pub mod protocol;

pub use backoff::Backoff;
pub use config::ConnectionConfig;
pub use connection::{
    spawn, spawn_with, Connection, ConnectionHandle, Delivery, EventSink, FrameDelivery,
    FrameEvents, RawFrame, RawKind, VenueUpdate,
};
pub use error::{Error, Result};
pub use health::{ConnState, GapInfo, Health};
pub use tokio_util::sync::CancellationToken;
