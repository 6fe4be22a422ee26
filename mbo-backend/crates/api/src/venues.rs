//! # Crypto venues in the server: live L2 books beside the MBO feed
//!
//! `mbo serve --venues kraken,coinbase --symbols BTC-USD,ETH-USD` starts one
//! [`mbo_venues_net`] connection task per venue and one [`engine::VenueEngine`] on a
//! dedicated thread with its own single-threaded Tokio runtime (like the MBO ingest): the
//! socket reads, the parsing and the publishing never wait behind HTTP clients, and a frame
//! goes from the socket to the published book without crossing threads. With
//! `--venue-busy-poll` a task that only yields keeps that runtime polling its sockets instead
//! of sleeping between messages: one core always busy, for messages that find warm caches
//! (measured with `mbo venue-bench --busy-poll`: the p50 35% lower at 1,000 msg/s).
//!
//! Data flow: each connection task parses a frame and applies its events to the engine in
//! place ([`engine::InlineEngine`]), which publishes at the end of the frame: per book the
//! latest [`frame::VenueFrame`] behind an `ArcSwap`, per symbol one broadcast of
//! [`hub::VenueUpdateBatch`]es, read by REST and SSE ([`crate::http::venues`]). No channel
//! and no task switch lie between the socket read and the published book. A sampler task
//! copies each connection's health into the `mbo_venue_*` metrics and the health JSON once a
//! second ([`health`]).
//!
//! ## HTTP surface (same event types as the MBO streams)
//! * `GET /api/v1/venues`: `{"server_ts","symbols":[..],"venues":[health..]}`.
//! * `GET /api/v1/instruments`: crypto books are listed with their `venue`
//!   (`consolidated` or a venue name) and `native_symbol`.
//! * `GET /api/v1/book/{symbol}?venue=V&depth=N`: a crypto book (`venue` absent and the
//!   symbol not an MBO book: the consolidated book). Sizes are exact decimal strings; each
//!   level names each venue's size (`venues`); `state` is `live`, `syncing` or `stale`.
//! * `GET /api/v1/stream?symbol=S&venue=V`: one crypto book: `snapshot`, `book` (conflated
//!   to `interval_ms`), `trade`, `status` (the venues' health, every second), `lagged`.
//! * `GET /api/v1/stream/venues?symbol=S`: every book of the symbol in one stream (what the
//!   dashboard's venues view reads): `snapshot`/`book` per book (each names its `venue`),
//!   `trade` of all venues, `health` every second, `lagged`.

pub mod engine;
pub mod frame;
pub mod health;
pub mod hub;
pub mod latency;
pub mod metrics;
pub mod mirror;
pub mod top;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use mbo_venues::{SymbolMap, VenueKind};
use mbo_venues_net::{Connection, ConnectionConfig};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::venues::engine::{InlineEngine, Layout, VenueEngine};
use crate::venues::frame::{BookState, VenueFrame, CONSOLIDATED, MAX_VENUES};
use crate::venues::hub::{ConnectionEntry, SymbolEntry, VenueBookEntry, VenueHub, VENUE_RING};
use crate::venues::latency::LatencyRing;
use crate::venues::metrics::VenueMetrics;

/// What `mbo serve` resolved for the venues.
#[derive(Debug, Clone)]
pub struct VenueConfig {
    /// Venues, in display order (at most one connection per protocol).
    pub venues: Vec<VenueKind>,
    /// Normalized symbols (`BTC-USD`).
    pub symbols: Vec<String>,
    /// Normalized → venue symbols (the default map plus overrides).
    pub symbol_map: SymbolMap,
    /// WebSocket URL overrides.
    pub ws_urls: Vec<(VenueKind, String)>,
    /// REST URL overrides (Binance snapshots).
    pub rest_urls: Vec<(VenueKind, String)>,
    /// Book depth subscribed (`None`: each venue's default).
    pub depth: Option<usize>,
    /// Coinbase: the legacy Exchange feed instead of Advanced Trade.
    pub coinbase_legacy: bool,
    /// Keep the venue thread polling instead of sleeping between messages (one core busy
    /// all the time; a message then finds warm caches and an awake thread).
    pub busy_poll: bool,
}

