#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The market simulator: validity (checked by the real book engine, `mbo_book::Market`),
//! determinism, pre-open crossing, and statistics against the real CLX5 capture in
//! `../shared/data/mbo/` (see its PROVENANCE.md).

use std::collections::HashMap;
use std::path::PathBuf;

use mbo_book::{Market, MboMsg};
use mbo_feed::dbn_file::FileDecoder;
use mbo_feed::sim::calibration;
use mbo_feed::{FeedError, RecordSource, SimConfig, SimInstrument, Simulator, SourceKind};

#[path = "sim/measure.rs"]
#[allow(dead_code)]
mod measure;

use measure::{frac, mean, pct, Measurement};

/// 2025-09-24 21:00:00 UTC: CL's daily close; CLX5_mbo.dbn holds the pre-open after it.
const CLX5_CLOSE: u64 = 1_758_747_600_000_000_000;

fn data(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

fn read_all(path: PathBuf) -> Vec<MboMsg> {
    let mut dec = FileDecoder::open(&path).unwrap();
    let mut out = Vec::new();
    while let Some(r) = dec.next_record().unwrap() {
        out.push(r.clone());
    }
    out
}

fn config(seed: u64, instruments: usize, records: u64) -> SimConfig {
    let mut c = SimConfig::new(seed, instruments);
    c.max_records = Some(records);
    c
}

fn generate(config: SimConfig) -> Vec<MboMsg> {
    let mut sim = Simulator::new(config).unwrap();
    let mut out = Vec::new();
    while let Some(r) = sim.next_record().unwrap() {
        out.push(r.clone());
    }
    out
}

/// Everything a consumer may rely on, checked record by record and with the engine.
fn assert_valid(records: &[MboMsg], expect_crossed: bool) -> Market {
    let mut market = Market::new();
    let mut event_start = 0usize;
    let (mut ts_recv, mut ts_event, mut sequence) = (0u64, 0u64, 0u32);
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.hd.rtype, dbn::rtype::MBO, "record {i}");
        assert_eq!(r.hd.publisher_id, 1, "record {i}");
        assert!(r.ts_recv >= ts_recv, "ts_recv decreases at record {i}");
        assert!(
            r.hd.ts_event >= ts_event,
            "ts_event decreases at record {i}"
        );
        assert!(r.sequence >= sequence, "sequence decreases at record {i}");
        (ts_recv, ts_event, sequence) = (r.ts_recv, r.hd.ts_event, r.sequence);
        assert!(
            r.ts_recv >= r.hd.ts_event,
            "record {i} received before its event"
        );
        let first = &records[event_start];
        assert_eq!(
            r.hd.instrument_id, first.hd.instrument_id,
            "event at {event_start}"
        );
        assert_eq!(r.hd.ts_event, first.hd.ts_event, "event at {event_start}");
        let flags = r.flags.raw();
        assert_eq!(
            flags & !dbn::flags::LAST,
            0,
            "unexpected flags at record {i}"
        );
        let action = r.action as u8;
        assert!(
            b"ACMTF".contains(&action),
            "action {} at {i}",
            action as char
        );
        assert!(b"AB".contains(&(r.side as u8)), "side at {i}");
        assert!(r.size > 0 && r.price > 0, "size and price at {i}");
        // Databento's trade structure: a trade event starts with `T`; fills follow a `T`.
        if action == b'F' {
            assert_eq!(
                first.action as u8, b'T',
                "fill outside a trade event at {i}"
            );
        }
        let applied = market.apply(r);
        if applied.boundary {
            if first.action as u8 == b'T' {
                assert_trade_structure(&records[event_start..=i]);
            }
            event_start = i + 1;
        }
    }
    let last = records.last().expect("records");
    assert!(
        last.flags.is_last(),
        "the stream's last record lacks F_LAST"
    );
    let c = market.counters();
    assert_eq!(c.unknown_cancels, 0, "{c:?}");
    assert_eq!(c.unknown_modifies, 0, "{c:?}");
    assert_eq!(c.invalid_records, 0, "{c:?}");
    assert_eq!(c.duplicate_adds, 0, "{c:?}");
    assert_eq!(c.over_cancels, 0, "{c:?}");
    if expect_crossed {
        assert!(c.crossed_boundaries > 0, "pre-open never crossed: {c:?}");
    } else {
        assert_eq!(c.crossed_boundaries, 0, "{c:?}");
    }
    for book in market.books() {
        book.check_integrity().unwrap();
    }
    market
}

