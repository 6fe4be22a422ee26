//! What readers see of a book and of the tape: [`BookFrame`]s (a book at an event boundary),
//! [`Trade`]s, and their JSON.
//!
//! A frame is built by the engine once per cycle for each book that changed, and shared
//! (`Arc`) by the REST handlers and every SSE client. Its JSON for a given depth is built by
//! the first reader that asks and cached in the frame, so a thousand clients at the same
//! depth cost one serialisation.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mbo_book::{write_price, BookKey, LevelView, Side};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};

/// Levels per side the engine copies into every frame. Streams and `GET /book` with a depth up
/// to this are served from frames without touching the engine; `depth=all` (or deeper) asks
/// the engine for a complete frame.
pub const FRAME_DEPTH: usize = 100;

/// One book at an event boundary, as published by the engine.
#[derive(Debug)]
pub struct BookFrame {
    /// The book.
    pub key: BookKey,
    /// Its symbol (the instrument id as text when the feed gave no symbol).
    pub symbol: Arc<str>,
    /// Feed epoch (incremented on every feed reset).
    pub epoch: u64,
    /// Stream index of the book's last `F_LAST` record (`None`: no boundary yet).
    pub event_index: Option<u64>,
    /// `ts_event` (ns) of the book's last record.
    pub ts_event: u64,
    /// `ts_recv` (ns) of the book's last record.
    pub ts_recv: u64,
    /// Unix ns at which the engine published this frame.
    pub server_ts: u64,
    /// Best bid ≥ best ask (shown as is, never matched away).
    pub crossed: bool,
    /// The publisher flagged a possible gap that no clear has repaired.
    pub maybe_bad_book: bool,
    /// Resting orders, both sides.
    pub order_count: u64,
    /// Bid price levels in the whole book.
    pub bid_levels: u64,
    /// Ask price levels in the whole book.
    pub ask_levels: u64,
    /// Best bids first; at most [`FRAME_DEPTH`] unless `complete`.
    pub bids: Vec<LevelView>,
    /// Best asks first; at most [`FRAME_DEPTH`] unless `complete`.
    pub asks: Vec<LevelView>,
    /// JSON by requested depth, filled by the first reader of each.
    pub(crate) json: JsonCache,
}

/// A frame's JSON by requested depth (`usize::MAX` = all); at most a few depths are cached.
#[derive(Debug, Default)]
pub(crate) struct JsonCache(Mutex<Vec<(usize, Bytes)>>);

impl BookFrame {
    /// An empty frame (a book known by name before its first record).
    pub fn empty(key: BookKey, symbol: Arc<str>, epoch: u64, server_ts: u64) -> Self {
        Self {
            key,
            symbol,
            epoch,
            event_index: None,
            ts_event: 0,
            ts_recv: 0,
            server_ts,
            crossed: false,
            maybe_bad_book: false,
            order_count: 0,
            bid_levels: 0,
            ask_levels: 0,
            bids: Vec::new(),
            asks: Vec::new(),
            json: JsonCache::default(),
        }
    }

    /// True when the frame holds every level of both sides.
    pub fn is_complete(&self) -> bool {
        self.bids.len() as u64 == self.bid_levels && self.asks.len() as u64 == self.ask_levels
    }

    /// True when the frame can answer a request for `depth` levels per side.
    pub fn covers(&self, depth: usize) -> bool {
        self.is_complete() || depth <= FRAME_DEPTH
    }

    /// `(epoch, event_index)` ordering key; books without a boundary sort first.
    pub fn position(&self) -> (u64, Option<u64>) {
        (self.epoch, self.event_index)
    }

    /// The SSE id of this frame: `"{epoch}-{event_index}"` (`"{epoch}-"` before any boundary).
    pub fn sse_id(&self) -> String {
        sse_id(self.epoch, self.event_index)
    }

    /// The frame's JSON with at most `depth` levels per side (`usize::MAX`: all it holds),
    /// built once per depth and shared.
    pub fn json(&self, depth: usize) -> Bytes {
        self.json.get_or_build(depth, "book frame", || {
            serde_json::to_vec(&BookJson { frame: self, depth })
        })
    }
}

