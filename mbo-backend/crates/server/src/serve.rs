//! `mbo serve` (and `mbo` alone): one shared exact market over HTTP and SSE.
//!
//! Settings are layered: built-in defaults < `.env` (loaded by `main` before parsing, never
//! overriding the environment) < `MBO_*` environment variables < flags. `.env.example` lists
//! every variable. The source is `--dbn FILE`, else `--live` (with a Databento key), else
//! the built-in simulator, so a bare `mbo` on a fresh machine serves a moving market.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use mbo_api::config::Secret;
use mbo_api::storage::StorageConfig;
use mbo_api::venues::VenueConfig;
use mbo_api::{Application, ServerConfig};
use mbo_feed::databento::{spawn_live, ApiKey, LiveConfig};
use mbo_feed::replay::open_file_source;
use mbo_feed::{spawn_replay, Feed, SimConfig, Simulator};
use mbo_store::{CheckpointPolicy, RecorderOptions, Store};
use mbo_venues::{SymbolMap, VenueKind};

use crate::cli::{parse_duration, PaceMode};

/// Simulated time played before the server opens (see `open_feed`).
const SIM_WARM_UP: Duration = Duration::from_secs(600);

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// What this process is in a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Role {
    /// Everything in one process; NATS is neither needed nor contacted (the default).
    All,
    /// The feeds, the exact books and storage, published to NATS JetStream for gateways.
    Ingest,
    /// No feed and no storage: follows an ingest over NATS and serves the same API.
    Gateway,
}

/// `--nats-storage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NatsStorage {
    /// In the NATS server's memory.
    Memory,
    /// On the NATS server's disk.
    File,
}

