//! A deliberately naive reference book, written from `shared/docs/mbo-book.md` alone.
//!
//! It shares no code or data structure with the engine: each book is a plain `Vec` of resting
//! orders, searched linearly by id. Queue priority is a per-book counter stamped on an order
//! whenever it (re)joins the back of a queue; a level's queue is "the orders at that side and
//! price, sorted by that counter". Depth is recomputed from scratch on every call.
//!
//! Rules (one book per `(instrument_id, publisher_id)`):
//! * `A`: append at the back of its queue. Ignored when the side is not `B`/`A`, the price is
//!   undefined (`i64::MAX`) or the size is 0. An add of an id already resting replaces that
//!   order with a fresh one at the back. With `F_TOB` or `F_MBP` the add replaces its whole
//!   side with the one record (the side is left empty when the price is undefined).
//! * `C`: subtract the size; remove the order when nothing remains (a cancel for more than the
//!   remaining size removes it). Unknown order: counted, ignored.
//! * `M`: unknown order: counted, treated as an `A`. Known order: ignored if the side is not
//!   `B`/`A` or the price is undefined; size 0 removes it; a price change, side change or size
//!   increase sends it to the back of the queue at the new price; a size decrease at the same
//!   price and side keeps its place.
//! * `R`: remove every order of the book.
//! * `T`, `F`, `N` (and anything else): no change.

use std::collections::BTreeMap;
use std::ffi::c_char;

use dbn::MboMsg;

/// `F_LAST`: last record of an event.
pub const F_LAST: u8 = 0x80;
/// `F_TOB`: top-of-book record, not an order.
pub const F_TOB: u8 = 0x40;
/// `F_SNAPSHOT`: part of a snapshot.
pub const F_SNAPSHOT: u8 = 0x20;
/// `F_MBP`: aggregated price level, not an order.
pub const F_MBP: u8 = 0x10;
/// `F_BAD_TS_RECV`.
pub const F_BAD_TS_RECV: u8 = 0x08;
/// `F_MAYBE_BAD_BOOK`: the publisher signals a gap.
pub const F_MAYBE_BAD_BOOK: u8 = 0x04;
/// `F_PUBLISHER_SPECIFIC`.
pub const F_PUBLISHER_SPECIFIC: u8 = 0x02;
/// Databento's "no price".
pub const UNDEF: i64 = i64::MAX;

/// Book side, parsed from the record's side character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RefSide {
    /// `B`.
    Bid,
    /// `A`.
    Ask,
}

impl RefSide {
    /// `B` → bid, `A` → ask, anything else → none.
    pub fn parse(c: c_char) -> Option<RefSide> {
        if c == b'B' as c_char {
            Some(RefSide::Bid)
        } else if c == b'A' as c_char {
            Some(RefSide::Ask)
        } else {
            None
        }
    }

    /// True when `a` is a better price than `b` on this side.
    pub fn better(self, a: i64, b: i64) -> bool {
        match self {
            RefSide::Bid => a > b,
            RefSide::Ask => a < b,
        }
    }
}

/// One resting order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefOrder {
    /// Venue order id.
    pub order_id: u64,
    /// Side.
    pub side: RefSide,
    /// Price, 1e-9 units.
    pub price: i64,
    /// Remaining size (never 0 while resting).
    pub size: u32,
    /// Queue priority: smaller is earlier. Unique within a book.
    pub priority: u64,
    /// `ts_event` of the record that gave the order its current priority.
    pub ts_priority: u64,
    /// True for the level an `F_TOB`/`F_MBP` add stands for: it is not an order, so no
    /// cancel, modify or add finds it by id.
    pub aggregated: bool,
}

/// One aggregated price level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefLevel {
    /// Price, 1e-9 units.
    pub price: i64,
    /// Sum of the resting sizes.
    pub size: u64,
    /// Number of resting orders.
    pub count: u32,
}

