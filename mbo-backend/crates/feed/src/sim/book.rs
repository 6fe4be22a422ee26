//! The simulator's own light book: just what generating valid records needs.
//!
//! Why not `mbo_book::Book`: the generator must pick "an order N ticks behind the touch" and
//! "the k-th order of that level" in O(1)-ish time, which the engine's public API does not
//! offer, and it must stay allocation-free per record. Prices are indexes into a fixed window
//! of ticks around the instrument's start price (the generator keeps every price inside it),
//! so a level is an array slot and "next non-empty level" is a bitset scan.

/// "No slot".
pub(crate) const NIL: u32 = u32::MAX;

/// Ticks in the price window of one instrument.
pub(crate) const WINDOW: u32 = 1 << 14;

/// Order side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Side {
    Bid,
    Ask,
}

impl Side {
    /// Databento's side character.
    pub(crate) fn code(self) -> u8 {
        match self {
            Side::Bid => b'B',
            Side::Ask => b'A',
        }
    }

    pub(crate) fn opposite(self) -> Side {
        match self {
            Side::Bid => Side::Ask,
            Side::Ask => Side::Bid,
        }
    }
}

/// A resting order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Order {
    pub(crate) id: u64,
    pub(crate) size: u32,
    /// Price index in the window.
    pub(crate) idx: u32,
    pub(crate) prev: u32,
    pub(crate) next: u32,
    pub(crate) side: Side,
}

#[derive(Debug, Clone, Copy)]
struct Level {
    head: u32,
    tail: u32,
    count: u32,
}

const EMPTY_LEVEL: Level = Level {
    head: NIL,
    tail: NIL,
    count: 0,
};

/// One side's levels: a slot per tick of the window plus a bitset of non-empty levels.
#[derive(Debug, Clone)]
struct Ladder {
    levels: Vec<Level>,
    bits: Vec<u64>,
    /// Best non-empty index, or `NIL`.
    best: u32,
    orders: u32,
    side: Side,
}

impl Ladder {
    fn new(side: Side) -> Self {
        Self {
            levels: vec![EMPTY_LEVEL; WINDOW as usize],
            bits: vec![0; (WINDOW / 64) as usize],
            best: NIL,
            orders: 0,
            side,
        }
    }

    fn clear(&mut self) {
        self.levels.fill(EMPTY_LEVEL);
        self.bits.fill(0);
        self.best = NIL;
        self.orders = 0;
    }

    /// Highest non-empty index `<= i`.
    fn find_le(&self, i: u32) -> Option<u32> {
        let mut w = (i / 64) as usize;
        let mut m = self.bits[w] & (u64::MAX >> (63 - (i % 64)));
        loop {
            if m != 0 {
                return Some(w as u32 * 64 + 63 - m.leading_zeros());
            }
            if w == 0 {
                return None;
            }
            w -= 1;
            m = self.bits[w];
        }
    }

    /// Lowest non-empty index `>= i`.
    fn find_ge(&self, i: u32) -> Option<u32> {
        let mut w = (i / 64) as usize;
        let mut m = self.bits[w] & (u64::MAX << (i % 64));
        loop {
            if m != 0 {
                return Some(w as u32 * 64 + m.trailing_zeros());
            }
            w += 1;
            if w == self.bits.len() {
                return None;
            }
            m = self.bits[w];
        }
    }

    /// Next non-empty level at `i` or deeper (away from the touch).
    fn deeper(&self, i: u32) -> Option<u32> {
        match self.side {
            Side::Bid => self.find_le(i),
            Side::Ask => self.find_ge(i),
        }
    }

    /// Next non-empty level at `i` or shallower (toward the touch).
    fn shallower(&self, i: u32) -> Option<u32> {
        match self.side {
            Side::Bid => self.find_ge(i),
            Side::Ask => self.find_le(i),
        }
    }

    fn better(&self, a: u32, b: u32) -> bool {
        match self.side {
            Side::Bid => a > b,
            Side::Ask => a < b,
        }
    }

    fn mark(&mut self, i: u32) {
        self.bits[(i / 64) as usize] |= 1 << (i % 64);
        if self.best == NIL || self.better(i, self.best) {
            self.best = i;
        }
    }

