//! Command-line interface definition.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use mbo_feed::source::SPEED_RANGE;
use mbo_feed::{Pace, ReplayOptions};

/// mbo: exact market-by-order books from Databento DBN data.
#[derive(Debug, Parser)]
#[command(name = "mbo", version, about, long_about = None, args_conflicts_with_subcommands = true)]
pub struct Cli {
    /// What to do (nothing: serve, as `mbo serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `mbo serve` options, when no subcommand is given.
    #[command(flatten)]
    pub serve: crate::serve::ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the shared exact market over HTTP and SSE (the default): a DBN file, Databento
    /// live, or the built-in simulator.
    Serve(Box<crate::serve::ServeArgs>),
    /// Rebuild the book from a DBN file and write it, as JSON lines, at every event boundary.
    ExportBook(ExportBookArgs),
    /// Measure decode-only and decode+apply throughput over one file.
    Bench(BenchArgs),
    /// Replay a DBN file, paced, into a book; print progress and the achieved rate as JSON lines.
    Replay(ReplayArgs),
    /// Download MBO data from Databento's historical API (cost-checked, cached) as zstd DBN.
    Fetch(FetchArgs),
    /// Write a simulated market (deterministic for a seed) as a DBN file of MBO records.
    Simulate(SimulateArgs),
    /// Statistics of an MBO file: action mix, sizes, book shape, spreads, trades, anomalies.
    Stats(StatsArgs),
    /// Open many SSE clients against a running `mbo serve` on loopback and report latency,
    /// frames, bytes and the server's memory.
    Loadtest(crate::loadtest::LoadtestArgs),
    /// Measure the latency a scale-out gateway adds: the ingest's and the gateways' MBO
    /// streams read at once, the same event ids compared (loopback only)
    ClusterBench(crate::cluster_bench::ClusterBenchArgs),
    /// The SQLite history database: stats, vacuum, import a DBN file, apply retention.
    Db(crate::db::DbArgs),
    /// Play a crypto venue recording through that venue's parser and book sync; print one
    /// JSON line per (venue, symbol): messages, gaps, resyncs, checksums, final best bid/ask.
    VenueReplay(crate::venue_replay::VenueReplayArgs),
    /// Serve a crypto venue recording on loopback in the venue's framing (WebSocket, and
    /// Binance REST snapshots) until SIGINT/SIGTERM; print its URLs as one JSON line.
    VenueSim(crate::venue_sim::VenueSimArgs),
    /// Record live venue connections' raw frames (and Binance REST snapshots) with receive
    /// times, in the cryptofeed raw formats `mbo venue-replay` reads.
    Record(crate::record::RecordArgs),
    /// Measure the crypto venue path end to end: four loopback venues play recordings at a
    /// given rate into the server's venue runtime; print receive-to-publish latency
    /// percentiles as one JSON line.
    VenueBench(crate::venue_bench::VenueBenchArgs),
}

/// `mbo simulate`.
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Output DBN file: zstd-compressed when the name ends in `.zst`, plain otherwise; `-`
    /// writes plain DBN to standard output. Written atomically (temp + rename).
    #[arg(long)]
    pub out: PathBuf,
    /// Number of records (the last one closes an event).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub records: u64,
    /// Number of instruments (presets CL, ES, NQ, GC, ZN, 6E, NG, SI, then again).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub instruments: u32,
    /// Seed of the generator: the same seed writes the same records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// CME pre-open: no trades, and orders rest through the opposite touch (crossed books).
    #[arg(long)]
    pub pre_open: bool,
}

/// `mbo stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// A DBN file of MBO records (`.dbn` or zstd-compressed `.dbn.zst`; detected by content).
    pub file: PathBuf,
    /// One JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// `mbo export-book`.
