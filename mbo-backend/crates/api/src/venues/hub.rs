//! What the venue engine publishes and readers share: per normalized symbol, its books (the
//! consolidated book first, then one per venue) with their latest frames, and one broadcast
//! of updates; per venue connection, its health and latency rings.
//!
//! Everything is fixed at start (the symbols and venues come from the configuration), so
//! there is no directory to copy on write: readers index plain vectors and load frames from
//! `ArcSwap`s without locking.

use std::sync::Arc;

use arc_swap::ArcSwap;
use bytes::Bytes;
use mbo_venues::VenueKind;
use mbo_venues_net::Health;
use tokio::sync::{broadcast, watch};

use crate::venues::frame::{VenueFrame, VenueTrade, CONSOLIDATED};
use crate::venues::latency::LatencyRing;

/// Updates kept per symbol for its streams (each is one engine batch).
pub const VENUE_RING: usize = 1024;

/// One book: a venue's, or the consolidated one.
#[derive(Debug)]
pub struct VenueBookEntry {
    /// Venue name, or [`CONSOLIDATED`].
    pub venue: &'static str,
    /// The venue's symbol (`None`: consolidated).
    pub native_symbol: Option<Arc<str>>,
    /// The latest frame.
    pub frame: ArcSwap<VenueFrame>,
}

/// One normalized symbol.
#[derive(Debug)]
pub struct SymbolEntry {
    /// `BTC-USD`.
    pub symbol: Arc<str>,
    /// Index 0: the consolidated book; then one per venue, in configuration order.
    pub books: Vec<VenueBookEntry>,
    /// The updates of every book of the symbol, for its streams.
    pub updates: broadcast::Sender<Arc<VenueUpdateBatch>>,
    /// Receive → consolidated book published, ns.
    pub consolidated_latency: LatencyRing,
}

impl SymbolEntry {
    /// The book of `venue` (`consolidated` or a venue name).
    pub fn book(&self, venue: &str) -> Option<(usize, &VenueBookEntry)> {
        self.books
            .iter()
            .enumerate()
            .find(|(_, b)| b.venue.eq_ignore_ascii_case(venue))
    }

    /// The consolidated book.
    pub fn consolidated(&self) -> &VenueBookEntry {
        // Built with the consolidated book at index 0 (see `VenueHub::new`).
        &self.books[0]
    }
}

/// What one engine batch published for one symbol.
#[derive(Debug, Default)]
pub struct VenueUpdateBatch {
    /// New frames: (index into [`SymbolEntry::books`], frame).
    pub frames: Vec<(usize, Arc<VenueFrame>)>,
    /// Trades, in arrival order.
    pub trades: Vec<VenueTrade>,
}

/// One venue connection as the HTTP side sees it.
#[derive(Debug)]
pub struct ConnectionEntry {
    /// The venue.
    pub venue: VenueKind,
    /// WebSocket URL.
    pub url: String,
    /// Venue symbols subscribed.
    pub symbols: Vec<String>,
    /// Live health from the connection task.
    pub health: watch::Receiver<Health>,
    /// Receive → published, ns, per published venue book update (snapshots apart).
    pub publish_latency: LatencyRing,
    /// Receive → published, ns, for books published with a snapshot in them.
    pub snapshot_latency: LatencyRing,
    /// Venue time → receive, ns, per trade carrying a venue time.
    pub exchange_latency: LatencyRing,
    /// Messages per second over the last sampler period (`f64` bits).
    pub msgs_per_s: std::sync::atomic::AtomicU64,
}

/// Every crypto book and connection.
#[derive(Debug)]
pub struct VenueHub {
    /// Normalized symbols, in configuration order.
    pub symbols: Vec<SymbolEntry>,
    /// Venue connections, in configuration order.
    pub connections: Vec<ConnectionEntry>,
    /// The health of every connection as JSON (the `venues` array of `GET /api/v1/venues`),
    /// refreshed once a second by the sampler.
    pub health_json: ArcSwap<Bytes>,
    /// A mirror of another server's hub (a gateway's): its health is that server's
    /// `health_json`, never recomputed from the (empty) local connections.
    pub mirrored: std::sync::atomic::AtomicBool,
}

impl VenueHub {
    /// The entry of a normalized symbol (case-insensitive).
    pub fn symbol(&self, symbol: &str) -> Option<&SymbolEntry> {
        self.symbols
            .iter()
            .find(|s| s.symbol.eq_ignore_ascii_case(symbol))
    }

    /// The names of the venues, in configuration order.
    pub fn venue_names(&self) -> Vec<&'static str> {
        self.connections.iter().map(|c| c.venue.name()).collect()
    }

    /// True when `name` is the consolidated book or a configured venue.
    pub fn knows_venue(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case(CONSOLIDATED)
            || self
                .connections
                .iter()
                .any(|c| c.venue.name().eq_ignore_ascii_case(name))
    }
}
