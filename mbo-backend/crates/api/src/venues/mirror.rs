//! The crypto venue books of one server carried to another (a scale-out gateway).
//!
//! A gateway has no venue connections: it builds the same [`VenueHub`] layout as its ingest
//! ([`MirrorLayout`], sent in the ingest's status) and applies the ingest's published
//! updates to it ([`apply_update`]): the frames exactly as the ingest published them (same
//! levels, sizes, states, sequence numbers) and its trades. Frames are whole books, so a
//! lost update is repaired by the next frame of that book, and the ingest also sends every
//! book's current frame once a second ([`encode_full`]). The connections' health is the
//! ingest's health JSON, stored as is.
//!
//! Encoding: little-endian, fixed widths, every length checked when decoding; a corrupt
//! message is an error, never a panic.

use std::sync::Arc;

use bytes::Bytes;
use mbo_venues::{Qty, VenueKind};
use serde::{Deserialize, Serialize};

use crate::venues::frame::{BookState, VenueFrame, VenueLevel, VenueTrade};
use crate::venues::hub::{ConnectionEntry, VenueHub, VenueUpdateBatch};
use crate::venues::latency::LatencyRing;

/// What a hub looks like: enough to build an identical empty one elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MirrorLayout {
    /// Normalized symbols, in order.
    pub symbols: Vec<String>,
    /// Venue names, in connection order.
    pub venues: Vec<String>,
    /// Per venue, its WebSocket URL.
    pub urls: Vec<String>,
    /// Per venue, per symbol, the venue's own symbol.
    pub natives: Vec<Vec<String>>,
}

