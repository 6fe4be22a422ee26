//! One side's price levels: `price → level slot`, best price in O(1), iteration best first.
//!
//! ## Why a tick-indexed array
//! Every add and every level change needs "the level at this price". `mbo bench` on the real
//! files showed a binary search (or a hash probe) for it as the engine's largest cost. Exchange
//! prices sit on a tick grid, so a side is stored as a direct-mapped array: index
//! `(price − base) / tick`, each cell the slot of a level or empty. Finding, creating and
//! removing a level are O(1) with no memmove; the best level is a cached index, moved only
//! when the best level empties (a short scan over the empty cells behind it).
//!
//! The tick is learned from the data: the gcd of the distances between the prices seen (a
//! price off the grid refines it and re-spaces the array — in practice only while the first
//! levels arrive). The array grows (never shrinks) to span the prices seen, with headroom.
//!
//! ## Fallback
//! If a side would need more than [`MAX_CELLS`] cells (a sparse book over a huge price range,
//! or a tick so fine the grid explodes), it converts, permanently, to a sorted vector (best
//! last; binary search; memmove on insert), which is correct for any prices. Neither form
//! allocates in steady state.

use crate::slab::NIL;
use crate::Side;

/// Largest tick-indexed array per side (4 MiB of `u32`). Beyond this the sorted form is used.
pub(crate) const MAX_CELLS: usize = 1 << 20;
/// Cells added on each side of the span when the array grows.
const HEADROOM: usize = 64;

/// The levels of one side.
#[derive(Debug, Clone)]
pub(crate) enum Ladder {
    /// Direct-mapped by tick (the normal case).
    Ticks(TickLadder),
    /// Sorted vector (the fallback for price ranges too wide for an array).
    Sorted(SortedLadder),
}

impl Ladder {
    pub(crate) fn new(side: Side) -> Self {
        Ladder::Ticks(TickLadder::new(side))
    }

    /// Slot of the level at `price`.
    #[inline]
    pub(crate) fn get(&self, price: i64) -> Option<u32> {
        match self {
            Ladder::Ticks(t) => t.get(price),
            Ladder::Sorted(s) => s.get(price),
        }
    }

    /// Records a new level. `price` must not be present.
    #[inline]
    pub(crate) fn insert(&mut self, price: i64, slot: u32) {
        if let Ladder::Ticks(t) = self {
            if t.insert(price, slot) {
                return;
            }
            // The array cannot hold this price: convert this side for good.
            let sorted = SortedLadder::from_ticks(t);
            *self = Ladder::Sorted(sorted);
        }
        if let Ladder::Sorted(s) = self {
            s.insert(price, slot);
        }
    }

    /// Forgets the level at `price` (which must be present).
    #[inline]
    pub(crate) fn remove(&mut self, price: i64) {
        match self {
            Ladder::Ticks(t) => t.remove(price),
            Ladder::Sorted(s) => s.remove(price),
        }
    }

    /// `(price, slot)` of the best level.
    #[inline]
    pub(crate) fn best(&self) -> Option<(i64, u32)> {
        match self {
            Ladder::Ticks(t) => t.best(),
            Ladder::Sorted(s) => s.best(),
        }
    }

    /// Number of levels.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        match self {
            Ladder::Ticks(t) => t.len,
            Ladder::Sorted(s) => s.rungs.len(),
        }
    }

    /// `(price, slot)` pairs, best first.
    #[inline]
    pub(crate) fn iter(&self) -> LadderIter<'_> {
        match self {
            Ladder::Ticks(t) => LadderIter::Ticks {
                ladder: t,
                next: t.best,
                left: t.len,
            },
            Ladder::Sorted(s) => LadderIter::Sorted {
                ladder: s,
                rungs: s.rungs.iter().rev(),
            },
        }
    }

    /// Forgets every level, keeping capacity (and the learned tick).
    pub(crate) fn clear(&mut self) {
        match self {
            Ladder::Ticks(t) => t.clear(),
            Ladder::Sorted(s) => s.rungs.clear(),
        }
    }

    /// Internal consistency: ordering, counts, best index. For `Book::check_integrity`.
    pub(crate) fn check(&self) -> Result<(), &'static str> {
        let mut prev: Option<i64> = None;
        let mut n = 0;
        for (price, _) in self.iter() {
            if let Some(p) = prev {
                let better_first = match self.side() {
                    Side::Bid => p > price,
                    Side::Ask => p < price,
                };
                if !better_first {
                    return Err("levels not strictly ordered best first");
                }
            }
            if self.get(price).is_none() {
                return Err("a listed level cannot be found by its price");
            }
            prev = Some(price);
            n += 1;
        }
        if n != self.len() {
            return Err("level count differs from the levels listed");
        }
        if let Ladder::Ticks(t) = self {
            let occupied = t.cells.iter().filter(|&&c| c != NIL).count();
            if occupied != t.len {
                return Err("tick array holds levels outside the listed range");
            }
        }
        Ok(())
    }

    fn side(&self) -> Side {
        match self {
            Ladder::Ticks(t) => t.side,
            Ladder::Sorted(s) => s.side,
        }
    }

    /// True if the side has fallen back to the sorted form (diagnostics).
    pub(crate) fn is_sorted_fallback(&self) -> bool {
        matches!(self, Ladder::Sorted(_))
    }
}

