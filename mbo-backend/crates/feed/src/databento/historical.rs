//! Historical MBO downloads (`timeseries.get_range`) to zstd DBN files, cached locally.
//!
//! [`fetch`] does, in order:
//! 1. look the request up in the cache (`MBO_CACHE_DIR`, else `$XDG_CACHE_HOME/mbo`, else
//!    `~/.cache/mbo`): a hit makes no request at all — not even the cost estimate — and needs
//!    no API key;
//! 2. ask Databento for the cost (`metadata.get_cost`) and refuse, writing nothing, when it is
//!    above the limit and the request was not confirmed;
//! 3. stream the records into a temporary file beside the cache entry, with a progress bar on
//!    standard error (time covered / time requested), then fsync and rename it into place, so
//!    a cut download never leaves a cache entry behind;
//! 4. copy the entry to `out` when asked (again temp + rename).
//!
//! The cache key is a SHA-256 over everything that selects the data: dataset, schema (`mbo`),
//! input symbology, the sorted symbols, start and end (ns), and the file format version.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ::databento::dbn::decode::DbnMetadata;
use ::databento::dbn::encode::{AsyncDbnEncoder, AsyncEncodeRecordRef};
use ::databento::dbn::{SType, Schema, VersionUpgradePolicy};
use ::databento::historical::metadata::GetCostParams;
use ::databento::historical::timeseries::GetRangeParams;
use ::databento::historical::DateTimeRange;
use ::databento::HistoricalClient;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};
use tokio::io::AsyncWriteExt;

use super::key::ApiKey;
use super::{install_crypto_provider, map_error};
use crate::source::{FeedError, Result};

/// Cost above which a request must be confirmed, by default (US dollars).
pub const DEFAULT_MAX_COST_USD: f64 = 5.0;

/// Environment variable naming the cache directory.
pub const CACHE_DIR_VAR: &str = "MBO_CACHE_DIR";

/// Bumped when the cached files' format changes (e.g. another DBN upgrade policy).
const CACHE_FORMAT: &str = "mbo-cache-v1 dbn-v3 zstd";

/// Records between two progress bar updates.
const PROGRESS_EVERY: u64 = 4096;

/// What to download: MBO records of some symbols over a time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Dataset code, e.g. `GLBX.MDP3`.
    pub dataset: String,
    /// Symbols, in the `stype_in` symbology (at least one).
    pub symbols: Vec<String>,
    /// Symbology of `symbols` (`raw_symbol`, `parent`, `continuous`, `instrument_id`).
    pub stype_in: SType,
    /// Inclusive start, UNIX nanoseconds (filters on `ts_recv`).
    pub start: u64,
    /// Exclusive end, UNIX nanoseconds.
    pub end: u64,
}

impl FetchRequest {
    /// Checks the request is well formed.
    ///
    /// # Errors
    /// [`FeedError::Options`] for an empty dataset or symbol, no symbols, or `start >= end`.
    pub fn validate(&self) -> Result<()> {
        if self.dataset.trim().is_empty() {
            return Err(FeedError::Options("the dataset is empty".into()));
        }
        if self.symbols.is_empty() || self.symbols.iter().any(|s| s.trim().is_empty()) {
            return Err(FeedError::Options(
                "give at least one symbol, none empty".into(),
            ));
        }
        if self.start >= self.end {
            return Err(FeedError::Options(format!(
                "start ({}) must be before end ({})",
                fmt_ns(self.start),
                fmt_ns(self.end)
            )));
        }
        Ok(())
    }