/// `T` then `F`s per level (same aggressor), then one `C` (whole fill) or `M` (remaining
/// size) per filled order in fill order, then possibly the aggressor's remainder `A`.
fn assert_trade_structure(ev: &[MboMsg]) {
    let at = ev[0].hd.ts_event;
    if ev.len() == 1 {
        // A lone `T`: a trade against implied liquidity, the book does not change.
        return;
    }
    let fills: Vec<&MboMsg> = ev.iter().filter(|r| r.action as u8 == b'F').collect();
    let updates: Vec<&MboMsg> = ev
        .iter()
        .filter(|r| matches!(r.action as u8, b'C' | b'M'))
        .collect();
    assert_eq!(fills.len(), updates.len(), "event at {at}");
    for (f, u) in fills.iter().zip(&updates) {
        assert_eq!(f.order_id, u.order_id, "event at {at}");
        assert_eq!(f.side, u.side, "event at {at}");
        if u.action as u8 == b'C' {
            assert_eq!(
                f.size, u.size,
                "a full fill cancels the filled size (event at {at})"
            );
        }
    }
    let first_update = ev
        .iter()
        .position(|r| matches!(r.action as u8, b'C' | b'M' | b'A'))
        .unwrap_or(ev.len());
    let mut traded = 0;
    for r in &ev[..first_update] {
        match r.action as u8 {
            b'T' => {
                assert_eq!(
                    traded, 0,
                    "a level's fills must add up to its T (event at {at})"
                );
                assert_eq!(r.order_id, ev[0].order_id, "one aggressor per event");
                assert_ne!(
                    r.side,
                    fills.first().map_or(0, |f| f.side),
                    "T is the aggressor"
                );
                traded = r.size;
            }
            b'F' => traded -= r.size,
            _ => panic!(
                "{} before the order updates (event at {at})",
                r.action as u8 as char
            ),
        }
    }
    assert_eq!(traded, 0, "event at {at}");
    for r in &ev[first_update..] {
        assert!(
            matches!(r.action as u8, b'C' | b'M' | b'A'),
            "event at {at}"
        );
    }
    if let Some(a) = ev.iter().find(|r| r.action as u8 == b'A') {
        assert_eq!(
            a.order_id, ev[0].order_id,
            "the remainder is the aggressor's"
        );
        assert!(std::ptr::eq(a, ev.last().unwrap()));
    }
}

#[test]
fn streams_are_valid_for_every_seed() {
    for seed in [1, 2, 3, 0xdead_beef] {
        let records = generate(config(seed, 3, 500_000));
        assert_eq!(records.len(), 500_000);
        let market = assert_valid(&records, false);
        assert_eq!(market.books().len(), 3, "seed {seed}");
        let c = market.counters();
        assert!(c.actions.trade > 1_000 && c.actions.fill > 1_000, "{c:?}");
        // Several-level sweeps happen.
        let mut levels_in_event = 0;
        let mut max_levels = 0;
        for r in &records {
            if r.action as u8 == b'T' {
                levels_in_event += 1;
            }
            if r.flags.is_last() {
                max_levels = max_levels.max(levels_in_event);
                levels_in_event = 0;
            }
        }
        assert!(
            max_levels >= 3,
            "seed {seed}: no sweep ({max_levels} levels at most)"
        );
    }
}

#[test]
fn eight_instruments_and_a_single_one_are_valid() {
    let market = assert_valid(&generate(config(11, 8, 300_000)), false);
    assert_eq!(market.books().len(), 8);
    // The preset ticks differ: each book's prices are multiples of its own tick.
    let instruments = SimConfig::default_instruments(8);
    for book in market.books() {
        let inst = instruments
            .iter()
            .find(|i| i.instrument_id == book.key().instrument_id)
            .unwrap();
        for side in [mbo_book::Side::Bid, mbo_book::Side::Ask] {
            for level in book.levels(side) {
                assert_eq!(level.price % inst.tick, 0, "{}", inst.symbol);
            }
        }
    }
    assert_valid(&generate(config(12, 1, 200_000)), false);
}

