//! One book per normalized symbol over several venues, and the symbol map behind it.
//!
//! ## Design
//!
//! * [`SymbolMap`] maps a normalized symbol (`BTC-USD`) to each venue's own (`BTCUSDT` on
//!   Binance and Bybit, `BTC/USD` on Kraken v2, `XBT/USD` on Kraken v1, `BTC-USD` on
//!   Coinbase); [`SymbolMap::default`] holds common pairs, [`SymbolMap::insert`] overrides.
//!   USD maps to USDT on Binance and Bybit by default (their liquid USD market).
//! * [`ConsolidatedBook`] keeps, per side, a `BTreeMap<price, per-venue sizes>`; a venue's
//!   contribution is replaced wholesale from its [`SymbolBook`] ([`ConsolidatedBook::update`])
//!   or level by level ([`ConsolidatedBook::set`]). A venue book that is not live is removed:
//!   a book known to be wrong is never shown as good.
//! * Crossed consolidated books (one venue's bid ≥ another's ask: an arbitrage) are reported
//!   with the venues involved ([`ConsolidatedBook::crossed`]) and never filtered.

use std::collections::{BTreeMap, HashMap};

use crate::book::Side;
use crate::decimal::Qty;
use crate::state::{SymbolBook, SyncState};

/// Normalized ↔ venue symbol map.
#[derive(Debug, Clone)]
pub struct SymbolMap {
    to_venue: HashMap<(String, String), String>,
    to_normal: HashMap<(String, String), String>,
}

impl Default for SymbolMap {
    fn default() -> Self {
        let mut m = Self {
            to_venue: HashMap::new(),
            to_normal: HashMap::new(),
        };
        for base in [
            "BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "LTC", "DOT", "LINK",
        ] {
            let normal = format!("{base}-USD");
            m.insert("binance", &normal, &format!("{base}USDT"));
            m.insert("binance-futures", &normal, &format!("{base}USDT"));
            m.insert("bybit", &normal, &format!("{base}USDT"));
            m.insert("kraken", &normal, &format!("{base}/USD"));
            let v1 = if base == "BTC" { "XBT" } else { base };
            m.insert("kraken-v1", &normal, &format!("{v1}/USD"));
            m.insert("coinbase", &normal, &normal);
        }
        m
    }
}

impl SymbolMap {
    /// An empty map.
    #[must_use]
    pub fn empty() -> Self {
        Self {
            to_venue: HashMap::new(),
            to_normal: HashMap::new(),
        }
    }

    /// Maps `normal` on `venue` to `native` (replacing any earlier mapping of either).
    pub fn insert(&mut self, venue: &str, normal: &str, native: &str) {
        if let Some(old) = self
            .to_venue
            .insert((venue.to_owned(), normal.to_owned()), native.to_owned())
        {
            self.to_normal.remove(&(venue.to_owned(), old));
        }
        self.to_normal
            .insert((venue.to_owned(), native.to_owned()), normal.to_owned());
    }

    /// The venue's symbol for a normalized one.
    #[must_use]
    pub fn native(&self, venue: &str, normal: &str) -> Option<&str> {
        self.to_venue
            .get(&(venue.to_owned(), normal.to_owned()))
            .map(String::as_str)
    }

    /// The normalized symbol for a venue's.
    #[must_use]
    pub fn normalize(&self, venue: &str, native: &str) -> Option<&str> {
        self.to_normal
            .get(&(venue.to_owned(), native.to_owned()))
            .map(String::as_str)
    }
}

/// A consolidated level, borrowed: price (1e-9 units) and `(venue index, size)` by venue.
pub type SharesAt<'a> = (i64, &'a [(usize, Qty)]);

/// One consolidated level: the size each venue shows at the price.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsolidatedLevel {
    /// Price, 1e-9 units.
    pub price: i64,
    /// `(venue index, size)` for each venue with size at the price, by venue index.
    pub sizes: Vec<(usize, Qty)>,
}

impl ConsolidatedLevel {
    /// Sum of the venues' sizes (saturating at `u128::MAX`, beyond any real market).
    #[must_use]
    pub fn total(&self) -> Qty {
        Qty(self
            .sizes
            .iter()
            .fold(0u128, |a, (_, q)| a.saturating_add(q.0)))
    }
}

