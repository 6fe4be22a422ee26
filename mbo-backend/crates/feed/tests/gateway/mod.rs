//! A loopback Databento gateway for tests: the real wire protocols, served from the real
//! `../shared/data/mbo/CLX5_mbo.dbn`.
//!
//! * Live (raw TCP, as `databento::LiveClient` speaks it): greeting `lsg_version=…`, challenge
//!   `cram=…`, the client's `auth=<sha256hex(challenge|key)>-<last 5 chars of key>|dataset=…|
//!   encoding=dbn|compression=none|ts_out=0|client=…` checked with the same algorithm, then
//!   `success=1|session_id=…` (or `success=0|error=…` and a close), subscription lines
//!   (`schema=mbo|stype_in=…|symbols=…|snapshot=…|is_last=…|id=…`), `start_session`, then DBN
//!   metadata, one symbol mapping record per subscribed symbol, and the file's MBO records.
//!   The first session can be cut after N records (a dropped connection).
//! * Historical (HTTP/1.1, axum): `POST /v0/metadata.get_cost` returns a JSON number and
//!   `POST /v0/timeseries.get_range` the file as zstd-compressed DBN, both behind HTTP Basic
//!   auth with the key as user name (401 `{"detail": …}` otherwise), as Databento does.
//!
//! Everything the client sends is recorded in [`Stats`] for the tests to check.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Form, Json, Router};
use base64::Engine as _;
use dbn::decode::{DbnDecoder, DbnMetadata, DecodeRecord};
use dbn::encode::dbn::MetadataEncoder;
use dbn::{MboMsg, Metadata, MetadataBuilder, SType, SymbolMappingMsg};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// The key the gateway accepts (32 characters, as Databento keys are).
pub const KEY: &str = "db-GatewayTestKey0123456789abcde";
/// A well-formed key the gateway rejects.
pub const BAD_KEY: &str = "db-WrongTestKey000123456789abcde";
/// The dataset of the file.
pub const DATASET: &str = "GLBX.MDP3";
/// The file's symbol.
pub const SYMBOL: &str = "CLX5";
/// Its instrument id.
pub const INSTRUMENT_ID: u32 = 432_669;

/// The real data file; panics (never skips) when it is missing.
pub fn clx5_path() -> PathBuf {
    mbo_testkit::mbo_data("CLX5_mbo.dbn")
}

/// The file as the gateway serves it, and its records decoded by the `dbn` crate.
#[derive(Debug)]
pub struct DataFile {
    /// The whole file (uncompressed DBN v3).
    pub bytes: Vec<u8>,
    /// Offset of the first record.
    pub records_at: usize,
    /// Byte length of each record, in order.
    pub record_lens: Vec<usize>,
    /// The records, decoded independently of mbo's own reader.
    pub records: Vec<MboMsg>,
    /// The file's metadata.
    pub metadata: Metadata,
}

impl DataFile {
    /// Loads CLX5.
    pub fn clx5() -> Self {
        let path = clx5_path();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(
            &bytes[..3],
            b"DBN",
            "{} is not uncompressed DBN",
            path.display()
        );
        let meta_len = u32::from_le_bytes(bytes[4..8].try_into().unwrap()) as usize;
        let records_at = 8 + meta_len;
        let mut record_lens = Vec::new();
        let mut at = records_at;
        while at < bytes.len() {
            let len = usize::from(bytes[at]) * 4;
            assert!(
                len > 0 && at + len <= bytes.len(),
                "bad record at byte {at}"
            );
            record_lens.push(len);
            at += len;
        }
        let mut decoder = DbnDecoder::from_file(&path).unwrap();
        let metadata = decoder.metadata().clone();
        let mut records = Vec::new();
        while let Some(rec) = decoder.decode_record::<MboMsg>().unwrap() {
            records.push(rec.clone());
        }
        assert_eq!(records.len(), record_lens.len());
        Self {
            bytes,
            records_at,
            record_lens,
            records,
            metadata,
        }
    }

    /// Bytes of the first `n` records.
    pub fn record_bytes(&self, n: usize) -> &[u8] {
        let len: usize = self.record_lens[..n.min(self.record_lens.len())]
            .iter()
            .sum();
        &self.bytes[self.records_at..self.records_at + len]
    }

    /// The instrument id the file maps `symbol` to.
    pub fn instrument_id(&self, symbol: &str) -> Option<u32> {
        self.metadata
            .mappings
            .iter()
            .find(|m| m.raw_symbol == symbol)
            .and_then(|m| m.intervals.first())
            .and_then(|i| i.symbol.parse().ok())
    }
}

