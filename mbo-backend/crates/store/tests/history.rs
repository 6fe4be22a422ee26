//! History queries against values computed from the real files' records: trades, OHLCV
//! bars, paged event windows, time ranges; and the reader's errors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "support/common.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use common::{fields, import, read_file, Checksum, REAL_FILES};
use dbn::MboMsg;
use mbo_book::BookKey;
use mbo_store::{
    BarQuery, CheckpointPolicy, EventQuery, HistoryReader, RecorderOptions, SessionId, Store,
    StoreError, TradeQuery, TradeRow,
};

fn options(every_events: u64) -> RecorderOptions {
    RecorderOptions {
        batch_records: 1000,
        max_age: Duration::from_secs(3600),
        checkpoints: CheckpointPolicy {
            every_events,
            every: Duration::from_secs(3600),
        },
    }
}

/// A file imported into a fresh database (rounds every tenth of the file).
struct Imported {
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    session: SessionId,
    records: Vec<MboMsg>,
    rounds: Vec<u64>,
}

fn imported(name: &str) -> Imported {
    let (records, _) = read_file(name);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", name, None).unwrap();
    let every = (records.len() as u64 / 10).max(1);
    let (_, rounds) = import(&db, session, &records, options(every), 3);
    Imported {
        _dir: dir,
        db,
        session,
        records,
        rounds,
    }
}

/// Windows over a file: all of it, its middle third, a narrow slice, and an empty one.
fn windows(records: &[MboMsg]) -> Vec<(u64, u64)> {
    let n = records.len();
    let ts = |i: usize| records[i].ts_recv;
    vec![
        (0, u64::MAX),
        (ts(0), ts(n - 1)),
        (ts(n / 3), ts(2 * n / 3)),
        (ts(n / 2), ts(n / 2 + n / 50)),
        (ts(n / 2) + 1, ts(n / 2)),
        (ts(n - 1) + 1, u64::MAX),
    ]
}

fn instruments(records: &[MboMsg]) -> BTreeSet<u32> {
    records.iter().map(|r| r.hd.instrument_id).collect()
}

fn expected_trades(records: &[MboMsg], instrument: u32, from: u64, to: u64) -> Vec<TradeRow> {
    records
        .iter()
        .enumerate()
        .filter(|(_, r)| {
            r.action as u8 == b'T'
                && r.hd.instrument_id == instrument
                && (from..=to).contains(&r.ts_recv)
        })
        .map(|(i, r)| common::trade_row(i as u64, r))
        .collect()
}

#[test]
fn trades_match_the_file_and_pages_return_each_trade_once() {
    let mut total = 0;
    for name in REAL_FILES {
        let f = imported(name);
        let reader = HistoryReader::open(&f.db).unwrap();
        for instrument in instruments(&f.records) {
            for (from, to) in windows(&f.records) {
                let want = expected_trades(&f.records, instrument, from, to);
                let q = TradeQuery {
                    session: f.session,
                    instrument_id: instrument,
                    publisher_id: None,
                    from,
                    to,
                    after: None,
                    limit: usize::MAX,
                };
                assert_eq!(reader.trades(&q).unwrap(), want, "{name}: one page");
                for limit in [1, 7, 97] {
                    let mut got = Vec::new();
                    let mut after = None;
                    loop {
                        let page = reader.trades(&TradeQuery { after, limit, ..q }).unwrap();
                        assert!(page.len() <= limit);
                        let Some(last) = page.last() else { break };
                        after = Some(last.event_index);
                        got.extend(page);
                        assert!(got.len() <= want.len(), "{name}: more trades than stored");
                    }
                    assert_eq!(got, want, "{name}: pages of {limit}");
                }
                if let Some(t) = want.first() {
                    let mine = TradeQuery {
                        publisher_id: Some(t.publisher_id),
                        ..q
                    };
                    let theirs = TradeQuery {
                        publisher_id: Some(t.publisher_id.wrapping_add(1)),
                        ..q
                    };
                    let of_mine: Vec<_> = want
                        .iter()
                        .filter(|r| r.publisher_id == t.publisher_id)
                        .copied()
                        .collect();
                    assert_eq!(reader.trades(&mine).unwrap(), of_mine);
                    assert!(reader
                        .trades(&theirs)
                        .unwrap()
                        .iter()
                        .all(|r| r.publisher_id != t.publisher_id));
                }
                assert!(reader
                    .trades(&TradeQuery { limit: 0, ..q })
                    .unwrap()
                    .is_empty());
                total += want.len();
            }
        }
    }
    assert!(total > 0, "the files have trades");
}

