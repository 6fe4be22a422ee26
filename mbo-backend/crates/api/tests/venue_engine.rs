//! The venue engine over real recordings: its copy of each venue book equals the venue state
//! machine's own book after every message, the consolidated book is the union with each
//! venue's share, and the trust rules hold (a checksum failure makes a book stale and takes
//! it out of the consolidated book; a lagged channel does the same; a reconnect empties it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use mbo_api::venues::build_hub;
use mbo_api::venues::engine::{Layout, VenueEngine};
use mbo_api::venues::frame::{BookState, VenueFrame, VENUE_FRAME_DEPTH};
use mbo_api::venues::hub::{ConnectionEntry, VenueHub};
use mbo_api::venues::latency::LatencyRing;
use mbo_api::venues::metrics::VenueMetrics;
use mbo_venues::fixtures::read_frames;
use mbo_venues::{Event, Precision, Side, Venue, VenueKind, VenueOptions};
use mbo_venues_net::{Health, VenueUpdate};
use tokio::sync::{mpsc, watch};

struct Rig {
    hub: Arc<VenueHub>,
    engine: VenueEngine,
    recv: u64,
    /// Resync requests the engine sent, per connection.
    resync: Vec<mpsc::Receiver<Arc<str>>>,
}

fn rig(venues: &[(VenueKind, &str)]) -> Rig {
    let connections: Vec<ConnectionEntry> = venues
        .iter()
        .map(|(v, native)| ConnectionEntry {
            venue: *v,
            url: "ws://127.0.0.1:1".into(),
            symbols: vec![(*native).to_owned()],
            health: watch::channel(Health::default()).1,
            publish_latency: LatencyRing::default(),
            snapshot_latency: LatencyRing::default(),
            exchange_latency: LatencyRing::default(),
            msgs_per_s: std::sync::atomic::AtomicU64::new(0),
        })
        .collect();
    let natives: Vec<Vec<Arc<str>>> = venues.iter().map(|(_, n)| vec![Arc::from(*n)]).collect();
    let (hub, layout): (Arc<VenueHub>, Layout) =
        build_hub(&["BTC-USD".to_owned()], connections, &natives);
    let metrics = VenueMetrics::register(&prometheus::Registry::new()).unwrap();
    let truncate: Vec<Option<usize>> = venues
        .iter()
        .map(|(v, _)| (*v == VenueKind::Kraken).then_some(10))
        .collect();
    let (senders, resync): (Vec<_>, Vec<_>) = venues
        .iter()
        .map(|_| {
            let (tx, rx) = mpsc::channel(4);
            (Some(tx), rx)
        })
        .unzip();
    let engine = VenueEngine::new(hub.clone(), metrics, &layout, &truncate).with_resync(senders);
    Rig {
        hub,
        engine,
        recv: 1,
        resync,
    }
}

impl Rig {
    /// One frame through the venue, its events through the engine, then a publish.
    fn frame(&mut self, kind: VenueKind, venue: &mut dyn Venue, text: &str, lagged: u64) {
        let mut events = Vec::new();
        venue.on_frame(text, &mut events);
        for e in events {
            self.event(kind, venue, e, lagged);
        }
        self.engine.publish();
    }

    fn event(&mut self, kind: VenueKind, venue: &dyn Venue, event: Event, lagged: u64) {
        let book = match event {
            Event::Snapshot { book }
            | Event::Level { book, .. }
            | Event::Applied { book }
            | Event::ResyncNeeded { book, .. }
            | Event::Reset { book } => Some(book),
            Event::Trade(t) => Some(t.book),
            _ => None,
        };
        let symbol: Arc<str> = book.map_or(Arc::from(""), |b| {
            Arc::from(venue.books().all()[b].symbol.as_str())
        });
        self.recv += 1;
        self.engine.apply(&VenueUpdate {
            venue: kind,
            symbol,
            recv_ns: self.recv,
            lagged,
            event,
        });
    }

    fn frame_of(&self, venue: &str) -> Arc<VenueFrame> {
        self.hub.symbols[0].book(venue).unwrap().1.frame.load_full()
    }
}

fn kraken() -> (Box<dyn Venue + Send>, String) {
    let text = std::fs::read_to_string(mbo_testkit::crypto_data(
        "kraken/python-kraken-sdk_orderbook-v2.json",
    ))
    .unwrap();
    let venue = VenueKind::Kraken.create(&VenueOptions {
        symbols: vec!["BTC/USD".into()],
        depth: Some(10),
        precision: Some(Precision { price: 1, qty: 8 }),
    });
    (venue, text)
}

fn coinbase() -> (Box<dyn Venue + Send>, String) {
    let text = std::fs::read_to_string(mbo_testkit::crypto_data(
        "coinbase/cryptofeed_COINBASE.ws.28.0",
    ))
    .unwrap();
    let venue = VenueKind::Coinbase.create(&VenueOptions {
        symbols: vec!["SKL-USD".into()],
        ..VenueOptions::default()
    });
    (venue, text)
}

