//! A live MBO subscription as a [`Feed`].
//!
//! [`spawn_live`] opens the first session itself — connect, CRAM authentication, an MBO
//! subscription (with a snapshot when [`LiveConfig::snapshot`] is set), start — so a bad key,
//! an unknown dataset or an unreachable gateway is reported at once, as an error, instead of
//! after a feed was handed out. It then waits briefly for the session's symbol mappings (the
//! gateway sends them before any data) to fill [`FeedMetadata::symbols`], and leaves the rest
//! to a Tokio task that forwards MBO records in [`FeedEvent::Records`] batches.
//!
//! When a session ends (the gateway closes the connection, a read fails, no data or heartbeat
//! arrives in time), the task sends [`FeedEvent::Reset`] with
//! [`ResetReason::Reconnect`] at once — the books are stale from that moment and must be
//! cleared — then reconnects with exponential backoff and subscribes again with a snapshot, so
//! the books are rebuilt from the new session's records; stream indices keep counting across
//! sessions. A rejected key ends the feed with [`FeedError::Auth`] (never a retry loop);
//! records are never continued silently across a gap.

use std::time::{Duration, Instant};

use ::databento::dbn::{
    ErrorMsg, MboMsg, RecordRef, SType, Schema, SymbolMappingMsg, VersionUpgradePolicy,
};
use ::databento::live::Subscription;
use ::databento::LiveClient;
use tokio::sync::mpsc;

use super::key::ApiKey;
use super::map_error;
use crate::source::{
    Feed, FeedError, FeedEvent, FeedMetadata, ResetReason, Result, SourceKind, SymbolInfo,
};

/// Waits between reconnect attempts: `initial`, doubling up to `max`, each shortened at
/// random by up to `jitter` of itself (so many clients do not reconnect in lockstep).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    /// Wait before the first attempt.
    pub initial: Duration,
    /// Longest wait. A session that stayed up at least this long resets the sequence.
    pub max: Duration,
    /// Random reduction, as a fraction of the wait (0 = none, 1 = up to all of it).
    pub jitter: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            jitter: 0.25,
        }
    }
}

impl Backoff {
    /// Checks the parameters.
    ///
    /// # Errors
    /// [`FeedError::Options`] for a zero `initial`, `max < initial`, or a jitter outside 0–1.
    pub fn validate(&self) -> Result<()> {
        if self.initial.is_zero() || self.max < self.initial {
            return Err(FeedError::Options(format!(
                "backoff needs 0 < initial <= max, got initial {:?}, max {:?}",
                self.initial, self.max
            )));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(FeedError::Options(format!(
                "backoff jitter must be within 0..=1, got {}",
                self.jitter
            )));
        }
        Ok(())
    }

    /// The wait before attempt `attempt` (0-based), with `unit` a random number in `[0, 1)`.
    pub fn delay(&self, attempt: u32, unit: f64) -> Duration {
        let doubled = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(31)));
        let base = doubled.min(self.max);
        base.mul_f64(1.0 - self.jitter * unit.clamp(0.0, 1.0))
    }
}

/// What to subscribe to, and how to behave.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveConfig {
    /// The API key.
    pub key: ApiKey,
    /// Dataset code, e.g. `GLBX.MDP3`.
    pub dataset: String,
    /// Symbols in the `stype_in` symbology (at least one).
    pub symbols: Vec<String>,
    /// Symbology of `symbols`.
    pub stype_in: SType,
    /// Ask for an MBO snapshot at the start of every session (needed for complete books, and
    /// to rebuild them after a reconnect).
    pub snapshot: bool,
    /// Gateway address (`host:port`) override, for tests; `None` derives it from the dataset.
    pub addr: Option<String>,
    /// Reconnect waits.
    pub backoff: Backoff,
    /// Consecutive failed reconnect attempts before giving up with an error; `None` retries
    /// forever.
    pub max_reconnects: Option<u32>,
    /// Records per [`FeedEvent::Records`] batch at most.
    pub batch_size: usize,
    /// Capacity of the event channel (batches). Bounded: a slow consumer slows the reading.
    pub channel_capacity: usize,
    /// How long [`spawn_live`] waits for the first session's symbol mappings.
    pub mapping_wait: Duration,
}