#[derive(Debug, Args)]
pub struct ExportBookArgs {
    /// A DBN file of MBO records (`.dbn` or zstd-compressed `.dbn.zst`; detected by content).
    pub file: PathBuf,
    /// Levels per side in each line.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub depth: u32,
    /// Output file; `-` or absent means standard output. Written atomically (temp + rename).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// `mbo bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A DBN file of MBO records (decompressed into memory once, before timing).
    pub file: PathBuf,
    /// Passes over the file for each measurement (the market is reset between passes).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: u32,
}

/// `mbo fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Databento dataset code, e.g. GLBX.MDP3.
    #[arg(long)]
    pub dataset: String,
    /// Symbols, comma-separated (e.g. CLZ5,CLF6).
    #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
    pub symbols: Vec<String>,
    /// Start, inclusive: YYYY-MM-DD, YYYY-MM-DDTHH:MM[:SS[.fff]] (UTC), RFC 3339, or UNIX ns.
    #[arg(long)]
    pub start: String,
    /// End, exclusive; same forms as --start.
    #[arg(long)]
    pub end: String,
    /// Symbology of --symbols: raw_symbol, parent, continuous or instrument_id.
    #[arg(long, default_value = "raw_symbol")]
    pub stype: String,
    /// Also write the data to this file (zstd-compressed DBN), atomically.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Accept the estimated cost, whatever it is.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Refuse requests estimated above this many US dollars, unless --yes.
    #[arg(long, value_name = "USD", default_value_t = 5.0)]
    pub max_cost: f64,
    /// Cache directory (default: $XDG_CACHE_HOME/mbo or ~/.cache/mbo).
    #[arg(long, env = "MBO_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// No progress bar and no summary (the file's path is still printed).
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Historical API base URL (tests).
    #[arg(long, hide = true)]
    pub base_url: Option<String>,
}

/// Parses the command line. A usage error is printed as one line (`mbo: error: ...`) and
/// exits with status 2; `--help` and `--version` print as usual.
pub fn parse() -> Cli {
    match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => match e.kind() {
            clap::error::ErrorKind::DisplayHelp
            | clap::error::ErrorKind::DisplayVersion
            | clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
            _ => {
                eprintln!("mbo: error: {}", one_line(&e.render().to_string()));
                std::process::exit(2)
            }
        },
    }
}

/// Clap's multi-line error as one line: the message and its details, without the usage and
/// `--help` hints.
fn one_line(rendered: &str) -> String {
    let mut out = String::new();
    for line in rendered.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        let line = line.strip_prefix("error: ").unwrap_or(line);
        if !out.is_empty() {
            out.push_str(if line.starts_with("tip:") { "; " } else { " " });
        }
        out.push_str(line);
    }
    out
}

/// `mbo replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// A DBN file of MBO records (`.dbn` or zstd-compressed `.dbn.zst`; detected by content).
    pub file: PathBuf,
    /// Pacing.
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// Stop after this long (e.g. 60s); without it, stop at the end of the file (with --loop,
    /// at Ctrl-C).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive_duration)]
    pub duration: Option<Duration>,
    /// Time between progress lines.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_positive_duration)]
    pub report_interval: Duration,
}

/// How records are released: `max`, `rate` or `realtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PaceMode {
    /// As fast as the consumer takes them.
    Max,
    /// `--rate` records per second, smoothly.
    Rate,
    /// Following the recorded `ts_recv` gaps, divided by `--speed`.
    Realtime,
}

/// Replay pacing options, shared by every command that replays a file.
#[derive(Debug, Clone, Args)]
pub struct PacingArgs {
    /// Pacing: max (as fast as possible), rate (--rate records/s) or realtime (the recorded
    /// gaps divided by --speed).
    #[arg(long, value_enum, default_value_t = PaceMode::Max)]
    pub pace: PaceMode,
    /// Records per second with `--pace rate` (at least 1).
    #[arg(long, value_name = "N", default_value_t = 100_000, value_parser = parse_rate)]
    pub rate: u64,
    /// Speed factor with `--pace realtime`: 1 = as recorded, 10 = ten times faster
    /// (0.1 to 1000).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    pub speed: f64,
    /// With `--pace realtime`, the longest wall-clock wait between two records (e.g. 500ms,
    /// 2s, 1m): trading halts and overnight gaps do not stall a demo.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_gap: Option<Duration>,
    /// At the end of the file, start again from the beginning.
    #[arg(long = "loop")]
    pub looping: bool,
}