/// `mbo serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Role in a scale-out deployment: `all` (one process, the default), `ingest` or
    /// `gateway` (both need --nats).
    #[arg(long, env = "MBO_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,
    /// NATS server with JetStream, for --role ingest|gateway (e.g. nats://127.0.0.1:4222).
    #[arg(long = "nats", env = "MBO_NATS_URL", value_name = "URL")]
    pub nats: Option<String>,
    /// An ingest also publishes each event's changed levels and trades per instrument
    /// (`mbo.book.{instrument}`, for L2 consumers of NATS); gateways do not need them.
    #[arg(long, env = "MBO_NATS_BOOK_CHANGES", default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub nats_book_changes: bool,
    /// Where JetStream keeps an ingest's records and book changes: `memory` (no disk write
    /// per message; lost with a NATS restart, after which gateways resynchronise) or `file`.
    #[arg(long, env = "MBO_NATS_STORAGE", value_enum, default_value_t = NatsStorage::Memory)]
    pub nats_storage: NatsStorage,
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "MBO_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Replay this DBN file (`.dbn` or `.dbn.zst`) instead of the simulator.
    #[arg(long, env = "MBO_DBN_FILE", value_name = "FILE")]
    pub dbn: Option<PathBuf>,
    /// Stream Databento live data (needs DATABENTO_API_KEY, --dataset and --symbols).
    #[arg(long, env = "MBO_LIVE", conflicts_with = "dbn")]
    pub live: bool,
    /// Databento dataset for --live.
    #[arg(long, env = "MBO_DATASET", default_value = "GLBX.MDP3")]
    pub dataset: String,
    /// Raw symbols for --live, comma-separated; without --live, the crypto symbols of
    /// --venues (normalized pairs: BTC-USD,ETH-USD).
    #[arg(long, env = "MBO_SYMBOLS", value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Crypto venues to run beside the MBO feed, comma-separated: binance (also Binance US
    /// with --venue-url), binance-futures, bybit, kraken, coinbase.
    #[arg(long, env = "MBO_VENUES", value_delimiter = ',', value_parser = parse_venue)]
    pub venues: Vec<VenueKind>,
    /// Crypto symbols for --venues when --symbols holds Databento symbols (with --live);
    /// default: --symbols without --live, else BTC-USD.
    #[arg(long, env = "MBO_VENUE_SYMBOLS", value_delimiter = ',')]
    pub venue_symbols: Vec<String>,
    /// A venue's WebSocket URL (VENUE=URL, repeatable or comma-separated), e.g. a
    /// recording played by `mbo venue-sim`, or Binance US (wss://stream.binance.us:9443/ws).
    #[arg(long, env = "MBO_VENUE_URLS", value_delimiter = ',', value_parser = parse_venue_url)]
    pub venue_url: Vec<(VenueKind, String)>,
    /// A venue's REST base URL for snapshots (VENUE=URL; Binance), e.g. https://api.binance.us.
    #[arg(long, env = "MBO_VENUE_REST_URLS", value_delimiter = ',', value_parser = parse_venue_url)]
    pub venue_rest_url: Vec<(VenueKind, String)>,
    /// Symbol map override (VENUE:SYMBOL=NATIVE, repeatable or comma-separated), e.g.
    /// kraken:BTC-EUR=BTC/EUR. The default map covers BTC, ETH, SOL, XRP, ADA, DOGE, LTC,
    /// DOT and LINK against USD (USDT on Binance and Bybit).
    #[arg(long, env = "MBO_SYMBOL_MAP", value_delimiter = ',', value_parser = parse_symbol_map)]
    pub symbol_map: Vec<(VenueKind, String, String)>,
    /// Book depth subscribed on every venue (default: each venue's own: Kraken 10, Bybit 50,
    /// Binance snapshots 1000).
    #[arg(long, env = "MBO_VENUE_DEPTH", value_parser = clap::value_parser!(u64).range(1..=5000))]
    pub venue_depth: Option<u64>,
    /// Coinbase: the legacy Exchange feed (level2_batch) instead of Advanced Trade.
    #[arg(long, env = "MBO_COINBASE_LEGACY")]
    pub coinbase_legacy: bool,
    /// Keep the venue thread polling instead of sleeping between messages: lower and steadier
    /// receive-to-publish latency for one core kept busy all the time (for a machine with a
    /// core to spare).
    #[arg(long, env = "MBO_VENUE_BUSY_POLL")]
    pub venue_busy_poll: bool,
    /// No MBO feed (no file, simulator or Databento): the crypto venues of --venues only.
    #[arg(long, env = "MBO_NO_MBO", conflicts_with_all = ["dbn", "live"])]
    pub no_mbo: bool,
    /// Simulator: number of instruments (CL, ES, NQ, GC, ZN, 6E, NG, SI, ...).
    #[arg(long, env = "MBO_SIM_INSTRUMENTS", default_value_t = 3,
          value_parser = clap::value_parser!(u32).range(1..=64))]
    pub sim_instruments: u32,
    /// Simulator: activity multiplier (events per second relative to the calibration
    /// capture, a quiet CME session: 10 gives a busy market at realtime speed).
    #[arg(long, env = "MBO_SIM_ACTIVITY", default_value_t = 10.0)]
    pub sim_activity: f64,
    /// Simulator: seed (the same seed gives the same market).
    #[arg(long, env = "MBO_SIM_SEED", default_value_t = 1)]
    pub sim_seed: u64,
    /// Pacing: realtime (recorded gaps / --speed), rate (--rate records/s) or max.
    #[arg(long, env = "MBO_PACE", value_enum, default_value_t = PaceMode::Realtime)]
    pub pace: PaceMode,
    /// Records per second with --pace rate.
    #[arg(long, env = "MBO_RATE", default_value_t = 100_000)]
    pub rate: u64,
    /// Speed factor with --pace realtime (0.1 to 1000).
    #[arg(long, env = "MBO_SPEED", default_value_t = 1.0)]
    pub speed: f64,
    /// With --pace realtime, the longest wait between two records (e.g. 2s).
    #[arg(long, env = "MBO_MAX_GAP", value_parser = parse_duration)]
    pub max_gap: Option<Duration>,
    /// Start again at the end of the file.
    #[arg(long = "loop", env = "MBO_LOOP")]
    pub looping: bool,
    /// Start paused (play from the API or the dashboard).
    #[arg(long, env = "MBO_START_PAUSED")]
    pub start_paused: bool,
    /// Concurrent SSE streams at most; more get 503 with Retry-After.
    #[arg(long, env = "MBO_MAX_STREAMS", default_value_t = 10_000)]
    pub max_streams: usize,
    /// Bearer token required for replay control; without it, only loopback clients control.
    #[arg(long, env = "MBO_CONTROL_TOKEN", hide_env_values = true)]
    pub control_token: Option<String>,
    /// Dashboard build to serve at / (used when it holds an index.html).
    #[arg(long, env = "MBO_STATIC_DIR", default_value = "mbo-frontend/build")]
    pub static_dir: PathBuf,
    /// Longest wait for open connections at shutdown.
    #[arg(long, env = "MBO_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// Store every record, trades and book checkpoints in this SQLite file (created if
    /// missing; `make run` uses data/mbo.db).
    #[arg(long, env = "MBO_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Turn storage off even when MBO_DB is set.
    #[arg(long, env = "MBO_NO_DB")]
    pub no_db: bool,
    /// Continue the replay where the stored data of this source ends (needs --db).
    #[arg(long, env = "MBO_RESUME")]
    pub resume: bool,
    /// Storage: what to keep: an age (7d, 12h), a row budget (10M), both (7d,10M) or off.
    /// Old data is deleted in whole ranges, at checkpoint rounds, by a background thread.
    #[arg(long, env = "MBO_RETENTION", default_value = "off")]
    pub retention: mbo_store::RetentionPolicy,
    /// Storage: how often retention runs.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub retention_every: Duration,
    /// Storage: a checkpoint round of every book at least every N records.
    #[arg(long, env = "MBO_CHECKPOINT_EVENTS", default_value_t = 50_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub checkpoint_events: u64,
    /// Storage: a checkpoint round at least this often (e.g. 60s) on a quiet feed.
    #[arg(long, env = "MBO_CHECKPOINT_INTERVAL", default_value = "60s", value_parser = parse_duration)]
    pub checkpoint_interval: Duration,
    /// Log format.
    #[arg(long, env = "MBO_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax, e.g. `info,mbo_api=debug`).
    #[arg(long, env = "MBO_LOG", default_value = "info")]
    pub log: String,
}

