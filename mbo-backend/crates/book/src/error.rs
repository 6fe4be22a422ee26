//! Errors the engine reports.

use crate::Side;

/// A broken internal invariant found by [`Book::check_integrity`](crate::Book::check_integrity).
///
/// Any of these means a bug in the engine, never bad input: the engine accepts every record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntegrityError {
    /// The price ladder of a side is inconsistent (order, count, or lookup).
    #[error("{side} ladder: {detail}")]
    Ladder {
        /// Side of the ladder.
        side: Side,
        /// What is wrong.
        detail: &'static str,
    },
    /// A price level with no orders is still in the ladder.
    #[error("{side} level {price} is empty but still listed")]
    EmptyLevel {
        /// Side of the level.
        side: Side,
        /// Price, 1e-9 units.
        price: i64,
    },
    /// A level's cached total size or order count disagrees with its queue.
    #[error("{side} level {price}: cached size {cached_size}/count {cached_count}, queue has {size}/{count}")]
    LevelTotals {
        /// Side of the level.
        side: Side,
        /// Price, 1e-9 units.
        price: i64,
        /// Cached total size.
        cached_size: u64,
        /// Cached order count.
        cached_count: u32,
        /// Sum of the queue's sizes.
        size: u64,
        /// Number of orders in the queue.
        count: u32,
    },
    /// An order in a queue has a different price or side than its level, or broken links.
    #[error("order {order_id} misplaced: {detail}")]
    MisplacedOrder {
        /// The order.
        order_id: u64,
        /// What is wrong.
        detail: &'static str,
    },
    /// An order with zero size rests in the book.
    #[error("order {order_id} rests with size 0")]
    ZeroSizeOrder {
        /// The order.
        order_id: u64,
    },
    /// The id index and the queues disagree.
    #[error("index holds {indexed} orders, queues hold {queued}")]
    IndexMismatch {
        /// Orders in the id index.
        indexed: usize,
        /// Orders reachable from the ladders.
        queued: usize,
    },
    /// The id index points at a slot holding another order.
    #[error("index entry {order_id} points at a slot holding {found}")]
    IndexStale {
        /// Id looked up.
        order_id: u64,
        /// Id found in the slot.
        found: u64,
    },
}
