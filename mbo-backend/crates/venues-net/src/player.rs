//! A venue endpoint on loopback that plays recorded frames in the venue's framing, for tests,
//! benchmarks and offline demos.
//!
//! One TCP listener serves both the WebSocket stream and, for Binance, the REST snapshots
//! (`GET /api/v3/depth?symbol=X&limit=N`, futures `/fapi/v1/depth`): a request with
//! `Upgrade: websocket` becomes a WebSocket session, any other request gets a plain HTTP/1.1
//! answer and the connection closes. Point a [`ConnectionConfig`](crate::ConnectionConfig)'s
//! `ws_url` at [`Player::ws_url`] and `rest_url` at [`Player::rest_url`].
//!
//! Each WebSocket client gets the whole recording from its first frame, as a venue sends a
//! fresh snapshot to each new subscriber. Playback starts at the client's first text message
//! (its subscribe); the player acknowledges subscriptions in the venue's shape and answers
//! the application pings (Kraken v2 `{"method":"ping"}`, Bybit `{"op":"ping"}`); WebSocket
//! pings are answered by tungstenite. Frames go out at [`PlayerConfig::rate`] messages per
//! second (as fast as the socket takes them without one).
//!
//! Looping: recordings that start with a snapshot (Kraken v2, Bybit, Coinbase) start again
//! from the first frame. Binance's diff stream cannot repeat its update ids on a live
//! session, so at the end of a Binance recording the player closes the socket: the client
//! reconnects and bridges again from the recorded REST snapshot.
//!
//! Limits: a resubscription (after a checksum failure or gap on the client's side) is
//! acknowledged but no fresh snapshot is made up; the recordings the player is meant for are
//! consistent. For a symbol with several recorded REST snapshots the first is served (the
//! one that bridges the start of the recording).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use mbo_venues::fixtures::{read_cryptofeed_http, read_frames};
use mbo_venues::{Precision, ReplayError, VenueKind};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

/// Frames written before each flush when the player runs ahead of its schedule.
const BATCH: usize = 256;

/// Largest HTTP request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// What a [`Player`] plays.
#[derive(Debug, Clone)]
pub struct PlayerConfig {
    /// The venue whose framing the frames are in.
    pub venue: VenueKind,
    /// Text frames, in order.
    pub frames: Vec<String>,
    /// Binance REST snapshot bodies: `(venue symbol, body)`.
    pub rest_snapshots: Vec<(String, String)>,
    /// Messages per second (`None`: as fast as possible).
    pub rate: Option<f64>,
    /// At the end, start again (Binance: close the socket so the client bridges again).
    pub looped: bool,
    /// Kraken v2: announce these printed decimals for every book symbol on an `instrument`
    /// channel snapshot before the first frame.
    pub kraken_precision: Option<Precision>,
}

impl PlayerConfig {
    /// Plays `frames` for `venue` once, as fast as possible.
    #[must_use]
    pub fn new(venue: VenueKind, frames: Vec<String>) -> Self {
        Self {
            venue,
            frames,
            rest_snapshots: Vec::new(),
            rate: None,
            looped: false,
            kraken_precision: None,
        }
    }

    /// Loads a recording (any format [`mbo_venues::fixtures::detect`] knows) and an optional
    /// REST snapshot file (cryptofeed HTTP format).
    ///
    /// # Errors
    /// [`ReplayError`] when a file cannot be read or parsed.
    pub fn from_files(
        venue: VenueKind,
        frames: &Path,
        snapshots: Option<&Path>,
    ) -> Result<Self, ReplayError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|source| ReplayError::Io {
                path: p.display().to_string(),
                source,
            })
        };
        let text = read(frames)?;
        let list = read_frames(&text).map_err(|source| ReplayError::Format {
            path: frames.display().to_string(),
            source,
        })?;
        let mut cfg = Self::new(venue, list.iter().map(|f| f.text.to_owned()).collect());
        if let Some(p) = snapshots {
            let text = read(p)?;
            let snaps = read_cryptofeed_http(&text).map_err(|source| ReplayError::Format {
                path: p.display().to_string(),
                source,
            })?;
            cfg.rest_snapshots = snaps
                .into_iter()
                .map(|s| (s.symbol, s.body.to_owned()))
                .collect();
        }
        Ok(cfg)
    }
}