fn parse_venue(s: &str) -> Result<VenueKind, String> {
    s.trim()
        .parse()
        .map_err(|e: mbo_venues::UnknownVenue| e.to_string())
}

/// `VENUE=URL`.
fn parse_venue_url(s: &str) -> Result<(VenueKind, String), String> {
    let (v, url) = s
        .split_once('=')
        .ok_or_else(|| format!("expected VENUE=URL, got {s:?}"))?;
    let url = url.trim();
    if !(url.starts_with("ws://")
        || url.starts_with("wss://")
        || url.starts_with("http://")
        || url.starts_with("https://"))
    {
        return Err(format!(
            "{url:?} is not a ws://, wss://, http:// or https:// URL"
        ));
    }
    Ok((parse_venue(v)?, url.to_owned()))
}

/// `VENUE:SYMBOL=NATIVE`.
fn parse_symbol_map(s: &str) -> Result<(VenueKind, String, String), String> {
    let bad = || format!("expected VENUE:SYMBOL=NATIVE (e.g. kraken:BTC-EUR=BTC/EUR), got {s:?}");
    let (v, rest) = s.split_once(':').ok_or_else(bad)?;
    let (normal, native) = rest.split_once('=').ok_or_else(bad)?;
    let (normal, native) = (normal.trim(), native.trim());
    if normal.is_empty() || native.is_empty() {
        return Err(bad());
    }
    Ok((parse_venue(v)?, normal.to_owned(), native.to_owned()))
}