/// What the reference counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefCounters {
    /// Records applied.
    pub records: u64,
    /// Records by action: `A`, `C`, `M`, `R`, `T`, `F`, `N`, other.
    pub adds: u64,
    /// `C` records.
    pub cancels: u64,
    /// `M` records.
    pub modifies: u64,
    /// `R` records.
    pub clears: u64,
    /// `T`, `F` and `N` records.
    pub no_ops: u64,
    /// Records with another action character.
    pub others: u64,
    /// Cancels of an order not resting.
    pub unknown_cancels: u64,
    /// Modifies of an order not resting (applied as adds).
    pub unknown_modifies: u64,
    /// Adds of an id already resting.
    pub duplicate_adds: u64,
    /// Cancels larger than the remaining size.
    pub over_cancels: u64,
    /// Records flagged `F_LAST`.
    pub boundaries: u64,
    /// Records flagged `F_SNAPSHOT`.
    pub snapshot_records: u64,
}

/// The naive book of one `(instrument_id, publisher_id)`.
#[derive(Debug, Clone, Default)]
pub struct RefBook {
    orders: Vec<RefOrder>,
    next_priority: u64,
    /// Per side (bids, asks), `price → (total size, order count)`, kept up to date by every
    /// change so the top of the book is cheap to read on large files. Full depth is always
    /// recomputed from `orders`, and [`RefBook::self_check`] compares the two.
    totals: [BTreeMap<i64, (u64, u32)>; 2],
    /// What this book has seen.
    pub counters: RefCounters,
    /// Set by a record flagged `F_MAYBE_BAD_BOOK`; reset by a clear that is not itself flagged.
    pub maybe_bad_book: bool,
}

impl RefBook {
    fn position(&self, order_id: u64) -> Option<usize> {
        self.orders
            .iter()
            .position(|o| o.order_id == order_id && !o.aggregated)
    }

    fn totals_mut(&mut self, side: RefSide) -> &mut BTreeMap<i64, (u64, u32)> {
        &mut self.totals[side as usize]
    }

    /// Counts `o` in its level's totals.
    fn count_in(&mut self, o: RefOrder) {
        let t = self.totals_mut(o.side).entry(o.price).or_insert((0, 0));
        t.0 += u64::from(o.size);
        t.1 += 1;
    }

    /// Takes `o` out of its level's totals.
    fn count_out(&mut self, o: RefOrder) {
        let totals = self.totals_mut(o.side);
        let t = totals
            .get_mut(&o.price)
            .expect("order counted in its level");
        t.0 -= u64::from(o.size);
        t.1 -= 1;
        if t.1 == 0 {
            assert_eq!(t.0, 0, "empty level with size");
            totals.remove(&o.price);
        }
    }

    fn push(&mut self, o: RefOrder) {
        self.count_in(o);
        self.orders.push(o);
    }

    fn remove_at(&mut self, i: usize) {
        let o = self.orders.swap_remove(i);
        self.count_out(o);
    }

    /// Replaces the order at `i` with `o` (same id).
    fn replace_at(&mut self, i: usize, o: RefOrder) {
        self.count_out(self.orders[i]);
        self.count_in(o);
        self.orders[i] = o;
    }

    fn take_priority(&mut self) -> u64 {
        self.next_priority += 1;
        self.next_priority
    }

    /// Applies one record. Returns true when it carries `F_LAST`.
    pub fn apply(&mut self, rec: &MboMsg) -> bool {
        let flags = rec.flags.raw();
        self.counters.records += 1;
        if flags & F_SNAPSHOT != 0 {
            self.counters.snapshot_records += 1;
        }
        let action = rec.action as u8;
        match action {
            b'A' => {
                self.counters.adds += 1;
                if flags & (F_TOB | F_MBP) != 0 {
                    self.replace_side(rec);
                } else {
                    self.add(rec);
                }
            }
            b'C' => {
                self.counters.cancels += 1;
                self.cancel(rec);
            }
            b'M' => {
                self.counters.modifies += 1;
                self.modify(rec);
            }
            b'R' => {
                self.counters.clears += 1;
                self.orders.clear();
                self.totals = Default::default();
                self.maybe_bad_book = false;
            }
            b'T' | b'F' | b'N' => self.counters.no_ops += 1,
            _ => self.counters.others += 1,
        }
        if flags & F_MAYBE_BAD_BOOK != 0 {
            self.maybe_bad_book = true;
        }
        let last = flags & F_LAST != 0;
        if last {
            self.counters.boundaries += 1;
        }
        last
    }