/// Counters of a running player, published on a `watch` channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlayerStats {
    /// WebSocket sessions accepted.
    pub connections: u64,
    /// WebSocket sessions that ended.
    pub disconnections: u64,
    /// Frames sent, over all sessions.
    pub frames_sent: u64,
    /// Times a session reached the end of the recording.
    pub ends: u64,
    /// REST requests answered (any status).
    pub rest_requests: u64,
}

/// The prepared recording, shared by every session.
struct Shared {
    venue: VenueKind,
    frames: Vec<Utf8Bytes>,
    /// Upper-case symbol -> body (the first recorded).
    rest: HashMap<String, String>,
    rate: Option<f64>,
    looped: bool,
    /// Kraken `instrument` snapshot sent before the first frame.
    instrument: Option<String>,
    stats: watch::Sender<PlayerStats>,
}

/// A bound venue endpoint; [`Player::run`] serves it.
#[derive(Debug)]
pub struct Player {
    listener: TcpListener,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stats: watch::Receiver<PlayerStats>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("venue", &self.venue)
            .field("frames", &self.frames.len())
            .finish_non_exhaustive()
    }
}

/// Book symbols of Kraken v2 frames (`channel: book`), in order of appearance.
fn kraken_book_symbols(frames: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in frames {
        if !f.contains("\"book\"") {
            continue;
        }
        let Ok(v) = serde_json::from_str::<Value>(f) else {
            continue;
        };
        if v["channel"] != "book" {
            continue;
        }
        for d in v["data"].as_array().into_iter().flatten() {
            if let Some(s) = d["symbol"].as_str() {
                if !out.iter().any(|x| x == s) {
                    out.push(s.to_owned());
                }
            }
        }
    }
    out
}

/// The Kraken v2 `instrument` channel snapshot giving each pair's printed decimals.
fn kraken_instrument(symbols: &[String], p: Precision) -> String {
    let pairs: Vec<Value> = symbols
        .iter()
        .map(|s| {
            let (base, quote) = s.split_once('/').unwrap_or((s.as_str(), ""));
            json!({"symbol": s, "base": base, "quote": quote, "status": "online",
                   "price_precision": p.price, "qty_precision": p.qty})
        })
        .collect();
    json!({"channel": "instrument", "type": "snapshot",
           "data": {"assets": [], "pairs": pairs}})
    .to_string()
}

impl Player {
    /// Binds the endpoint (use port 0 for any free port).
    ///
    /// # Errors
    /// The bind error, or `InvalidInput` for a rate that is not a positive number.
    pub async fn bind(addr: impl ToSocketAddrs, cfg: PlayerConfig) -> std::io::Result<Player> {
        if let Some(r) = cfg.rate {
            if !(r.is_finite() && r > 0.0) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("rate must be a positive number of messages per second, not {r}"),
                ));
            }
        }
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let instrument = match (cfg.venue, cfg.kraken_precision) {
            (VenueKind::Kraken, Some(p)) => {
                Some(kraken_instrument(&kraken_book_symbols(&cfg.frames), p))
            }
            _ => None,
        };
        let mut rest = HashMap::new();
        for (symbol, body) in cfg.rest_snapshots {
            rest.entry(symbol.to_ascii_uppercase()).or_insert(body);
        }
        let (stats_tx, stats) = watch::channel(PlayerStats::default());
        Ok(Player {
            listener,
            addr,
            shared: Arc::new(Shared {
                venue: cfg.venue,
                frames: cfg.frames.into_iter().map(Utf8Bytes::from).collect(),
                rest,
                rate: cfg.rate,
                looped: cfg.looped,
                instrument,
                stats: stats_tx,
            }),
            stats,
        })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `ws://host:port` (any path is accepted, e.g. Binance's `/ws`).
    #[must_use]
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.addr)
    }

    /// `http://host:port`: the REST base URL (Binance snapshots).
    #[must_use]
    pub fn rest_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The player's counters.
    #[must_use]
    pub fn stats(&self) -> watch::Receiver<PlayerStats> {
        self.stats.clone()
    }

    /// Serves clients until `cancel` fires, then closes every session.
    pub async fn run(self, cancel: CancellationToken) {
        let mut sessions = JoinSet::new();
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, _)) => {
                        let _ = tcp.set_nodelay(true);
                        let shared = self.shared.clone();
                        let cancel = cancel.clone();
                        sessions.spawn(async move { serve(tcp, &shared, &cancel).await });
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "player: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        drop(self.listener);
        let _ = timeout(Duration::from_secs(2), async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
        sessions.abort_all();
    }
}