impl LiveConfig {
    /// A configuration with defaults: raw symbols, snapshots, [`Backoff::default`], unlimited
    /// reconnects, batches of 1024, 64 batches of buffer, 2 s for symbol mappings.
    pub fn new(key: ApiKey, dataset: impl Into<String>, symbols: Vec<String>) -> Self {
        Self {
            key,
            dataset: dataset.into(),
            symbols,
            stype_in: SType::RawSymbol,
            snapshot: true,
            addr: None,
            backoff: Backoff::default(),
            max_reconnects: None,
            batch_size: 1024,
            channel_capacity: 64,
            mapping_wait: Duration::from_secs(2),
        }
    }

    /// Checks the configuration.
    ///
    /// # Errors
    /// [`FeedError::Options`] for an empty dataset or symbol list, a zero batch size or channel
    /// capacity, or an invalid [`Backoff`].
    pub fn validate(&self) -> Result<()> {
        if self.dataset.trim().is_empty() {
            return Err(FeedError::Options("the dataset is empty".into()));
        }
        if self.symbols.is_empty() || self.symbols.iter().any(|s| s.trim().is_empty()) {
            return Err(FeedError::Options(
                "give at least one symbol, none empty".into(),
            ));
        }
        if self.batch_size == 0 || self.channel_capacity == 0 {
            return Err(FeedError::Options(
                "batch size and channel capacity must be at least 1".into(),
            ));
        }
        self.backoff.validate()
    }
}

/// Starts a live MBO feed; see the module docs.
///
/// Must be called within a Tokio runtime (the feed's task is spawned on it).
///
/// # Errors
/// [`FeedError::Options`] for an invalid configuration; [`FeedError::Auth`] when the gateway
/// rejects the key (also sent on the channel, ending the feed, if it happens on a reconnect);
/// [`FeedError::Databento`] when the first session cannot be opened.
pub async fn spawn_live(config: LiveConfig) -> Result<Feed> {
    config.validate()?;
    let mut client = open(&config).await.map_err(map_error)?;
    let (tx, rx) = mpsc::channel(config.channel_capacity);
    let mut pump = Pump::new(tx, config.batch_size);
    let (symbols, closed) = collect_mappings(&mut client, &mut pump, &config).await;
    let metadata = FeedMetadata {
        source: SourceKind::Live,
        dataset: config.dataset.clone(),
        symbols,
        start_ts: None,
        end_ts: None,
        record_count: None,
    };
    tokio::spawn(run(config, pump, client, closed));
    Ok(Feed {
        metadata,
        events: rx,
        control: None,
    })
}

/// Connects, authenticates, subscribes and starts one session.
async fn open(config: &LiveConfig) -> ::databento::Result<LiveClient> {
    let builder = LiveClient::builder();
    let builder = match &config.addr {
        Some(addr) => builder.addr(addr.as_str()).await?,
        None => builder,
    };
    let mut client = builder
        .key(config.key.expose())?
        .dataset(config.dataset.trim())
        .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
        .build()
        .await?;
    let symbols: Vec<String> = config.symbols.iter().map(|s| s.trim().to_owned()).collect();
    client
        .subscribe(
            Subscription::builder()
                .symbols(symbols)
                .schema(Schema::Mbo)
                .stype_in(config.stype_in)
                .use_snapshot(config.snapshot)
                .build(),
        )
        .await?;
    client.start().await?;
    Ok(client)
}

/// Errors that another attempt cannot fix.
fn is_fatal(err: &::databento::Error) -> bool {
    matches!(
        err,
        ::databento::Error::Auth(_) | ::databento::Error::BadArgument { .. }
    )
}

/// Why a session ended, in words for [`ResetReason::Reconnect`].
fn describe(err: &::databento::Error) -> String {
    match err {
        ::databento::Error::HeartbeatTimeout(d) => {
            format!("no data or heartbeat from the gateway for {d} (heartbeat timeout)")
        }
        ::databento::Error::Io(e) => format!("connection error: {e}"),
        other => other.to_string(),
    }
}

/// One record, reduced to what the feed needs.
enum Item {
    Mbo(MboMsg),
    Mapping(SymbolInfo),
    GatewayError(String),
    Other,
}