#[test]
fn bars_match_an_independent_aggregation() {
    const SECOND: u64 = 1_000_000_000;
    let mut bars_seen = 0;
    for name in REAL_FILES {
        let f = imported(name);
        let reader = HistoryReader::open(&f.db).unwrap();
        for instrument in instruments(&f.records) {
            for (from, to) in windows(&f.records) {
                for interval in [SECOND, 60 * SECOND, 300 * SECOND, 7] {
                    // (open, high, low, close, volume, trades) per bucket, in stream order.
                    let mut want: BTreeMap<u64, (i64, i64, i64, i64, u64, u64)> = BTreeMap::new();
                    for r in f.records.iter().filter(|r| {
                        r.action as u8 == b'T'
                            && r.hd.instrument_id == instrument
                            && (from..=to).contains(&r.ts_recv)
                    }) {
                        let b = r.ts_recv / interval * interval;
                        let e = want
                            .entry(b)
                            .or_insert((r.price, r.price, r.price, r.price, 0, 0));
                        e.1 = e.1.max(r.price);
                        e.2 = e.2.min(r.price);
                        e.3 = r.price;
                        e.4 += u64::from(r.size);
                        e.5 += 1;
                    }
                    let got = reader
                        .bars(&BarQuery {
                            session: f.session,
                            instrument_id: instrument,
                            publisher_id: None,
                            from,
                            to,
                            interval_ns: interval,
                        })
                        .unwrap();
                    let got: Vec<_> = got
                        .iter()
                        .map(|b| {
                            (
                                b.start_ts,
                                (b.open, b.high, b.low, b.close, b.volume, b.trades),
                            )
                        })
                        .collect();
                    let want: Vec<_> = want.into_iter().collect();
                    assert_eq!(
                        got, want,
                        "{name}: {instrument} [{from}, {to}] / {interval}"
                    );
                    bars_seen += got.len();
                }
            }
        }
    }
    assert!(bars_seen > 0);
    let f = imported(REAL_FILES[1]);
    let reader = HistoryReader::open(&f.db).unwrap();
    let bad = BarQuery {
        session: f.session,
        instrument_id: f.records[0].hd.instrument_id,
        publisher_id: None,
        from: 0,
        to: u64::MAX,
        interval_ns: 0,
    };
    assert!(matches!(
        reader.bars(&bad),
        Err(StoreError::InvalidQuery(_))
    ));
}

/// Checksum of `(index, every field)` of records, and the count.
fn sum<'a>(rows: impl Iterator<Item = (u64, &'a MboMsg)>) -> (u64, Checksum) {
    let mut c = Checksum::default();
    let mut n = 0;
    for (i, r) in rows {
        c.add(&fields(i, r));
        n += 1;
    }
    (n, c)
}

#[test]
fn events_page_through_a_window_exactly() {
    for name in REAL_FILES {
        let f = imported(name);
        let reader = HistoryReader::open(&f.db).unwrap();
        let mut filters: Vec<Option<u32>> = vec![None];
        filters.extend(instruments(&f.records).into_iter().take(3).map(Some));
        let mut returned = 0;
        for instrument in filters {
            for (from, to) in windows(&f.records) {
                let want = sum(f
                    .records
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        (from..=to).contains(&r.ts_recv)
                            && instrument.is_none_or(|i| r.hd.instrument_id == i)
                    })
                    .map(|(i, r)| (i as u64, r)));
                for limit in [1000, 333] {
                    let mut got = Vec::new();
                    let mut after = None;
                    loop {
                        let page = reader
                            .events(&EventQuery {
                                session: f.session,
                                instrument_id: instrument,
                                from,
                                to,
                                after,
                                limit,
                            })
                            .unwrap();
                        assert!(page.len() <= limit);
                        let Some(&(last, _)) = page.last() else { break };
                        after = Some(last);
                        got.extend(page);
                        assert!(got.len() as u64 <= want.0, "{name}: too many records");
                    }
                    // Exact records, every field and header, in stream order.
                    for &(i, ref r) in &got {
                        assert!(*r == f.records[i as usize], "{name}: record {i} differs");
                    }
                    assert!(got.windows(2).all(|w| w[0].0 < w[1].0));
                    assert_eq!(
                        sum(got.iter().map(|(i, r)| (*i, r))),
                        want,
                        "{name}: {instrument:?} [{from}, {to}] pages of {limit}"
                    );
                    returned += got.len();
                }
            }
        }
        assert!(returned > 0);
    }
}

#[test]
fn time_range_is_the_first_and_last_record_time() {
    let f = imported(REAL_FILES[0]);
    let reader = HistoryReader::open(&f.db).unwrap();
    let n = f.records.len();
    assert_eq!(
        reader.time_range(f.session).unwrap(),
        Some((f.records[0].ts_recv, f.records[n - 1].ts_recv))
    );
    assert_eq!(reader.time_range(SessionId(f.session.0 + 1)).unwrap(), None);
}