/// Why a mirrored update could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("mirrored venue update: {0}")]
pub struct MirrorError(pub &'static str);

impl MirrorLayout {
    /// The layout of `hub`.
    pub fn of(hub: &VenueHub) -> Self {
        let symbols = hub.symbols.iter().map(|s| s.symbol.to_string()).collect();
        let venues = hub
            .connections
            .iter()
            .map(|c| c.venue.name().to_owned())
            .collect();
        let urls = hub.connections.iter().map(|c| c.url.clone()).collect();
        let natives = (0..hub.connections.len())
            .map(|ci| {
                hub.symbols
                    .iter()
                    .map(|s| {
                        s.books
                            .get(ci + 1)
                            .and_then(|b| b.native_symbol.as_deref())
                            .unwrap_or_default()
                            .to_owned()
                    })
                    .collect()
            })
            .collect();
        Self {
            symbols,
            venues,
            urls,
            natives,
        }
    }

    /// An empty hub with this layout, without connections of its own.
    ///
    /// # Errors
    /// An unknown venue name, or natives that do not match the symbols.
    pub fn build(&self) -> Result<Arc<VenueHub>, MirrorError> {
        let mut connections = Vec::new();
        let mut natives = Vec::new();
        for (ci, name) in self.venues.iter().enumerate() {
            let venue: VenueKind = name.parse().map_err(|_| MirrorError("unknown venue"))?;
            let n = self.natives.get(ci).ok_or(MirrorError("natives missing"))?;
            if n.len() != self.symbols.len() {
                return Err(MirrorError("natives do not match the symbols"));
            }
            // The ingest's health JSON is what is served; this watch only fills the entry.
            let (_, health) = tokio::sync::watch::channel(mbo_venues_net::Health::default());
            connections.push(ConnectionEntry {
                venue,
                url: self.urls.get(ci).cloned().unwrap_or_default(),
                symbols: n.clone(),
                health,
                publish_latency: LatencyRing::default(),
                snapshot_latency: LatencyRing::default(),
                exchange_latency: LatencyRing::default(),
                msgs_per_s: std::sync::atomic::AtomicU64::new(0),
            });
            natives.push(n.iter().map(|s| Arc::from(s.as_str())).collect());
        }
        let hub = crate::venues::build_hub(&self.symbols, connections, &natives).0;
        hub.mirrored
            .store(true, std::sync::atomic::Ordering::Relaxed);
        Ok(hub)
    }
}

fn put_u8(out: &mut Vec<u8>, v: u8) {
    out.push(v);
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_i64(out: &mut Vec<u8>, v: i64) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u128(out: &mut Vec<u8>, v: u128) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn state_code(s: BookState) -> u8 {
    match s {
        BookState::Syncing => 0,
        BookState::Live => 1,
        BookState::Stale => 2,
    }
}

fn put_frame(out: &mut Vec<u8>, book: usize, f: &VenueFrame) {
    put_u32(out, len32(book));
    put_u8(out, f.live_mask);
    put_u64(out, f.seq);
    put_u64(out, f.server_ts);
    put_u64(out, f.ts_recv);
    put_u8(out, state_code(f.state));
    match f.crossed {
        Some((b, a)) => out.extend_from_slice(&[1, b, a]),
        None => out.extend_from_slice(&[0, 0, 0]),
    }
    put_u64(out, f.bid_levels);
    put_u64(out, f.ask_levels);
    for side in [&f.bids, &f.asks] {
        put_u32(out, len32(side.len()));
        for l in side {
            put_i64(out, l.price);
            put_u128(out, l.size.0);
            put_u8(out, l.mask);
            put_u32(out, l.first);
        }
    }
    put_u32(out, len32(f.shares.len()));
    for s in &f.shares {
        put_u128(out, s.0);
    }
}

/// Encodes one published batch of the symbol `symbol` (its index in the hub).
pub fn encode_update(symbol: usize, batch: &VenueUpdateBatch, hub: &VenueHub, out: &mut Vec<u8>) {
    out.clear();
    put_u32(out, len32(symbol));
    put_u32(out, len32(batch.frames.len()));
    for (book, f) in &batch.frames {
        put_frame(out, *book, f);
    }
    put_u32(out, len32(batch.trades.len()));
    for t in &batch.trades {
        let venue = hub
            .connections
            .iter()
            .position(|c| c.venue.name() == t.venue)
            .unwrap_or(usize::MAX);
        put_u64(out, t.seq);
        put_u32(out, len32(venue));
        put_i64(out, t.price);
        put_u128(out, t.size.0);
        put_u8(out, t.side);
        put_u64(out, t.venue_ts);
        put_u64(out, t.recv_ns);
    }
}

/// Every book's current frame of the symbol `symbol`, no trades.
pub fn encode_full(symbol: usize, hub: &VenueHub, out: &mut Vec<u8>) {
    let batch = VenueUpdateBatch {
        frames: hub.symbols.get(symbol).map_or_else(Vec::new, |s| {
            s.books
                .iter()
                .enumerate()
                .map(|(i, b)| (i, b.frame.load_full()))
                .collect()
        }),
        trades: Vec::new(),
    };
    encode_update(symbol, &batch, hub, out);
}

struct Reader<'a> {
    data: &'a [u8],
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], MirrorError> {
        let (head, rest) = self
            .data
            .split_first_chunk::<N>()
            .ok_or(MirrorError("truncated"))?;
        self.data = rest;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, MirrorError> {
        Ok(self.take::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, MirrorError> {
        Ok(u32::from_le_bytes(self.take()?))
    }
    fn u64(&mut self) -> Result<u64, MirrorError> {
        Ok(u64::from_le_bytes(self.take()?))
    }
    fn i64(&mut self) -> Result<i64, MirrorError> {
        Ok(i64::from_le_bytes(self.take()?))
    }
    fn u128(&mut self) -> Result<u128, MirrorError> {
        Ok(u128::from_le_bytes(self.take()?))
    }
    /// A count of items of at least `min` bytes each that the rest can hold.
    fn count(&mut self, min: usize) -> Result<usize, MirrorError> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.data.len() {
            return Err(MirrorError("count larger than the message"));
        }
        Ok(n)
    }
}

/// Decodes an update and applies it to `hub`: frames stored, the batch broadcast to the
/// symbol's streams.
///
/// # Errors
/// [`MirrorError`] for a corrupt message or one that does not fit the hub's layout.
pub fn apply_update(hub: &VenueHub, data: &[u8]) -> Result<(), MirrorError> {
    let mut r = Reader { data };
    let si = r.u32()? as usize;
    let entry = hub.symbols.get(si).ok_or(MirrorError("unknown symbol"))?;
    let mut batch = VenueUpdateBatch::default();
    for _ in 0..r.count(60)? {
        let bi = r.u32()? as usize;
        let book = entry.books.get(bi).ok_or(MirrorError("unknown book"))?;
        let current = book.frame.load();
        let live_mask = r.u8()?;
        let seq = r.u64()?;
        let server_ts = r.u64()?;
        let ts_recv = r.u64()?;
        let state = match r.u8()? {
            0 => BookState::Syncing,
            1 => BookState::Live,
            2 => BookState::Stale,
            _ => return Err(MirrorError("unknown book state")),
        };
        let crossed = match r.take::<3>()? {
            [0, _, _] => None,
            [_, b, a] => Some((b, a)),
        };
        let mut f = VenueFrame::empty(
            entry.symbol.clone(),
            book.venue,
            book.native_symbol.clone(),
            current.venues.clone(),
            state,
        );
        f.live_mask = live_mask;
        f.seq = seq;
        f.server_ts = server_ts;
        f.ts_recv = ts_recv;
        f.crossed = crossed;
        f.bid_levels = r.u64()?;
        f.ask_levels = r.u64()?;
        for side in 0..2 {
            let n = r.count(29)?;
            let mut levels = Vec::with_capacity(n);
            for _ in 0..n {
                levels.push(VenueLevel {
                    price: r.i64()?,
                    size: Qty(r.u128()?),
                    mask: r.u8()?,
                    first: r.u32()?,
                });
            }
            if side == 0 {
                f.bids = levels;
            } else {
                f.asks = levels;
            }
        }
        let n = r.count(16)?;
        f.shares = (0..n)
            .map(|_| r.u128().map(Qty))
            .collect::<Result<_, _>>()?;
        batch.frames.push((bi, Arc::new(f)));
    }
    for _ in 0..r.count(49)? {
        let seq = r.u64()?;
        let venue = hub
            .connections
            .get(r.u32()? as usize)
            .ok_or(MirrorError("unknown venue"))?
            .venue
            .name();
        batch.trades.push(VenueTrade {
            seq,
            venue,
            price: r.i64()?,
            size: Qty(r.u128()?),
            side: r.u8()?,
            venue_ts: r.u64()?,
            recv_ns: r.u64()?,
        });
    }
    if !r.data.is_empty() {
        return Err(MirrorError("trailing bytes"));
    }
    // The once-a-second full state repeats frames the mirror already has: only new frames
    // are stored and passed to the streams (a restarted ingest's frames differ by their
    // publication time even where their sequence starts again).
    batch.frames.retain(|(bi, f)| {
        entry.books.get(*bi).is_some_and(|book| {
            let current = book.frame.load();
            let new = current.seq != f.seq || current.server_ts != f.server_ts;
            if new {
                book.frame.store(f.clone());
            }
            new
        })
    });
    if !batch.frames.is_empty() || !batch.trades.is_empty() {
        // No stream listening is fine.
        let _ = entry.updates.send(Arc::new(batch));
    }
    Ok(())
}

/// Stores the ingest's connection health JSON.
pub fn store_health(hub: &VenueHub, json: Bytes) {
    hub.health_json.store(Arc::new(json));
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn layout() -> MirrorLayout {
        MirrorLayout {
            symbols: vec!["BTC-USD".into(), "ETH-USD".into()],
            venues: vec!["kraken".into(), "coinbase".into()],
            urls: vec!["ws://a".into(), "ws://b".into()],
            natives: vec![
                vec!["BTC/USD".into(), "ETH/USD".into()],
                vec!["BTC-USD".into(), "ETH-USD".into()],
            ],
        }
    }

    fn frame(hub: &VenueHub, si: usize, bi: usize) -> VenueFrame {
        let e = &hub.symbols[si];
        let b = &e.books[bi];
        let mut f = VenueFrame::empty(
            e.symbol.clone(),
            b.venue,
            b.native_symbol.clone(),
            b.frame.load().venues.clone(),
            BookState::Live,
        );
        f.live_mask = 3;
        f.seq = 42;
        f.server_ts = 7;
        f.ts_recv = 6;
        f.crossed = Some((1, 2));
        f.bid_levels = 120;
        f.ask_levels = 130;
        f.bids = vec![VenueLevel {
            price: 64_000_000_000_000,
            size: Qty(u128::MAX - 5),
            mask: 3,
            first: 0,
        }];
        f.asks = vec![VenueLevel {
            price: 63_999_000_000_000,
            size: Qty(1),
            mask: 1,
            first: 2,
        }];
        f.shares = vec![Qty(10), Qty(20), Qty(1)];
        f
    }

    #[test]
    fn the_layout_survives_the_wire_and_builds_the_same_hub() {
        let source = layout().build().unwrap();
        assert_eq!(MirrorLayout::of(&source), layout());
        let mut bad = layout();
        bad.venues[1] = "nasdaq".into();
        assert!(bad.build().is_err());
    }

    #[test]
    fn updates_apply_exactly_and_bad_ones_are_errors() {
        let source = layout().build().unwrap();
        let mirror = layout().build().unwrap();
        let mut rx = mirror.symbols[1].updates.subscribe();
        let batch = VenueUpdateBatch {
            frames: vec![(2, Arc::new(frame(&source, 1, 2)))],
            trades: vec![VenueTrade {
                seq: 9,
                venue: "coinbase",
                price: 1_500,
                size: Qty(123_456_789_000_000_000_000),
                side: b'A',
                venue_ts: 4,
                recv_ns: 5,
            }],
        };
        let mut buf = Vec::new();
        encode_update(1, &batch, &source, &mut buf);
        apply_update(&mirror, &buf).unwrap();
        let got = mirror.symbols[1].books[2].frame.load_full();
        let want = &batch.frames[0].1;
        assert_eq!(
            (
                got.venue,
                got.native_symbol.as_deref(),
                got.seq,
                got.state,
                got.crossed
            ),
            (
                "coinbase",
                Some("ETH-USD"),
                42,
                BookState::Live,
                Some((1, 2))
            )
        );
        assert_eq!((got.live_mask, got.server_ts, got.ts_recv), (3, 7, 6));
        assert_eq!((got.bid_levels, got.ask_levels), (120, 130));
        assert_eq!(got.bids.len(), 1);
        assert_eq!(
            (
                got.bids[0].price,
                got.bids[0].size,
                got.bids[0].mask,
                got.bids[0].first
            ),
            (want.bids[0].price, want.bids[0].size, 3, 0)
        );
        assert_eq!((got.asks[0].size, got.asks[0].first), (Qty(1), 2));
        assert_eq!(got.shares, want.shares);
        let sent = rx.try_recv().unwrap();
        assert_eq!(sent.trades, batch.trades);
        assert_eq!(sent.frames.len(), 1);
        // Truncated, trailing bytes, unknown symbol: errors, the hub untouched.
        assert!(apply_update(&mirror, &buf[..buf.len() - 1]).is_err());
        let mut long = buf.clone();
        long.push(0);
        assert!(apply_update(&mirror, &long).is_err());
        let mut other = buf.clone();
        other[0] = 9;
        assert!(apply_update(&mirror, &other).is_err());
        // The same frame again (a full state's repeat) is not passed on twice.
        let mut repeat = Vec::new();
        encode_update(
            1,
            &VenueUpdateBatch {
                frames: batch.frames.clone(),
                trades: Vec::new(),
            },
            &source,
            &mut repeat,
        );
        apply_update(&mirror, &repeat).unwrap();
        assert!(
            rx.try_recv().is_err(),
            "a repeated frame was broadcast again"
        );
        // A full state carries every book of the symbol.
        encode_full(1, &mirror, &mut buf);
        let again = layout().build().unwrap();
        apply_update(&again, &buf).unwrap();
        assert_eq!(again.symbols[1].books[2].frame.load().seq, 42);
    }
}
