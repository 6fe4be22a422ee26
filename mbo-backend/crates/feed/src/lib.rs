//! # mbo-feed: where MBO records come from
//!
//! * [`dbn_file`]: a strict reader of Databento DBN files (plain or zstd-compressed) that yields
//!   [`MboMsg`](dbn::MboMsg) records and refuses, with a one-line reason naming the file,
//!   anything that is not a complete MBO file: missing, not DBN, another schema, truncated.
//! * [`source`]: the interface every source implements ([`RecordSource`] for rewindable
//!   record streams, [`Feed`] for what the server consumes) — see its module docs.
//! * [`replay`]: paces any record source into a [`Feed`] (max, rate, realtime × speed) with
//!   pause, resume, pace changes, seek and loop.
//! * [`databento`]: Databento historical downloads (cost check, progress, local cache) and a
//!   live MBO [`Feed`] that reconnects with backoff and marks every gap with a reset.
//! * [`sim`]: a deterministic market simulator producing valid MBO records for several
//!   instruments, calibrated on a real CME capture.
#![deny(missing_docs)]

pub mod databento;
pub mod dbn_file;
pub mod replay;
pub mod sim;
pub mod source;

pub use dbn_file::{DbnFileError, MboDecoder, Problem, SliceDecoder};
pub use replay::spawn_replay;
pub use sim::{SimConfig, SimInstrument, SimParams, Simulator};
pub use source::{
    Feed, FeedError, FeedEvent, FeedMetadata, Pace, PlayState, RecordSource, ReplayCommand,
    ReplayHandle, ReplayOptions, ReplayStatus, ResetReason, RestoredBooks, SourceKind, SymbolInfo,
};