/// How the gateway behaves.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// The only key accepted.
    pub key: String,
    /// What `metadata.get_cost` answers, US dollars.
    pub cost_usd: f64,
    /// Cut the first live session after this many records.
    pub drop_first_session_after: Option<usize>,
    /// Refuse the key from this live session on (0-based): a key revoked meanwhile.
    pub refuse_from_session: Option<usize>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            key: KEY.to_owned(),
            cost_usd: 0.42,
            drop_first_session_after: None,
            refuse_from_session: None,
        }
    }
}

/// What the clients did.
#[derive(Debug, Default)]
pub struct Stats {
    /// TCP connections to the live gateway.
    pub live_connections: AtomicUsize,
    /// Live authentications refused.
    pub live_auth_failures: AtomicUsize,
    /// Live sessions started (`start_session` received).
    pub live_sessions_started: AtomicUsize,
    /// Authentication lines received (they hold a hash, never the key).
    pub auth_lines: Mutex<Vec<String>>,
    /// Subscription lines received, all sessions.
    pub subscriptions: Mutex<Vec<String>>,
    /// Anything a client sent that the real gateway would refuse.
    pub protocol_errors: Mutex<Vec<String>>,
    /// Every HTTP request, by path.
    pub http_requests: Mutex<Vec<String>>,
    /// HTTP requests refused for their credentials.
    pub http_auth_failures: AtomicUsize,
    /// Forms of the `timeseries.get_range` requests.
    pub get_range_forms: Mutex<Vec<HashMap<String, String>>>,
    /// Forms of the `metadata.get_cost` requests.
    pub get_cost_forms: Mutex<Vec<HashMap<String, String>>>,
}

impl Stats {
    /// HTTP requests made so far.
    pub fn http_count(&self) -> usize {
        self.http_requests.lock().unwrap().len()
    }

    /// Protocol errors so far (should stay empty).
    pub fn protocol_errors(&self) -> Vec<String> {
        self.protocol_errors.lock().unwrap().clone()
    }

    fn protocol_error(&self, msg: String) {
        self.protocol_errors.lock().unwrap().push(msg);
    }
}

struct Shared {
    config: GatewayConfig,
    file: DataFile,
    /// zstd-compressed file, as `timeseries.get_range` sends it.
    zstd: Vec<u8>,
    stats: Arc<Stats>,
}

/// A running gateway; stops when dropped.
pub struct Gateway {
    /// Live gateway address.
    pub live_addr: SocketAddr,
    /// Historical API address.
    pub http_addr: SocketAddr,
    /// What the clients did.
    pub stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

impl Gateway {
    /// Binds both servers on 127.0.0.1:0 and serves them on the current runtime.
    pub async fn start(config: GatewayConfig) -> Self {
        let file = DataFile::clx5();
        let zstd = zstd::encode_all(&file.bytes[..], 3).unwrap();
        let stats = Arc::new(Stats::default());
        let shared = Arc::new(Shared {
            config,
            file,
            zstd,
            stats: Arc::clone(&stats),
        });

        let live = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let live_addr = live.local_addr().unwrap();
        let live_shared = Arc::clone(&shared);
        let live_task = tokio::spawn(async move {
            let mut session_no = 0usize;
            while let Ok((stream, _)) = live.accept().await {
                live_shared
                    .stats
                    .live_connections
                    .fetch_add(1, Ordering::SeqCst);
                let shared = Arc::clone(&live_shared);
                let n = session_no;
                session_no += 1;
                tokio::spawn(async move {
                    if let Err(e) = live_session(stream, &shared, n).await {
                        shared.stats.protocol_error(e);
                    }
                });
            }
        });

        let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        let app = Router::new()
            .route("/v0/timeseries.get_range", post(get_range))
            .route("/v0/metadata.get_cost", post(get_cost))
            .fallback(not_found)
            .with_state(Arc::clone(&shared));
        let http_task = tokio::spawn(async move {
            axum::serve(http, app).await.unwrap();
        });

        Self {
            live_addr,
            http_addr,
            stats,
            tasks: vec![live_task, http_task],
        }
    }

