#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Databento sources end to end: the real `databento` client code against a loopback gateway
//! (`gateway/mod.rs`) that speaks the live and historical wire protocols and serves the real
//! `../shared/data/mbo/CLX5_mbo.dbn`. Expected records are decoded with the `dbn` crate.

mod gateway;

use std::path::Path;
use std::time::Duration;

use dbn::{MboMsg, SType, Schema};
use gateway::{checksum, decode_file, DataFile, Gateway, GatewayConfig, BAD_KEY, KEY};
use mbo_feed::databento::historical::FetchOutcome;
use mbo_feed::databento::{
    fetch, spawn_live, ApiKey, Backoff, FetchOptions, FetchRequest, LiveConfig,
};
use mbo_feed::dbn_file::FileDecoder;
use mbo_feed::{Feed, FeedError, FeedEvent, ResetReason, SourceKind, SymbolInfo};
use std::sync::atomic::Ordering;

const WAIT: Duration = Duration::from_secs(60);

fn key() -> ApiKey {
    ApiKey::new(KEY).unwrap()
}

fn request(file: &DataFile) -> FetchRequest {
    FetchRequest {
        dataset: "GLBX.MDP3".into(),
        symbols: vec!["CLX5".into()],
        stype_in: SType::RawSymbol,
        start: file.metadata.start,
        end: file
            .metadata
            .end
            .map_or(file.metadata.start + 1, |e| e.get()),
    }
}