/// The engine's frame holds the venue's own best levels, exactly.
fn assert_same_levels(frame: &VenueFrame, venue: &dyn Venue, symbol: &str) {
    let book = &venue.books().get(symbol).unwrap().book;
    for (side, levels) in [(Side::Bid, &frame.bids), (Side::Ask, &frame.asks)] {
        // Exactly the best `VENUE_FRAME_DEPTH` levels (or the whole side).
        let want: Vec<(i64, u128)> = book
            .levels(side)
            .take(VENUE_FRAME_DEPTH)
            .map(|l| (l.price, l.level.qty.0))
            .collect();
        let got: Vec<(i64, u128)> = levels.iter().map(|l| (l.price, l.size.0)).collect();
        assert_eq!(got, want, "{side:?} of {symbol}");
        assert_eq!(
            match side {
                Side::Bid => frame.bid_levels,
                Side::Ask => frame.ask_levels,
            },
            book.len(side) as u64
        );
    }
}

#[test]
fn engine_books_equal_the_venue_books_after_every_message() {
    let mut r = rig(&[(VenueKind::Kraken, "BTC/USD")]);
    let mut updates = r.hub.symbols[0].updates.subscribe();
    let (mut venue, text) = kraken();
    let frames = read_frames(&text).unwrap();
    let mut last_seq = 0;
    for f in &frames {
        r.frame(VenueKind::Kraken, venue.as_mut(), f.text, 0);
        let k = r.frame_of("kraken");
        if k.state == BookState::Live {
            assert_same_levels(&k, venue.as_ref(), "BTC/USD");
            assert!(k.seq >= last_seq);
            last_seq = k.seq;
            // One venue: the consolidated book is that venue's book.
            let c = r.frame_of("consolidated");
            let levels = |f: &VenueFrame| -> Vec<(i64, u128)> {
                f.bids
                    .iter()
                    .chain(&f.asks)
                    .map(|l| (l.price, l.size.0))
                    .collect()
            };
            assert_eq!(levels(&c), levels(&k));
            assert_eq!(c.live_mask, 1);
        }
    }
    let b = venue.books().get("BTC/USD").unwrap();
    assert_eq!((b.counters.checksum_ok, b.counters.checksum_bad), (510, 0));
    assert_eq!(r.frame_of("kraken").state, BookState::Live);
    assert_eq!(r.frame_of("kraken").bids.len(), 10);
    // Every publish reached the symbol's ring, newest frame last.
    let mut batches = 0;
    while let Ok(b) = updates.try_recv() {
        assert!(!b.frames.is_empty());
        batches += 1;
    }
    assert!(batches >= 500, "{batches}");
}

/// A deep book (Bybit's 500 levels a side, deltas of up to 355 levels) keeps the frame's
/// window of the best 100 levels exact through inserts, removals and refills from beyond it.
#[test]
fn deep_book_frames_hold_exactly_the_best_levels_after_every_message() {
    let mut r = rig(&[(VenueKind::Bybit, "XRPUSDT")]);
    let text = std::fs::read_to_string(mbo_testkit::crypto_data(
        "bybit/nautilus_2024-12-01_XRPUSDT_ob500.data",
    ))
    .unwrap();
    let mut venue = VenueKind::Bybit.create(&VenueOptions {
        symbols: vec!["XRPUSDT".into()],
        ..VenueOptions::default()
    });
    let frames = read_frames(&text).unwrap();
    let mut live = 0;
    for f in &frames {
        r.frame(VenueKind::Bybit, venue.as_mut(), f.text, 0);
        let b = r.frame_of("bybit");
        if b.state == BookState::Live {
            assert_same_levels(&b, venue.as_ref(), "XRPUSDT");
            live += 1;
        }
    }
    assert!(live >= 49, "{live}");
    let b = r.frame_of("bybit");
    assert_eq!((b.bids.len(), b.asks.len()), (100, 100));
    assert!(b.bid_levels > 100 && b.ask_levels > 100);
}