/// The venues' settings (`None` without --venues).
fn venue_config(args: &ServeArgs) -> Option<VenueConfig> {
    if args.venues.is_empty() {
        return None;
    }
    let symbols = if !args.venue_symbols.is_empty() {
        args.venue_symbols.clone()
    } else if !args.live && !args.symbols.is_empty() {
        args.symbols.clone()
    } else {
        vec!["BTC-USD".to_owned()]
    };
    let mut symbol_map = SymbolMap::default();
    for (venue, normal, native) in &args.symbol_map {
        symbol_map.insert(venue.name(), normal, native);
    }
    Some(VenueConfig {
        venues: args.venues.clone(),
        symbols: symbols
            .iter()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        symbol_map,
        ws_urls: args.venue_url.clone(),
        rest_urls: args.venue_rest_url.clone(),
        depth: args.venue_depth.and_then(|d| usize::try_from(d).ok()),
        coinbase_legacy: args.coinbase_legacy,
        busy_poll: args.venue_busy_poll,
    })
}

impl ServeArgs {
    fn replay_options(&self) -> Result<mbo_feed::ReplayOptions> {
        let pace = match self.pace {
            PaceMode::Max => mbo_feed::Pace::Max,
            PaceMode::Rate => mbo_feed::Pace::Rate(self.rate),
            PaceMode::Realtime => mbo_feed::Pace::Realtime { speed: self.speed },
        };
        pace.validate().context("pacing")?;
        Ok(mbo_feed::ReplayOptions {
            pace,
            max_gap: self.max_gap,
            looping: self.looping,
            start_paused: self.start_paused,
            ..mbo_feed::ReplayOptions::default()
        })
    }
}

/// Runs the server until SIGINT or SIGTERM.
///
/// # Errors
/// A bad setting, an unreadable file, a taken port, a missing key for `--live`.
pub fn run(args: &ServeArgs) -> Result<()> {
    init_logging(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("mbo")
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(args.clone()))
}

