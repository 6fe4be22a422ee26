//! One SSE client: connect at its slot, stream until the end, hand its numbers in once.
//!
//! Each client is one task that drives its own HTTP/1 connection (hyper's connection future
//! is polled inside the task rather than spawned, so 10,000 clients are 10,000 tasks). It
//! counts into a small local [`Local`] and touches shared state only to hand in latency
//! samples in batches of [`BATCH`] and its totals once at the end: no lock per event.

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper::header::{
    HeaderMap, ACCEPT, CACHE_CONTROL, CONTENT_TYPE, HOST, RETRY_AFTER, USER_AGENT,
};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{sleep_until, Instant, Sleep};

use super::histogram::Histogram;
use super::payload;
use super::report::Totals;
use super::sse::{Event, SseParser};

/// TCP connect plus response headers, from the client's request start.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Response headers to first event (the server sends its snapshot at once).
const FIRST_EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes of each event's data kept: enough for `server_ts`, `count` or `skipped`, which the
/// server writes first; the rest of a payload is counted but not stored.
const DATA_PREFIX_CAP: usize = 1024;
/// Latency samples a client holds before handing them to the shared histograms.
const BATCH: usize = 64;
/// hyper's read buffer ceiling per connection (its minimum is 8 KiB).
const READ_BUF_MAX: usize = 64 * 1024;
/// Error response bodies are read up to this, for the report's example message.
const ERROR_BODY_CAP: usize = 4096;

/// Event types, as indices into per-type arrays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Snapshot,
    Book,
    Trade,
    Status,
    Mbo,
    Lagged,
    /// Any other name (including the default `message`).
    Other,
}

/// Number of [`EventKind`]s.
pub const KINDS: usize = 7;

impl EventKind {
    /// Every kind, in report order.
    pub const ALL: [Self; KINDS] = [
        Self::Snapshot,
        Self::Book,
        Self::Trade,
        Self::Status,
        Self::Mbo,
        Self::Lagged,
        Self::Other,
    ];

    fn from_name(name: &[u8]) -> Self {
        match name {
            b"snapshot" => Self::Snapshot,
            b"book" => Self::Book,
            b"trade" => Self::Trade,
            b"status" => Self::Status,
            b"mbo" => Self::Mbo,
            b"lagged" => Self::Lagged,
            _ => Self::Other,
        }
    }

    /// The name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Book => "book",
            Self::Trade => "trade",
            Self::Status => "status",
            Self::Mbo => "mbo",
            Self::Lagged => "lagged",
            Self::Other => "other",
        }
    }

    /// Market-data updates: what the overall latency is about. A snapshot's `server_ts` is
    /// when the state it carries became visible, possibly long before the client asked, so
    /// its "latency" is the state's age, not a delivery delay; `status` and `lagged` are
    /// notices, not market data. All are still reported by type.
    pub fn is_live_update(self) -> bool {
        matches!(self, Self::Book | Self::Trade | Self::Mbo)
    }
}

/// What every client shares: where to go, when, and when to stop.
#[derive(Debug)]
pub struct Plan {
    /// Server address (loopback, checked).
    pub addr: SocketAddr,
    /// `Host` header.
    pub host_header: String,
    /// Request target, e.g. `/api/v1/stream?symbol=CLX5&depth=10&interval_ms=50`.
    pub path_and_query: String,
    /// Start of the run.
    pub t0: Instant,
    /// Time between two clients' starts (1 / connect rate).
    pub spacing: Duration,
    /// When every client stops.
    pub end: Instant,
}

/// Shared accumulators (locked once per [`BATCH`] events and once per client).
#[derive(Debug)]
pub struct Shared {
    /// Latency (receive − `server_ts`), ns, per event kind.
    pub latency: Mutex<Vec<Histogram>>,
    /// Everything else.
    pub totals: Mutex<Totals>,
}

impl Shared {
    /// Empty accumulators.
    pub fn new() -> Self {
        Self {
            latency: Mutex::new(EventKind::ALL.iter().map(|_| Histogram::new()).collect()),
            totals: Mutex::new(Totals::default()),
        }
    }
}

