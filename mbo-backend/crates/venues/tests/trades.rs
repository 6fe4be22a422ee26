//! Trades per venue, in each venue's documented framing (`shared/docs/crypto-venues.md`):
//! aggressor side, exact price and size, venue time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use mbo_venues::{parse_qty, Aggressor, Event, Trade, VenueKind, VenueOptions};

fn trades(kind: VenueKind, frames: &[&str]) -> Vec<Trade> {
    let mut v = kind.create(&VenueOptions::default());
    let mut out = Vec::new();
    for f in frames {
        v.on_frame(f, &mut out);
    }
    assert_eq!(v.counters().bad_frames, 0);
    out.iter()
        .filter_map(|e| match e {
            Event::Trade(t) => Some(*t),
            _ => None,
        })
        .collect()
}

fn q(s: &str) -> mbo_venues::Qty {
    parse_qty(s).unwrap().0
}

#[test]
fn binance_trade_and_agg_trade() {
    let t = trades(
        VenueKind::Binance,
        &[
            r#"{"e":"trade","E":1,"s":"BNBBTC","t":12345,"p":"0.001","q":"100","T":1672515782136,"m":false,"M":true}"#,
            r#"{"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1,"s":"BNBBTC","a":1,"p":"0.0011","q":"5.5","f":1,"l":2,"T":1672515782137,"m":true,"M":true}}"#,
        ],
    );
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].side, t[0].price, t[0].qty),
        (Aggressor::Buy, 1_000_000, q("100"))
    );
    assert_eq!(t[0].venue_time_ns, 1_672_515_782_136_000_000);
    assert_eq!(
        (t[1].side, t[1].price, t[1].qty),
        (Aggressor::Sell, 1_100_000, q("5.5"))
    );
}

#[test]
fn bybit_public_trade() {
    let t = trades(
        VenueKind::Bybit,
        &[
            r#"{"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,"data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50","L":"PlusTick","i":"20f43950","BT":false},{"T":1672304486866,"s":"BTCUSDT","S":"Sell","v":"2","p":"16578.00","L":"MinusTick","i":"20f43951","BT":false}]}"#,
            r#"{"success":true,"ret_msg":"pong","conn_id":"x","op":"ping"}"#,
        ],
    );
    assert_eq!(t.len(), 2);
    assert_eq!(
        (t[0].side, t[0].price, t[0].qty),
        (Aggressor::Buy, 16_578_500_000_000, q("0.001"))
    );
    assert_eq!(t[1].side, Aggressor::Sell);
    assert_eq!(t[0].venue_time_ns, 1_672_304_486_865_000_000);
}

#[test]
fn kraken_v2_trade() {
    let t = trades(
        VenueKind::Kraken,
        &[
            r#"{"channel":"trade","type":"update","data":[{"symbol":"BTC/USD","side":"sell","price":29431.1,"qty":0.00118951,"ord_type":"market","trade_id":1,"timestamp":"2023-07-30T15:29:58.343415Z"}]}"#,
            r#"{"channel":"heartbeat"}"#,
        ],
    );
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].side, t[0].price, t[0].qty),
        (Aggressor::Sell, 29_431_100_000_000, q("0.00118951"))
    );
    assert_eq!(t[0].venue_time_ns, 1_690_730_998_343_415_000);
}

#[test]
fn coinbase_market_trades() {
    let t = trades(
        VenueKind::Coinbase,
        &[
            r#"{"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z","sequence_num":0,"events":[{"type":"update","trades":[{"trade_id":"1","product_id":"BTC-USD","price":"21921.73","size":"0.06317223","side":"SELL","time":"2023-02-09T20:19:35.384731Z"}]}]}"#,
            r#"{"channel":"heartbeats","client_id":"","timestamp":"2023-02-09T20:19:36Z","sequence_num":1,"events":[{"current_time":"x","heartbeat_counter":1}]}"#,
        ],
    );
    assert_eq!(t.len(), 1);
    assert_eq!(
        (t[0].side, t[0].price, t[0].qty),
        (Aggressor::Sell, 21_921_730_000_000, q("0.06317223"))
    );
    assert_eq!(t[0].venue_time_ns, 1_675_973_975_384_731_000);
}
