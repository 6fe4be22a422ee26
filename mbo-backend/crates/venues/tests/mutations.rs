//! Mutated copies of the real recordings, made here: one size changed, one update removed,
//! one sequence number skipped. Each must be caught (checksum failure or gap counted), the
//! book marked stale and a resync requested; a new snapshot makes the book live again.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{of, read};
use mbo_venues::fixtures::{read_cryptofeed_http, read_frames, Frame};
use mbo_venues::{replay_with, Event, Precision, ResyncReason, SyncState, VenueKind, VenueOptions};

fn owned(frames: &[Frame<'_>]) -> Vec<(Option<u64>, String)> {
    frames
        .iter()
        .map(|f| (f.recv_ns, f.text.to_owned()))
        .collect()
}

fn borrowed(v: &[(Option<u64>, String)]) -> Vec<Frame<'_>> {
    v.iter()
        .map(|(t, s)| Frame {
            recv_ns: *t,
            text: s.as_str(),
        })
        .collect()
}

fn kraken_v2_opts() -> VenueOptions {
    VenueOptions {
        precision: Some(Precision { price: 1, qty: 8 }),
        ..VenueOptions::default()
    }
}

#[test]
fn kraken_v2_one_size_changed() {
    let text = read("kraken/python-kraken-sdk_orderbook-v2.json");
    let mut frames = owned(&read_frames(&text).unwrap());
    // Update 100: change the first non-zero qty it carries.
    let f = &mut frames[100].1;
    let at = f.find("\"qty\": ").unwrap() + 7;
    let end = at + f[at..].find(['}', ',']).unwrap();
    let old = f[at..end].to_owned();
    let new = if old == "0.5" { "0.6" } else { "0.5" };
    f.replace_range(at..end, new);
    let out = replay_with(
        VenueKind::Kraken,
        &borrowed(&frames),
        &[],
        &kraken_v2_opts(),
    );
    let x = of(&out.summaries, "BTC/USD");
    assert_eq!(x.checksum_bad, 1, "{x:?}");
    assert_eq!(x.checksum_ok, 100);
    assert_eq!(x.resyncs, 1);
    assert_eq!(out.resync_requests, 1);
    assert_eq!(x.state, SyncState::Stale);
    // Everything after the failure waits for a new snapshot.
    assert_eq!(x.dropped, 409);

    // Resubscribing gives a new snapshot: replaying the recorded one again makes it live.
    let mut v = VenueKind::Kraken.create(&kraken_v2_opts());
    let mut ev = Vec::new();
    for f in borrowed(&frames).iter().take(101) {
        v.on_frame(f.text, &mut ev);
    }
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::ResyncNeeded {
            reason: ResyncReason::Checksum { .. },
            ..
        }
    )));
    v.on_frame(&frames[0].1, &mut ev);
    assert_eq!(v.books().get("BTC/USD").unwrap().state, SyncState::Live);
}

#[test]
fn kraken_v1_one_size_changed() {
    let text = read("kraken/cryptofeed_KRAKEN.ws.50.0");
    let mut frames = owned(&read_frames(&text).unwrap());
    // The 500th frame carrying a checksum: bump the last digit of its first size.
    let (i, _) = frames
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| t.contains("\"c\":"))
        .nth(500)
        .unwrap();
    let f = &mut frames[i].1;
    let start = f.find("[[\"").unwrap() + 3;
    let q = start + f[start..].find("\",\"").unwrap() + 3;
    let qend = q + f[q..].find('"').unwrap();
    let last = f.as_bytes()[qend - 1];
    let bumped = if last == b'9' {
        '8'
    } else {
        char::from(last + 1)
    };
    f.replace_range(qend - 1..qend, &bumped.to_string());
    let pair = f.rsplit('"').nth(1).unwrap().to_owned();
    let out = replay_with(
        VenueKind::KrakenV1,
        &borrowed(&frames),
        &[],
        &VenueOptions::default(),
    );
    let x = of(&out.summaries, &pair);
    assert_eq!((x.checksum_bad, x.resyncs), (1, 1), "{x:?}");
    assert_eq!(x.state, SyncState::Stale);
    let bad: u64 = out.summaries.iter().map(|s| s.checksum_bad).sum();
    assert_eq!(bad, 1, "only the mutated pair fails");
}

fn binance_frames() -> (String, String) {
    (
        read("binance/cryptofeed_BINANCE.ws.1.0"),
        read("binance/cryptofeed_BINANCE.http.0.0"),
    )
}