/// A poisoned lock only means another client task panicked mid-update of counters; the
/// counters are still the best numbers there are.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Why a client did not complete: a report key (`http_503`, `connect`, ...) and, for the
/// report's examples, what was said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Report key.
    pub key: Cow<'static, str>,
    /// Message (error text or the server's JSON error).
    pub detail: Option<String>,
}

impl Failure {
    fn new(key: &'static str) -> Self {
        Self {
            key: Cow::Borrowed(key),
            detail: None,
        }
    }

    fn with(key: &'static str, detail: impl ToString) -> Self {
        Self {
            key: Cow::Borrowed(key),
            detail: Some(detail.to_string()),
        }
    }

    fn connect(e: &std::io::Error) -> Self {
        // errno values are Linux's: EMFILE/ENFILE (the open-file limit) and EADDRNOTAVAIL
        // (ephemeral ports exhausted) are limits of this machine, not of the server.
        let key = match e.raw_os_error() {
            Some(23 | 24) => "too_many_open_files",
            Some(99) => "no_local_ports",
            _ => "connect",
        };
        Self::with(key, e)
    }

    fn hyper(e: &hyper::Error) -> Self {
        if e.is_parse() {
            Self::with("bad_response", e)
        } else {
            Self::with("reset", e)
        }
    }
}

/// One client's counts.
#[derive(Debug, Default)]
pub struct Local {
    /// Got 200 and at least one event.
    pub connected: bool,
    /// Request start to first `snapshot` event.
    pub snapshot_ns: Option<u64>,
    /// Events by kind.
    pub events: [u64; KINDS],
    /// Body bytes received.
    pub bytes: u64,
    /// Sum of `count` over `mbo` events.
    pub records: u64,
    /// Sum of `skipped` over `lagged` events.
    pub skipped: u64,
    /// Events whose payload lacked a readable `server_ts` (or an mbo batch its `count`).
    pub bad_payloads: u64,
    /// Events received before their `server_ts` (clock trouble; counted as 0 latency).
    pub negative_latency: u64,
    /// Comment lines (keep-alives).
    pub keepalives: u64,
    /// Latency samples not yet handed in.
    pub(super) batch: Vec<(EventKind, u64)>,
}

impl Local {
    /// Frames: book (or mbo) updates plus snapshots.
    pub fn frames(&self) -> u64 {
        self.events[EventKind::Snapshot as usize]
            + self.events[EventKind::Book as usize]
            + self.events[EventKind::Mbo as usize]
    }

    fn on_event(&mut self, event: &Event<'_>, recv_ns: u64, started: Instant, shared: &Shared) {
        let kind = EventKind::from_name(event.name);
        self.events[kind as usize] += 1;
        self.connected = true;
        match kind {
            EventKind::Snapshot if self.snapshot_ns.is_none() => {
                self.snapshot_ns = Some(duration_ns(started.elapsed()));
            }
            EventKind::Mbo => match payload::mbo_count(event.data) {
                Some(n) => self.records += n,
                None => self.bad_payloads += 1,
            },
            EventKind::Lagged => {
                self.skipped += payload::uint_field(event.data, "skipped").unwrap_or(0);
            }
            _ => {}
        }
        match payload::server_ts(event.data) {
            Some(ts) => {
                let latency = recv_ns.checked_sub(ts).unwrap_or_else(|| {
                    self.negative_latency += 1;
                    0
                });
                if self.batch.capacity() == 0 {
                    self.batch.reserve_exact(BATCH);
                }
                self.batch.push((kind, latency));
                if self.batch.len() >= BATCH {
                    self.flush(shared);
                }
            }
            None => self.bad_payloads += 1,
        }
    }

    /// Hands the held latency samples in.
    fn flush(&mut self, shared: &Shared) {
        if self.batch.is_empty() {
            return;
        }
        let mut hists = lock(&shared.latency);
        for &(kind, ns) in &self.batch {
            if let Some(h) = hists.get_mut(kind as usize) {
                h.record(ns);
            }
        }
        drop(hists);
        self.batch.clear();
    }
}

