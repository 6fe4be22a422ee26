//! The venue engine: the only writer of the crypto books.
//!
//! It keeps its own copy of each venue book (from `Snapshot`/`Level`/`Applied` events) and
//! one [`ConsolidatedBook`] per normalized symbol, and publishes frames: [`VenueEngine::apply`]
//! takes events, [`VenueEngine::publish`] publishes each book that changed since, once. The
//! server runs it in place ([`InlineEngine`]): the connection task that parsed a frame applies
//! its events and publishes at the end of the frame, with no channel or task switch between the
//! socket read and the published book (measured: a channel hop to an engine task cost tens of
//! microseconds per message on an idle runtime). A consumer that receives the events over a
//! channel instead applies what is queued, then publishes once (conflating a burst).
//!
//! Trust rules (never show a book known to be wrong as good):
//! * `ResyncNeeded` (gap, checksum failure): the book turns `stale`, keeps its last levels
//!   for display and leaves the consolidated book until its next snapshot.
//! * `Reset` (the connection reconnected) and the start: `syncing`, no levels.
//! * The channel overflowed (`lagged > 0`: events of that connection were dropped): every
//!   book of the connection turns `stale` until its next snapshot.
//! * Kraken sends no removal for levels that fall out of the subscribed depth; the venue
//!   state machine truncates its book after every message, and so does this copy.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use mbo_venues::{Aggressor, ConsolidatedBook, Event, L2Book, Level, Qty, Side, VenueKind};
use mbo_venues_net::{Delivery, EventSink, FrameDelivery, FrameEvents, VenueUpdate};
use prometheus::{IntCounter, IntGauge};
use tokio::sync::mpsc;

use crate::venues::frame::{
    BookState, VenueFrame, VenueLevel, VenueTrade, MAX_VENUES, VENUE_FRAME_DEPTH,
};
use crate::venues::hub::{VenueHub, VenueUpdateBatch};
use crate::venues::metrics::VenueMetrics;
use crate::venues::top::TopLevels;

/// The engine shared by the connection tasks of the venue thread, as their
/// [`EventSink`]: each connection applies its events in place and publishes at the end of
/// each frame, so a frame goes from the socket read to the published book with no channel
/// and no task switch. The mutex is only ever taken by those tasks, all on one thread (never
/// contended, never by an HTTP reader: readers load frames from `ArcSwap`s).
#[derive(Debug, Clone)]
pub struct InlineEngine(pub Arc<Mutex<VenueEngine>>);

impl EventSink for InlineEngine {
    fn deliver(&mut self, update: VenueUpdate) -> Delivery {
        match self.0.lock() {
            Ok(mut engine) => {
                engine.apply(&update);
                Delivery::Taken
            }
            // A panic while applying poisoned the engine: deliver nothing more.
            Err(_) => Delivery::Closed,
        }
    }

    fn frame_done(&mut self) {
        if let Ok(mut engine) = self.0.lock() {
            engine.publish();
        }
    }

    /// The whole frame under one lock (not one per level), read where it lies, then the
    /// publish.
    fn deliver_events(&mut self, frame: FrameEvents<'_>, lagged: &mut u64) -> FrameDelivery {
        let Ok(mut engine) = self.0.lock() else {
            return FrameDelivery {
                dropped: 0,
                closed: true,
            };
        };
        for event in frame.events {
            let symbol = frame.symbol_of(event);
            engine.apply_event(frame.venue, symbol, frame.recv_ns, *lagged, event);
            // Nothing is ever dropped here: every event is applied.
            *lagged = 0;
        }
        engine.publish();
        FrameDelivery::default()
    }
}