fn options(gw: &Gateway, cache: &Path, out: Option<&Path>) -> FetchOptions {
    FetchOptions {
        key: Some(key()),
        cache_dir: Some(cache.to_owned()),
        out: out.map(Path::to_owned),
        base_url: Some(gw.base_url()),
        // Drawn only when standard error is a terminal (never under a test harness's pipe).
        progress: true,
        ..FetchOptions::default()
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn assert_same_records(got: &[MboMsg], want: &[MboMsg], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: record count");
    assert_eq!(
        checksum(got),
        checksum(want),
        "{what}: checksum over all fields"
    );
    if let Some(i) = (0..got.len()).find(|&i| got[i] != want[i]) {
        panic!("{what}: record {i} differs: {:?} != {:?}", got[i], want[i]);
    }
}

// ---------------------------------------------------------------------------------------------
// Historical
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_writes_the_files_records_and_the_cache_serves_the_second() {
    let gw = Gateway::start(GatewayConfig::default()).await;
    let file = DataFile::clx5();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("clx5.dbn.zst");
    let req = request(&file);

    let first = fetch(&req, &options(&gw, &cache, Some(&out)))
        .await
        .unwrap();
    assert!(!first.from_cache);
    assert_eq!(first.path, out);
    assert_eq!(first.cost_usd, Some(0.42));
    assert_eq!(first.records, Some(file.records.len() as u64));
    assert_eq!(
        gw.stats.http_requests.lock().unwrap().clone(),
        ["/v0/metadata.get_cost", "/v0/timeseries.get_range"],
        "cost estimate first, then the download"
    );
    assert!(
        gw.stats.protocol_errors().is_empty(),
        "{:?}",
        gw.stats.protocol_errors()
    );
    let form = gw.stats.get_range_forms.lock().unwrap()[0].clone();
    assert_eq!(form["dataset"], "GLBX.MDP3");
    assert_eq!(form["schema"], "mbo");
    assert_eq!(form["symbols"], "CLX5");
    assert_eq!(form["stype_in"], "raw_symbol");
    assert_eq!(form["start"], req.start.to_string());
    assert_eq!(form["end"], req.end.to_string());
    assert_eq!(
        gw.stats.get_cost_forms.lock().unwrap()[0]["symbols"],
        "CLX5"
    );

    // The output is zstd DBN holding exactly the file's records.
    let raw = std::fs::read(&out).unwrap();
    assert_eq!(&raw[..4], &[0x28, 0xB5, 0x2F, 0xFD], "zstd-compressed");
    assert_eq!(first.bytes, raw.len() as u64);
    let (metadata, records) = decode_file(&out);
    assert_eq!(metadata.dataset, "GLBX.MDP3");
    assert_eq!(metadata.schema, Some(Schema::Mbo));
    assert_same_records(&records, &file.records, "fetched file (dbn decoder)");
    // mbo's own strict reader accepts it too.
    let mut ours = FileDecoder::open(&out).unwrap();
    let mut n = 0u64;
    while ours.next_record().unwrap().is_some() {
        n += 1;
    }
    assert_eq!(n, file.records.len() as u64);
    // The cache holds one finished entry and no temporary file.
    let entries = files_in(&cache);
    assert_eq!(entries, [req.cache_file_name()], "{entries:?}");
    assert_eq!(std::fs::read(&first.cache_path).unwrap(), raw);

    // Same request again, no key at all: served from the cache, no request whatsoever.
    let out2 = dir.path().join("again.dbn.zst");
    let mut opts = options(&gw, &cache, Some(&out2));
    opts.key = None;
    let second: FetchOutcome = fetch(&req, &opts).await.unwrap();
    assert!(second.from_cache);
    assert_eq!(second.cost_usd, None);
    assert_eq!(gw.stats.http_count(), 2, "a cache hit makes no request");
    assert_eq!(std::fs::read(&out2).unwrap(), raw);

    // Symbol order and repeats do not make another request either.
    let mut same = req.clone();
    same.symbols = vec![" CLX5".into(), "CLX5".into()];
    let third = fetch(&same, &options(&gw, &cache, None)).await.unwrap();
    assert!(third.from_cache);
    assert_eq!(third.path, first.cache_path);
    assert_eq!(gw.stats.http_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cost_above_the_limit_is_refused_and_nothing_is_written() {
    let gw = Gateway::start(GatewayConfig {
        cost_usd: 12.5,
        ..GatewayConfig::default()
    })
    .await;
    let file = DataFile::clx5();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let out = dir.path().join("out.dbn.zst");

    let err = fetch(&request(&file), &options(&gw, &cache, Some(&out)))
        .await
        .unwrap_err();
    match &err {
        FeedError::CostAboveLimit {
            estimate_usd,
            limit_usd,
        } => {
            assert_eq!(*estimate_usd, 12.5);
            assert_eq!(*limit_usd, 5.0);
        }
        other => panic!("expected CostAboveLimit, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("$12.50") && msg.contains("$5.00") && msg.contains("--yes"),
        "{msg}"
    );
    assert_eq!(
        gw.stats.http_requests.lock().unwrap().clone(),
        ["/v0/metadata.get_cost"],
        "no download"
    );
    assert!(files_in(&cache).is_empty(), "{:?}", files_in(&cache));
    assert!(!out.exists());

    // A higher limit lets it through; so does --yes.
    let mut opts = options(&gw, &cache, None);
    opts.max_cost_usd = 20.0;
    assert!(fetch(&request(&file), &opts).await.is_ok());
    let other_cache = dir.path().join("other");
    let mut opts = options(&gw, &other_cache, None);
    opts.confirmed = true;
    let outcome = fetch(&request(&file), &opts).await.unwrap();
    assert_eq!(outcome.cost_usd, Some(12.5));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_with_a_bad_key_is_a_clear_auth_error() {
    let gw = Gateway::start(GatewayConfig::default()).await;
    let file = DataFile::clx5();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(&gw, dir.path(), None);
    opts.key = Some(ApiKey::new(BAD_KEY).unwrap());
    let err = fetch(&request(&file), &opts).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FeedError::Auth(_)), "{err:?}");
    assert!(
        msg.contains("Authentication failed") && msg.contains("DATABENTO_API_KEY"),
        "{msg}"
    );
    assert!(!msg.contains(BAD_KEY), "{msg}");
    assert_eq!(gw.stats.http_auth_failures.load(Ordering::SeqCst), 1);
    assert_eq!(
        gw.stats.http_count(),
        1,
        "stops at the refused cost request"
    );
    assert!(files_in(dir.path()).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Live
// ---------------------------------------------------------------------------------------------

fn live_config(gw: &Gateway, key: ApiKey) -> LiveConfig {
    let mut config = LiveConfig::new(key, "GLBX.MDP3", vec!["CLX5".into()]);
    config.addr = Some(gw.live());
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
        jitter: 0.1,
    };
    config.batch_size = 500;
    config
}

/// Next event, failing the test after [`WAIT`].
async fn next(feed: &mut Feed) -> Option<mbo_feed::source::Result<FeedEvent>> {
    tokio::time::timeout(WAIT, feed.events.recv())
        .await
        .expect("no event from the live feed in time")
}

/// Reads records (checking index continuity from `*next_index`) until `n` were received or
/// a non-record event arrives, which is returned.
async fn read_records(
    feed: &mut Feed,
    n: usize,
    next_index: &mut u64,
    into: &mut Vec<MboMsg>,
) -> Option<FeedEvent> {
    let target = into.len() + n;
    while into.len() < target {
        match next(feed).await {
            Some(Ok(FeedEvent::Records {
                first_index,
                records,
                catch_up,
            })) => {
                assert_eq!(first_index, *next_index, "stream indices are contiguous");
                assert!(!catch_up);
                assert!(!records.is_empty() && records.len() <= 500);
                *next_index += records.len() as u64;
                into.extend(records);
            }
            Some(Ok(other)) => return Some(other),
            Some(Err(e)) => panic!("feed error: {e}"),
            None => panic!("the feed ended after {} records", into.len()),
        }
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_session_delivers_every_record_in_order() {
    let gw = Gateway::start(GatewayConfig::default()).await;
    let file = DataFile::clx5();
    let mut feed = spawn_live(live_config(&gw, key())).await.unwrap();
    assert_eq!(feed.metadata.source, SourceKind::Live);
    assert_eq!(feed.metadata.dataset, "GLBX.MDP3");
    assert_eq!(
        feed.metadata.symbols,
        [SymbolInfo {
            symbol: "CLX5".into(),
            instrument_id: gateway::INSTRUMENT_ID,
        }]
    );
    assert!(feed.control.is_none());

    let mut got = Vec::new();
    let mut index = 0;
    let extra = read_records(&mut feed, file.records.len(), &mut index, &mut got).await;
    assert!(extra.is_none(), "unexpected event {extra:?}");
    assert_same_records(&got, &file.records, "live session");

    let subs = gw.stats.subscriptions.lock().unwrap().clone();
    assert_eq!(subs.len(), 1);
    for part in [
        "schema=mbo",
        "stype_in=raw_symbol",
        "symbols=CLX5",
        "snapshot=1",
        "is_last=1",
    ] {
        assert!(
            subs[0].split('|').any(|p| p == part),
            "{part} in {}",
            subs[0]
        );
    }
    assert!(
        gw.stats.protocol_errors().is_empty(),
        "{:?}",
        gw.stats.protocol_errors()
    );
    assert_eq!(gw.stats.live_connections.load(Ordering::SeqCst), 1);
    assert!(
        gw.stats
            .auth_lines
            .lock()
            .unwrap()
            .iter()
            .all(|l| !l.contains(KEY)),
        "the key never travels in clear"
    );

    // Nothing more while the session stays up; dropping the feed closes the connection.
    assert!(
        tokio::time::timeout(Duration::from_millis(200), feed.events.recv())
            .await
            .is_err(),
        "no further event on a healthy idle session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_marks_a_gap_and_rebuilds_from_a_new_snapshot() {
    const CUT: usize = 1_000;
    let gw = Gateway::start(GatewayConfig {
        drop_first_session_after: Some(CUT),
        ..GatewayConfig::default()
    })
    .await;
    let file = DataFile::clx5();
    let mut feed = spawn_live(live_config(&gw, key())).await.unwrap();

    let mut first = Vec::new();
    let mut index = 0;
    let event = read_records(&mut feed, usize::MAX / 2, &mut index, &mut first).await;
    assert_same_records(&first, &file.records[..CUT], "first session");
    match event {
        Some(FeedEvent::Reset {
            reason: ResetReason::Reconnect { cause },
            next_index,
        }) => {
            assert_eq!(
                next_index, CUT as u64,
                "numbering continues across sessions"
            );
            assert!(cause.contains("closed"), "{cause}");
        }
        other => panic!("expected a reconnect reset, got {other:?}"),
    }

    // The new session starts over (as a snapshot would), numbered after the gap.
    let mut second = Vec::new();
    let extra = read_records(&mut feed, file.records.len(), &mut index, &mut second).await;
    assert!(extra.is_none(), "unexpected event {extra:?}");
    assert_eq!(index, (CUT + file.records.len()) as u64);
    assert_same_records(&second, &file.records, "second session");

    assert_eq!(gw.stats.live_connections.load(Ordering::SeqCst), 2);
    let subs = gw.stats.subscriptions.lock().unwrap().clone();
    assert_eq!(subs.len(), 2, "subscribed again after the reconnect");
    assert!(
        subs.iter().all(|s| s.contains("snapshot=1")),
        "both sessions ask for a snapshot: {subs:?}"
    );
    assert!(
        gw.stats.protocol_errors().is_empty(),
        "{:?}",
        gw.stats.protocol_errors()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_key_is_a_clear_auth_error_without_retries() {
    let gw = Gateway::start(GatewayConfig::default()).await;
    let err = spawn_live(live_config(&gw, ApiKey::new(BAD_KEY).unwrap()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, FeedError::Auth(_)), "{err:?}");
    assert!(
        msg.contains("Authentication failed") && msg.contains("DATABENTO_API_KEY"),
        "{msg}"
    );
    assert!(!msg.contains(BAD_KEY), "{msg}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(gw.stats.live_connections.load(Ordering::SeqCst), 1);
    assert_eq!(gw.stats.live_auth_failures.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_refused_on_reconnect_ends_the_feed_with_an_auth_error() {
    let gw = Gateway::start(GatewayConfig {
        drop_first_session_after: Some(10),
        refuse_from_session: Some(1),
        ..GatewayConfig::default()
    })
    .await;
    let mut feed = spawn_live(live_config(&gw, key())).await.unwrap();
    let mut got = Vec::new();
    let mut index = 0;
    let event = read_records(&mut feed, usize::MAX / 2, &mut index, &mut got).await;
    assert_eq!(got.len(), 10);
    assert!(
        matches!(
            event,
            Some(FeedEvent::Reset {
                reason: ResetReason::Reconnect { .. },
                next_index: 10
            })
        ),
        "{event:?}"
    );
    match next(&mut feed).await {
        Some(Err(FeedError::Auth(msg))) => assert!(msg.contains("Authentication failed"), "{msg}"),
        other => panic!("expected an auth error, got {other:?}"),
    }
    assert!(
        next(&mut feed).await.is_none(),
        "the feed ends after the auth error"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gw.stats.live_connections.load(Ordering::SeqCst),
        2,
        "no retry storm"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_give_up_after_the_configured_attempts() {
    let gw = Gateway::start(GatewayConfig {
        drop_first_session_after: Some(5),
        ..GatewayConfig::default()
    })
    .await;
    let mut config = live_config(&gw, key());
    config.max_reconnects = Some(3);
    config.backoff.initial = Duration::from_millis(300);
    config.backoff.max = Duration::from_millis(600);
    let mut feed = spawn_live(config).await.unwrap();
    // The gateway goes away (its listener closes) before the first reconnect attempt.
    drop(gw);
    let mut got = Vec::new();
    let mut index = 0;
    let event = read_records(&mut feed, usize::MAX / 2, &mut index, &mut got).await;
    assert!(matches!(event, Some(FeedEvent::Reset { .. })), "{event:?}");
    match next(&mut feed).await {
        Some(Err(FeedError::Databento(msg))) => {
            assert!(
                msg.contains("gave up") && msg.contains("3 attempts"),
                "{msg}"
            )
        }
        other => panic!("expected giving up, got {other:?}"),
    }
    assert!(next(&mut feed).await.is_none());
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[test]
fn no_key_says_how_to_set_one() {
    let err = ApiKey::from_lookup(|_| None).unwrap_err();
    assert!(matches!(err, FeedError::NoApiKey));
    let msg = err.to_string();
    assert!(msg.contains("DATABENTO_API_KEY"), "{msg}");
    // The older variable is accepted.
    let key = ApiKey::from_lookup(|name| (name == "DBN_KEY").then(|| KEY.to_owned())).unwrap();
    assert_eq!(key.origin(), "DBN_KEY");
}

#[test]
fn the_key_is_never_printed() {
    let config = LiveConfig::new(key(), "GLBX.MDP3", vec!["CLX5".into()]);
    let shown = format!("{config:?} {:?} {}", config.key, config.key);
    assert!(!shown.contains(KEY), "{shown}");
    assert!(!shown.contains(&KEY[KEY.len() - 5..]), "{shown}");
}
