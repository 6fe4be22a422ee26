//! What readers see of a crypto book: a [`VenueFrame`] (one venue's book, or the consolidated
//! book of a symbol, after a fully applied message) and [`VenueTrade`]s, with their JSON.
//!
//! A frame holds the best [`VENUE_FRAME_DEPTH`] levels per side; each level carries the size
//! of every venue at the price (a venue book has one). Sizes are exact: [`Qty`] in 1e-18
//! units, printed as decimal strings (they can exceed what a JSON number holds exactly).
//! Like the MBO frames, the JSON for a depth is built once by the first reader and shared.

use std::sync::Arc;

use bytes::Bytes;
use mbo_venues::Qty;
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::frame::{decimal, serialize_spread_mid, JsonCache};

/// Levels per side kept in a frame (and the deepest `depth` a request may ask for).
pub const VENUE_FRAME_DEPTH: usize = 100;

/// Venues of one symbol at most (one per [`mbo_venues::VenueKind`]).
pub const MAX_VENUES: usize = 8;

/// The venue name of a consolidated book.
pub const CONSOLIDATED: &str = "consolidated";

/// Whether a book can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookState {
    /// Waiting for a snapshot (start, reconnect): no levels are known.
    Syncing,
    /// In sync with the venue.
    Live,
    /// A gap or checksum failure showed the book is wrong; a resync is under way. The last
    /// levels are kept for display, marked stale, and left out of the consolidated book.
    Stale,
}

impl BookState {
    /// `syncing`, `live` or `stale`.
    pub fn name(self) -> &'static str {
        match self {
            BookState::Syncing => "syncing",
            BookState::Live => "live",
            BookState::Stale => "stale",
        }
    }
}

/// One price level: the total size, and which venues have size there.
///
/// Each venue's share is in the frame ([`VenueFrame::shares_of`]), not in the level: most
/// levels have one venue, and a frame is copied from the book for every message, so a level
/// stays 32 bytes instead of carrying a slot for every possible venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueLevel {
    /// Price, 1e-9 units.
    pub price: i64,
    /// Sum over venues, 1e-18 units.
    pub size: Qty,
    /// Bit `i`: venue `i` of [`VenueFrame::venues`] has size at this price.
    pub mask: u8,
    /// Consolidated frames: index of this level's first share in [`VenueFrame::shares`].
    pub first: u32,
}

/// One book after a fully applied message.
#[derive(Debug)]
pub struct VenueFrame {
    /// Normalized symbol (`BTC-USD`).
    pub symbol: Arc<str>,
    /// The venue's name, or [`CONSOLIDATED`].
    pub venue: &'static str,
    /// The venue's own symbol (`BTC/USD`); `None` for the consolidated book.
    pub native_symbol: Option<Arc<str>>,
    /// Names of the symbol's venues: the index space of [`VenueLevel::mask`] bits and of
    /// [`VenueFrame::shares_of`].
    pub venues: Arc<[&'static str]>,
    /// Bit `i` set: venue `i` contributes (consolidated: live venues; a venue book: itself
    /// when live).
    pub live_mask: u8,
    /// Publication sequence of this book (1 for its first frame).
    pub seq: u64,
    /// Unix ns at which the engine published it.
    pub server_ts: u64,
    /// Receive time (Unix ns) of the newest frame applied to it.
    pub ts_recv: u64,
    /// Trust.
    pub state: BookState,
    /// Best bid ≥ best ask: venues (bit masks) at each side's best; shown, never matched.
    pub crossed: Option<(u8, u8)>,
    /// Bid levels in the whole book.
    pub bid_levels: u64,
    /// Ask levels in the whole book.
    pub ask_levels: u64,
    /// Best bids first, at most [`VENUE_FRAME_DEPTH`].
    pub bids: Vec<VenueLevel>,
    /// Best asks first, at most [`VENUE_FRAME_DEPTH`].
    pub asks: Vec<VenueLevel>,
    /// Consolidated frames: each level's shares, one per venue bit of its mask in venue
    /// order, from the level's `first`. Empty for a venue's book (its one share is the size).
    pub shares: Vec<Qty>,
    json: JsonCache,
}

impl VenueFrame {
    /// An empty frame (a book before its first snapshot).
    pub fn empty(
        symbol: Arc<str>,
        venue: &'static str,
        native_symbol: Option<Arc<str>>,
        venues: Arc<[&'static str]>,
        state: BookState,
    ) -> Self {
        Self {
            symbol,
            venue,
            native_symbol,
            venues,
            live_mask: 0,
            seq: 0,
            server_ts: 0,
            ts_recv: 0,
            state,
            crossed: None,
            bid_levels: 0,
            ask_levels: 0,
            bids: Vec::new(),
            asks: Vec::new(),
            shares: Vec::new(),
            json: JsonCache::default(),
        }
    }

    /// The SSE id of this frame: `"0-{seq}"` (crypto books have no feed epoch).
    pub fn sse_id(&self) -> String {
        format!("0-{}", self.seq)
    }

    /// The frame's JSON with at most `depth` levels per side, built once per depth.
    pub fn json(&self, depth: usize) -> Bytes {
        self.json.get_or_build(depth, "venue frame", || {
            serde_json::to_vec(&FrameJson { f: self, depth })
        })
    }

    /// The names of the venues whose bit is set in `mask`, comma-separated.
    pub fn names(&self, mask: u8) -> String {
        let mut out = String::new();
        for (i, name) in self.venues.iter().enumerate() {
            if mask & (1 << i) != 0 {
                if !out.is_empty() {
                    out.push(',');
                }
                out.push_str(name);
            }
        }
        out
    }

    /// Each venue's size at `level`: `(venue index, size)`, by venue index.
    pub fn shares_of<'a>(
        &'a self,
        level: &'a VenueLevel,
    ) -> impl Iterator<Item = (usize, Qty)> + 'a {
        let own = self.shares.is_empty();
        (0..MAX_VENUES)
            .filter(move |i| level.mask & (1 << i) != 0)
            .enumerate()
            .map(move |(k, i)| {
                let q = if own {
                    level.size
                } else {
                    self.shares
                        .get(level.first as usize + k)
                        .copied()
                        .unwrap_or(Qty(0))
                };
                (i, q)
            })
    }
}

