//! Kraken spot WebSocket v2 (`book`, `trade`) and v1 (array envelope) books with CRC32
//! checksums verified on every message that carries one.
//!
//! ## Protocol rules enforced (`shared/docs/crypto-venues.md`)
//!
//! * Snapshot: replace the book. Update: apply every level of the message (size 0 removes),
//!   then truncate each side to the subscribed depth (Kraken sends no removal for levels that
//!   fall out of scope), then verify the checksum.
//! * Checksum: the top 10 asks ascending, then the top 10 bids descending; for each level the
//!   price's digits without the dot and leading zeros, then the size's likewise; CRC32 (IEEE)
//!   of the concatenation, compared as `u32` with the message's `checksum` (v2) or `"c"` (v1).
//!   The digits are the venue's: the decimals it printed (kept per level) or, for v2, the
//!   pair's `price_precision`/`qty_precision` from the `instrument` channel, or given
//!   (recordings re-serialised through floats lose trailing zeros, e.g. `4.0` for
//!   `4.00000000`).
//! * A mismatch marks the book stale and requests a resubscribe; updates are dropped until
//!   the new snapshot. v2 sends the checksum on the snapshot too, v1 only on updates.
//! * v2 numbers are JSON numbers: parsed from their raw text (`RawValue`, or the same text
//!   spanned by the fast path's scanner), never `f64`.
//! * v1 depth comes from the channel name (`book-1000`); v2 depth is the subscribed one.
//!
//! ## Fast path (book frames)
//!
//! Parsing with `serde_json` was most of the cost of a message: its visitors walk every key
//! and value generically and each frame built `Vec`s of entries and levels. Book frames,
//! nearly all of the traffic, first go through a hand-written scanner (`fast`, built on the
//! crate's shared `scan::Cur`, which Bybit, Binance and Coinbase use too) that allocates
//! nothing once warm and converts each level's number text with the same
//! `wire::level` as the `serde_json` path:
//!
//! * v2: `{"channel":"book","type":"snapshot"|"update","data":[..]}` whose entries have
//!   `symbol`, `bids`, `asks`, `checksum` and `timestamp`;
//! * v1: `[channelID,{..}(,{..}),"book-N","PAIR"]` whose objects have `as`/`bs` or
//!   `a`/`b`/`c`, each level an array of plain strings;
//!
//! keys in any order, JSON whitespace anywhere. Anything else is not taken and the frame is
//! parsed by `serde_json` exactly as before: other channels (trades, control), unknown,
//! repeated or `null` keys, strings with escapes or control characters, v2 numbers with
//! exponents or written as strings, a v2 checksum that is not a plain `u32`, and anything
//! malformed (which `serde_json` then counts as a bad frame). The scanner therefore only has
//! to be right on what it takes, never complete. Both paths share the apply-and-verify code
//! (`apply_entry`, `apply_book`), and tests feed every recorded frame and many mutated ones to
//! both, requiring identical events, books and counters.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::book::{L2Book, Level, Side};
use crate::decimal::{checksum_digits, PRICE_SCALE, QTY_SCALE};
use crate::event::{Aggressor, Event, ResyncReason, Trade};
use crate::state::{Books, SyncState, VenueCounters};
use crate::venue::{Precision, Venue};
use crate::wire::{self, Pair};

mod fast;
#[cfg(test)]
mod fast_tests;

/// Kraken's default book depth.
pub const DEFAULT_DEPTH: usize = 10;

/// Levels per side the checksum covers.
const CHECKSUM_LEVELS: usize = 10;