impl PacingArgs {
    /// The replay options these flags describe (other options at their defaults).
    ///
    /// # Errors
    /// An invalid rate or speed (normally refused by the parser already).
    pub fn to_options(&self) -> anyhow::Result<ReplayOptions> {
        let pace = match self.pace {
            PaceMode::Max => Pace::Max,
            PaceMode::Rate => Pace::Rate(self.rate),
            PaceMode::Realtime => Pace::Realtime { speed: self.speed },
        };
        pace.validate()?;
        Ok(ReplayOptions {
            pace,
            max_gap: self.max_gap,
            looping: self.looping,
            ..ReplayOptions::default()
        })
    }
}

fn parse_rate(text: &str) -> Result<u64, String> {
    match text.trim().parse::<u64>() {
        Ok(0) => Err("must be at least 1 record per second".into()),
        Ok(n) => Ok(n),
        Err(_) => Err("not a whole number of records per second".into()),
    }
}

fn parse_speed(text: &str) -> Result<f64, String> {
    let range = format!(
        "must be between {} and {} (times the recorded speed)",
        SPEED_RANGE.start(),
        SPEED_RANGE.end()
    );
    match text.trim().parse::<f64>() {
        Ok(x) if SPEED_RANGE.contains(&x) => Ok(x),
        Ok(_) => Err(range),
        Err(_) => Err(format!("not a number; {range}")),
    }
}

/// A duration such as `500ms`, `2s`, `1.5s`, `1m` or `1m30s` (units: ns, us, ms, s, m, h).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const HINT: &str = "expected a duration such as 500ms, 2s, 1.5s or 1m";
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(format!("empty; {HINT}"));
    }
    let mut nanos = 0f64;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().map_err(|_| HINT.to_owned())?;
        rest = rest[digits..].trim_start();
        let letters = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..letters] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" | "sec" => 1e9,
            "m" | "min" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("missing unit; {HINT}")),
            unit => return Err(format!("unknown unit {unit:?}; {HINT}")),
        };
        nanos += number * scale;
        rest = rest[letters..].trim_start();
    }
    if !nanos.is_finite() || nanos >= u64::MAX as f64 {
        return Err("too long".into());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        Duration::ZERO => Err("must be greater than zero".into()),
        d => Ok(d),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn durations() {
        let ms = Duration::from_millis;
        for (text, want) in [
            ("500ms", ms(500)),
            ("2s", ms(2000)),
            ("1.5s", ms(1500)),
            ("1m", ms(60_000)),
            ("1m30s", ms(90_000)),
            ("1h", ms(3_600_000)),
            ("250us", Duration::from_micros(250)),
            ("7ns", Duration::from_nanos(7)),
            (" 2 s ", ms(2000)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(parse_duration(text).unwrap(), want, "{text}");
        }
        for bad in ["", "xyz", "5", "5 parsecs", "s", "1.2.3s", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_positive_duration("0ms").is_err());
    }

    #[test]
    fn pacing_flags_to_options() {
        let args = PacingArgs {
            pace: PaceMode::Realtime,
            rate: 5,
            speed: 10.0,
            max_gap: Some(Duration::from_secs(2)),
            looping: true,
        };
        let options = args.to_options().unwrap();
        assert_eq!(options.pace, Pace::Realtime { speed: 10.0 });
        assert_eq!(options.max_gap, Some(Duration::from_secs(2)));
        assert!(options.looping);
        let rate = PacingArgs {
            pace: PaceMode::Rate,
            ..args.clone()
        };
        assert_eq!(rate.to_options().unwrap().pace, Pace::Rate(5));
        let bad = PacingArgs { speed: 0.0, ..args };
        assert!(bad.to_options().is_err());
    }
}