/// A trade of one venue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueTrade {
    /// Trade sequence of the symbol (all venues), from 1.
    pub seq: u64,
    /// The venue.
    pub venue: &'static str,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Size, 1e-18 units.
    pub size: Qty,
    /// Aggressor: `B` (buyer took the ask), `A` (seller hit the bid), `N` unknown.
    pub side: u8,
    /// Venue time, Unix ns (0: not given).
    pub venue_ts: u64,
    /// Receive time, Unix ns.
    pub recv_ns: u64,
}

/// Columns of each trade of a crypto `trade` event.
pub const VENUE_TRADE_FIELDS: [&str; 6] =
    ["event_index", "price", "size", "side", "ts_event", "venue"];

/// Appends a trade as a JSON array in [`VENUE_TRADE_FIELDS`] order.
pub fn write_venue_trade(out: &mut Vec<u8>, t: &VenueTrade) {
    let mut n = itoa::Buffer::new();
    out.push(b'[');
    out.extend_from_slice(n.format(t.seq).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(t.price).as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(t.size.format(0).as_bytes());
    out.extend_from_slice(b"\",\"");
    out.push(match t.side {
        b'B' => b'B',
        b'A' => b'A',
        _ => b'N',
    });
    out.extend_from_slice(b"\",");
    out.extend_from_slice(n.format(t.venue_ts).as_bytes());
    out.extend_from_slice(b",\"");
    // Venue names are fixed ASCII identifiers: no escaping needed.
    out.extend_from_slice(t.venue.as_bytes());
    out.extend_from_slice(b"\"]");
}

struct LevelJson<'a> {
    f: &'a VenueFrame,
    l: &'a VenueLevel,
    /// Name the venues of the level in a `venue` key (best bid/ask).
    named: bool,
}

impl Serialize for LevelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("price", &self.l.price)?;
        m.serialize_entry("price_decimal", &decimal(self.l.price))?;
        m.serialize_entry("size", &self.l.size.format(0))?;
        if self.named {
            m.serialize_entry("venue", &self.f.names(self.l.mask))?;
        }
        m.serialize_entry("venues", &ByVenue(self.f, self.l))?;
        m.end()
    }
}

struct ByVenue<'a>(&'a VenueFrame, &'a VenueLevel);

impl Serialize for ByVenue<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        for (i, q) in self.0.shares_of(self.1) {
            if let Some(name) = self.0.venues.get(i) {
                m.serialize_entry(name, &q.format(0))?;
            }
        }
        m.end()
    }
}

struct LevelsJson<'a>(&'a VenueFrame, &'a [VenueLevel]);

impl Serialize for LevelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.1.len()))?;
        for l in self.1 {
            seq.serialize_element(&LevelJson {
                f: self.0,
                l,
                named: false,
            })?;
        }
        seq.end()
    }
}

struct Crossed<'a>(&'a VenueFrame, (u8, u8));

impl Serialize for Crossed<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(2))?;
        m.serialize_entry("bid_venue", &self.0.names(self.1 .0))?;
        m.serialize_entry("ask_venue", &self.0.names(self.1 .1))?;
        m.end()
    }
}

fn best<'a>(f: &'a VenueFrame, l: &'a VenueLevel) -> LevelJson<'a> {
    LevelJson { f, l, named: true }
}

struct FrameJson<'a> {
    f: &'a VenueFrame,
    depth: usize,
}

