//! What the simulator's defaults are calibrated on: statistics measured from a real Databento
//! MBO capture.
//!
//! Source: `CLX5_mbo.dbn` (`../shared/data/mbo/`, see its PROVENANCE.md): CME Globex crude oil
//! CLX5, 2025-09-24 19:30–21:00 UTC, the continuous session only (the file's pre-open tail
//! after the 21:00 close is left out): 37,343 records, 31,831 events. Measured by
//! `cargo run --release -p mbo-feed --example calibrate` (the measurement code is
//! `tests/sim/measure.rs`; `tests/sim.rs` checks these numbers against the file and the
//! simulator's output against them).
//!
//! Conventions: "ticks behind the touch" is the distance of a price from the best price of
//! its own side (0 = at the best bid for a bid; positive = deeper in the book). Buckets are
//! `(lo, hi, weight)`: values in `lo..=hi`, weights as measured fractions.
//!
//! The file starts mid-session without a snapshot, so 1,224 cancels and 216 modifies named
//! orders placed before it began; those could not be measured (their book position is unknown)
//! and are not in the per-order tables.

/// One bucket of a measured distribution: values `lo..=hi` with relative `weight`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Smallest value of the bucket.
    pub lo: u64,
    /// Largest value of the bucket (inclusive).
    pub hi: u64,
    /// Relative frequency (the weights of a table need not sum to 1).
    pub weight: f64,
}

const fn b(lo: u64, hi: u64, weight: f64) -> Bucket {
    Bucket { lo, hi, weight }
}

/// Events by kind. CLX5: single-record add 46.59 %, cancel 41.46 %, modify 6.96 %, trade
/// (first record `T`) 4.99 %, other 0.01 % (two mass cancels; not simulated).
pub const EVENT_MIX: EventMix = EventMix {
    add: 0.4659,
    cancel: 0.4146,
    modify: 0.0696,
    trade: 0.0499,
};

/// Relative frequencies of event kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventMix {
    /// A new passive order (one `A` record).
    pub add: f64,
    /// A cancel of a resting order (one `C` record).
    pub cancel: f64,
    /// A modify of a resting order (one `M` record).
    pub modify: f64,
    /// A trade (`T`, `F`..., `C`/`M`..., sometimes `A`).
    pub trade: f64,
}

/// Sizes of passive adds (lots). CLX5: p50 1, p90 2, p99 9, max 50, mean 1.61. (The bump at 9
/// is real: one participant quotes 9 lots.)
#[allow(clippy::approx_constant)] // 0.6931 is a measured fraction that happens to be near ln 2.
pub const ADD_SIZE: &[Bucket] = &[
    b(1, 1, 0.6931),
    b(2, 2, 0.2227),
    b(3, 3, 0.0256),
    b(4, 4, 0.0231),
    b(5, 5, 0.0038),
    b(6, 6, 0.0033),
    b(7, 7, 0.0007),
    b(8, 8, 0.0029),
    b(9, 9, 0.0229),
    b(10, 10, 0.0005),
    b(11, 15, 0.0007),
    b(16, 20, 0.0002),
    b(21, 30, 0.0001),
    b(31, 50, 0.0003),
];

/// Ticks behind the own-side touch of passive adds at or behind the touch. CLX5: 54.35 % join
/// the best price, 16.6 % go 1–4 ticks behind, 22 % rest more than 20 ticks away (p90 65,
/// p99 134). Adds inside the spread are [`INSIDE_WHEN_WIDE`].
pub const ADD_DEPTH: &[Bucket] = &[
    b(0, 0, 0.5435),
    b(1, 1, 0.0656),
    b(2, 2, 0.0378),
    b(3, 3, 0.0391),
    b(4, 4, 0.0242),
    b(5, 5, 0.0065),
    b(6, 10, 0.0083),
    b(11, 20, 0.0203),
    b(21, 30, 0.0308),
    b(31, 40, 0.0270),
    b(41, 50, 0.0273),
    b(51, 60, 0.0241),
    b(61, 70, 0.0265),
    b(71, 80, 0.0158),
    b(81, 90, 0.0195),
    b(91, 100, 0.0107),
    b(101, 110, 0.0134),
    b(111, 120, 0.0131),
    b(121, 130, 0.0028),
    b(131, 140, 0.0016),
    b(141, 160, 0.0041),
    b(161, 200, 0.0042),
    b(201, 300, 0.0007),
];

