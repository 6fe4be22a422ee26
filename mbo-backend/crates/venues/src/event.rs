//! Normalized events every venue module produces.
//!
//! Events name books by index into the venue's [`Books`](crate::Books) (no string per event),
//! so producing them allocates nothing beyond the output `Vec`'s capacity.

use crate::book::Side;
use crate::decimal::Qty;

/// Why a book needs a resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResyncReason {
    /// An update id or sequence number skipped ahead.
    Gap {
        /// The id expected next.
        expected: u64,
        /// The id received.
        got: u64,
    },
    /// The venue's checksum did not match the local book.
    Checksum {
        /// The venue's checksum.
        expected: u32,
        /// The local book's checksum.
        computed: u32,
    },
    /// The REST snapshot is older than the first buffered diff (Binance: fetch it again).
    SnapshotTooOld,
    /// Too many diffs buffered while waiting for a snapshot.
    BufferOverflow,
}

/// Aggressor side of a trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggressor {
    /// The taker bought.
    Buy,
    /// The taker sold.
    Sell,
    /// Not given.
    Unknown,
}

/// A trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trade {
    /// Book index of the symbol.
    pub book: usize,
    /// Aggressor side.
    pub side: Aggressor,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Size, 1e-18 units.
    pub qty: Qty,
    /// Venue time, nanoseconds since the Unix epoch (0 when absent or unparsable).
    pub venue_time_ns: u64,
}

/// A normalized event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The book was replaced by a snapshot (its levels follow as `Level` events).
    Snapshot {
        /// Book index.
        book: usize,
    },
    /// A level was set (size zero: removed).
    Level {
        /// Book index.
        book: usize,
        /// Side.
        side: Side,
        /// Price, 1e-9 units.
        price: i64,
        /// New absolute size.
        qty: Qty,
    },
    /// A message was fully applied and the book is consistent (publish point).
    Applied {
        /// Book index.
        book: usize,
    },
    /// The book is stale: the I/O layer must resync (new REST snapshot or resubscribe).
    ResyncNeeded {
        /// Book index.
        book: usize,
        /// Why.
        reason: ResyncReason,
    },
    /// A trade.
    Trade(Trade),
    /// The book is unknown until its next `Snapshot` (the connection was re-established, so
    /// nothing from the old session is trusted). Produced by the I/O layer, not by parsers.
    Reset {
        /// Book index.
        book: usize,
    },
}