fn init_logging(args: &ServeArgs) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .with_context(|| format!("bad log filter {:?}", args.log))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let result = match args.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
    // Already initialised (tests calling twice) is not an error worth stopping for.
    let _ = result;
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<()> {
    let nats = match (args.role, args.nats.as_deref().filter(|u| !u.trim().is_empty())) {
        (Role::All, Some(_)) => {
            tracing::warn!("--nats (MBO_NATS_URL) is ignored with --role all: NATS is not contacted");
            None
        }
        (Role::All, None) => None,
        (role, None) => bail!(
            "--role {} needs a NATS server: give --nats URL (or MBO_NATS_URL), e.g. nats://127.0.0.1:4222",
            role.to_possible_value().map_or("?".into(), |v| v.get_name().to_owned())
        ),
        (_, Some(url)) => Some(url.to_owned()),
    };
    if let (Role::Gateway, Some(url)) = (args.role, &nats) {
        return serve_gateway(args.clone(), url).await;
    }
    let started = std::time::Instant::now();
    if args.no_mbo && args.venues.is_empty() {
        bail!("--no-mbo needs --venues (e.g. --venues kraken,coinbase --symbols BTC-USD): nothing would be served");
    }
    if args.resume && args.db_path().is_none() {
        bail!("--resume needs storage: give --db PATH (or MBO_DB) and no --no-db");
    }
    let sim_start = sim_start_ts();
    let plan = match args.db_path() {
        Some(path) => {
            let args = args.clone();
            let path = path.to_owned();
            Some(
                tokio::task::spawn_blocking(move || plan_storage(&args, &path, sim_start))
                    .await
                    .context("opening the database")??,
            )
        }
        None => None,
    };
    // The feed and the engine get a thread of their own (see mbo_api::app).
    let ingest = mbo_api::IngestRuntime::start().context("starting the ingest thread")?;
    let (feed, description) = {
        let args = args.clone();
        let sim_start = plan.as_ref().map_or(sim_start, |p| p.sim_start);
        let resume_ts = plan.as_ref().and_then(|p| p.resume_ts);
        ingest
            .handle()
            .spawn(async move { open_feed(&args, sim_start, resume_ts).await })
            .await
            .context("opening the feed")??
    };
    if let Some(plan) = &plan {
        let resumed = plan
            .resume_ts
            .map_or_else(String::new, |ts| format!(", resuming at ts_recv {ts}"));
        println!(
            "mbo: storing to {} (session {}, {} records stored{resumed})",
            plan.config.path.display(),
            plan.config.session.0,
            plan.config.stored_through.map_or(0, |i| i + 1),
        );
    }
    let plan_path = plan
        .as_ref()
        .map(|p| (p.config.path.clone(), p.config.session));
    let config = ServerConfig {
        storage: plan.as_ref().map(|p| p.config.clone()),
        venues: venue_config(&args),
        ..http_config(&args)
    };
    let cluster_metrics = mbo_cluster::metrics::ClusterMetrics::new().context("cluster metrics")?;
    let prepared = match &nats {
        Some(url) => {
            println!("mbo: ingest: connecting to NATS at {url}");
            Some(
                mbo_cluster::ingest::prepare(
                    url,
                    cluster_metrics.clone(),
                    mbo_cluster::ingest::IngestOptions {
                        book_changes: args.nats_book_changes,
                        storage: match args.nats_storage {
                            NatsStorage::Memory => mbo_cluster::wire::RecordsStorage::Memory,
                            NatsStorage::File => mbo_cluster::wire::RecordsStorage::File,
                        },
                    },
                )
                .await
                .context("preparing the NATS JetStream streams")?,
            )
        }
        None => None,
    };
    let hooks = mbo_api::Hooks {
        epoch: prepared.as_ref().map_or(0, |p| p.epoch),
        tap: prepared.as_ref().map(|p| p.tap.clone()),
        forward: None,
        venue_hub: None,
    };
    let app = Application::build_with(config, feed, description.clone(), ingest.handle(), hooks)
        .await
        .context("starting the server")?;
    let cluster_stop = tokio_util::sync::CancellationToken::new();
    // Registered in every role (zero where unused), so dashboards and alerts need no
    // role-specific queries.
    cluster_metrics.init(if prepared.is_some() { "ingest" } else { "all" });
    cluster_metrics
        .register(app.state().metrics.registry())
        .context("registering the cluster metrics")?;
    let publisher = match prepared {
        Some(prepared) => {
            println!(
                "mbo: ingest: publishing to NATS JetStream from epoch {}",
                prepared.epoch
            );
            Some(prepared.start(
                app.state().hub.clone(),
                app.state().venues.clone(),
                app.router(),
                cluster_stop.clone(),
            ))
        }
        None => None,
    };
    let url = display_url(app.addr());
    println!("mbo: listening on {url} ({description})");
    tracing::info!(%url, source = %description, "listening");
    let retention = match (&plan_path, args.retention.is_off()) {
        (Some(path), false) => Some(start_retention(
            path,
            &args.retention,
            args.retention_every,
            &app,
        )?),
        _ => None,
    };
    announce_ready(app.state().hub.clone(), url, started);
    app.run_until_stopped(stop_signal())
        .await
        .context("serving")?;
    if let Some(publisher) = publisher {
        // The engine has stopped: the publisher drains what it handed over and waits for
        // the acks, for a bounded time (NATS may be the reason we are stopping).
        if tokio::time::timeout(Duration::from_secs(10), publisher)
            .await
            .is_err()
        {
            tracing::warn!("NATS publisher did not finish within 10 s");
        }
    }
    cluster_stop.cancel();
    // Joins the ingest thread; its tasks end with it (the engine has flushed storage).
    tokio::task::spawn_blocking(move || {
        drop(ingest);
        if let Some(task) = retention {
            task.stop();
        }
        if let Some((path, session)) = plan_path {
            let ended = Store::open(&path).and_then(|s| s.end_session(session));
            if let Err(e) = ended {
                tracing::warn!(error = %e, "could not mark the feed session ended");
            }
        }
    })
    .await
    .context("stopping the ingest thread")?;
    println!("mbo: stopped");
    Ok(())
}