impl JsonCache {
    /// The JSON for `depth`, serialised by `build` on the first call and shared after (a
    /// few depths at most are kept). Serialising plain integers and strings cannot fail; an
    /// empty object would only hide a bug, so a failure is logged, naming `what`.
    pub(crate) fn get_or_build(
        &self,
        depth: usize,
        what: &str,
        build: impl FnOnce() -> serde_json::Result<Vec<u8>>,
    ) -> Bytes {
        if let Ok(cache) = self.0.lock() {
            if let Some((_, b)) = cache.iter().find(|(d, _)| *d == depth) {
                return b.clone();
            }
        }
        let bytes = match build() {
            Ok(v) => Bytes::from(v),
            Err(e) => {
                tracing::error!(error = %e, what, "frame serialisation failed");
                Bytes::from_static(b"{}")
            }
        };
        if let Ok(mut cache) = self.0.lock() {
            if cache.len() < 8 && !cache.iter().any(|(d, _)| *d == depth) {
                cache.push((depth, bytes.clone()));
            }
        }
        bytes
    }
}

/// `"{epoch}-{event_index}"`.
pub fn sse_id(epoch: u64, event_index: Option<u64>) -> String {
    match event_index {
        Some(i) => format!("{epoch}-{i}"),
        None => format!("{epoch}-"),
    }
}

/// One trade print (a `T` record) of a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// The book.
    pub key: BookKey,
    /// Feed epoch.
    pub epoch: u64,
    /// Stream index of the `T` record.
    pub event_index: u64,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Quantity.
    pub size: u32,
    /// Aggressor side: `B` (buyer lifted the ask), `A` (seller hit the bid) or `N`.
    pub side: u8,
    /// `ts_event` (ns).
    pub ts_event: u64,
    /// `ts_recv` (ns).
    pub ts_recv: u64,
}

/// Columns of each trade in a `trade` event, in order.
pub const TRADE_FIELDS: [&str; 5] = ["event_index", "price", "size", "side", "ts_event"];

/// Appends a trade as a JSON array in [`TRADE_FIELDS`] order:
/// `[event_index, price (1e-9), size, "B"|"A"|"N", ts_event]`. Arrays, not objects: a busy
/// book sends thousands of trades a second to every client, and the names would be most of
/// the bytes.
pub fn write_trade_json(out: &mut Vec<u8>, t: &Trade) {
    let mut n = itoa::Buffer::new();
    out.push(b'[');
    out.extend_from_slice(n.format(t.event_index).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(t.price).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(t.size).as_bytes());
    out.extend_from_slice(b",\"");
    out.extend_from_slice(side_code(t.side).as_bytes());
    out.extend_from_slice(b"\",");
    out.extend_from_slice(n.format(t.ts_event).as_bytes());
    out.push(b']');
}

/// The comma-separated JSON arrays of `trades` (see [`write_trade_json`]).
pub fn trades_json(trades: &[Trade]) -> Bytes {
    let mut out = Vec::with_capacity(trades.len() * 56);
    for (i, t) in trades.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_trade_json(&mut out, t);
    }
    Bytes::from(out)
}

/// `"B"`, `"A"` or `"N"` for a DBN side byte.
pub fn side_code(side: u8) -> &'static str {
    match side {
        b'B' => "B",
        b'A' => "A",
        _ => "N",
    }
}

/// The side letter of a book side.
pub fn side_letter(side: Side) -> &'static str {
    match side {
        Side::Bid => "B",
        Side::Ask => "A",
    }
}

/// Exact decimal form of a 1e-9 price.
pub fn decimal(price: i64) -> String {
    let mut s = String::with_capacity(24);
    write_price(&mut s, price);
    s
}