#[test]
fn record_limits_end_on_an_event_boundary() {
    for n in [1, 2, 3, 193, 194, 1_000, 12_345] {
        let records = generate(config(5, 2, n));
        assert_eq!(records.len() as u64, n);
        assert!(records.last().unwrap().flags.is_last(), "n = {n}");
    }
}

#[test]
fn same_seed_same_records_and_rewind_restarts() {
    let a = generate(config(42, 3, 100_000));
    let b = generate(config(42, 3, 100_000));
    assert!(a == b, "same seed, different records");
    let c = generate(config(43, 3, 100_000));
    assert!(a != c, "different seeds, same records");

    let mut sim = Simulator::new(config(42, 3, 100_000)).unwrap();
    for _ in 0..54_321 {
        sim.next_record().unwrap().unwrap();
    }
    sim.rewind().unwrap();
    let mut again = Vec::new();
    while let Some(r) = sim.next_record().unwrap() {
        again.push(r.clone());
    }
    assert!(a == again, "rewind does not restart the stream");

    // Whole events and single records give the same stream.
    let mut sim = Simulator::new(config(42, 3, 100_000)).unwrap();
    let mut events = Vec::new();
    while let Some(ev) = sim.next_event() {
        assert!(ev.last().unwrap().flags.is_last());
        events.extend_from_slice(ev);
    }
    assert!(a == events);
}

#[test]
fn pre_open_rests_crossed_and_never_trades() {
    let mut c = config(9, 2, 200_000);
    c.pre_open = true;
    let records = generate(c);
    let market = assert_valid(&records, true);
    let counters = market.counters();
    assert_eq!(counters.actions.trade, 0);
    assert_eq!(counters.actions.fill, 0);
    // Crossed at a good share of boundaries, as in CLX5's pre-open tail.
    let crossed = counters.crossed_boundaries as f64 / counters.boundaries as f64;
    assert!(crossed > 0.2, "crossed at {crossed:.3} of boundaries");
}

#[test]
fn metadata_names_the_simulator_and_its_symbols() {
    let sim = Simulator::new(config(77, 3, 1_000)).unwrap();
    let meta = sim.metadata();
    assert_eq!(meta.source, SourceKind::Simulator { seed: 77 });
    assert_eq!(meta.source.label(), "simulator");
    assert_eq!(meta.dataset, "SIM");
    assert_eq!(meta.record_count, Some(1_000));
    assert_eq!(meta.start_ts, Some(mbo_feed::sim::DEFAULT_START_TS));
    let symbols: Vec<(&str, u32)> = meta
        .symbols
        .iter()
        .map(|s| (s.symbol.as_str(), s.instrument_id))
        .collect();
    assert_eq!(
        symbols,
        [("CL.SIM", 1001), ("ES.SIM", 1002), ("NQ.SIM", 1003)]
    );
    let names: Vec<String> = SimConfig::default_instruments(10)
        .into_iter()
        .map(|i| i.symbol)
        .collect();
    assert_eq!(names[8], "CL.SIM2");
    assert_eq!(names[9], "ES.SIM2");
}

#[test]
fn invalid_configurations_are_refused() {
    let base = config(1, 1, 10);
    let cases: Vec<(&str, SimConfig)> = vec![
        (
            "no instruments",
            SimConfig {
                instruments: vec![],
                ..base.clone()
            },
        ),
        ("zero tick", {
            let mut c = base.clone();
            c.instruments[0].tick = 0;
            c
        }),
        ("price off the tick grid", {
            let mut c = base.clone();
            c.instruments[0].start_price += 1;
            c
        }),
        ("duplicate id", {
            let mut c = base.clone();
            let mut dup: SimInstrument = c.instruments[0].clone();
            dup.symbol = "OTHER".into();
            c.instruments.push(dup);
            c
        }),
        ("bad probability", {
            let mut c = base.clone();
            c.params.trade_through = 1.5;
            c
        }),
        ("empty table", {
            let mut c = base.clone();
            c.params.add_size.clear();
            c
        }),
    ];
    for (what, c) in cases {
        match Simulator::new(c) {
            Err(FeedError::Options(msg)) => assert!(!msg.is_empty(), "{what}"),
            other => panic!("{what}: expected an options error, got {other:?}"),
        }
    }
}

