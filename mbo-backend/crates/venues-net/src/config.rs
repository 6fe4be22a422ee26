//! Per-connection configuration, with each venue's documented defaults.

use std::time::Duration;

use mbo_venues::{Precision, VenueKind, VenueOptions};

use crate::backoff::Backoff;
use crate::error::{Error, Result};

/// One venue connection: which venue, which symbols, where, and how to keep it alive.
///
/// [`ConnectionConfig::new`] fills in the real endpoints and limits of
/// `shared/docs/crypto-venues.md`; every field is public so tests (or a proxy) can point the
/// connection at `ws://127.0.0.1:..` / `http://127.0.0.1:..` and shorten the timers.
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// The venue protocol.
    pub venue: VenueKind,
    /// Venue symbols as the venue writes them in messages (`BTCUSDT`, `BTC/USD`, `BTC-USD`).
    pub symbols: Vec<String>,
    /// Book depth: Bybit topic depth (1, 50, 200, 1000), Kraken subscription depth (10, 25,
    /// 100, 500, 1000), Binance REST snapshot `limit`. `None`: the venue default.
    pub depth: Option<usize>,
    /// Printed decimals (Kraken v2 checksums; `None`: the pair's from the `instrument`
    /// channel, which the connector subscribes to, else the digits as received).
    pub precision: Option<Precision>,
    /// Also subscribe to trades.
    pub trades: bool,
    /// Coinbase: the legacy Exchange feed (`level2_batch`, `matches`, `heartbeat`) instead of
    /// Advanced Trade.
    pub coinbase_legacy: bool,
    /// WebSocket URL (Binance: the raw-stream base, `.../ws`, subscriptions are sent live).
    pub ws_url: String,
    /// REST base URL (Binance snapshots; unused elsewhere).
    pub rest_url: String,
    /// Application ping interval (`None`: the venue pings, or heartbeats keep it alive).
    pub ping_interval: Option<Duration>,
    /// No frame (data, heartbeat, pong or ping) for this long: reconnect.
    pub silence_timeout: Duration,
    /// Limit on TCP + TLS + WebSocket handshake.
    pub connect_timeout: Duration,
    /// Binance: fetch a snapshot this long after subscribing for symbols that had no diff yet
    /// (otherwise the fetch follows the first diff, as the doc's buffering rule says).
    pub snapshot_delay: Duration,
    /// Delay before retrying a failed REST snapshot request.
    pub snapshot_retry: Duration,
    /// Reconnect policy.
    pub backoff: Backoff,
    /// Reconnect proactively after this long (Binance: a connection is valid for 24 h).
    pub max_session: Option<Duration>,
}

impl ConnectionConfig {
    /// The documented defaults for `venue` and `symbols`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for Kraken v1 (replay only).
    pub fn new(venue: VenueKind, symbols: &[&str]) -> Result<Self> {
        let secs = Duration::from_secs;
        let ms = Duration::from_millis;
        // Binance: 300 connections / 5 min / IP; Bybit: 500 / 5 min / domain; Coinbase:
        // 8 connections / s; Kraken: ~150 attempts / 10 min, then once per 5 s.
        let backoff = |floor: Duration| Backoff {
            initial: ms(500),
            max: secs(30),
            fast_attempts: 3,
            floor,
            stable_after: secs(30),
        };
        let (ws, rest, ping, silence, backoff) = match venue {
            VenueKind::Binance => (
                "wss://stream.binance.com:9443/ws",
                "https://api.binance.com",
                None,
                // The server pings every 20 s; its pings count as traffic.
                secs(60),
                backoff(secs(1)),
            ),
            VenueKind::BinanceFutures => (
                "wss://fstream.binance.com/ws",
                "https://fapi.binance.com",
                None,
                secs(60 * 4),
                backoff(secs(1)),
            ),
            VenueKind::Bybit => (
                "wss://stream.bybit.com/v5/public/spot",
                "https://api.bybit.com",
                Some(secs(20)),
                secs(45),
                backoff(secs(1)),
            ),
            VenueKind::Kraken => (
                "wss://ws.kraken.com/v2",
                "https://api.kraken.com",
                Some(secs(30)),
                // Heartbeats come about once a second once subscribed.
                secs(15),
                Backoff {
                    initial: ms(250),
                    max: secs(60),
                    fast_attempts: 3,
                    floor: secs(5),
                    stable_after: secs(30),
                },
            ),
            VenueKind::Coinbase => (
                "wss://advanced-trade-ws.coinbase.com",
                "https://api.coinbase.com",
                None,
                secs(30),
                backoff(secs(1)),
            ),
            other => return Err(Error::Unsupported(other)),
        };
        Ok(Self {
            venue,
            symbols: symbols.iter().map(|s| (*s).to_owned()).collect(),
            depth: None,
            precision: None,
            trades: true,
            coinbase_legacy: false,
            ws_url: ws.to_owned(),
            rest_url: rest.to_owned(),
            ping_interval: ping,
            silence_timeout: silence,
            connect_timeout: secs(10),
            snapshot_delay: secs(2),
            snapshot_retry: secs(2),
            backoff,
            max_session: match venue {
                VenueKind::Binance | VenueKind::BinanceFutures => Some(secs(24 * 3600 - 5 * 60)),
                _ => None,
            },
        })
    }

    /// Coinbase's legacy Exchange feed (`wss://ws-feed.exchange.coinbase.com`).
    #[must_use]
    pub fn coinbase_legacy(mut self) -> Self {
        self.coinbase_legacy = true;
        "wss://ws-feed.exchange.coinbase.com".clone_into(&mut self.ws_url);
        self
    }

    /// Options for the venue state machine.
    #[must_use]
    pub fn venue_options(&self) -> VenueOptions {
        VenueOptions {
            symbols: self.symbols.clone(),
            depth: match self.venue {
                VenueKind::Kraken => Some(self.book_depth()),
                _ => None,
            },
            precision: self.precision,
        }
    }

    /// The depth subscribed (or the REST `limit` for Binance).
    #[must_use]
    pub fn book_depth(&self) -> usize {
        self.depth.unwrap_or(match self.venue {
            VenueKind::Bybit => 50,
            VenueKind::Kraken => mbo_venues::kraken::DEFAULT_DEPTH,
            _ => 1000,
        })
    }
}