    /// The cache key: hex SHA-256 (128 bits) of the normalized request. Symbol order and
    /// repetitions do not matter.
    pub fn cache_key(&self) -> String {
        let mut symbols: Vec<&str> = self.symbols.iter().map(|s| s.trim()).collect();
        symbols.sort_unstable();
        symbols.dedup();
        let canonical = format!(
            "{CACHE_FORMAT}\ndataset={}\nschema={}\nstype_in={}\nsymbols={}\nstart={}\nend={}\n",
            self.dataset.trim(),
            Schema::Mbo,
            self.stype_in,
            symbols.join(","),
            self.start,
            self.end
        );
        let digest = Sha256::digest(canonical.as_bytes());
        digest[..16].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// The cache entry's file name: `DATASET-mbo-KEY.dbn.zst`.
    pub fn cache_file_name(&self) -> String {
        let dataset: String = self
            .dataset
            .trim()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{dataset}-mbo-{}.dbn.zst", self.cache_key())
    }

    fn symbols(&self) -> Vec<String> {
        self.symbols.iter().map(|s| s.trim().to_owned()).collect()
    }

    fn range(&self) -> Result<DateTimeRange> {
        DateTimeRange::try_from((self.start, self.end)).map_err(map_error)
    }
}

/// How to fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOptions {
    /// The API key; `None` reads it from the environment, only when a request is needed (a
    /// cache hit needs no key).
    pub key: Option<ApiKey>,
    /// Requests estimated above this cost (US dollars) are refused unless `confirmed`.
    pub max_cost_usd: f64,
    /// The user accepted the cost, whatever it is (`--yes`).
    pub confirmed: bool,
    /// Also write the data here (zstd DBN), atomically.
    pub out: Option<PathBuf>,
    /// Cache directory; `None` uses [`default_cache_dir`].
    pub cache_dir: Option<PathBuf>,
    /// Historical API base URL override (tests); `None` is Databento's gateway.
    pub base_url: Option<String>,
    /// Show a progress bar on standard error (never drawn when it is not a terminal).
    pub progress: bool,
}

impl Default for FetchOptions {
    fn default() -> Self {
        Self {
            key: None,
            max_cost_usd: DEFAULT_MAX_COST_USD,
            confirmed: false,
            out: None,
            cache_dir: None,
            base_url: None,
            progress: true,
        }
    }
}

/// What [`fetch`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchOutcome {
    /// The file to use: `out` when given, else the cache entry. zstd-compressed DBN (v3).
    pub path: PathBuf,
    /// The cache entry.
    pub cache_path: PathBuf,
    /// True when served from the cache (no request was made).
    pub from_cache: bool,
    /// Databento's cost estimate, US dollars (`None` on a cache hit).
    pub cost_usd: Option<f64>,
    /// Records downloaded (`None` on a cache hit).
    pub records: Option<u64>,
    /// Size of `path`, bytes.
    pub bytes: u64,
}

/// The cache directory: `MBO_CACHE_DIR`, else `$XDG_CACHE_HOME/mbo`, else `~/.cache/mbo`.
///
/// # Errors
/// [`FeedError::Options`] when none of `MBO_CACHE_DIR`, `XDG_CACHE_HOME` and `HOME` is set.
pub fn default_cache_dir() -> Result<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var(CACHE_DIR_VAR) {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = var("XDG_CACHE_HOME") {
        return Ok(PathBuf::from(dir).join("mbo"));
    }
    if let Some(home) = var("HOME") {
        return Ok(PathBuf::from(home).join(".cache").join("mbo"));
    }
    Err(FeedError::Options(format!(
        "no cache directory: set {CACHE_DIR_VAR}"
    )))
}

