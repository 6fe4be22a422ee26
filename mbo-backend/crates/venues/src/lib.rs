//! # mbo-venues: exact L2 books from crypto venues, sans I/O
//!
//! Parsers and book-sync state machines for Binance (spot, US, USD-M futures), Bybit v5,
//! Kraken (WebSocket v2 and v1) and Coinbase (Advanced Trade and the legacy Exchange feed),
//! following `shared/docs/crypto-venues.md` (the contract). The core takes text frames (and
//! REST snapshot bodies) and produces normalized [`Event`]s; the WebSocket/REST layer on top
//! only moves bytes and reacts to [`Event::ResyncNeeded`].
//!
//! ## Design
//!
//! * Exact numbers ([`decimal`]): prices are `i64` 1e-9 units, sizes [`Qty`] (`u128` 1e-18
//!   units), both parsed from the decimal text, never through `f64`; each level keeps the
//!   decimals the venue printed so it prints back to the same text and checksums hash the
//!   venue's own digits.
//! * One module per venue implementing [`Venue`]; [`VenueKind`] is the registry (a new venue
//!   is one module plus one line there). Each keeps [`Books`]: per symbol an [`L2Book`]
//!   (`BTreeMap` per side keyed by price), a [`SyncState`] (syncing / live / stale) and
//!   [`Counters`].
//! * Every protocol check (update-id continuity, Binance bridging, Kraken CRC32 on every
//!   message, Coinbase `sequence_num`) marks the book stale and emits a resync request on
//!   failure; stale books apply nothing until their new snapshot.
//! * Book frames (all four venues) first go through a hand-written, allocation-free scanner
//!   (`scan`) that takes a strict subset of JSON and hands everything else to `serde_json`;
//!   both paths share the apply code and tests require them to agree on every recorded and
//!   many mutated frames (each venue's "Fast path" doc section says what it takes).
//! * Bad frames (invalid JSON, unknown types, bad numbers, unsubscribed symbols) are counted
//!   in [`VenueCounters`] and skipped; nothing in this crate panics on input.
//! * [`replay`] plays recordings ([`fixtures`] formats) and returns the per-(venue, symbol)
//!   [`Summary`] that `mbo venue-replay` prints; [`ConsolidatedBook`] merges venues per
//!   normalized symbol ([`SymbolMap`]).
#![deny(missing_docs)]

pub mod binance;
mod book;
pub mod bybit;
pub mod coinbase;
mod consolidated;
pub mod decimal;
mod event;
#[cfg(test)]
mod fast_test_util;
pub mod fixtures;
pub mod kraken;
mod replay;
mod scan;
mod state;
mod venue;
mod wire;

pub use book::{L2Book, Level, LevelView, Side};
pub use consolidated::{ConsolidatedBook, ConsolidatedLevel, Crossed, SymbolMap};
pub use decimal::{format_price, parse_price, parse_qty, DecimalError, Qty};
pub use event::{Aggressor, Event, ResyncReason, Trade};
pub use fixtures::{Frame, RestSnapshot};
pub use replay::{replay, replay_files, replay_with, ReplayError, ReplayOutcome};
pub use state::{Books, Counters, Summary, SymbolBook, SyncState, VenueCounters};
pub use venue::{Precision, UnknownVenue, Venue, VenueKind, VenueOptions};
