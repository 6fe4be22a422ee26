//! A market simulator that writes valid Databento MBO records.
//!
//! [`Simulator`] generates real [`MboMsg`] records (rtype MBO, publisher 1) for one or more
//! instruments, event by event, with Databento's event structure:
//!
//! * a passive **add** (`A`), **cancel** (`C`, whole order) or **modify** (`M`: price change,
//!   size decrease keeping priority, or size increase) is one record with `F_LAST`;
//! * a **trade** is the aggressor's `T` record for each price level it reaches, each followed
//!   by an `F` record for every resting order it fills (front of the queue first), then, in
//!   the next packet (`sequence + 1`, a few µs later), a `C` for every fully filled order or an
//!   `M` with the remaining size for a partial fill, and, if the aggressor was priced through
//!   the liquidity it found, an `A` resting its remainder. `F_LAST` marks the last record.
//!   Occasional sweeps take several levels; a few trades are a lone `T` (implied liquidity).
//!
//! What it guarantees, for every seed: no cancel or modify ever names an unknown order, and
//! the book is never crossed or locked (best bid ≥ best ask) at an `F_LAST` boundary, except
//! with [`SimConfig::pre_open`], where orders rest through the opposite touch as they do
//! before an opening auction (and nothing trades). `ts_event`, `ts_recv` and `sequence` never
//! decrease; every event's records share one instrument and one `ts_event`.
//!
//! Realism: sizes, the mix of event kinds, where adds, cancels and modifies happen relative
//! to the touch, trade sizes, inter-event gaps and feed latency are drawn from distributions
//! measured on a real CME capture (see [`calibration`]). The number of resting orders is
//! steered toward the measured depth by leaning the add/cancel balance, and a hidden fair
//! value follows a mean-reverting random walk that order flow leans toward (aggressors buy
//! more when it is above the mid, quotes are pulled and improved on its side), so the mid
//! wanders and comes back.
//!
//! Determinism: one ChaCha8 stream seeded from [`SimConfig::seed`] drives everything, so the
//! same configuration gives the same records (and [`RecordSource::rewind`] restarts them).
//! Speed: no allocation per record once warm (the event buffer and books keep their
//! capacity); about 6–7 M records/s on one core of the project's reference machine
//! (`cargo run --release -p mbo-feed --example sim_speed`), most of it spent drawing random
//! numbers.

mod book;
pub mod calibration;
mod config;
mod dist;

use std::ffi::c_char;

use dbn::{flags, rtype, FlagSet, MboMsg, RecordHeader};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use book::{Side, SimBook, NIL, WINDOW};
pub use config::{SimConfig, SimInstrument, SimParams, DEFAULT_START_TS};
use dist::Table;

use crate::source::Result;
use crate::{FeedMetadata, RecordSource, SourceKind};

/// Most resting orders one aggressor fills (its remainder, if any, is dropped like an
/// immediate-or-cancel order).
const MAX_FILLS: usize = 64;
/// Most records of one event: a `T` and an `F` per fill plus a `C`/`M` per fill, and an `A`.
const MAX_EVENT_RECORDS: u64 = 3 * MAX_FILLS as u64 + 1;
/// Farthest any generated price goes from its reference, ticks (caps user tables).
const MAX_DEPTH: u32 = 500;
/// The fair value stays this many ticks inside the price window, so every price the
/// generator derives from it or from the book stays inside too.
const EDGE_MARGIN: u32 = 2 * MAX_DEPTH + 64;
/// Rejection-sampling bound of [`Simulator::pick_order`]: levels up to M times fuller than
/// typical are drained in proportion (the touch rarely holds more than twice its usual 9).
const FULLNESS_M: f64 = 3.0;
/// `ts_in_delta` base (ns): CLX5's values are 10–22 µs.
const TS_IN_DELTA: i32 = 14_000;

/// One fill of a trade event.
#[derive(Debug, Clone, Copy)]
struct Fill {
    slot: u32,
    qty: u32,
}

