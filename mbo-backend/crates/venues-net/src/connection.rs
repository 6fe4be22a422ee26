//! The connection task: connect → subscribe → frames into the venue → resync → reconnect.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use mbo_venues::{Event, ResyncReason, Venue, VenueKind};
use tokio::sync::{mpsc, watch};
use tokio::task::{JoinError, JoinHandle, JoinSet};
use tokio::time::{sleep, timeout, Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

use crate::config::ConnectionConfig;
use crate::error::{Error, Result};
use crate::health::{ConnState, GapInfo, Health};
use crate::protocol::{self, ResyncAction};

/// One event of a venue connection, as delivered to the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueUpdate {
    /// The venue.
    pub venue: VenueKind,
    /// The venue symbol of the book the event is about (empty for none).
    pub symbol: Arc<str>,
    /// Receive time of the frame (or REST body) that produced it, ns since the Unix epoch.
    pub recv_ns: u64,
    /// Events dropped just before this one because the channel was full (0 normally).
    pub lagged: u64,
    /// The event (book indices refer to the connection's own venue state machine).
    pub event: Event,
}

/// What a [`RawFrame`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawKind {
    /// A WebSocket handshake to `url` completed (the frame's text is empty).
    Connected {
        /// The WebSocket URL.
        url: String,
    },
    /// A text frame received on the WebSocket.
    Ws,
    /// A REST snapshot body (Binance).
    Rest {
        /// The venue symbol.
        symbol: String,
        /// The URL requested.
        url: String,
    },
}

/// A frame exactly as received, for recording (see [`Connection::with_raw_tap`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// Receive time, nanoseconds since the Unix epoch.
    pub recv_ns: u64,
    /// WebSocket frame, REST body or connect.
    pub kind: RawKind,
    /// The text as received.
    pub text: String,
}

/// What [`EventSink::deliver`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Taken.
    Taken,
    /// Dropped: no room (counted; the next event carries the count in `lagged`).
    Full,
    /// The consumer is gone: nothing more is delivered.
    Closed,
}

/// What [`EventSink::deliver_events`] did with a frame's events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameDelivery {
    /// Events dropped for lack of room.
    pub dropped: u64,
    /// The consumer is gone: nothing more is delivered.
    pub closed: bool,
}

/// Where a connection's events go. Called on the connection task, after each frame is
/// parsed: an implementation must never wait (the socket reader would wait with it).
///
/// A bounded `tokio::sync::mpsc::Sender` is one (`try_send`: a full channel drops and
/// counts); a consumer on the same thread can apply the events in place instead, with no
/// channel and no task hop between the socket read and its books.
pub trait EventSink: Send {
    /// One event of the frame being handled.
    fn deliver(&mut self, update: VenueUpdate) -> Delivery;

    /// Every event of one frame (or REST snapshot, or reconnect) was delivered: a
    /// consumer that publishes per frame does it here.
    fn frame_done(&mut self) {}

    /// Every event of one frame, in order, then the frame's end. `lagged` counts the events
    /// dropped since the last one taken; each update delivered carries it. The default makes
    /// one [`VenueUpdate`] per event for [`EventSink::deliver`], then calls
    /// [`EventSink::frame_done`]; a consumer that applies in place overrides it to read the
    /// events where they lie, under one lock per frame (a Bybit delta carries hundreds of
    /// levels: an update and a lock per level were a fifth of its receive → publish time).
    fn deliver_events(&mut self, frame: FrameEvents<'_>, lagged: &mut u64) -> FrameDelivery {
        let mut out = FrameDelivery::default();
        for &event in frame.events {
            let update = VenueUpdate {
                venue: frame.venue,
                symbol: frame
                    .symbol_of(&event)
                    .cloned()
                    .unwrap_or_else(|| Arc::from("")),
                recv_ns: frame.recv_ns,
                lagged: *lagged,
                event,
            };
            match self.deliver(update) {
                Delivery::Taken => *lagged = 0,
                Delivery::Full => {
                    *lagged += 1;
                    out.dropped += 1;
                }
                Delivery::Closed => {
                    out.closed = true;
                    return out;
                }
            }
        }
        self.frame_done();
        out
    }
}