/// The HTTP settings every role shares (no storage, no venues).
fn http_config(args: &ServeArgs) -> ServerConfig {
    ServerConfig {
        bind: args.bind,
        max_streams: args.max_streams,
        control_token: args
            .control_token
            .as_deref()
            .filter(|t| !t.trim().is_empty())
            .map(Secret::new),
        static_dir: Some(args.static_dir.clone()),
        shutdown_timeout: args.shutdown_timeout,
        ..ServerConfig::default()
    }
}

/// Prints the ready line once the hub is ready (or why it failed).
fn announce_ready(
    hub: std::sync::Arc<mbo_api::hub::Hub>,
    url: String,
    started: std::time::Instant,
) {
    tokio::spawn(async move {
        // Ready comes within milliseconds on a file or the simulator; a server started
        // paused may wait indefinitely, so the polling backs off.
        let mut wait = Duration::from_millis(5);
        loop {
            match hub.health() {
                mbo_api::hub::Health::Ready => {
                    println!(
                        "mbo: ready in {} ms: open {url}",
                        started.elapsed().as_millis()
                    );
                    return;
                }
                mbo_api::hub::Health::Failed(why) => {
                    eprintln!("mbo: the feed failed: {why}");
                    return;
                }
                mbo_api::hub::Health::Starting | mbo_api::hub::Health::Stale(_) => {
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_millis(250));
                }
            }
        }
    });
}

/// `--role gateway`: no feed, no storage; the ingest's books over NATS, the same API.
async fn serve_gateway(args: ServeArgs, url: &str) -> Result<()> {
    let started = std::time::Instant::now();
    if !args.venues.is_empty() {
        bail!("--role gateway has no venue connections: give --venues to the ingest (its books are mirrored)");
    }
    if args.dbn.is_some() || args.live || args.resume {
        bail!("--role gateway has no feed of its own: give --dbn/--live/--resume to the ingest");
    }
    let ingest = mbo_api::IngestRuntime::start().context("starting the ingest thread")?;
    let metrics = mbo_cluster::metrics::ClusterMetrics::new().context("cluster metrics")?;
    let stop = tokio_util::sync::CancellationToken::new();
    println!("mbo: gateway: following the ingest over NATS at {url}");
    let engine_runtime = ingest.handle();
    let start = tokio::select! {
        s = mbo_cluster::gateway::start(url, metrics.clone(), &engine_runtime, stop.clone()) => {
            s.context("connecting to the ingest over NATS")?
        }
        () = stop_signal() => {
            println!("mbo: stopped before the ingest was found");
            return Ok(());
        }
    };
    // No storage and no venue connections of its own.
    let config = http_config(&args);
    // The ingest's description: every replica answers alike.
    let description = start.description.clone();
    let hooks = mbo_api::Hooks {
        forward: Some(start.forward),
        venue_hub: start.venue_hub,
        ..mbo_api::Hooks::default()
    };
    let app = Application::build_with(
        config,
        start.feed,
        description.clone(),
        ingest.handle(),
        hooks,
    )
    .await
    .context("starting the server")?;
    metrics.init("gateway");
    metrics
        .register(app.state().metrics.registry())
        .context("registering the cluster metrics")?;
    start.link.attach(app.state().hub.clone());
    let url = display_url(app.addr());
    println!("mbo: listening on {url} ({description}, gateway)");
    tracing::info!(%url, source = %description, role = "gateway", "listening");
    announce_ready(app.state().hub.clone(), url, started);
    app.run_until_stopped(stop_signal())
        .await
        .context("serving")?;
    stop.cancel();
    tokio::task::spawn_blocking(move || drop(ingest))
        .await
        .context("stopping the ingest thread")?;
    println!("mbo: stopped");
    Ok(())
}