/// A parsed request head: target and whether it asks for a WebSocket.
struct Head {
    method: String,
    target: String,
    ws_key: Option<String>,
}

async fn read_head(r: &mut BufReader<TcpStream>) -> std::io::Result<Option<Head>> {
    let mut first = String::new();
    let mut total = r.read_line(&mut first).await?;
    if total == 0 {
        return Ok(None);
    }
    let mut parts = first.split_whitespace();
    let method = parts.next().unwrap_or("").to_owned();
    let target = parts.next().unwrap_or("/").to_owned();
    let (mut upgrade, mut ws_key) = (false, None);
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await?;
        total += n;
        if n == 0 || total > MAX_HEAD {
            return Ok(None);
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "upgrade" => upgrade = value.eq_ignore_ascii_case("websocket"),
                "sec-websocket-key" => ws_key = Some(value.to_owned()),
                _ => {}
            }
        }
    }
    Ok(Some(Head {
        method,
        target,
        ws_key: ws_key.filter(|_| upgrade),
    }))
}

async fn serve(tcp: TcpStream, shared: &Shared, cancel: &CancellationToken) {
    let mut r = BufReader::new(tcp);
    let head = match timeout(Duration::from_secs(10), read_head(&mut r)).await {
        Ok(Ok(Some(h))) => h,
        _ => return,
    };
    if let Some(key) = head.ws_key {
        let resp = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n\r\n",
            derive_accept_key(key.as_bytes())
        );
        if r.get_mut().write_all(resp.as_bytes()).await.is_err() {
            return;
        }
        let ws = WebSocketStream::from_raw_socket(r, Role::Server, None).await;
        shared.stats.send_modify(|s| s.connections += 1);
        if let Err(e) = play(ws, shared, cancel).await {
            tracing::debug!(error = %e, "player: session ended");
        }
        shared.stats.send_modify(|s| s.disconnections += 1);
    } else {
        let (status, body) = rest_answer(shared, &head.method, &head.target);
        shared.stats.send_modify(|s| s.rest_requests += 1);
        let resp = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n",
            body.len()
        );
        let tcp = r.get_mut();
        if tcp.write_all(resp.as_bytes()).await.is_ok()
            && tcp.write_all(body.as_bytes()).await.is_ok()
        {
            let _ = tcp.shutdown().await;
            // Let the client read the answer before the socket goes.
            let mut sink = [0u8; 512];
            let _ = timeout(Duration::from_secs(1), tcp.read(&mut sink)).await;
        }
    }
}

/// Status line and body for a REST request.
fn rest_answer<'a>(shared: &'a Shared, method: &str, target: &str) -> (&'static str, &'a str) {
    const NOT_FOUND: &str = r#"{"code":-1,"msg":"not found"}"#;
    const NO_SYMBOL: &str = r#"{"code":-1121,"msg":"Invalid symbol."}"#;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if method != "GET" || !matches!(path, "/api/v3/depth" | "/fapi/v1/depth") {
        return ("404 Not Found", NOT_FOUND);
    }
    let symbol = query
        .split('&')
        .find_map(|kv| kv.strip_prefix("symbol="))
        .unwrap_or("")
        .to_ascii_uppercase();
    match shared.rest.get(&symbol) {
        Some(body) => ("200 OK", body.as_str()),
        None => ("404 Not Found", NO_SYMBOL),
    }
}

