//! Loopback venue servers for the live-connector tests: a real WebSocket server and a
//! minimal HTTP/1.1 server on 127.0.0.1, serving the recordings in `shared/data/crypto`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mbo_venues::fixtures::{Frame, RestSnapshot};
use mbo_venues::{Side, Venue, VenueKind, VenueOptions};
use mbo_venues_net::Health;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Each step of a test waits at most this long (the whole test has its own limit too).
pub const STEP: Duration = Duration::from_secs(8);

/// Directory of the crypto recordings: `$MBO_CRYPTO_DATA` when set, else
/// `../shared/data/crypto` relative to the repository root.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("MBO_CRYPTO_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
    }
}

/// A recording's text. A missing file fails the test, loudly; it is never skipped.
pub fn read(rel: &str) -> String {
    let path = data_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "required recording is missing: {} ({e}); expected in ../shared/data/crypto relative \
             to the repository root, or set MBO_CRYPTO_DATA; it is never skipped",
            path.display()
        )
    })
}

/// Plays frames (and REST snapshots at their receive times) through a fresh venue, like
/// `mbo_venues::replay_with`, and returns the state machine (its books).
pub fn replay_venue(
    kind: VenueKind,
    frames: &[Frame<'_>],
    snapshots: &[RestSnapshot<'_>],
    options: &VenueOptions,
) -> Box<dyn Venue + Send> {
    let mut v = kind.create(options);
    let mut snaps: Vec<&RestSnapshot<'_>> = snapshots.iter().collect();
    snaps.sort_by_key(|s| s.recv_ns.unwrap_or(0));
    let mut next = 0;
    let mut out = Vec::new();
    for f in frames {
        while let Some(s) = snaps.get(next) {
            if s.recv_ns.unwrap_or(0) > f.recv_ns.unwrap_or(u64::MAX) {
                break;
            }
            v.on_rest_snapshot(&s.symbol, s.body, &mut out);
            next += 1;
        }
        v.on_frame(f.text, &mut out);
        out.clear();
    }
    for s in &snaps[next..] {
        v.on_rest_snapshot(&s.symbol, s.body, &mut out);
    }
    v
}

/// A book side as `[[price, qty], ...]` text pairs, best first.
pub fn text_levels(v: &dyn Venue, symbol: &str, side: Side) -> Vec<(String, String)> {
    let b = &v.books().get(symbol).unwrap().book;
    b.levels(side)
        .map(|l| (l.price_text(), l.qty_text()))
        .collect()
}

/// The connector's books must equal the replay's: same levels, live.
pub fn assert_same_books(got: &dyn Venue, expected: &dyn Venue) {
    assert!(!expected.books().all().is_empty());
    for e in expected.books().all() {
        let g = got
            .books()
            .get(&e.symbol)
            .unwrap_or_else(|| panic!("connector has no book for {}", e.symbol));
        assert_eq!(e.state, mbo_venues::SyncState::Live, "replay {}", e.symbol);
        assert_eq!(
            g.state,
            mbo_venues::SyncState::Live,
            "connector {}",
            e.symbol
        );
        assert!(g.book == e.book, "{}: books differ", e.symbol);
        assert!(!g.book.is_empty(), "{}", e.symbol);
    }
}

/// A WebSocket server on 127.0.0.1: yields each accepted connection in order.
pub struct WsServer {
    /// `ws://127.0.0.1:port`.
    pub url: String,
    conns: mpsc::Receiver<WebSocketStream<TcpStream>>,
}

impl WsServer {
    pub async fn bind() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::channel(8);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                        let _ = tx.send(ws).await;
                    }
                });
            }
        });
        Self { url, conns }
    }

    /// The next client connection.
    pub async fn accept(&mut self) -> WebSocketStream<TcpStream> {
        timeout(STEP, self.conns.recv())
            .await
            .expect("no client connection in time")
            .expect("server gone")
    }
}

/// The next text message from the client, as JSON (pings and pongs skipped).
pub async fn recv_json(ws: &mut WebSocketStream<TcpStream>) -> Value {
    loop {
        let m = timeout(STEP, ws.next())
            .await
            .expect("no message from the client in time")
            .expect("client closed")
            .expect("websocket error");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// Sends text frames, flushing once.
pub async fn send_all<'a>(
    ws: &mut WebSocketStream<TcpStream>,
    frames: impl IntoIterator<Item = &'a str>,
) {
    for f in frames {
        ws.feed(Message::text(f.to_owned())).await.unwrap();
    }
    ws.flush().await.unwrap();
}

/// Reads (and discards) until the client goes away.
pub async fn drain(mut ws: WebSocketStream<TcpStream>) {
    while let Some(Ok(_)) = ws.next().await {}
}

/// A minimal HTTP/1.1 server: `handler(path_and_query)` gives the 200 body; every request
/// is counted on the returned watch channel.
pub async fn http_server(
    handler: Arc<dyn Fn(&str) -> String + Send + Sync>,
) -> (String, watch::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (count_tx, count) = watch::channel(0usize);
    let count_tx = Arc::new(count_tx);
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let handler = handler.clone();
            let count_tx = count_tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let body = handler(&path);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                count_tx.send_modify(|n| *n += 1);
                let _ = tcp.write_all(resp.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (url, count)
}

/// Waits until the connection's health satisfies `pred`.
pub async fn wait_health(
    rx: &mut watch::Receiver<Health>,
    pred: impl FnMut(&Health) -> bool,
) -> Health {
    let got = match timeout(STEP, rx.wait_for(pred)).await {
        Ok(Ok(h)) => Some(h.clone()),
        _ => None,
    };
    got.unwrap_or_else(|| {
        panic!(
            "health condition not reached in time; last: {:?}",
            *rx.borrow()
        )
    })
}