/// Fraction of passive adds placed inside the spread when it is wider than one tick. CLX5:
/// 2,729 adds met a spread of 2+ ticks; 17.92 % of them improved the price (always by one
/// tick: 3.30 % of all adds are 1 tick inside, none deeper).
pub const INSIDE_WHEN_WIDE: f64 = 0.1792;

/// Ticks behind the own-side touch of cancelled orders. CLX5: 51.2 % at the best price (orders
/// at the touch are short-lived; deep ones rest for long), p90 67, p99 135. Every CLX5 cancel
/// removes the whole order (size reductions are modifies).
pub const CANCEL_DEPTH: &[Bucket] = &[
    b(0, 0, 0.5118),
    b(1, 1, 0.0745),
    b(2, 2, 0.0518),
    b(3, 3, 0.0456),
    b(4, 4, 0.0230),
    b(5, 5, 0.0089),
    b(6, 10, 0.0118),
    b(11, 20, 0.0224),
    b(21, 30, 0.0358),
    b(31, 40, 0.0317),
    b(41, 50, 0.0326),
    b(51, 60, 0.0282),
    b(61, 70, 0.0318),
    b(71, 80, 0.0185),
    b(81, 90, 0.0233),
    b(91, 100, 0.0125),
    b(101, 110, 0.0154),
    b(111, 120, 0.0053),
    b(121, 130, 0.0034),
    b(131, 140, 0.0019),
    b(141, 160, 0.0046),
    b(161, 200, 0.0047),
    b(201, 300, 0.0006),
];

/// Ticks behind the own-side touch of modified orders. CLX5: 18.6 % at the touch, 17.7 % one
/// tick behind, 26.5 % 11–20 behind, 19.2 % 111–120 behind (orders shuttled between a near and
/// a far price, see [`MODIFY_MOVE`]).
pub const MODIFY_DEPTH: &[Bucket] = &[
    b(0, 0, 0.1856),
    b(1, 1, 0.1773),
    b(2, 2, 0.0591),
    b(3, 3, 0.0241),
    b(4, 4, 0.0177),
    b(5, 5, 0.0084),
    b(6, 10, 0.0212),
    b(11, 20, 0.2654),
    b(21, 30, 0.0133),
    b(31, 40, 0.0182),
    b(41, 50, 0.0079),
    b(51, 60, 0.0015),
    b(71, 80, 0.0005),
    b(81, 90, 0.0010),
    b(101, 110, 0.0005),
    b(111, 120, 0.1920),
    b(121, 130, 0.0059),
    b(161, 200, 0.0005),
];

/// Modifies by kind (2,031 modifies of known orders outside trades): price change 94.19 %,
/// size decrease at the same price 5.07 %, size increase 0.74 %.
pub const MODIFY_KIND: ModifyKinds = ModifyKinds {
    price: 0.9419,
    size_down: 0.0507,
    size_up: 0.0074,
};

/// Relative frequencies of modify kinds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModifyKinds {
    /// The price changes (the order goes to the back of the new level's queue).
    pub price: f64,
    /// The size decreases at the same price (the order keeps its place).
    pub size_down: f64,
    /// The size increases at the same price (the order goes to the back of the queue).
    pub size_up: f64,
}

/// Size of a modify's price change, in ticks. CLX5: 53.5 % move by one tick, 35.1 % by
/// 101–120 ticks (an order parked far away and brought back, or the reverse).
pub const MODIFY_MOVE: &[Bucket] = &[
    b(1, 1, 0.5353),
    b(2, 2, 0.0497),
    b(3, 4, 0.0141),
    b(5, 10, 0.0235),
    b(11, 50, 0.0215),
    b(101, 120, 0.3512),
    b(121, 200, 0.0047),
];

/// Fraction of small (≤ 50 ticks) modify moves that go toward the touch. CLX5: 38.22 % of
/// price modifies move 1–50 ticks toward the touch, 26.19 % away.
pub const MODIFY_TOWARD: f64 = 0.5934;

/// Fraction of far (> 50 ticks) modify moves that go toward the touch (bringing a parked
/// order back). CLX5: 20.96 % of price modifies move 101–200 ticks toward the touch, 14.63 %
/// away.
pub const MODIFY_FAR_TOWARD: f64 = 0.5889;

/// Size traded by one aggressor (sum of the event's `T` sizes). CLX5 (1,588 trade events):
/// p50 1, p90 4, p99 18, max 91, mean 2.28.
pub const TRADE_SIZE: &[Bucket] = &[
    b(1, 1, 0.6982),
    b(2, 2, 0.1317),
    b(3, 3, 0.0473),
    b(4, 4, 0.0384),
    b(5, 5, 0.0126),
    b(6, 6, 0.0145),
    b(7, 8, 0.0214),
    b(9, 10, 0.0050),
    b(11, 15, 0.0151),
    b(16, 20, 0.0063),
    b(21, 30, 0.0038),
    b(31, 50, 0.0038),
    b(51, 91, 0.0019),
];

