//! Replaying recorded frames through a venue's parser and sync code: the library behind
//! `mbo venue-replay`.
//!
//! REST snapshots are delivered at their recorded receive time, between the frames received
//! before and after it, so Binance's buffering and bridging rule runs exactly as it did live;
//! snapshots without a time go first. The result is one [`Summary`] per (venue, symbol).

use std::path::Path;

use crate::event::Event;
use crate::fixtures::{self, Frame, RestSnapshot};
use crate::state::{Summary, VenueCounters};
use crate::venue::{Precision, VenueKind, VenueOptions};

/// What a replay produced.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    /// One line per (venue, symbol), in order of first appearance.
    pub summaries: Vec<Summary>,
    /// Connection counters (frames, bad frames, control frames).
    pub counters: VenueCounters,
    /// Resync requests emitted (the I/O layer would have acted on them).
    pub resync_requests: u64,
}

/// Replays `frames` (and REST `snapshots`) through `venue` with the given precision.
#[must_use]
pub fn replay(
    venue: VenueKind,
    frames: &[Frame<'_>],
    snapshots: &[RestSnapshot<'_>],
    precision: Option<Precision>,
) -> Vec<Summary> {
    let options = VenueOptions {
        precision,
        ..VenueOptions::default()
    };
    replay_with(venue, frames, snapshots, &options).summaries
}

/// Replays with full options, returning summaries and connection counters.
#[must_use]
pub fn replay_with(
    venue: VenueKind,
    frames: &[Frame<'_>],
    snapshots: &[RestSnapshot<'_>],
    options: &VenueOptions,
) -> ReplayOutcome {
    let mut v = venue.create(options);
    let mut snaps: Vec<&RestSnapshot<'_>> = snapshots.iter().collect();
    snaps.sort_by_key(|s| s.recv_ns.unwrap_or(0));
    let mut next = 0;
    let mut out = Vec::with_capacity(64);
    let mut resync_requests = 0u64;
    let mut count = |out: &mut Vec<Event>| {
        resync_requests += out
            .iter()
            .filter(|e| matches!(e, Event::ResyncNeeded { .. }))
            .count() as u64;
        out.clear();
    };
    for f in frames {
        while let Some(s) = snaps.get(next) {
            if s.recv_ns.unwrap_or(0) > f.recv_ns.unwrap_or(u64::MAX) {
                break;
            }
            v.on_rest_snapshot(&s.symbol, s.body, &mut out);
            count(&mut out);
            next += 1;
        }
        v.on_frame(f.text, &mut out);
        count(&mut out);
    }
    for s in &snaps[next..] {
        v.on_rest_snapshot(&s.symbol, s.body, &mut out);
        count(&mut out);
    }
    ReplayOutcome {
        summaries: v
            .books()
            .all()
            .iter()
            .map(|b| b.summary(v.name()))
            .collect(),
        counters: *v.counters(),
        resync_requests,
    }
}

/// A recording that could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReplayError {
    /// The file could not be read. (The cause is the error's `source`, not repeated in its
    /// message, so chains such as anyhow's print it once.)
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not in a known format (the cause is the error's `source`).
    #[error("cannot parse {path}")]
    Format {
        /// The file.
        path: String,
        /// The cause.
        source: fixtures::FixtureError,
    },
}

fn read(path: &Path) -> Result<String, ReplayError> {
    std::fs::read_to_string(path).map_err(|source| ReplayError::Io {
        path: path.display().to_string(),
        source,
    })
}

/// Replays a recording file (any format [`fixtures::detect`] knows) with an optional REST
/// snapshot file (cryptofeed HTTP format).
///
/// # Errors
/// [`ReplayError`] when a file cannot be read or parsed.
pub fn replay_files(
    venue: VenueKind,
    frames: &Path,
    snapshots: Option<&Path>,
    options: &VenueOptions,
) -> Result<ReplayOutcome, ReplayError> {
    let text = read(frames)?;
    let frames_v = fixtures::read_frames(&text).map_err(|source| ReplayError::Format {
        path: frames.display().to_string(),
        source,
    })?;
    let snap_text = snapshots.map(read).transpose()?;
    let snaps = match (&snap_text, snapshots) {
        (Some(t), Some(p)) => {
            fixtures::read_cryptofeed_http(t).map_err(|source| ReplayError::Format {
                path: p.display().to_string(),
                source,
            })?
        }
        _ => Vec::new(),
    };
    Ok(replay_with(venue, &frames_v, &snaps, options))
}
