//! Scale-out end to end: a real `nats-server -js` on a free loopback port with a temporary
//! store, one `mbo serve --role ingest` on CLX5_mbo.dbn and two `--role gateway`, all real
//! processes, checked over HTTP and SSE only:
//! * paused through a gateway, `depth=all` books (levels and `event_index`), level queues and
//!   instruments are identical on the ingest and both gateways; history and replay commands
//!   are answered by the ingest through either gateway;
//! * the raw MBO streams of both gateways carry identical records under identical ids;
//! * a client of a gateway killed with SIGKILL moves to the other with `Last-Event-ID` and
//!   continues with no duplicate and no hole;
//! * NATS restarted mid-replay: everything recovers and the books match again; an ingest
//!   restarted: gateways say `stale` until it is back, then follow the new one;
//! * `--role all` runs with no NATS at all.
//!
//! `nats-server` comes from Debian's package (`make test` installs it); without it these
//! tests fail saying so.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "serve/harness.rs"]
mod harness;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use harness::{http, venue_sim, Server, Sse};
use mbo_testkit::mbo_data;
use serde_json::Value;

/// A `nats-server -js` on loopback; killed on drop.
struct Nats {
    child: Option<Child>,
    port: u16,
    store: tempfile::TempDir,
}

impl Nats {
    fn start() -> Nats {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut nats = Nats {
            child: None,
            port,
            store: tempfile::tempdir().unwrap(),
        };
        nats.spawn();
        nats
    }

    fn spawn(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.store.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run nats-server ({e}): the scale-out tests need it \
                     (Debian: apt-get install nats-server; `make test` installs it)"
                )
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server did not listen within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        self.kill();
    }
}

fn clx5() -> String {
    mbo_data("CLX5_mbo.dbn").to_str().unwrap().to_owned()
}

fn ingest(nats: &Nats, extra: &[&str]) -> Server {
    let file = clx5();
    let url = nats.url();
    let mut args = vec![
        "serve",
        "--role",
        "ingest",
        "--nats",
        &url,
        "--bind",
        "127.0.0.1:0",
        "--dbn",
        &file,
    ];
    args.extend_from_slice(extra);
    Server::start(&args, &[])
}

fn gateway(nats: &Nats) -> Server {
    let url = nats.url();
    Server::start(
        &[
            "serve",
            "--role",
            "gateway",
            "--nats",
            &url,
            "--bind",
            "127.0.0.1:0",
        ],
        &[],
    )
}

/// A book without the fields that are the server's own (`server_ts`).
async fn book(s: &Server) -> Value {
    let (status, mut b) = s.get("/api/v1/book/CLX5?depth=all").await;
    assert_eq!(status, 200, "{b}");
    b.as_object_mut().unwrap().remove("server_ts");
    b
}

/// Waits until every server reports the same `event_index` and epoch for CLX5, and
/// returns the books.
async fn settled_books(servers: &[&Server]) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let mut books = Vec::new();
        for s in servers {
            books.push(book(s).await);
        }
        let key = |b: &Value| (b["epoch"].clone(), b["event_index"].clone());
        if books.iter().all(|b| key(b) == key(&books[0])) {
            return books;
        }
        assert!(
            Instant::now() < deadline,
            "books did not settle on one event index: {:?}",
            books.iter().map(key).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn wait_health(s: &Server, code: &str, within: Duration) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let r = http().get(s.url("/health/ready")).send().await.unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap();
        let got = if status == 200 {
            "ready"
        } else {
            v["error"]["code"].as_str().unwrap_or("?")
        };
        if got == code {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "health not {code} within {within:?}: {status} {v}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Records of `mbo` events: `(epoch, index)` → the record's fields, and the SSE ids seen.
#[derive(Default)]
struct MboLog {
    records: BTreeMap<(u64, u64), Value>,
    ids: Vec<String>,
}

impl MboLog {
    fn add(&mut self, ev: &harness::Event) {
        let v = ev.json();
        let epoch = v["epoch"].as_u64().unwrap();
        for r in v["records"].as_array().unwrap() {
            let index = r[0].as_u64().unwrap();
            let old = self.records.insert((epoch, index), r.clone());
            assert!(old.is_none(), "record {epoch}-{index} delivered twice");
        }
        self.ids.push(ev.id.clone().unwrap_or_default());
    }
}

async fn read_mbo(sse: &mut Sse, log: &mut MboLog, n: usize) {
    let mut got = 0;
    while got < n {
        let ev = sse
            .next_named("mbo", Duration::from_secs(10))
            .await
            .expect("an mbo event within 10 s");
        log.add(&ev);
        got += 1;
    }
}

/// `[price, size, orders]` per level, best first.
fn levels(book: &Value, side: &str) -> Vec<[u64; 3]> {
    book[side]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            [
                l["price"].as_i64().unwrap() as u64,
                l["size"].as_u64().unwrap(),
                l["orders"].as_u64().unwrap(),
            ]
        })
        .collect()
}