/// Trade events with a `T` and no fill (implied or hidden liquidity; the book does not
/// change). CLX5: 24 of 1,588 (1.51 %).
pub const TRADE_WITHOUT_FILL: f64 = 0.0151;

/// Trade events whose aggressor was priced through the touch. CLX5: about 1 % of trade events
/// touch two or more price levels (mean 1.01 levels per trade, max 3) and 2.1 % end with
/// the aggressor's remainder resting (`A` inside the trade event).
pub const TRADE_THROUGH: f64 = 0.01;

/// Gaps between consecutive events of one instrument (`ts_recv`, ns). CLX5: very bursty:
/// p50 257 µs, p90 200 ms, mean 170 ms. Values are log-uniform inside each bucket.
pub const EVENT_GAP_NS: &[Bucket] = &[
    b(0, 0, 0.0092),
    b(1_000, 10_000, 0.0579),
    b(10_000, 100_000, 0.2551),
    b(100_000, 1_000_000, 0.3228),
    b(1_000_000, 10_000_000, 0.1481),
    b(10_000_000, 100_000_000, 0.0856),
    b(100_000_000, 1_000_000_000, 0.0757),
    b(1_000_000_000, 10_000_000_000, 0.0445),
    b(10_000_000_000, 20_000_000_000, 0.0009),
];

/// `ts_recv - ts_event` of an event's first record (ns). CLX5: min 75 µs, p50 224 µs, p90
/// 3.6 ms. Log-uniform inside each bucket.
pub const LATENCY_NS: &[Bucket] = &[
    b(75_000, 100_000, 0.0808),
    b(100_000, 200_000, 0.3900),
    b(200_000, 300_000, 0.1011),
    b(300_000, 400_000, 0.0696),
    b(400_000, 500_000, 0.0420),
    b(500_000, 1_000_000, 0.0863),
    b(1_000_000, 2_000_000, 0.0726),
    b(2_000_000, 5_000_000, 0.0857),
    b(5_000_000, 30_000_000, 0.0720),
];

/// Mean resting orders per price tick by ticks behind the own-side touch (`weight` = orders
/// per tick, averaged over every boundary and side; empty ticks count as 0). CLX5: ~9 orders
/// at the touch, a thick band 1–4 ticks behind (45 orders in the top five ticks), about one
/// order per tick out to 60 ticks, then thinning, with the parked orders at 111–120.
///
/// The simulator uses it to make cancels (and modifies) hit levels in proportion to how full
/// they are relative to this profile, so thin levels refill and thick ones drain: without
/// that restoring force the touch queue would be a driftless random walk that keeps emptying
/// and the spread would blow out.
pub const DEPTH_PROFILE: &[Bucket] = &[
    b(0, 0, 8.980),
    b(1, 1, 11.714),
    b(2, 2, 9.265),
    b(3, 3, 7.095),
    b(4, 4, 4.809),
    b(5, 5, 3.257),
    b(6, 10, 1.918),
    b(11, 20, 1.323),
    b(21, 30, 1.266),
    b(31, 40, 1.293),
    b(41, 50, 1.387),
    b(51, 60, 1.110),
    b(61, 70, 0.707),
    b(71, 80, 0.399),
    b(81, 90, 0.402),
    b(91, 100, 0.248),
    b(101, 110, 0.378),
    b(111, 120, 0.555),
    b(121, 130, 0.062),
    b(131, 140, 0.032),
    b(141, 160, 0.075),
    b(161, 200, 0.046),
];

/// Resting orders per book at event boundaries. CLX5: p50 318 (p90 434), 77 price levels per
/// side (p50), 2 orders per level (p50 over the top 20 levels; mean 3.7), 9 orders at the
/// best level (p50).
pub const ORDERS_PER_BOOK: u32 = 318;

/// Spread at boundaries, for reference (emerges from the rules above, not an input). CLX5:
/// 1 tick 83.64 %, 2 ticks 16.32 %, 3 ticks 0.04 %.
pub const SPREAD_ONE_TICK: f64 = 0.8364;

/// Mid moves, for reference (an input only through the fair-value walk's scale). CLX5: median
/// |Δmid| over 1,000 events 1 tick; range over the session 6 ticks.
pub const MID_MOVE_1000_EVENTS: f64 = 1.0;
