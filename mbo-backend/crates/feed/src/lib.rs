//! # mbo-feed: where MBO records come from
//!
//! Today: [`dbn_file`], a strict reader of Databento DBN files (plain or zstd-compressed) that
//! yields [`MboMsg`](dbn::MboMsg) records and refuses, with a one-line reason naming the file,
//! anything that is not a complete MBO file: missing, not DBN, another schema, truncated.
//!
//! The reader is synchronous and allocation-free per record; the async `Feed` sources
//! (paced replay, simulator, Databento live/historical) wrap it.
#![deny(missing_docs)]

pub mod dbn_file;

pub use dbn_file::{DbnFileError, MboDecoder, Problem};
