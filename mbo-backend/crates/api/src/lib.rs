//! # mbo-api: one shared exact market, served over HTTP and Server-Sent Events
//!
//! `mbo serve` is this crate plus a [`Feed`](mbo_feed::Feed). The pieces, in data-flow order:
//!
//! * [`engine`]: the only writer. One Tokio task owns the [`Market`](mbo_book::Market),
//!   applies every record of the feed, and publishes, once per *cycle* (one or more feed
//!   batches, at most ~1 ms of them), what readers need. It cuts its input at points where no
//!   book is inside an event, so everything it publishes describes books at an `F_LAST`
//!   boundary. Requests that need the whole L3 book (`depth=all`, a level's queue, the MBO
//!   stream's snapshot) are answered by the engine itself, between cycles, from its own
//!   `Market`: there is no lock on the book at all.
//! * [`hub`]: what the engine publishes. Per book, the latest [`frame::BookFrame`] (top
//!   [`frame::FRAME_DEPTH`] levels each side, counts, flags, positions) behind an `ArcSwap`
//!   (readers load it without locking) and a broadcast of that book's [`hub::Update`]s (its
//!   new frame and trades, once per cycle) for its streams, so a client wakes only for its
//!   own book; one broadcast of [`hub::MboBatch`]es (the raw records) for
//!   the MBO stream. Both broadcasts are bounded rings: a reader that falls behind is told how
//!   much it lost (`lagged`) and resynchronised with a snapshot; it never holds memory or
//!   slows the engine.
//! * [`http`]: the Axum router (REST, SSE, control, `/metrics`, OpenAPI, the status page).
//! * [`storage`]: the engine hands every applied record and, at boundaries, checkpoint
//!   rounds to an [`mbo_store::Recorder`] (SQLite on a writer thread, with backpressure);
//!   the history endpoints read the same file.
//! * [`metrics`]: Prometheus metrics, updated by the engine once per cycle (never per record)
//!   and by an HTTP middleware labelled by route template.
//!
//! ## Stream identity: epoch and event index
//! Every record has a stream index (its position in the source, see
//! [`mbo_feed::source`]). A feed reset (seek, loop, live reconnect) restarts indexes at 0, so
//! the engine counts resets in an *epoch*; `(epoch, event_index)` orders everything the
//! server ever published. SSE ids are `"{epoch}-{event_index}"`. They are derived from the feed
//! alone, so any process that applies the same feed (the NATS gateways of a later issue)
//! produces the same ids.
//!
//! ## Wire format (SSE)
//! Every `data:` is one JSON object whose first key is `server_ts` (Unix ns at which the server
//! made the newest state in it visible; `receive time − server_ts` is the delivery latency). Prices are
//! integers in 1e-9 units with a decimal-string twin (`price` / `price_decimal`).
//!
//! `GET /api/v1/stream?symbol=S&depth=10&interval_ms=50`:
//! * `snapshot` — the book, same object as `GET /api/v1/book/{symbol}` (first event, after a
//!   resume, after a feed reset, after `lagged`);
//! * `book` — the same shape, conflated: at most one per `interval_ms`, always the latest;
//! * `trade` — every trade (`T` record) of the book, in order, never conflated: the trades
//!   since the previous flush in one event (`{"server_ts", "symbol", ..., "count", "fields":
//!   ["event_index", "price", "size", "side", "ts_event"], "trades": [[...], ...]}`), so a
//!   busy book costs one write per interval per client, not one per trade. `server_ts` of a batched event is when its newest content was published;
//! * `status` — replay state, pace, speed, position, progress, source;
//! * `lagged` — the client fell behind the bounded ring; `skipped` says how many updates were
//!   lost; a `snapshot` follows.
//!
//! `GET /api/v1/stream/mbo?symbol=S`: `snapshot` (every resting order of the symbol's books,
//! in queue order), then `mbo` events, each a batch of records as arrays in the column order
//! given by `fields` in the snapshot; `lagged` (with `skipped` records) then a fresh
//! `snapshot` when the client falls behind.
#![deny(missing_docs)]

pub mod app;
pub mod config;
pub mod engine;
pub mod error;
pub mod frame;
pub mod http;
pub mod hub;
pub mod metrics;
pub mod storage;
pub mod tap;
pub mod venues;

pub use app::{Application, Hooks, IngestRuntime};
pub use config::ServerConfig;