/// Iterator over a ladder's levels, best first.
pub(crate) enum LadderIter<'a> {
    Ticks {
        ladder: &'a TickLadder,
        next: usize,
        left: usize,
    },
    Sorted {
        ladder: &'a SortedLadder,
        rungs: std::iter::Rev<std::slice::Iter<'a, Rung>>,
    },
}

impl Iterator for LadderIter<'_> {
    type Item = (i64, u32);

    #[inline]
    fn next(&mut self) -> Option<(i64, u32)> {
        match self {
            LadderIter::Ticks { ladder, next, left } => {
                if *left == 0 {
                    return None;
                }
                // `left > 0` guarantees an occupied cell at or behind `next`.
                loop {
                    let i = *next;
                    let cell = ladder.cells[i];
                    match ladder.side {
                        Side::Bid => *next = i.wrapping_sub(1),
                        Side::Ask => *next = i + 1,
                    }
                    if cell != NIL {
                        *left -= 1;
                        return Some((ladder.price_at(i), cell));
                    }
                }
            }
            LadderIter::Sorted { ladder, rungs } => {
                rungs.next().map(|r| (ladder.price_of(r.key), r.slot))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = match self {
            LadderIter::Ticks { left, .. } => *left,
            LadderIter::Sorted { rungs, .. } => rungs.len(),
        };
        (n, Some(n))
    }
}

impl ExactSizeIterator for LadderIter<'_> {}

/// A side as a direct-mapped array over the tick grid.
#[derive(Debug, Clone)]
pub(crate) struct TickLadder {
    side: Side,
    /// Price of cell 0, 1e-9 units.
    base: i64,
    /// Grid spacing, 1e-9 units; 0 until two distinct prices have been seen.
    tick: i64,
    /// `u64::MAX / tick`: turns the division into a multiply (see `index`).
    recip: u64,
    cells: Vec<u32>,
    /// Index of the best level; meaningful when `len > 0`.
    best: usize,
    len: usize,
}

impl TickLadder {
    fn new(side: Side) -> Self {
        Self {
            side,
            base: 0,
            tick: 0,
            recip: 0,
            cells: Vec::new(),
            best: 0,
            len: 0,
        }
    }

    #[inline]
    fn price_at(&self, i: usize) -> i64 {
        self.base + i as i64 * self.tick
    }

    /// Cell index of `price` if it lies on the grid inside the array.
    #[inline]
    fn index(&self, price: i64) -> Option<usize> {
        let diff = price.checked_sub(self.base)?;
        if diff < 0 || self.tick == 0 {
            return if diff == 0 && !self.cells.is_empty() {
                Some(0)
            } else {
                None
            };
        }
        let diff = diff as u64;
        let tick = self.tick as u64;
        // Multiply by the reciprocal; the estimate is low by at most one. u128 products: no
        // overflow for any i64 prices.
        let (diff, tick) = (u128::from(diff), u128::from(tick));
        let mut q = (diff * u128::from(self.recip)) >> 64;
        if (q + 1) * tick <= diff {
            q += 1;
        }
        if q * tick != diff {
            return None;
        }
        let i = q as usize;
        (i < self.cells.len()).then_some(i)
    }

    #[inline]
    fn get(&self, price: i64) -> Option<u32> {
        let i = self.index(price)?;
        let c = self.cells[i];
        (c != NIL).then_some(c)
    }

    #[inline]
    fn is_better(&self, a: usize, b: usize) -> bool {
        match self.side {
            Side::Bid => a > b,
            Side::Ask => a < b,
        }
    }

    /// Inserts; `false` if the array would exceed [`MAX_CELLS`] (the caller falls back).
    #[inline]
    fn insert(&mut self, price: i64, slot: u32) -> bool {
        let i = match self.index(price) {
            Some(i) => i,
            None => match self.make_room(price) {
                Some(i) => i,
                None => return false,
            },
        };
        debug_assert_eq!(self.cells[i], NIL);
        self.cells[i] = slot;
        if self.len == 0 || self.is_better(i, self.best) {
            self.best = i;
        }
        self.len += 1;
        true
    }

    #[inline]
    fn remove(&mut self, price: i64) {
        let Some(i) = self.index(price) else {
            debug_assert!(false, "removing a level that is not in the ladder");
            return;
        };
        self.cells[i] = NIL;
        self.len -= 1;
        if self.len > 0 && i == self.best {
            // Walk behind the old best to the next occupied cell (one exists: len > 0).
            let mut j = i;
            loop {
                j = match self.side {
                    Side::Bid => j - 1,
                    Side::Ask => j + 1,
                };
                if self.cells[j] != NIL {
                    break;
                }
            }
            self.best = j;
        }
    }

    #[inline]
    fn best(&self) -> Option<(i64, u32)> {
        (self.len > 0).then(|| (self.price_at(self.best), self.cells[self.best]))
    }

    fn clear(&mut self) {
        self.cells.iter_mut().for_each(|c| *c = NIL);
        self.len = 0;
    }

    /// Re-grids and/or grows the array so `price` has a cell; returns its index, or `None`
    /// when that would need more than [`MAX_CELLS`] cells.
    #[cold]
    fn make_room(&mut self, price: i64) -> Option<usize> {
        if self.len == 0 {
            // Empty side: recentre on the new price, keep the learned tick and the capacity.
            let n = self.cells.len().clamp(2 * HEADROOM + 1, MAX_CELLS);
            self.cells.clear();
            self.cells.resize(n, NIL);
            let back = if self.tick == 0 { 0 } else { (n / 2) as i64 };
            let base = price.checked_sub(back.checked_mul(self.tick)?)?;
            // The whole array's prices must be representable (see below).
            base.checked_add((n as i64 - 1).checked_mul(self.tick)?)?;
            self.base = base;
            return self.index(price);
        }
        // Occupied span, in prices.
        let (lo_i, hi_i) = self.occupied_span();
        let lo = self.price_at(lo_i).min(price);
        let hi = self.price_at(hi_i).max(price);
        let dist = price.checked_sub(self.base)?.unsigned_abs();
        let tick = gcd(self.tick as u64, dist);
        let tick = i64::try_from(tick).ok()?;
        if tick == 0 {
            return None;
        }
        let span = u64::try_from(hi.checked_sub(lo)?).ok()? / tick as u64 + 1;
        let cells = usize::try_from(span).ok()?.checked_add(2 * HEADROOM)?;
        if cells > MAX_CELLS {
            return None;
        }
        // Every cell's price must be representable: checked, so extreme prices fall back to
        // the sorted form instead of overflowing.
        let new_base = lo.checked_sub((HEADROOM as i64).checked_mul(tick)?)?;
        new_base.checked_add((cells as i64 - 1).checked_mul(tick)?)?;
        let mut fresh = vec![NIL; cells];
        for (p, s) in self.levels() {
            let i = ((p - new_base) / tick) as usize;
            fresh[i] = s;
        }
        let best_price = self.price_at(self.best);
        self.cells = fresh;
        self.base = new_base;
        self.tick = tick;
        self.recip = u64::MAX / tick as u64;
        self.best = ((best_price - new_base) / tick) as usize;
        self.index(price)
    }

    fn occupied_span(&self) -> (usize, usize) {
        let first = self.cells.iter().position(|&c| c != NIL).unwrap_or(0);
        let last = self.cells.iter().rposition(|&c| c != NIL).unwrap_or(0);
        (first, last)
    }

    fn levels(&self) -> Vec<(i64, u32)> {
        self.cells
            .iter()
            .enumerate()
            .filter(|(_, &c)| c != NIL)
            .map(|(i, &c)| (self.price_at(i), c))
            .collect()
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A ladder entry of the sorted form: sort key and level slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rung {
    key: i64,
    slot: u32,
}

/// A side as a sorted vector, best last. Keys are the price for bids and `!price` for asks
/// (order-reversing, never overflows), so the best level always has the largest key.
#[derive(Debug, Clone)]
pub(crate) struct SortedLadder {
    side: Side,
    rungs: Vec<Rung>,
}

impl SortedLadder {
    fn from_ticks(t: &TickLadder) -> Self {
        let mut s = SortedLadder {
            side: t.side,
            rungs: Vec::with_capacity(t.len * 2),
        };
        for (p, slot) in t.levels() {
            s.insert(p, slot);
        }
        s
    }

    #[inline]
    fn key(&self, price: i64) -> i64 {
        match self.side {
            Side::Bid => price,
            Side::Ask => !price,
        }
    }

    #[inline]
    fn price_of(&self, key: i64) -> i64 {
        // `!` is its own inverse.
        self.key(key)
    }

    #[inline]
    fn find(&self, price: i64) -> Result<usize, usize> {
        let key = self.key(price);
        self.rungs.binary_search_by(|r| r.key.cmp(&key))
    }

    fn get(&self, price: i64) -> Option<u32> {
        self.find(price).ok().map(|i| self.rungs[i].slot)
    }

    fn insert(&mut self, price: i64, slot: u32) {
        let key = self.key(price);
        if let Err(i) = self.find(price) {
            self.rungs.insert(i, Rung { key, slot });
        }
    }

    fn remove(&mut self, price: i64) {
        if let Ok(i) = self.find(price) {
            self.rungs.remove(i);
        }
    }

    fn best(&self) -> Option<(i64, u32)> {
        self.rungs.last().map(|r| (self.price_of(r.key), r.slot))
    }
}