/// The end of the run for one client: its deadline, or an early stop (Ctrl-C).
struct Stop {
    end: Pin<Box<Sleep>>,
    early: watch::Receiver<bool>,
}

impl Stop {
    async fn wait(&mut self) {
        tokio::select! {
            () = &mut self.end => {}
            changed = self.early.changed() => {
                // The sender gone (the run is being torn down) is not a stop by itself.
                if changed.is_err() {
                    (&mut self.end).await;
                }
            }
        }
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Wall clock, Unix ns (the server's `server_ts` clock).
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, duration_ns)
}

/// Runs client `index` to the end and hands its numbers in.
pub async fn run(index: u32, plan: Arc<Plan>, shared: Arc<Shared>, early: watch::Receiver<bool>) {
    let mut stop = Stop {
        end: Box::pin(sleep_until(plan.end)),
        early,
    };
    let mut local = Local::default();
    let slot = plan
        .t0
        .checked_add(plan.spacing.saturating_mul(index))
        .unwrap_or(plan.end);
    let started = tokio::select! {
        biased;
        () = stop.wait() => None,
        () = sleep_until(slot) => Some(Instant::now()),
    };
    let result = match started {
        None => Err(Failure::new("not_started")),
        Some(started) => session(&plan, &shared, &mut local, &mut stop, started).await,
    };
    local.flush(&shared);
    lock(&shared.totals).add_client(&local, result);
}

/// Connects, then requests and streams while driving the connection.
async fn session(
    plan: &Plan,
    shared: &Shared,
    local: &mut Local,
    stop: &mut Stop,
    started: Instant,
) -> Result<(), Failure> {
    let connect_deadline = started + CONNECT_TIMEOUT;
    let tcp = tokio::select! {
        biased;
        () = stop.wait() => return Err(Failure::new("timeout_connect")),
        () = sleep_until(connect_deadline) => return Err(Failure::new("timeout_connect")),
        r = TcpStream::connect(plan.addr) => r.map_err(|e| Failure::connect(&e))?,
    };
    // Events are small and latency is the point: no Nagle on the (idle) request side.
    tcp.set_nodelay(true).map_err(|e| Failure::connect(&e))?;
    let (mut sender, conn) = http1::Builder::new()
        .max_buf_size(READ_BUF_MAX)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
        .await
        .map_err(|e| Failure::hyper(&e))?;
    let exchange = async {
        let request = Request::get(plan.path_and_query.as_str())
            .header(HOST, plan.host_header.as_str())
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache")
            .header(USER_AGENT, "mbo-loadtest")
            .body(Empty::<Bytes>::new())
            .map_err(|e| Failure::with("request", e))?;
        let response = tokio::select! {
            biased;
            () = stop.wait() => return Err(Failure::new("timeout_response")),
            () = sleep_until(connect_deadline) => return Err(Failure::new("timeout_response")),
            r = sender.send_request(request) => r.map_err(|e| Failure::hyper(&e))?,
        };
        let (parts, body) = response.into_parts();
        if parts.status != StatusCode::OK {
            let key = format!("http_{}", parts.status.as_u16());
            let detail = error_detail(&parts.headers, body).await;
            return Err(Failure {
                key: Cow::Owned(key),
                detail: Some(detail),
            });
        }
        let content_type = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !content_type
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            return Err(Failure::with(
                "content_type",
                format!("expected text/event-stream, got {content_type:?}"),
            ));
        }
        stream(body, shared, local, stop, started).await
    };
    drive(conn, exchange).await
}

/// Polls `work` to its end while also polling the connection `conn` that feeds it (hyper's
/// connection future does the socket I/O). The connection may finish first (the server
/// closed); `work` then drains what was received and sees the end itself.
async fn drive<C: Future, W: Future>(conn: C, work: W) -> W::Output {
    let mut conn = pin!(conn);
    let mut work = pin!(work);
    let mut conn_done = false;
    loop {
        tokio::select! {
            biased;
            out = &mut work => return out,
            _ = &mut conn, if !conn_done => conn_done = true,
        }
    }
}