/// The prepared distributions.
#[derive(Debug, Clone)]
struct Tables {
    add_size: Table,
    add_depth: Table,
    cancel_depth: Table,
    modify_depth: Table,
    modify_move: Table,
    trade_size: Table,
    gap: Table,
    latency: Table,
    /// Per depth `0..=MAX_DEPTH`: `1 / (M × typical orders per tick)`, the acceptance scale
    /// of a level picked for a cancel or modify (see [`Simulator::pick_order`]).
    fullness: Vec<f64>,
}

impl Tables {
    fn new(p: &SimParams) -> Result<Self> {
        Ok(Self {
            add_size: Table::new("add_size", &p.add_size)?,
            add_depth: Table::new("add_depth", &p.add_depth)?,
            cancel_depth: Table::new("cancel_depth", &p.cancel_depth)?,
            modify_depth: Table::new("modify_depth", &p.modify_depth)?,
            modify_move: Table::new("modify_move", &p.modify_move)?,
            trade_size: Table::new("trade_size", &p.trade_size)?,
            gap: Table::new("event_gap_ns", &p.event_gap_ns)?,
            latency: Table::new("latency_ns", &p.latency_ns)?,
            fullness: (0..=MAX_DEPTH)
                .map(|d| {
                    let typical = p
                        .depth_profile
                        .iter()
                        .find(|b| (b.lo..=b.hi).contains(&u64::from(d)))
                        .map_or(0.0, |b| b.weight);
                    // Unprofiled depths count as nearly empty: any order there is a fair pick.
                    1.0 / (FULLNESS_M * typical.max(0.02))
                })
                .collect(),
        })
    }
}

/// One instrument's state.
#[derive(Debug, Clone)]
struct Inst {
    id: u32,
    tick: i64,
    /// Price in ticks of window index 0.
    base: i64,
    /// Lowest window index with a positive price.
    lo: u32,
    anchor: f64,
    /// Hidden fair value, window index units (fractional).
    fair: f64,
    fair_lo: f64,
    fair_hi: f64,
    gap_scale: f64,
    next_ts: u64,
    book: SimBook,
}

impl Inst {
    fn new(cfg: &SimInstrument, start_ts: u64) -> Self {
        let start_ticks = cfg.start_price / cfg.tick;
        let base = start_ticks - i64::from(WINDOW / 2);
        // Index i has price (base + i) ticks; prices must stay positive.
        let lo = (1 - base).clamp(0, i64::from(WINDOW / 2)) as u32;
        let fair_lo = f64::from(lo.max(EDGE_MARGIN)).min(f64::from(WINDOW / 2));
        let fair_hi = f64::from(WINDOW - EDGE_MARGIN);
        let anchor = f64::from(WINDOW / 2);
        Self {
            id: cfg.instrument_id,
            tick: cfg.tick,
            base,
            lo,
            anchor,
            fair: anchor + 0.5,
            fair_lo,
            fair_hi,
            gap_scale: 1.0 / cfg.activity,
            next_ts: start_ts,
            book: SimBook::new(),
        }
    }

    fn reset(&mut self, start_ts: u64) {
        self.fair = self.anchor + 0.5;
        self.next_ts = start_ts;
        self.book.clear();
    }

    fn clamp_idx(&self, idx: i64) -> u32 {
        idx.clamp(i64::from(self.lo), i64::from(WINDOW - 1)) as u32
    }
}

/// What every record of the current event shares.
#[derive(Debug, Clone, Copy)]
struct Ctx {
    id: u32,
    publisher: u16,
    tick: i64,
    base: i64,
    ts_event: u64,
    ts_recv: u64,
    /// `ts_recv` of the records after the fills (the exchange's next packet).
    ts_recv_late: u64,
    sequence: u32,
}

impl Ctx {
    #[inline]
    fn record(
        &self,
        action: u8,
        side: Side,
        idx: u32,
        size: u32,
        order_id: u64,
        late: bool,
    ) -> MboMsg {
        let sequence = self.sequence.wrapping_add(u32::from(late));
        MboMsg {
            hd: RecordHeader::new::<MboMsg>(rtype::MBO, self.publisher, self.id, self.ts_event),
            order_id,
            price: (self.base + i64::from(idx)) * self.tick,
            size,
            flags: FlagSet::empty(),
            channel_id: 0,
            action: action as c_char,
            side: side.code() as c_char,
            ts_recv: if late {
                self.ts_recv_late
            } else {
                self.ts_recv
            },
            ts_in_delta: TS_IN_DELTA + (sequence & 0x1fff) as i32,
            sequence,
        }
    }
}