/// A venue configuration that cannot run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VenueError {
    /// No symbol given.
    #[error("no symbols for the venues (give --venue-symbols, e.g. BTC-USD,ETH-USD)")]
    NoSymbols,
    /// The same venue twice.
    #[error("venue {0} is listed twice")]
    Duplicate(VenueKind),
    /// More venues than a frame can name.
    #[error("at most {MAX_VENUES} venues")]
    TooMany,
    /// No mapping for a symbol on a venue.
    #[error("no {venue} symbol for {symbol}: add --symbol-map {venue}:{symbol}=NATIVE")]
    Unmapped {
        /// Venue.
        venue: VenueKind,
        /// Normalized symbol.
        symbol: String,
    },
    /// The connection cannot be created (an unsupported venue, a TLS setup error).
    #[error("{0}")]
    Connection(#[from] mbo_venues_net::Error),
    /// Metrics registration failed (a bug).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The venue thread or runtime could not start.
    #[error("venue runtime: {0}")]
    Runtime(#[from] std::io::Error),
}

/// The running venues: their hub, and the thread that runs them.
#[derive(Debug)]
pub struct Venues {
    /// What readers use.
    pub hub: Arc<VenueHub>,
    cancel: CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Venues {
    /// Starts the connections, the engine and the sampler on a new thread. Stops when
    /// `shutdown` is cancelled (or on drop).
    ///
    /// # Errors
    /// [`VenueError`] for a configuration that cannot run.
    pub fn start(
        config: &VenueConfig,
        registry: &prometheus::Registry,
        shutdown: &CancellationToken,
    ) -> Result<Self, VenueError> {
        if config.symbols.is_empty() {
            return Err(VenueError::NoSymbols);
        }
        if config.venues.len() > MAX_VENUES {
            return Err(VenueError::TooMany);
        }
        for (i, v) in config.venues.iter().enumerate() {
            if config.venues[..i].contains(v) {
                return Err(VenueError::Duplicate(*v));
            }
        }
        let metrics = VenueMetrics::register(registry)?;
        let mut connections = Vec::new();
        let mut tasks = Vec::new();
        let mut natives: Vec<Vec<Arc<str>>> = Vec::new();
        let mut truncate = Vec::new();
        let mut resync = Vec::new();
        for &venue in &config.venues {
            let mut symbols = Vec::new();
            for s in &config.symbols {
                let native = config.symbol_map.native(venue.name(), s).ok_or_else(|| {
                    VenueError::Unmapped {
                        venue,
                        symbol: s.clone(),
                    }
                })?;
                symbols.push(native.to_owned());
            }
            let refs: Vec<&str> = symbols.iter().map(String::as_str).collect();
            let mut cfg = ConnectionConfig::new(venue, &refs)?;
            if venue == VenueKind::Coinbase && config.coinbase_legacy {
                cfg = cfg.coinbase_legacy();
            }
            if let Some((_, url)) = config.ws_urls.iter().find(|(v, _)| *v == venue) {
                cfg.ws_url.clone_from(url);
            }
            if let Some((_, url)) = config.rest_urls.iter().find(|(v, _)| *v == venue) {
                cfg.rest_url.clone_from(url);
            }
            cfg.depth = config.depth;
            truncate.push((venue == VenueKind::Kraken).then(|| cfg.book_depth()));
            let url = cfg.ws_url.clone();
            let (conn, health) = Connection::new(cfg, None)?;
            let (resync_tx, resync_rx) = mpsc::channel(64);
            tasks.push(conn.with_resync_requests(resync_rx));
            resync.push(Some(resync_tx));
            natives.push(symbols.iter().map(|s| Arc::from(s.as_str())).collect());
            connections.push(ConnectionEntry {
                venue,
                url,
                symbols,
                health,
                publish_latency: LatencyRing::default(),
                snapshot_latency: LatencyRing::default(),
                exchange_latency: LatencyRing::default(),
                msgs_per_s: std::sync::atomic::AtomicU64::new(0),
            });
        }
        let (hub, layout) = build_hub(&config.symbols, connections, &natives);
        hub.health_json.store(Arc::new(health::health_json(&hub)));
        let engine = InlineEngine(Arc::new(Mutex::new(
            VenueEngine::new(hub.clone(), metrics.clone(), &layout, &truncate).with_resync(resync),
        )));
        let tasks: Vec<Connection> = tasks
            .into_iter()
            .map(|c| c.with_sink(Box::new(engine.clone())))
            .collect();
        let cancel = shutdown.child_token();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let busy_poll = config.busy_poll;
        let thread = {
            let cancel = cancel.clone();
            let hub = hub.clone();
            std::thread::Builder::new()
                .name("mbo-venues".into())
                .spawn(move || {
                    rt.block_on(async move {
                        let mut running = Vec::new();
                        for conn in tasks {
                            running.push(tokio::spawn(conn.run(cancel.clone())));
                        }
                        tokio::spawn(health::sample(
                            hub,
                            metrics,
                            Duration::from_secs(1),
                            cancel.clone(),
                        ));
                        if busy_poll {
                            tokio::spawn(spin(cancel.clone()));
                        }
                        cancel.cancelled().await;
                        for t in running {
                            let _ = t.await;
                        }
                    });
                })?
        };
        Ok(Self {
            hub,
            cancel,
            thread: Some(thread),
        })
    }
}

/// Busy polling: a task that only yields, so the runtime never sleeps in the I/O driver;
/// between its turns the runtime checks the sockets without blocking.
async fn spin(cancel: CancellationToken) {
    while !cancel.is_cancelled() {
        tokio::task::yield_now().await;
    }
}

/// The hub of `symbols` over `connections` (`natives[c][s]`: connection `c`'s symbol for
/// `symbols[s]`), and where each venue book lives for the engine.
pub fn build_hub(
    symbols: &[String],
    connections: Vec<ConnectionEntry>,
    natives: &[Vec<Arc<str>>],
) -> (Arc<VenueHub>, Layout) {
    let venue_names: Arc<[&'static str]> = connections.iter().map(|c| c.venue.name()).collect();
    let mut layout: Layout = Vec::new();
    let symbols: Vec<SymbolEntry> = symbols
        .iter()
        .enumerate()
        .map(|(si, s)| {
            let symbol: Arc<str> = Arc::from(s.as_str());
            let mut books = vec![VenueBookEntry {
                venue: CONSOLIDATED,
                native_symbol: None,
                frame: ArcSwap::from_pointee(VenueFrame::empty(
                    symbol.clone(),
                    CONSOLIDATED,
                    None,
                    venue_names.clone(),
                    BookState::Syncing,
                )),
            }];
            for (ci, c) in connections.iter().enumerate() {
                let native = natives[ci][si].clone();
                layout.push((ci, native.clone(), si, books.len()));
                books.push(VenueBookEntry {
                    venue: c.venue.name(),
                    native_symbol: Some(native.clone()),
                    frame: ArcSwap::from_pointee(VenueFrame::empty(
                        symbol.clone(),
                        c.venue.name(),
                        Some(native),
                        venue_names.clone(),
                        BookState::Syncing,
                    )),
                });
            }
            let (updates, _) = broadcast::channel(VENUE_RING);
            SymbolEntry {
                symbol,
                books,
                updates,
                consolidated_latency: LatencyRing::default(),
            }
        })
        .collect();
    let hub = Arc::new(VenueHub {
        symbols,
        connections,
        health_json: ArcSwap::from_pointee(Bytes::from_static(b"[]")),
        mirrored: std::sync::atomic::AtomicBool::new(false),
    });
    (hub, layout)
}

impl Drop for Venues {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