/// Reads every message of `mbo.book.{instrument}` from the start of `MBO_BOOKS` and
/// applies it to an L2 book: returns the last `(epoch, event index)` and the levels, best
/// first, as `[price, size, orders]`.
async fn l2_from_book_changes(
    url: &str,
    instrument: u64,
) -> ((u64, u64), Vec<[u64; 3]>, Vec<[u64; 3]>) {
    use async_nats::jetstream::consumer::push::OrderedConfig;
    use futures::StreamExt;
    let client = async_nats::connect(url).await.unwrap();
    let js = async_nats::jetstream::new(client.clone());
    let mut stream = js.get_stream("MBO_BOOKS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let consumer = stream
        .create_consumer(OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: format!("mbo.book.{instrument}"),
            ..OrderedConfig::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let (mut bids, mut asks) = (
        BTreeMap::<i64, [u64; 2]>::new(),
        BTreeMap::<i64, [u64; 2]>::new(),
    );
    let mut at = (u64::MAX, 0);
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("book changes within 10 s")
            .unwrap()
            .unwrap();
        let v: Value = serde_json::from_slice(&msg.payload).unwrap();
        let epoch = v["epoch"].as_u64().unwrap();
        if epoch != at.0 || v["reset"] == true {
            bids.clear();
            asks.clear();
        }
        for ev in v["events"].as_array().unwrap() {
            if ev["clear"] == true {
                bids.clear();
                asks.clear();
            }
            for l in ev["levels"].as_array().unwrap() {
                let side = if l[0] == "B" { &mut bids } else { &mut asks };
                let price = l[1].as_i64().unwrap();
                let (size, count) = (l[2].as_u64().unwrap(), l[3].as_u64().unwrap());
                if count == 0 {
                    side.remove(&price);
                } else {
                    side.insert(price, [size, count]);
                }
            }
            at = (epoch, ev["i"].as_u64().unwrap_or(at.1));
        }
        if msg.info().unwrap().stream_sequence >= last {
            break;
        }
    }
    let row = |(p, [s, c]): (&i64, &[u64; 2])| [*p as u64, *s, *c];
    (
        at,
        bids.iter().rev().map(row).collect(),
        asks.iter().map(row).collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_serve_exactly_the_ingests_books_records_and_history() {
    let nats = Nats::start();
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("mbo.db");
    let ing = ingest(
        &nats,
        &[
            "--pace",
            "rate",
            "--rate",
            "20000",
            "--loop",
            "--db",
            db_path.to_str().unwrap(),
        ],
    );
    ing.ready().await;
    let (g1, g2) = (gateway(&nats), gateway(&nats));
    g1.ready().await;
    g2.ready().await;

    // The raw MBO streams of both gateways: identical records under identical ids.
    let mut s1 = Sse::open(&g1.url("/api/v1/stream/mbo"), None).await;
    let mut s2 = Sse::open(&g2.url("/api/v1/stream/mbo"), None).await;
    assert_eq!((s1.status, s2.status), (200, 200));
    s1.next_named("snapshot", Duration::from_secs(5))
        .await
        .unwrap();
    s2.next_named("snapshot", Duration::from_secs(5))
        .await
        .unwrap();
    let (mut l1, mut l2) = (MboLog::default(), MboLog::default());
    // The two subscriptions start at slightly different points of the live stream (further
    // apart on a loaded machine): 80 events each leave a wide overlap to compare.
    read_mbo(&mut s1, &mut l1, 80).await;
    read_mbo(&mut s2, &mut l2, 80).await;
    let common: Vec<_> = l1
        .records
        .keys()
        .filter(|k| l2.records.contains_key(k))
        .copied()
        .collect();
    assert!(
        common.len() > 100,
        "the two streams overlap by {} records only",
        common.len()
    );
    for k in &common {
        assert_eq!(
            l1.records[k], l2.records[k],
            "record {k:?} differs between gateways"
        );
    }
    let ids1: std::collections::HashSet<_> = l1.ids.iter().collect();
    let shared_ids = l2.ids.iter().filter(|id| ids1.contains(id)).count();
    assert!(shared_ids > 10, "only {shared_ids} event ids in common");

    // Paused through a gateway: every replica settles on the same book.
    let (status, st) = g1
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(status, 200, "{st}");
    assert_eq!(
        st["state"], "paused",
        "the ingest answers the command: {st}"
    );
    for s in [&ing, &g1, &g2] {
        s.wait_state("paused", Duration::from_secs(5)).await;
    }
    let books = settled_books(&[&ing, &g1, &g2]).await;
    assert!(
        books[0]["bids"].as_array().unwrap().len() > 5,
        "{}",
        books[0]
    );
    assert_eq!(books[0], books[1], "gateway 1 differs from the ingest");
    assert_eq!(books[0], books[2], "gateway 2 differs from the ingest");
    // The L3 queue at the best bid, and the instruments list, are the same too.
    let price = books[0]["bids"][0]["price"].as_i64().unwrap();
    let path = format!("/api/v1/book/CLX5/level?side=bid&price={price}");
    let mut queues = Vec::new();
    for s in [&ing, &g1, &g2] {
        let (status, mut q) = s.get(&path).await;
        assert_eq!(status, 200, "{q}");
        q.as_object_mut().unwrap().remove("server_ts");
        queues.push(q);
    }
    assert!(
        queues[0]["orders"]
            .as_array()
            .is_some_and(|o| !o.is_empty()),
        "{}",
        queues[0]
    );
    assert_eq!(queues[0], queues[1]);
    assert_eq!(queues[0], queues[2]);
    let (_, i0) = ing.get("/api/v1/instruments").await;
    let (_, i1) = g1.get("/api/v1/instruments").await;
    assert_eq!(i0, i1);

    // The per-instrument level changes on NATS rebuild the same L2 book.
    let instrument = books[0]["instrument_id"].as_u64().unwrap();
    let (at, bids, asks) = l2_from_book_changes(&nats.url(), instrument).await;
    assert_eq!(
        at,
        (
            books[0]["epoch"].as_u64().unwrap(),
            books[0]["event_index"].as_u64().unwrap()
        ),
        "the book changes end at the paused event"
    );
    assert_eq!(bids, levels(&books[0], "bids"), "bids from mbo.book.*");
    assert_eq!(asks, levels(&books[0], "asks"), "asks from mbo.book.*");

    // History goes to the ingest: the same trades through a gateway as from the ingest.
    let path = "/api/v1/trades?symbol=CLX5&limit=20";
    // Storage commits a partial batch after its maximum age: wait for the first trades.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut t0 = loop {
        let (status, t) = ing.get(path).await;
        assert_eq!(status, 200, "{t}");
        if !t["trades"].as_array().unwrap().is_empty() {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "no trade stored within 10 s: {t}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (status, mut t2) = g2.get(path).await;
    assert_eq!(status, 200, "{t2}");
    for t in [&mut t0, &mut t2] {
        t.as_object_mut().unwrap().remove("server_ts");
    }
    assert_eq!(t0, t2);
    // Bad input gets the ingest's JSON 4xx through the gateway.
    let (status, e) = g2.get("/api/v1/trades?symbol=NOPE").await;
    assert_eq!(status, 404, "{e}");
    assert!(e["error"]["code"].is_string(), "{e}");
    let (status, e) = g1
        .post("/api/v1/replay", r#"{"action":"dance"}"#, None)
        .await;
    assert_eq!(status, 400, "{e}");

    // A seek through a gateway (the ingest resets and catches up): every replica follows.
    let target = (books[0]["ts_recv"].as_u64().unwrap() + st["start_ts"].as_u64().unwrap()) / 2;
    let (status, sk) = g2
        .post(
            "/api/v1/replay",
            &format!(r#"{{"action":"seek","ts":{target}}}"#),
            None,
        )
        .await;
    assert_eq!(status, 200, "{sk}");
    let sought = settled_books(&[&ing, &g1, &g2]).await;
    assert!(
        sought[0]["epoch"].as_u64() > books[0]["epoch"].as_u64(),
        "{}",
        sought[0]
    );
    assert!(sought[0]["ts_recv"].as_u64().unwrap() <= target);
    assert_eq!(sought[0], sought[1], "gateway 1 after a seek");
    assert_eq!(sought[0], sought[2], "gateway 2 after a seek");

    // Resume through the other gateway: both follow.
    let (status, _) = g2
        .post("/api/v1/replay", r#"{"action":"play"}"#, None)
        .await;
    assert_eq!(status, 200);
    g1.wait_state("playing", Duration::from_secs(5)).await;
    let m = g1
        .metric("mbo_cluster_followed_records_total")
        .await
        .unwrap();
    assert!(m > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_moves_to_another_gateway_after_sigkill_without_duplicates_or_holes() {
    let nats = Nats::start();
    // Records on file here (memory, the default, everywhere else).
    let ing = ingest(
        &nats,
        &[
            "--pace",
            "rate",
            "--rate",
            "5000",
            "--loop",
            "--nats-storage",
            "file",
        ],
    );
    ing.ready().await;
    let (mut g1, g2) = (gateway(&nats), gateway(&nats));
    g1.ready().await;
    g2.ready().await;
    let mut log = MboLog::default();
    let mut s1 = Sse::open(&g1.url("/api/v1/stream/mbo?symbol=CLX5"), None).await;
    s1.next_named("snapshot", Duration::from_secs(5))
        .await
        .unwrap();
    read_mbo(&mut s1, &mut log, 20).await;
    let last_id = log.ids.last().cloned().unwrap();
    let (&(epoch, last_index), _) = log.records.last_key_value().unwrap();
    g1.kill();
    drop(s1);

    let mut s2 = Sse::open(&g2.url("/api/v1/stream/mbo?symbol=CLX5"), Some(&last_id)).await;
    assert_eq!(s2.status, 200);
    let snap = s2
        .next_named("snapshot", Duration::from_secs(5))
        .await
        .unwrap()
        .json();
    let mut after = MboLog::default();
    read_mbo(&mut s2, &mut after, 20).await;
    // Nothing the client already had comes again, and the records continue without a hole
    // from where the client (or the snapshot, if the gateway was ahead) stood.
    let first = *after.records.keys().next().unwrap();
    for k in after.records.keys() {
        assert!(!log.records.contains_key(k), "record {k:?} delivered twice");
    }
    if snap["epoch"] == epoch {
        let start = snap["last_index"].as_u64().unwrap().max(last_index);
        let indexes: Vec<u64> = after
            .records
            .keys()
            .filter(|(e, _)| *e == epoch)
            .map(|(_, i)| *i)
            .collect();
        assert!(
            indexes.first().is_some_and(|&i| i > start),
            "first record {first:?} at or before {start}"
        );
    }
    // Each event's id is its last record: ids only grow.
    let ids: Vec<(u64, u64)> = after
        .ids
        .iter()
        .map(|id| {
            let (e, i) = id.split_once('-').unwrap();
            (e.parse().unwrap(), i.parse().unwrap())
        })
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert!(ids[0] > (epoch, last_index), "{:?} after {last_id}", ids[0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_and_ingest_restarts_are_survived() {
    let mut nats = Nats::start();
    let mut ing = ingest(&nats, &["--pace", "rate", "--rate", "20000", "--loop"]);
    ing.ready().await;
    let g1 = gateway(&nats);
    g1.ready().await;

    // NATS goes away mid-replay: the gateway says stale, then everything recovers.
    nats.kill();
    let v = wait_health(&g1, "stale", Duration::from_secs(10)).await;
    assert!(v["error"]["message"].is_string(), "{v}");
    let (_, st) = g1.get("/api/v1/replay").await;
    assert_eq!(st["health"], "stale", "{st}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    nats.spawn();
    wait_health(&g1, "ready", Duration::from_secs(30)).await;
    let (status, _) = g1
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(status, 200);
    ing.wait_state("paused", Duration::from_secs(5)).await;
    let books = settled_books(&[&ing, &g1]).await;
    assert_eq!(books[0], books[1], "after a NATS restart");
    let epoch_before = books[0]["epoch"].as_u64().unwrap();

    // The ingest goes away: stale until a new one is there, then its books.
    ing.kill();
    wait_health(&g1, "stale", Duration::from_secs(10)).await;
    let (status, e) = g1.get("/api/v1/trades?symbol=CLX5").await;
    assert_eq!(status, 503, "history without an ingest: {e}");
    assert_eq!(e["error"]["code"], "ingest_unavailable");
    let ing2 = ingest(
        &nats,
        &["--pace", "rate", "--rate", "20000", "--start-paused"],
    );
    // A new ingest continues the epochs: its ids never repeat the old ones.
    let (_, st) = ing2.get("/api/v1/replay").await;
    assert!(st["epoch"].as_u64().unwrap() > epoch_before, "{st}");
    let (status, _) = g1
        .post("/api/v1/replay", r#"{"action":"play"}"#, None)
        .await;
    assert_eq!(status, 200);
    ing2.ready().await;
    wait_health(&g1, "ready", Duration::from_secs(30)).await;
    let (status, _) = g1
        .post("/api/v1/replay", r#"{"action":"pause"}"#, None)
        .await;
    assert_eq!(status, 200);
    ing2.wait_state("paused", Duration::from_secs(5)).await;
    let books = settled_books(&[&ing2, &g1]).await;
    assert_eq!(books[0], books[1], "after an ingest restart");
}

/// A crypto book without what is the server's own.
async fn venue_book(s: &Server, path: &str) -> (u16, Value) {
    let (status, mut b) = s.get(path).await;
    if let Some(o) = b.as_object_mut() {
        o.remove("server_ts");
    }
    (status, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_mirror_the_ingests_crypto_venue_books() {
    let file = mbo_testkit::crypto_data("kraken/python-kraken-sdk_orderbook-v2.json")
        .display()
        .to_string();
    let (mut sim, ws) = venue_sim(&[
        "--venue",
        "kraken",
        &file,
        "--price-precision",
        "1",
        "--qty-precision",
        "8",
        "--rate",
        "2000",
    ]);
    let nats = Nats::start();
    let venue_url = format!("kraken={ws}");
    let ing = ingest(
        &nats,
        &[
            "--no-db",
            "--venues",
            "kraken",
            "--symbols",
            "BTC-USD",
            "--venue-url",
            &venue_url,
        ],
    );
    ing.ready().await;
    let gw = gateway(&nats);
    gw.ready().await;
    // The recording ends: both settle on its final book, frame for frame.
    let deadline = Instant::now() + Duration::from_secs(20);
    for path in ["/api/v1/book/BTC-USD?venue=kraken", "/api/v1/book/BTC-USD"] {
        loop {
            let (s0, b0) = venue_book(&ing, path).await;
            let (s1, b1) = venue_book(&gw, path).await;
            if (s0, s1) == (200, 200)
                && b0 == b1
                && b0["state"] == "live"
                && b0["bids"].as_array().is_some_and(|b| b.len() == 10)
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path} differs:\ningest {b0}\ngateway {b1}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // The instruments and the venues' health read the same.
    let (_, i0) = ing.get("/api/v1/instruments").await;
    let (_, i1) = gw.get("/api/v1/instruments").await;
    let crypto = |v: &Value| -> Vec<Value> {
        v.as_array()
            .unwrap()
            .iter()
            .filter(|i| i["dataset"] == "crypto")
            .cloned()
            .collect()
    };
    assert_eq!(crypto(&i0).len(), 2);
    assert_eq!(crypto(&i0), crypto(&i1));
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, v0) = ing.get("/api/v1/venues").await;
        let (_, v1) = gw.get("/api/v1/venues").await;
        if v0["venues"] == v1["venues"] {
            assert_eq!(v1["venues"][0]["venue"], "kraken");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "venues health differs:\n{v0}\n{v1}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A gateway's crypto stream starts with the same snapshot.
    let mut sse = Sse::open(&gw.url("/api/v1/stream/venues?symbol=BTC-USD"), None).await;
    assert_eq!(sse.status, 200);
    let snap = sse
        .next_named("snapshot", Duration::from_secs(5))
        .await
        .expect("a snapshot")
        .json();
    assert_eq!(snap["symbol"], "BTC-USD", "{snap}");
    assert_eq!(snap["state"], "live", "{snap}");
    let _ = sim.kill();
    let _ = sim.wait();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_all_needs_no_nats_and_other_roles_need_a_url() {
    // An unreachable NATS URL is ignored by --role all: nothing contacts it.
    let file = clx5();
    let s = Server::start(
        &[
            "serve",
            "--role",
            "all",
            "--nats",
            "nats://127.0.0.1:9",
            "--bind",
            "127.0.0.1:0",
            "--dbn",
            &file,
        ],
        &[],
    );
    s.ready().await;
    let (_, st) = s.get("/api/v1/replay").await;
    assert_eq!(st["health"], "ready");
    for role in ["ingest", "gateway"] {
        let out = Command::new(assert_cmd::cargo::cargo_bin("mbo"))
            .args([
                "serve",
                "--role",
                role,
                "--bind",
                "127.0.0.1:0",
                "--dbn",
                &file,
            ])
            .env_remove("MBO_NATS_URL")
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("needs a NATS server"), "{role}: {err}");
    }
}