    fn unmark(&mut self, i: u32) {
        self.bits[(i / 64) as usize] &= !(1 << (i % 64));
        if self.best == i {
            self.best = match self.side {
                Side::Bid if i > 0 => self.find_le(i - 1),
                Side::Ask if i + 1 < WINDOW => self.find_ge(i + 1),
                _ => None,
            }
            .unwrap_or(NIL);
        }
    }
}

/// Orders in a slab, queued per level in FIFO order.
#[derive(Debug, Clone)]
pub(crate) struct SimBook {
    orders: Vec<Order>,
    free: Vec<u32>,
    bids: Ladder,
    asks: Ladder,
}

impl SimBook {
    pub(crate) fn new() -> Self {
        Self {
            orders: Vec::with_capacity(1024),
            free: Vec::with_capacity(1024),
            bids: Ladder::new(Side::Bid),
            asks: Ladder::new(Side::Ask),
        }
    }

    /// Empties the book, keeping capacity.
    pub(crate) fn clear(&mut self) {
        self.orders.clear();
        self.free.clear();
        self.bids.clear();
        self.asks.clear();
    }

    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Bid => &self.bids,
            Side::Ask => &self.asks,
        }
    }

    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Resting orders on both sides.
    pub(crate) fn len(&self) -> u32 {
        self.bids.orders + self.asks.orders
    }

    /// Resting orders on `side`.
    pub(crate) fn side_len(&self, side: Side) -> u32 {
        self.ladder(side).orders
    }

    /// Best price index of `side`.
    #[inline]
    pub(crate) fn best(&self, side: Side) -> Option<u32> {
        let b = self.ladder(side).best;
        (b != NIL).then_some(b)
    }

    pub(crate) fn order(&self, slot: u32) -> &Order {
        &self.orders[slot as usize]
    }

    /// Orders resting at `idx` on `side`.
    pub(crate) fn level_count(&self, side: Side, idx: u32) -> u32 {
        self.ladder(side).levels[idx as usize].count
    }

    /// First order of the level at `idx` (`NIL` when empty).
    pub(crate) fn head(&self, side: Side, idx: u32) -> u32 {
        self.ladder(side).levels[idx as usize].head
    }

    /// Ticks of `idx` behind the best of `side` (0 when the side is empty).
    pub(crate) fn behind(&self, side: Side, idx: u32) -> u32 {
        match (self.best(side), side) {
            (Some(b), Side::Bid) => b.saturating_sub(idx),
            (Some(b), Side::Ask) => idx.saturating_sub(b),
            (None, _) => 0,
        }
    }

    /// The non-empty level of `side` closest to `depth` ticks behind its touch, looking deeper
    /// first. `None` when the side is empty.
    pub(crate) fn level_near_depth(&self, side: Side, depth: u32) -> Option<u32> {
        let ladder = self.ladder(side);
        let best = self.best(side)?;
        let target = match side {
            Side::Bid => best.saturating_sub(depth),
            Side::Ask => best.saturating_add(depth).min(WINDOW - 1),
        };
        ladder.deeper(target).or_else(|| ladder.shallower(target))
    }

    /// The next non-empty level of `side` strictly deeper than `idx`.
    pub(crate) fn next_deeper(&self, side: Side, idx: u32) -> Option<u32> {
        let ladder = self.ladder(side);
        match side {
            Side::Bid if idx > 0 => ladder.find_le(idx - 1),
            Side::Ask if idx + 1 < WINDOW => ladder.find_ge(idx + 1),
            _ => None,
        }
    }

    /// The order at queue position `r * count / 2^32` of the level at `idx` (`r` uniform in
    /// `u32`), or `NIL` for an empty level.
    pub(crate) fn pick_in_level(&self, side: Side, idx: u32, r: u32) -> u32 {
        let level = self.ladder(side).levels[idx as usize];
        let k = (u64::from(r) * u64::from(level.count)) >> 32;
        let mut slot = level.head;
        for _ in 0..k {
            slot = self.orders[slot as usize].next;
        }
        slot
    }

    /// Rests a new order at the back of its level; returns its slot.
    pub(crate) fn add(&mut self, id: u64, side: Side, idx: u32, size: u32) -> u32 {
        let order = Order {
            id,
            size,
            idx,
            prev: NIL,
            next: NIL,
            side,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.orders[s as usize] = order;
                s
            }
            None => {
                self.orders.push(order);
                (self.orders.len() - 1) as u32
            }
        };
        self.link_back(slot);
        slot
    }

    /// Removes the order in `slot`.
    pub(crate) fn remove(&mut self, slot: u32) {
        self.unlink(slot);
        self.free.push(slot);
    }

    /// Changes the size of the order in `slot`, keeping its place (a decrease).
    pub(crate) fn set_size(&mut self, slot: u32, size: u32) {
        self.orders[slot as usize].size = size;
    }

    /// Moves the order in `slot` to the back of the level at `idx` with `size` (a price change
    /// or a size increase: priority is lost).
    pub(crate) fn requeue(&mut self, slot: u32, idx: u32, size: u32) {
        self.unlink(slot);
        let o = &mut self.orders[slot as usize];
        o.idx = idx;
        o.size = size;
        self.link_back(slot);
    }

    fn link_back(&mut self, slot: u32) {
        let (side, idx) = {
            let o = &self.orders[slot as usize];
            (o.side, o.idx)
        };
        let ladder = self.ladder_mut(side);
        let level = &mut ladder.levels[idx as usize];
        let tail = level.tail;
        level.tail = slot;
        level.count += 1;
        if tail == NIL {
            level.head = slot;
            ladder.mark(idx);
        }
        ladder.orders += 1;
        if tail != NIL {
            self.orders[tail as usize].next = slot;
        }
        let o = &mut self.orders[slot as usize];
        o.prev = tail;
        o.next = NIL;
    }

    fn unlink(&mut self, slot: u32) {
        let o = self.orders[slot as usize];
        if o.prev != NIL {
            self.orders[o.prev as usize].next = o.next;
        }
        if o.next != NIL {
            self.orders[o.next as usize].prev = o.prev;
        }
        let ladder = self.ladder_mut(o.side);
        ladder.orders -= 1;
        let level = &mut ladder.levels[o.idx as usize];
        if level.head == slot {
            level.head = o.next;
        }
        if level.tail == slot {
            level.tail = o.prev;
        }
        level.count -= 1;
        if level.count == 0 {
            ladder.unmark(o.idx);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_levels_follow_adds_and_removals() {
        let mut b = SimBook::new();
        let s1 = b.add(1, Side::Bid, 100, 1);
        let s2 = b.add(2, Side::Bid, 98, 1);
        let s3 = b.add(3, Side::Ask, 101, 2);
        let s4 = b.add(4, Side::Ask, 101, 3);
        assert_eq!(b.best(Side::Bid), Some(100));
        assert_eq!(b.best(Side::Ask), Some(101));
        assert_eq!(b.level_near_depth(Side::Bid, 1), Some(98));
        assert_eq!(b.level_near_depth(Side::Bid, 5), Some(98));
        assert_eq!(b.pick_in_level(Side::Ask, 101, 0), s3);
        assert_eq!(b.pick_in_level(Side::Ask, 101, u32::MAX), s4);
        b.remove(s1);
        assert_eq!(b.best(Side::Bid), Some(98));
        b.requeue(s3, 101, 5);
        assert_eq!(b.head(Side::Ask, 101), s4);
        b.remove(s2);
        assert_eq!(b.best(Side::Bid), None);
        assert_eq!(b.len(), 2);
        b.remove(s3);
        b.remove(s4);
        assert_eq!(b.best(Side::Ask), None);
        assert_eq!(b.len(), 0);
    }

    #[test]
    fn bitset_scans_cross_words() {
        let mut b = SimBook::new();
        b.add(1, Side::Ask, 5, 1);
        b.add(2, Side::Ask, 700, 1);
        assert_eq!(b.level_near_depth(Side::Ask, 3), Some(700));
        assert_eq!(b.level_near_depth(Side::Ask, 10_000), Some(700));
        b.add(3, Side::Bid, WINDOW - 1, 1);
        b.add(4, Side::Bid, 0, 1);
        assert_eq!(b.level_near_depth(Side::Bid, 100), Some(0));
    }
}
