//! The L2 book of one venue symbol: price levels keyed by `i64` price (1e-9 units).
//!
//! ## Design
//!
//! Each side is a `BTreeMap<i64, Level>` (bids read from the top down, asks from the bottom
//! up). Venues send absolute sizes per level, so an update is a set (size 0 removes). A level
//! keeps the decimals of the price and size as the venue wrote them, so it prints back to the
//! venue's exact text and Kraken's checksum hashes the same digits the venue hashed.
//! Crossed books are data: [`L2Book::is_crossed`] reports them, nothing is filtered.

use std::collections::BTreeMap;
use std::fmt;

use crate::decimal::{format_price, Qty};

/// Side of a book level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Side {
    /// Buy orders.
    Bid,
    /// Sell orders.
    Ask,
}

impl fmt::Display for Side {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Side::Bid => "bid",
            Side::Ask => "ask",
        })
    }
}

/// One price level's size and the decimals the venue printed it with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Level {
    /// Total size at the price, 1e-18 units.
    pub qty: Qty,
    /// Decimals of the price as the venue wrote it.
    pub price_decimals: u8,
    /// Decimals of the size as the venue wrote it.
    pub qty_decimals: u8,
}

/// A level as read from a book: price (1e-9 units) and [`Level`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LevelView {
    /// Price, 1e-9 units.
    pub price: i64,
    /// Size and printed decimals.
    pub level: Level,
}

impl LevelView {
    /// The price as the venue printed it.
    #[must_use]
    pub fn price_text(&self) -> String {
        format_price(self.price, self.level.price_decimals)
    }

    /// The size as the venue printed it.
    #[must_use]
    pub fn qty_text(&self) -> String {
        self.level.qty.format(self.level.qty_decimals)
    }
}

/// An aggregated (L2) book.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct L2Book {
    bids: BTreeMap<i64, Level>,
    asks: BTreeMap<i64, Level>,
}

impl L2Book {
    /// An empty book.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every level.
    pub fn clear(&mut self) {
        self.bids.clear();
        self.asks.clear();
    }

    fn side_mut(&mut self, side: Side) -> &mut BTreeMap<i64, Level> {
        match side {
            Side::Bid => &mut self.bids,
            Side::Ask => &mut self.asks,
        }
    }

    /// Sets a level to an absolute size; a zero size removes it.
    pub fn set(&mut self, side: Side, price: i64, level: Level) {
        let map = self.side_mut(side);
        if level.qty.is_zero() {
            map.remove(&price);
        } else {
            map.insert(price, level);
        }
    }

    /// Keeps only the best `depth` levels of each side (Kraken: levels that fall out of the
    /// subscribed depth are not sent as removals).
    pub fn truncate(&mut self, depth: usize) {
        while self.bids.len() > depth {
            self.bids.pop_first();
        }
        while self.asks.len() > depth {
            self.asks.pop_last();
        }
    }

    /// Best (highest) bid.
    #[must_use]
    pub fn best_bid(&self) -> Option<LevelView> {
        self.bids
            .last_key_value()
            .map(|(&price, &level)| LevelView { price, level })
    }

    /// Best (lowest) ask.
    #[must_use]
    pub fn best_ask(&self) -> Option<LevelView> {
        self.asks
            .first_key_value()
            .map(|(&price, &level)| LevelView { price, level })
    }

    /// Size at a price, if the level exists.
    #[must_use]
    pub fn level(&self, side: Side, price: i64) -> Option<Level> {
        match side {
            Side::Bid => self.bids.get(&price).copied(),
            Side::Ask => self.asks.get(&price).copied(),
        }
    }

    /// The best level strictly worse than `price` on `side` (bids: the highest below it;
    /// asks: the lowest above it), without walking the levels in between.
    #[must_use]
    pub fn next_worse(&self, side: Side, price: i64) -> Option<LevelView> {
        let view = |(&price, &level): (&i64, &Level)| LevelView { price, level };
        match side {
            Side::Bid => self.bids.range(..price).next_back().map(view),
            Side::Ask => self
                .asks
                .range((std::ops::Bound::Excluded(price), std::ops::Bound::Unbounded))
                .next()
                .map(view),
        }
    }

    /// Levels of a side from the best outwards.
    pub fn levels(&self, side: Side) -> Box<dyn Iterator<Item = LevelView> + '_> {
        let view = |(&price, &level): (&i64, &Level)| LevelView { price, level };
        match side {
            Side::Bid => Box::new(self.bids.iter().rev().map(view)),
            Side::Ask => Box::new(self.asks.iter().map(view)),
        }
    }

    pub(crate) fn bids_desc(&self) -> impl Iterator<Item = (&i64, &Level)> {
        self.bids.iter().rev()
    }

    pub(crate) fn asks_asc(&self) -> impl Iterator<Item = (&i64, &Level)> {
        self.asks.iter()
    }

    /// Number of levels on a side.
    #[must_use]
    pub fn len(&self, side: Side) -> usize {
        match side {
            Side::Bid => self.bids.len(),
            Side::Ask => self.asks.len(),
        }
    }

    /// Whether both sides are empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.bids.is_empty() && self.asks.is_empty()
    }

    /// Best bid ≥ best ask.
    #[must_use]
    pub fn is_crossed(&self) -> bool {
        match (self.bids.last_key_value(), self.asks.first_key_value()) {
            (Some((b, _)), Some((a, _))) => b >= a,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lv(q: u128) -> Level {
        Level {
            qty: Qty(q),
            price_decimals: 1,
            qty_decimals: 0,
        }
    }

    #[test]
    fn next_worse_skips_to_the_neighbour_outwards() {
        let mut b = L2Book::new();
        for p in [10, 20, 30] {
            b.set(Side::Bid, p, lv(1));
            b.set(Side::Ask, 100 + p, lv(1));
        }
        let next = |side, p| b.next_worse(side, p).map(|l| l.price);
        assert_eq!(next(Side::Bid, 30), Some(20));
        assert_eq!(next(Side::Bid, 25), Some(20));
        assert_eq!(next(Side::Bid, 10), None);
        assert_eq!(next(Side::Ask, 110), Some(120));
        assert_eq!(next(Side::Ask, 125), Some(130));
        assert_eq!(next(Side::Ask, 130), None);
        assert_eq!(next(Side::Ask, 0), Some(110));
    }

    #[test]
    fn set_remove_truncate_cross() {
        let mut b = L2Book::new();
        for p in 1..=5 {
            b.set(Side::Bid, p, lv(1));
            b.set(Side::Ask, 10 + p, lv(1));
        }
        b.set(Side::Bid, 3, lv(0));
        assert_eq!(b.len(Side::Bid), 4);
        b.truncate(2);
        assert_eq!(
            b.levels(Side::Bid).map(|l| l.price).collect::<Vec<_>>(),
            [5, 4]
        );
        assert_eq!(
            b.levels(Side::Ask).map(|l| l.price).collect::<Vec<_>>(),
            [11, 12]
        );
        assert!(!b.is_crossed());
        b.set(Side::Bid, 11, lv(2));
        assert!(b.is_crossed());
    }
}
