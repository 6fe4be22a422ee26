//! Proof that the engine allocates nothing per record in steady state, on the real files.
//!
//! A counting global allocator counts `alloc`/`alloc_zeroed`/`realloc` calls made by a thread
//! while that thread's counting flag is on. Tests run in parallel threads: the thread-local
//! flag keeps other threads' allocations out, and a lock lets one counting window run at a
//! time so two windows never add to the shared counter together.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use mbo_book::{Counters, Market, MboMsg};
use mbo_feed::dbn_file::{read_decompressed, FileDecoder};
use mbo_feed::MboDecoder;
use mbo_testkit::{count_allocations, CountingAllocator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

const FILES: [&str; 2] = ["CLX5_mbo.dbn", "esh4-glbx-mdp3-20231225.mbo.dbn.zst"];

fn data_file(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

fn decode_all(name: &str) -> Vec<MboMsg> {
    let path = data_file(name);
    let mut dec = FileDecoder::open(&path).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    while let Some(rec) = dec.next_record().unwrap_or_else(|e| panic!("{e}")) {
        out.push(rec.clone());
    }
    assert!(!out.is_empty(), "{name} holds no records");
    out
}

fn apply_all(market: &mut Market, records: &[MboMsg]) {
    for r in records {
        market.apply(r);
    }
}

fn check_books(market: &Market) {
    for b in market.books() {
        if let Err(e) = b.check_integrity() {
            panic!("book {:?} broken: {e}", b.key());
        }
    }
}

/// The counter counts, and counts only the thread that opened the window: the tests below rely
/// on both, so they are checked explicitly.
#[test]
fn counter_sees_only_this_thread() {
    let (n, v) = count_allocations(|| vec![1u8; 64]);
    assert_eq!(n, 1);
    assert_eq!(v.len(), 64);
    let (n, v) = count_allocations(|| {
        let mut v = Vec::with_capacity(1);
        v.extend_from_slice(&[1u8; 100]);
        v
    });
    assert_eq!(n, 2, "alloc + realloc");
    assert_eq!(v.len(), 100);
    // Warm any lazily initialised state of thread spawning before comparing two spawns.
    std::thread::scope(|s| {
        s.spawn(|| ());
    });
    let (n, ()) = count_allocations(|| {
        std::thread::scope(|s| {
            // The spawned thread allocates with its flag off: not counted. (Spawning itself
            // allocates on this thread, so only the difference between runs matters here.)
            s.spawn(|| drop(vec![0u8; 1 << 20]));
        });
    });
    let (n2, ()) = count_allocations(|| {
        std::thread::scope(|s| {
            s.spawn(|| {
                for _ in 0..100 {
                    drop(vec![0u8; 1 << 10]);
                }
            });
        });
    });
    assert_eq!(n, n2, "allocations of another thread were counted");
}

#[test]
fn apply_allocates_nothing_in_steady_state() {
    let mut records = Vec::new();
    for name in FILES {
        records.extend(decode_all(name));
    }
    let mut market = Market::new();
    // Warm-up: every book reaches its working size. Counted too, to show the window does see
    // the engine's allocations when there are some.
    let (cold, ()) = count_allocations(|| apply_all(&mut market, &records));
    assert!(
        cold > 0,
        "a cold market must allocate: is the counter wired?"
    );
    check_books(&market);
    let first: Counters = market.counters();
    let books = market.books().len();
    market.reset();

    let (allocs, ()) = count_allocations(|| apply_all(&mut market, &records));
    check_books(&market);
    assert_eq!(
        market.counters(),
        first,
        "the replay differs from the warm-up"
    );
    assert_eq!(market.books().len(), books);
    assert_eq!(
        allocs,
        0,
        "{allocs} heap allocations while applying {} records in steady state",
        records.len()
    );
    assert_eq!(market.next_index(), records.len() as u64);
}

#[test]
fn decode_and_apply_from_memory_allocate_nothing_in_steady_state() {
    let bytes: Vec<(&str, Vec<u8>)> = FILES
        .iter()
        .map(|&name| {
            let data = read_decompressed(data_file(name)).unwrap_or_else(|e| panic!("{e}"));
            (name, data)
        })
        .collect();
    let mut market = Market::new();
    let mut warm_records = 0u64;
    for (name, data) in &bytes {
        let mut dec = MboDecoder::from_bytes(name, data).unwrap_or_else(|e| panic!("{e}"));
        while let Some(rec) = dec.next_record().unwrap_or_else(|e| panic!("{e}")) {
            market.apply(rec);
            warm_records += 1;
        }
    }
    check_books(&market);
    let first = market.counters();
    market.reset();

    // Decoders (with their read buffers) are built before the counting window.
    let mut decoders: Vec<_> = bytes
        .iter()
        .map(|(name, data)| MboDecoder::from_bytes(name, data).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let (allocs, records) = count_allocations(|| {
        let mut n = 0u64;
        for dec in &mut decoders {
            loop {
                match dec.next_record() {
                    Ok(Some(rec)) => {
                        market.apply(rec);
                        n += 1;
                    }
                    Ok(None) => break,
                    // Reported after the window closes (formatting allocates).
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(n)
    });
    let records = records.unwrap_or_else(|e| panic!("{e}"));
    check_books(&market);
    assert_eq!(records, warm_records);
    assert_eq!(
        market.counters(),
        first,
        "the replay differs from the warm-up"
    );
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations while decoding and applying {records} records in steady state"
    );
}
