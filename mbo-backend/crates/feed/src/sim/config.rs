//! Simulator configuration: instruments, seed, session mode and behaviour parameters.

use super::calibration::{self, Bucket, EventMix, ModifyKinds};
use crate::{FeedError, SymbolInfo};

/// 2025-01-02 14:30:00 UTC (ns): a plain weekday during US trading hours.
pub const DEFAULT_START_TS: u64 = 1_735_828_200_000_000_000;

/// One simulated instrument.
#[derive(Debug, Clone, PartialEq)]
pub struct SimInstrument {
    /// Raw symbol written in metadata (at most 70 bytes).
    pub symbol: String,
    /// Instrument id carried by every record (unique per simulator).
    pub instrument_id: u32,
    /// Minimum price increment, 1e-9 units (`10_000_000` = 0.01).
    pub tick: i64,
    /// Initial mid price and anchor of its mean reversion, 1e-9 units; a positive multiple of
    /// `tick`.
    pub start_price: i64,
    /// Event rate relative to the calibration market (1.0 = CLX5's rate, mean gap 170 ms).
    pub activity: f64,
}

impl SimInstrument {
    /// A symbol → instrument mapping for metadata.
    pub fn symbol_info(&self) -> SymbolInfo {
        SymbolInfo {
            symbol: self.symbol.clone(),
            instrument_id: self.instrument_id,
        }
    }
}

/// Realistic presets: (symbol root, tick, start price, activity), all 1e-9 units.
const PRESETS: [(&str, i64, i64, f64); 8] = [
    // Crude oil: the calibration market itself (CLX5, 0.01 tick).
    ("CL", 10_000_000, 64_800_000_000, 1.0),
    // E-mini S&P 500: 0.25 index point.
    ("ES", 250_000_000, 5_000_000_000_000, 1.5),
    // E-mini Nasdaq-100: 0.25.
    ("NQ", 250_000_000, 18_000_000_000_000, 1.2),
    // Gold: 0.10.
    ("GC", 100_000_000, 2_400_000_000_000, 0.8),
    // 10-year note: 1/64 of a point.
    ("ZN", 15_625_000, 110_000_000_000, 0.8),
    // Euro FX: 0.00005.
    ("6E", 50_000, 1_085_000_000, 0.7),
    // Natural gas: 0.001.
    ("NG", 1_000_000, 3_000_000_000, 0.9),
    // Silver: 0.005.
    ("SI", 5_000_000, 30_000_000_000, 0.5),
];

/// Behaviour parameters. [`SimParams::default`] follows the measurements in
/// [`calibration`](super::calibration).
#[derive(Debug, Clone, PartialEq)]
pub struct SimParams {
    /// Event kinds' relative frequencies.
    pub event_mix: EventMix,
    /// Passive add sizes (lots).
    pub add_size: Vec<Bucket>,
    /// Ticks behind the own-side touch of passive adds.
    pub add_depth: Vec<Bucket>,
    /// Probability that an add improves the price by one tick when the spread is wider than
    /// one tick.
    pub inside_when_wide: f64,
    /// Ticks behind the own-side touch of cancelled orders.
    pub cancel_depth: Vec<Bucket>,
    /// Typical orders per tick by ticks behind the touch (`weight` = orders): cancels and
    /// modifies favour levels fuller than this and spare thinner ones.
    pub depth_profile: Vec<Bucket>,
    /// Ticks behind the own-side touch of modified orders.
    pub modify_depth: Vec<Bucket>,
    /// Modify kinds' relative frequencies.
    pub modify_kind: ModifyKinds,
    /// Price moves of price-changing modifies (ticks).
    pub modify_move: Vec<Bucket>,
    /// Probability that a small (≤ 50 ticks) modify move goes toward the touch.
    pub modify_toward: f64,
    /// Probability that a far (> 50 ticks) modify move brings a parked order back toward the
    /// touch (otherwise a near order is parked that far behind).
    pub modify_far_toward: f64,
    /// Aggressor sizes (lots).
    pub trade_size: Vec<Bucket>,
    /// Probability that a trade event has no fill (a lone `T`).
    pub trade_without_fill: f64,
    /// Probability that an aggressor is priced 1–3 ticks through the touch (it may sweep
    /// several levels, and its remainder rests).
    pub trade_through: f64,
    /// Probability that a trade event is a sweep: an aggressor sized to take 2–5 whole levels.
    pub sweep: f64,
    /// Gaps between an instrument's events (ns, log-uniform in buckets).
    pub event_gap_ns: Vec<Bucket>,
    /// `ts_recv - ts_event` (ns, log-uniform in buckets), drawn again after every pause of
    /// more than 1 ms and kept through bursts (a queue builds up and drains, it does not
    /// change at random between two packets microseconds apart).
    pub latency_ns: Vec<Bucket>,
    /// Resting orders per book the add/cancel balance steers toward.
    pub target_orders: u32,
    /// Standard deviation of the fair value's step per event, ticks.
    pub fair_step: f64,
    /// Mean reversion of the fair value toward the start price, per event (0–1).
    pub fair_reversion: f64,
    /// How strongly order flow leans toward the fair value: the buy probability of
    /// aggressors is `0.5 + fair_pull * (fair - mid)` (ticks), clamped to 0.1–0.9.
    pub fair_pull: f64,
    /// Informed quote pulling: a cancel takes an order at the touch of the side the fair
    /// value moves away from with probability `informed_cancel × |lean|` (the lean being the
    /// aggressor buy probability minus 0.5). This is what empties a touch and widens the
    /// spread; at 1.0 the spread is one tick at about 87 % of boundaries (CLX5: 83.6 %).
    pub informed_cancel: f64,
    /// With `pre_open`: probability that an add is priced through the opposite touch.
    pub pre_open_cross: f64,
}