/// Starts the retention thread: a pass now, then every `every`; what it deletes
/// is counted in `mbo_storage_retention_deleted_total`.
fn start_retention(
    (path, _): &(PathBuf, mbo_store::SessionId),
    policy: &mbo_store::RetentionPolicy,
    every: Duration,
    app: &Application,
) -> Result<mbo_store::RetentionTask> {
    let metrics = app.state().metrics.clone();
    let observer: mbo_store::RetentionObserver = Box::new(move |pass| match pass {
        Ok(d) => {
            let deleted = metrics.storage_retention_deleted.clone();
            for (table, n) in [
                ("events", d.events),
                ("trades", d.trades),
                ("checkpoints", d.checkpoints),
            ] {
                if n > 0 {
                    deleted.with_label_values(&[table]).inc_by(n);
                }
            }
            if !d.is_empty() {
                tracing::info!(
                    events = d.events,
                    trades = d.trades,
                    checkpoints = d.checkpoints,
                    sessions = d.sessions,
                    "retention deleted old data"
                );
            }
        }
        Err(e) => {
            metrics.storage_errors.inc();
            tracing::error!(error = %e, "retention pass failed");
        }
    });
    tracing::info!(policy = %policy, "retention on");
    mbo_store::spawn_retention(path, *policy, every, observer).context("starting retention")
}

/// The URL people should open: a wildcard bind is reachable on loopback.
fn display_url(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => "127.0.0.1".to_owned(),
            SocketAddr::V6(_) => "[::1]".to_owned(),
        }
    } else if addr.is_ipv6() {
        format!("[{}]", addr.ip())
    } else {
        addr.ip().to_string()
    };
    format!("http://{ip}:{}/", addr.port())
}

/// What storage will do, decided before the feed starts.
struct StoragePlan {
    config: StorageConfig,
    /// Seek here once the feed is open (`--resume` with data stored).
    resume_ts: Option<u64>,
    /// The simulator's start (a resumed simulator continues its stored run).
    sim_start: u64,
}

impl ServeArgs {
    /// The database, unless storage is off.
    fn db_path(&self) -> Option<&std::path::Path> {
        // An empty MBO_DB means "no database" (SQLite would open a temporary one).
        self.db
            .as_deref()
            // Storage holds the MBO feed: without one there is nothing to store.
            .filter(|p| !self.no_db && !self.no_mbo && !p.as_os_str().is_empty())
    }

    /// The session key prefix of this simulator configuration (its start time follows).
    fn sim_key_prefix(&self) -> String {
        format!(
            "sim:seed:{}:instruments:{}:activity:{}:start:",
            self.sim_seed, self.sim_instruments, self.sim_activity
        )
    }
}

/// The simulated market opened ten minutes ago (see `open_feed`).
fn sim_start_ts() -> u64 {
    mbo_api::engine::unix_ns().saturating_sub(SIM_WARM_UP.as_nanos() as u64)
}

