#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! More `mbo serve` end to end: the MBO stream rebuilds the book, slow clients lag or are
//! conflated within bounded memory, configuration layering, the bare simulator, level queues,
//! OpenAPI against real JSON, metrics, and readiness.

#[path = "serve/harness.rs"]
mod harness;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use harness::{export_book, export_levels, http, levels, parse_block, serve, Event, Server, Sse};
use mbo_testkit::mbo_data;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SECOND: Duration = Duration::from_secs(1);
/// Records in `CLX5_mbo.dbn`.
const CLX5_RECORDS: f64 = 38_212.0;
/// Resident memory a server must stay under whatever its clients do.
const RSS_LIMIT_MB: f64 = 200.0;

fn clx5() -> String {
    mbo_data("CLX5_mbo.dbn").display().to_string()
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Position of `needle` in `hay` at or after `from`.
fn find_from(hay: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    let first = needle[0];
    let mut i = from;
    while i + needle.len() <= hay.len() {
        let p = i + hay[i..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        if &hay[p..p + needle.len()] == needle {
            return Some(p);
        }
        i = p + 1;
    }
    None
}

/// An SSE client on a bare TCP socket: it reads only when asked, so a test can stall it and
/// let the socket fill, as a slow browser on a bad link would.
struct RawSse {
    stream: TcpStream,
    /// Bytes read and not yet de-chunked, from `raw_pos`.
    raw: Vec<u8>,
    raw_pos: usize,
    /// De-chunked body not yet cut into events, from `body_pos`.
    body: Vec<u8>,
    body_pos: usize,
    /// `body` holds no "\n\n" before this offset.
    scanned: usize,
    ended: bool,
    status: u16,
    /// Body bytes received so far.
    received: usize,
}

impl RawSse {
    /// Sends `GET path` and reads the response head.
    async fn open(addr: &str, path: &str) -> RawSse {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut raw = Vec::with_capacity(1 << 16);
        let deadline = tokio::time::Instant::now() + 5 * SECOND;
        let head_end = loop {
            if let Some(p) = find_from(&raw, 0, b"\r\n\r\n") {
                break p;
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout_at(deadline, stream.read(&mut buf))
                .await
                .expect("response head within 5 s")
                .unwrap();
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap();
        assert!(
            head.contains("transfer-encoding: chunked"),
            "an event stream is chunked: {head}"
        );
        let mut s = RawSse {
            stream,
            raw,
            raw_pos: head_end + 4,
            body: Vec::with_capacity(1 << 16),
            body_pos: 0,
            scanned: 0,
            ended: false,
            status,
            received: 0,
        };
        s.dechunk();
        s
    }

    /// Moves every complete chunk from `raw` to `body`.
    fn dechunk(&mut self) {
        loop {
            let rest = &self.raw[self.raw_pos..];
            let Some(eol) = find_from(rest, 0, b"\r\n") else {
                break;
            };
            let line = std::str::from_utf8(&rest[..eol]).unwrap();
            let size = usize::from_str_radix(line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|e| panic!("bad chunk size line {line:?}: {e}"));
            if size == 0 {
                self.ended = true;
                break;
            }
            if rest.len() < eol + 2 + size + 2 {
                break;
            }
            self.body.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            assert_eq!(&rest[eol + 2 + size..eol + 4 + size], b"\r\n");
            self.received += size;
            self.raw_pos += eol + 4 + size;
        }
        if self.raw_pos * 2 > self.raw.len() {
            self.raw.drain(..self.raw_pos);
            self.raw_pos = 0;
        }
    }

    fn take_event(&mut self) -> Option<Event> {
        loop {
            let from = self.scanned.max(self.body_pos);
            let Some(end) = find_from(&self.body, from, b"\n\n") else {
                self.scanned = self.body.len().saturating_sub(1);
                return None;
            };
            let block = &self.body[self.body_pos..end];
            let ev = parse_block(block);
            self.body_pos = end + 2;
            self.scanned = self.body_pos;
            if self.body_pos * 2 > self.body.len() {
                self.body.drain(..self.body_pos);
                self.scanned -= self.body_pos;
                self.body_pos = 0;
            }
            if ev.is_some() {
                return ev;
            }
        }
    }

    /// The next event (comments skipped), or `None` at the end or after `timeout`.
    async fn next(&mut self, timeout: Duration) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut buf = vec![0u8; 1 << 16];
        loop {
            if let Some(ev) = self.take_event() {
                return Some(ev);
            }
            if self.ended {
                return None;
            }
            let n = tokio::time::timeout_at(deadline, self.stream.read(&mut buf))
                .await
                .ok()?
                .ok()?;
            if n == 0 {
                return None;
            }
            self.raw.extend_from_slice(&buf[..n]);
            self.dechunk();
        }
    }
}

/// Opens a stream on a bare socket and never reads it.
async fn stalled_client(addr: &str, path: &str) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

// ---------------------------------------------------------------------------------------------
// An L3 model of the book, rebuilt from the MBO stream.

/// `(instrument_id, publisher_id)`.
type BookId = (u64, u64);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Order {
    side: u8,
    price: i64,
    size: u64,
    ts_priority: u64,
}

/// Column positions of the record arrays of `mbo` events, from the snapshot's `fields`.
struct Cols {
    index: usize,
    ts_event: usize,
    instrument_id: usize,
    publisher_id: usize,
    action: usize,
    side: usize,
    price: usize,
    size: usize,
    order_id: usize,
    flags: usize,
}

impl Cols {
    fn new(fields: &Value) -> Cols {
        let names: Vec<&str> = fields
            .as_array()
            .expect("snapshot fields")
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        let at = |n: &str| {
            names
                .iter()
                .position(|f| *f == n)
                .unwrap_or_else(|| panic!("fields lack {n}: {names:?}"))
        };
        Cols {
            index: at("index"),
            ts_event: at("ts_event"),
            instrument_id: at("instrument_id"),
            publisher_id: at("publisher_id"),
            action: at("action"),
            side: at("side"),
            price: at("price"),
            size: at("size"),
            order_id: at("order_id"),
            flags: at("flags"),
        }
    }
}

/// One queue entry as the MBO snapshot lists it: `[order_id, size, ts_priority]`.
type QueueEntry = (u64, u64, u64);
/// A price level's queue: `(price, entries first in queue first)`.
type Queue = (i64, Vec<QueueEntry>);

/// Every resting order and every price level's queue, applying the rules of
/// `mbo-book` (A appends; C reduces, removes at zero; M loses priority on a price, side or
/// size increase and keeps it on a decrease; a modify of an unknown order is an add; R
/// clears; T, F, N change nothing).
#[derive(Debug, Default)]
struct L3Model {
    orders: HashMap<(BookId, u64), Order>,
    queues: BTreeMap<(BookId, u8, i64), Vec<u64>>,
}

impl L3Model {
    /// From an MBO `snapshot`, checking its levels on the way.
    fn from_snapshot(snap: &Value) -> L3Model {
        let mut m = L3Model::default();
        for book in snap["books"].as_array().unwrap() {
            let id = (
                book["instrument_id"].as_u64().unwrap(),
                book["publisher_id"].as_u64().unwrap(),
            );
            for (side, queue) in snapshot_queues(book) {
                for (price, entries) in queue {
                    for (oid, size, ts_priority) in entries {
                        m.link_back(
                            id,
                            oid,
                            Order {
                                side,
                                price,
                                size,
                                ts_priority,
                            },
                        );
                    }
                }
            }
        }
        m
    }

    fn link_back(&mut self, book: BookId, oid: u64, o: Order) {
        self.orders.insert((book, oid), o);
        self.queues
            .entry((book, o.side, o.price))
            .or_default()
            .push(oid);
    }

    fn unlink(&mut self, book: BookId, oid: u64) -> Option<Order> {
        let o = self.orders.remove(&(book, oid))?;
        let key = (book, o.side, o.price);
        let q = self.queues.get_mut(&key).unwrap();
        let pos = q.iter().position(|&x| x == oid).unwrap();
        q.remove(pos);
        if q.is_empty() {
            self.queues.remove(&key);
        }
        Some(o)
    }

    fn apply(&mut self, c: &Cols, r: &[Value]) {
        let book = (
            r[c.instrument_id].as_u64().unwrap(),
            r[c.publisher_id].as_u64().unwrap(),
        );
        let action = r[c.action].as_str().unwrap();
        let side = match r[c.side].as_str().unwrap() {
            "B" => Some(b'B'),
            "A" => Some(b'A'),
            _ => None,
        };
        let price = r[c.price].as_i64().unwrap();
        let size = r[c.size].as_u64().unwrap();
        let oid = r[c.order_id].as_u64().unwrap();
        let ts_event = r[c.ts_event].as_u64().unwrap();
        let flags = r[c.flags].as_u64().unwrap();
        let undef = price == i64::MAX;
        match action {
            "A" => {
                assert_eq!(
                    flags & (64 | 16),
                    0,
                    "F_TOB/F_MBP records are not modelled: {r:?}"
                );
                self.add(book, oid, side, price, size, ts_event);
            }
            "C" => {
                if let Some(o) = self.orders.get_mut(&(book, oid)) {
                    if size >= o.size {
                        self.unlink(book, oid);
                    } else {
                        o.size -= size;
                    }
                }
            }
            "M" => {
                let Some(old) = self.orders.get(&(book, oid)).copied() else {
                    self.add(book, oid, side, price, size, ts_event);
                    return;
                };
                let (Some(side), false) = (side, undef) else {
                    return;
                };
                if size == 0 {
                    self.unlink(book, oid);
                } else if price != old.price || side != old.side || size > old.size {
                    self.unlink(book, oid);
                    self.link_back(
                        book,
                        oid,
                        Order {
                            side,
                            price,
                            size,
                            ts_priority: ts_event,
                        },
                    );
                } else if size < old.size {
                    self.orders.get_mut(&(book, oid)).unwrap().size = size;
                }
            }
            "R" => {
                let ids: Vec<u64> = self
                    .orders
                    .keys()
                    .filter(|(b, _)| *b == book)
                    .map(|(_, o)| *o)
                    .collect();
                for id in ids {
                    self.unlink(book, id);
                }
            }
            _ => {}
        }
    }

    fn add(&mut self, book: BookId, oid: u64, side: Option<u8>, price: i64, size: u64, ts: u64) {
        let Some(side) = side else { return };
        if price == i64::MAX || size == 0 {
            return;
        }
        // A live id reused: the new add wins, at the back.
        self.unlink(book, oid);
        self.link_back(
            book,
            oid,
            Order {
                side,
                price,
                size,
                ts_priority: ts,
            },
        );
    }

    /// Queues of one side, best first.
    fn queues(&self, book: BookId, side: u8) -> Vec<Queue> {
        let mut out: Vec<Queue> = self
            .queues
            .iter()
            .filter(|((b, s, _), _)| *b == book && *s == side)
            .map(|((_, _, price), q)| {
                let entries = q
                    .iter()
                    .map(|oid| {
                        let o = self.orders[&(book, *oid)];
                        (*oid, o.size, o.ts_priority)
                    })
                    .collect();
                (*price, entries)
            })
            .collect();
        if side == b'B' {
            out.reverse();
        }
        out
    }

    /// Aggregated levels `[price, size, count]`, best first.
    fn levels(&self, book: BookId, side: u8) -> Vec<[i64; 3]> {
        self.queues(book, side)
            .into_iter()
            .map(|(price, q)| {
                let size: u64 = q.iter().map(|e| e.1).sum();
                [price, size as i64, q.len() as i64]
            })
            .collect()
    }

    fn order_count(&self, book: BookId) -> usize {
        self.orders.keys().filter(|(b, _)| *b == book).count()
    }
}

/// The queues of an MBO snapshot's book, per side, best first; checks that levels are
/// sorted and that each level's `size` and `count` agree with its orders.
fn snapshot_queues(book: &Value) -> Vec<(u8, Vec<Queue>)> {
    let mut out = Vec::new();
    for (name, side) in [("bids", b'B'), ("asks", b'A')] {
        let mut levels = Vec::new();
        let mut prev: Option<i64> = None;
        for level in book[name].as_array().unwrap() {
            let price = level["price"].as_i64().unwrap();
            if let Some(p) = prev {
                assert!(
                    if side == b'B' { price < p } else { price > p },
                    "{name} out of order: {price} after {p}"
                );
            }
            prev = Some(price);
            let entries: Vec<QueueEntry> = level["orders"]
                .as_array()
                .unwrap()
                .iter()
                .map(|o| {
                    let a = o.as_array().unwrap();
                    assert_eq!(a.len(), 3, "[order_id, size, ts_priority]: {o}");
                    (
                        a[0].as_u64().unwrap(),
                        a[1].as_u64().unwrap(),
                        a[2].as_u64().unwrap(),
                    )
                })
                .collect();
            assert!(!entries.is_empty(), "an empty level at {price}");
            assert_eq!(level["count"].as_u64().unwrap(), entries.len() as u64);
            assert_eq!(
                level["size"].as_u64().unwrap(),
                entries.iter().map(|e| e.1).sum::<u64>(),
                "{name} level {price}: size is the sum of its orders"
            );
            levels.push((price, entries));
        }
        out.push((side, levels));
    }
    out
}

/// Checks an `mbo` event continues the stream at `*next` (same epoch, contiguous indexes,
/// id `"{epoch}-{last index}"`) and applies its records to `model`.
fn apply_mbo_event(ev: &Event, epoch: u64, next: &mut u64, cols: &Cols, model: &mut L3Model) {
    assert_eq!(ev.event, "mbo", "only mbo events expected here: {ev:?}");
    let v = ev.json();
    assert_eq!(v["epoch"].as_u64(), Some(epoch));
    let first = v["first_index"].as_u64().unwrap();
    assert_eq!(
        first, *next,
        "records continue exactly after what the client has"
    );
    let records = v["records"].as_array().unwrap();
    assert!(!records.is_empty(), "an mbo event without records");
    assert_eq!(v["count"].as_u64().unwrap(), records.len() as u64);
    for (k, r) in records.iter().enumerate() {
        let r = r.as_array().unwrap();
        assert_eq!(r[cols.index].as_u64().unwrap(), first + k as u64);
        model.apply(cols, r);
    }
    *next = first + records.len() as u64;
    let id = format!("{epoch}-{}", *next - 1);
    assert_eq!(ev.id.as_deref(), Some(id.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mbo_stream_rebuilds_the_exact_book() {
    let file = clx5();
    let exported = tokio::task::spawn_blocking({
        let f = file.clone();
        move || export_book(&f, 1000)
    });
    let server = serve(&file, &["--pace", "rate", "--rate", "20000"]);
    server.ready().await;
    let mut sse = Sse::open(&server.url("/api/v1/stream/mbo?symbol=CLX5"), None).await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.headers["content-type"], "text/event-stream");
    let first = sse.next(5 * SECOND).await.expect("a first event");
    assert_eq!(first.event, "snapshot", "{first:?}");
    let snap = first.json();
    let epoch = snap["epoch"].as_u64().unwrap();
    let last = snap["last_index"]
        .as_u64()
        .expect("the server is ready, so records were applied");
    assert_eq!(
        first.id.as_deref(),
        Some(format!("{epoch}-{last}").as_str())
    );
    let books = snap["books"].as_array().unwrap();
    assert_eq!(books.len(), 1, "CLX5 is one book");
    assert_eq!(books[0]["symbol"], "CLX5");
    let book: BookId = (
        books[0]["instrument_id"].as_u64().unwrap(),
        books[0]["publisher_id"].as_u64().unwrap(),
    );
    let cols = Cols::new(&snap["fields"]);
    let mut model = L3Model::from_snapshot(&snap);
    let at_snapshot = model.order_count(book);
    assert!(at_snapshot > 0, "the snapshot holds orders");

    // About a second of the live stream.
    let mut next = last + 1;
    let until = tokio::time::Instant::now() + SECOND;
    let mut events = 0;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(ev) = sse.next(left).await else {
            break;
        };
        apply_mbo_event(&ev, epoch, &mut next, &cols, &mut model);
        events += 1;
    }
    assert!(
        next - last > 2_000,
        "only {} records in a second at 20000/s",
        next - last - 1
    );

    // Pause, and take what is still in flight.
    let (code, st) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(code, 200, "{st}");
    assert!(
        st["state"] == "paused" || st["state"] == "ended",
        "state after pause: {st}"
    );
    while let Some(ev) = sse.next(Duration::from_millis(500)).await {
        apply_mbo_event(&ev, epoch, &mut next, &cols, &mut model);
        events += 1;
    }
    eprintln!(
        "mbo stream: {events} events, {} records after the snapshot at {last}",
        next - last - 1
    );

    // The REST book is the rebuilt book, at the last streamed record.
    let (code, rest) = server.get("/api/v1/book/CLX5?depth=all").await;
    assert_eq!(code, 200);
    let i = rest["event_index"].as_u64().unwrap();
    assert_eq!(
        i,
        next - 1,
        "the last streamed record closes the event of the REST book"
    );
    assert_eq!(model.levels(book, b'B'), levels(&rest, "bids"), "bids");
    assert_eq!(model.levels(book, b'A'), levels(&rest, "asks"), "asks");
    assert_eq!(
        rest["orders"].as_u64().unwrap(),
        model.order_count(book) as u64
    );
    assert_eq!(
        rest["bid_levels"].as_u64().unwrap(),
        model.levels(book, b'B').len() as u64
    );
    assert_eq!(
        rest["ask_levels"].as_u64().unwrap(),
        model.levels(book, b'A').len() as u64
    );

    // And `mbo export-book` of the file at that index.
    let exported = exported.await.unwrap();
    let line = exported
        .get(&i)
        .unwrap_or_else(|| panic!("{i} is not an event boundary of export-book"));
    let bids = model.levels(book, b'B');
    let asks = model.levels(book, b'A');
    assert!(
        bids.len() < 1000 && asks.len() < 1000,
        "export depth too small"
    );
    assert_eq!(
        bids,
        export_levels(line, "bids"),
        "bids vs export-book at {i}"
    );
    assert_eq!(
        asks,
        export_levels(line, "asks"),
        "asks vs export-book at {i}"
    );

    // A fresh MBO snapshot is the rebuilt book order by order, in queue order.
    let mut again = Sse::open(&server.url("/api/v1/stream/mbo?symbol=CLX5"), None).await;
    let snap2 = again.next(5 * SECOND).await.expect("snapshot");
    assert_eq!(snap2.event, "snapshot");
    let snap2 = snap2.json();
    assert_eq!(snap2["last_index"].as_u64(), Some(next - 1));
    let queues = snapshot_queues(&snap2["books"][0]);
    for (side, q) in queues {
        assert_eq!(
            model.queues(book, side),
            q,
            "{} queues of the rebuilt book vs a new snapshot",
            side as char
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_mbo_client_is_told_it_lagged_and_resnapshotted() {
    let file = clx5();
    let server = serve(&file, &["--pace", "max", "--loop"]);
    server.ready().await;
    let mut client = RawSse::open(&addr(&server), "/api/v1/stream/mbo?symbol=CLX5").await;
    assert_eq!(client.status, 200);
    let first = client.next(5 * SECOND).await.expect("snapshot");
    assert_eq!(first.event, "snapshot");

    // Stall: the socket fills, the ring (512 batches) moves on without the client.
    let mut max_rss = server.rss_mb();
    let stall_until = Instant::now() + 2 * SECOND;
    let mut ready_checked = false;
    while Instant::now() < stall_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        max_rss = max_rss.max(server.rss_mb());
        if !ready_checked && stall_until.saturating_duration_since(Instant::now()) < SECOND {
            ready_checked = true;
            let t = Instant::now();
            let r = http()
                .get(server.url("/health/ready"))
                .timeout(SECOND)
                .send()
                .await
                .expect("/health/ready answers while a client is stalled");
            assert_eq!(r.status(), 200);
            assert!(t.elapsed() < SECOND, "{:?}", t.elapsed());
        }
    }

    // Reading again: somewhere after what the socket buffered, `lagged` then `snapshot`.
    let deadline = Instant::now() + 20 * SECOND;
    let mut seen = 0;
    let lagged = loop {
        assert!(
            Instant::now() < deadline,
            "no lagged event after {seen} events, {} MB",
            client.received >> 20
        );
        let ev = client
            .next(5 * SECOND)
            .await
            .expect("the stream goes on after a stall");
        seen += 1;
        if seen % 64 == 0 {
            max_rss = max_rss.max(server.rss_mb());
        }
        if ev.event == "lagged" {
            break ev;
        }
    };
    let v = lagged.json();
    assert_eq!(v["unit"], "records", "{v}");
    let after = client
        .next(5 * SECOND)
        .await
        .expect("snapshot after lagged");
    assert_eq!(after.event, "snapshot", "lagged is followed by a snapshot");
    assert_eq!(after.id, lagged.id);
    let snap = after.json();
    assert!(snap["books"].is_array() && snap["fields"].is_array());
    // The loop restarts the file every few ms: a snapshot taken right after a restart, before
    // any record of the new epoch, has no last index, and nothing of that epoch was skipped.
    if snap["last_index"].is_null() {
        eprintln!("lagged into an empty epoch: {v}");
    } else {
        assert!(
            v["skipped"].as_u64().unwrap() > 0,
            "a lagged client skipped records: {v}"
        );
    }
    max_rss = max_rss.max(server.rss_mb());
    eprintln!(
        "lagged after {seen} events, {} MB read; server RSS at most {max_rss:.0} MB",
        client.received >> 20
    );
    assert!(max_rss < RSS_LIMIT_MB, "server RSS {max_rss:.0} MB");
    let n = server
        .metric("mbo_sse_lagged_total{stream=\"mbo\"}")
        .await
        .unwrap_or(0.0);
    assert!(n > 0.0, "mbo_sse_lagged_total{{stream=\"mbo\"}} = {n}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_book_readers_are_conflated_and_memory_is_bounded() {
    let file = clx5();
    // CLX5 loops every ~0.8 s at this rate: books move, and an epoch change or two happen.
    let server = serve(&file, &["--pace", "rate", "--rate", "50000", "--loop"]);
    server.ready().await;
    let mut sse = Sse::open(
        &server.url("/api/v1/stream?symbol=CLX5&interval_ms=200"),
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    let window = 2 * SECOND;
    let until = tokio::time::Instant::now() + window;
    let (mut books, mut snapshots, mut lagged) = (0, 0, 0);
    let mut position: Option<(u64, u64)> = None;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(ev) = sse.next(left).await else {
            break;
        };
        if ev.event == "lagged" {
            lagged += 1;
        }
        if ev.event != "book" && ev.event != "snapshot" {
            continue;
        }
        let b = ev.json();
        let epoch = b["epoch"].as_u64().unwrap();
        let Some(i) = b["event_index"].as_u64() else {
            continue;
        };
        if ev.event == "book" {
            books += 1;
            if let Some((e, p)) = position {
                assert!(epoch >= e, "epochs go forward");
                if e == epoch {
                    assert!(i > p, "book at {epoch}-{i} after {e}-{p}");
                }
            }
        } else {
            snapshots += 1;
        }
        position = Some((epoch, i));
    }
    eprintln!("interval 200 ms over 2 s: {books} book, {snapshots} snapshot events");
    assert_eq!(lagged, 0, "a client that reads promptly never lags");
    let most = (window.as_millis() / 200) as usize + 3;
    assert!(
        books <= most,
        "{books} book events in 2 s at interval_ms=200 (at most {most})"
    );
    assert!(books >= 3, "only {books} book events: the feed is moving");
    let conflated = server
        .metric("mbo_sse_conflated_total{stream=\"book\"}")
        .await
        .unwrap_or(0.0);
    assert!(conflated > 0.0, "mbo_sse_conflated_total = {conflated}");
    drop(sse);

    // Fifty clients that never read, at the shortest interval.
    let a = addr(&server);
    let mut stalled = Vec::new();
    for _ in 0..50 {
        stalled.push(stalled_client(&a, "/api/v1/stream?symbol=CLX5&interval_ms=10").await);
    }
    let mut max_rss = server.rss_mb();
    let until = Instant::now() + 3 * SECOND;
    let mut normal_checked = false;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        max_rss = max_rss.max(server.rss_mb());
        if !normal_checked && until.saturating_duration_since(Instant::now()) < 2 * SECOND {
            normal_checked = true;
            let t = Instant::now();
            let mut normal = Sse::open(
                &server.url("/api/v1/stream?symbol=CLX5&interval_ms=50"),
                None,
            )
            .await;
            assert_eq!(normal.status, 200);
            normal
                .next_named("snapshot", SECOND)
                .await
                .expect("a snapshot within 1 s while 50 clients are stalled");
            normal
                .next_named("book", SECOND)
                .await
                .expect("a book event within 1 s of the snapshot");
            eprintln!("normal client: snapshot and book in {:?}", t.elapsed());
        }
    }
    let clients = server
        .metric("mbo_sse_clients{stream=\"book\"}")
        .await
        .unwrap_or(0.0);
    assert!(clients >= 50.0, "{clients} book clients counted");
    eprintln!("50 stalled book clients: server RSS at most {max_rss:.0} MB");
    assert!(max_rss < RSS_LIMIT_MB, "server RSS {max_rss:.0} MB");
    drop(stalled);
}

/// A client that reads everything promptly must never be told it lagged, whatever its
/// `interval_ms` (up to 60 000): `lagged` means the client fell behind the ring.
///
/// (A regression test: a client once read its ring only when it flushed, so with a long
/// interval the ring wrapped while it merely waited.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_book_reader_with_a_long_interval_is_never_lagged() {
    let file = clx5();
    let server = serve(&file, &["--pace", "max", "--loop"]);
    server.ready().await;
    let mut sse = Sse::open(
        &server.url("/api/v1/stream?symbol=CLX5&interval_ms=5000"),
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    let until = tokio::time::Instant::now() + Duration::from_millis(5600);
    let mut names: BTreeMap<String, usize> = BTreeMap::new();
    let mut first_lag = None;
    loop {
        let left = until.saturating_duration_since(tokio::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let Some(ev) = sse.next(left).await else {
            break;
        };
        if ev.event == "lagged" && first_lag.is_none() {
            first_lag = Some(ev.data.clone());
        }
        *names.entry(ev.event).or_default() += 1;
    }
    eprintln!("interval_ms=5000 at max pace for 5.6 s: {names:?}");
    assert!(
        names.get("snapshot").copied().unwrap_or(0) >= 1,
        "the stream started: {names:?}"
    );
    assert_eq!(
        first_lag, None,
        "a client reading promptly was told it lagged ({names:?})"
    );
    let n = server
        .metric("mbo_sse_lagged_total{stream=\"book\"}")
        .await
        .unwrap_or(0.0);
    assert_eq!(n, 0.0, "mbo_sse_lagged_total{{stream=\"book\"}}");
}

/// The engine documents that at `max` pace its cycles "bound the publication rate to about a
/// thousand a second", and the update ring is sized on it (`hub::UPDATE_RING`). Publications
/// are counted by `mbo_publish_latency_seconds` (one observation per published cycle that
/// held records).
///
/// (A regression test: a cycle once ended as soon as the feed channel was empty, so every
/// 1024-record batch was its own cycle, 6,000 to 13,000 a second on a 2-core machine.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_pace_publishes_about_a_thousand_cycles_a_second() {
    let file = clx5();
    let server = serve(&file, &["--pace", "max", "--loop"]);
    server.ready().await;
    let count = || async {
        server
            .metric("mbo_publish_latency_seconds_count")
            .await
            .unwrap_or(0.0)
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (c0, t0) = (count().await, Instant::now());
    tokio::time::sleep(SECOND).await;
    let (c1, t1) = (count().await, Instant::now());
    let per_second = (c1 - c0) / (t1 - t0).as_secs_f64();
    let (_, st) = server.get("/api/v1/replay").await;
    eprintln!(
        "max pace: {per_second:.0} publications/s, {} records released",
        st["released"]
    );
    assert!(c1 > c0, "the engine publishes");
    assert!(
        per_second <= 2_500.0,
        "{per_second:.0} publications a second at max pace (documented: about a thousand)"
    );
}

/// A temporary directory holding `.env` with `contents`.
fn dotenv_dir(contents: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), contents).unwrap();
    dir
}

/// Opens `n` streams that must succeed, then one that must get 503.
async fn assert_stream_cap(server: &Server, n: usize) -> Vec<Sse> {
    let mut open = Vec::new();
    for _ in 0..n {
        let mut s = Sse::open(&server.url("/api/v1/stream?symbol=CLX5"), None).await;
        assert_eq!(s.status, 200);
        assert!(s.next_named("snapshot", 5 * SECOND).await.is_some());
        open.push(s);
    }
    let r = http()
        .get(server.url("/api/v1/stream?symbol=CLX5"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "stream {} over a cap of {n}", n + 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "too_many_streams");
    open
}

async fn control_status(server: &Server, token: Option<&str>) -> u16 {
    server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, token)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_layer_defaults_dotenv_env_flags() {
    let file = clx5();
    let dotenv = format!(
        "# written by the test\nMBO_DBN_FILE={file}\nMBO_CONTROL_TOKEN=from-dotenv\nMBO_MAX_STREAMS=1\nMBO_PACE=rate\nMBO_RATE=2000\n"
    );
    let bare = ["serve", "--bind", "127.0.0.1:0"];

    // (a) .env alone: it chooses the file, the token, the cap and the pace.
    let server = Server::start_in(dotenv_dir(&dotenv), &bare, &[]);
    server.ready().await;
    let (_, list) = server.get("/api/v1/instruments").await;
    let symbols: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["symbol"].as_str().unwrap())
        .collect();
    assert_eq!(symbols, ["CLX5"], "MBO_DBN_FILE from .env");
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(st["description"], "CLX5_mbo.dbn");
    assert_eq!(st["source"], "file");
    assert_eq!(st["control_auth"], "token");
    assert_eq!(
        (st["pace"].as_str(), st["rate"].as_u64()),
        (Some("rate"), Some(2000))
    );
    assert_eq!(control_status(&server, None).await, 401);
    assert_eq!(control_status(&server, Some("from-env")).await, 403);
    assert_eq!(control_status(&server, Some("from-dotenv")).await, 200);
    drop(assert_stream_cap(&server, 1).await);
    drop(server);

    // (b) MBO_* in the environment beat .env, variable by variable.
    let server = Server::start_in(
        dotenv_dir(&dotenv),
        &bare,
        &[("MBO_CONTROL_TOKEN", "from-env"), ("MBO_RATE", "3000")],
    );
    server.ready().await;
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(
        st["rate"].as_u64(),
        Some(3000),
        "MBO_RATE from the environment"
    );
    assert_eq!(
        st["description"], "CLX5_mbo.dbn",
        "MBO_DBN_FILE still from .env"
    );
    assert_eq!(control_status(&server, Some("from-dotenv")).await, 403);
    assert_eq!(control_status(&server, Some("from-env")).await, 200);
    drop(assert_stream_cap(&server, 1).await);
    drop(server);

    // (c) Flags beat both.
    let server = Server::start_in(
        dotenv_dir(&dotenv),
        &[
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--control-token",
            "from-flag",
            "--rate",
            "4000",
            "--max-streams",
            "2",
        ],
        &[("MBO_CONTROL_TOKEN", "from-env"), ("MBO_RATE", "3000")],
    );
    server.ready().await;
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(st["rate"].as_u64(), Some(4000), "--rate");
    assert_eq!(control_status(&server, Some("from-dotenv")).await, 403);
    assert_eq!(control_status(&server, Some("from-env")).await, 403);
    assert_eq!(control_status(&server, Some("from-flag")).await, 200);
    drop(assert_stream_cap(&server, 2).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_mbo_serves_the_simulator() {
    let started = Instant::now();
    let server = Server::start(&["--bind", "127.0.0.1:0"], &[]);
    let client = http();
    loop {
        if let Ok(r) = client.get(server.url("/health/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            started.elapsed() < 2 * SECOND,
            "the simulator is not ready after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("bare mbo ready in {:?}", started.elapsed());
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(st["source"], "simulator", "{st}");
    assert_eq!(st["dataset"], "SIM");
    // Books appear as their first events arrive.
    let mut list = Value::Null;
    for _ in 0..300 {
        list = server.get("/api/v1/instruments").await.1;
        if list.as_array().unwrap().len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3, "three simulated instruments: {list:?}");
    for i in list {
        assert_eq!(i["dataset"], "SIM", "{i}");
    }
    let symbol = list[0]["symbol"].as_str().unwrap();
    let mut sse = Sse::open(
        &server.url(&format!("/api/v1/stream?symbol={symbol}&interval_ms=50")),
        None,
    )
    .await;
    assert_eq!(sse.status, 200);
    let snap = sse
        .next_named("snapshot", 5 * SECOND)
        .await
        .expect("snapshot");
    assert_eq!(snap.json()["symbol"], symbol);
    let deadline = tokio::time::Instant::now() + 5 * SECOND;
    let moved = loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let ev = sse
            .next(left)
            .await
            .expect("a book or trade within 5 s of the snapshot");
        if ev.event == "book" || ev.event == "trade" {
            break ev;
        }
    };
    assert_eq!(moved.json()["symbol"], symbol);
    let r = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = r.text().await.unwrap();
    assert!(html.to_ascii_lowercase().contains("<html"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn level_queue_agrees_with_the_book_and_the_mbo_snapshot() {
    let file = clx5();
    let server = serve(&file, &["--pace", "rate", "--rate", "20000"]);
    server.ready().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (code, st) = server
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!((code, st["state"].as_str()), (200, Some("paused")), "{st}");
    // Let the engine apply what was already released.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (code, book) = server.get("/api/v1/book/CLX5?depth=5").await;
    assert_eq!(code, 200);
    let index = book["event_index"].as_u64().unwrap();
    let mut mbo = Sse::open(&server.url("/api/v1/stream/mbo?symbol=CLX5"), None).await;
    let snap = mbo.next(5 * SECOND).await.expect("mbo snapshot");
    assert_eq!(snap.event, "snapshot");
    let snap = snap.json();
    assert_eq!(
        snap["last_index"].as_u64(),
        Some(index),
        "paused: same position"
    );
    let l3 = snapshot_queues(&snap["books"][0]);

    for (side, best, l3_side) in [("B", "best_bid", &l3[0].1), ("A", "best_ask", &l3[1].1)] {
        let level = &book[best];
        let price = level["price"].as_i64().expect(best);
        let decimal = level["price_decimal"].as_str().unwrap().to_owned();
        assert!(decimal.contains('.'), "CL prices have decimals: {decimal}");
        for q in [price.to_string(), decimal] {
            let path = format!("/api/v1/book/CLX5/level?side={side}&price={q}");
            let (code, v) = server.get(&path).await;
            assert_eq!(code, 200, "{path}: {v}");
            assert_eq!(v["symbol"], "CLX5");
            assert_eq!(v["side"], side);
            assert_eq!(v["price"].as_i64(), Some(price), "{path}");
            assert_eq!(v["price_decimal"], level["price_decimal"]);
            assert_eq!(v["event_index"].as_u64(), Some(index), "{path}");
            assert_eq!(v["epoch"], book["epoch"]);
            assert_eq!(v["size"], level["size"], "{path}");
            assert_eq!(v["order_count"], level["orders"], "{path}");
            let orders = v["orders"].as_array().unwrap();
            assert_eq!(orders.len() as u64, level["orders"].as_u64().unwrap());
            let mut sum = 0;
            let mut ids = BTreeSet::new();
            for (k, o) in orders.iter().enumerate() {
                assert_eq!(o["position"].as_u64(), Some(k as u64), "{o}");
                assert!(o["size"].as_u64().unwrap() > 0, "{o}");
                assert!(o["ts_priority"].as_u64().unwrap() > 0, "{o}");
                assert!(ids.insert(o["order_id"].as_u64().unwrap()), "{o}");
                sum += o["size"].as_u64().unwrap();
            }
            assert_eq!(Some(sum), level["size"].as_u64(), "{path}: sizes sum");
            // The same queue as the MBO snapshot's best level.
            let (l3_price, l3_queue) = &l3_side[0];
            assert_eq!(*l3_price, price);
            let queue: Vec<QueueEntry> = orders
                .iter()
                .map(|o| {
                    (
                        o["order_id"].as_u64().unwrap(),
                        o["size"].as_u64().unwrap(),
                        o["ts_priority"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(&queue, l3_queue, "{path} vs the MBO snapshot");
        }
    }
    // A price where nothing rests: an empty queue, not an error.
    for (side, price) in [("B", "1"), ("A", "1000.5"), ("B", "0.000000001")] {
        let path = format!("/api/v1/book/CLX5/level?side={side}&price={price}");
        let (code, v) = server.get(&path).await;
        assert_eq!(code, 200, "{path}: {v}");
        assert_eq!(v["orders"].as_array().map(Vec::len), Some(0), "{path}: {v}");
        assert_eq!(v["size"], 0, "{path}");
        assert_eq!(v["order_count"], 0, "{path}");
        assert_eq!(v["event_index"].as_u64(), Some(index), "{path}");
    }
}

/// Property names of a component schema of the OpenAPI document.
fn schema_props(doc: &Value, name: &str) -> BTreeSet<String> {
    doc["components"]["schemas"][name]["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("schema {name} has no properties"))
        .keys()
        .cloned()
        .collect()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .cloned()
        .collect()
}

/// URLs a page would load: `src=`, `href=` of `<link>`, CSS `url(...)` and `@import`.
fn loaded_urls(html: &str) -> Vec<String> {
    let lower = html.to_ascii_lowercase();
    let mut out = Vec::new();
    let value_after = |at: usize| -> String {
        let rest = lower[at..].trim_start();
        let rest = rest.trim_start_matches(['"', '\'']);
        rest.chars()
            .take_while(|c| !matches!(c, '"' | '\'' | ')' | ' ' | '>' | ';'))
            .collect()
    };
    for pat in ["src=", "url(", "@import"] {
        let mut from = 0;
        while let Some(p) = lower[from..].find(pat) {
            let at = from + p + pat.len();
            let mut v = value_after(at);
            if pat == "@import" && v.starts_with("url(") {
                v = value_after(at + lower[at..].find("url(").unwrap() + 4);
            }
            out.push(v);
            from = at;
        }
    }
    let mut from = 0;
    while let Some(p) = lower[from..].find("<link") {
        let start = from + p;
        let end = start + lower[start..].find('>').unwrap_or(lower.len() - start);
        let tag = &lower[start..end];
        if let Some(h) = tag.find("href=") {
            out.push(value_after(start + h + 5));
        }
        from = end;
    }
    out
}

fn assert_offline(name: &str, html: &str) {
    for url in loaded_urls(html) {
        assert!(
            !url.starts_with("http:") && !url.starts_with("https:") && !url.starts_with("//"),
            "{name} loads {url} from the network: it must work offline"
        );
    }
    // And nothing absolute to fetch at all: no CDN, no web font.
    for needle in ["http://", "https://", "fonts.googleapis", "cdn."] {
        assert!(!html.contains(needle), "{name} contains {needle}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_matches_real_json_and_docs_work_offline() {
    let file = clx5();
    let server = serve(&file, &["--pace", "max"]);
    server.ready().await;
    let (code, doc) = server.get("/api/openapi.json").await;
    assert_eq!(code, 200);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/book/{symbol}",
        "/api/v1/book/{symbol}/level",
        "/api/v1/instruments",
        "/api/v1/stream",
        "/api/v1/stream/mbo",
        "/api/v1/replay",
        "/metrics",
        "/health/ready",
        "/health/live",
    ] {
        assert!(paths.contains_key(p), "openapi lacks {p}");
    }
    assert!(paths["/api/v1/replay"]["post"].is_object());
    assert!(paths["/api/v1/replay"]["get"].is_object());

    // The documented schemas are exactly the JSON the server writes.
    let (_, book) = server.get("/api/v1/book/CLX5").await;
    assert_eq!(schema_props(&doc, "BookDoc"), keys(&book), "BookDoc");
    assert_eq!(
        schema_props(&doc, "LevelDoc"),
        keys(&book["bids"][0]),
        "LevelDoc"
    );
    let (_, list) = server.get("/api/v1/instruments").await;
    assert_eq!(
        schema_props(&doc, "Instrument"),
        keys(&list[0]),
        "Instrument"
    );
    let (_, st) = server.get("/api/v1/replay").await;
    assert_eq!(schema_props(&doc, "StatusJson"), keys(&st), "StatusJson");
    let (_, ready) = server.get("/health/ready").await;
    assert_eq!(schema_props(&doc, "Ready"), keys(&ready), "Ready");
    let price = book["best_bid"]["price"].as_i64().unwrap();
    let (_, level) = server
        .get(&format!("/api/v1/book/CLX5/level?side=B&price={price}"))
        .await;
    assert_eq!(
        schema_props(&doc, "LevelQueueJson"),
        keys(&level),
        "LevelQueueJson"
    );
    assert_eq!(
        schema_props(&doc, "QueueOrder"),
        keys(&level["orders"][0]),
        "QueueOrder"
    );

    // Both pages are self-contained.
    for path in ["/api/docs", "/"] {
        let r = http().get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        let html = r.text().await.unwrap();
        assert!(html.contains("<script"), "{path} renders with a script");
        assert_offline(path, &html);
    }
    assert!(loaded_urls(r#"<script src="https://cdn.x/y.js"></script>"#)
        .iter()
        .any(|u| u.starts_with("https:")));
    assert!(
        loaded_urls(r#"<style>@import url('//fonts.x/css');</style>"#)
            .iter()
            .any(|u| u.starts_with("//"))
    );
}

/// One sample of the Prometheus text format.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

fn parse_metrics(text: &str) -> Vec<Sample> {
    let mut out = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).unwrap();
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(r) = rest.strip_prefix('{') {
            let mut chars = r.char_indices().peekable();
            let end;
            loop {
                // key
                let mut key = String::new();
                for (_, c) in chars.by_ref() {
                    if c == '=' {
                        break;
                    }
                    key.push(c);
                }
                assert_eq!(chars.next().map(|c| c.1), Some('"'), "{line}");
                let mut value = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|c| c.1) {
                            Some('n') => value.push('\n'),
                            Some(o) => value.push(o),
                            None => break,
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
                match chars.next() {
                    Some((_, ',')) => {
                        if chars.peek().map(|c| c.1) == Some('}') {
                            end = chars.next().unwrap().0 + 1;
                            break;
                        }
                    }
                    Some((i, '}')) => {
                        end = i + 1;
                        break;
                    }
                    other => panic!("bad labels in {line}: {other:?}"),
                }
            }
            rest = &r[end..];
        }
        let value = rest.trim().split(' ').next().unwrap();
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v
                .parse()
                .unwrap_or_else(|e| panic!("{line}: value {v:?}: {e}")),
        };
        out.push(Sample {
            name,
            labels,
            value,
        });
    }
    out
}

/// Samples of `name` whose labels include every pair of `with`.
fn samples<'a>(all: &'a [Sample], name: &str, with: &[(&str, &str)]) -> Vec<&'a Sample> {
    all.iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

fn one(all: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    let found = samples(all, name, with);
    assert_eq!(found.len(), 1, "{name} {with:?}: {found:?}");
    found[0].value
}

async fn scrape(server: &Server) -> (String, Vec<Sample>) {
    let r = http().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = r.text().await.unwrap();
    let parsed = parse_metrics(&text);
    (text, parsed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_every_record_and_label_routes_by_template() {
    let file = clx5();
    let events_in_file = tokio::task::spawn_blocking({
        let f = file.clone();
        move || export_book(&f, 1).len()
    });
    let server = serve(&file, &["--pace", "max"]);
    server.ready().await;
    let t = Instant::now();
    loop {
        let (_, st) = server.get("/api/v1/replay").await;
        if st["state"] == "ended" {
            break;
        }
        assert!(
            t.elapsed() < 10 * SECOND,
            "CLX5 at max pace not ended: {st}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for path in [
        "/api/v1/book/CLX5",
        "/api/v1/book/CLX5?depth=3",
        "/api/v1/book/CLX5?depth=all",
    ] {
        assert_eq!(server.get(path).await.0, 200, "{path}");
    }
    assert_eq!(server.get("/api/v1/book/NOPE").await.0, 404);
    let (_, book) = server.get("/api/v1/book/CLX5").await;

    // The engine publishes the end after the replay says so: wait for the last counts.
    let mut text;
    let mut m;
    let t = Instant::now();
    loop {
        (text, m) = scrape(&server).await;
        let total: f64 = samples(&m, "mbo_records_total", &[])
            .iter()
            .map(|s| s.value)
            .sum();
        if total >= CLX5_RECORDS || t.elapsed() > 5 * SECOND {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let by_action = samples(&m, "mbo_records_total", &[]);
    let total: f64 = by_action.iter().map(|s| s.value).sum();
    assert_eq!(
        total, CLX5_RECORDS,
        "records by action sum to the file's records: {by_action:?}"
    );
    assert!(one(&m, "mbo_records_total", &[("action", "add")]) > 0.0);
    for s in &by_action {
        let a = s.labels["action"].as_str();
        assert!(
            ["add", "cancel", "modify", "clear", "trade", "fill", "none", "other"].contains(&a),
            "{a}"
        );
    }
    let events = one(&m, "mbo_events_total", &[]);
    assert!(events > 0.0);
    assert_eq!(
        events,
        events_in_file.await.unwrap() as f64,
        "one event per F_LAST record (export-book line)"
    );
    for name in [
        "mbo_apply_batch_seconds_bucket",
        "mbo_publish_latency_seconds_bucket",
        "mbo_http_request_duration_seconds_bucket",
    ] {
        assert!(!samples(&m, name, &[]).is_empty(), "{name} missing");
    }
    assert!(one(&m, "mbo_apply_batch_seconds_count", &[]) > 0.0);
    assert!(one(&m, "mbo_publish_latency_seconds_count", &[]) > 0.0);
    assert_eq!(
        one(&m, "mbo_book_orders", &[("symbol", "CLX5")]),
        book["orders"].as_f64().unwrap(),
        "mbo_book_orders is the book's order count"
    );
    assert_eq!(
        one(&m, "mbo_book_crossed", &[("symbol", "CLX5")]),
        f64::from(u8::from(book["crossed"].as_bool().unwrap()))
    );
    assert_eq!(
        one(
            &m,
            "mbo_book_levels",
            &[("symbol", "CLX5"), ("side", "bid")]
        ),
        book["bid_levels"].as_f64().unwrap()
    );
    let progress = one(&m, "mbo_replay_progress", &[]);
    assert!((0.999..=1.0).contains(&progress), "progress {progress}");
    assert_eq!(one(&m, "mbo_ready", &[]), 1.0);
    let book_200 = one(
        &m,
        "mbo_http_requests_total",
        &[
            ("method", "GET"),
            ("route", "/api/v1/book/{symbol}"),
            ("status", "200"),
        ],
    );
    assert!(book_200 >= 4.0, "{book_200} book requests counted");
    assert_eq!(
        one(
            &m,
            "mbo_http_requests_total",
            &[
                ("method", "GET"),
                ("route", "/api/v1/book/{symbol}"),
                ("status", "404"),
            ],
        ),
        1.0
    );
    for s in &m {
        for v in s.labels.values() {
            assert!(
                !v.contains("/api/v1/book/CLX5") && !v.contains("NOPE"),
                "a raw path in a label: {s:?}"
            );
        }
    }
    assert!(one(&m, "mbo_process_resident_memory_bytes", &[]) > 1e6);
    assert!(text.contains("# TYPE mbo_records_total counter"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_fast_and_not_ready_before_the_first_event() {
    let file = clx5();
    let started = Instant::now();
    let server = serve(&file, &["--pace", "max"]);
    let client = http();
    loop {
        if let Ok(r) = client.get(server.url("/health/ready")).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(started.elapsed() < 2 * SECOND, "not ready after 2 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    eprintln!("mbo serve --dbn CLX5 --pace max: ready {took:?} after spawn (target 300 ms)");
    assert!(took < 2 * SECOND);
    drop(server);

    // Paused at start: nothing applied, so not ready, with a JSON reason.
    let server = serve(&file, &["--pace", "max", "--start-paused"]);
    for _ in 0..5 {
        let r = client
            .get(server.url("/health/ready"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503);
        assert_eq!(r.headers()["retry-after"], "1");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "starting", "{v}");
        assert!(v["error"]["message"].as_str().unwrap().len() > 5);
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    let (code, live) = server.get("/health/live").await;
    assert_eq!((code, live["status"].as_str()), (200, Some("live")));
    let (code, _) = server
        .post("/api/v1/replay", r#"{"action":"play"}"#, None)
        .await;
    assert_eq!(code, 200);
    server.ready().await;
}
