//! The consolidated book: per-level size per venue, best bid/ask with venue, crossed books
//! flagged (never filtered), stale venue books left out; and the symbol map.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mbo_venues::{
    parse_qty, ConsolidatedBook, Side, SymbolMap, SyncState, VenueKind, VenueOptions,
};

fn q(s: &str) -> mbo_venues::Qty {
    parse_qty(s).unwrap().0
}

const P: i64 = 1_000_000_000;

#[test]
fn symbol_map_default_and_override() {
    let mut m = SymbolMap::default();
    assert_eq!(m.native("binance", "BTC-USD"), Some("BTCUSDT"));
    assert_eq!(m.native("bybit", "BTC-USD"), Some("BTCUSDT"));
    assert_eq!(m.native("kraken", "BTC-USD"), Some("BTC/USD"));
    assert_eq!(m.native("kraken-v1", "BTC-USD"), Some("XBT/USD"));
    assert_eq!(m.native("coinbase", "ETH-USD"), Some("ETH-USD"));
    assert_eq!(m.normalize("binance", "ETHUSDT"), Some("ETH-USD"));
    // Override: Binance US's USD market.
    m.insert("binance", "BTC-USD", "BTCUSD");
    assert_eq!(m.native("binance", "BTC-USD"), Some("BTCUSD"));
    assert_eq!(m.normalize("binance", "BTCUSD"), Some("BTC-USD"));
    assert_eq!(m.normalize("binance", "BTCUSDT"), None);
}

#[test]
fn levels_per_venue_best_and_crossed() {
    let mut c = ConsolidatedBook::new();
    let bin = c.venue("binance");
    let kr = c.venue("kraken");
    let cb = c.venue("coinbase");
    c.set(bin, Side::Bid, 100 * P, q("1.5"));
    c.set(kr, Side::Bid, 100 * P, q("0.25"));
    c.set(cb, Side::Bid, 99 * P, q("3"));
    c.set(bin, Side::Ask, 101 * P, q("2"));
    c.set(kr, Side::Ask, 102 * P, q("1"));
    let bb = c.best_bid().unwrap();
    assert_eq!(bb.price, 100 * P);
    assert_eq!(bb.sizes, vec![(bin, q("1.5")), (kr, q("0.25"))]);
    assert_eq!(bb.total(), q("1.75"));
    assert_eq!(c.best_ask().unwrap().sizes, vec![(bin, q("2"))]);
    assert!(c.crossed().is_none());
    // Coinbase bids above Binance's ask: an arbitrage, shown and flagged.
    c.set(cb, Side::Bid, 101 * P, q("0.5"));
    let x = c.crossed().unwrap();
    assert_eq!((x.bid, x.ask), (101 * P, 101 * P));
    assert_eq!((x.bid_venues, x.ask_venues), (vec![cb], vec![bin]));
    assert_eq!(c.best_bid().unwrap().price, 101 * P, "never filtered");
    // Removing sizes.
    c.set(cb, Side::Bid, 101 * P, q("0"));
    assert!(c.crossed().is_none());
    c.clear_venue(bin);
    assert_eq!(c.best_bid().unwrap().sizes, vec![(kr, q("0.25"))]);
    assert_eq!(c.best_ask().unwrap().price, 102 * P);
    assert_eq!(c.venues(), ["binance", "kraken", "coinbase"]);
}

#[test]
fn built_from_venue_books_and_stale_left_out() {
    let opts = VenueOptions::default();
    let mut out = Vec::new();
    let mut bybit = VenueKind::Bybit.create(&opts);
    bybit.on_frame(r#"{"topic":"orderbook.50.BTCUSDT","type":"snapshot","data":{"s":"BTCUSDT","b":[["100.10","1.000"],["100.00","2"]],"a":[["100.20","1"]],"u":5}}"#, &mut out);
    let mut coinbase = VenueKind::Coinbase.create(&opts);
    coinbase.on_frame(r#"{"type":"snapshot","product_id":"BTC-USD","bids":[["100.1","0.5"]],"asks":[["100.15","4"]]}"#, &mut out);
    let map = SymbolMap::default();
    let mut c = ConsolidatedBook::new();
    for v in [&bybit, &coinbase] {
        let native = map.native(v.name(), "BTC-USD").unwrap();
        c.update(v.name(), v.books().get(native).unwrap());
    }
    let bb = c.best_bid().unwrap();
    assert_eq!(bb.price, 100_100_000_000);
    assert_eq!(bb.total(), q("1.5"));
    assert_eq!(c.best_ask().unwrap().sizes, vec![(1, q("4"))]);
    assert_eq!(c.levels(Side::Bid, 10).len(), 2);
    // A gap makes Bybit's book stale: it leaves the consolidated book.
    bybit.on_frame(r#"{"topic":"orderbook.50.BTCUSDT","type":"delta","data":{"s":"BTCUSDT","b":[],"a":[],"u":9}}"#, &mut out);
    let b = bybit.books().get("BTCUSDT").unwrap();
    assert_eq!(b.state, SyncState::Stale);
    c.update("bybit", b);
    assert_eq!(c.best_bid().unwrap().sizes, vec![(1, q("0.5"))]);
    assert_eq!(c.best_ask().unwrap().price, 100_150_000_000);
}
