//! The recorder stores every record once and checkpoint rounds that restore the exact
//! market at their index.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use std::time::Duration;

use common::{file_checksum, import, read_file, stored};
use mbo_book::{BookKey, Market, Side};
use mbo_store::{decode_checkpoint, CheckpointPolicy, RecorderOptions, Store};

fn options(every_events: u64) -> RecorderOptions {
    RecorderOptions {
        batch_records: 3000,
        max_age: Duration::from_secs(3600),
        checkpoints: CheckpointPolicy {
            every_events,
            every: Duration::from_secs(3600),
        },
    }
}

#[test]
fn rounds_restore_the_exact_market_at_their_index() {
    let (records, _) = read_file("esh4-glbx-mdp3-20231225.mbo.dbn.zst");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", "file:test:esh4-25", None).unwrap();
    let every = (records.len() as u64 / 12).max(1);
    let (stats, rounds) = import(&db, session, &records, options(every), 997);
    assert_eq!(stats.events_written, records.len() as u64);
    let (count, sum, _, _) = stored(&store, session);
    assert_eq!(count, records.len() as u64);
    assert_eq!(sum, file_checksum(&records));
    assert!(rounds.len() >= 8, "{} rounds", rounds.len());
    assert_eq!(
        store.last_checkpoint(session).unwrap(),
        rounds.last().copied()
    );
    for pair in rounds.windows(2) {
        assert!(
            pair[1] - pair[0] >= every,
            "rounds {pair:?} closer than {every}"
        );
    }

    // Replay independently; at each round, every stored book equals the live one.
    let mut market = Market::new();
    let mut next_round = rounds.iter().peekable();
    let mut checked = 0;
    for (i, r) in records.iter().enumerate() {
        market.apply(r);
        if next_round.peek() != Some(&&(i as u64)) {
            continue;
        }
        next_round.next();
        let mut stmt = store
            .connection()
            .prepare(
                "SELECT instrument_id, publisher_id, data, ts_recv FROM checkpoints \
                 WHERE session_id = ?1 AND event_index = ?2",
            )
            .unwrap();
        let rows: Vec<(u32, u16, Vec<u8>, i64)> = stmt
            .query_map((session.0, i as i64), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows.len(), market.books().len(), "one row per book at {i}");
        for (instrument_id, publisher_id, data, ts) in rows {
            assert_eq!(ts as u64, r.ts_recv, "round time is its record's");
            let key = BookKey {
                instrument_id,
                publisher_id,
            };
            let live = market.book(key).unwrap();
            let restored = decode_checkpoint(&data).unwrap().into_book(key);
            assert_eq!(restored.state(), live.state());
            for side in [Side::Bid, Side::Ask] {
                assert!(restored.levels(side).eq(live.levels(side)));
                for level in live.levels(side) {
                    assert!(restored
                        .level_orders(side, level.price)
                        .eq(live.level_orders(side, level.price)));
                }
            }
            checked += 1;
        }
    }
    assert!(
        next_round.next().is_none(),
        "every round was found in the stream"
    );
    assert!(checked >= 8);
}

#[test]
fn records_already_stored_are_skipped_and_a_second_import_adds_nothing() {
    let (records, _) = read_file("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", "file:test:clx5", None).unwrap();
    let (first, rounds) = import(&db, session, &records, options(10_000), 4096);
    assert_eq!(first.events_written, records.len() as u64);
    assert!(!rounds.is_empty());

    // A recorder that knows what is stored sends nothing again.
    let writer = mbo_store::Writer::spawn(&db, session, 8).unwrap();
    let last = store.last_index(session).unwrap();
    let round = store.last_checkpoint(session).unwrap();
    let mut recorder = mbo_store::Recorder::new(writer, options(10_000), last, round);
    let mut market = Market::new();
    for chunk in records.chunks(5000) {
        let first = market.next_index();
        for r in chunk {
            market.apply(r);
        }
        recorder.record(first, chunk).unwrap();
        assert!(
            !recorder.boundary(&market).unwrap(),
            "no round before the stored one"
        );
    }
    let again = recorder.finish().unwrap();
    assert_eq!(again.records, 0, "nothing was sent");
    assert_eq!(stored(&store, session).0, records.len() as u64);
}