/// Downloads `request` (or takes it from the cache); see the module docs for the steps.
///
/// # Errors
/// [`FeedError::Options`] for a malformed request or limit; [`FeedError::NoApiKey`] when a
/// request is needed and no key is configured; [`FeedError::Auth`] when Databento rejects the
/// key; [`FeedError::CostAboveLimit`] when the estimate is above the limit and not confirmed
/// (nothing is written); [`FeedError::Databento`] for other API or transfer failures;
/// [`FeedError::Io`] for cache and output files. A failed download leaves no cache entry and
/// a failed copy no `out` file (both are written to a temporary file, then renamed).
pub async fn fetch(request: &FetchRequest, options: &FetchOptions) -> Result<FetchOutcome> {
    request.validate()?;
    if !options.max_cost_usd.is_finite() || options.max_cost_usd < 0.0 {
        return Err(FeedError::Options(format!(
            "the cost limit must be a non-negative amount, got {}",
            options.max_cost_usd
        )));
    }
    let dir = match &options.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir()?,
    };
    let cache_path = dir.join(request.cache_file_name());

    let hit = tokio::fs::metadata(&cache_path)
        .await
        .is_ok_and(|m| m.is_file());
    let (cost_usd, records) = if hit {
        (None, None)
    } else {
        let key = match &options.key {
            Some(key) => key.clone(),
            None => ApiKey::from_env()?,
        };
        let mut client = client(&key, options.base_url.as_deref())?;
        let cost = estimate(&mut client, request).await?;
        if cost > options.max_cost_usd && !options.confirmed {
            return Err(FeedError::CostAboveLimit {
                estimate_usd: cost,
                limit_usd: options.max_cost_usd,
            });
        }
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| io_err(format!("creating cache directory {}", dir.display()), e))?;
        let records = download(&mut client, request, &cache_path, options.progress).await?;
        (Some(cost), Some(records))
    };

    let path = match &options.out {
        Some(out) => {
            copy_atomically(&cache_path, out).await?;
            out.clone()
        }
        None => cache_path.clone(),
    };
    let bytes = tokio::fs::metadata(&path)
        .await
        .map_err(|e| io_err(format!("reading {}", path.display()), e))?
        .len();
    Ok(FetchOutcome {
        path,
        cache_path,
        from_cache: hit,
        cost_usd,
        records,
        bytes,
    })
}

fn client(key: &ApiKey, base_url: Option<&str>) -> Result<HistoricalClient> {
    install_crypto_provider();
    let http = reqwest::ClientBuilder::new()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(Duration::from_secs(120));
    let builder = HistoricalClient::builder()
        .key(key.expose())
        .map_err(map_error)?
        .upgrade_policy(VersionUpgradePolicy::UpgradeToV3)
        .http_client_builder(http);
    let builder = match base_url {
        Some(url) => builder.base_url(
            reqwest::Url::parse(url)
                .map_err(|e| FeedError::Options(format!("invalid base URL {url:?}: {e}")))?,
        ),
        None => builder,
    };
    builder.build().map_err(map_error)
}

async fn estimate(client: &mut HistoricalClient, request: &FetchRequest) -> Result<f64> {
    let params = GetCostParams::builder()
        .dataset(&request.dataset)
        .symbols(request.symbols())
        .schema(Schema::Mbo)
        .stype_in(request.stype_in)
        .date_time_range(request.range()?)
        .build();
    let cost = client
        .metadata()
        .get_cost(&params)
        .await
        .map_err(map_error)?;
    if !cost.is_finite() || cost < 0.0 {
        return Err(FeedError::Databento(format!(
            "metadata.get_cost returned an invalid cost: {cost}"
        )));
    }
    Ok(cost)
}

/// Streams the records into a temporary file beside `dest`, then renames it into place.
async fn download(
    client: &mut HistoricalClient,
    request: &FetchRequest,
    dest: &Path,
    progress: bool,
) -> Result<u64> {
    let params = GetRangeParams::builder()
        .dataset(&request.dataset)
        .symbols(request.symbols())
        .schema(Schema::Mbo)
        .stype_in(request.stype_in)
        .date_time_range(request.range()?)
        .build();
    let mut decoder = client
        .timeseries()
        .get_range(&params)
        .await
        .map_err(map_error)?;
    let metadata = decoder.metadata().clone();
    if metadata.schema.is_some_and(|s| s != Schema::Mbo) {
        return Err(FeedError::Databento(format!(
            "timeseries.get_range returned {} data, expected mbo",
            metadata.schema.map(|s| s.as_str()).unwrap_or("mixed")
        )));
    }

    let dir = dest.parent().unwrap_or(Path::new("."));
    let write_err = |e: std::io::Error| io_err(format!("writing {}", dest.display()), e);
    let tmp = tempfile::Builder::new()
        .prefix(".fetch-")
        .suffix(".part")
        .tempfile_in(dir)
        .map_err(write_err)?;
    let file = tokio::fs::File::from_std(tmp.reopen().map_err(write_err)?);
    let mut encoder = AsyncDbnEncoder::with_zstd(tokio::io::BufWriter::new(file), &metadata)
        .await
        .map_err(|e| dbn_err("writing", dest, e))?;

    let bar = Progress::new(progress, request);
    let mut records = 0u64;
    loop {
        let rec = match decoder.decode_record_ref().await {
            Ok(Some(rec)) => rec,
            Ok(None) => break,
            Err(e) => {
                return Err(FeedError::Databento(format!(
                    "download failed after {records} records: {e}"
                )))
            }
        };
        records += 1;
        if records % PROGRESS_EVERY == 0 {
            // The range filters on ts_recv.
            let ts = rec
                .get::<::databento::dbn::MboMsg>()
                .map_or(rec.header().ts_event, |m| m.ts_recv);
            bar.update(ts, records);
        }
        encoder
            .encode_record_ref(rec)
            .await
            .map_err(|e| dbn_err("writing", dest, e))?;
    }
    // Ends the zstd frame and flushes the buffer into the file.
    encoder.get_mut().shutdown().await.map_err(write_err)?;
    encoder
        .get_mut()
        .get_mut()
        .get_mut()
        .sync_all()
        .await
        .map_err(write_err)?;
    drop(encoder);
    tmp.persist(dest).map_err(|e| write_err(e.error))?;
    bar.finish(records);
    Ok(records)
}

