//! What goes on the wire: subscribe, resubscribe and ping messages and REST snapshot URLs,
//! in the exact shapes of `shared/docs/crypto-venues.md`.

use mbo_venues::VenueKind;
use serde_json::{json, Value};

use crate::config::ConnectionConfig;

/// Bybit spot accepts at most 10 args per subscribe request.
pub const BYBIT_MAX_ARGS: usize = 10;

/// How a venue gets a fresh book after a gap or checksum failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncAction {
    /// Fetch a new REST snapshot (Binance), keep buffering diffs meanwhile.
    RestSnapshot,
    /// Unsubscribe and subscribe the symbol's book again: the venue sends a new snapshot.
    Resubscribe,
}

/// The resync action of a venue.
#[must_use]
pub fn resync_action(venue: VenueKind) -> ResyncAction {
    match venue {
        VenueKind::Binance | VenueKind::BinanceFutures => ResyncAction::RestSnapshot,
        _ => ResyncAction::Resubscribe,
    }
}

fn bybit_book_topic(cfg: &ConnectionConfig, symbol: &str) -> String {
    format!("orderbook.{}.{symbol}", cfg.book_depth())
}

fn binance_streams(cfg: &ConnectionConfig) -> Vec<String> {
    let mut params = Vec::new();
    for s in &cfg.symbols {
        let s = s.to_ascii_lowercase();
        params.push(format!("{s}@depth@100ms"));
        if cfg.trades {
            params.push(format!("{s}@trade"));
        }
    }
    params
}

fn kraken_book(cfg: &ConnectionConfig, method: &str, symbols: &[&str], req_id: u64) -> Value {
    let mut params = json!({"channel": "book", "symbol": symbols, "depth": cfg.book_depth()});
    if method == "subscribe" {
        params["snapshot"] = json!(true);
    }
    json!({"method": method, "params": params, "req_id": req_id})
}

fn coinbase(cfg: &ConnectionConfig, kind: &str, symbols: &[&str], book_only: bool) -> Vec<Value> {
    if cfg.coinbase_legacy {
        let channels: &[&str] = if book_only {
            &["level2_batch"]
        } else if cfg.trades {
            &["level2_batch", "matches", "heartbeat"]
        } else {
            &["level2_batch", "heartbeat"]
        };
        return vec![json!({"type": kind, "product_ids": symbols, "channels": channels})];
    }
    let mut channels = vec!["level2"];
    if !book_only {
        if cfg.trades {
            channels.push("market_trades");
        }
        // Channels close after 60-90 s without updates: heartbeats keep them open.
        channels.push("heartbeats");
    }
    channels
        .into_iter()
        .map(|c| json!({"type": kind, "product_ids": symbols, "channel": c}))
        .collect()
}

/// The messages sent right after connecting, in order.
#[must_use]
pub fn subscribe_messages(cfg: &ConnectionConfig) -> Vec<String> {
    let symbols: Vec<&str> = cfg.symbols.iter().map(String::as_str).collect();
    let values: Vec<Value> = match cfg.venue {
        VenueKind::Binance | VenueKind::BinanceFutures => {
            vec![json!({"method": "SUBSCRIBE", "params": binance_streams(cfg), "id": 1})]
        }
        VenueKind::Bybit => {
            let mut args = Vec::new();
            for s in &symbols {
                args.push(bybit_book_topic(cfg, s));
                if cfg.trades {
                    args.push(format!("publicTrade.{s}"));
                }
            }
            args.chunks(BYBIT_MAX_ARGS)
                .enumerate()
                .map(|(i, chunk)| {
                    json!({"req_id": format!("sub-{}", i + 1), "op": "subscribe", "args": chunk})
                })
                .collect()
        }
        VenueKind::Kraken => {
            let mut v = vec![kraken_book(cfg, "subscribe", &symbols, 1)];
            if cfg.trades {
                v.push(json!({"method": "subscribe",
                    "params": {"channel": "trade", "symbol": symbols, "snapshot": false},
                    "req_id": 2}));
            }
            // The pairs' printed decimals, so checksums hash the venue's digits.
            v.push(json!({"method": "subscribe",
                "params": {"channel": "instrument", "snapshot": true},
                "req_id": 3}));
            v
        }
        VenueKind::Coinbase => coinbase(cfg, "subscribe", &symbols, false),
        _ => Vec::new(),
    };
    values.iter().map(Value::to_string).collect()
}

/// Unsubscribe + subscribe of one symbol's book, for a fresh snapshot (`req_id` tags them).
#[must_use]
pub fn resubscribe_messages(cfg: &ConnectionConfig, symbol: &str, req_id: u64) -> Vec<String> {
    let values: Vec<Value> = match cfg.venue {
        VenueKind::Bybit => {
            let topic = [bybit_book_topic(cfg, symbol)];
            vec![
                json!({"req_id": format!("unsub-{req_id}"), "op": "unsubscribe", "args": topic}),
                json!({"req_id": format!("resub-{req_id}"), "op": "subscribe", "args": topic}),
            ]
        }
        VenueKind::Kraken => vec![
            kraken_book(cfg, "unsubscribe", &[symbol], req_id),
            kraken_book(cfg, "subscribe", &[symbol], req_id + 1),
        ],
        VenueKind::Coinbase => {
            let mut v = coinbase(cfg, "unsubscribe", &[symbol], true);
            v.extend(coinbase(cfg, "subscribe", &[symbol], true));
            v
        }
        _ => Vec::new(),
    };
    values.iter().map(Value::to_string).collect()
}

