//! The best levels of one side of a venue book, kept in step with the engine's copy of the
//! book, so that publishing a frame copies one small contiguous array.
//!
//! ## Why
//! A venue frame holds the best [`VENUE_FRAME_DEPTH`] levels per side and a new frame is
//! published after every message. Built from the book's B-tree, that is a walk over a
//! hundred nodes' worth of entries per side per message; at 1,000 messages/s the thread sleeps
//! between messages and every walk runs on cold caches (measured with the venue bench: about
//! 1.5–2 µs per 100-level frame, most of a small message's receive → publish time). Kept
//! here, the same levels are one array whose copy the prefetcher streams.
//!
//! ## Design
//! A `VecDeque` holds the window worst first, best last, so the changes that dominate (near
//! the touch) move few elements, and dropping the worst level when a better one enters a full
//! window is a `pop_front`. Each change is applied after the book's (so the book can say which
//! level slides in when one leaves): a size change is found by binary search and written in
//! place; an insert goes in when the window holds the whole side or the price beats its
//! worst; a removal from the window pulls the book's next level outwards
//! ([`L2Book::next_worse`]). A snapshot invalidates the window (hundreds of inserts in book
//! order would each shift it); it is rebuilt from the book when next published. In debug
//! builds every publish checks the window against the book.

use std::cmp::Ordering;
use std::collections::VecDeque;

use mbo_venues::{L2Book, Qty, Side};

use crate::venues::frame::{VenueLevel, VENUE_FRAME_DEPTH};

/// The best levels of one side (see the module docs).
#[derive(Debug, Clone)]
pub struct TopLevels {
    side: Side,
    depth: usize,
    /// Worst first, best last.
    levels: VecDeque<VenueLevel>,
    /// False after a snapshot: rebuild from the book before use.
    valid: bool,
}

impl TopLevels {
    /// An empty window of [`VENUE_FRAME_DEPTH`] levels of `side`.
    pub fn new(side: Side) -> Self {
        Self::with_depth(side, VENUE_FRAME_DEPTH)
    }

    /// An empty window of `depth` levels (tests use small depths).
    pub fn with_depth(side: Side, depth: usize) -> Self {
        Self {
            side,
            depth,
            levels: VecDeque::with_capacity(depth + 1),
            valid: true,
        }
    }

    /// The book was emptied.
    pub fn clear(&mut self) {
        self.levels.clear();
        self.valid = true;
    }

    /// The book is being replaced wholesale: rebuild before the next use.
    pub fn invalidate(&mut self) {
        self.levels.clear();
        self.valid = false;
    }

    /// Whether `a` ranks before `b` in the window's order (worse first).
    fn order(&self, a: i64, b: i64) -> Ordering {
        match self.side {
            Side::Bid => a.cmp(&b),
            Side::Ask => b.cmp(&a),
        }
    }

    /// `book` has just had `price` set to `qty` on this side (zero: removed).
    pub fn apply(&mut self, book: &L2Book, price: i64, qty: Qty, mask: u8) {
        if !self.valid {
            return;
        }
        let at = self.levels.binary_search_by(|l| self.order(l.price, price));
        match at {
            Ok(i) if qty.is_zero() => {
                self.levels.remove(i);
                // The window held the best levels; one more of the book may now belong.
                if book.len(self.side) > self.levels.len() {
                    let next = match self.levels.front() {
                        Some(worst) => book.next_worse(self.side, worst.price),
                        None => book.levels(self.side).next(),
                    };
                    if let Some(l) = next {
                        self.levels.push_front(level(l.price, l.level.qty, mask));
                    }
                }
            }
            Ok(i) => {
                if let Some(l) = self.levels.get_mut(i) {
                    l.size = qty;
                }
            }
            Err(_) if qty.is_zero() => {}
            Err(i) => {
                if self.levels.len() < self.depth {
                    // Not full: the window is the whole side, so every level belongs.
                    self.levels.insert(i, level(price, qty, mask));
                } else if i > 0 {
                    // Better than the worst of a full window: it enters, the worst leaves.
                    self.levels.insert(i, level(price, qty, mask));
                    self.levels.pop_front();
                }
            }
        }
    }

    /// Rebuilds from the book if a snapshot invalidated the window.
    pub fn refresh(&mut self, book: &L2Book, mask: u8) {
        if self.valid {
            return;
        }
        self.levels.clear();
        for l in book.levels(self.side).take(self.depth) {
            self.levels.push_front(level(l.price, l.level.qty, mask));
        }
        self.valid = true;
    }

    /// The window best first, into `out` (cleared).
    pub fn copy_best_first(&self, out: &mut Vec<VenueLevel>) {
        out.clear();
        out.reserve(self.levels.len());
        out.extend(self.levels.iter().rev().copied());
    }

