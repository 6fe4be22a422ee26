//! Per-symbol sync state, counters, and the set of books a venue connection maintains.
//!
//! ## States
//!
//! * [`SyncState::Syncing`]: no trusted book yet (waiting for a snapshot, or buffering
//!   Binance diffs until the REST snapshot bridges them).
//! * [`SyncState::Live`]: every message since the snapshot passed the venue's sequence or
//!   checksum rule.
//! * [`SyncState::Stale`]: a gap or checksum failure was seen; the book is known wrong, a
//!   resync was requested and nothing is applied until the new snapshot arrives. A stale book
//!   must never be published as good.

use std::collections::HashMap;

use serde::Serialize;

use crate::book::L2Book;
use crate::decimal::format_price;

/// Trust in a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncState {
    /// No trusted book yet.
    Syncing,
    /// In sync with the venue.
    Live,
    /// Known wrong; resync requested.
    Stale,
}

/// Counters of one (venue, symbol) book. All counts are of stream messages for the symbol.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counters {
    /// Book messages received for the symbol (snapshots sent on the stream included; REST
    /// snapshots not).
    pub messages: u64,
    /// Book messages applied to the book.
    pub applied: u64,
    /// Book messages not applied: older than the snapshot, before the first snapshot, or while
    /// the book is stale.
    pub dropped: u64,
    /// Sequence gaps detected.
    pub gaps: u64,
    /// Resyncs requested (after a gap, a checksum failure, or a snapshot that does not bridge).
    pub resyncs: u64,
    /// Checksums that matched.
    pub checksum_ok: u64,
    /// Checksums that did not match.
    pub checksum_bad: u64,
    /// Applied messages after which the book was crossed (best bid ≥ best ask).
    pub crossed_events: u64,
    /// Trades received for the symbol.
    pub trades: u64,
    /// Levels skipped because their price does not fit the `i64` 1e-9 unit (beyond
    /// ±9.22e9 or finer than 1e-9). The checksum still covers the top of the book.
    pub unrepresentable_levels: u64,
    /// Bybit: messages whose cross sequence `seq` did not increase.
    pub seq_regressions: u64,
}

/// Counters of a venue connection, over all symbols.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct VenueCounters {
    /// Text frames received.
    pub frames: u64,
    /// Frames that could not be used: invalid JSON, unknown type, bad numbers, or a symbol
    /// not subscribed. Counted and skipped.
    pub bad_frames: u64,
    /// Control frames (acks, heartbeats, pongs, status) and channels not handled here.
    pub control: u64,
    /// Gaps in a connection-wide sequence (Coinbase Advanced Trade `sequence_num`).
    pub connection_gaps: u64,
}

/// One symbol's book, state and counters.
#[derive(Debug, Clone)]
pub struct SymbolBook {
    /// The venue's symbol (`BTCUSDT`, `BTC/USD`, `BTC-USD`…).
    pub symbol: String,
    /// The L2 book.
    pub book: L2Book,
    /// Trust in the book.
    pub state: SyncState,
    /// Counters.
    pub counters: Counters,
    /// Venue update id the book is at (Binance `u`, Bybit `u`); 0 when unused.
    pub last_id: u64,
    /// Depth to keep (Kraken), `None` for unlimited.
    pub depth: Option<usize>,
    /// Last cross sequence seen (Bybit `seq`).
    pub last_seq: Option<u64>,
    /// Binance: the diff that bridged the last REST snapshot, `(U, u, lastUpdateId)`.
    pub bridge: Option<(u64, u64, u64)>,
}

impl SymbolBook {
    fn new(symbol: &str) -> Self {
        Self {
            symbol: symbol.to_owned(),
            book: L2Book::new(),
            state: SyncState::Syncing,
            counters: Counters::default(),
            last_id: 0,
            depth: None,
            last_seq: None,
            bridge: None,
        }
    }

    /// Counts an applied message, and a crossed book after it.
    pub(crate) fn note_applied(&mut self) {
        self.counters.applied += 1;
        if self.book.is_crossed() {
            self.counters.crossed_events += 1;
        }
    }