#[test]
fn binance_one_update_removed() {
    let (ws, http) = binance_frames();
    let snaps = read_cryptofeed_http(&http).unwrap();
    let mut frames = read_frames(&ws).unwrap();
    // Remove the 50th NKNUSDT diff (well after the bridging one).
    let i = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.text.contains("\"s\":\"NKNUSDT\"") && f.text.contains("depthUpdate"))
        .nth(50)
        .unwrap()
        .0;
    frames.remove(i);
    let out = replay_with(
        VenueKind::Binance,
        &frames,
        &snaps,
        &VenueOptions::default(),
    );
    let x = of(&out.summaries, "NKNUSDT");
    assert_eq!((x.gaps, x.resyncs), (1, 1), "{x:?}");
    assert_eq!(x.state, SyncState::Stale);
    // Before the gap: the bridging diff and 48 more applied.
    assert_eq!(x.applied, 49);
    // The other symbols are untouched.
    assert_eq!(of(&out.summaries, "BLZETH").gaps, 0);
    assert_eq!(of(&out.summaries, "BLZETH").state, SyncState::Live);
}

#[test]
fn binance_sequence_skipped_then_resynced() {
    let (ws, http) = binance_frames();
    let snaps = read_cryptofeed_http(&http).unwrap();
    let mut frames = owned(&read_frames(&ws).unwrap());
    // Skip one id: raise U of the 30th NKNUSDT diff by one.
    let i = frames
        .iter()
        .enumerate()
        .filter(|(_, (_, t))| t.contains("\"s\":\"NKNUSDT\"") && t.contains("depthUpdate"))
        .nth(30)
        .unwrap()
        .0;
    let t = &mut frames[i].1;
    let at = t.find("\"U\":").unwrap() + 4;
    let end = at + t[at..].find(',').unwrap();
    let u: u64 = t[at..end].parse().unwrap();
    t.replace_range(at..end, &(u + 1).to_string());
    let f = borrowed(&frames);
    let mut v = VenueKind::Binance.create(&VenueOptions::default());
    let mut ev = Vec::new();
    let mut snap_i = 0;
    let mut snaps_sorted = snaps.clone();
    snaps_sorted.sort_by_key(|s| s.recv_ns);
    for fr in &f {
        while snap_i < snaps_sorted.len() && snaps_sorted[snap_i].recv_ns <= fr.recv_ns {
            v.on_rest_snapshot(
                &snaps_sorted[snap_i].symbol,
                snaps_sorted[snap_i].body,
                &mut ev,
            );
            snap_i += 1;
        }
        v.on_frame(fr.text, &mut ev);
    }
    let b = v.books().get("NKNUSDT").unwrap();
    assert_eq!((b.counters.gaps, b.state), (1, SyncState::Stale));
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::ResyncNeeded {
            reason: ResyncReason::Gap { expected, got },
            ..
        } if *got == *expected + 1
    )));
    // A snapshot older than the buffered diffs is refused (fetch again), not applied.
    let nkn = snaps.iter().find(|s| s.symbol == "NKNUSDT").unwrap();
    ev.clear();
    v.on_rest_snapshot("NKNUSDT", nkn.body, &mut ev);
    assert!(ev.iter().any(|e| matches!(
        e,
        Event::ResyncNeeded {
            reason: ResyncReason::SnapshotTooOld,
            ..
        }
    )));
    assert_eq!(v.books().get("NKNUSDT").unwrap().state, SyncState::Stale);
}

#[test]
fn bybit_one_delta_removed_and_sequence_skipped() {
    let text = read("bybit/nautilus_2024-12-01_XRPUSDT_ob500.data");
    let frames = read_frames(&text).unwrap();
    // Removed delta.
    let mut removed = frames.clone();
    removed.remove(20);
    let out = replay_with(VenueKind::Bybit, &removed, &[], &VenueOptions::default());
    let x = of(&out.summaries, "XRPUSDT");
    assert_eq!(
        (x.gaps, x.resyncs, x.state),
        (1, 1, SyncState::Stale),
        "{x:?}"
    );
    // Snapshot + 19 deltas applied, the 20th shows the gap, the 28 after it wait for a
    // snapshot.
    assert_eq!((x.messages, x.applied, x.dropped), (49, 20, 28));
    // Skipped id: u + 1 on one delta.
    let mut skipped = owned(&frames);
    let t = &mut skipped[10].1;
    let at = t.find("\"u\":").unwrap() + 4;
    let end = at + t[at..].find([',', '}']).unwrap();
    let u: u64 = t[at..end].parse().unwrap();
    t.replace_range(at..end, &(u + 1).to_string());
    let out = replay_with(
        VenueKind::Bybit,
        &borrowed(&skipped),
        &[],
        &VenueOptions::default(),
    );
    let x = of(&out.summaries, "XRPUSDT");
    assert_eq!((x.gaps, x.state), (1, SyncState::Stale), "{x:?}");
    // A new snapshot (resubscribe) makes it live again.
    let mut with_snapshot = skipped.clone();
    with_snapshot.push(skipped[0].clone());
    let out = replay_with(
        VenueKind::Bybit,
        &borrowed(&with_snapshot),
        &[],
        &VenueOptions::default(),
    );
    assert_eq!(of(&out.summaries, "XRPUSDT").state, SyncState::Live);
}