/// The events of one frame (or REST snapshot, or reconnect), as a connection hands them to
/// its [`EventSink`].
#[derive(Debug, Clone, Copy)]
pub struct FrameEvents<'a> {
    /// The venue.
    pub venue: VenueKind,
    /// Receive time of the frame, ns since the Unix epoch.
    pub recv_ns: u64,
    /// The events, in order (book indices refer to the connection's venue state machine).
    pub events: &'a [Event],
    /// The venue symbol of each book index.
    pub symbols: &'a [Arc<str>],
}

impl<'a> FrameEvents<'a> {
    /// The venue symbol of the book an event is about.
    pub fn symbol_of(&self, event: &Event) -> Option<&'a Arc<str>> {
        book_of(event).and_then(|b| self.symbols.get(b))
    }
}

impl EventSink for mpsc::Sender<VenueUpdate> {
    fn deliver(&mut self, update: VenueUpdate) -> Delivery {
        match self.try_send(update) {
            Ok(()) => Delivery::Taken,
            Err(mpsc::error::TrySendError::Full(_)) => Delivery::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Delivery::Closed,
        }
    }
}

/// A running connection task.
pub struct ConnectionHandle {
    /// Health, updated as frames arrive.
    pub health: watch::Receiver<Health>,
    task: JoinHandle<Box<dyn Venue + Send>>,
}

impl std::fmt::Debug for ConnectionHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionHandle")
            .field("health", &*self.health.borrow())
            .finish_non_exhaustive()
    }
}

impl ConnectionHandle {
    /// Waits for the task to end (after cancellation) and returns the venue state machine.
    ///
    /// # Errors
    /// The task's [`JoinError`] if it panicked.
    pub async fn join(self) -> Result<Box<dyn Venue + Send>, JoinError> {
        self.task.await
    }
}

/// Spawns a connection task on the current Tokio runtime.
///
/// # Errors
/// [`Error::Unsupported`] for a venue without a live connector.
pub fn spawn(
    config: ConnectionConfig,
    sink: Option<mpsc::Sender<VenueUpdate>>,
    cancel: CancellationToken,
) -> Result<ConnectionHandle> {
    spawn_with(config, sink, None, cancel)
}

/// [`spawn`] with an optional raw-frame tap (see [`Connection::with_raw_tap`]).
///
/// # Errors
/// [`Error::Unsupported`] for a venue without a live connector.
pub fn spawn_with(
    config: ConnectionConfig,
    sink: Option<mpsc::Sender<VenueUpdate>>,
    tap: Option<mpsc::Sender<RawFrame>>,
    cancel: CancellationToken,
) -> Result<ConnectionHandle> {
    let (mut conn, health) = Connection::new(config, sink)?;
    conn.tap = tap;
    let task = tokio::spawn(conn.run(cancel));
    Ok(ConnectionHandle { health, task })
}

/// Installs rustls' `ring` provider as the process default once (reqwest and
/// tokio-tungstenite are built without a provider of their own); one installed first stays.
fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn book_of(e: &Event) -> Option<usize> {
    match e {
        Event::Snapshot { book }
        | Event::Level { book, .. }
        | Event::Applied { book }
        | Event::ResyncNeeded { book, .. }
        | Event::Reset { book } => Some(*book),
        Event::Trade(t) => Some(t.book),
        _ => None,
    }
}

/// The next resync request; never, without a (live) request channel.
async fn next_request(rx: &mut Option<mpsc::Receiver<Arc<str>>>) -> Arc<str> {
    if let Some(r) = rx {
        if let Some(symbol) = r.recv().await {
            return symbol;
        }
    }
    *rx = None;
    std::future::pending().await
}