impl Default for SimParams {
    fn default() -> Self {
        Self {
            event_mix: calibration::EVENT_MIX,
            add_size: calibration::ADD_SIZE.to_vec(),
            add_depth: calibration::ADD_DEPTH.to_vec(),
            inside_when_wide: calibration::INSIDE_WHEN_WIDE,
            cancel_depth: calibration::CANCEL_DEPTH.to_vec(),
            depth_profile: calibration::DEPTH_PROFILE.to_vec(),
            modify_depth: calibration::MODIFY_DEPTH.to_vec(),
            modify_kind: calibration::MODIFY_KIND,
            modify_move: calibration::MODIFY_MOVE.to_vec(),
            modify_toward: calibration::MODIFY_TOWARD,
            modify_far_toward: calibration::MODIFY_FAR_TOWARD,
            trade_size: calibration::TRADE_SIZE.to_vec(),
            trade_without_fill: calibration::TRADE_WITHOUT_FILL,
            trade_through: calibration::TRADE_THROUGH,
            // CLX5 has no sweep deeper than 3 levels; ES files have up to 10. A rare forced
            // sweep keeps that path exercised (0.3 % of trades).
            sweep: 0.003,
            event_gap_ns: calibration::EVENT_GAP_NS.to_vec(),
            latency_ns: calibration::LATENCY_NS.to_vec(),
            target_orders: calibration::ORDERS_PER_BOOK,
            // A step of 0.047 tick per event gives a median |Δ| of ~1 tick over 1,000 events
            // (CLX5: 1); reversion 2e-5 keeps the long-run spread of the walk near 7 ticks.
            fair_step: 0.047,
            fair_reversion: 2e-5,
            fair_pull: 0.3,
            informed_cancel: 1.0,
            pre_open_cross: 0.15,
        }
    }
}

/// Everything that defines a simulated stream. Same config, same records.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Seed of the random generator.
    pub seed: u64,
    /// Instruments (at least one).
    pub instruments: Vec<SimInstrument>,
    /// CME pre-open: no trades, and orders may rest through the opposite touch, so the book
    /// is crossed at event boundaries (as it genuinely is before an opening auction).
    pub pre_open: bool,
    /// `ts_event` of the first event (ns since the epoch).
    pub start_ts: u64,
    /// Stop after exactly this many records (the last one carries `F_LAST`); `None` = endless.
    pub max_records: Option<u64>,
    /// Publisher id on every record (1 = CME Globex MDP 3.0).
    pub publisher_id: u16,
    /// Behaviour.
    pub params: SimParams,
}