    /// The historical base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The live address as `host:port`.
    pub fn live(&self) -> String {
        self.live_addr.to_string()
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------------------------------

fn sha256_hex(input: &str) -> String {
    Sha256::digest(input.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn kv(line: &str) -> HashMap<&str, &str> {
    line.split('|')
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

async fn read_line(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<String> {
    let mut line = String::new();
    match reader.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches('\n').to_owned()),
    }
}

async fn live_session(stream: TcpStream, shared: &Shared, session_no: usize) -> Result<(), String> {
    let stats = &shared.stats;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    let io = |e: std::io::Error| format!("session {session_no}: {e}");

    // Greeting and CRAM challenge.
    let challenge = sha256_hex(&format!(
        "challenge {session_no} {:?}",
        std::time::SystemTime::now()
    ))[..32]
        .to_owned();
    writer
        .write_all(format!("lsg_version=0.7.2\ncram={challenge}\n").as_bytes())
        .await
        .map_err(io)?;

    // Authentication request.
    let Some(auth_line) = read_line(&mut reader).await else {
        return Ok(()); // the client went away
    };
    stats.auth_lines.lock().unwrap().push(auth_line.clone());
    let fields = kv(&auth_line);
    let key = &shared.config.key;
    let expected = format!(
        "{}-{}",
        sha256_hex(&format!("{challenge}|{key}")),
        &key[key.len() - 5..]
    );
    for (name, want) in [
        ("encoding", "dbn"),
        ("compression", "none"),
        ("ts_out", "0"),
    ] {
        if fields.get(name) != Some(&want) {
            return Err(format!("auth request without {name}={want}: {auth_line}"));
        }
    }
    if !fields
        .get("client")
        .is_some_and(|c| c.starts_with("Databento/"))
    {
        return Err(format!(
            "auth request without client=Databento/…: {auth_line}"
        ));
    }
    let revoked = shared
        .config
        .refuse_from_session
        .is_some_and(|from| session_no >= from);
    let refusal = if fields.get("auth") != Some(&expected.as_str()) || revoked {
        Some("Authentication failed.")
    } else if fields.get("dataset") != Some(&DATASET) {
        Some("Unknown dataset.")
    } else {
        None
    };
    if let Some(error) = refusal {
        stats.live_auth_failures.fetch_add(1, Ordering::SeqCst);
        writer
            .write_all(format!("success=0|error={error}\n").as_bytes())
            .await
            .map_err(io)?;
        let _ = writer.shutdown().await;
        return Ok(());
    }
    writer
        .write_all(format!("success=1|session_id={}\n", 1000 + session_no).as_bytes())
        .await
        .map_err(io)?;

    // Subscriptions until start_session.
    let mut symbols: Vec<String> = Vec::new();
    loop {
        let Some(line) = read_line(&mut reader).await else {
            return Ok(());
        };
        if line == "start_session" {
            break;
        }
        let sub = kv(&line);
        if sub.get("schema") != Some(&"mbo")
            || !sub.contains_key("stype_in")
            || !sub.contains_key("snapshot")
            || !sub.contains_key("is_last")
        {
            return Err(format!("unexpected line before start_session: {line}"));
        }
        symbols.extend(
            sub.get("symbols")
                .unwrap_or(&"")
                .split(',')
                .map(str::to_owned),
        );
        stats.subscriptions.lock().unwrap().push(line);
    }
    stats.live_sessions_started.fetch_add(1, Ordering::SeqCst);

    // Metadata (as the live gateway sends it: no schema, no mappings), then one symbol
    // mapping record per known subscribed symbol (output symbology always raw_symbol, as
    // in live data), then the records.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let metadata = MetadataBuilder::new()
        .dataset(DATASET.to_owned())
        .schema(None)
        .start(now)
        .stype_in(None)
        .stype_out(SType::InstrumentId)
        .build();
    let mut out = Vec::new();
    MetadataEncoder::new(&mut out).encode(&metadata).unwrap();
    for symbol in &symbols {
        if let Some(id) = shared.file.instrument_id(symbol) {
            let mapping = SymbolMappingMsg::new(
                id,
                now,
                SType::RawSymbol,
                symbol,
                SType::RawSymbol,
                symbol,
                now,
                u64::MAX,
            )
            .unwrap();
            out.extend_from_slice(mapping.as_ref());
        }
    }
    writer.write_all(&out).await.map_err(io)?;
    let n = match shared.config.drop_first_session_after {
        Some(n) if session_no == 0 => n,
        _ => usize::MAX,
    };
    for chunk in shared.file.record_bytes(n).chunks(64 * 1024) {
        if writer.write_all(chunk).await.is_err() {
            return Ok(()); // the client closed
        }
    }
    writer.flush().await.map_err(io)?;
    if n != usize::MAX {
        // The dropped connection.
        let _ = writer.shutdown().await;
        return Ok(());
    }
    // Stay up until the client leaves.
    while read_line(&mut reader).await.is_some() {}
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Historical
// ---------------------------------------------------------------------------------------------

fn authorized(shared: &Shared, headers: &HeaderMap) -> bool {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:", shared.config.key))
    );
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == expected)
}

fn refused(shared: &Shared) -> Response {
    shared
        .stats
        .http_auth_failures
        .fetch_add(1, Ordering::SeqCst);
    (
        StatusCode::UNAUTHORIZED,
        Json(serde_json_detail("Authentication failed.")),
    )
        .into_response()
}

fn serde_json_detail(msg: &str) -> HashMap<&'static str, String> {
    HashMap::from([("detail", msg.to_owned())])
}

fn check_form(shared: &Shared, form: &HashMap<String, String>) -> Option<Response> {
    let bad = |msg: String| {
        shared.stats.protocol_error(msg.clone());
        Some(
            (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(serde_json_detail(&msg)),
            )
                .into_response(),
        )
    };
    for name in ["dataset", "schema", "symbols", "stype_in", "start", "end"] {
        if !form.contains_key(name) {
            return bad(format!("missing form field {name}"));
        }
    }
    if form["schema"] != "mbo" {
        return bad(format!("schema {} is not mbo", form["schema"]));
    }
    None
}

async fn get_cost(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared
        .stats
        .http_requests
        .lock()
        .unwrap()
        .push("/v0/metadata.get_cost".into());
    if !authorized(&shared, &headers) {
        return refused(&shared);
    }
    if let Some(resp) = check_form(&shared, &form) {
        return resp;
    }
    shared.stats.get_cost_forms.lock().unwrap().push(form);
    Json(shared.config.cost_usd).into_response()
}

async fn get_range(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared
        .stats
        .http_requests
        .lock()
        .unwrap()
        .push("/v0/timeseries.get_range".into());
    if !authorized(&shared, &headers) {
        return refused(&shared);
    }
    if let Some(resp) = check_form(&shared, &form) {
        return resp;
    }
    for (name, want) in [("encoding", "dbn"), ("compression", "zstd")] {
        if form.get(name).map(String::as_str) != Some(want) {
            shared
                .stats
                .protocol_error(format!("get_range without {name}={want}"));
        }
    }
    shared.stats.get_range_forms.lock().unwrap().push(form);
    (
        [(header::CONTENT_TYPE, "application/octet-stream")],
        shared.zstd.clone(),
    )
        .into_response()
}

async fn not_found(uri: axum::http::Uri, State(shared): State<Arc<Shared>>) -> Response {
    shared
        .stats
        .http_requests
        .lock()
        .unwrap()
        .push(uri.path().to_owned());
    shared
        .stats
        .protocol_error(format!("request to unknown endpoint {}", uri.path()));
    (StatusCode::NOT_FOUND, Json(serde_json_detail("Not found."))).into_response()
}

/// A checksum over every field of every record.
pub fn checksum(records: &[MboMsg]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut mix = |v: u64| {
        for b in v.to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for r in records {
        mix(r.hd.record_size() as u64);
        mix(u64::from(r.hd.rtype));
        mix(u64::from(r.hd.publisher_id));
        mix(u64::from(r.hd.instrument_id));
        mix(r.hd.ts_event);
        mix(r.order_id);
        mix(r.price as u64);
        mix(u64::from(r.size));
        mix(u64::from(r.flags.raw()));
        mix(u64::from(r.channel_id));
        mix(r.action as u8 as u64);
        mix(r.side as u8 as u64);
        mix(r.ts_recv);
        mix(r.ts_in_delta as u32 as u64);
        mix(u64::from(r.sequence));
    }
    h
}

/// Decodes every MBO record of a (zstd or plain) DBN file with the `dbn` crate.
pub fn decode_file(path: &Path) -> (Metadata, Vec<MboMsg>) {
    let mut decoder = dbn::decode::DynDecoder::from_file(path, dbn::VersionUpgradePolicy::AsIs)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let metadata = decoder.metadata().clone();
    let mut records = Vec::new();
    while let Some(rec) = decoder.decode_record::<MboMsg>().unwrap() {
        records.push(rec.clone());
    }
    (metadata, records)
}