/// Exact decimal form of half of `sum` 1e-9 units (a mid price may fall on half a unit).
fn half_decimal(sum: i128) -> String {
    let half = sum.div_euclid(2);
    let odd = sum.rem_euclid(2) == 1;
    // `half` is within i64 because it is the mean of two i64 prices.
    let half64 = i64::try_from(half).unwrap_or(if half < 0 { i64::MIN } else { i64::MAX });
    let mut s = String::with_capacity(26);
    if !odd {
        write_price(&mut s, half64);
        return s;
    }
    // x + 0.5e-9: print with all nine decimals of x, then the 5.
    let neg = half < 0;
    // For negative odd sums, half = floor(sum/2) so the value is half + 0.5 = -(|half| - 0.5).
    let (int_part, frac9, tail) = if neg {
        let abs = (-(half + 1)) as u128; // |value| = abs + 0.5e-9
        (abs / 1_000_000_000, abs % 1_000_000_000, 5)
    } else {
        let abs = half as u128;
        (abs / 1_000_000_000, abs % 1_000_000_000, 5)
    };
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "{}{int_part}.{frac9:09}{tail}",
        if neg { "-" } else { "" }
    );
    s
}

/// The `spread`, `spread_decimal`, `mid` and `mid_decimal` entries of a book object (all
/// `null` unless both sides have a best level). Shared by MBO and crypto books.
pub(crate) fn serialize_spread_mid<M: SerializeMap>(
    m: &mut M,
    best_bid: Option<i64>,
    best_ask: Option<i64>,
) -> Result<(), M::Error> {
    match (best_bid, best_ask) {
        (Some(b), Some(a)) => {
            let spread = i128::from(a) - i128::from(b);
            let sum = i128::from(a) + i128::from(b);
            // A spread of two i64 prices fits i64 unless the book is absurd; saturate.
            let spread64 = i64::try_from(spread).unwrap_or(i64::MAX);
            m.serialize_entry("spread", &spread64)?;
            m.serialize_entry("spread_decimal", &decimal(spread64))?;
            let mid = i64::try_from(sum.div_euclid(2)).unwrap_or(i64::MAX);
            m.serialize_entry("mid", &mid)?;
            m.serialize_entry("mid_decimal", &half_decimal(sum))
        }
        _ => {
            m.serialize_entry("spread", &None::<i64>)?;
            m.serialize_entry("spread_decimal", &None::<String>)?;
            m.serialize_entry("mid", &None::<i64>)?;
            m.serialize_entry("mid_decimal", &None::<String>)
        }
    }
}

/// A level's JSON object.
struct LevelJson<'a>(&'a LevelView);

impl Serialize for LevelJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("price", &self.0.price)?;
        m.serialize_entry("price_decimal", &decimal(self.0.price))?;
        m.serialize_entry("size", &self.0.size)?;
        m.serialize_entry("orders", &self.0.count)?;
        m.end()
    }
}

struct LevelsJson<'a>(&'a [LevelView]);

impl Serialize for LevelsJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for l in self.0 {
            seq.serialize_element(&LevelJson(l))?;
        }
        seq.end()
    }
}

/// The book object of `GET /api/v1/book/{symbol}` and of `snapshot`/`book` events.
struct BookJson<'a> {
    frame: &'a BookFrame,
    depth: usize,
}

