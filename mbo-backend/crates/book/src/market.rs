//! All books of a stream, keyed by `(instrument_id, publisher_id)`.

use rustc_hash::FxHashMap;

use crate::book::{Book, BookKey};
use crate::counters::Counters;
use crate::MboMsg;

/// What applying one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The book the record belongs to.
    pub key: BookKey,
    /// Position of the record in the stream (0-based, metadata excluded).
    pub index: u64,
    /// True when the record carried `F_LAST`: the book is consistent and may be published.
    pub boundary: bool,
}

/// `Market::last` when no book has been used yet.
const NO_BOOK: u64 = u64::MAX;

/// A book key in one `u64`: instrument in bits 16..48, publisher in bits 0..16.
#[inline]
fn pack(key: BookKey) -> u64 {
    (u64::from(key.instrument_id) << 16) | u64::from(key.publisher_id)
}

/// Every book of one record stream.
#[derive(Debug, Clone)]
pub struct Market {
    books: Vec<Book>,
    by_key: FxHashMap<BookKey, usize>,
    /// Most recently used book, as (packed key, slot): single-instrument streams never hash.
    /// The key is packed into one `u64` (see `pack`) so the per-record check is one compare;
    /// `NO_BOOK` (never a packed key: those leave the top 16 bits zero) means none.
    last: (u64, usize),
    next_index: u64,
}

impl Default for Market {
    fn default() -> Self {
        Self {
            books: Vec::new(),
            by_key: FxHashMap::default(),
            last: (NO_BOOK, 0),
            next_index: 0,
        }
    }
}

impl Market {
    /// An empty market.
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `rec` to its book, creating the book on first sight.
    ///
    /// The record is numbered with the market's running stream index (see
    /// [`Market::set_next_index`]).
    #[inline]
    pub fn apply(&mut self, rec: &MboMsg) -> Applied {
        let key = BookKey {
            instrument_id: rec.hd.instrument_id,
            publisher_id: rec.hd.publisher_id,
        };
        let slot = if self.last.0 == pack(key) {
            self.last.1
        } else {
            self.book_slot(key)
        };
        let index = self.next_index;
        self.next_index += 1;
        let boundary = self.books[slot].apply(rec, index);
        Applied {
            key,
            index,
            boundary,
        }
    }

    #[cold]
    fn book_slot(&mut self, key: BookKey) -> usize {
        let slot = match self.by_key.get(&key) {
            Some(&i) => i,
            None => {
                self.books.push(Book::new(key));
                let i = self.books.len() - 1;
                self.by_key.insert(key, i);
                i
            }
        };
        self.last = (pack(key), slot);
        slot
    }

    /// The index the next applied record will get. Starts at 0.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Sets the stream index of the next record (after a seek or a resume).
    pub fn set_next_index(&mut self, index: u64) {
        self.next_index = index;
    }

    /// A book by key.
    pub fn book(&self, key: BookKey) -> Option<&Book> {
        self.by_key.get(&key).map(|&i| &self.books[i])
    }

    /// Books of one instrument, one per publisher.
    pub fn books_of(&self, instrument_id: u32) -> impl Iterator<Item = &Book> + '_ {
        self.books
            .iter()
            .filter(move |b| b.key().instrument_id == instrument_id)
    }

    /// Every book, in order of first appearance.
    pub fn books(&self) -> &[Book] {
        &self.books
    }

    /// Counters summed over all books.
    pub fn counters(&self) -> Counters {
        let mut total = Counters::default();
        for b in &self.books {
            total.accumulate(b.counters());
        }
        total
    }

    /// Puts `book` in the market in place of the book with its key (time travel and seeks
    /// restore stored books this way; see [`Book::restore`]).
    pub fn insert_book(&mut self, book: Book) {
        let key = book.key();
        match self.by_key.get(&key) {
            Some(&i) => self.books[i] = book,
            None => {
                self.books.push(book);
                self.by_key.insert(key, self.books.len() - 1);
            }
        }
        self.last = (NO_BOOK, 0);
    }

    /// Empties every book and restarts the stream index at 0, keeping all allocated capacity
    /// (books already seen stay registered, empty).
    pub fn reset(&mut self) {
        for b in &mut self.books {
            b.reset();
        }
        self.next_index = 0;
    }
}
