//! One side's price levels, sorted so the best price is last.
//!
//! Why a sorted `Vec` and not a `BTreeMap`: almost all activity is within a few levels of the
//! touch, which sits at the end of the vector, so inserting or removing a level there moves a
//! handful of entries, and the best level is a plain index. Lookups check the last few
//! entries before falling back to a binary search. Keys are the price for bids and `!price`
//! (order-reversing, never overflows) for asks, so "best" is always the largest key.

use rustc_hash::FxHashMap;

use crate::Side;

/// A ladder entry: the sort key and the level's slot in the book's level slab.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rung {
    pub(crate) key: i64,
    pub(crate) slot: u32,
}

/// How many entries next to the touch are scanned linearly before binary search.
const NEAR_TOUCH: usize = 4;

/// The levels of one side, best last.
#[derive(Debug, Clone)]
pub(crate) struct Ladder {
    side: Side,
    rungs: Vec<Rung>,
    by_price: FxHashMap<i64, u32>,
}

impl Ladder {
    pub(crate) fn new(side: Side) -> Self {
        Self {
            side,
            rungs: Vec::new(),
            by_price: FxHashMap::default(),
        }
    }

    #[inline]
    pub(crate) fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Bid => price,
            Side::Ask => !price,
        }
    }

    #[inline]
    pub(crate) fn price_of(&self, key: i64) -> i64 {
        // `!` is its own inverse.
        self.key(key)
    }

    /// Slot of the level at `price`, if it exists. One hash probe.
    #[inline]
    pub(crate) fn slot_of(&self, price: i64) -> Option<u32> {
        self.by_price.get(&price).copied()
    }

    /// `Ok(index)` of the rung at `price`, or `Err(index)` where it would be inserted.
    #[inline]
    pub(crate) fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        let n = self.rungs.len();
        // Near-touch fast path: scan from the best level down.
        let lo = n.saturating_sub(NEAR_TOUCH);
        let mut i = n;
        while i > lo {
            let k = self.rungs[i - 1].key;
            if k == key {
                return Ok(i - 1);
            }
            if k < key {
                return Err(i);
            }
            i -= 1;
        }
        match self.rungs[..lo].binary_search_by(|r| r.key.cmp(&key)) {
            Ok(i) => Ok(i),
            Err(i) => Err(i),
        }
    }

    #[inline]
    pub(crate) fn insert_at(&mut self, index: usize, price: i64, slot: u32) {
        let key = self.key(price);
        self.by_price.insert(price, slot);
        if index == self.rungs.len() {
            self.rungs.push(Rung { key, slot });
        } else {
            self.rungs.insert(index, Rung { key, slot });
        }
    }

    #[inline]
    pub(crate) fn remove_at(&mut self, index: usize) {
        let price = self.price_of(self.rungs[index].key);
        self.by_price.remove(&price);
        if index + 1 == self.rungs.len() {
            self.rungs.pop();
        } else {
            self.rungs.remove(index);
        }
    }

    /// Slot of the best level.
    #[inline]
    pub(crate) fn best_slot(&self) -> Option<u32> {
        self.rungs.last().map(|r| r.slot)
    }

    /// Best price.
    #[inline]
    pub(crate) fn best_price(&self) -> Option<i64> {
        self.rungs.last().map(|r| self.price_of(r.key))
    }

    /// Level slots, best first.
    #[inline]
    pub(crate) fn slots_best_first(&self) -> impl ExactSizeIterator<Item = u32> + '_ {
        self.rungs.iter().rev().map(|r| r.slot)
    }

    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.rungs.len()
    }

    pub(crate) fn clear(&mut self) {
        self.rungs.clear();
        self.by_price.clear();
    }

    pub(crate) fn rungs(&self) -> &[Rung] {
        &self.rungs
    }

    /// Entries in the price map (integrity checks).
    pub(crate) fn mapped(&self) -> usize {
        self.by_price.len()
    }
}