/// Unix time, ns.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// One venue book of one symbol.
struct Slot {
    symbol: usize,
    /// Index in the symbol's `books` (1..; 0 is the consolidated book).
    book_pos: usize,
    /// Index of the venue among the symbol's venues (the consolidated book's venue index).
    venue_idx: usize,
    conn: usize,
    native: Arc<str>,
    book: L2Book,
    /// The best levels of each side, kept in step with `book` ([`TopLevels`]: a frame copies
    /// them instead of walking the book).
    top: [TopLevels; 2],
    state: BookState,
    /// Kraken: levels kept per side.
    truncate: Option<usize>,
    dirty: bool,
    /// Receive time of the oldest change not yet published (0: none).
    oldest_recv: u64,
    /// A snapshot was applied since the last publish (its latency is kept apart: a snapshot
    /// of a thousand levels is not an update).
    snapshot: bool,
    last_recv: u64,
    seq: u64,
    gaps: IntCounter,
    checksum_failures: IntCounter,
    resyncs: IntCounter,
    trades: IntCounter,
    live: IntGauge,
}

impl Slot {
    /// Sets a level of the engine's copy (zero removes) and keeps the frame window in step.
    fn set(&mut self, side: Side, price: i64, qty: Qty) {
        let level = Level {
            qty,
            price_decimals: 0,
            qty_decimals: 0,
        };
        self.book.set(side, price, level);
        let bit = 1u8 << self.venue_idx;
        self.top[usize::from(side == Side::Ask)].apply(&self.book, price, qty, bit);
    }
}

/// A change of the consolidated book, applied after the venue books are published.
#[derive(Debug, Clone, Copy)]
enum ConsOp {
    /// Remove every level of a venue.
    Clear(usize),
    /// Set a venue's size at a price (zero removes it).
    Set(usize, Side, i64, Qty),
}

/// One normalized symbol.
struct SymbolState {
    consolidated: ConsolidatedBook,
    /// Changes not yet applied to `consolidated` (a reused buffer: no allocation in steady
    /// state). The venue books are published first, then these are applied and the
    /// consolidated book published: a venue's own book never waits for the merge.
    ops: Vec<ConsOp>,
    /// Receive time of the oldest change not yet in a published consolidated frame.
    oldest_recv: u64,
    seq: u64,
    dirty: bool,
    trade_seq: u64,
    trades: Vec<VenueTrade>,
    last_recv: u64,
    venues: Arc<[&'static str]>,
}

/// The engine (see the module docs).
pub struct VenueEngine {
    hub: Arc<VenueHub>,
    metrics: VenueMetrics,
    slots: Vec<Slot>,
    symbols: Vec<SymbolState>,
    /// Per connection: venue symbol → slot.
    lookup: Vec<(VenueKind, HashMap<Arc<str>, usize>)>,
    /// Per connection: where to ask for fresh snapshots after lost events.
    resync: Vec<Option<mpsc::Sender<Arc<str>>>>,
    unknown_books: u64,
    /// The last (connection, venue symbol, slot) looked up: a connection hands the same
    /// `Arc` for every event of a book, so a pointer compare skips hashing the symbol for
    /// each level of a message.
    last_lookup: Option<(usize, Arc<str>, usize)>,
}

impl std::fmt::Debug for VenueEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VenueEngine")
            .field("slots", &self.slots.len())
            .finish_non_exhaustive()
    }
}

/// Where each venue book lives: (connection index, venue symbol, symbol index, book index).
pub type Layout = Vec<(usize, Arc<str>, usize, usize)>;

