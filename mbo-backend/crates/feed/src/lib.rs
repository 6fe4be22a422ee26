//! # mbo-feed: where MBO records come from
//!
//! * [`dbn_file`]: a strict reader of Databento DBN files (plain or zstd-compressed) that yields
//!   [`MboMsg`](dbn::MboMsg) records and refuses, with a one-line reason naming the file,
//!   anything that is not a complete MBO file: missing, not DBN, another schema, truncated.
//! * [`source`]: the interface every source implements ([`RecordSource`] for rewindable
//!   record streams, [`Feed`] for what the server consumes) — see its module docs.
#![deny(missing_docs)]

pub mod dbn_file;
pub mod source;

pub use dbn_file::{DbnFileError, MboDecoder, Problem};
pub use source::{
    Feed, FeedError, FeedEvent, FeedMetadata, Pace, PlayState, RecordSource, ReplayCommand,
    ReplayHandle, ReplayOptions, ReplayStatus, ResetReason, SourceKind, SymbolInfo,
};