/// Kraken's CRC32 of the top of `book`, with `precision` overriding the decimals kept per
/// level.
#[must_use]
pub fn checksum(book: &L2Book, precision: Option<Precision>) -> u32 {
    // All digits go to one buffer and one CRC call (the SIMD path needs long inputs); 20
    // levels need at most ~1.2 KB, and the buffer is flushed if it ever fills.
    let mut h = crc32fast::Hasher::new();
    let mut buf = [0u8; 1280];
    let mut n = 0;
    let mut put = |h: &mut crc32fast::Hasher, value: u128, scale: u32, decimals: u8| loop {
        if let Some(w) = buf
            .get_mut(n..)
            .and_then(|rest| checksum_digits(value, scale, decimals, rest))
        {
            n += w;
            return;
        }
        h.update(&buf[..n]);
        n = 0;
    };
    let levels = book
        .asks_asc()
        .take(CHECKSUM_LEVELS)
        .chain(book.bids_desc().take(CHECKSUM_LEVELS));
    for (&price, level) in levels {
        let (pd, qd) = precision.map_or((level.price_decimals, level.qty_decimals), |p| {
            (p.price, p.qty)
        });
        put(&mut h, u128::from(price.unsigned_abs()), PRICE_SCALE, pd);
        put(&mut h, level.qty.0, QTY_SCALE, qd);
    }
    h.update(&buf[..n]);
    h.finalize()
}

/// Whether applying `levels` can change the top [`CHECKSUM_LEVELS`] of either side: a level
/// at or inside the current 10th price (or any level while a side has fewer than 10) can;
/// inserting or removing a level strictly beyond it cannot, and truncating to a depth of at
/// least 10 only removes levels beyond it.
fn touches_top(book: &L2Book, levels: &[(Side, i64, Level)], depth: usize) -> bool {
    if depth < CHECKSUM_LEVELS {
        return true;
    }
    let ask_edge = book.asks_asc().nth(CHECKSUM_LEVELS - 1).map(|(p, _)| *p);
    let bid_edge = book.bids_desc().nth(CHECKSUM_LEVELS - 1).map(|(p, _)| *p);
    levels.iter().any(|&(side, p, _)| match side {
        Side::Ask => ask_edge.is_none_or(|e| p <= e),
        Side::Bid => bid_edge.is_none_or(|e| p >= e),
    })
}

/// Bytes kept per top level for its checksum digits (price then size); a level that needs
/// more (never seen: Kraken's are ~15) makes that message's checksum a full recomputation.
const SLOT: usize = 64;

/// One top level of the last checksummed book: its digits are `prev[start..start + len]`.
#[derive(Debug, Clone, Copy)]
struct Cached {
    price: i64,
    level: Level,
    start: u16,
    len: u8,
}

/// Per book: the CRC of its top levels while they are unchanged (deep books such as
/// `book-1000` mostly change beyond the top 10), and the digits of each top level, so a
/// recomputation renders only the levels that changed (rendering the 40 numbers was most of
/// the cost of a Kraken message). Every message's checksum is still compared; in debug builds
/// each cached value is checked against a full recomputation.
///
/// The digits live in one buffer (asks, then bids: the CRC's input) and each level's are
/// copied from the last buffer as a fixed [`SLOT`]-byte block (no `memcpy` call, no per-level
/// copies of the digits elsewhere); `buf` and `prev` swap roles on every recomputation.
#[derive(Debug, Clone, Default)]
struct TopCache {
    crc: Option<u32>,
    asks: Vec<Cached>,
    bids: Vec<Cached>,
    next: Vec<Cached>,
    buf: Vec<u8>,
    prev: Vec<u8>,
}

impl TopCache {
    /// The checksum of `book`, reusing the digits of unchanged top levels.
    fn checksum(&mut self, book: &L2Book, precision: Option<Precision>) -> u32 {
        self.try_checksum(book, precision).unwrap_or_else(|| {
            // The cached offsets may now point into the wrong buffer: forget them.
            self.asks.clear();
            self.bids.clear();
            checksum(book, precision)
        })
    }

    fn try_checksum(&mut self, book: &L2Book, precision: Option<Precision>) -> Option<u32> {
        // 20 slots hold the digits; `n` advances by each level's length, so the last block
        // copied starts at most 19 slots in.
        self.buf.resize(2 * CHECKSUM_LEVELS * SLOT, 0);
        self.prev.resize(2 * CHECKSUM_LEVELS * SLOT, 0);
        let mut n = 0;
        self.side(book.asks_asc(), Side::Ask, &mut n, precision)?;
        std::mem::swap(&mut self.asks, &mut self.next);
        self.side(book.bids_desc(), Side::Bid, &mut n, precision)?;
        std::mem::swap(&mut self.bids, &mut self.next);
        std::mem::swap(&mut self.buf, &mut self.prev);
        Some(crc32fast::hash(self.prev.get(..n)?))
    }