impl VenueEngine {
    /// An engine over `hub`'s books. `layout` lists every venue book; `truncate[c]` is the
    /// depth connection `c`'s venue truncates its books to (Kraken), if any.
    pub fn new(
        hub: Arc<VenueHub>,
        metrics: VenueMetrics,
        layout: &Layout,
        truncate: &[Option<usize>],
    ) -> Self {
        let symbols: Vec<SymbolState> = hub
            .symbols
            .iter()
            .map(|s| {
                let venues: Arc<[&'static str]> = s.books[1..].iter().map(|b| b.venue).collect();
                let mut consolidated = ConsolidatedBook::new();
                for v in venues.iter() {
                    consolidated.venue(v);
                }
                SymbolState {
                    consolidated,
                    ops: Vec::with_capacity(1024),
                    oldest_recv: 0,
                    seq: 0,
                    dirty: false,
                    trade_seq: 0,
                    trades: Vec::new(),
                    last_recv: 0,
                    venues,
                }
            })
            .collect();
        let mut lookup: Vec<(VenueKind, HashMap<Arc<str>, usize>)> = hub
            .connections
            .iter()
            .map(|c| (c.venue, HashMap::new()))
            .collect();
        let mut slots = Vec::with_capacity(layout.len());
        for (conn, native, symbol, book_pos) in layout {
            let venue = hub.connections[*conn].venue.name();
            let normal = &*hub.symbols[*symbol].symbol;
            let labels = [venue, normal];
            let slot = Slot {
                symbol: *symbol,
                book_pos: *book_pos,
                venue_idx: book_pos - 1,
                conn: *conn,
                native: native.clone(),
                book: L2Book::new(),
                top: [TopLevels::new(Side::Bid), TopLevels::new(Side::Ask)],
                state: BookState::Syncing,
                truncate: truncate.get(*conn).copied().flatten(),
                dirty: false,
                oldest_recv: 0,
                snapshot: false,
                last_recv: 0,
                seq: 0,
                gaps: metrics.gaps.with_label_values(&labels),
                checksum_failures: metrics.checksum_failures.with_label_values(&labels),
                resyncs: metrics.resyncs.with_label_values(&labels),
                trades: metrics.trades.with_label_values(&labels),
                live: metrics.book_live.with_label_values(&labels),
            };
            slot.live.set(0);
            lookup[*conn].1.insert(native.clone(), slots.len());
            slots.push(slot);
        }
        Self {
            hub,
            metrics,
            slots,
            symbols,
            lookup,
            resync: Vec::new(),
            unknown_books: 0,
            last_lookup: None,
        }
    }

    /// Where to ask each connection (by index) for fresh snapshots of books whose events
    /// were lost ([`mbo_venues_net::Connection::with_resync_requests`]).
    #[must_use]
    pub fn with_resync(mut self, senders: Vec<Option<mpsc::Sender<Arc<str>>>>) -> Self {
        self.resync = senders;
        self
    }

    fn conn_of(&self, venue: VenueKind) -> Option<usize> {
        self.lookup.iter().position(|(v, _)| *v == venue)
    }

    /// Applies one update to the books (publishing is separate).
    pub fn apply(&mut self, u: &VenueUpdate) {
        let symbol = (!u.symbol.is_empty()).then_some(&u.symbol);
        self.apply_event(u.venue, symbol, u.recv_ns, u.lagged, &u.event);
    }

    /// Applies one event of `venue` about the book of venue symbol `symbol` (`None`: no
    /// book), received at `recv_ns`, `lagged` events of that connection having been lost
    /// just before it.
    pub fn apply_event(
        &mut self,
        venue: VenueKind,
        symbol: Option<&Arc<str>>,
        recv_ns: u64,
        lagged: u64,
        event: &Event,
    ) {
        let Some(conn) = self.conn_of(venue) else {
            return;
        };
        if lagged > 0 {
            // Events of this connection were lost: none of its books can be trusted until
            // its next snapshot.
            for i in 0..self.slots.len() {
                if self.slots[i].conn == conn && self.slots[i].state != BookState::Stale {
                    self.set_state(i, BookState::Stale, recv_ns);
                    // Without a fresh snapshot the book would stay stale until the next
                    // reconnect: ask for one (a full request channel means one is pending).
                    if let Some(Some(tx)) = self.resync.get(conn) {
                        let _ = tx.try_send(self.slots[i].native.clone());
                    }
                }
            }
        }
        let Some(symbol) = symbol else {
            // An event about no book: nothing to show.
            return;
        };
        let cached = self
            .last_lookup
            .as_ref()
            .filter(|(c, sym, _)| *c == conn && Arc::ptr_eq(sym, symbol))
            .map(|&(_, _, s)| s);
        let slot = match cached.or_else(|| self.lookup[conn].1.get(&**symbol).copied()) {
            Some(s) => {
                if cached.is_none() {
                    self.last_lookup = Some((conn, symbol.clone(), s));
                }
                s
            }
            None => {
                // A book not configured.
                self.unknown_books += 1;
                return;
            }
        };
        match *event {
            Event::Snapshot { .. } => {
                let s = &mut self.slots[slot];
                s.book.clear();
                // Its levels follow; the windows are rebuilt once, when it is published.
                s.top.iter_mut().for_each(TopLevels::invalidate);
                s.snapshot = true;
                self.symbols[s.symbol].ops.push(ConsOp::Clear(s.venue_idx));
                self.set_state(slot, BookState::Syncing, recv_ns);
            }
            Event::Level {
                side, price, qty, ..
            } => {
                let s = &mut self.slots[slot];
                if s.state == BookState::Stale {
                    return;
                }
                s.set(side, price, qty);
                self.symbols[s.symbol]
                    .ops
                    .push(ConsOp::Set(s.venue_idx, side, price, qty));
                self.touch(slot, recv_ns);
            }
            Event::Applied { .. } => {
                // A stale book (a gap, a checksum failure, lost events) comes back only
                // through a snapshot, whatever the venue applies meanwhile.
                if self.slots[slot].state == BookState::Stale {
                    return;
                }
                self.truncate(slot);
                self.set_state(slot, BookState::Live, recv_ns);
                self.touch(slot, recv_ns);
            }
            Event::ResyncNeeded { reason, .. } => {
                let s = &self.slots[slot];
                s.resyncs.inc();
                match reason {
                    mbo_venues::ResyncReason::Gap { .. } => s.gaps.inc(),
                    mbo_venues::ResyncReason::Checksum { .. } => s.checksum_failures.inc(),
                    _ => {}
                }
                self.set_state(slot, BookState::Stale, recv_ns);
            }
            Event::Reset { .. } => {
                let s = &mut self.slots[slot];
                s.book.clear();
                s.top.iter_mut().for_each(TopLevels::clear);
                self.set_state(slot, BookState::Syncing, recv_ns);
            }
            Event::Trade(t) => self.trade(slot, conn, &t, recv_ns),
            _ => {}
        }
    }

    fn touch(&mut self, slot: usize, recv_ns: u64) {
        let s = &mut self.slots[slot];
        s.dirty = true;
        if s.oldest_recv == 0 {
            s.oldest_recv = recv_ns;
        }
        s.last_recv = s.last_recv.max(recv_ns);
        let sym = &mut self.symbols[s.symbol];
        sym.dirty = true;
        if sym.oldest_recv == 0 {
            sym.oldest_recv = recv_ns;
        }
        sym.last_recv = sym.last_recv.max(recv_ns);
    }

    fn set_state(&mut self, slot: usize, state: BookState, recv_ns: u64) {
        let s = &mut self.slots[slot];
        if s.state == state {
            return;
        }
        s.state = state;
        s.live.set(i64::from(state == BookState::Live));
        if state != BookState::Live {
            // A book that is not live contributes nothing to the consolidated book.
            self.symbols[s.symbol].ops.push(ConsOp::Clear(s.venue_idx));
        }
        self.touch(slot, recv_ns);
    }

    /// Kraken: keep the subscribed depth, as the venue's own book does.
    fn truncate(&mut self, slot: usize) {
        let s = &mut self.slots[slot];
        let Some(depth) = s.truncate else { return };
        for side in [Side::Bid, Side::Ask] {
            if s.book.len(side) <= depth {
                continue;
            }
            let extra: Vec<i64> = s.book.levels(side).skip(depth).map(|l| l.price).collect();
            for price in extra {
                s.set(side, price, Qty(0));
                self.symbols[s.symbol]
                    .ops
                    .push(ConsOp::Set(s.venue_idx, side, price, Qty(0)));
            }
        }
    }

    fn trade(&mut self, slot: usize, conn: usize, t: &mbo_venues::Trade, recv_ns: u64) {
        let s = &self.slots[slot];
        s.trades.inc();
        let c = &self.hub.connections[conn];
        if t.venue_time_ns > 0 {
            let lat = i128::from(recv_ns) - i128::from(t.venue_time_ns);
            c.exchange_latency
                .record(i64::try_from(lat).unwrap_or(i64::MAX));
        }
        let sym = &mut self.symbols[s.symbol];
        sym.trade_seq += 1;
        sym.trades.push(VenueTrade {
            seq: sym.trade_seq,
            venue: c.venue.name(),
            price: t.price,
            size: t.qty,
            side: match t.side {
                Aggressor::Buy => b'B',
                Aggressor::Sell => b'A',
                Aggressor::Unknown => b'N',
            },
            venue_ts: t.venue_time_ns,
            recv_ns,
        });
    }

    /// Publishes every book that changed, then each symbol's batch.
    pub fn publish(&mut self) {
        let now = now_ns();
        let mut batches: Vec<Option<VenueUpdateBatch>> =
            (0..self.symbols.len()).map(|_| None).collect();
        for i in 0..self.slots.len() {
            if !self.slots[i].dirty {
                continue;
            }
            let frame = Arc::new(self.venue_frame(i, now));
            let s = &mut self.slots[i];
            s.dirty = false;
            let entry = &self.hub.symbols[s.symbol].books[s.book_pos];
            entry.frame.store(frame.clone());
            if s.oldest_recv > 0 {
                let lat = i64::try_from(now_ns().saturating_sub(s.oldest_recv)).unwrap_or(i64::MAX);
                let c = &self.hub.connections[s.conn];
                if s.snapshot {
                    c.snapshot_latency.record(lat);
                } else {
                    c.publish_latency.record(lat);
                }
                s.oldest_recv = 0;
            }
            s.snapshot = false;
            batches[s.symbol]
                .get_or_insert_with(VenueUpdateBatch::default)
                .frames
                .push((s.book_pos, frame));
        }
        for (i, batch) in batches.iter_mut().enumerate() {
            let sym = &mut self.symbols[i];
            if !sym.dirty && sym.trades.is_empty() {
                continue;
            }
            let b = batch.get_or_insert_with(VenueUpdateBatch::default);
            if sym.dirty {
                sym.dirty = false;
                for op in sym.ops.drain(..) {
                    match op {
                        ConsOp::Clear(v) => sym.consolidated.clear_venue(v),
                        ConsOp::Set(v, side, price, qty) => {
                            sym.consolidated.set(v, side, price, qty);
                        }
                    }
                }
                let frame = Arc::new(self.consolidated_frame(i, now));
                self.hub.symbols[i].books[0].frame.store(frame.clone());
                let sym = &mut self.symbols[i];
                if sym.oldest_recv > 0 {
                    let lat = now_ns().saturating_sub(sym.oldest_recv);
                    self.hub.symbols[i]
                        .consolidated_latency
                        .record(i64::try_from(lat).unwrap_or(i64::MAX));
                    sym.oldest_recv = 0;
                }
                b.frames.insert(0, (0, frame));
            }
            let sym = &mut self.symbols[i];
            b.trades = std::mem::take(&mut sym.trades);
        }
        for (i, batch) in batches.into_iter().enumerate() {
            if let Some(b) = batch {
                // No receiver (no stream open) is fine: the frames are stored.
                let _ = self.hub.symbols[i].updates.send(Arc::new(b));
            }
        }
    }

    fn venue_frame(&mut self, i: usize, now: u64) -> VenueFrame {
        let s = &mut self.slots[i];
        s.seq += 1;
        let entry = &self.hub.symbols[s.symbol].books[s.book_pos];
        let sym = &self.symbols[s.symbol];
        let bit = 1u8 << s.venue_idx;
        let (mut bids, mut asks) = (Vec::new(), Vec::new());
        for (top, out) in s.top.iter_mut().zip([&mut bids, &mut asks]) {
            top.refresh(&s.book, bit);
            debug_assert!(top.matches(&s.book), "venue frame window out of step");
            top.copy_best_first(out);
        }
        let mut f = VenueFrame::empty(
            self.hub.symbols[s.symbol].symbol.clone(),
            entry.venue,
            entry.native_symbol.clone(),
            sym.venues.clone(),
            s.state,
        );
        f.live_mask = if s.state == BookState::Live { bit } else { 0 };
        f.seq = s.seq;
        f.server_ts = now;
        f.ts_recv = s.last_recv;
        f.crossed = match (bids.first(), asks.first()) {
            (Some(b), Some(a)) if b.price >= a.price => Some((bit, bit)),
            _ => None,
        };
        f.bid_levels = s.book.len(Side::Bid) as u64;
        f.ask_levels = s.book.len(Side::Ask) as u64;
        f.bids = bids;
        f.asks = asks;
        f
    }

    fn consolidated_frame(&mut self, i: usize, now: u64) -> VenueFrame {
        let sym = &mut self.symbols[i];
        sym.seq += 1;
        let cons = &sym.consolidated;
        let depth = |side| cons.len(side).min(VENUE_FRAME_DEPTH);
        let mut shares = Vec::with_capacity(depth(Side::Bid) + depth(Side::Ask));
        let mut level = |(price, sizes): (i64, &[(usize, Qty)])| {
            let first = u32::try_from(shares.len()).unwrap_or(u32::MAX);
            let mut mask = 0u8;
            let mut total = 0u128;
            for &(v, q) in sizes {
                if v < MAX_VENUES {
                    mask |= 1 << v;
                    shares.push(q);
                    total = total.saturating_add(q.0);
                }
            }
            VenueLevel {
                price,
                size: Qty(total),
                mask,
                first,
            }
        };
        let mut bids = Vec::with_capacity(depth(Side::Bid));
        bids.extend(
            cons.iter_side(Side::Bid)
                .take(VENUE_FRAME_DEPTH)
                .map(&mut level),
        );
        let mut asks = Vec::with_capacity(depth(Side::Ask));
        asks.extend(
            cons.iter_side(Side::Ask)
                .take(VENUE_FRAME_DEPTH)
                .map(&mut level),
        );
        let live_mask = self
            .slots
            .iter()
            .filter(|s| s.symbol == i && s.state == BookState::Live)
            .fold(0u8, |m, s| m | (1 << s.venue_idx));
        let sym = &self.symbols[i];
        let all_syncing = live_mask == 0;
        let mut f = VenueFrame::empty(
            self.hub.symbols[i].symbol.clone(),
            crate::venues::frame::CONSOLIDATED,
            None,
            sym.venues.clone(),
            if all_syncing {
                BookState::Syncing
            } else {
                BookState::Live
            },
        );
        f.live_mask = live_mask;
        f.seq = sym.seq;
        f.server_ts = now;
        f.ts_recv = sym.last_recv;
        f.crossed = match (bids.first(), asks.first()) {
            (Some(b), Some(a)) if b.price >= a.price => Some((b.mask, a.mask)),
            _ => None,
        };
        f.bid_levels = sym.consolidated.len(Side::Bid) as u64;
        f.ask_levels = sym.consolidated.len(Side::Ask) as u64;
        f.bids = bids;
        f.asks = asks;
        f.shares = shares;
        f
    }

    /// The metrics handles (for the sampler).
    pub fn metrics(&self) -> &VenueMetrics {
        &self.metrics
    }
}