/// Opens (creating) the database and picks the feed session: a file's content hash, a
/// simulator run (seed, settings and start time; `--resume` continues the latest run), a
/// live session. Blocking (hashes the file).
fn plan_storage(args: &ServeArgs, path: &std::path::Path, sim_start: u64) -> Result<StoragePlan> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let store =
        Store::open(path).with_context(|| format!("opening the database {}", path.display()))?;
    let mut sim_start = sim_start;
    let (source, key, dataset) = if let Some(file) = &args.dbn {
        let key = mbo_store::file_source_key(file)
            .with_context(|| format!("hashing {}", file.display()))?;
        ("file", key, None)
    } else if args.live {
        let key = format!(
            "live:{}:{}:start:{}",
            args.dataset,
            args.symbols.join(","),
            mbo_api::engine::unix_ns()
        );
        ("live", key, Some(args.dataset.clone()))
    } else {
        let prefix = args.sim_key_prefix();
        if args.resume {
            if let Some((_, key)) = store.latest_session_with_prefix(&prefix)? {
                if let Some(ts) = key.get(prefix.len()..).and_then(|t| t.parse().ok()) {
                    sim_start = ts;
                }
            }
        }
        (
            "simulator",
            format!("{prefix}{sim_start}"),
            Some("SIM".to_owned()),
        )
    };
    let session = store.session(source, &key, dataset.as_deref())?;
    store.reopen_session(session)?;
    let stored_through = store.last_index(session)?;
    let last_round = store.last_checkpoint(session)?;
    let resume_ts = match (args.resume, stored_through) {
        (true, Some(i)) => store.event_ts(session, i)?,
        _ => None,
    };
    Ok(StoragePlan {
        config: StorageConfig {
            path: path.to_owned(),
            session,
            stored_through,
            last_round,
            recorder: RecorderOptions {
                checkpoints: CheckpointPolicy {
                    every_events: args.checkpoint_events,
                    every: args.checkpoint_interval,
                },
                ..RecorderOptions::default()
            },
        },
        resume_ts,
        sim_start,
    })
}

async fn open_feed(
    args: &ServeArgs,
    sim_start: u64,
    resume_ts: Option<u64>,
) -> Result<(Feed, String)> {
    if args.no_mbo {
        return Ok((Feed::idle(), "no MBO feed (crypto venues only)".to_owned()));
    }
    if let Some(path) = &args.dbn {
        let options = args.replay_options()?;
        let p = path.clone();
        let (source, metadata) = tokio::task::spawn_blocking(move || open_file_source(&p))
            .await
            .context("reading the DBN file")??;
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let feed = spawn_replay(Box::new(source), metadata, options);
        if let (Some(ts), Some(control)) = (resume_ts, &feed.control) {
            control
                .send(mbo_feed::ReplayCommand::Seek(ts))
                .await
                .context("resuming the replay")?;
        }
        return Ok((feed, name));
    }
    if args.live {
        if args.symbols.is_empty() {
            bail!("--live needs --symbols (or MBO_SYMBOLS), e.g. --symbols CLZ5");
        }
        let key = ApiKey::from_env()?;
        let config = LiveConfig::new(key, args.dataset.clone(), args.symbols.clone());
        let feed = spawn_live(config)
            .await
            .context("connecting to Databento live")?;
        return Ok((
            feed,
            format!("{} live {}", args.dataset, args.symbols.join(",")),
        ));
    }
    let mut config = SimConfig::new(args.sim_seed, args.sim_instruments as usize);
    if !(args.sim_activity.is_finite() && args.sim_activity > 0.0) {
        bail!("--sim-activity must be a positive number");
    }
    for inst in &mut config.instruments {
        inst.activity *= args.sim_activity;
    }
    // The simulated market opened ten minutes ago and the replay seeks to now: the books are
    // already built when the first client arrives (the minutes are fast-forwarded in
    // milliseconds), and the clock then reads like a live market's. A resumed run seeks to
    // where its stored data ends instead.
    config.start_ts = sim_start;
    let sim = Simulator::new(config)?;
    let metadata = sim.metadata();
    let options = args.replay_options()?;
    let feed = spawn_replay(Box::new(sim), metadata, options);
    if let Some(control) = &feed.control {
        let target = resume_ts.unwrap_or_else(|| sim_start + SIM_WARM_UP.as_nanos() as u64);
        control
            .send(mbo_feed::ReplayCommand::Seek(target))
            .await
            .context("warming up the simulator")?;
    }
    Ok((
        feed,
        format!(
            "simulator, seed {}, {} instruments, activity ×{}",
            args.sim_seed, args.sim_instruments, args.sim_activity
        ),
    ))
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