/// The application ping (`None`: the venue pings us, or heartbeats keep the connection up).
#[must_use]
pub fn ping_message(venue: VenueKind, req_id: u64) -> Option<String> {
    match venue {
        VenueKind::Bybit => Some(json!({"req_id": req_id.to_string(), "op": "ping"}).to_string()),
        VenueKind::Kraken => Some(json!({"method": "ping", "req_id": req_id}).to_string()),
        _ => None,
    }
}

/// The REST snapshot URL for a symbol (Binance spot `/api/v3/depth`, futures
/// `/fapi/v1/depth`); `None` for venues without one.
#[must_use]
pub fn snapshot_url(cfg: &ConnectionConfig, symbol: &str) -> Option<String> {
    let path = match cfg.venue {
        VenueKind::Binance => "/api/v3/depth",
        VenueKind::BinanceFutures => "/fapi/v1/depth",
        _ => return None,
    };
    let base = cfg.rest_url.trim_end_matches('/');
    let limit = cfg.book_depth();
    Some(format!(
        "{base}{path}?symbol={}&limit={limit}",
        symbol.to_ascii_uppercase()
    ))
}

/// Whether a text frame asks the client to reconnect (Binance `serverShutdown`).
#[must_use]
pub fn is_shutdown_notice(venue: VenueKind, frame: &str) -> bool {
    matches!(venue, VenueKind::Binance | VenueKind::BinanceFutures)
        && frame.contains("\"serverShutdown\"")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn v(s: &str) -> Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn shapes_from_the_doc() {
        let c = ConnectionConfig::new(VenueKind::Binance, &["BTCUSDT"]).unwrap();
        assert_eq!(
            v(&subscribe_messages(&c)[0]),
            json!({"method":"SUBSCRIBE","params":["btcusdt@depth@100ms","btcusdt@trade"],"id":1})
        );
        assert_eq!(
            snapshot_url(&c, "BTCUSDT").unwrap(),
            "https://api.binance.com/api/v3/depth?symbol=BTCUSDT&limit=1000"
        );
        let c = ConnectionConfig::new(VenueKind::Bybit, &["BTCUSDT"]).unwrap();
        assert_eq!(
            v(&subscribe_messages(&c)[0]),
            json!({"req_id":"sub-1","op":"subscribe","args":["orderbook.50.BTCUSDT","publicTrade.BTCUSDT"]})
        );
        assert_eq!(
            v(&ping_message(VenueKind::Bybit, 7).unwrap()),
            json!({"req_id":"7","op":"ping"})
        );
        let c = ConnectionConfig::new(VenueKind::Kraken, &["BTC/USD"]).unwrap();
        let m = subscribe_messages(&c);
        assert_eq!(
            v(&m[0]),
            json!({"method":"subscribe","params":{"channel":"book","symbol":["BTC/USD"],"depth":10,"snapshot":true},"req_id":1})
        );
        assert_eq!(
            v(&m[1]),
            json!({"method":"subscribe","params":{"channel":"trade","symbol":["BTC/USD"],"snapshot":false},"req_id":2})
        );
        assert_eq!(
            v(&m[2]),
            json!({"method":"subscribe","params":{"channel":"instrument","snapshot":true},"req_id":3})
        );
        let r = resubscribe_messages(&c, "BTC/USD", 10);
        assert_eq!(v(&r[0])["method"], "unsubscribe");
        assert_eq!(v(&r[1])["params"]["snapshot"], true);
        let c = ConnectionConfig::new(VenueKind::Coinbase, &["BTC-USD"]).unwrap();
        let m: Vec<Value> = subscribe_messages(&c).iter().map(|s| v(s)).collect();
        assert_eq!(
            m[0],
            json!({"type":"subscribe","product_ids":["BTC-USD"],"channel":"level2"})
        );
        assert_eq!(m[2]["channel"], "heartbeats");
        let c = c.coinbase_legacy();
        assert_eq!(
            v(&subscribe_messages(&c)[0]),
            json!({"type":"subscribe","product_ids":["BTC-USD"],"channels":["level2_batch","matches","heartbeat"]})
        );
    }

    #[test]
    fn bybit_chunks_args_by_ten() {
        let syms = ["A", "B", "C", "D", "E", "F"];
        let c = ConnectionConfig::new(VenueKind::Bybit, &syms).unwrap();
        let m = subscribe_messages(&c);
        assert_eq!(m.len(), 2);
        assert_eq!(v(&m[0])["args"].as_array().unwrap().len(), 10);
        assert_eq!(v(&m[1])["args"].as_array().unwrap().len(), 2);
    }
}