fn classify(rec: RecordRef<'_>) -> Item {
    if let Some(mbo) = rec.get::<MboMsg>() {
        Item::Mbo(mbo.clone())
    } else if let Some(mapping) = rec.get::<SymbolMappingMsg>() {
        // The output symbol of a live mapping is always the instrument's raw symbol (the input
        // one is what was subscribed, e.g. a parent like `CL.FUT`).
        match mapping.stype_out_symbol() {
            Ok(symbol) => Item::Mapping(SymbolInfo {
                symbol: symbol.to_owned(),
                instrument_id: mapping.hd.instrument_id,
            }),
            Err(_) => Item::Other,
        }
    } else if let Some(err) = rec.get::<ErrorMsg>() {
        Item::GatewayError(err.err().unwrap_or("(unreadable message)").to_owned())
    } else {
        Item::Other
    }
}

/// The sending side: batching and stream indices.
struct Pump {
    tx: mpsc::Sender<Result<FeedEvent>>,
    batch: Vec<MboMsg>,
    batch_size: usize,
    /// Stream index of `batch[0]`, i.e. records sent so far, all sessions together.
    next_index: u64,
    /// The gateway's last error message in this session, told as part of the reset cause.
    last_error: Option<String>,
}

impl Pump {
    fn new(tx: mpsc::Sender<Result<FeedEvent>>, batch_size: usize) -> Self {
        Self {
            tx,
            batch: Vec::with_capacity(batch_size),
            batch_size,
            next_index: 0,
            last_error: None,
        }
    }

    /// Takes one record in. False when the consumer is gone.
    async fn take(&mut self, item: Item) -> bool {
        match item {
            Item::Mbo(mbo) => {
                self.batch.push(mbo);
                if self.batch.len() >= self.batch_size {
                    return self.flush().await;
                }
            }
            Item::GatewayError(msg) => self.last_error = Some(msg),
            Item::Mapping(_) | Item::Other => {}
        }
        true
    }

    /// Sends the pending batch. False when the consumer is gone.
    async fn flush(&mut self) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let records = std::mem::replace(&mut self.batch, Vec::with_capacity(self.batch_size));
        let first_index = self.next_index;
        self.next_index += records.len() as u64;
        self.send(Ok(FeedEvent::Records {
            first_index,
            records,
            catch_up: false,
        }))
        .await
    }

    async fn send(&self, event: Result<FeedEvent>) -> bool {
        self.tx.send(event).await.is_ok()
    }

    fn closed_cause(&self, what: &str) -> String {
        match &self.last_error {
            Some(msg) => format!("{what} after a gateway error: {msg}"),
            None => what.to_owned(),
        }
    }
}

