//! Test support shared by mbo's crates (dev-dependency only).
//!
//! * [`mbo_data`]: the path of a real Databento file in `../shared/data/mbo/`; a missing file
//!   fails the test with a clear message, it never skips.
//! * [`crypto_data`]: the same for a crypto recording in `../shared/data/crypto/`.
//! * [`stored_fields`] and [`RowChecksum`]: the 14 stored fields of a record and an
//!   order-sensitive checksum over them, so storage tests compare what a database gives back
//!   with a file, field by field.
//! * [`CountingAllocator`] and [`count_allocations`]: prove that a hot path allocates nothing.
//!   Each test binary installs the allocator itself:
//!   `#[global_allocator] static GLOBAL: CountingAllocator = CountingAllocator;`
#![deny(missing_docs)]
#![allow(unsafe_code)] // `GlobalAlloc` can only be implemented with `unsafe impl`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Path of a real Databento MBO file (`../shared/data/mbo/NAME` from the repository root).
///
/// # Panics
/// When the file is missing: tests that need the real data fail, loudly, without it.
pub fn mbo_data(name: &str) -> PathBuf {
    // Every crate of the workspace sits at mbo-backend/crates/NAME, as this one does.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../../shared/data/mbo")
        .join(name);
    assert!(
        path.is_file(),
        "required real data file is missing: {} (expected in ../shared/data/mbo/ relative to \
         the repository root; see PROVENANCE.md there); it is never skipped",
        path.display()
    );
    path
}

/// Path of a real crypto recording: `$MBO_CRYPTO_DATA/REL` when the variable is set, else
/// `../shared/data/crypto/REL` from the repository root.
///
/// # Panics
/// When the file is missing: tests that need the recordings fail, loudly, without them.
pub fn crypto_data(rel: &str) -> PathBuf {
    let dir = match std::env::var_os("MBO_CRYPTO_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
    };
    let path = dir.join(rel);
    assert!(
        path.is_file(),
        "required recording is missing: {} (expected in ../shared/data/crypto/ relative to the \
         repository root, or set MBO_CRYPTO_DATA; see PROVENANCE.md there); it is never skipped",
        path.display()
    );
    path
}

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

/// One counting window at a time, so two windows never add to the shared counter together.
static WINDOW: Mutex<()> = Mutex::new(());

thread_local! {
    // `const` init: no lazy registration, so reading it inside the allocator cannot recurse.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

#[inline]
fn note() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

/// The system allocator, counting `alloc`/`alloc_zeroed`/`realloc` calls made by a thread
/// inside [`count_allocations`]. Other threads (parallel tests) are not counted.
#[derive(Debug)]
pub struct CountingAllocator;

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f` and returns how many allocations this thread made meanwhile (meaningful only in
/// a binary whose global allocator is [`CountingAllocator`]).
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (u64, R) {
    let _window = WINDOW.lock().unwrap_or_else(PoisonError::into_inner);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    let out = f();
    COUNTING.with(|c| c.set(false));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    (after - before, out)
}

/// The stored fields of record `index` (`event_index, ts_recv, ts_event, instrument_id,
/// publisher_id, action, side, price, size, order_id, flags, sequence, channel_id,
/// ts_in_delta`) as integers (`u64` bit-cast to `i64`, codes as ASCII), for checksums.
pub fn stored_fields(index: u64, r: &dbn::MboMsg) -> [i64; 14] {
    [
        index as i64,
        r.ts_recv as i64,
        r.hd.ts_event as i64,
        i64::from(r.hd.instrument_id),
        i64::from(r.hd.publisher_id),
        i64::from(r.action as u8),
        i64::from(r.side as u8),
        r.price,
        i64::from(r.size),
        r.order_id as i64,
        i64::from(r.flags.raw()),
        i64::from(r.sequence),
        i64::from(r.channel_id),
        i64::from(r.ts_in_delta),
    ]
}

/// Order-sensitive checksum of rows (FNV-1a over every field, chained row after row), and
/// their count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowChecksum {
    /// The hash so far.
    pub hash: u64,
    /// Rows added.
    pub rows: u64,
}

impl Default for RowChecksum {
    fn default() -> Self {
        Self {
            hash: 0xcbf2_9ce4_8422_2325,
            rows: 0,
        }
    }
}

impl RowChecksum {
    /// Adds one row.
    pub fn add(&mut self, row: &[i64; 14]) {
        for v in row {
            for b in v.to_le_bytes() {
                self.hash ^= u64::from(b);
                self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
            }
        }
        self.rows += 1;
    }

    /// The checksum of `records` numbered from 0.
    pub fn of_records(records: &[dbn::MboMsg]) -> Self {
        let mut c = Self::default();
        for (i, r) in records.iter().enumerate() {
            c.add(&stored_fields(i as u64, r));
        }
        c
    }
}
