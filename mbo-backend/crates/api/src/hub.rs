//! What the engine publishes and readers share: the book directory with each book's latest
//! frame, the broadcast of cycle updates, the broadcast of raw record batches, and health.
//!
//! Nothing here is locked by a reader for longer than an `Arc` clone: frames live behind
//! `ArcSwap`s, the directory is copied on write (books appear rarely), and broadcasts are
//! Tokio's bounded rings, where a slow receiver loses old items (and learns how many) instead
//! of holding the sender back.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use arc_swap::ArcSwap;
use bytes::Bytes;
use dbn::MboMsg;
use mbo_book::BookKey;
use mbo_feed::{FeedMetadata, ReplayHandle};
use tokio::sync::{broadcast, watch};

use crate::frame::{BookFrame, Trade};

/// Updates kept per book for its streams. The engine publishes at most ~1,000 cycles a
/// second, so a client may stall a second or more before it is told it lagged.
pub const UPDATE_RING: usize = 1024;
/// Record batches kept for MBO streams (each up to a few thousand records).
pub const MBO_RING: usize = 512;

/// One book known to the server.
#[derive(Debug)]
pub struct BookEntry {
    /// The book.
    pub key: BookKey,
    /// Its symbol.
    pub symbol: Arc<str>,
    /// Its latest frame.
    pub frame: ArcSwap<BookFrame>,
    /// Its updates, for its streams: a client wakes only for its own book.
    pub updates: broadcast::Sender<Arc<Update>>,
}

impl BookEntry {
    /// An entry whose latest frame is `frame`.
    pub fn new(key: BookKey, symbol: Arc<str>, frame: Arc<BookFrame>) -> Self {
        let (updates, _) = broadcast::channel(UPDATE_RING);
        Self {
            key,
            symbol,
            frame: ArcSwap::new(frame),
            updates,
        }
    }
}

/// Every book, in key order. Replaced whole when a book appears.
#[derive(Debug, Default)]
pub struct Directory {
    /// Entries sorted by key.
    pub entries: Vec<Arc<BookEntry>>,
}

/// Why a symbol lookup failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LookupError {
    /// No book has this symbol (or instrument id).
    UnknownSymbol,
    /// The symbol exists but not for this publisher; the publishers that exist are listed.
    UnknownPublisher(Vec<u16>),
}

impl Directory {
    /// The book of `symbol` (exact raw symbol, or the instrument id in decimal), from
    /// `publisher` when given, else the one with the lowest publisher id.
    ///
    /// # Errors
    /// [`LookupError`] when there is no such book.
    pub fn find(
        &self,
        symbol: &str,
        publisher: Option<u16>,
    ) -> Result<&Arc<BookEntry>, LookupError> {
        let id: Option<u32> = symbol.parse().ok();
        let all: Vec<&Arc<BookEntry>> = self
            .entries
            .iter()
            .filter(|e| &*e.symbol == symbol || Some(e.key.instrument_id) == id)
            .collect();
        let Some(first) = all.first() else {
            return Err(LookupError::UnknownSymbol);
        };
        match publisher {
            None => Ok(first),
            Some(p) => all
                .iter()
                .find(|e| e.key.publisher_id == p)
                .copied()
                .ok_or_else(|| {
                    LookupError::UnknownPublisher(all.iter().map(|e| e.key.publisher_id).collect())
                }),
        }
    }

    /// The entry of `key`.
    pub fn get(&self, key: BookKey) -> Option<&Arc<BookEntry>> {
        self.entries
            .binary_search_by_key(&key, |e| e.key)
            .ok()
            .map(|i| &self.entries[i])
    }

    /// Every book of `instrument_id`.
    pub fn of_instrument(&self, instrument_id: u32) -> impl Iterator<Item = &Arc<BookEntry>> {
        self.entries
            .iter()
            .filter(move |e| e.key.instrument_id == instrument_id)
    }
}

/// What one engine cycle published for one book's streams.
#[derive(Debug)]
pub struct Update {
    /// Feed epoch.
    pub epoch: u64,
    /// Unix ns of publication.
    pub server_ts: u64,
    /// The book's new frame (`None` while the book is inside an event).
    pub frame: Option<Arc<BookFrame>>,
    /// The book's trades of the cycle, in stream order.
    pub trades: Vec<Trade>,
    /// Their JSON objects, comma-separated, built once for every client.
    pub trades_json: Bytes,
    /// True on the first update after a feed reset: every client must resynchronise.
    pub reset: bool,
}

/// Columns of each record in an `mbo` event, in order.
pub const MBO_FIELDS: [&str; 13] = [
    "index",
    "ts_recv",
    "ts_event",
    "instrument_id",
    "publisher_id",
    "action",
    "side",
    "price",
    "size",
    "order_id",
    "flags",
    "sequence",
    "channel_id",
];