#[test]
fn a_missing_file_is_an_error_and_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.db");
    let err = HistoryReader::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::NoDatabase { .. }), "{err}");
    assert!(err.to_string().contains("nothing.db"), "{err}");
    assert!(!path.exists());
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    store
        .connection()
        .pragma_update(None, "user_version", 1)
        .unwrap();
    let err = HistoryReader::open(&db).unwrap_err();
    assert!(
        matches!(err, StoreError::SchemaMismatch { found: 1, .. }),
        "{err}"
    );
    // The reader did not migrate it.
    assert_eq!(store.schema_version().unwrap(), 1);
}

#[test]
fn before_the_retention_horizon_is_an_error() {
    let f = imported(REAL_FILES[0]);
    let key = BookKey {
        instrument_id: f.records[0].hd.instrument_id,
        publisher_id: f.records[0].hd.publisher_id,
    };
    let ts = |i: u64| f.records[i as usize].ts_recv;
    assert!(f.rounds.len() >= 4);
    let kept = f.rounds[2];
    let last = f.records.len() as u64 - 1;
    let probes = [ts(kept), ts(kept + 1), ts((kept + last) / 2), ts(last)];
    let reader = HistoryReader::open(&f.db).unwrap();
    let before: Vec<_> = probes
        .iter()
        .map(|&t| {
            reader
                .book_at(f.session, key, t)
                .unwrap()
                .map(|b| *b.state())
        })
        .collect();
    assert!(reader.book_at(f.session, key, ts(0)).unwrap().is_some());

    // Retention: events below the round after `kept`'s index are gone, and the rounds
    // before it too.
    let store = Store::open(&f.db).unwrap();
    let c = store.connection();
    let first_index = kept as i64 + 1;
    c.execute(
        "UPDATE feed_sessions SET first_index = ?2 WHERE id = ?1",
        (f.session.0, first_index),
    )
    .unwrap();
    c.execute(
        "DELETE FROM mbo_blocks WHERE session_id = ?1 AND last_index < ?2",
        (f.session.0, first_index),
    )
    .unwrap();
    c.execute(
        "DELETE FROM checkpoints WHERE session_id = ?1 AND event_index < ?2",
        (f.session.0, kept as i64),
    )
    .unwrap();

    for (&t, want) in probes.iter().zip(&before) {
        let got = reader
            .book_at(f.session, key, t)
            .unwrap()
            .map(|b| *b.state());
        assert_eq!(got, *want, "at {t} after retention");
    }
    for t in [ts(kept) - 1, ts(0), 0] {
        let err = reader.book_at(f.session, key, t).unwrap_err();
        match &err {
            StoreError::BeforeHorizon {
                session,
                ts: at,
                horizon,
            } => {
                assert_eq!((*session, *at, *horizon), (f.session.0, t, Some(ts(kept))));
            }
            e => panic!("expected BeforeHorizon, got {e}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("retention horizon") && msg.contains(&ts(kept).to_string()),
            "{msg}"
        );
    }

    // A stale round whose following events are gone cannot be used either.
    c.execute(
        "UPDATE feed_sessions SET first_index = ?2 WHERE id = ?1",
        (f.session.0, kept as i64 + 2),
    )
    .unwrap();
    let err = reader.book_at(f.session, key, ts(kept)).unwrap_err();
    assert!(matches!(err, StoreError::BeforeHorizon { .. }), "{err}");
}

#[test]
fn a_reader_sees_the_commits_of_a_running_writer() {
    let (records, _) = read_file(REAL_FILES[3]);
    let n = records.len();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mbo.db");
    let store = Store::open(&db).unwrap();
    let session = store.session("file", "test:live", None).unwrap();
    let reader = HistoryReader::open(&db).unwrap();
    assert_eq!(reader.time_range(session).unwrap(), None);

    let writer = mbo_store::Writer::spawn(&db, session, 2).unwrap();
    writer
        .send(mbo_store::Batch::new(0, records[..5000].to_vec()))
        .unwrap();
    let start = std::time::Instant::now();
    while writer.events_written() < 5000 {
        assert!(start.elapsed() < Duration::from_secs(30), "writer stuck");
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        reader.time_range(session).unwrap(),
        Some((records[0].ts_recv, records[4999].ts_recv))
    );
    let all = EventQuery {
        session,
        instrument_id: None,
        from: 0,
        to: u64::MAX,
        after: None,
        limit: usize::MAX,
    };
    assert_eq!(reader.events(&all).unwrap().len(), 5000);
    // The writer keeps committing while the reader holds its connection open.
    writer
        .send(mbo_store::Batch::new(5000, records[5000..].to_vec()))
        .unwrap();
    writer.finish().unwrap();
    assert_eq!(
        reader.time_range(session).unwrap(),
        Some((records[0].ts_recv, records[n - 1].ts_recv))
    );
    assert_eq!(reader.events(&all).unwrap().len(), n);
}