impl Serialize for FrameJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.f;
        let bids = &f.bids[..f.bids.len().min(self.depth)];
        let asks = &f.asks[..f.asks.len().min(self.depth)];
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("server_ts", &f.server_ts)?;
        m.serialize_entry("symbol", &*f.symbol)?;
        m.serialize_entry("venue", f.venue)?;
        m.serialize_entry("native_symbol", &f.native_symbol.as_deref())?;
        m.serialize_entry("epoch", &0)?;
        m.serialize_entry("event_index", &f.seq)?;
        m.serialize_entry("ts_recv", &f.ts_recv)?;
        m.serialize_entry("state", f.state.name())?;
        m.serialize_entry("stale", &(f.state != BookState::Live))?;
        m.serialize_entry("best_bid", &f.bids.first().map(|l| best(f, l)))?;
        m.serialize_entry("best_ask", &f.asks.first().map(|l| best(f, l)))?;
        serialize_spread_mid(
            &mut m,
            f.bids.first().map(|l| l.price),
            f.asks.first().map(|l| l.price),
        )?;
        m.serialize_entry("crossed", &f.crossed.is_some())?;
        m.serialize_entry("crossed_venues", &f.crossed.map(|c| Crossed(f, c)))?;
        let live: Vec<&str> = f
            .venues
            .iter()
            .enumerate()
            .filter(|(i, _)| f.live_mask & (1 << i) != 0)
            .map(|(_, n)| *n)
            .collect();
        m.serialize_entry("venues", &live)?;
        m.serialize_entry("bid_levels", &f.bid_levels)?;
        m.serialize_entry("ask_levels", &f.ask_levels)?;
        m.serialize_entry("bids", &LevelsJson(f, bids))?;
        m.serialize_entry("asks", &LevelsJson(f, asks))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A consolidated level; its non-zero shares are appended to `shares`.
    fn level(price: i64, sizes: &[u128], shares: &mut Vec<Qty>) -> VenueLevel {
        let first = shares.len() as u32;
        let mut mask = 0;
        for (i, s) in sizes.iter().enumerate() {
            if *s > 0 {
                mask |= 1 << i;
                shares.push(Qty(*s));
            }
        }
        VenueLevel {
            price,
            size: Qty(sizes.iter().sum()),
            mask,
            first,
        }
    }

    #[test]
    fn consolidated_json_names_venues_and_keeps_sizes_exact() {
        let venues: Arc<[&'static str]> = Arc::from(vec!["kraken", "coinbase"]);
        let mut f = VenueFrame::empty(
            "BTC-USD".into(),
            CONSOLIDATED,
            None,
            venues,
            BookState::Live,
        );
        // 1.5 and 0.000000000000000001 (one 1e-18 unit: beyond any f64 digit budget).
        let mut shares = Vec::new();
        f.bids = vec![level(
            30_000_100_000_000,
            &[1_500_000_000_000_000_000, 1],
            &mut shares,
        )];
        f.asks = vec![level(
            30_000_000_000_000,
            &[0, 2_000_000_000_000_000_000],
            &mut shares,
        )];
        f.shares = shares;
        f.bid_levels = 1;
        f.ask_levels = 1;
        f.live_mask = 0b11;
        f.crossed = Some((0b11, 0b10));
        f.seq = 7;
        let v: serde_json::Value = serde_json::from_slice(&f.json(10)).unwrap();
        assert_eq!(v["venue"], "consolidated");
        assert_eq!(v["event_index"], 7);
        assert_eq!(v["bids"][0]["size"], "1.500000000000000001");
        assert_eq!(v["bids"][0]["venues"]["kraken"], "1.5");
        assert_eq!(v["bids"][0]["venues"]["coinbase"], "0.000000000000000001");
        assert_eq!(v["asks"][0]["venues"].as_object().unwrap().len(), 1);
        assert_eq!(v["best_bid"]["venue"], "kraken,coinbase");
        assert_eq!(v["best_ask"]["venue"], "coinbase");
        assert_eq!(v["best_bid"]["price_decimal"], "30000.1");
        assert_eq!(v["crossed"], true);
        assert_eq!(v["crossed_venues"]["ask_venue"], "coinbase");
        assert_eq!(v["spread"], -100_000_000);
        assert_eq!(v["mid_decimal"], "30000.05");
        assert_eq!(v["venues"], serde_json::json!(["kraken", "coinbase"]));
        assert_eq!(v["stale"], false);
    }

    #[test]
    fn trade_arrays_are_valid_json_with_exact_sizes() {
        let t = VenueTrade {
            seq: 3,
            venue: "kraken",
            price: 30_000_100_000_000,
            size: Qty(123_000_000_000_000_000),
            side: b'A',
            venue_ts: 9,
            recv_ns: 10,
        };
        let mut out = Vec::new();
        write_venue_trade(&mut out, &t);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!([3, 30_000_100_000_000i64, "0.123", "A", 9, "kraken"])
        );
    }
}
