//! Proof that the simulator allocates nothing per record once warm.
//!
//! A counting global allocator counts `alloc`/`alloc_zeroed`/`realloc` calls made by the
//! test thread while its counting flag is on (the only test in this binary).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mbo_feed::{RecordSource, SimConfig, Simulator};
use mbo_testkit::{count_allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

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
        let (allocations, sum) = count_allocations(|| {
            let mut sum = 0u64;
            for _ in 0..1_000_000 {
                sum = sum.wrapping_add(sim.next_record().unwrap().unwrap().order_id);
            }
            sum
        });
        assert!(sum > 0);
        assert_eq!(
            allocations, 0,
            "pre_open {pre_open}: {allocations} allocations"
        );
    }
}