    /// One side's top levels, best first (a concrete iterator per side, no dynamic
    /// dispatch), into `next` and `buf` from `n` on.
    fn side<'b>(
        &mut self,
        top: impl Iterator<Item = (&'b i64, &'b Level)>,
        side: Side,
        n: &mut usize,
        precision: Option<Precision>,
    ) -> Option<()> {
        let Self {
            asks,
            bids,
            next,
            buf,
            prev,
            ..
        } = self;
        let old: &[Cached] = match side {
            Side::Ask => asks,
            Side::Bid => bids,
        };
        next.clear();
        let mut j = 0;
        for (&price, level) in top.take(CHECKSUM_LEVELS) {
            // Both lists are in book order: skip cached levels better than this one.
            while old.get(j).is_some_and(|o| match side {
                Side::Ask => o.price < price,
                Side::Bid => o.price > price,
            }) {
                j += 1;
            }
            let dst = buf.get_mut(*n..*n + SLOT)?;
            let len = match old.get(j) {
                Some(o) if o.price == price && o.level == *level => {
                    let at = usize::from(o.start);
                    dst.copy_from_slice(prev.get(at..at + SLOT)?);
                    o.len
                }
                _ => render(price, level, precision, dst)?,
            };
            next.push(Cached {
                price,
                level: *level,
                start: u16::try_from(*n).ok()?,
                len,
            });
            *n += usize::from(len);
        }
        Some(())
    }
}

/// Writes a level's checksum digits (price then size) into `out`; their length.
fn render(price: i64, level: &Level, precision: Option<Precision>, out: &mut [u8]) -> Option<u8> {
    let (pd, qd) = precision.map_or((level.price_decimals, level.qty_decimals), |p| {
        (p.price, p.qty)
    });
    let a = checksum_digits(u128::from(price.unsigned_abs()), PRICE_SCALE, pd, out)?;
    let b = checksum_digits(level.qty.0, QTY_SCALE, qd, out.get_mut(a..)?)?;
    u8::try_from(a + b).ok()
}

#[derive(Debug, Clone, Default)]
struct CrcCache(Vec<TopCache>);

impl CrcCache {
    fn slot(&mut self, id: usize) -> &mut TopCache {
        if self.0.len() <= id {
            self.0.resize_with(id + 1, TopCache::default);
        }
        &mut self.0[id]
    }
}

/// Verifies a book's checksum after a message; on mismatch marks it stale and asks for a
/// resync. Returns whether it matched.
fn verify(
    books: &mut Books,
    id: usize,
    expected: u32,
    precision: Option<Precision>,
    cache: &mut TopCache,
    out: &mut Vec<Event>,
) -> bool {
    let b = books.at(id);
    let computed = match cache.crc {
        Some(c) => c,
        None => {
            let c = cache.checksum(&b.book, precision);
            cache.crc = Some(c);
            c
        }
    };
    debug_assert_eq!(
        computed,
        checksum(&b.book, precision),
        "stale checksum cache"
    );
    if computed == expected {
        b.counters.checksum_ok += 1;
        true
    } else {
        b.counters.checksum_bad += 1;
        b.counters.resyncs += 1;
        b.state = SyncState::Stale;
        out.push(Event::ResyncNeeded {
            book: id,
            reason: ResyncReason::Checksum { expected, computed },
        });
        false
    }
}

/// Applies parsed levels to a book (after clearing it for a snapshot), truncates, and emits
/// the level events.
fn apply_levels(
    books: &mut Books,
    id: usize,
    snapshot: bool,
    levels: &[(Side, i64, Level)],
    depth: usize,
    out: &mut Vec<Event>,
) {
    let b = books.at(id);
    if snapshot {
        b.book.clear();
        b.state = SyncState::Live;
        out.push(Event::Snapshot { book: id });
    }
    for &(side, price, level) in levels {
        b.book.set(side, price, level);
        out.push(Event::Level {
            book: id,
            side,
            price,
            qty: level.qty,
        });
    }
    b.book.truncate(depth);
}

