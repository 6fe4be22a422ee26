//! [`Tap`]: the engine's applied stream, handed in order to one follower (the NATS publisher
//! of `mbo serve --role ingest`).
//!
//! The follower sees exactly what the engine applied: every batch of whole events with its
//! epoch and first index, every reset with the books it restored, the end of the feed. With
//! those it keeps a replica of the market that is equal to the engine's after every batch,
//! and can publish it.
//!
//! ## Backpressure, never loss
//! The channel is bounded. When it is full the engine waits for room (as it waits for the
//! storage writer): the feed slows down to what the follower can carry, and the time spent
//! waiting is counted in `mbo_cluster_tap_blocked_seconds_total`. A follower that drops
//! records would make every downstream book wrong; one that is slow only makes it late.
//! The follower must run on another thread than the engine (it does: the engine has its own
//! ingest thread, the publisher runs on the HTTP runtime), so waiting cannot deadlock.

use std::sync::Arc;
use std::time::Instant;

use mbo_book::Book;
use prometheus::Counter;
use tokio::sync::mpsc;

use crate::hub::MboBatch;

/// Events a tap carries.
#[derive(Debug)]
pub enum TapEvent {
    /// Whole events, applied in this order.
    Batch {
        /// The records (with their epoch and first index).
        batch: Arc<MboBatch>,
        /// Records of a catch-up after a seek: applied, their trades not published.
        catch_up: bool,
    },
    /// The market was emptied (seek, loop, live reconnect), then `books` were restored into
    /// it (a seek from a checkpoint round; empty otherwise). Books of the market not in
    /// `books` stay registered, empty.
    Reset {
        /// The new epoch.
        epoch: u64,
        /// Index of the next record.
        next_index: u64,
        /// The books restored.
        books: Vec<Book>,
    },
    /// The feed reached its end (it can still be sought).
    End {
        /// The epoch.
        epoch: u64,
    },
}

/// The sending side, owned by the engine.
#[derive(Debug, Clone)]
pub struct Tap {
    tx: mpsc::Sender<TapEvent>,
    blocked: Option<Counter>,
}

impl Tap {
    /// A tap holding at most `capacity` events; returns it and the follower's receiver.
    pub fn channel(capacity: usize) -> (Self, mpsc::Receiver<TapEvent>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        (Self { tx, blocked: None }, rx)
    }

    /// Counts the seconds the engine waits for room in `counter`.
    #[must_use]
    pub fn with_blocked_counter(mut self, counter: Counter) -> Self {
        self.blocked = Some(counter);
        self
    }

    /// Hands `ev` to the follower, waiting while the channel is full. Returns false when
    /// the follower is gone (the caller stops tapping).
    pub fn send(&self, ev: TapEvent) -> bool {
        match self.tx.try_send(ev) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Closed(_)) => false,
            Err(mpsc::error::TrySendError::Full(ev)) => {
                let started = Instant::now();
                // Blocking the engine's thread is the point (backpressure). The receiver
                // runs on another runtime's threads, so this wait always ends.
                let sent = futures::executor::block_on(self.tx.send(ev)).is_ok();
                if let Some(c) = &self.blocked {
                    c.inc_by(started.elapsed().as_secs_f64());
                }
                sent
            }
        }
    }
}