    /// The end-of-replay summary line.
    #[must_use]
    pub fn summary(&self, venue: &str) -> Summary {
        use crate::book::Side;
        Summary {
            venue: venue.to_owned(),
            symbol: self.symbol.clone(),
            messages: self.counters.messages,
            applied: self.counters.applied,
            dropped: self.counters.dropped,
            gaps: self.counters.gaps,
            resyncs: self.counters.resyncs,
            checksum_ok: self.counters.checksum_ok,
            checksum_bad: self.counters.checksum_bad,
            crossed_events: self.counters.crossed_events,
            best_bid: self
                .book
                .best_bid()
                .map(|l| format_price(l.price, l.level.price_decimals)),
            best_ask: self
                .book
                .best_ask()
                .map(|l| format_price(l.price, l.level.price_decimals)),
            bid_levels: self.book.len(Side::Bid),
            ask_levels: self.book.len(Side::Ask),
            state: self.state,
        }
    }
}

/// The per-(venue, symbol) line `mbo venue-replay` prints (prices as decimal text).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Venue name.
    pub venue: String,
    /// Venue symbol.
    pub symbol: String,
    /// See [`Counters::messages`].
    pub messages: u64,
    /// See [`Counters::applied`].
    pub applied: u64,
    /// See [`Counters::dropped`].
    pub dropped: u64,
    /// See [`Counters::gaps`].
    pub gaps: u64,
    /// See [`Counters::resyncs`].
    pub resyncs: u64,
    /// See [`Counters::checksum_ok`].
    pub checksum_ok: u64,
    /// See [`Counters::checksum_bad`].
    pub checksum_bad: u64,
    /// See [`Counters::crossed_events`].
    pub crossed_events: u64,
    /// Best bid price as the venue printed it.
    pub best_bid: Option<String>,
    /// Best ask price as the venue printed it.
    pub best_ask: Option<String>,
    /// Bid levels in the final book.
    pub bid_levels: usize,
    /// Ask levels in the final book.
    pub ask_levels: usize,
    /// Final state of the book.
    pub state: SyncState,
}

impl Summary {
    /// One JSON line.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The books of one venue connection, by venue symbol.
#[derive(Debug, Clone, Default)]
pub struct Books {
    list: Vec<SymbolBook>,
    index: HashMap<String, usize>,
    /// When set, only these symbols are accepted; others are wrong-symbol bad frames.
    allowed: Option<Vec<String>>,
    last: Option<usize>,
}

impl Books {
    /// Books for any symbol the stream carries.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Books for these symbols only.
    #[must_use]
    pub fn only(symbols: &[&str]) -> Self {
        Self {
            allowed: Some(symbols.iter().map(|s| (*s).to_owned()).collect()),
            ..Self::default()
        }
    }

    /// Index of the symbol's book, created on first use; `None` for a symbol not subscribed.
    pub fn id(&mut self, symbol: &str) -> Option<usize> {
        if let Some(i) = self.last {
            if self.list[i].symbol == symbol {
                return Some(i);
            }
        }
        let i = match self.index.get(symbol) {
            Some(&i) => i,
            None => {
                if let Some(allowed) = &self.allowed {
                    if !allowed.iter().any(|s| s == symbol) {
                        return None;
                    }
                }
                self.list.push(SymbolBook::new(symbol));
                self.index.insert(symbol.to_owned(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        self.last = Some(i);
        Some(i)
    }

    /// The book at an index from [`Books::id`].
    pub(crate) fn at(&mut self, id: usize) -> &mut SymbolBook {
        &mut self.list[id]
    }

    /// A symbol's book.
    #[must_use]
    pub fn get(&self, symbol: &str) -> Option<&SymbolBook> {
        self.index.get(symbol).map(|&i| &self.list[i])
    }

    /// All books in order of first appearance.
    #[must_use]
    pub fn all(&self) -> &[SymbolBook] {
        &self.list
    }

    pub(crate) fn all_mut(&mut self) -> &mut [SymbolBook] {
        &mut self.list
    }

    /// A new connection: every book waits for its next snapshot before it is trusted again.
    pub(crate) fn mark_all_syncing(&mut self) {
        for b in &mut self.list {
            b.state = SyncState::Syncing;
        }
    }
}