/// Reads the event stream until the stop, counting every event.
async fn stream(
    mut body: Incoming,
    shared: &Shared,
    local: &mut Local,
    stop: &mut Stop,
    started: Instant,
) -> Result<(), Failure> {
    let first_event_deadline = Instant::now() + FIRST_EVENT_TIMEOUT;
    let mut parser = SseParser::new(DATA_PREFIX_CAP);
    // One stop future for the whole stream, not one per frame.
    let mut stopped = pin!(stop.wait());
    loop {
        let frame = tokio::select! {
            biased;
            () = &mut stopped => {
                return if local.connected {
                    Ok(())
                } else {
                    Err(Failure::new("timeout_first_event"))
                };
            }
            () = sleep_until(first_event_deadline), if !local.connected => {
                return Err(Failure::new("timeout_first_event"));
            }
            frame = body.frame() => frame,
        };
        let frame = match frame {
            None => return Err(Failure::new("eof")),
            Some(Err(e)) => return Err(Failure::hyper(&e)),
            Some(Ok(frame)) => frame,
        };
        // Trailers carry no events.
        let Ok(data) = frame.into_data() else {
            continue;
        };
        // One clock read per chunk: every event in it arrived at that moment.
        let recv_ns = unix_ns();
        local.bytes += data.len() as u64;
        parser.feed(&data, |event| {
            local.on_event(event, recv_ns, started, shared);
        });
        local.keepalives = parser.comments();
    }
}

/// The server's error for the report: `code: message` from its JSON body (or the body's
/// start), plus `Retry-After`.
async fn error_detail(headers: &HeaderMap, body: Incoming) -> String {
    let read = tokio::time::timeout(
        Duration::from_secs(1),
        Limited::new(body, ERROR_BODY_CAP).collect(),
    )
    .await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        _ => Bytes::new(),
    };
    let mut detail = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(json) => {
            let error = &json["error"];
            match (error["code"].as_str(), error["message"].as_str()) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                (Some(code), None) => code.to_owned(),
                _ => json.to_string(),
            }
        }
        Err(_) => String::from_utf8_lossy(&bytes).trim().to_owned(),
    };
    // An example, not the whole body.
    if detail.len() > 300 {
        detail = detail.chars().take(300).collect();
    }
    if let Some(retry) = headers.get(RETRY_AFTER).and_then(|v| v.to_str().ok()) {
        if !detail.is_empty() {
            detail.push(' ');
        }
        detail.push_str(&format!("(Retry-After: {retry})"));
    }
    detail
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn events_are_counted_with_latency_and_records() {
        let shared = Shared::new();
        let mut local = Local::default();
        let started = Instant::now();
        let now = unix_ns();
        let mut parser = SseParser::new(DATA_PREFIX_CAP);
        let text = format!(
            "event: snapshot\ndata: {{\"server_ts\":{a}}}\n\n\
             event: mbo\ndata: {{\"server_ts\":{b},\"count\":3,\"records\":[]}}\n\n\
             event: lagged\ndata: {{\"server_ts\":{b},\"skipped\":40}}\n\n\
             event: book\ndata: {{\"server_ts\":{future}}}\n\n\
             event: book\ndata: {{}}\n\n",
            a = now - 5_000_000,
            b = now - 1_000_000,
            future = now + 1_000_000_000,
        );
        parser.feed(text.as_bytes(), |e| {
            local.on_event(e, now, started, &shared)
        });
        assert!(local.connected);
        assert!(local.snapshot_ns.is_some());
        assert_eq!(local.frames(), 4);
        assert_eq!(local.records, 3);
        assert_eq!(local.skipped, 40);
        assert_eq!(local.bad_payloads, 1);
        assert_eq!(local.negative_latency, 1);
        local.flush(&shared);
        let hists = lock(&shared.latency);
        assert_eq!(hists[EventKind::Snapshot as usize].max(), Some(5_000_000));
        assert_eq!(hists[EventKind::Mbo as usize].max(), Some(1_000_000));
        assert_eq!(hists[EventKind::Book as usize].max(), Some(0));
    }
}