/// The market simulator: an endless (or `max_records`-long) deterministic stream of MBO
/// records. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Simulator {
    config: SimConfig,
    tables: Tables,
    rng: ChaCha8Rng,
    insts: Vec<Inst>,
    /// The current event's records; `pos` is the next one to hand out.
    out: Vec<MboMsg>,
    pos: usize,
    fills: Vec<Fill>,
    next_order_id: u64,
    sequence: u32,
    /// Unused half of the last random `u64`.
    spare: Option<u32>,
    last_ts_recv: u64,
    last_ts_event: u64,
    /// Current feed latency (ns), see [`SimParams::latency_ns`].
    latency: u64,
    generated: u64,
}

/// First order id: 13 digits, like CME's.
const FIRST_ORDER_ID: u64 = 6_000_000_000_000;

impl Simulator {
    /// A simulator for `config`.
    ///
    /// # Errors
    /// [`FeedError::Options`](crate::FeedError::Options) when the configuration is invalid
    /// (see [`SimConfig::validate`]).
    pub fn new(config: SimConfig) -> Result<Self> {
        config.validate()?;
        let tables = Tables::new(&config.params)?;
        let insts = config
            .instruments
            .iter()
            .map(|c| Inst::new(c, config.start_ts))
            .collect();
        Ok(Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            tables,
            insts,
            out: Vec::with_capacity(MAX_EVENT_RECORDS as usize),
            pos: 0,
            fills: Vec::with_capacity(MAX_FILLS),
            next_order_id: FIRST_ORDER_ID,
            sequence: 0,
            spare: None,
            last_ts_recv: 0,
            last_ts_event: 0,
            latency: 0,
            generated: 0,
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// What the simulator says about itself: `SIM` dataset, its symbols, start time and (when
    /// bounded) record count.
    pub fn metadata(&self) -> FeedMetadata {
        FeedMetadata {
            source: SourceKind::Simulator {
                seed: self.config.seed,
            },
            dataset: "SIM".to_owned(),
            symbols: self
                .config
                .instruments
                .iter()
                .map(SimInstrument::symbol_info)
                .collect(),
            start_ts: Some(self.config.start_ts),
            end_ts: None,
            record_count: self.config.max_records,
        }
    }

    /// Records generated so far (handed out or buffered in the current event).
    pub fn generated(&self) -> u64 {
        self.generated
    }

    /// The rest of the current event, or the next whole event; `None` at the end. Faster than
    /// [`RecordSource::next_record`] for consumers that take events whole.
    pub fn next_event(&mut self) -> Option<&[MboMsg]> {
        if self.pos >= self.out.len() && !self.generate() {
            return None;
        }
        let start = self.pos;
        self.pos = self.out.len();
        Some(&self.out[start..])
    }

    /// 32 random bits: each ChaCha `u64` serves two calls (the generator's cost is mostly
    /// its random draws).
    #[inline]
    fn next_u32(&mut self) -> u32 {
        match self.spare.take() {
            Some(r) => r,
            None => {
                let r = self.rng.next_u64();
                self.spare = Some((r >> 32) as u32);
                r as u32
            }
        }
    }

    /// A uniform number in `[0, 1)` (32-bit resolution, plenty for probabilities).
    #[inline]
    fn unit(&mut self) -> f64 {
        f64::from(self.next_u32()) * (1.0 / 4_294_967_296.0)
    }

    /// Generates the next event into `out`. False when `max_records` is reached.
    fn generate(&mut self) -> bool {
        self.out.clear();
        self.pos = 0;
        let remaining = self
            .config
            .max_records
            .map_or(u64::MAX, |n| n.saturating_sub(self.generated));
        if remaining == 0 {
            return false;
        }
        // The instrument whose next event comes first: ts_event never goes backwards.
        let mut i = 0;
        for (k, inst) in self.insts.iter().enumerate() {
            if inst.next_ts < self.insts[i].next_ts {
                i = k;
            }
        }
        let ts_event = self.insts[i].next_ts;
        let gap = self.tables.gap.sample_log(&mut self.rng) as f64 * self.insts[i].gap_scale;
        self.insts[i].next_ts = ts_event.saturating_add(gap as u64).max(ts_event + 1);
        if self.latency == 0 || ts_event - self.last_ts_event > 1_000_000 {
            self.latency = self.tables.latency.sample_log(&mut self.rng).max(1);
        }
        self.last_ts_event = ts_event;
        let ts_recv = ts_event.saturating_add(self.latency).max(self.last_ts_recv);
        self.sequence = self.sequence.wrapping_add(1);
        let cx = Ctx {
            id: self.insts[i].id,
            publisher: self.config.publisher_id,
            tick: self.insts[i].tick,
            base: self.insts[i].base,
            ts_event,
            ts_recv,
            ts_recv_late: ts_recv,
            sequence: self.sequence,
        };
        let bias = self.step_fair(i);

        let p = &self.config.params;
        let book = &self.insts[i].book;
        let n = book.len();
        // Steer the book toward its measured depth: more adds when thin, more cancels when
        // thick. At the target the weights are the measured ones.
        let r = f64::from(n) / f64::from(p.target_orders);
        let lean = (1.0 + 1.5 * (1.0 - r)).clamp(0.2, 2.5);
        let w_add = p.event_mix.add * lean;
        let (w_cancel, w_modify) = if n > 0 {
            (p.event_mix.cancel / lean, p.event_mix.modify)
        } else {
            (0.0, 0.0)
        };
        let w_trade = if n > 0 && !self.config.pre_open && remaining >= MAX_EVENT_RECORDS {
            p.event_mix.trade
        } else {
            0.0
        };
        let mut u = self.unit() * (w_add + w_cancel + w_modify + w_trade);
        if u < w_add {
            self.add_event(i, &cx, bias);
        } else {
            u -= w_add;
            if u < w_cancel {
                self.cancel_event(i, &cx, bias);
            } else if u < w_cancel + w_modify {
                self.modify_event(i, &cx);
            } else {
                self.trade_event(i, &cx, bias);
            }
        }

        if let Some(last) = self.out.last_mut() {
            last.flags = FlagSet::new(flags::LAST);
            self.last_ts_recv = last.ts_recv;
            self.sequence = last.sequence;
        }
        self.generated += self.out.len() as u64;
        true
    }

    /// Moves instrument `i`'s fair value one step; returns how much order flow leans toward
    /// buying (-0.4..0.4).
    fn step_fair(&mut self, i: usize) -> f64 {
        let p = &self.config.params;
        let (step, reversion, pull) = (p.fair_step, p.fair_reversion, p.fair_pull);
        // A uniform step of the same variance as a Gaussian one: over many events the sum is
        // Gaussian anyway, and it avoids a normal sampler on the hot path.
        let shock = (2.0 * self.unit() - 1.0) * step * 3f64.sqrt();
        let inst = &mut self.insts[i];
        inst.fair += reversion * (inst.anchor - inst.fair) + shock;
        inst.fair = inst.fair.clamp(inst.fair_lo, inst.fair_hi);
        let mid = match (inst.book.best(Side::Bid), inst.book.best(Side::Ask)) {
            (Some(b), Some(a)) => (f64::from(b) + f64::from(a)) / 2.0,
            _ => inst.fair,
        };
        (pull * (inst.fair - mid)).clamp(-0.4, 0.4)
    }

    /// A side for a new order: the thinner side is more likely, so both stay populated.
    fn balanced_side(&mut self, i: usize, toward_thin: bool) -> Side {
        let book = &self.insts[i].book;
        let (nb, na) = (
            f64::from(book.side_len(Side::Bid)),
            f64::from(book.side_len(Side::Ask)),
        );
        let lean = 0.5 * (na - nb) / (na + nb + 20.0);
        let p_bid = if toward_thin { 0.5 + lean } else { 0.5 - lean };
        if self.unit() < p_bid {
            Side::Bid
        } else {
            Side::Ask
        }
    }

    fn new_order_id(&mut self) -> u64 {
        let id = self.next_order_id;
        self.next_order_id += 1;
        id
    }

    fn add_event(&mut self, i: usize, cx: &Ctx, bias: f64) {
        let pre_open = self.config.pre_open;
        let mut side = self.balanced_side(i, true);
        let size = self
            .tables
            .add_size
            .sample(&mut self.rng)
            .clamp(1, u64::from(u32::MAX)) as u32;
        let (bb, ba) = {
            let book = &self.insts[i].book;
            (book.best(Side::Bid), book.best(Side::Ask))
        };
        let improve = match (bb, ba) {
            (Some(b), Some(a)) if a > b + 1 && !pre_open => {
                // Each extra tick of spread is another chance to improve: a 2-tick spread
                // is improved at the measured rate, wider ones (never seen in CLX5) faster.
                let stay = 1.0 - self.config.params.inside_when_wide;
                self.unit() >= stay.powi((a - b - 1).min(64) as i32)
            }
            _ => false,
        };
        let idx = if let (true, Some(b), Some(a)) = (improve, bb, ba) {
            // Quotes improve on the side the fair value leans to.
            side = if self.unit() < 0.5 + bias {
                Side::Bid
            } else {
                Side::Ask
            };
            // One tick better (CLX5 never improves by more), unless the spread is far wider
            // than anything seen in continuous trading (a side just emptied): then quote near
            // the fair value, as participants re-anchor rather than creep a tick at a time.
            let fair = self.insts[i].fair.floor() as i64;
            let (b, a) = (i64::from(b), i64::from(a));
            let idx = match side {
                Side::Bid if a - b > 4 => fair.clamp(b + 1, a - 1),
                Side::Ask if a - b > 4 => (fair + 1).clamp(b + 1, a - 1),
                Side::Bid => b + 1,
                Side::Ask => a - 1,
            };
            idx as u32
        } else {
            let own = match side {
                Side::Bid => bb,
                Side::Ask => ba,
            };
            let mut depth = 0;
            // The mirror of the cancels' restoring force: joining a level more than M times
            // fuller than typical is discouraged (the depth is drawn again, twice at most),
            // so no queue grows without bound.
            for _ in 0..3 {
                let r = self.rng.next_u64();
                depth = self
                    .tables
                    .add_depth
                    .sample_bits(r)
                    .min(u64::from(MAX_DEPTH)) as u32;
                let Some(best) = own else { break };
                let idx = match side {
                    Side::Bid => best.checked_sub(depth),
                    Side::Ask => Some(best + depth).filter(|&x| x < WINDOW),
                };
                let full = idx.map_or(0.0, |idx| {
                    f64::from(self.insts[i].book.level_count(side, idx))
                        * self.tables.fullness[depth as usize]
                });
                if full <= 1.0 || (r >> 48) as f64 * (1.0 / 65_536.0) * full < 1.0 {
                    break;
                }
            }
            let depth = i64::from(depth);
            // The first order of an empty side sets its touch: place it there.
            let depth = if own.is_some() { depth } else { 0 };
            let opposite = match side {
                Side::Bid => ba,
                Side::Ask => bb,
            };
            let through =
                pre_open && opposite.is_some() && self.unit() < self.config.params.pre_open_cross;
            let cross = i64::from(self.next_u32() % 3);
            let inst = &self.insts[i];
            let raw = match (through, side, opposite) {
                // Pre-open: a bid priced at or above the best offer (or the reverse) rests.
                (true, Side::Bid, Some(a)) => i64::from(a) + cross,
                (true, Side::Ask, Some(b)) => i64::from(b) - cross,
                _ => {
                    let reference = match (side, bb, ba) {
                        (Side::Bid, Some(b), _) => i64::from(b),
                        (Side::Ask, _, Some(a)) => i64::from(a),
                        (Side::Bid, None, Some(a)) => i64::from(a) - 1,
                        (Side::Ask, Some(b), None) => i64::from(b) + 1,
                        (Side::Bid, None, None) => inst.fair.floor() as i64,
                        (Side::Ask, None, None) => inst.fair.floor() as i64 + 1,
                    };
                    let mut idx = match side {
                        Side::Bid => reference - depth,
                        Side::Ask => reference + depth,
                    };
                    if !pre_open {
                        // A passive order never reaches the opposite touch.
                        match (side, opposite) {
                            (Side::Bid, Some(a)) => idx = idx.min(i64::from(a) - 1),
                            (Side::Ask, Some(b)) => idx = idx.max(i64::from(b) + 1),
                            _ => {}
                        }
                    }
                    idx
                }
            };
            inst.clamp_idx(raw)
        };
        let id = self.new_order_id();
        self.insts[i].book.add(id, side, idx, size);
        self.out.push(cx.record(b'A', side, idx, size, id, false));
    }

    /// Picks a resting order of `side` (or of the other side if it is empty) so that each
    /// order's chance follows its depth's measured hazard: a tick is drawn from `table` (the
    /// measured cancel or modify depths) and kept with probability `orders there / (M ×
    /// typical orders there)` (rejection sampling). Thick levels are thus drained faster and
    /// thin ones spared, the restoring force that keeps the book's shape near the measured
    /// profile. `NIL` only when the book is empty.
    fn pick_order(&mut self, i: usize, side: Side, modify: bool) -> (Side, u32) {
        let side = if self.insts[i].book.side_len(side) == 0 {
            side.opposite()
        } else {
            side
        };
        let mut chosen = None;
        let mut depth = 0;
        // The mean acceptance is 1/M: 32 tries fail only for a book far thinner than its
        // profile; then the level nearest the last drawn depth is used.
        for _ in 0..32 {
            let table = if modify {
                &self.tables.modify_depth
            } else {
                &self.tables.cancel_depth
            };
            // One draw per try: the low 48 bits choose the depth, the top 16 decide.
            let r = self.rng.next_u64();
            depth = table.sample_bits(r).min(u64::from(MAX_DEPTH)) as u32;
            let book = &self.insts[i].book;
            let Some(best) = book.best(side) else {
                break;
            };
            let idx = match side {
                Side::Bid => best.checked_sub(depth),
                Side::Ask => Some(best + depth).filter(|&x| x < WINDOW),
            };
            let Some(idx) = idx else { continue };
            let count = book.level_count(side, idx);
            let accept = (r >> 48) as f64 * (1.0 / 65_536.0);
            if count > 0 && accept < f64::from(count) * self.tables.fullness[depth as usize] {
                chosen = Some(idx);
                break;
            }
        }
        let book = &self.insts[i].book;
        let chosen = chosen.or_else(|| book.level_near_depth(side, depth));
        let r = self.next_u32();
        match chosen {
            Some(idx) => (side, self.insts[i].book.pick_in_level(side, idx, r)),
            None => (side, NIL),
        }
    }

    fn cancel_event(&mut self, i: usize, cx: &Ctx, bias: f64) {
        // Orders are pulled more on the side the fair value moves toward; half the cancels
        // also lean to the fuller side, so both sides stay populated.
        let side = if self.unit() < 0.5 - bias / 2.0 {
            Side::Bid
        } else {
            Side::Ask
        };
        let side = if self.unit() < 0.5 {
            side
        } else {
            self.balanced_side(i, false)
        };
        let informed = self.config.params.informed_cancel;
        let against = if bias > 0.0 { Side::Ask } else { Side::Bid };
        let (side, slot) = match self.insts[i].book.best(against) {
            // Quotes on the wrong side of a moving fair value are pulled first: this is what
            // empties a touch and moves the mid.
            Some(best) if self.unit() < bias.abs() * informed => {
                let r = self.next_u32();
                (against, self.insts[i].book.pick_in_level(against, best, r))
            }
            _ => self.pick_order(i, side, false),
        };
        if slot == NIL {
            // Unreachable: cancels are only drawn when orders rest. Stay valid regardless.
            return self.add_event(i, cx, bias);
        }
        let o = *self.insts[i].book.order(slot);
        self.insts[i].book.remove(slot);
        self.out
            .push(cx.record(b'C', side, o.idx, o.size, o.id, false));
    }

    fn modify_event(&mut self, i: usize, cx: &Ctx) {
        let side = self.balanced_side(i, false);
        let kinds = self.config.params.modify_kind;
        let u = self.unit() * (kinds.price + kinds.size_down + kinds.size_up);
        let reprice = u < kinds.price;
        let (mut m, mut toward, mut parked) = (0i64, false, None);
        if reprice {
            m = self
                .tables
                .modify_move
                .sample(&mut self.rng)
                .clamp(1, u64::from(MAX_DEPTH)) as i64;
            toward = if m > 50 {
                self.unit() < self.config.params.modify_far_toward
            } else {
                self.unit() < self.config.params.modify_toward
            };
            if m > 50 && toward {
                // Far moves shuttle orders between a near and a far price (CLX5's ±101–120
                // tick modifies): one coming back is an order parked about `m` behind.
                let r = self.next_u32();
                let book = &self.insts[i].book;
                let s = if book.side_len(side) == 0 {
                    side.opposite()
                } else {
                    side
                };
                parked = book
                    .level_near_depth(s, m as u32)
                    .filter(|&idx| i64::from(book.behind(s, idx)) >= m / 2)
                    .map(|idx| (s, book.pick_in_level(s, idx, r)));
                // Nothing parked: park one instead.
                toward = parked.is_some();
            }
        }
        let (side, slot) = match parked {
            Some(found) => found,
            None => self.pick_order(i, side, true),
        };
        if slot == NIL {
            return self.add_event(i, cx, 0.0);
        }
        let o = *self.insts[i].book.order(slot);
        let mut new_idx = o.idx;
        if reprice {
            let book = &self.insts[i].book;
            let mut idx = if m > 50 && !toward {
                // Parked `m` ticks behind the touch.
                let best = i64::from(book.best(side).unwrap_or(o.idx));
                match side {
                    Side::Bid => best - m,
                    Side::Ask => best + m,
                }
            } else {
                match (side, toward) {
                    (Side::Bid, true) | (Side::Ask, false) => i64::from(o.idx) + m,
                    (Side::Bid, false) | (Side::Ask, true) => i64::from(o.idx) - m,
                }
            };
            if !self.config.pre_open {
                let book = &self.insts[i].book;
                match side {
                    Side::Bid => {
                        if let Some(a) = book.best(Side::Ask) {
                            idx = idx.min(i64::from(a) - 1);
                        }
                    }
                    Side::Ask => {
                        if let Some(b) = book.best(Side::Bid) {
                            idx = idx.max(i64::from(b) + 1);
                        }
                    }
                }
            }
            new_idx = self.insts[i].clamp_idx(idx);
        }
        let r = self.next_u32();
        let book = &mut self.insts[i].book;
        let size = if new_idx != o.idx {
            book.requeue(slot, new_idx, o.size);
            o.size
        } else if u < kinds.price + kinds.size_down && o.size > 1 {
            // A size decrease keeps the order's place in the queue.
            let size = 1 + r % (o.size - 1);
            book.set_size(slot, size);
            size
        } else {
            // A size increase loses priority: back of the same level.
            let extra = self.tables.add_size.sample(&mut self.rng).clamp(1, 1 << 20) as u32;
            let size = o.size.saturating_add(extra);
            book.requeue(slot, o.idx, size);
            size
        };
        self.out
            .push(cx.record(b'M', side, new_idx, size, o.id, false));
    }

    fn trade_event(&mut self, i: usize, cx: &Ctx, bias: f64) {
        let p = &self.config.params;
        let (without_fill, through, sweep) = (p.trade_without_fill, p.trade_through, p.sweep);
        let buy = self.unit() < 0.5 + bias;
        let mut aggressor = if buy { Side::Bid } else { Side::Ask };
        if self.insts[i].book.side_len(aggressor.opposite()) == 0 {
            aggressor = aggressor.opposite();
        }
        let resting = aggressor.opposite();
        let Some(best) = self.insts[i].book.best(resting) else {
            return self.add_event(i, cx, bias);
        };
        let id = self.new_order_id();
        // The order updates after the fills come in the exchange's next packet.
        let late = 10_000 + u64::from(self.next_u32() % 40_000);
        let cx = &Ctx {
            ts_recv_late: cx.ts_recv + late,
            ..*cx
        };
        let deeper = |idx: u32, k: u32| match resting {
            Side::Ask => idx.saturating_add(k).min(WINDOW - 1),
            Side::Bid => idx.saturating_sub(k),
        };
        if self.unit() < without_fill {
            // A trade against implied liquidity: the book does not change.
            let size = self
                .tables
                .trade_size
                .sample(&mut self.rng)
                .clamp(1, 1 << 20) as u32;
            self.out
                .push(cx.record(b'T', aggressor, best, size, id, false));
            return;
        }
        let (mut remaining, limit) = if self.unit() < sweep {
            // Sized to take 2 to 5 whole levels.
            let levels = 2 + self.next_u32() % 4;
            let book = &self.insts[i].book;
            let (mut size, mut idx, mut last) = (0u64, Some(best), best);
            for _ in 0..levels {
                let Some(l) = idx else { break };
                let mut slot = book.head(resting, l);
                while slot != NIL {
                    size += u64::from(book.order(slot).size);
                    slot = book.order(slot).next;
                }
                last = l;
                idx = book.next_deeper(resting, l);
            }
            (size.min(u64::from(u32::MAX)) as u32, last)
        } else {
            let size = self
                .tables
                .trade_size
                .sample(&mut self.rng)
                .clamp(1, 1 << 20) as u32;
            let offset = if self.unit() < through {
                1 + self.next_u32() % 3
            } else {
                0
            };
            (size, deeper(best, offset))
        };
        let within = |l: u32| match resting {
            Side::Ask => l <= limit,
            Side::Bid => l >= limit,
        };

        // Fills, front of each queue first; the book is updated after, as Databento sends
        // the fills before the order updates.
        self.fills.clear();
        let book = &self.insts[i].book;
        let mut level = Some(best);
        while let Some(l) = level {
            if remaining == 0 || !within(l) || self.fills.len() == MAX_FILLS {
                break;
            }
            let t = self.out.len();
            self.out.push(cx.record(b'T', aggressor, l, 0, id, false));
            let mut traded = 0;
            let mut slot = book.head(resting, l);
            while slot != NIL && remaining > 0 && self.fills.len() < MAX_FILLS {
                let o = book.order(slot);
                let qty = remaining.min(o.size);
                self.out.push(cx.record(b'F', resting, l, qty, o.id, false));
                self.fills.push(Fill { slot, qty });
                remaining -= qty;
                traded += qty;
                slot = o.next;
            }
            self.out[t].size = traded;
            level = book.next_deeper(resting, l);
        }
        let capped = self.fills.len() == MAX_FILLS;
        let book = &mut self.insts[i].book;
        for f in &self.fills {
            let o = *book.order(f.slot);
            if f.qty == o.size {
                book.remove(f.slot);
                self.out
                    .push(cx.record(b'C', resting, o.idx, f.qty, o.id, true));
            } else {
                // A partial fill is a size decrease: the order keeps its place.
                book.set_size(f.slot, o.size - f.qty);
                self.out
                    .push(cx.record(b'M', resting, o.idx, o.size - f.qty, o.id, true));
            }
        }
        if remaining > 0 && !capped {
            // Everything up to the limit is gone, so the remainder rests without crossing.
            book.add(id, aggressor, limit, remaining);
            self.out
                .push(cx.record(b'A', aggressor, limit, remaining, id, true));
        }
    }

    fn restart(&mut self) {
        self.rng = ChaCha8Rng::seed_from_u64(self.config.seed);
        for inst in &mut self.insts {
            inst.reset(self.config.start_ts);
        }
        self.out.clear();
        self.pos = 0;
        self.next_order_id = FIRST_ORDER_ID;
        self.sequence = 0;
        self.spare = None;
        self.last_ts_recv = 0;
        self.last_ts_event = 0;
        self.latency = 0;
        self.generated = 0;
    }
}

impl RecordSource for Simulator {
    #[inline]
    fn next_record(&mut self) -> Result<Option<&MboMsg>> {
        if self.pos >= self.out.len() && !self.generate() {
            return Ok(None);
        }
        let rec = &self.out[self.pos];
        self.pos += 1;
        Ok(Some(rec))
    }

    fn rewind(&mut self) -> Result<()> {
        self.restart();
        Ok(())
    }
}