#[derive(Deserialize)]
struct V2Msg<'a> {
    #[serde(borrow)]
    channel: Option<&'a str>,
    #[serde(borrow, rename = "type")]
    kind: Option<&'a str>,
    #[serde(borrow)]
    data: Option<V2Data<'a>>,
    #[serde(borrow)]
    method: Option<&'a str>,
}

/// `data`: a list of entries (book, trade, status) or the `instrument` channel's object,
/// parsed in the same pass as the envelope.
enum V2Data<'a> {
    Entries(Vec<V2Entry<'a>>),
    Instrument(Vec<PairInfo<'a>>),
    Other,
}

/// The `instrument` channel's `data` object (only `pairs` is used).
#[derive(Deserialize)]
struct InstrumentData<'a> {
    #[serde(borrow, default)]
    pairs: Vec<PairInfo<'a>>,
}

/// A pair's printed decimals from the `instrument` channel.
#[derive(Deserialize)]
struct PairInfo<'a> {
    #[serde(borrow)]
    symbol: &'a str,
    price_precision: Option<u8>,
    qty_precision: Option<u8>,
}

impl<'de: 'a, 'a> Deserialize<'de> for V2Data<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = V2Data<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("Kraken v2 data")
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(V2Data::Entries)
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                InstrumentData::deserialize(MapAccessDeserializer::new(map))
                    .map(|d| V2Data::Instrument(d.pairs))
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
                Ok(V2Data::Other)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct V2Level<'a> {
    #[serde(borrow)]
    price: &'a RawValue,
    #[serde(borrow)]
    qty: &'a RawValue,
}

/// A `data` entry: the fields of book and trade entries (each channel uses its own).
#[derive(Deserialize)]
struct V2Entry<'a> {
    #[serde(borrow)]
    symbol: Option<&'a str>,
    #[serde(borrow)]
    bids: Option<Vec<V2Level<'a>>>,
    #[serde(borrow)]
    asks: Option<Vec<V2Level<'a>>>,
    checksum: Option<u32>,
    #[serde(borrow)]
    side: Option<&'a str>,
    #[serde(borrow)]
    price: Option<&'a RawValue>,
    #[serde(borrow)]
    qty: Option<&'a RawValue>,
    #[serde(borrow)]
    timestamp: Option<&'a str>,
}

/// A JSON number or string's text (strings lose their quotes).
fn raw_text(r: &RawValue) -> &str {
    let t = r.get();
    t.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(t)
}

/// Kraken WebSocket v2 synchroniser.
#[derive(Debug, Clone)]
pub struct KrakenV2 {
    books: Books,
    depth: usize,
    precision: Option<Precision>,
    /// Per pair, from the `instrument` channel (wins over `precision`).
    pair_precision: std::collections::HashMap<String, Precision>,
    counters: VenueCounters,
    scratch: Vec<(Side, i64, Level)>,
    crc: CrcCache,
    /// Book frames go through [`fast::v2_book`] first (off only in tests, to compare).
    fast_path: bool,
    scan: fast::BookScan,
}

impl KrakenV2 {
    /// A synchroniser for books of `depth` levels. Printed decimals per pair come from the
    /// `instrument` channel when subscribed; otherwise `precision` when given, otherwise the
    /// decimals in the messages.
    #[must_use]
    pub fn new(books: Books, depth: usize, precision: Option<Precision>) -> Self {
        Self {
            books,
            depth,
            precision,
            pair_precision: std::collections::HashMap::new(),
            counters: VenueCounters::default(),
            scratch: Vec::new(),
            crc: CrcCache::default(),
            fast_path: true,
            scan: fast::BookScan::default(),
        }
    }