#[test]
fn consolidated_book_merges_venues_flags_the_cross_and_drops_stale_venues() {
    let mut r = rig(&[
        (VenueKind::Kraken, "BTC/USD"),
        (VenueKind::Coinbase, "SKL-USD"),
    ]);
    let (mut k, ktext) = kraken();
    let (mut c, ctext) = coinbase();
    let kframes = read_frames(&ktext).unwrap();
    for f in &kframes {
        r.frame(VenueKind::Kraken, k.as_mut(), f.text, 0);
    }
    for f in read_frames(&ctext).unwrap() {
        r.frame(VenueKind::Coinbase, c.as_mut(), f.text, 0);
    }
    let kf = r.frame_of("kraken");
    let cf = r.frame_of("coinbase");
    assert_eq!((kf.state, cf.state), (BookState::Live, BookState::Live));
    assert_same_levels(&kf, k.as_ref(), "BTC/USD");
    assert_same_levels(&cf, c.as_ref(), "SKL-USD");

    // Two unrelated markets under one name (a symbol-map override): the union of the levels,
    // each with its venue's share, and a crossed book shown and flagged, never filtered.
    let all = r.frame_of("consolidated");
    assert_eq!(all.live_mask, 0b11);
    assert_eq!(all.bid_levels, kf.bid_levels + cf.bid_levels);
    assert_eq!(all.ask_levels, kf.ask_levels + cf.ask_levels);
    for l in all.bids.iter().chain(&all.asks) {
        let sum: u128 = all.shares_of(l).map(|(_, q)| q.0).sum();
        assert_eq!(sum, l.size.0);
    }
    assert_eq!(
        all.bids[0].price, kf.bids[0].price,
        "the best bid is Kraken's"
    );
    assert_eq!(
        all.asks[0].price, cf.asks[0].price,
        "the best ask is Coinbase's"
    );
    let v: serde_json::Value = serde_json::from_slice(&all.json(5)).unwrap();
    assert_eq!(v["crossed"], true);
    assert_eq!(v["crossed_venues"]["bid_venue"], "kraken");
    assert_eq!(v["crossed_venues"]["ask_venue"], "coinbase");
    assert_eq!(v["best_bid"]["venue"], "kraken");
    assert_eq!(v["venues"], serde_json::json!(["kraken", "coinbase"]));

    // A size changed in a Kraken update: its checksum fails, the book turns stale (levels
    // kept for display, marked) and leaves the consolidated book.
    let last = kframes.last().unwrap().text;
    let v: serde_json::Value = serde_json::from_str(last).unwrap();
    assert_eq!(v["type"], "update", "the recording ends with an update");
    let bad = mutate_first_qty(last);
    r.frame(VenueKind::Kraken, k.as_mut(), &bad, 0);
    let kf = r.frame_of("kraken");
    assert_eq!(kf.state, BookState::Stale);
    assert!(
        !kf.bids.is_empty(),
        "a stale book keeps its levels for display"
    );
    let kj: serde_json::Value = serde_json::from_slice(&kf.json(10)).unwrap();
    assert_eq!(
        (kj["state"].as_str(), kj["stale"].as_bool()),
        (Some("stale"), Some(true))
    );
    let all = r.frame_of("consolidated");
    assert_eq!(all.live_mask, 0b10);
    assert_eq!(all.bid_levels, cf.bid_levels);
    assert!(all.crossed.is_none());
    assert_eq!(all.bids[0].price, cf.bids[0].price);

    // Events of Coinbase were dropped (the channel overflowed): its book cannot be trusted.
    r.event(
        VenueKind::Coinbase,
        c.as_ref(),
        Event::Applied { book: 0 },
        3,
    );
    r.engine.publish();
    assert_eq!(r.frame_of("coinbase").state, BookState::Stale);
    let all = r.frame_of("consolidated");
    assert_eq!((all.live_mask, all.bid_levels, all.ask_levels), (0, 0, 0));
    assert_eq!(all.state, BookState::Syncing);
    // ... and the engine asked the Coinbase connection (only it) for a fresh snapshot.
    assert_eq!(r.resync[1].try_recv().unwrap().as_ref(), "SKL-USD");
    assert!(r.resync[1].try_recv().is_err());
    assert!(r.resync[0].try_recv().is_err());
    // A snapshot brings the book back.
    let snapshot = read_frames(&ctext)
        .unwrap()
        .into_iter()
        .find(|f| f.text.contains("\"snapshot\"") && f.text.contains("SKL-USD"))
        .unwrap();
    r.frame(VenueKind::Coinbase, c.as_mut(), snapshot.text, 0);
    assert_eq!(r.frame_of("coinbase").state, BookState::Live);
    assert_eq!(r.frame_of("consolidated").live_mask, 0b10);

    // A reconnect: the book is unknown until its next snapshot.
    r.event(VenueKind::Kraken, k.as_ref(), Event::Reset { book: 0 }, 0);
    r.engine.publish();
    let kf = r.frame_of("kraken");
    assert_eq!(
        (kf.state, kf.bid_levels, kf.bids.len()),
        (BookState::Syncing, 0, 0)
    );
}

/// The frame with its first `"qty":` number changed (a size the venue never sent).
fn mutate_first_qty(frame: &str) -> String {
    let at = frame.find("\"qty\":").expect("an update with a level") + 6;
    let end = at + frame[at..].find([',', '}']).unwrap();
    format!("{}{}{}", &frame[..at], "123.45678901", &frame[end..])
}