    fn add(&mut self, rec: &MboMsg) {
        let Some(side) = RefSide::parse(rec.side) else {
            return;
        };
        if rec.price == UNDEF || rec.size == 0 {
            return;
        }
        if let Some(i) = self.position(rec.order_id) {
            self.counters.duplicate_adds += 1;
            self.remove_at(i);
        }
        let priority = self.take_priority();
        self.push(RefOrder {
            order_id: rec.order_id,
            side,
            price: rec.price,
            size: rec.size,
            priority,
            ts_priority: rec.hd.ts_event,
            aggregated: false,
        });
    }

    fn replace_side(&mut self, rec: &MboMsg) {
        let Some(side) = RefSide::parse(rec.side) else {
            return;
        };
        self.orders.retain(|o| o.side != side);
        self.totals_mut(side).clear();
        // An undefined price (or a size of 0) leaves the side empty.
        if rec.price == UNDEF || rec.size == 0 {
            return;
        }
        let priority = self.take_priority();
        self.push(RefOrder {
            order_id: rec.order_id,
            side,
            price: rec.price,
            size: rec.size,
            priority,
            ts_priority: rec.hd.ts_event,
            aggregated: true,
        });
    }

    fn cancel(&mut self, rec: &MboMsg) {
        let Some(i) = self.position(rec.order_id) else {
            self.counters.unknown_cancels += 1;
            return;
        };
        let remaining = self.orders[i].size;
        if rec.size >= remaining {
            if rec.size > remaining {
                self.counters.over_cancels += 1;
            }
            self.remove_at(i);
        } else {
            let o = RefOrder {
                size: remaining - rec.size,
                ..self.orders[i]
            };
            self.replace_at(i, o);
        }
    }

    fn modify(&mut self, rec: &MboMsg) {
        let Some(i) = self.position(rec.order_id) else {
            self.counters.unknown_modifies += 1;
            self.add(rec);
            return;
        };
        let Some(side) = RefSide::parse(rec.side) else {
            return;
        };
        if rec.price == UNDEF {
            return;
        }
        if rec.size == 0 {
            self.remove_at(i);
            return;
        }
        let old = self.orders[i];
        if rec.price != old.price || side != old.side || rec.size > old.size {
            let priority = self.take_priority();
            let o = RefOrder {
                order_id: old.order_id,
                side,
                price: rec.price,
                size: rec.size,
                priority,
                ts_priority: rec.hd.ts_event,
                aggregated: false,
            };
            self.replace_at(i, o);
        } else {
            // Same price and side, size not larger: keeps its place.
            let o = RefOrder {
                size: rec.size,
                ..old
            };
            self.replace_at(i, o);
        }
    }

    /// Number of resting orders.
    pub fn order_count(&self) -> usize {
        self.orders.len()
    }

    /// A resting order by id.
    pub fn order(&self, order_id: u64) -> Option<RefOrder> {
        self.position(order_id).map(|i| self.orders[i])
    }

    /// Every resting order, in no particular order.
    pub fn orders(&self) -> &[RefOrder] {
        &self.orders
    }

    /// Best price of `side`.
    pub fn best(&self, side: RefSide) -> Option<i64> {
        let mut best: Option<i64> = None;
        for o in self.orders.iter().filter(|o| o.side == side) {
            best = match best {
                Some(b) if !side.better(o.price, b) => Some(b),
                _ => Some(o.price),
            };
        }
        best
    }

