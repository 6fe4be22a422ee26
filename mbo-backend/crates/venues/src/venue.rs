//! The [`Venue`] trait every venue module implements, and the registry of venues.
//!
//! A venue is a sans-I/O state machine: the I/O layer hands it each text frame received on
//! the WebSocket ([`Venue::on_frame`]) and, for venues that need one (Binance), each REST
//! snapshot body ([`Venue::on_rest_snapshot`]); it reacts to [`Event::ResyncNeeded`] by
//! fetching a snapshot or resubscribing. Bad frames are counted in [`VenueCounters`] and
//! skipped; no input can make a venue panic.

use std::fmt;
use std::str::FromStr;

use crate::event::Event;
use crate::state::{Books, VenueCounters};
use crate::{binance, bybit, coinbase, kraken};

/// A venue's parser and book synchroniser.
pub trait Venue {
    /// The venue's name (`binance`, `bybit`, `kraken`, `coinbase`…).
    fn name(&self) -> &'static str;

    /// Handles one WebSocket text frame, appending the resulting events to `out`.
    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>);

    /// Handles a REST order-book snapshot body for `symbol` (venues whose protocol has one).
    /// The default counts it as a bad frame.
    fn on_rest_snapshot(&mut self, symbol: &str, body: &str, out: &mut Vec<Event>) {
        let _ = (symbol, body, out);
        self.counters_mut().bad_frames += 1;
    }

    /// The connection was re-established: every book waits for a new snapshot.
    fn on_reconnect(&mut self);

    /// The books.
    fn books(&self) -> &Books;

    /// Connection counters.
    fn counters(&self) -> &VenueCounters;

    /// Connection counters, mutable.
    fn counters_mut(&mut self) -> &mut VenueCounters;
}

/// The venues and protocol variants this crate speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VenueKind {
    /// Binance spot (and Binance US, same protocol): diff depth + REST snapshot, `U == u + 1`.
    Binance,
    /// Binance USD-M futures: diff depth + REST snapshot, `pu == previous u`.
    BinanceFutures,
    /// Bybit v5 `orderbook.{depth}.{symbol}`.
    Bybit,
    /// Kraken spot WebSocket v2 `book`.
    Kraken,
    /// Kraken spot WebSocket v1 (array envelope).
    KrakenV1,
    /// Coinbase Advanced Trade `level2`, and the legacy Exchange `level2` format.
    Coinbase,
}

impl VenueKind {
    /// All kinds.
    pub const ALL: [VenueKind; 6] = [
        VenueKind::Binance,
        VenueKind::BinanceFutures,
        VenueKind::Bybit,
        VenueKind::Kraken,
        VenueKind::KrakenV1,
        VenueKind::Coinbase,
    ];

    /// The name used on the command line and in summaries.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            VenueKind::Binance => "binance",
            VenueKind::BinanceFutures => "binance-futures",
            VenueKind::Bybit => "bybit",
            VenueKind::Kraken => "kraken",
            VenueKind::KrakenV1 => "kraken-v1",
            VenueKind::Coinbase => "coinbase",
        }
    }

    /// A new state machine for this venue.
    #[must_use]
    pub fn create(self, options: &VenueOptions) -> Box<dyn Venue + Send> {
        match self {
            VenueKind::Binance => Box::new(binance::Binance::spot(options.books())),
            VenueKind::BinanceFutures => Box::new(binance::Binance::futures(options.books())),
            VenueKind::Bybit => Box::new(bybit::Bybit::new(options.books())),
            VenueKind::Kraken => Box::new(kraken::KrakenV2::new(
                options.books(),
                options.depth.unwrap_or(kraken::DEFAULT_DEPTH),
                options.precision,
            )),
            VenueKind::KrakenV1 => Box::new(kraken::KrakenV1::new(options.books())),
            VenueKind::Coinbase => Box::new(coinbase::Coinbase::new(options.books())),
        }
    }
}

impl fmt::Display for VenueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown venue name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown venue {0:?} (known: binance, binance-us, binance-futures, bybit, kraken, kraken-v1, coinbase)")]
pub struct UnknownVenue(pub String);

impl FromStr for VenueKind {
    type Err = UnknownVenue;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "binance" | "binance-us" | "binance_us" => VenueKind::Binance,
            "binance-futures" | "binance_futures" => VenueKind::BinanceFutures,
            "bybit" => VenueKind::Bybit,
            "kraken" | "kraken-v2" => VenueKind::Kraken,
            "kraken-v1" => VenueKind::KrakenV1,
            "coinbase" => VenueKind::Coinbase,
            _ => return Err(UnknownVenue(s.to_owned())),
        })
    }
}

/// Decimals a venue prints prices and sizes with (Kraken's `instrument` channel gives them;
/// recordings re-serialised through floats lose trailing zeros, so they must be given).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Precision {
    /// Price decimals.
    pub price: u8,
    /// Size decimals.
    pub qty: u8,
}

/// Options shared by all venues.
#[derive(Debug, Clone, Default)]
pub struct VenueOptions {
    /// Symbols subscribed; frames for other symbols are bad frames. Empty: accept all.
    pub symbols: Vec<String>,
    /// Book depth subscribed (Kraken v2; v1 takes it from the channel name).
    pub depth: Option<usize>,
    /// Printed decimals (Kraken v2).
    pub precision: Option<Precision>,
}

impl VenueOptions {
    fn books(&self) -> Books {
        if self.symbols.is_empty() {
            Books::new()
        } else {
            let s: Vec<&str> = self.symbols.iter().map(String::as_str).collect();
            Books::only(&s)
        }
    }
}
