//! History over HTTP, on the real binary with storage on: time travel equals `mbo
//! export-book` at many boundaries, trades and bars equal values computed here from the
//! file, the history stream returns exactly the stored window, and bad requests get 4xx.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "serve/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use harness::{export_book, export_levels, http, levels, Server};
use mbo_feed::RecordSource;
use mbo_testkit::mbo_data;
use serde_json::Value;

fn records_of(path: &Path) -> Vec<dbn::MboMsg> {
    let (mut source, _) = mbo_feed::replay::open_file_source(path).unwrap();
    let mut out = Vec::new();
    while let Some(r) = source.next_record().unwrap() {
        out.push(r.clone());
    }
    out
}

/// Serves `file` at max pace into a fresh database and waits for the end of the file.
async fn stored_server(file: &Path, dir: &Path) -> Server {
    let db = dir.join("mbo.db");
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--pace",
            "max",
            "--checkpoint-events",
            "5000",
        ],
        &[],
    );
    server.ready().await;
    server.wait_state("ended", Duration::from_secs(60)).await;
    server
}

/// The end of the replay comes before the last batch is committed: waits for the writer's
/// row counter to reach `n`.
async fn wait_rows(server: &Server, n: usize) {
    for _ in 0..500 {
        let rows = server
            .metric("mbo_storage_rows_written_total{table=\"events\"}")
            .await
            .unwrap_or(0.0);
        if rows as usize >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("storage did not reach {n} rows");
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_travel_equals_export_book_at_random_boundaries() {
    for name in [
        "CLX5_mbo.dbn",
        "esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst",
    ] {
        let file = mbo_data(name);
        let records = records_of(&file);
        let dir = tempfile::tempdir().unwrap();
        let server = stored_server(&file, dir.path()).await;
        wait_rows(&server, records.len()).await;
        let exported = export_book(file.to_str().unwrap(), 10);
        // Per book (instrument, publisher), the export lines in stream order.
        let mut by_book: BTreeMap<(u64, u64), Vec<&Value>> = BTreeMap::new();
        let mut indexes: Vec<&u64> = exported.keys().collect();
        indexes.sort();
        for i in &indexes {
            let line = &exported[*i];
            by_book
                .entry((
                    line["instrument_id"].as_u64().unwrap(),
                    line["publisher_id"].as_u64().unwrap(),
                ))
                .or_default()
                .push(line);
        }
        let (_, instruments) = server.get("/api/v1/instruments").await;
        let symbol_of = |id: u64| -> String {
            instruments
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["instrument_id"].as_u64() == Some(id))
                .map(|b| b["symbol"].as_str().unwrap().to_owned())
                .unwrap()
        };
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let mut checked = 0;
        for ((instrument, publisher), lines) in &by_book {
            let symbol = symbol_of(*instrument);
            let picks = 25.min(lines.len());
            for k in 0..picks {
                let line = if k == 0 {
                    lines[0]
                } else if k == 1 {
                    lines[lines.len() - 1]
                } else {
                    lines[(rng.next() % lines.len() as u64) as usize]
                };
                let ts = line["ts_recv"].as_u64().unwrap();
                // The expected book: the last boundary of this instrument at or before ts.
                let expected = lines
                    .iter()
                    .take_while(|l| l["ts_recv"].as_u64().unwrap() <= ts)
                    .last()
                    .unwrap();
                let (status, book) = server
                    .get(&format!(
                        "/api/v1/book/{symbol}/at?ts={ts}&depth=10&publisher={publisher}"
                    ))
                    .await;
                assert_eq!(status, 200, "{name} {symbol} at {ts}: {book}");
                assert_eq!(
                    book["event_index"], expected["i"],
                    "{name} {symbol} at {ts}"
                );
                assert_eq!(levels(&book, "bids"), export_levels(expected, "bids"));
                assert_eq!(levels(&book, "asks"), export_levels(expected, "asks"));
                assert_eq!(book["ts_recv"], expected["ts_recv"]);
                checked += 1;
            }
            // Before the first record of the file: nothing to show.
            let first_ts = records[0].ts_recv;
            let (status, body) = server
                .get(&format!(
                    "/api/v1/book/{symbol}/at?ts={}&publisher={publisher}",
                    first_ts - 1
                ))
                .await;
            assert_eq!(status, 404, "{body}");
            assert_eq!(body["error"]["code"], "no_data_at");
        }
        assert!(checked >= 25, "{name}: {checked} points");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trades_bars_and_history_match_the_file() {
    let file = mbo_data("CLX5_mbo.dbn");
    let records = records_of(&file);
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(&file, dir.path()).await;
    wait_rows(&server, records.len()).await;
    let symbol = "CLX5";
    let trades: Vec<(usize, &dbn::MboMsg)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.action as u8 == b'T')
        .collect();
    assert!(trades.len() > 100, "CLX5 has trades: {}", trades.len());

    // The stored range of the session.
    let (status, summary) = server.get("/api/v1/history").await;
    assert_eq!(status, 200, "{summary}");
    assert_eq!(summary["source"], "file");
    assert_eq!(summary["first_index"], 0);
    assert_eq!(
        summary["last_index"].as_u64(),
        Some(records.len() as u64 - 1)
    );
    assert_eq!(summary["first_ts"].as_u64(), Some(records[0].ts_recv));
    assert_eq!(
        summary["last_ts"].as_u64(),
        records.last().map(|r| r.ts_recv)
    );
    assert!(summary["rounds"].as_u64().unwrap() >= 5, "{summary}");
    assert!(summary["source_key"]
        .as_str()
        .unwrap()
        .starts_with("file:sha256:"));

    // Trades, paginated by cursor, 97 at a time: each exactly once, in order.
    let mut got: Vec<Value> = Vec::new();
    let mut after: Option<u64> = None;
    loop {
        let cursor = after.map_or_else(String::new, |a| format!("&after={a}"));
        let (status, page) = server
            .get(&format!("/api/v1/trades?symbol={symbol}&limit=97{cursor}"))
            .await;
        assert_eq!(status, 200, "{page}");
        got.extend(page["trades"].as_array().unwrap().iter().cloned());
        match page["next"].as_u64() {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    assert_eq!(got.len(), trades.len());
    for (row, (i, r)) in got.iter().zip(&trades) {
        let a = row.as_array().unwrap();
        assert_eq!(a[0].as_u64().unwrap(), *i as u64);
        assert_eq!(a[1].as_u64().unwrap(), r.ts_recv);
        assert_eq!(a[2].as_u64().unwrap(), r.hd.ts_event);
        assert_eq!(a[3].as_i64().unwrap(), r.price);
        assert_eq!(a[4].as_u64().unwrap(), u64::from(r.size));
        assert_eq!(a[5].as_str().unwrap(), (r.side as u8 as char).to_string());
    }

    // Bars over a window in the middle, for three intervals, computed here independently.
    let from = trades[trades.len() / 4].1.ts_recv;
    let to = trades[trades.len() * 3 / 4].1.ts_recv;
    for (interval, ns) in [
        ("1s", 1_000_000_000u64),
        ("1m", 60_000_000_000),
        ("5m", 300_000_000_000),
    ] {
        let mut expected: BTreeMap<u64, [i64; 6]> = BTreeMap::new();
        for (_, r) in trades
            .iter()
            .filter(|(_, r)| r.ts_recv >= from && r.ts_recv <= to)
        {
            let start = r.ts_recv / ns * ns;
            let e = expected
                .entry(start)
                .or_insert([r.price, r.price, r.price, r.price, 0, 0]);
            e[1] = e[1].max(r.price);
            e[2] = e[2].min(r.price);
            e[3] = r.price;
            e[4] += i64::from(r.size);
            e[5] += 1;
        }
        let (status, body) = server
            .get(&format!(
                "/api/v1/bars?symbol={symbol}&interval={interval}&from={from}&to={to}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        let bars = body["bars"].as_array().unwrap();
        assert_eq!(bars.len(), expected.len(), "{interval}");
        for (bar, (start, e)) in bars.iter().zip(&expected) {
            let b: Vec<i64> = bar
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_i64().unwrap())
                .collect();
            assert_eq!(b[0] as u64, *start, "{interval}");
            assert_eq!(&b[1..], &e[..], "{interval} bar at {start}");
        }
    }

    // The history stream of a window, as NDJSON: exactly the file's records in it.
    let w_from = records[records.len() / 3].ts_recv;
    let w_to = records[records.len() / 2].ts_recv;
    let expected: Vec<(usize, &dbn::MboMsg)> = records
        .iter()
        .enumerate()
        .filter(|(_, r)| r.ts_recv >= w_from && r.ts_recv <= w_to)
        .collect();
    let text = http()
        .get(server.url(&format!(
            "/api/v1/history/mbo?symbol={symbol}&from={w_from}&to={w_to}"
        )))
        .header("accept", "application/x-ndjson")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), expected.len());
    for (line, (i, r)) in lines.iter().zip(&expected) {
        assert_eq!(line["index"].as_u64().unwrap(), *i as u64);
        assert_eq!(line["ts_recv"].as_u64().unwrap(), r.ts_recv);
        assert_eq!(line["price"].as_i64().unwrap(), r.price);
        assert_eq!(line["order_id"].as_u64().unwrap(), r.order_id);
        assert_eq!(line["size"].as_u64().unwrap(), u64::from(r.size));
        assert_eq!(
            line["action"].as_str().unwrap(),
            (r.action as u8 as char).to_string()
        );
        assert_eq!(line["flags"].as_u64().unwrap(), u64::from(r.flags.raw()));
        assert_eq!(
            line["ts_in_delta"].as_i64().unwrap(),
            i64::from(r.ts_in_delta)
        );
    }

    // The same window as SSE: meta, mbo pages, end with the count.
    let body = http()
        .get(server.url(&format!("/api/v1/history/mbo?from={w_from}&to={w_to}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let events: Vec<harness::Event> = body
        .split("\n\n")
        .filter_map(|b| harness::parse_block(b.as_bytes()))
        .collect();
    assert_eq!(events.first().unwrap().event, "meta");
    assert_eq!(events.last().unwrap().event, "end");
    let streamed: usize = events
        .iter()
        .filter(|e| e.event == "mbo")
        .map(|e| e.json()["records"].as_array().unwrap().len())
        .sum();
    assert_eq!(streamed, expected.len());
    assert_eq!(
        events.last().unwrap().json()["records"].as_u64().unwrap() as usize,
        expected.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_history_requests_get_4xx_json() {
    let file = mbo_data("CLX5_mbo.dbn");
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(&file, dir.path()).await;
    for (path, status, code) in [
        ("/api/v1/book/CLX5/at", 400, "bad_request"),
        ("/api/v1/book/CLX5/at?ts=yesterday", 400, "bad_request"),
        ("/api/v1/book/NOPE/at?ts=1", 404, "unknown_symbol"),
        ("/api/v1/trades", 400, "bad_request"),
        ("/api/v1/trades?symbol=CLX5&limit=0", 400, "bad_request"),
        ("/api/v1/trades?symbol=CLX5&from=5&to=4", 400, "bad_request"),
        ("/api/v1/bars?symbol=CLX5", 400, "bad_request"),
        ("/api/v1/bars?symbol=CLX5&interval=7m", 400, "bad_request"),
        ("/api/v1/history/mbo?symbol=NOPE", 404, "unknown_symbol"),
        ("/api/v1/history/mbo?from=x", 400, "bad_request"),
    ] {
        let (got, body) = server.get(path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
    }

    // Without storage every history route says so.
    let plain = harness::serve(file.to_str().unwrap(), &["--pace", "max"]);
    plain.ready().await;
    for path in [
        "/api/v1/history",
        "/api/v1/book/CLX5/at?ts=1",
        "/api/v1/trades?symbol=CLX5",
        "/api/v1/bars?symbol=CLX5&interval=1m",
        "/api/v1/history/mbo",
    ] {
        let (got, body) = plain.get(path).await;
        assert_eq!(got, 404, "{path}: {body}");
        assert_eq!(body["error"]["code"], "storage_off", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_restores_books_from_a_checkpoint_round_exactly() {
    let file = mbo_data("CLX5_mbo.dbn");
    let records = records_of(&file);
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(&file, dir.path()).await;
    wait_rows(&server, records.len()).await;
    let exported = export_book(file.to_str().unwrap(), 10);
    let mut indexes: Vec<u64> = exported.keys().copied().collect();
    indexes.sort_unstable();
    let mut rng = XorShift(0x1234_5678_9abc_def1);
    // The same file again on the same database, started paused: the session (the file's
    // content hash) has its rounds, and a paused seek stays at its target.
    drop(server);
    let db = dir.path().join("mbo.db");
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--start-paused",
        ],
        &[],
    );
    for k in 0..6 {
        // Targets past the first round (5,000 records), so a round exists before each.
        let line = loop {
            let i = indexes[(rng.next() % indexes.len() as u64) as usize];
            if i > 6_000 {
                break &exported[&i];
            }
        };
        let ts = line["ts_recv"].as_u64().unwrap();
        let expected = indexes
            .iter()
            .map(|i| &exported[i])
            .take_while(|l| l["ts_recv"].as_u64().unwrap() <= ts)
            .last()
            .unwrap();
        let before = server
            .metric("mbo_seeks_from_checkpoint_total")
            .await
            .unwrap_or(0.0);
        let (status, body) = server
            .post(
                "/api/v1/replay",
                &format!("{{\"action\":\"seek\",\"ts\":{ts}}}"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        server
            .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
            .await;
        // The seek's catch-up lands within milliseconds; poll until the book shows it.
        let mut book = Value::Null;
        for _ in 0..200 {
            let (_, b) = server.get("/api/v1/book/CLX5?depth=10").await;
            if b["event_index"] == expected["i"] {
                book = b;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(book["event_index"], expected["i"], "seek {k} to {ts}");
        assert_eq!(levels(&book, "bids"), export_levels(expected, "bids"));
        assert_eq!(levels(&book, "asks"), export_levels(expected, "asks"));
        let after = server
            .metric("mbo_seeks_from_checkpoint_total")
            .await
            .unwrap_or(0.0);
        assert_eq!(
            after,
            before + 1.0,
            "seek {k} started from a checkpoint round"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_in_the_server_deletes_old_ranges_and_time_travel_says_gone() {
    let file = mbo_data("CLX5_mbo.dbn");
    let records = records_of(&file);
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(&file, dir.path()).await;
    wait_rows(&server, records.len()).await;
    drop(server);
    let db = dir.path().join("mbo.db");
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--start-paused",
            "--retention",
            "10000rows",
            "--retention-every",
            "100ms",
        ],
        &[],
    );
    let mut deleted = 0.0;
    for _ in 0..300 {
        deleted = server
            .metric("mbo_storage_retention_deleted_total{table=\"events\"}")
            .await
            .unwrap_or(0.0);
        if deleted > 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        deleted as usize >= records.len() - 10_000 - 5_000,
        "deleted {deleted}"
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, first): (i64, i64) = conn
        .query_row(
            "SELECT (SELECT coalesce(sum(records), 0) FROM mbo_blocks), \
             (SELECT first_index FROM feed_sessions)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(rows <= 10_000, "{rows} rows kept");
    assert_eq!(
        rows,
        records.len() as i64 - first,
        "exactly the events after the cut"
    );
    // Before the horizon: gone; after it: still the exact book.
    let (status, body) = server
        .get(&format!("/api/v1/book/CLX5/at?ts={}", records[10].ts_recv))
        .await;
    assert_eq!(status, 410, "{body}");
    assert_eq!(body["error"]["code"], "before_retention");
    let last = records.last().unwrap().ts_recv;
    let (status, body) = server.get(&format!("/api/v1/book/CLX5/at?ts={last}")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["event_index"].as_u64(), Some(records.len() as u64 - 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_whose_round_is_unreadable_falls_back_to_a_full_seek() {
    let file = mbo_data("CLX5_mbo.dbn");
    let records = records_of(&file);
    let dir = tempfile::tempdir().unwrap();
    let server = stored_server(&file, dir.path()).await;
    wait_rows(&server, records.len()).await;
    drop(server);
    // Every round's blob is corrupted: the lookup finds a round, the restore cannot use it.
    let db = dir.path().join("mbo.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute("UPDATE checkpoints SET data = x'ff'", [])
        .unwrap();
    let server = Server::start(
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            file.to_str().unwrap(),
            "--db",
            db.to_str().unwrap(),
            "--start-paused",
        ],
        &[],
    );
    let exported = export_book(file.to_str().unwrap(), 10);
    let mut indexes: Vec<u64> = exported.keys().copied().collect();
    indexes.sort_unstable();
    let line = &exported[&indexes[indexes.len() * 3 / 4]];
    let ts = line["ts_recv"].as_u64().unwrap();
    let expected = indexes
        .iter()
        .map(|i| &exported[i])
        .take_while(|l| l["ts_recv"].as_u64().unwrap() <= ts)
        .last()
        .unwrap();
    let (status, body) = server
        .post(
            "/api/v1/replay",
            &format!("{{\"action\":\"seek\",\"ts\":{ts}}}"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let mut book = Value::Null;
    for _ in 0..300 {
        let (_, b) = server.get("/api/v1/book/CLX5?depth=10").await;
        if b["event_index"] == expected["i"] {
            book = b;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(book["event_index"], expected["i"], "the full seek landed");
    assert_eq!(levels(&book, "bids"), export_levels(expected, "bids"));
    assert_eq!(levels(&book, "asks"), export_levels(expected, "asks"));
    assert_eq!(
        server
            .metric("mbo_seeks_from_checkpoint_total")
            .await
            .unwrap_or(0.0),
        0.0
    );
}