/// The calibration constants are what the measurement gives on CLX5 (continuous session).
#[test]
fn calibration_constants_match_clx5() {
    let records = read_all(data("CLX5_mbo.dbn"));
    let m = Measurement::of(&records, CLX5_CLOSE);
    println!("CLX5 (continuous session):\n{m}");
    let close = |what: &str, constant: f64, measured: f64| {
        assert!(
            (constant - measured).abs() < 6e-5,
            "{what}: constant {constant} but CLX5 gives {measured:.5}"
        );
    };
    assert_eq!(m.records, 37_343);
    assert_eq!(m.events, 31_831);
    let mix = calibration::EVENT_MIX;
    close("add events", mix.add, m.event_frac(0));
    close("cancel events", mix.cancel, m.event_frac(1));
    close("modify events", mix.modify, m.event_frac(2));
    close("trade events", mix.trade, m.event_frac(3));
    close(
        "adds of size 1",
        calibration::ADD_SIZE[0].weight,
        frac(&m.add_sizes, |&s| s == 1),
    );
    close(
        "adds of size 9",
        calibration::ADD_SIZE[8].weight,
        frac(&m.add_sizes, |&s| s == 9),
    );
    close(
        "adds at the touch",
        calibration::ADD_DEPTH[0].weight,
        frac(&m.add_dist, |&d| d == 0),
    );
    close(
        "adds 111-120 behind",
        calibration::ADD_DEPTH[17].weight,
        frac(&m.add_dist, |&d| (111..=120).contains(&d)),
    );
    close(
        "inside adds when wide",
        calibration::INSIDE_WHEN_WIDE,
        m.wide_adds.1 as f64 / m.wide_adds.0 as f64,
    );
    close(
        "cancels at the touch",
        calibration::CANCEL_DEPTH[0].weight,
        frac(&m.cancel_dist, |&d| d == 0),
    );
    close(
        "modifies at the touch",
        calibration::MODIFY_DEPTH[0].weight,
        frac(&m.modify_dist, |&d| d == 0),
    );
    let kinds: u64 = m.modify_kinds.iter().sum();
    close(
        "price modifies",
        calibration::MODIFY_KIND.price,
        m.modify_kinds[0] as f64 / kinds as f64,
    );
    close(
        "trades of size 1",
        calibration::TRADE_SIZE[0].weight,
        frac(&m.trade_sizes, |&s| s == 1),
    );
    close(
        "trades without fill",
        calibration::TRADE_WITHOUT_FILL,
        m.trades_without_fill as f64 / m.event_kinds[3] as f64,
    );
    close(
        "spread of one tick",
        calibration::SPREAD_ONE_TICK,
        frac(&m.spread_ticks, |&s| s == 1),
    );
    assert!((calibration::DEPTH_PROFILE[0].weight - m.depth_mean(0, 0)).abs() < 6e-4);
    assert!((calibration::DEPTH_PROFILE[7].weight - m.depth_mean(11, 20)).abs() < 6e-4);
    assert_eq!(
        u64::from(calibration::ORDERS_PER_BOOK),
        pct(&m.orders_per_book, 50)
    );
    assert_eq!(
        m.crossed_boundaries, 0,
        "the continuous session is never crossed"
    );
}