/// Copies `src` to `dst` through a temporary file in `dst`'s directory and a rename.
async fn copy_atomically(src: &Path, dst: &Path) -> Result<()> {
    let (src, dst) = (src.to_owned(), dst.to_owned());
    let task = tokio::task::spawn_blocking(move || -> Result<()> {
        let err = |e: std::io::Error| io_err(format!("writing {}", dst.display()), e);
        let dir = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        let mut tmp = tempfile::Builder::new()
            .prefix(".mbo-fetch-")
            .suffix(".part")
            .tempfile_in(&dir)
            .map_err(err)?;
        let mut input = std::fs::File::open(&src)
            .map_err(|e| io_err(format!("reading {}", src.display()), e))?;
        std::io::copy(&mut input, tmp.as_file_mut()).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(&dst).map_err(|e| err(e.error))?;
        Ok(())
    });
    task.await
        .map_err(|e| FeedError::Databento(format!("copy task failed: {e}")))?
}

/// Parses a time for `--start`/`--end`: UNIX nanoseconds, `YYYY-MM-DD` (midnight UTC), RFC 3339
/// (`2025-09-24T19:30:00Z`, any offset), or `YYYY-MM-DDTHH:MM[:SS[.fff]]` without an offset
/// (UTC; a space may replace the `T`).
///
/// # Errors
/// [`FeedError::Options`] naming the accepted forms.
pub fn parse_time(input: &str) -> Result<u64> {
    let s = input.trim();
    let bad = || {
        FeedError::Options(format!(
            "invalid time {input:?}: expected UNIX nanoseconds, YYYY-MM-DD, \
             YYYY-MM-DDTHH:MM[:SS[.fff]] (UTC) or RFC 3339 with an offset"
        ))
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<u64>().map_err(|_| bad());
    }
    let dt = if let Ok(dt) = OffsetDateTime::parse(s, &Rfc3339) {
        dt
    } else if let Ok(date) = time::Date::parse(s, format_description!("[year]-[month]-[day]")) {
        date.midnight().assume_utc()
    } else {
        let naive = s.replacen(' ', "T", 1);
        PrimitiveDateTime::parse(
            &naive,
            format_description!(
                "[year]-[month]-[day]T[hour]:[minute][optional [:[second][optional [.[subsecond]]]]]"
            ),
        )
        .map_err(|_| bad())?
        .assume_utc()
    };
    u64::try_from(dt.unix_timestamp_nanos()).map_err(|_| bad())
}

/// `2025-09-24T19:30:00Z` style, or the raw number when out of range.
fn fmt_ns(ns: u64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ns))
        .ok()
        .and_then(|dt| dt.format(&Rfc3339).ok())
        .unwrap_or_else(|| ns.to_string())
}

fn io_err(context: String, source: std::io::Error) -> FeedError {
    FeedError::Io { context, source }
}