/// Applied records, as the MBO stream sends them.
#[derive(Debug)]
pub struct MboBatch {
    /// Feed epoch.
    pub epoch: u64,
    /// Stream index of `records[0]`.
    pub first_index: u64,
    /// Unix ns of publication.
    pub server_ts: u64,
    /// The records, in stream order.
    pub records: Vec<MboMsg>,
    /// The instrument of every record, when they share one.
    pub single_instrument: Option<u32>,
    /// `mbo` event JSON of the whole batch, built by the first client that needs it.
    json_all: OnceLock<Bytes>,
}

impl MboBatch {
    /// A batch.
    pub fn new(epoch: u64, first_index: u64, server_ts: u64, records: Vec<MboMsg>) -> Self {
        let single_instrument = records
            .first()
            .map(|r| r.hd.instrument_id)
            .filter(|&id| records.iter().all(|r| r.hd.instrument_id == id));
        Self {
            epoch,
            first_index,
            server_ts,
            records,
            single_instrument,
            json_all: OnceLock::new(),
        }
    }

    /// Stream index of the last record.
    pub fn last_index(&self) -> u64 {
        self.first_index + (self.records.len() as u64).saturating_sub(1)
    }

    /// The `mbo` event data for the records of `instrument` (all when `None`), and how many
    /// records it holds. Shared between clients when no filtering is needed.
    pub fn json(&self, instrument: Option<u32>) -> (Bytes, usize) {
        let whole = match instrument {
            None => true,
            Some(id) => self.single_instrument == Some(id),
        };
        if whole {
            let bytes = self
                .json_all
                .get_or_init(|| Bytes::from(self.write_json(None).0))
                .clone();
            return (bytes, self.records.len());
        }
        let (json, count) = self.write_json(instrument);
        (Bytes::from(json), count)
    }

    /// The `mbo` event data for the records of `instrument` (all when `None`), and their
    /// count.
    fn write_json(&self, instrument: Option<u32>) -> (Vec<u8>, usize) {
        let keep = |r: &MboMsg| instrument.is_none_or(|id| r.hd.instrument_id == id);
        let count = self.records.iter().filter(|r| keep(r)).count();
        let mut out = Vec::with_capacity(96 + count * 110);
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(b"{\"server_ts\":");
        out.extend_from_slice(n.format(self.server_ts).as_bytes());
        out.extend_from_slice(b",\"epoch\":");
        out.extend_from_slice(n.format(self.epoch).as_bytes());
        out.extend_from_slice(b",\"first_index\":");
        out.extend_from_slice(n.format(self.first_index).as_bytes());
        out.extend_from_slice(b",\"count\":");
        out.extend_from_slice(n.format(count).as_bytes());
        out.extend_from_slice(b",\"records\":[");
        let mut first = true;
        for (i, r) in self.records.iter().enumerate() {
            if !keep(r) {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_record_array(&mut out, &mut n, self.first_index + i as u64, r, false);
        }
        out.extend_from_slice(b"]}");
        (out, count)
    }
}

/// Appends `[index, ts_recv, ts_event, instrument_id, publisher_id, "action", "side", price,
/// size, order_id, flags, sequence, channel_id]` ([`MBO_FIELDS`]), plus `ts_in_delta` when
/// `with_ts_in_delta` (the history stream's [`HISTORY_FIELDS`]).
pub fn write_record_array(
    out: &mut Vec<u8>,
    n: &mut itoa::Buffer,
    index: u64,
    r: &MboMsg,
    with_ts_in_delta: bool,
) {
    out.push(b'[');
    out.extend_from_slice(n.format(index).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.ts_recv).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.hd.ts_event).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.hd.instrument_id).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.hd.publisher_id).as_bytes());
    out.extend_from_slice(b",\"");
    push_code(out, r.action as u8);
    out.extend_from_slice(b"\",\"");
    push_code(out, r.side as u8);
    out.extend_from_slice(b"\",");
    out.extend_from_slice(n.format(r.price).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.size).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.order_id).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.flags.raw()).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.sequence).as_bytes());
    out.push(b',');
    out.extend_from_slice(n.format(r.channel_id).as_bytes());
    if with_ts_in_delta {
        out.push(b',');
        out.extend_from_slice(n.format(r.ts_in_delta).as_bytes());
    }
    out.push(b']');
}

/// Columns of each record in a history stream: [`MBO_FIELDS`] and `ts_in_delta` (every
/// field of the stored record).
pub const HISTORY_FIELDS: [&str; 14] = [
    "index",
    "ts_recv",
    "ts_event",
    "instrument_id",
    "publisher_id",
    "action",
    "side",
    "price",
    "size",
    "order_id",
    "flags",
    "sequence",
    "channel_id",
    "ts_in_delta",
];

/// Action and side codes are ASCII letters; anything else (corrupt input) is sent as `?` so
/// the JSON stays valid.
fn push_code(out: &mut Vec<u8>, c: u8) {
    out.push(if c.is_ascii_alphanumeric() { c } else { b'?' });
}

/// Whether the server can serve books.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Waiting for the feed's first event boundary.
    Starting,
    /// Books are being served.
    Ready,
    /// The feed failed; the message says why.
    Failed(String),
    /// The books may be behind and are not to be trusted as current: a gateway that lost its
    /// ingest or its NATS connection, or is resynchronising. The message says why.
    Stale(String),
}

