//! `mbo venue-replay`: a crypto venue recording through the same parser and book-sync code
//! the live connectors use (`mbo_venues`), with one JSON line per (venue, symbol) at the end.
//!
//! The command is a thin shell over [`mbo_venues::replay_files`]: the recording's format is
//! detected from its content (cryptofeed raw files, JSON lines, the Kraken SDK's
//! `{init, updates}` file, the nautilus Bybit file), and an optional REST snapshot file
//! (cryptofeed's HTTP format) is fed in at its recorded receive time so Binance's buffering
//! and bridging rule runs as it did live. Connection-wide counters (frames, bad frames,
//! control frames, resync requests) go to standard error so standard output stays one
//! machine-readable line per book.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::Args;
use mbo_venues::{Precision, VenueKind, VenueOptions};

/// `mbo venue-replay`.
#[derive(Debug, Args)]
pub struct VenueReplayArgs {
    /// Venue whose protocol the recording speaks: binance (also Binance US), binance-futures,
    /// bybit, kraken (WS v2), kraken-v1, coinbase.
    #[arg(long, value_parser = parse_venue)]
    pub venue: VenueKind,
    /// The recording: raw frames with receive times, in any of the formats above.
    pub file: PathBuf,
    /// REST order-book snapshot file recorded with the frames (Binance needs one).
    #[arg(long)]
    pub snapshot: Option<PathBuf>,
    /// Decimals of prices as the venue prints them (Kraken's checksum hashes the printed
    /// digits; recordings that went through floats lost trailing zeros). With
    /// --qty-precision.
    #[arg(long, requires = "qty_precision")]
    pub price_precision: Option<u8>,
    /// Decimals of sizes as the venue prints them. With --price-precision.
    #[arg(long, requires = "price_precision")]
    pub qty_precision: Option<u8>,
    /// Only these venue symbols (comma-separated); frames for others count as bad frames.
    #[arg(long, value_delimiter = ',')]
    pub symbols: Vec<String>,
    /// Book depth subscribed (Kraken WS v2: the book is truncated to it before each checksum).
    #[arg(long)]
    pub depth: Option<usize>,
}

pub(crate) fn parse_venue(s: &str) -> Result<VenueKind, String> {
    s.parse()
        .map_err(|e: mbo_venues::UnknownVenue| e.to_string())
}

pub fn run(args: &VenueReplayArgs) -> Result<()> {
    let precision = match (args.price_precision, args.qty_precision) {
        (Some(price), Some(qty)) => Some(Precision { price, qty }),
        (None, None) => None,
        // clap's `requires` makes the two come together; kept as an error, not a panic.
        _ => bail!("--price-precision and --qty-precision go together"),
    };
    if args.depth == Some(0) {
        bail!("--depth must be at least 1");
    }
    let options = VenueOptions {
        symbols: args.symbols.clone(),
        depth: args.depth,
        precision,
    };
    let outcome =
        mbo_venues::replay_files(args.venue, &args.file, args.snapshot.as_deref(), &options)
            .with_context(|| format!("replaying {} as {}", args.file.display(), args.venue))?;
    let c = &outcome.counters;
    eprintln!(
        "mbo venue-replay: {} frames ({} bad, {} control), {} resync requests, {} book(s)",
        c.frames,
        c.bad_frames,
        c.control,
        outcome.resync_requests,
        outcome.summaries.len()
    );
    let mut text = String::new();
    for s in &outcome.summaries {
        text.push_str(&s.to_json());
        text.push('\n');
    }
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        // A reader that went away (`| head`) is not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("writing standard output"),
    }
}