    /// The same synchroniser with every frame parsed by `serde_json` (`false`), to compare.
    #[cfg(test)]
    pub(crate) fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    /// Parses a message's levels into `scratch`; `None` for a bad number, else the count of
    /// unrepresentable levels skipped.
    fn parse_levels(
        &mut self,
        bids: &[V2Level<'_>],
        asks: &[V2Level<'_>],
        precision: Option<Precision>,
    ) -> Option<u64> {
        self.scratch.clear();
        let mut skipped = 0;
        for (side, list) in [(Side::Bid, bids), (Side::Ask, asks)] {
            for l in list {
                let (price, mut level) = match wire::level(raw_text(l.price), raw_text(l.qty)) {
                    Ok(x) => x,
                    Err(e) if wire::unrepresentable(raw_text(l.price), e) => {
                        skipped += 1;
                        continue;
                    }
                    Err(_) => return None,
                };
                if let Some(p) = precision {
                    level.price_decimals = level.price_decimals.max(p.price);
                    level.qty_decimals = level.qty_decimals.max(p.qty);
                }
                self.scratch.push((side, price, level));
            }
        }
        Some(skipped)
    }

    fn on_book(&mut self, snapshot: bool, entries: &[V2Entry<'_>], out: &mut Vec<Event>) {
        for e in entries {
            let (Some(symbol), Some(id)) = (e.symbol, e.symbol.and_then(|s| self.books.id(s)))
            else {
                self.counters.bad_frames += 1;
                continue;
            };
            let precision = self.pair_precision.get(symbol).copied().or(self.precision);
            let (bids, asks) = (
                e.bids.as_deref().unwrap_or_default(),
                e.asks.as_deref().unwrap_or_default(),
            );
            let Some(skipped) = self.parse_levels(bids, asks, precision) else {
                self.counters.bad_frames += 1;
                continue;
            };
            self.apply_entry(id, snapshot, skipped, e.checksum, precision, out);
        }
    }

    /// [`Self::on_book`] for a frame the fast scanner took: the same steps in the same order,
    /// with the levels already converted.
    fn on_book_scanned(
        &mut self,
        frame: &str,
        snapshot: bool,
        scan: &fast::BookScan,
        out: &mut Vec<Event>,
    ) {
        for e in &scan.entries {
            let symbol = e.symbol.clone().and_then(|r| frame.get(r));
            let (Some(symbol), Some(id)) = (symbol, symbol.and_then(|s| self.books.id(s))) else {
                self.counters.bad_frames += 1;
                continue;
            };
            if e.bad_number {
                self.counters.bad_frames += 1;
                continue;
            }
            let precision = self.pair_precision.get(symbol).copied().or(self.precision);
            self.scratch.clear();
            for (side, range) in [(Side::Bid, e.bids.clone()), (Side::Ask, e.asks.clone())] {
                for &(price, mut level) in scan.levels.get(range).unwrap_or_default() {
                    if let Some(p) = precision {
                        level.price_decimals = level.price_decimals.max(p.price);
                        level.qty_decimals = level.qty_decimals.max(p.qty);
                    }
                    self.scratch.push((side, price, level));
                }
            }
            self.apply_entry(id, snapshot, e.skipped, e.checksum, precision, out);
        }
    }

    /// Applies `self.scratch` (one entry's parsed levels) to book `id` and verifies its
    /// checksum.
    fn apply_entry(
        &mut self,
        id: usize,
        snapshot: bool,
        skipped: u64,
        checksum: Option<u32>,
        precision: Option<Precision>,
        out: &mut Vec<Event>,
    ) {
        let b = self.books.at(id);
        b.counters.messages += 1;
        b.counters.unrepresentable_levels += skipped;
        b.depth = Some(self.depth);
        if !snapshot && b.state != SyncState::Live {
            b.counters.dropped += 1;
            return;
        }
        if snapshot || touches_top(&self.books.at(id).book, &self.scratch, self.depth) {
            self.crc.slot(id).crc = None;
        }
        apply_levels(
            &mut self.books,
            id,
            snapshot,
            &self.scratch,
            self.depth,
            out,
        );
        let good = match checksum {
            Some(c) => verify(&mut self.books, id, c, precision, self.crc.slot(id), out),
            None => true,
        };
        if good {
            self.books.at(id).note_applied();
            out.push(Event::Applied { book: id });
        }
    }

    /// Records each pair's printed decimals; a change invalidates the cached checksum digits.
    fn on_instrument(&mut self, pairs: &[PairInfo<'_>]) {
        self.counters.control += 1;
        for p in pairs {
            let (Some(price), Some(qty)) = (p.price_precision, p.qty_precision) else {
                continue;
            };
            let new = Precision { price, qty };
            if self.pair_precision.insert(p.symbol.to_owned(), new) != Some(new) {
                self.crc = CrcCache::default();
            }
        }
    }

    fn on_trades(&mut self, trades: &[V2Entry<'_>], out: &mut Vec<Event>) {
        for t in trades {
            let (Some(id), Some(Ok((price, level)))) = (
                t.symbol.and_then(|s| self.books.id(s)),
                t.price
                    .zip(t.qty)
                    .map(|(p, q)| wire::level(raw_text(p), raw_text(q))),
            ) else {
                self.counters.bad_frames += 1;
                continue;
            };
            self.books.at(id).counters.trades += 1;
            out.push(Event::Trade(Trade {
                book: id,
                side: match t.side {
                    Some("buy") => Aggressor::Buy,
                    Some("sell") => Aggressor::Sell,
                    _ => Aggressor::Unknown,
                },
                price,
                qty: level.qty,
                venue_time_ns: t.timestamp.and_then(wire::rfc3339_ns).unwrap_or(0),
            }));
        }
    }
}

impl Venue for KrakenV2 {
    fn name(&self) -> &'static str {
        "kraken"
    }

    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>) {
        self.counters.frames += 1;
        if self.fast_path {
            // The scan buffers are taken out for the call so the books can be borrowed.
            let mut scan = std::mem::take(&mut self.scan);
            let taken = fast::v2_book(frame, &mut scan);
            if let Some(snapshot) = taken {
                self.on_book_scanned(frame, snapshot, &scan, out);
            }
            self.scan = scan;
            if taken.is_some() {
                return;
            }
        }
        let Ok(m) = serde_json::from_str::<V2Msg<'_>>(frame) else {
            self.counters.bad_frames += 1;
            return;
        };
        match (m.channel, m.kind, &m.data) {
            (Some("book"), Some(kind @ ("snapshot" | "update")), Some(V2Data::Entries(d))) => {
                self.on_book(kind == "snapshot", d, out);
            }
            (Some("trade"), Some("snapshot" | "update"), Some(V2Data::Entries(d))) => {
                self.on_trades(d, out);
            }
            (Some("instrument"), _, Some(V2Data::Instrument(pairs))) => self.on_instrument(pairs),
            (Some("heartbeat" | "status" | "instrument"), _, _) => self.counters.control += 1,
            (None, _, _) if m.method.is_some() => self.counters.control += 1,
            _ => self.counters.bad_frames += 1,
        }
    }

    fn on_reconnect(&mut self) {
        self.books.mark_all_syncing();
    }

    fn books(&self) -> &Books {
        &self.books
    }

    fn counters(&self) -> &VenueCounters {
        &self.counters
    }

    fn counters_mut(&mut self) -> &mut VenueCounters {
        &mut self.counters
    }
}

#[derive(Deserialize)]
struct V1Book<'a> {
    #[serde(borrow, rename = "as")]
    snap_asks: Option<Vec<Pair<'a>>>,
    #[serde(borrow, rename = "bs")]
    snap_bids: Option<Vec<Pair<'a>>>,
    #[serde(borrow)]
    a: Option<Vec<Pair<'a>>>,
    #[serde(borrow)]
    b: Option<Vec<Pair<'a>>>,
    #[serde(borrow)]
    c: Option<&'a str>,
}

/// One element of a v1 array frame, parsed in a single pass (no intermediate `RawValue`).
enum V1Part<'a> {
    /// A book object (`as`/`bs` or `a`/`b`/`c`).
    Book(V1Book<'a>),
    /// Channel name or pair.
    Text(&'a str),
    /// Trades `[[price, volume, time, side, type, misc], ...]`.
    Trades(Vec<Vec<&'a str>>),
    /// The channel id.
    Number,
}

impl<'de: 'a, 'a> Deserialize<'de> for V1Part<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
        use serde::de::{MapAccess, SeqAccess, Visitor};
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = V1Part<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Kraken v1 frame element")
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(V1Part::Number)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(V1Part::Number)
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(V1Part::Text(v))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Self::Value, M::Error> {
                V1Book::deserialize(MapAccessDeserializer::new(map)).map(V1Part::Book)
            }
            fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<Self::Value, S::Error> {
                Vec::deserialize(SeqAccessDeserializer::new(seq)).map(V1Part::Trades)
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

#[derive(Deserialize)]
struct V1Event<'a> {
    #[serde(borrow)]
    event: Option<&'a str>,
}

/// Kraken WebSocket v1 synchroniser (`[channelID, {..}, ({..},) "book-N", "PAIR"]`).
#[derive(Debug, Clone)]
pub struct KrakenV1 {
    books: Books,
    counters: VenueCounters,
    scratch: Vec<(Side, i64, Level)>,
    crc: CrcCache,
    /// Book frames go through [`fast::v1_book`] first (off only in tests, to compare).
    fast_path: bool,
    scan: fast::V1Scan,
}

impl KrakenV1 {
    /// A new synchroniser.
    #[must_use]
    pub fn new(books: Books) -> Self {
        Self {
            books,
            counters: VenueCounters::default(),
            scratch: Vec::new(),
            crc: CrcCache::default(),
            fast_path: true,
            scan: fast::V1Scan::default(),
        }
    }

    /// The same synchroniser with every frame parsed by `serde_json` (`false`), to compare.
    #[cfg(test)]
    pub(crate) fn with_fast_path(mut self, on: bool) -> Self {
        self.fast_path = on;
        self
    }

    fn on_book(&mut self, parts: &[V1Part<'_>], depth: usize, pair: &str, out: &mut Vec<Event>) {
        self.scratch.clear();
        let mut skipped = 0;
        let mut snapshot = false;
        let mut check = None;
        for part in parts {
            let V1Part::Book(b) = part else {
                self.counters.bad_frames += 1;
                return;
            };
            snapshot |= b.snap_asks.is_some() || b.snap_bids.is_some();
            for (side, list) in [
                (Side::Ask, &b.snap_asks),
                (Side::Bid, &b.snap_bids),
                (Side::Ask, &b.a),
                (Side::Bid, &b.b),
            ] {
                if let Some(list) = list {
                    if wire::levels(side, list, &mut self.scratch, &mut skipped).is_err() {
                        self.counters.bad_frames += 1;
                        return;
                    }
                }
            }
            if let Some(c) = b.c {
                let Ok(c) = c.parse::<u32>() else {
                    self.counters.bad_frames += 1;
                    return;
                };
                check = Some(c);
            }
        }
        self.apply_book(depth, pair, snapshot, skipped, check, out);
    }

    /// [`Self::on_book`] for a frame the fast scanner took: the same steps, with the levels
    /// already converted.
    fn on_book_scanned(
        &mut self,
        frame: &str,
        scan: &fast::V1Scan,
        depth: usize,
        pair: &str,
        out: &mut Vec<Event>,
    ) {
        self.scratch.clear();
        let mut skipped = 0;
        let mut snapshot = false;
        let mut check = None;
        for o in &scan.objects {
            if o.bad_number {
                self.counters.bad_frames += 1;
                return;
            }
            let [snap_asks, snap_bids, a, b] = &o.lists;
            snapshot |= snap_asks.is_some() || snap_bids.is_some();
            for (side, list) in [
                (Side::Ask, snap_asks),
                (Side::Bid, snap_bids),
                (Side::Ask, a),
                (Side::Bid, b),
            ] {
                let levels = list.clone().and_then(|r| scan.levels.get(r));
                for &(price, level) in levels.unwrap_or_default() {
                    self.scratch.push((side, price, level));
                }
            }
            skipped += o.skipped;
            if let Some(c) = o.checksum.clone() {
                let Some(c) = frame.get(c).and_then(|c| c.parse::<u32>().ok()) else {
                    self.counters.bad_frames += 1;
                    return;
                };
                check = Some(c);
            }
        }
        self.apply_book(depth, pair, snapshot, skipped, check, out);
    }

    /// Applies `self.scratch` (a message's parsed levels) to the pair's book and verifies its
    /// checksum.
    fn apply_book(
        &mut self,
        depth: usize,
        pair: &str,
        snapshot: bool,
        skipped: u64,
        check: Option<u32>,
        out: &mut Vec<Event>,
    ) {
        let Some(id) = self.books.id(pair) else {
            self.counters.bad_frames += 1;
            return;
        };
        let b = self.books.at(id);
        b.counters.messages += 1;
        b.counters.unrepresentable_levels += skipped;
        b.depth = Some(depth);
        if !snapshot && b.state != SyncState::Live {
            b.counters.dropped += 1;
            return;
        }
        if snapshot || touches_top(&self.books.at(id).book, &self.scratch, depth) {
            self.crc.slot(id).crc = None;
        }
        apply_levels(&mut self.books, id, snapshot, &self.scratch, depth, out);
        let good = match check {
            Some(c) => verify(&mut self.books, id, c, None, self.crc.slot(id), out),
            None => true,
        };
        if good {
            self.books.at(id).note_applied();
            out.push(Event::Applied { book: id });
        }
    }

    fn on_trades(&mut self, part: &V1Part<'_>, pair: &str, out: &mut Vec<Event>) {
        let V1Part::Trades(trades) = part else {
            self.counters.bad_frames += 1;
            return;
        };
        let Some(id) = self.books.id(pair) else {
            self.counters.bad_frames += 1;
            return;
        };
        for t in trades {
            let (Some(p), Some(v)) = (t.first(), t.get(1)) else {
                self.counters.bad_frames += 1;
                continue;
            };
            let Ok((price, level)) = wire::level(p, v) else {
                self.counters.bad_frames += 1;
                continue;
            };
            self.books.at(id).counters.trades += 1;
            out.push(Event::Trade(Trade {
                book: id,
                side: match t.get(3).copied() {
                    Some("b") => Aggressor::Buy,
                    Some("s") => Aggressor::Sell,
                    _ => Aggressor::Unknown,
                },
                price,
                qty: level.qty,
                venue_time_ns: t.get(2).and_then(|s| wire::seconds_text_ns(s)).unwrap_or(0),
            }));
        }
    }
}

impl Venue for KrakenV1 {
    fn name(&self) -> &'static str {
        "kraken-v1"
    }

    fn on_frame(&mut self, frame: &str, out: &mut Vec<Event>) {
        self.counters.frames += 1;
        if self.fast_path {
            let mut scan = std::mem::take(&mut self.scan);
            let taken = fast::v1_book(frame, &mut scan);
            if let Some((depth, pair)) = taken {
                self.on_book_scanned(frame, &scan, depth, pair, out);
            }
            self.scan = scan;
            if taken.is_some() {
                return;
            }
        }
        if frame.trim_start().starts_with('{') {
            match serde_json::from_str::<V1Event<'_>>(frame) {
                Ok(V1Event { event: Some(_) }) => self.counters.control += 1,
                _ => self.counters.bad_frames += 1,
            }
            return;
        }
        let Ok(parts) = serde_json::from_str::<Vec<V1Part<'_>>>(frame) else {
            self.counters.bad_frames += 1;
            return;
        };
        let n = parts.len();
        let (true, Some(V1Part::Text(name)), Some(V1Part::Text(pair))) =
            (n >= 4, parts.get(n.wrapping_sub(2)), parts.last())
        else {
            self.counters.bad_frames += 1;
            return;
        };
        if let Some(depth) = name.strip_prefix("book-") {
            match depth.parse::<usize>() {
                Ok(depth) => self.on_book(&parts[1..n - 2], depth, pair, out),
                Err(_) => self.counters.bad_frames += 1,
            }
        } else if *name == "trade" && n == 4 {
            self.on_trades(&parts[1], pair, out);
        } else {
            self.counters.control += 1;
        }
    }

    fn on_reconnect(&mut self) {
        self.books.mark_all_syncing();
    }

    fn books(&self) -> &Books {
        &self.books
    }

    fn counters(&self) -> &VenueCounters {
        &self.counters
    }

    fn counters_mut(&mut self) -> &mut VenueCounters {
        &mut self.counters
    }
}