/// The legacy Coinbase recording re-framed as Advanced Trade `l2_data` envelopes with a
/// connection-wide `sequence_num`, so the gap rule runs on real book data.
fn coinbase_advanced() -> Vec<String> {
    let text = read("coinbase/cryptofeed_COINBASE.ws.28.0");
    let mut out = Vec::new();
    let mut seq = 0u64;
    for f in read_frames(&text).unwrap() {
        let v: serde_json::Value = serde_json::from_str(f.text).unwrap();
        let kind = v["type"].as_str().unwrap_or("");
        let product = v["product_id"].clone();
        let mut updates = Vec::new();
        let side_of = |s: &str| {
            if s == "buy" || s == "bids" {
                "bid"
            } else {
                "offer"
            }
        };
        match kind {
            "snapshot" => {
                for key in ["bids", "asks"] {
                    for l in v[key].as_array().unwrap() {
                        updates.push(serde_json::json!({"side": side_of(key), "event_time": "", "price_level": l[0], "new_quantity": l[1]}));
                    }
                }
            }
            "l2update" => {
                for c in v["changes"].as_array().unwrap() {
                    updates.push(serde_json::json!({"side": side_of(c[0].as_str().unwrap()), "event_time": "", "price_level": c[1], "new_quantity": c[2]}));
                }
            }
            _ => continue,
        }
        let kind = if kind == "snapshot" {
            "snapshot"
        } else {
            "update"
        };
        out.push(
            serde_json::json!({"channel": "l2_data", "client_id": "", "timestamp": "", "sequence_num": seq,
                "events": [{"type": kind, "product_id": product, "updates": updates}]})
            .to_string(),
        );
        seq += 1;
    }
    out
}

fn as_frames(v: &[String]) -> Vec<Frame<'_>> {
    v.iter()
        .map(|t| Frame {
            recv_ns: None,
            text: t,
        })
        .collect()
}

#[test]
fn coinbase_advanced_trade_sequence_skipped() {
    let frames = coinbase_advanced();
    assert_eq!(frames.len(), 10 + 9719);
    let clean = replay_with(
        VenueKind::Coinbase,
        &as_frames(&frames),
        &[],
        &VenueOptions::default(),
    );
    assert!(clean
        .summaries
        .iter()
        .all(|x| x.gaps == 0 && x.state == SyncState::Live));
    let applied: u64 = clean.summaries.iter().map(|x| x.applied).sum();
    assert_eq!(applied, 9729);
    // The same books as the legacy format gives.
    let text = read("coinbase/cryptofeed_COINBASE.ws.28.0");
    let legacy = replay_with(
        VenueKind::Coinbase,
        &read_frames(&text).unwrap(),
        &[],
        &VenueOptions::default(),
    );
    for x in &legacy.summaries {
        let y = of(&clean.summaries, &x.symbol);
        assert_eq!(
            (&x.best_bid, &x.best_ask, x.bid_levels, x.ask_levels),
            (&y.best_bid, &y.best_ask, y.bid_levels, y.ask_levels)
        );
    }
    // One envelope dropped: every live book is stale, one gap each, resubscribe requested.
    let mut dropped = frames.clone();
    dropped.remove(5000);
    let out = replay_with(
        VenueKind::Coinbase,
        &as_frames(&dropped),
        &[],
        &VenueOptions::default(),
    );
    assert_eq!(out.counters.connection_gaps, 1);
    assert_eq!(out.resync_requests, 10);
    for x in &out.summaries {
        assert_eq!(
            (x.gaps, x.resyncs, x.state),
            (1, 1, SyncState::Stale),
            "{x:?}"
        );
    }
}

#[test]
fn binance_futures_one_update_removed() {
    let ws = read("binance/cryptofeed_BINANCE_FUTURES.ws.1.0");
    let http = read("binance/cryptofeed_BINANCE_FUTURES.http.0.0");
    let snaps = read_cryptofeed_http(&http).unwrap();
    let mut frames = read_frames(&ws).unwrap();
    let i = frames
        .iter()
        .enumerate()
        .filter(|(_, f)| f.text.contains("\"s\":\"SUSHIUSDT\"") && f.text.contains("depthUpdate"))
        .nth(100)
        .unwrap()
        .0;
    frames.remove(i);
    let out = replay_with(
        VenueKind::BinanceFutures,
        &frames,
        &snaps,
        &VenueOptions::default(),
    );
    let x = of(&out.summaries, "SUSHIUSDT");
    assert_eq!(
        (x.gaps, x.resyncs, x.state),
        (1, 1, SyncState::Stale),
        "{x:?}"
    );
    for other in ["AKROUSDT", "KEEPUSDT", "CTKUSDT"] {
        assert_eq!(of(&out.summaries, other).gaps, 0);
    }
}