fn now_text() -> String {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // RFC 3339 is not needed by any client; seconds since the epoch are enough for a reply.
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// The replies to a client message, and whether it asks for data (a subscribe).
fn answer(venue: VenueKind, text: &str) -> (Vec<String>, bool) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return (Vec::new(), false);
    };
    match venue {
        VenueKind::KrakenV1 => match v["event"].as_str() {
            Some("ping") => (
                vec![json!({"event": "pong", "reqid": v["reqid"]}).to_string()],
                false,
            ),
            Some(e) => (Vec::new(), e == "subscribe"),
            None => (Vec::new(), false),
        },
        VenueKind::Kraken => match v["method"].as_str() {
            Some("ping") => (
                vec![json!({"method": "pong", "req_id": v["req_id"],
                            "time_in": now_text(), "time_out": now_text()})
                .to_string()],
                false,
            ),
            Some(m @ ("subscribe" | "unsubscribe")) => (
                vec![json!({"method": m, "req_id": v["req_id"], "success": true,
                            "result": v["params"], "time_in": now_text(),
                            "time_out": now_text()})
                .to_string()],
                m == "subscribe",
            ),
            _ => (Vec::new(), false),
        },
        VenueKind::Bybit => match v["op"].as_str() {
            Some("ping") => (
                vec![json!({"req_id": v["req_id"], "op": "pong",
                            "args": [now_text()], "conn_id": "player"})
                .to_string()],
                false,
            ),
            Some(op @ ("subscribe" | "unsubscribe")) => (
                vec![json!({"success": true, "ret_msg": "", "conn_id": "player",
                            "req_id": v["req_id"], "op": op})
                .to_string()],
                op == "subscribe",
            ),
            _ => (Vec::new(), false),
        },
        VenueKind::Binance | VenueKind::BinanceFutures => match v["method"].as_str() {
            Some(m @ ("SUBSCRIBE" | "UNSUBSCRIBE")) => (
                // Binance's own key order.
                vec![format!(r#"{{"result":null,"id":{}}}"#, v["id"])],
                m == "SUBSCRIBE",
            ),
            _ => (Vec::new(), false),
        },
        // Coinbase recordings carry the venue's own `subscriptions` answers.
        _ => (Vec::new(), v["type"] == "subscribe"),
    }
}

type Stream = WebSocketStream<BufReader<TcpStream>>;

/// Waits until `due`; at once without one.
async fn wait(due: Option<Instant>) {
    if let Some(d) = due {
        sleep_until(d).await;
    }
}

/// One WebSocket session: answers the client, plays the recording.
async fn play(
    mut ws: Stream,
    shared: &Shared,
    cancel: &CancellationToken,
) -> Result<(), tokio_tungstenite::tungstenite::Error> {
    let n = shared.frames.len();
    let mut started = false;
    let mut finished = n == 0;
    let mut next = 0usize;
    let mut t0 = Instant::now();
    let mut sent = 0u64;
    loop {
        let due = shared
            .rate
            .map(|r| t0 + Duration::from_secs_f64(sent as f64 / r));
        tokio::select! {
            biased;
            () = cancel.cancelled() => {
                let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                return Ok(());
            }
            msg = ws.next() => match msg {
                Some(Ok(Message::Text(t))) => {
                    let (replies, subscribe) = answer(shared.venue, t.as_str());
                    for r in replies {
                        ws.feed(Message::text(r)).await?;
                    }
                    if subscribe && !started {
                        started = true;
                        if let Some(i) = &shared.instrument {
                            ws.feed(Message::text(i.clone())).await?;
                        }
                        t0 = Instant::now();
                    }
                    ws.flush().await?;
                }
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e),
            },
            () = wait(due), if started && !finished => {
                let now = Instant::now();
                let mut batch = 0u64;
                while (batch as usize) < BATCH {
                    if next == n {
                        shared.stats.send_modify(|s| s.ends += 1);
                        if !shared.looped {
                            finished = true;
                            break;
                        }
                        if matches!(shared.venue, VenueKind::Binance | VenueKind::BinanceFutures) {
                            ws.flush().await?;
                            shared.stats.send_modify(|s| s.frames_sent += batch);
                            let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                            // Let the client see the close before the TCP connection goes.
                            let _ = timeout(Duration::from_secs(1), async {
                                while let Some(Ok(_)) = ws.next().await {}
                            })
                            .await;
                            return Ok(());
                        }
                        next = 0;
                    }
                    if let Some(r) = shared.rate {
                        if batch > 0 && t0 + Duration::from_secs_f64(sent as f64 / r) > now {
                            break;
                        }
                    }
                    ws.feed(Message::Text(shared.frames[next].clone())).await?;
                    next += 1;
                    sent += 1;
                    batch += 1;
                }
                ws.flush().await?;
                shared.stats.send_modify(|s| s.frames_sent += batch);
            }
        }
    }
}