fn dbn_err(what: &str, path: &Path, e: ::databento::dbn::Error) -> FeedError {
    FeedError::Databento(format!("{what} {}: {e}", path.display()))
}

/// The progress bar: share of the requested time range covered so far.
struct Progress {
    bar: ProgressBar,
    start: u64,
}

impl Progress {
    fn new(enabled: bool, request: &FetchRequest) -> Self {
        let span = request.end.saturating_sub(request.start).max(1);
        let start = request.start;
        if !enabled || !std::io::stderr().is_terminal() {
            return Self {
                bar: ProgressBar::hidden(),
                start,
            };
        }
        let bar = ProgressBar::with_draw_target(Some(span), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} {prefix} [{bar:32}] {percent:>3}% {msg} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(format!("{} {}", request.dataset, request.symbols.join(",")));
        bar.set_message("0 records");
        bar.enable_steady_tick(Duration::from_millis(200));
        Self { bar, start }
    }

    fn update(&self, ts: u64, records: u64) {
        self.bar.set_position(ts.saturating_sub(self.start));
        self.bar.set_message(format!("{records} records"));
    }

    fn finish(&self, records: u64) {
        if let Some(len) = self.bar.length() {
            self.bar.set_position(len);
        }
        self.bar.set_message(format!("{records} records"));
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // An aborted download leaves no half-drawn bar behind.
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    fn request() -> FetchRequest {
        FetchRequest {
            dataset: "GLBX.MDP3".into(),
            symbols: vec!["CLZ5".into(), "CLX5".into()],
            stype_in: SType::RawSymbol,
            start: 1_758_742_200_000_000_000,
            end: 1_758_751_200_000_000_000,
        }
    }

    #[test]
    fn cache_key_ignores_symbol_order_and_repeats() {
        let a = request();
        let mut b = request();
        b.symbols = vec!["CLX5".into(), " CLZ5".into(), "CLX5".into()];
        assert_eq!(a.cache_key(), b.cache_key());
        assert_eq!(a.cache_key().len(), 32);
        assert!(a.cache_file_name().starts_with("GLBX.MDP3-mbo-"));
        assert!(a.cache_file_name().ends_with(".dbn.zst"));
    }

    #[test]
    fn cache_key_changes_with_every_selector() {
        let base = request().cache_key();
        let variants = [
            FetchRequest {
                dataset: "XNAS.ITCH".into(),
                ..request()
            },
            FetchRequest {
                symbols: vec!["CLX5".into()],
                ..request()
            },
            FetchRequest {
                stype_in: SType::Parent,
                ..request()
            },
            FetchRequest {
                start: request().start + 1,
                ..request()
            },
            FetchRequest {
                end: request().end - 1,
                ..request()
            },
        ];
        for v in variants {
            assert_ne!(v.cache_key(), base, "{v:?}");
        }
    }

    #[test]
    fn validate_rejects_empty_and_reversed() {
        assert!(request().validate().is_ok());
        let mut r = request();
        r.symbols.clear();
        assert!(matches!(r.validate(), Err(FeedError::Options(_))));
        let mut r = request();
        r.end = r.start;
        let err = r.validate().unwrap_err().to_string();
        assert!(err.contains("2025-09-24T19:30:00Z"), "{err}");
    }

    #[test]
    fn parses_times() {
        let t = 1_758_742_200_000_000_000u64; // 2025-09-24T19:30:00Z
        assert_eq!(parse_time("1758742200000000000").unwrap(), t);
        assert_eq!(parse_time("2025-09-24T19:30:00Z").unwrap(), t);
        assert_eq!(parse_time("2025-09-24T15:30:00-04:00").unwrap(), t);
        assert_eq!(parse_time("2025-09-24T19:30").unwrap(), t);
        assert_eq!(parse_time("2025-09-24 19:30:00").unwrap(), t);
        assert_eq!(
            parse_time("2025-09-24T19:30:00.5").unwrap(),
            t + 500_000_000
        );
        assert_eq!(parse_time("2025-09-24").unwrap(), 1_758_672_000_000_000_000);
        for bad in ["", "yesterday", "2025-13-01", "-5"] {
            let err = parse_time(bad).unwrap_err().to_string();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }
}