/// Waits for the next ping tick; never, without a ping interval.
async fn tick(ping: &mut Option<tokio::time::Interval>) {
    match ping {
        Some(i) => {
            i.tick().await;
        }
        None => std::future::pending().await,
    }
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the WebSocket (TCP, TLS for `wss://`, handshake) within `limit`.
async fn connect(url: &str, limit: Duration) -> Result<Ws> {
    match timeout(limit, tokio_tungstenite::connect_async(url)).await {
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(Error::ConnectTimeout(limit)),
    }
}

/// How a session ended without error.
enum Ended {
    Cancelled,
}

/// A REST snapshot result: symbol, body.
type Fetched = (String, Result<String>);

/// One venue connection: the venue state machine plus its socket, resync and reconnect
/// logic. Run it with [`Connection::run`] (or [`spawn`]).
pub struct Connection {
    cfg: ConnectionConfig,
    venue: Box<dyn Venue + Send>,
    health: watch::Sender<Health>,
    sink: Option<Box<dyn EventSink>>,
    tap: Option<mpsc::Sender<RawFrame>>,
    resync_requests: Option<mpsc::Receiver<Arc<str>>>,
    lagged: u64,
    symbols: Vec<Arc<str>>,
    http: Option<reqwest::Client>,
    events: Vec<Event>,
    req_id: u64,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// Per-session state.
struct Session {
    /// Binance: symbols whose snapshot is still to be requested.
    need_snapshot: HashSet<String>,
    /// Binance: symbols with a snapshot request in flight.
    fetching: HashSet<String>,
    fetches: JoinSet<Fetched>,
    /// Book messages to send (resubscriptions).
    outbox: Vec<String>,
    /// The server asked us to go (Binance `serverShutdown`).
    shutdown_notice: bool,
}

impl Connection {
    /// A connection for `config`, delivering events to `sink` (see the crate docs for the
    /// policy when it is full), and the receiver of its health.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a venue without a live connector (Kraken v1).
    pub fn new(
        config: ConnectionConfig,
        sink: Option<mpsc::Sender<VenueUpdate>>,
    ) -> Result<(Self, watch::Receiver<Health>)> {
        if matches!(config.venue, VenueKind::KrakenV1) {
            return Err(Error::Unsupported(config.venue));
        }
        install_crypto_provider();
        let http = match protocol::resync_action(config.venue) {
            ResyncAction::RestSnapshot => Some(
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()?,
            ),
            ResyncAction::Resubscribe => None,
        };
        let venue = config.venue.create(&config.venue_options());
        let (health, rx) = watch::channel(Health::default());
        Ok((
            Self {
                cfg: config,
                venue,
                health,
                sink: sink.map(|s| Box::new(s) as Box<dyn EventSink>),
                tap: None,
                resync_requests: None,
                lagged: 0,
                symbols: Vec::new(),
                http,
                events: Vec::with_capacity(256),
                req_id: 100,
            },
            rx,
        ))
    }

    /// Also sends every received text frame, REST snapshot body and completed handshake,
    /// with its receive time, to `tap` (for recording). Like events, with `try_send`: the
    /// reader never waits; a frame that does not fit is dropped and counted in
    /// [`Health::raw_dropped`]. A closed receiver stops the tap.
    #[must_use]
    pub fn with_raw_tap(mut self, tap: mpsc::Sender<RawFrame>) -> Self {
        self.tap = Some(tap);
        self
    }

    /// Delivers events to `sink` instead of the channel given to [`Connection::new`].
    #[must_use]
    pub fn with_sink(mut self, sink: Box<dyn EventSink>) -> Self {
        self.sink = Some(sink);
        self
    }

    /// Resyncs the books whose venue symbol arrives on `requests`, as if the venue had
    /// reported a gap: a consumer that lost events (its channel overflowed) asks for fresh
    /// snapshots this way instead of showing a stale book until the next reconnect.
    #[must_use]
    pub fn with_resync_requests(mut self, requests: mpsc::Receiver<Arc<str>>) -> Self {
        self.resync_requests = Some(requests);
        self
    }

    fn record(&mut self, recv_ns: u64, kind: RawKind, text: &str) {
        let Some(tap) = &self.tap else { return };
        let frame = RawFrame {
            recv_ns,
            kind,
            text: text.to_owned(),
        };
        match tap.try_send(frame) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.health.send_modify(|h| h.raw_dropped += 1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => self.tap = None,
        }
    }

    fn set_state(&self, state: ConnState) {
        self.health.send_if_modified(|h| {
            let changed = h.state != state;
            h.state = state;
            changed
        });
    }

    /// Runs until `cancel` fires: connects, reconnects with backoff after any failure, and
    /// returns the venue state machine (books and counters) at the end.
    pub async fn run(mut self, cancel: CancellationToken) -> Box<dyn Venue + Send> {
        let mut failures = 0u32;
        let mut requests = self.resync_requests.take();
        loop {
            self.set_state(ConnState::Connecting);
            let started = Instant::now();
            let result = self.session(&cancel, &mut requests).await;
            let err = match result {
                Ok(Ended::Cancelled) => break,
                Err(e) => e,
            };
            if cancel.is_cancelled() {
                break;
            }
            tracing::warn!(venue = %self.cfg.venue, error = %err, "venue connection lost; reconnecting");
            // Every book waits for a new snapshot: nothing from the old session is trusted.
            self.venue.on_reconnect();
            self.count_live();
            self.announce_reset();
            if started.elapsed() >= self.cfg.backoff.stable_after {
                failures = 0;
            }
            failures = failures.saturating_add(1);
            let delay = self.cfg.backoff.delay(failures);
            self.health.send_modify(|h| {
                h.reconnects += 1;
                h.consecutive_failures = failures;
                h.last_error = Some(err.to_string());
                h.state = ConnState::Backoff;
            });
            tokio::select! {
                () = cancel.cancelled() => break,
                () = sleep(delay) => {}
            }
        }
        self.set_state(ConnState::Stopped);
        self.venue
    }

    async fn session(
        &mut self,
        cancel: &CancellationToken,
        requests: &mut Option<mpsc::Receiver<Arc<str>>>,
    ) -> Result<Ended> {
        let mut ws = tokio::select! {
            () = cancel.cancelled() => return Ok(Ended::Cancelled),
            ws = connect(&self.cfg.ws_url, self.cfg.connect_timeout) => ws?,
        };
        self.health.send_modify(|h| {
            h.connects += 1;
            h.state = ConnState::Subscribing;
        });
        let url = self.cfg.ws_url.clone();
        self.record(now_ns(), RawKind::Connected { url }, "");
        for m in protocol::subscribe_messages(&self.cfg) {
            ws.send(Message::text(m)).await?;
        }
        let rest = protocol::resync_action(self.cfg.venue) == ResyncAction::RestSnapshot;
        let mut s = Session {
            need_snapshot: if rest {
                self.cfg
                    .symbols
                    .iter()
                    .map(|x| x.to_ascii_uppercase())
                    .collect()
            } else {
                HashSet::new()
            },
            fetching: HashSet::new(),
            fetches: JoinSet::new(),
            outbox: Vec::new(),
            shutdown_notice: false,
        };
        let silence = self.cfg.silence_timeout;
        let idle = sleep(silence);
        tokio::pin!(idle);
        // A far-off deadline stands for "never" (about 30 years).
        let max_session = self.cfg.max_session;
        let expiry = sleep(max_session.unwrap_or(Duration::from_secs(1 << 30)));
        tokio::pin!(expiry);
        let snapshot_deadline = sleep(self.cfg.snapshot_delay);
        tokio::pin!(snapshot_deadline);
        let mut ping = self.cfg.ping_interval.map(|p| {
            let mut i = tokio::time::interval_at(Instant::now() + p, p);
            i.set_missed_tick_behavior(MissedTickBehavior::Delay);
            i
        });
        loop {
            tokio::select! {
                () = cancel.cancelled() => {
                    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                    return Ok(Ended::Cancelled);
                }
                msg = ws.next() => {
                    idle.as_mut().reset(Instant::now() + silence);
                    match msg {
                        Some(Ok(Message::Text(t))) => {
                            self.on_text(t.as_str(), &mut s);
                        }
                        Some(Ok(Message::Binary(b))) => {
                            self.health.send_modify(|h| h.bytes += b.len() as u64);
                        }
                        // tungstenite queues the pong (same payload) and flushes it on the
                        // next read or write.
                        Some(Ok(Message::Ping(_))) => {
                            self.health.send_modify(|h| h.server_pings += 1);
                        }
                        Some(Ok(Message::Pong(_) | Message::Frame(_))) => {}
                        Some(Ok(Message::Close(_))) | None => return Err(Error::Closed),
                        Some(Err(e)) => return Err(e.into()),
                    }
                }
                Some(done) = s.fetches.join_next(), if !s.fetches.is_empty() => {
                    if let Ok((symbol, body)) = done {
                        self.on_fetched(symbol, body, &mut s);
                    }
                }
                () = &mut snapshot_deadline, if !s.need_snapshot.is_empty() => {
                    let all: Vec<String> = s.need_snapshot.drain().collect();
                    for symbol in all {
                        self.fetch(symbol, Duration::ZERO, &mut s);
                    }
                }
                () = tick(&mut ping) => {
                    self.req_id += 1;
                    if let Some(m) = protocol::ping_message(self.cfg.venue, self.req_id) {
                        ws.send(Message::text(m)).await?;
                        self.health.send_modify(|h| h.pings_sent += 1);
                    }
                }
                symbol = next_request(requests) => {
                    tracing::info!(venue = %self.cfg.venue, %symbol, "resync requested by the consumer");
                    self.health.send_modify(|h| h.resyncs += 1);
                    self.resync(&symbol, Duration::ZERO, &mut s);
                }
                () = &mut idle => return Err(Error::Silence(silence)),
                () = &mut expiry, if max_session.is_some() => {
                    let _ = timeout(Duration::from_secs(1), ws.close(None)).await;
                    return Err(Error::SessionExpired(max_session.unwrap_or_default()));
                }
            }
            for m in s.outbox.drain(..) {
                ws.send(Message::text(m)).await?;
            }
            if s.shutdown_notice {
                return Err(Error::Closed);
            }
        }
    }

    fn fetch(&mut self, symbol: String, delay: Duration, s: &mut Session) {
        let (Some(http), Some(url)) = (
            self.http.clone(),
            protocol::snapshot_url(&self.cfg, &symbol),
        ) else {
            return;
        };
        if !s.fetching.insert(symbol.clone()) {
            return;
        }
        s.need_snapshot.remove(&symbol);
        s.fetches.spawn(async move {
            sleep(delay).await;
            let body: Result<String> = async {
                let r = http.get(&url).send().await?.error_for_status()?;
                Ok(r.text().await?)
            }
            .await;
            (symbol, body)
        });
    }

    fn on_fetched(&mut self, symbol: String, body: Result<String>, s: &mut Session) {
        s.fetching.remove(&symbol);
        match body {
            Ok(body) => {
                let recv_ns = now_ns();
                if self.tap.is_some() {
                    let url = protocol::snapshot_url(&self.cfg, &symbol).unwrap_or_default();
                    let kind = RawKind::Rest {
                        symbol: symbol.clone(),
                        url,
                    };
                    self.record(recv_ns, kind, &body);
                }
                self.venue
                    .on_rest_snapshot(&symbol, &body, &mut self.events);
                self.health.send_modify(|h| {
                    h.snapshots_fetched += 1;
                    h.bytes += body.len() as u64;
                });
                self.dispatch(recv_ns, s);
            }
            Err(e) => {
                tracing::warn!(venue = %self.cfg.venue, %symbol, error = %e, "snapshot request failed; retrying");
                self.health
                    .send_modify(|h| h.last_error = Some(format!("{symbol}: {e}")));
                let retry = self.cfg.snapshot_retry;
                self.fetch(symbol, retry, s);
            }
        }
    }

    fn on_text(&mut self, text: &str, s: &mut Session) {
        let recv_ns = now_ns();
        self.record(recv_ns, RawKind::Ws, text);
        if protocol::is_shutdown_notice(self.cfg.venue, text) {
            s.shutdown_notice = true;
        } else {
            self.venue.on_frame(text, &mut self.events);
            if !s.need_snapshot.is_empty() {
                // Binance: the first diff of a symbol is buffered; now fetch its snapshot.
                let seen: Vec<String> = s
                    .need_snapshot
                    .iter()
                    .filter(|sym| self.venue.books().get(sym).is_some())
                    .cloned()
                    .collect();
                for symbol in seen {
                    self.fetch(symbol, Duration::ZERO, s);
                }
            }
            self.dispatch(recv_ns, s);
        }
        // Counted once handled: `messages == n` means n frames fully processed.
        self.health.send_modify(|h| {
            h.messages += 1;
            h.bytes += text.len() as u64;
            h.last_recv_ns = recv_ns;
        });
    }

    /// Names every book of the state machine in `symbols` (books are only ever added).
    fn sync_symbols(&mut self) {
        let all = self.venue.books().all();
        while self.symbols.len() < all.len() {
            self.symbols
                .push(Arc::from(all[self.symbols.len()].symbol.as_str()));
        }
    }

    /// Acts on and forwards the events produced by the last frame or snapshot.
    fn dispatch(&mut self, recv_ns: u64, s: &mut Session) {
        let mut events = std::mem::take(&mut self.events);
        if events.iter().any(|e| {
            matches!(
                e,
                Event::Snapshot { .. } | Event::Applied { .. } | Event::ResyncNeeded { .. }
            )
        }) {
            self.count_live();
        }
        self.sync_symbols();
        for &event in &events {
            match event {
                Event::ResyncNeeded { book, reason } => {
                    let symbol = self
                        .symbols
                        .get(book)
                        .cloned()
                        .unwrap_or_else(|| Arc::from(""));
                    let gap = GapInfo {
                        symbol: symbol.to_string(),
                        reason,
                        at_ns: recv_ns,
                    };
                    self.health.send_modify(|h| {
                        h.resyncs += 1;
                        match reason {
                            ResyncReason::Gap { .. } => h.gaps += 1,
                            ResyncReason::Checksum { .. } => h.checksum_failures += 1,
                            _ => {}
                        }
                        h.last_gap = Some(gap);
                    });
                    // A snapshot older than the buffered diffs is fetched again after a
                    // pause (REST weight); a gap needs one at once.
                    let delay = if reason == ResyncReason::SnapshotTooOld {
                        self.cfg.snapshot_retry
                    } else {
                        Duration::ZERO
                    };
                    self.resync(&symbol, delay, s);
                }
                Event::Applied { .. } => {
                    self.health.send_if_modified(|h| {
                        let first = h.state == ConnState::Subscribing;
                        if first {
                            h.state = ConnState::Live;
                        }
                        first
                    });
                }
                Event::Trade(t) if t.venue_time_ns > 0 => {
                    let lat = i64::try_from(i128::from(recv_ns) - i128::from(t.venue_time_ns))
                        .unwrap_or(i64::MAX);
                    self.health
                        .send_modify(|h| h.exchange_latency_ns = Some(lat));
                }
                _ => {}
            }
        }
        self.flush(recv_ns, &events);
        events.clear();
        self.events = events;
    }

    /// Tells the consumer that every book of this connection is unknown until its next
    /// snapshot (consumers keep their own copy of the books from the events).
    fn announce_reset(&mut self) {
        self.sync_symbols();
        let resets: Vec<Event> = (0..self.symbols.len())
            .map(|book| Event::Reset { book })
            .collect();
        self.flush(now_ns(), &resets);
    }

    /// Gets a fresh snapshot of `symbol`: a REST snapshot (after `delay`) or a
    /// resubscription, per the venue.
    fn resync(&mut self, symbol: &str, delay: Duration, s: &mut Session) {
        match protocol::resync_action(self.cfg.venue) {
            ResyncAction::RestSnapshot => self.fetch(symbol.to_owned(), delay, s),
            ResyncAction::Resubscribe => {
                self.req_id += 2;
                s.outbox.extend(protocol::resubscribe_messages(
                    &self.cfg,
                    symbol,
                    self.req_id,
                ));
                self.health.send_modify(|h| h.resubscribes += 1);
            }
        }
    }

    fn count_live(&self) {
        let all = self.venue.books().all();
        let live = all
            .iter()
            .filter(|b| b.state == mbo_venues::SyncState::Live)
            .count();
        let total = all.len();
        self.health.send_if_modified(|h| {
            let changed = (h.books_live, h.books) != (live, total);
            h.books_live = live;
            h.books = total;
            changed
        });
    }

    /// Hands a frame's events to the sink, which publishes at its end.
    fn flush(&mut self, recv_ns: u64, events: &[Event]) {
        let Some(sink) = &mut self.sink else { return };
        let frame = FrameEvents {
            venue: self.cfg.venue,
            recv_ns,
            events,
            symbols: &self.symbols,
        };
        let out = sink.deliver_events(frame, &mut self.lagged);
        if out.dropped > 0 {
            self.health.send_modify(|h| h.events_dropped += out.dropped);
        }
        if out.closed {
            self.sink = None;
        }
    }
}
