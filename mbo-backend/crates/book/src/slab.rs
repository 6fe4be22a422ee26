//! A minimal slab: stable `u32` slots, a free list, and no deallocation in steady state.

/// Index meaning "no slot" in intrusive links.
pub(crate) const NIL: u32 = u32::MAX;

/// Vector-backed storage with slot reuse. Freed slots are recycled LIFO (cache-warm).
#[derive(Debug, Clone)]
pub(crate) struct Slab<T> {
    items: Vec<T>,
    free: Vec<u32>,
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            free: Vec::new(),
        }
    }
}

impl<T> Slab<T> {
    /// Stores `item` and returns its slot.
    #[inline]
    pub(crate) fn insert(&mut self, item: T) -> u32 {
        if let Some(slot) = self.free.pop() {
            self.items[slot as usize] = item;
            slot
        } else {
            self.items.push(item);
            (self.items.len() - 1) as u32
        }
    }

    /// Marks `slot` reusable. The item stays in place until overwritten.
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32) {
        self.free.push(slot);
    }

    #[inline]
    pub(crate) fn get(&self, slot: u32) -> &T {
        &self.items[slot as usize]
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, slot: u32) -> &mut T {
        &mut self.items[slot as usize]
    }

    /// Number of live items.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.items.len() - self.free.len()
    }

    /// Forgets every item, keeping the capacity.
    pub(crate) fn clear(&mut self) {
        self.items.clear();
        self.free.clear();
    }
}