impl Health {
    /// `starting`, `ready`, `failed` or `stale`.
    pub fn label(&self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Ready => "ready",
            Health::Failed(_) => "failed",
            Health::Stale(_) => "stale",
        }
    }
}

/// What the server knows of its feed.
#[derive(Debug, Clone)]
pub struct FeedInfo {
    /// `file`, `simulator`, `historical` or `live`.
    pub source: &'static str,
    /// A short description (the file's name, the simulator seed, the dataset).
    pub description: String,
    /// The feed's metadata.
    pub metadata: FeedMetadata,
    /// Symbol of each instrument id the metadata names.
    pub symbols: HashMap<u32, Arc<str>>,
}

impl FeedInfo {
    /// From a feed's metadata.
    pub fn new(metadata: FeedMetadata, description: String) -> Self {
        let symbols = metadata
            .symbols
            .iter()
            .map(|s| (s.instrument_id, Arc::from(s.symbol.as_str())))
            .collect();
        Self {
            source: metadata.source.label(),
            description,
            metadata,
            symbols,
        }
    }

    /// The feed's symbol mappings, for storage (`publisher_id` 0: the mapping holds for every
    /// publisher, which is what a DBN file's metadata says).
    pub fn symbol_mappings(&self) -> Vec<mbo_store::SymbolMapping> {
        self.metadata
            .symbols
            .iter()
            .map(|s| mbo_store::SymbolMapping {
                instrument_id: s.instrument_id,
                publisher_id: 0,
                symbol: s.symbol.clone(),
            })
            .collect()
    }

    /// The symbol of `instrument_id` (its id as text when unknown).
    pub fn symbol_of(&self, instrument_id: u32) -> Arc<str> {
        self.symbols
            .get(&instrument_id)
            .cloned()
            .unwrap_or_else(|| Arc::from(instrument_id.to_string()))
    }
}

/// The shared state between the engine (writer) and every reader.
#[derive(Debug)]
pub struct Hub {
    /// Books and their latest frames.
    pub directory: ArcSwap<Directory>,
    /// Record batches for MBO streams.
    pub mbo: broadcast::Sender<Arc<MboBatch>>,
    /// The feed.
    pub feed: FeedInfo,
    /// Control of the replay, for replayable sources.
    pub replay: Option<ReplayHandle>,
    /// Current feed epoch.
    pub epoch: AtomicU64,
    /// Bumped when the replay's state or pace changes (a command, the end, a reset): book
    /// streams wait on it to send `status` at once instead of polling the replay.
    pub control_changes: watch::Sender<u64>,
    health: Mutex<Health>,
}

impl Hub {
    /// A hub for a feed.
    pub fn new(feed: FeedInfo, replay: Option<ReplayHandle>) -> Self {
        let (mbo, _) = broadcast::channel(MBO_RING);
        Self {
            directory: ArcSwap::from_pointee(Directory::default()),
            mbo,
            feed,
            replay,
            epoch: AtomicU64::new(0),
            control_changes: watch::Sender::new(0),
            health: Mutex::new(Health::Starting),
        }
    }

    /// Current health.
    pub fn health(&self) -> Health {
        match self.health.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Sets the health.
    pub fn set_health(&self, health: Health) {
        match self.health.lock() {
            Ok(mut h) => *h = health,
            Err(poisoned) => *poisoned.into_inner() = health,
        }
    }

    /// Tells book streams the replay's state or pace changed.
    pub fn control_changed(&self) {
        self.control_changes.send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn rec(instrument_id: u32, action: u8) -> MboMsg {
        let mut r = MboMsg::default();
        r.hd.instrument_id = instrument_id;
        r.action = action as std::os::raw::c_char;
        r.side = b'B' as std::os::raw::c_char;
        r.price = 1_500_000_000;
        r
    }

    #[test]
    fn mbo_json_is_valid_and_filters_by_instrument() {
        let b = MboBatch::new(2, 10, 99, vec![rec(1, b'A'), rec(2, b'C'), rec(1, b'T')]);
        assert_eq!(b.single_instrument, None);
        let (all, n) = b.json(None);
        assert_eq!(n, 3);
        let v: serde_json::Value = serde_json::from_slice(&all).unwrap();
        assert_eq!(v["count"], 3);
        assert_eq!(v["records"][1][0], 11);
        assert_eq!(v["records"][1][5], "C");
        assert_eq!(v["records"][0][7], 1_500_000_000i64);
        assert!(std::str::from_utf8(&all)
            .unwrap()
            .starts_with("{\"server_ts\":99,"));
        let (one, n1) = b.json(Some(1));
        assert_eq!(n1, 2);
        let v: serde_json::Value = serde_json::from_slice(&one).unwrap();
        assert_eq!(v["records"][1][0], 12);
        assert_eq!(v["records"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn corrupt_codes_keep_json_valid() {
        let b = MboBatch::new(0, 0, 0, vec![rec(1, b'"')]);
        let (j, _) = b.json(None);
        let v: serde_json::Value = serde_json::from_slice(&j).unwrap();
        assert_eq!(v["records"][0][5], "?");
    }
}