    /// Whether the window equals the best levels of `book` (debug checks and tests).
    pub fn matches(&self, book: &L2Book) -> bool {
        !self.valid
            || self.levels.iter().rev().map(|l| (l.price, l.size)).eq(book
                .levels(self.side)
                .take(self.depth)
                .map(|l| (l.price, l.level.qty)))
    }

    /// Levels held.
    pub fn len(&self) -> usize {
        self.levels.len()
    }

    /// Whether no level is held.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }
}

fn level(price: i64, size: Qty, mask: u8) -> VenueLevel {
    VenueLevel {
        price,
        size,
        mask,
        first: 0,
    }
}

#[cfg(test)]
mod tests {
    use mbo_venues::Level;
    use proptest::prelude::*;

    use super::*;

    fn set(book: &mut L2Book, tops: &mut [TopLevels; 2], side: Side, price: i64, qty: u128) {
        book.set(
            side,
            price,
            Level {
                qty: Qty(qty),
                price_decimals: 0,
                qty_decimals: 0,
            },
        );
        tops[usize::from(side == Side::Ask)].apply(book, price, Qty(qty), 1);
    }

    fn best_first(t: &TopLevels) -> Vec<(i64, u128)> {
        let mut v = Vec::new();
        t.copy_best_first(&mut v);
        v.iter().map(|l| (l.price, l.size.0)).collect()
    }

    #[test]
    fn window_follows_inserts_removals_and_refills_from_the_book() {
        let mut book = L2Book::new();
        let mut tops = [
            TopLevels::with_depth(Side::Bid, 3),
            TopLevels::with_depth(Side::Ask, 3),
        ];
        for p in [10, 11, 12, 13, 14] {
            set(&mut book, &mut tops, Side::Bid, p, 1);
            set(&mut book, &mut tops, Side::Ask, 100 + p, 1);
        }
        assert_eq!(best_first(&tops[0]), [(14, 1), (13, 1), (12, 1)]);
        assert_eq!(best_first(&tops[1]), [(110, 1), (111, 1), (112, 1)]);
        // A size change in place; a level outside the window changes nothing shown.
        set(&mut book, &mut tops, Side::Bid, 13, 7);
        set(&mut book, &mut tops, Side::Bid, 10, 9);
        assert_eq!(best_first(&tops[0]), [(14, 1), (13, 7), (12, 1)]);
        // Removing the best pulls the next level in from beyond the window.
        set(&mut book, &mut tops, Side::Bid, 14, 0);
        assert_eq!(best_first(&tops[0]), [(13, 7), (12, 1), (11, 1)]);
        set(&mut book, &mut tops, Side::Ask, 110, 0);
        assert_eq!(best_first(&tops[1]), [(111, 1), (112, 1), (113, 1)]);
        // A better price enters and pushes the worst out.
        set(&mut book, &mut tops, Side::Ask, 105, 4);
        assert_eq!(best_first(&tops[1]), [(105, 4), (111, 1), (112, 1)]);
        // A removal outside the window, then the book runs out of levels.
        set(&mut book, &mut tops, Side::Ask, 114, 0);
        for p in [105, 111, 112, 113] {
            set(&mut book, &mut tops, Side::Ask, p, 0);
        }
        assert!(tops[1].is_empty());
        // Invalidated: ignores changes, rebuilt on refresh.
        tops[0].invalidate();
        set(&mut book, &mut tops, Side::Bid, 20, 2);
        tops[0].refresh(&book, 1);
        assert_eq!(best_first(&tops[0]), [(20, 2), (13, 7), (12, 1)]);
        assert!(tops[0].matches(&book));
    }

    proptest! {
        /// Any sequence of sets (zero removes) keeps each window equal to the book's best
        /// levels, against the book itself as the reference.
        #[test]
        fn window_equals_the_books_best_levels(
            ops in prop::collection::vec((any::<bool>(), 0i64..40, 0u128..4), 1..400),
            depth in 1usize..8,
        ) {
            let mut book = L2Book::new();
            let mut tops = [
                TopLevels::with_depth(Side::Bid, depth),
                TopLevels::with_depth(Side::Ask, depth),
            ];
            for (bid, price, qty) in ops {
                let side = if bid { Side::Bid } else { Side::Ask };
                set(&mut book, &mut tops, side, price, qty);
                prop_assert!(tops[0].matches(&book));
                prop_assert!(tops[1].matches(&book));
                prop_assert_eq!(tops[0].len(), book.len(Side::Bid).min(depth));
                prop_assert_eq!(tops[1].len(), book.len(Side::Ask).min(depth));
            }
        }
    }
}