/// Reads the first session's symbol mappings (sent before any data), keeping any MBO record
/// read on the way in the pending batch. Stops at the first MBO record, when every raw symbol
/// is mapped, or after `mapping_wait`. Returns the mappings, and the cause if the session
/// ended meanwhile.
async fn collect_mappings(
    client: &mut LiveClient,
    pump: &mut Pump,
    config: &LiveConfig,
) -> (Vec<SymbolInfo>, Option<String>) {
    let deadline = Instant::now() + config.mapping_wait;
    let mut symbols: Vec<SymbolInfo> = Vec::new();
    loop {
        let mut data_started = false;
        loop {
            let item = match client.try_next_record() {
                Ok(Some(rec)) => classify(rec),
                Ok(None) => break,
                Err(e) => return (symbols, Some(describe(&e))),
            };
            match item {
                Item::Mapping(info) => {
                    if !symbols.contains(&info) {
                        symbols.push(info);
                    }
                }
                Item::Mbo(mbo) => {
                    // Data has started: the streaming loop takes it from here.
                    data_started = true;
                    pump.batch.push(mbo);
                    break;
                }
                Item::GatewayError(msg) => pump.last_error = Some(msg),
                Item::Other => {}
            }
        }
        let all_mapped = config.stype_in == SType::RawSymbol
            && config
                .symbols
                .iter()
                .all(|s| symbols.iter().any(|m| m.symbol == s.trim()));
        let remaining = deadline.saturating_duration_since(Instant::now());
        if data_started || all_mapped || remaining.is_zero() {
            return (symbols, None);
        }
        match tokio::time::timeout(remaining, client.fill_buf()).await {
            Err(_elapsed) => return (symbols, None),
            Ok(Ok(0)) => {
                return (
                    symbols,
                    Some(pump.closed_cause("the gateway closed the connection")),
                )
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return (symbols, Some(describe(&e))),
        }
    }
}

/// How a session's streaming ended.
enum End {
    /// The session is over; the cause, in words.
    Closed(String),
    /// The consumer dropped the feed.
    Stopped,
}

/// Forwards one session's records until it ends.
async fn stream(client: &mut LiveClient, pump: &mut Pump) -> End {
    loop {
        loop {
            let item = match client.try_next_record() {
                Ok(Some(rec)) => classify(rec),
                Ok(None) => break,
                Err(e) => return End::Closed(describe(&e)),
            };
            if !pump.take(item).await {
                return End::Stopped;
            }
        }
        // Nothing buffered: release what we have before waiting on the network.
        if !pump.flush().await {
            return End::Stopped;
        }
        let filled = tokio::select! {
            () = pump.tx.closed() => return End::Stopped,
            filled = client.fill_buf() => filled,
        };
        match filled {
            Ok(0) => return End::Closed(pump.closed_cause("the gateway closed the connection")),
            Ok(_) => {}
            Err(e) => return End::Closed(describe(&e)),
        }
    }
}

/// The feed's task: stream, and on every session end mark the gap and reconnect.
async fn run(config: LiveConfig, mut pump: Pump, mut client: LiveClient, closed: Option<String>) {
    let mut pending_cause = closed;
    let mut opened = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        let cause = match pending_cause.take() {
            Some(cause) => cause,
            None => match stream(&mut client, &mut pump).await {
                End::Stopped => return,
                End::Closed(cause) => cause,
            },
        };
        if opened.elapsed() >= config.backoff.max {
            attempt = 0;
        }
        // The books are stale from now on: say so before anything else.
        if !pump.flush().await {
            return;
        }
        let reset = FeedEvent::Reset {
            reason: ResetReason::Reconnect {
                cause: cause.clone(),
            },
            next_index: pump.next_index,
        };
        if !pump.send(Ok(reset)).await {
            return;
        }
        let mut last_failure = cause;
        client = loop {
            if config.max_reconnects.is_some_and(|max| attempt >= max) {
                let msg = format!(
                    "gave up reconnecting to the live gateway after {attempt} attempts; \
                     last: {last_failure}"
                );
                pump.send(Err(FeedError::Databento(msg))).await;
                return;
            }
            let delay = config.backoff.delay(attempt, rand::random::<f64>());
            attempt = attempt.saturating_add(1);
            let opened_client = tokio::select! {
                () = pump.tx.closed() => return,
                result = async {
                    tokio::time::sleep(delay).await;
                    open(&config).await
                } => result,
            };
            match opened_client {
                Ok(new_client) => break new_client,
                Err(e) if is_fatal(&e) => {
                    pump.send(Err(map_error(e))).await;
                    return;
                }
                Err(e) => last_failure = describe(&e),
            }
        };
        opened = Instant::now();
        pump.last_error = None;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn backoff_doubles_up_to_max() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.0,
        };
        let waits: Vec<u128> = (0..6).map(|a| b.delay(a, 0.5).as_millis()).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(b.delay(u32::MAX, 0.0), Duration::from_secs(1));
    }

    #[test]
    fn jitter_only_shortens() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
            jitter: 0.5,
        };
        assert_eq!(b.delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(b.delay(0, 1.0), Duration::from_millis(50));
        assert_eq!(b.delay(9, 0.5), Duration::from_millis(750));
    }

    #[test]
    fn invalid_backoff_is_refused() {
        let bad = [
            Backoff {
                initial: Duration::ZERO,
                ..Backoff::default()
            },
            Backoff {
                max: Duration::from_millis(1),
                ..Backoff::default()
            },
            Backoff {
                jitter: 1.5,
                ..Backoff::default()
            },
        ];
        for b in bad {
            assert!(matches!(b.validate(), Err(FeedError::Options(_))), "{b:?}");
        }
        assert!(Backoff::default().validate().is_ok());
    }
}