impl SimConfig {
    /// `k` realistic instruments cycling through CL, ES, NQ, GC, ZN, 6E, NG, SI presets
    /// (symbols `CL.SIM`, `ES.SIM`...; beyond eight, `CL.SIM2`...), ids from 1001.
    pub fn default_instruments(k: usize) -> Vec<SimInstrument> {
        (0..k)
            .map(|i| {
                let (root, tick, start_price, activity) = PRESETS[i % PRESETS.len()];
                let round = i / PRESETS.len();
                let symbol = if round == 0 {
                    format!("{root}.SIM")
                } else {
                    format!("{root}.SIM{}", round + 1)
                };
                SimInstrument {
                    symbol,
                    instrument_id: 1001 + i as u32,
                    tick,
                    start_price,
                    activity,
                }
            })
            .collect()
    }

    /// A configuration with `k` default instruments and defaults elsewhere.
    pub fn new(seed: u64, k: usize) -> Self {
        Self {
            seed,
            instruments: Self::default_instruments(k),
            pre_open: false,
            start_ts: DEFAULT_START_TS,
            max_records: None,
            publisher_id: 1,
            params: SimParams::default(),
        }
    }

    /// Checks instruments and parameters.
    ///
    /// # Errors
    /// [`FeedError::Options`] naming the first problem.
    pub fn validate(&self) -> crate::source::Result<()> {
        let bad = |m: String| Err(FeedError::Options(m));
        if self.instruments.is_empty() {
            return bad("the simulator needs at least one instrument".into());
        }
        for (i, inst) in self.instruments.iter().enumerate() {
            let name = &inst.symbol;
            if name.is_empty() || name.len() > 70 {
                return bad(format!("instrument {i}: symbol must be 1 to 70 bytes"));
            }
            if inst.tick <= 0 {
                return bad(format!("{name}: tick must be positive"));
            }
            if inst.start_price <= 0 || inst.start_price % inst.tick != 0 {
                return bad(format!(
                    "{name}: start price must be a positive multiple of the tick"
                ));
            }
            if inst.start_price / inst.tick > i64::from(i32::MAX) {
                return bad(format!("{name}: start price is too many ticks from zero"));
            }
            if !(inst.activity.is_finite() && inst.activity > 0.0) {
                return bad(format!("{name}: activity must be positive"));
            }
            let dup = self.instruments[..i]
                .iter()
                .any(|o| o.instrument_id == inst.instrument_id || o.symbol == inst.symbol);
            if dup {
                return bad(format!("{name}: duplicate symbol or instrument id"));
            }
        }
        let p = &self.params;
        let probs = [
            ("inside_when_wide", p.inside_when_wide),
            ("modify_toward", p.modify_toward),
            ("modify_far_toward", p.modify_far_toward),
            ("trade_without_fill", p.trade_without_fill),
            ("trade_through", p.trade_through),
            ("sweep", p.sweep),
            ("fair_reversion", p.fair_reversion),
            ("pre_open_cross", p.pre_open_cross),
        ];
        for (what, v) in probs {
            if !(0.0..=1.0).contains(&v) {
                return bad(format!("simulator parameter {what} must be within 0..=1"));
            }
        }
        let weights = [
            p.event_mix.add,
            p.event_mix.cancel,
            p.event_mix.modify,
            p.event_mix.trade,
            p.modify_kind.price,
            p.modify_kind.size_down,
            p.modify_kind.size_up,
        ];
        if weights.iter().any(|w| !(w.is_finite() && *w >= 0.0))
            || p.event_mix.add <= 0.0
            || p.event_mix.cancel <= 0.0
        {
            return bad(
                "simulator event and modify weights must be non-negative, with adds and \
                 cancels positive"
                    .into(),
            );
        }
        if !(p.fair_step.is_finite() && p.fair_step >= 0.0 && p.fair_pull.is_finite()) {
            return bad("simulator fair-value parameters must be finite".into());
        }
        if p.depth_profile
            .iter()
            .any(|b| !(b.weight.is_finite() && b.weight >= 0.0) || b.lo > b.hi)
        {
            return bad("simulator depth_profile needs lo <= hi and finite weights >= 0".into());
        }
        // The lean is at most 0.4, so 2.5 already pulls on every cancel.
        if !(0.0..=2.5).contains(&p.informed_cancel) {
            return bad("simulator parameter informed_cancel must be within 0..=2.5".into());
        }
        if p.target_orders == 0 {
            return bad("simulator target_orders must be positive".into());
        }
        Ok(())
    }
}