/// The simulator's statistics are plausibly close to CLX5's. Bands are generous on purpose:
/// the simulator reproduces the measured input distributions closely (sizes, where orders
/// go), while the book's shape (spread, depth, queue lengths) emerges from its dynamics and
/// is only steered toward the real values; and CLX5 is one quiet 90-minute sample.
#[test]
fn statistics_are_close_to_clx5() {
    let real = Measurement::of(&read_all(data("CLX5_mbo.dbn")), CLX5_CLOSE);
    let sim = Measurement::of(&generate(config(7, 3, 500_000)), u64::MAX);
    println!("simulator (seed 7, 3 instruments, 500k records):\n{sim}");
    let within = |what: &str, s: f64, r: f64, band: f64| {
        assert!(
            (s - r).abs() <= band,
            "{what}: simulator {s:.4}, CLX5 {r:.4}, allowed ±{band}"
        );
    };
    // Record mix: within 5 points for adds and cancels (CLX5's 1,224 cancels of orders placed
    // before the file began have no counterpart in a simulated stream that starts empty).
    within(
        "A records",
        sim.action_frac(b'A'),
        real.action_frac(b'A'),
        0.05,
    );
    within(
        "C records",
        sim.action_frac(b'C'),
        real.action_frac(b'C'),
        0.05,
    );
    within(
        "M records",
        sim.action_frac(b'M'),
        real.action_frac(b'M'),
        0.03,
    );
    within(
        "T records",
        sim.action_frac(b'T'),
        real.action_frac(b'T'),
        0.015,
    );
    within(
        "F records",
        sim.action_frac(b'F'),
        real.action_frac(b'F'),
        0.03,
    );
    for (k, what) in ["add", "cancel", "modify", "trade"].iter().enumerate() {
        within(what, sim.event_frac(k), real.event_frac(k), 0.03);
    }
    within(
        "records per event",
        mean(&sim.event_len),
        mean(&real.event_len),
        0.1,
    );
    // Sizes are drawn from the measured table: same median and p90, mean within 10 %.
    assert_eq!(pct(&sim.add_sizes, 50), pct(&real.add_sizes, 50));
    assert_eq!(pct(&sim.add_sizes, 90), pct(&real.add_sizes, 90));
    within(
        "mean add size",
        mean(&sim.add_sizes),
        mean(&real.add_sizes),
        0.16,
    );
    // Where adds go: at the touch, and far (> 20 ticks) behind it.
    within(
        "adds at the touch",
        frac(&sim.add_dist, |&d| d == 0),
        frac(&real.add_dist, |&d| d == 0),
        0.05,
    );
    within(
        "adds > 20 ticks behind",
        frac(&sim.add_dist, |&d| d > 20),
        frac(&real.add_dist, |&d| d > 20),
        0.05,
    );
    within(
        "cancels at the touch",
        frac(&sim.cancel_dist, |&d| d == 0),
        frac(&real.cancel_dist, |&d| d == 0),
        0.06,
    );
    // Spread: median one tick, one tick most of the time (CLX5: 83.6 %).
    assert_eq!(pct(&sim.spread_ticks, 50), 1);
    assert_eq!(pct(&real.spread_ticks, 50), 1);
    within(
        "one-tick spreads",
        frac(&sim.spread_ticks, |&s| s == 1),
        frac(&real.spread_ticks, |&s| s == 1),
        0.1,
    );
    assert!(pct(&sim.spread_ticks, 99) <= 4, "spreads blow out");
    // Book shape: orders per book steered to CLX5's median; the rest emerges.
    let (s_obk, r_obk) = (
        pct(&sim.orders_per_book, 50),
        pct(&real.orders_per_book, 50),
    );
    assert!(
        s_obk.abs_diff(r_obk) * 100 <= 15 * r_obk,
        "{s_obk} vs {r_obk}"
    );
    assert_eq!(
        pct(&sim.orders_per_level, 50),
        pct(&real.orders_per_level, 50)
    );
    let touch = pct(&sim.orders_at_touch, 50);
    assert!(
        (4..=12).contains(&touch),
        "orders at the touch: {touch} (CLX5 9)"
    );
    let levels = pct(&sim.levels_per_side, 50);
    assert!(
        (55..=110).contains(&levels),
        "levels per side: {levels} (CLX5 77)"
    );
    // Trades: one fill at the median, 1.2-2.2 on average (CLX5 1.70).
    assert_eq!(pct(&sim.fills_per_trade, 50), 1);
    let fills = mean(&sim.fills_per_trade);
    assert!((1.2..=2.2).contains(&fills), "fills per trade {fills}");
    assert_eq!(pct(&sim.trade_sizes, 50), pct(&real.trade_sizes, 50));
    // Time: the median gap between events within a factor 2 of CLX5's 257 µs.
    let (s_gap, r_gap) = (pct(&sim.event_gap_ns, 50), pct(&real.event_gap_ns, 50));
    assert!(
        s_gap * 2 >= r_gap && s_gap <= r_gap * 2,
        "{s_gap} vs {r_gap}"
    );
    // The mid wanders like CLX5's: about a tick per 1,000 events.
    let moves = sim.mid_move(1000);
    assert!(
        (0.5..=3.0).contains(&moves),
        "median |Δmid| per 1000 events {moves}"
    );
    assert_eq!(sim.crossed_boundaries, 0);
    // Sanity of the comparison itself: one book per simulated instrument.
    let books: HashMap<_, _> = sim
        .mids
        .iter()
        .map(|(k, v)| (k.instrument_id, v.len()))
        .collect();
    assert_eq!(books.len(), 3);
}