/// A crossed consolidated book: the best bid (on `bid_venues`) is at or above the best ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossed {
    /// Best bid price.
    pub bid: i64,
    /// Best ask price.
    pub ask: i64,
    /// Venues at the best bid.
    pub bid_venues: Vec<usize>,
    /// Venues at the best ask.
    pub ask_venues: Vec<usize>,
}

/// The consolidated book of one normalized symbol.
#[derive(Debug, Clone, Default)]
pub struct ConsolidatedBook {
    venues: Vec<String>,
    bids: BTreeMap<i64, Vec<(usize, Qty)>>,
    asks: BTreeMap<i64, Vec<(usize, Qty)>>,
}

impl ConsolidatedBook {
    /// An empty book.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Index of a venue, added on first use.
    pub fn venue(&mut self, name: &str) -> usize {
        if let Some(i) = self.venues.iter().position(|v| v == name) {
            return i;
        }
        self.venues.push(name.to_owned());
        self.venues.len() - 1
    }

    /// Venue names by index.
    #[must_use]
    pub fn venues(&self) -> &[String] {
        &self.venues
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, Vec<(usize, Qty)>> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Sets a venue's size at a price (zero removes the venue from the level).
    pub fn set(&mut self, venue: usize, side: Side, price: i64, qty: Qty) {
        let map = self.side_mut(side);
        let sizes = map.entry(price).or_default();
        match sizes.binary_search_by_key(&venue, |(v, _)| *v) {
            Ok(i) if qty.is_zero() => {
                sizes.remove(i);
            }
            Ok(i) => sizes[i].1 = qty,
            Err(_) if qty.is_zero() => {}
            Err(i) => sizes.insert(i, (venue, qty)),
        }
        if sizes.is_empty() {
            map.remove(&price);
        }
    }

    /// Removes every level of a venue.
    pub fn clear_venue(&mut self, venue: usize) {
        for map in [&mut self.bids, &mut self.asks] {
            map.retain(|_, sizes| {
                sizes.retain(|(v, _)| *v != venue);
                !sizes.is_empty()
            });
        }
    }

    /// Replaces a venue's contribution with its book; a book that is not live contributes
    /// nothing.
    pub fn update(&mut self, venue: &str, book: &SymbolBook) {
        let v = self.venue(venue);
        self.clear_venue(v);
        if book.state != SyncState::Live {
            return;
        }
        for side in [Side::Bid, Side::Ask] {
            for l in book.book.levels(side) {
                self.set(v, side, l.price, l.level.qty);
            }
        }
    }

    fn view((&price, sizes): (&i64, &Vec<(usize, Qty)>)) -> ConsolidatedLevel {
        ConsolidatedLevel {
            price,
            sizes: sizes.clone(),
        }
    }

    /// Best bid with the venues there.
    #[must_use]
    pub fn best_bid(&self) -> Option<ConsolidatedLevel> {
        self.bids.last_key_value().map(Self::view)
    }

    /// Best ask with the venues there.
    #[must_use]
    pub fn best_ask(&self) -> Option<ConsolidatedLevel> {
        self.asks.first_key_value().map(Self::view)
    }

    /// Levels of a side from the best outwards.
    #[must_use]
    pub fn levels(&self, side: Side, n: usize) -> Vec<ConsolidatedLevel> {
        match side {
            Side::Bid => self.bids.iter().rev().take(n).map(Self::view).collect(),
            Side::Ask => self.asks.iter().take(n).map(Self::view).collect(),
        }
    }

    /// Price levels on a side.
    #[must_use]
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// Whether both sides are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// Levels of a side from the best outwards, borrowed (`(price, (venue, size) by
    /// venue index)`): what a publisher copies from without allocating per level.
    pub fn iter_side(&self, side: Side) -> Box<dyn Iterator<Item = SharesAt<'_>> + '_> {
        match side {
            Side::Bid => Box::new(self.bids.iter().rev().map(|(p, v)| (*p, v.as_slice()))),
            Side::Ask => Box::new(self.asks.iter().map(|(p, v)| (*p, v.as_slice()))),
        }
    }

    /// The crossing, when the best bid is at or above the best ask.
    #[must_use]
    pub fn crossed(&self) -> Option<Crossed> {
        let (b, a) = (self.best_bid()?, self.best_ask()?);
        (b.price >= a.price).then(|| Crossed {
            bid: b.price,
            ask: a.price,
            bid_venues: b.sizes.iter().map(|(v, _)| *v).collect(),
            ask_venues: a.sizes.iter().map(|(v, _)| *v).collect(),
        })
    }
}
