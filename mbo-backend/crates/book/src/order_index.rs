//! `order_id → slab slot`: an open-addressing hash table specialised for the engine.
//!
//! Every add, cancel and modify looks an order up here, so this table is on the hottest path.
//! `std`'s `HashMap` (hashbrown, with FxHash) measured ~50–70 instructions per operation in
//! callgrind on the real files — a third of the engine's work. This table does one thing:
//! `u64` keys to `u32` values, Fibonacci hashing, linear probing at ≤ 50 % load, and
//! backward-shift deletion (no tombstones, so probe lengths never degrade). An operation is
//! a multiply, a shift and usually one cache line.
//!
//! Capacity only grows (doubling); `clear` keeps it, so the steady state never allocates.

use crate::slab::NIL;

#[derive(Debug, Clone, Copy)]
struct Cell {
    key: u64,
    /// `NIL` marks an empty cell (slab slots are always `< NIL`).
    val: u32,
}

const EMPTY: Cell = Cell { key: 0, val: NIL };
const MIN_CAPACITY: usize = 64;

/// Open-addressing map from order id to order slot.
#[derive(Debug, Clone)]
pub(crate) struct OrderIndex {
    cells: Vec<Cell>,
    /// `capacity - 1` (capacity is a power of two).
    mask: usize,
    /// `64 - log2(capacity)`: the hash is the top bits of the product.
    shift: u32,
    len: usize,
}

impl Default for OrderIndex {
    fn default() -> Self {
        Self {
            cells: Vec::new(),
            mask: 0,
            shift: 64,
            len: 0,
        }
    }
}

impl OrderIndex {
    #[inline]
    fn home(&self, key: u64) -> usize {
        // Fibonacci hashing: the golden-ratio multiple spreads sequential ids evenly.
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Number of entries.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Position of `key`'s cell, if present.
    #[inline]
    pub(crate) fn find(&self, key: u64) -> Option<usize> {
        if self.cells.is_empty() {
            return None;
        }
        let mut i = self.home(key);
        loop {
            let c = self.cells[i];
            if c.val == NIL {
                return None;
            }
            if c.key == key {
                return Some(i);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: u64) -> Option<u32> {
        self.find(key).map(|i| self.cells[i].val)
    }

    /// Value stored at a position returned by [`find`](Self::find).
    #[inline]
    pub(crate) fn value_at(&self, pos: usize) -> u32 {
        self.cells[pos].val
    }

    /// Inserts `key → val` if `key` is absent; otherwise returns the existing value and
    /// changes nothing. One probe sequence either way.
    #[inline]
    pub(crate) fn insert_new(&mut self, key: u64, val: u32) -> Result<(), u32> {
        if (self.len + 1) * 2 > self.cells.len() {
            self.grow();
        }
        let mut i = self.home(key);
        loop {
            let c = self.cells[i];
            if c.val == NIL {
                self.cells[i] = Cell { key, val };
                self.len += 1;
                return Ok(());
            }
            if c.key == key {
                return Err(c.val);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Removes `key`; returns its value.
    #[inline]
    pub(crate) fn remove(&mut self, key: u64) -> Option<u32> {
        let pos = self.find(key)?;
        let val = self.cells[pos].val;
        self.remove_at(pos);
        Some(val)
    }

    /// Removes the entry at a position returned by [`find`](Self::find), shifting later
    /// members of its probe run back so no tombstone is left.
    #[inline]
    pub(crate) fn remove_at(&mut self, pos: usize) {
        let mut hole = pos;
        let mut i = (pos + 1) & self.mask;
        loop {
            let c = self.cells[i];
            if c.val == NIL {
                break;
            }
            // Move `c` into the hole if its home is not cyclically in (hole, i].
            let home = self.home(c.key);
            let dist_home = i.wrapping_sub(home) & self.mask;
            let dist_hole = i.wrapping_sub(hole) & self.mask;
            if dist_home >= dist_hole {
                self.cells[hole] = c;
                hole = i;
            }
            i = (i + 1) & self.mask;
        }
        self.cells[hole] = EMPTY;
        self.len -= 1;
    }

    /// Forgets every entry, keeping the capacity.
    pub(crate) fn clear(&mut self) {
        if self.len > 0 {
            self.cells.fill(EMPTY);
            self.len = 0;
        }
    }

    /// Every `(key, value)`, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        self.cells
            .iter()
            .filter(|c| c.val != NIL)
            .map(|c| (c.key, c.val))
    }

    #[cold]
    fn grow(&mut self) {
        let cap = (self.cells.len() * 2).max(MIN_CAPACITY);
        let old = std::mem::replace(&mut self.cells, vec![EMPTY; cap]);
        self.mask = cap - 1;
        self.shift = 64 - cap.trailing_zeros();
        self.len = 0;
        for c in old {
            if c.val != NIL {
                let _ = self.insert_new(c.key, c.val);
            }
        }
    }
}

#[cfg(test)]
mod tests;
