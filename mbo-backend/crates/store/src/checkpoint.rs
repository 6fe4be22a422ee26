//! Compact binary checkpoints of a book's full L3 state.
//!
//! Time travel rebuilds a book from the nearest checkpoint plus the events after it, so a
//! checkpoint must hold every resting order in exact priority order, and be small (one every
//! N events per book). Layout (all integers LEB128 varints, signed ones zigzag-coded):
//!
//! ```text
//! format: u8 = CHECKPOINT_FORMAT
//! the book's event state (BookState) at the checkpoint:
//!   event_index + 1 (0: no boundary yet), ts_event, ts_recv, sequence,
//!   flags (bit 0: maybe_bad_book)
//! per side, bids then asks:
//!   level_count
//!   per level, best first:
//!     price delta from the previous level (first: from 0), zigzag
//!     order_count
//!     per order, queue front first:
//!       order_id delta from the previous order of the side, zigzag (wrapping)
//!       size
//!       ts_priority delta from the previous order of the side, zigzag (wrapping)
//! ```
//!
//! Deltas make the common case one or two bytes: neighbouring levels are a few ticks apart,
//! order ids and priority timestamps of a queue are close. Side and price are implicit in the
//! section and level, so they cost nothing per order.

use mbo_book::{Book, BookKey, BookState, OrderView, Side};

use crate::{Result, StoreError};

/// Format number stored in `checkpoints.format` and as the blob's first byte.
pub const CHECKPOINT_FORMAT: u8 = 2;

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Encodes every resting order of `book` (see the module docs for the layout).
pub fn encode_checkpoint(book: &Book) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + book.order_count() * 6);
    out.push(CHECKPOINT_FORMAT);
    let state = book.state();
    put(&mut out, state.event_index.map_or(0, |i| i.wrapping_add(1)));
    put(&mut out, state.ts_event);
    put(&mut out, state.ts_recv);
    put(&mut out, u64::from(state.sequence));
    put(&mut out, u64::from(state.maybe_bad_book));
    for side in [Side::Bid, Side::Ask] {
        put(&mut out, book.level_count(side) as u64);
        let mut prev_price = 0i64;
        let mut prev_id = 0u64;
        let mut prev_ts = 0u64;
        for level in book.levels(side) {
            put(&mut out, zigzag(level.price.wrapping_sub(prev_price)));
            prev_price = level.price;
            put(&mut out, u64::from(level.count));
            for o in book.level_orders(side, level.price) {
                put(&mut out, zigzag(o.order_id.wrapping_sub(prev_id) as i64));
                put(&mut out, u64::from(o.size));
                put(&mut out, zigzag(o.ts_priority.wrapping_sub(prev_ts) as i64));
                prev_id = o.order_id;
                prev_ts = o.ts_priority;
            }
        }
    }
    out
}

/// A reader over a checkpoint blob.
struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn get(&mut self) -> Result<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self
                .data
                .get(self.pos)
                .ok_or(StoreError::Checkpoint("truncated"))?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StoreError::Checkpoint("varint too long"))
    }

    /// A count that cannot exceed the bytes left (each item takes at least one byte), so a
    /// corrupt count never triggers a huge allocation.
    fn count(&mut self) -> Result<usize> {
        let n = self.get()?;
        let left = (self.data.len() - self.pos) as u64;
        if n > left {
            return Err(StoreError::Checkpoint("count larger than the data"));
        }
        Ok(n as usize)
    }
}

/// A decoded checkpoint: the book's event state and its orders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedCheckpoint {
    /// The book's state at the checkpoint (`in_event` is always false: checkpoints are
    /// taken at event boundaries).
    pub state: BookState,
    /// Bids best level first, then asks, each level in queue order (the order
    /// [`Book::levels`] and [`Book::level_orders`] give).
    pub orders: Vec<OrderView>,
}

impl DecodedCheckpoint {
    /// The book this checkpoint describes, exactly (see [`Book::restore`]).
    pub fn into_book(self, key: BookKey) -> Book {
        Book::restore(key, self.orders, self.state)
    }
}

/// Decodes a checkpoint.
///
/// # Errors
/// [`StoreError::Checkpoint`] for an unknown format, truncated or trailing data, or a value
/// out of range.
pub fn decode_checkpoint(data: &[u8]) -> Result<DecodedCheckpoint> {
    let mut r = Reader { data, pos: 0 };
    match data.first() {
        Some(&CHECKPOINT_FORMAT) => r.pos = 1,
        Some(_) => return Err(StoreError::Checkpoint("unknown format")),
        None => return Err(StoreError::Checkpoint("empty")),
    }
    let event_index = r.get()?.checked_sub(1);
    let ts_event = r.get()?;
    let ts_recv = r.get()?;
    let sequence =
        u32::try_from(r.get()?).map_err(|_| StoreError::Checkpoint("sequence out of range"))?;
    let flags = r.get()?;
    let state = BookState {
        event_index,
        ts_event,
        ts_recv,
        sequence,
        maybe_bad_book: flags & 1 != 0,
        in_event: false,
    };
    let mut orders = Vec::new();
    for side in [Side::Bid, Side::Ask] {
        let levels = r.count()?;
        let mut price = 0i64;
        let mut id = 0u64;
        let mut ts = 0u64;
        for _ in 0..levels {
            price = price.wrapping_add(unzigzag(r.get()?));
            let n = r.count()?;
            orders.reserve(n);
            for _ in 0..n {
                id = id.wrapping_add(unzigzag(r.get()?) as u64);
                let size = u32::try_from(r.get()?)
                    .map_err(|_| StoreError::Checkpoint("size out of range"))?;
                ts = ts.wrapping_add(unzigzag(r.get()?) as u64);
                orders.push(OrderView {
                    order_id: id,
                    side,
                    price,
                    size,
                    ts_priority: ts,
                });
            }
        }
    }
    if r.pos != data.len() {
        return Err(StoreError::Checkpoint("trailing bytes"));
    }
    Ok(DecodedCheckpoint { state, orders })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zigzag_round_trips_extremes() {
        for v in [0, 1, -1, i64::MAX, i64::MIN, 12345, -98765] {
            assert_eq!(unzigzag(zigzag(v)), v);
        }
    }

    #[test]
    fn empty_book_round_trips_and_garbage_is_refused() {
        let book = Book::new(mbo_book::BookKey {
            instrument_id: 1,
            publisher_id: 1,
        });
        let blob = encode_checkpoint(&book);
        assert_eq!(blob, vec![CHECKPOINT_FORMAT, 0, 0, 0, 0, 0, 0, 0]);
        assert!(
            matches!(decode_checkpoint(&blob), Ok(c) if c.orders.is_empty()
            && c.state == BookState::default())
        );
        assert!(decode_checkpoint(&[]).is_err());
        assert!(decode_checkpoint(&[9, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_checkpoint(&[CHECKPOINT_FORMAT, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode_checkpoint(&[CHECKPOINT_FORMAT, 0xff]).is_err());
        assert!(decode_checkpoint(&[CHECKPOINT_FORMAT, 0, 0, 0, 0, 0, 100, 0]).is_err());
    }
}
