//! Proof that the simulator allocates nothing per record once warm.
//!
//! A counting global allocator counts `alloc`/`alloc_zeroed`/`realloc` calls made by the
//! test thread while its counting flag is on (the only test in this binary).
#![allow(unsafe_code)] // `GlobalAlloc` can only be implemented with `unsafe impl`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use mbo_feed::{RecordSource, SimConfig, Simulator};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

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

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect
// on the memory handed out.
unsafe impl GlobalAlloc for Counting {
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

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn no_allocation_per_record_once_warm() {
    for pre_open in [false, true] {
        let mut config = SimConfig::new(3, 3);
        config.pre_open = pre_open;
        let mut sim = Simulator::new(config).unwrap();
        // Warm-up: the books reach their working size (the order slabs stop growing).
        for _ in 0..200_000 {
            sim.next_record().unwrap().unwrap();
        }
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        COUNTING.with(|c| c.set(true));
        let mut sum = 0u64;
        for _ in 0..1_000_000 {
            sum = sum.wrapping_add(sim.next_record().unwrap().unwrap().order_id);
        }
        COUNTING.with(|c| c.set(false));
        let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
        assert!(sum > 0);
        assert_eq!(
            allocations, 0,
            "pre_open {pre_open}: {allocations} allocations"
        );
    }
}