    /// Best bid ≥ best ask (both present).
    pub fn is_crossed(&self) -> bool {
        let best = |side| self.top(side, 1).first().map(|l| l.price);
        match (best(RefSide::Bid), best(RefSide::Ask)) {
            (Some(b), Some(a)) => b >= a,
            _ => false,
        }
    }

    /// Levels of `side`, best first, recomputed from the orders.
    pub fn depth(&self, side: RefSide) -> Vec<RefLevel> {
        let mut by_price: BTreeMap<i64, RefLevel> = BTreeMap::new();
        for o in self.orders.iter().filter(|o| o.side == side) {
            let l = by_price.entry(o.price).or_insert(RefLevel {
                price: o.price,
                size: 0,
                count: 0,
            });
            l.size += u64::from(o.size);
            l.count += 1;
        }
        let mut levels: Vec<RefLevel> = by_price.into_values().collect();
        if side == RefSide::Bid {
            levels.reverse();
        }
        levels
    }

    /// The `n` best levels of `side`, best first, from the running totals.
    pub fn top(&self, side: RefSide, n: usize) -> Vec<RefLevel> {
        let totals = &self.totals[side as usize];
        let level = |(&price, &(size, count)): (&i64, &(u64, u32))| RefLevel { price, size, count };
        match side {
            RefSide::Bid => totals.iter().rev().take(n).map(level).collect(),
            RefSide::Ask => totals.iter().take(n).map(level).collect(),
        }
    }

    /// The running totals agree with the orders.
    pub fn self_check(&self) -> Result<(), String> {
        for side in [RefSide::Bid, RefSide::Ask] {
            let scratch = self.depth(side);
            let running = self.top(side, usize::MAX);
            if scratch != running {
                return Err(format!(
                    "reference {side:?} totals drifted:\n from orders {scratch:?}\n running     {running:?}"
                ));
            }
            if self.best(side) != running.first().map(|l| l.price) {
                return Err(format!("reference {side:?} best price drifted"));
            }
        }
        Ok(())
    }

    /// Order ids resting at `price` on `side`, front of the queue first.
    pub fn queue(&self, side: RefSide, price: i64) -> Vec<u64> {
        let mut q: Vec<&RefOrder> = self
            .orders
            .iter()
            .filter(|o| o.side == side && o.price == price)
            .collect();
        q.sort_by_key(|o| o.priority);
        q.iter().map(|o| o.order_id).collect()
    }

    /// Every queue of `side`, best price first, each front first. One pass plus sorting.
    pub fn queues(&self, side: RefSide) -> Vec<(i64, Vec<RefOrder>)> {
        let mut by_price: BTreeMap<i64, Vec<RefOrder>> = BTreeMap::new();
        for o in self.orders.iter().filter(|o| o.side == side) {
            by_price.entry(o.price).or_default().push(*o);
        }
        let mut out: Vec<(i64, Vec<RefOrder>)> = by_price
            .into_iter()
            .map(|(p, mut q)| {
                q.sort_by_key(|o| o.priority);
                (p, q)
            })
            .collect();
        if side == RefSide::Bid {
            out.reverse();
        }
        out
    }
}

/// `(instrument_id, publisher_id)`.
pub type RefKey = (u32, u16);

/// Every reference book of a stream.
#[derive(Debug, Clone, Default)]
pub struct RefMarket {
    /// Books by key.
    pub books: BTreeMap<RefKey, RefBook>,
}

impl RefMarket {
    /// Applies `rec` to its book (created on first sight). Returns the key and whether the
    /// record closes an event.
    pub fn apply(&mut self, rec: &MboMsg) -> (RefKey, bool) {
        let key = (rec.hd.instrument_id, rec.hd.publisher_id);
        let last = self.books.entry(key).or_default().apply(rec);
        (key, last)
    }

    /// A book by key.
    pub fn book(&self, key: RefKey) -> Option<&RefBook> {
        self.books.get(&key)
    }
}