impl Serialize for BookJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let f = self.frame;
        let bids = &f.bids[..f.bids.len().min(self.depth)];
        let asks = &f.asks[..f.asks.len().min(self.depth)];
        let best_bid = f.bids.first();
        let best_ask = f.asks.first();
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("server_ts", &f.server_ts)?;
        m.serialize_entry("symbol", &*f.symbol)?;
        m.serialize_entry("instrument_id", &f.key.instrument_id)?;
        m.serialize_entry("publisher_id", &f.key.publisher_id)?;
        m.serialize_entry("epoch", &f.epoch)?;
        m.serialize_entry("event_index", &f.event_index)?;
        m.serialize_entry("ts_event", &f.ts_event)?;
        m.serialize_entry("ts_recv", &f.ts_recv)?;
        m.serialize_entry("best_bid", &best_bid.map(LevelJson))?;
        m.serialize_entry("best_ask", &best_ask.map(LevelJson))?;
        serialize_spread_mid(&mut m, best_bid.map(|l| l.price), best_ask.map(|l| l.price))?;
        m.serialize_entry("crossed", &f.crossed)?;
        m.serialize_entry("maybe_bad_book", &f.maybe_bad_book)?;
        m.serialize_entry("orders", &f.order_count)?;
        m.serialize_entry("bid_levels", &f.bid_levels)?;
        m.serialize_entry("ask_levels", &f.ask_levels)?;
        m.serialize_entry("bids", &LevelsJson(bids))?;
        m.serialize_entry("asks", &LevelsJson(asks))?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn frame(bids: &[(i64, u64)], asks: &[(i64, u64)]) -> BookFrame {
        let lv = |v: &[(i64, u64)]| {
            v.iter()
                .map(|&(price, size)| LevelView {
                    price,
                    size,
                    count: 1,
                })
                .collect::<Vec<_>>()
        };
        let key = BookKey {
            instrument_id: 7,
            publisher_id: 1,
        };
        let mut f = BookFrame::empty(key, "X".into(), 0, 5);
        f.bids = lv(bids);
        f.asks = lv(asks);
        f.bid_levels = bids.len() as u64;
        f.ask_levels = asks.len() as u64;
        f.event_index = Some(3);
        f
    }

    #[test]
    fn half_units_print_exactly() {
        assert_eq!(half_decimal(3), "0.0000000015");
        assert_eq!(half_decimal(4), "0.000000002");
        assert_eq!(half_decimal(129_340_000_001), "64.6700000005");
        assert_eq!(half_decimal(-3), "-0.0000000015");
        assert_eq!(half_decimal(-4), "-0.000000002");
    }

    #[test]
    fn book_json_has_server_ts_first_and_exact_mid() {
        let f = frame(&[(64_670_000_000, 5)], &[(64_680_000_000, 2)]);
        let text = String::from_utf8(f.json(10).to_vec()).unwrap();
        assert!(text.starts_with("{\"server_ts\":5,"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["spread"], 10_000_000);
        assert_eq!(v["mid_decimal"], "64.675");
        assert_eq!(v["best_bid"]["price_decimal"], "64.67");
        assert_eq!(v["bids"][0]["orders"], 1);
        assert_eq!(v["event_index"], 3);
    }

    #[test]
    fn empty_and_one_sided_books_have_null_spread() {
        let f = frame(&[(1, 1)], &[]);
        let v: serde_json::Value = serde_json::from_slice(&f.json(10)).unwrap();
        assert!(v["spread"].is_null());
        assert!(v["best_ask"].is_null());
        assert_eq!(v["asks"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn trades_serialise_as_valid_json_objects() {
        let key = BookKey {
            instrument_id: 7,
            publisher_id: 1,
        };
        let t = Trade {
            key,
            epoch: 2,
            event_index: 9,
            price: 64_675_000_000,
            size: 3,
            side: b'A',
            ts_event: 1,
            ts_recv: 2,
        };
        let joined = trades_json(&[
            t,
            Trade {
                event_index: 10,
                side: 0,
                ..t
            },
        ]);
        let v: serde_json::Value =
            serde_json::from_slice(&[b"[", &joined[..], b"]"].concat()).unwrap();
        assert_eq!(v[0], serde_json::json!([9, 64_675_000_000i64, 3, "A", 1]));
        assert_eq!(v[1][3], "N");
        assert_eq!(v[1][0], 10);
    }

    #[test]
    fn depth_truncates_and_is_cached_per_depth() {
        let f = frame(&[(3, 1), (2, 1), (1, 1)], &[(4, 1), (5, 1)]);
        let one: serde_json::Value = serde_json::from_slice(&f.json(1)).unwrap();
        assert_eq!(one["bids"].as_array().unwrap().len(), 1);
        assert_eq!(one["bid_levels"], 3);
        let a = f.json(1);
        let b = f.json(1);
        assert_eq!(a.as_ptr(), b.as_ptr(), "second read must hit the cache");
    }
}
