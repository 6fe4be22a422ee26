#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The replay engine (`mbo_feed::replay`): pacing, control, seek, loop, end, status.
//!
//! Timing tests run in Tokio's virtual time (`start_paused`): the clock jumps to the next
//! timer when every task is idle, so schedules are checked exactly (to the 1 ms timer tick)
//! and instantly. Expectations are computed from the file's records, independently of the
//! engine.

use std::path::PathBuf;
use std::time::Duration;

use dbn::MboMsg;
use mbo_feed::dbn_file::FileDecoder;
use mbo_feed::replay::open_file_source;
use mbo_feed::{
    spawn_replay, Feed, FeedError, FeedEvent, FeedMetadata, Pace, PlayState, RecordSource,
    ReplayCommand, ReplayHandle, ReplayOptions, ResetReason, SourceKind,
};
use tokio::sync::mpsc;
use tokio::time::Instant;

const CLX5_RECORDS: usize = 38_212;
const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The real CLX5 file; panics (never skips) when it is missing.
fn clx5_path() -> PathBuf {
    mbo_testkit::mbo_data("CLX5_mbo.dbn")
}

/// Every CLX5 record, decoded directly.
fn clx5_records() -> Vec<MboMsg> {
    let mut dec = FileDecoder::open(clx5_path()).unwrap();
    let mut out = Vec::new();
    while let Some(rec) = dec.next_record().unwrap() {
        out.push(rec.clone());
    }
    assert_eq!(out.len(), CLX5_RECORDS);
    out
}

fn clx5_feed(options: ReplayOptions) -> Feed {
    let (source, metadata) = open_file_source(clx5_path()).unwrap();
    spawn_replay(Box::new(source), metadata, options)
}

/// An in-memory source, optionally failing after `fail_after` records.
struct VecSource {
    records: Vec<MboMsg>,
    pos: usize,
    fail_after: Option<usize>,
}

impl RecordSource for VecSource {
    fn next_record(&mut self) -> mbo_feed::source::Result<Option<&MboMsg>> {
        if self.fail_after == Some(self.pos) {
            return Err(FeedError::Options("synthetic failure".into()));
        }
        self.pos += 1;
        Ok(self.records.get(self.pos - 1))
    }

    fn rewind(&mut self) -> mbo_feed::source::Result<()> {
        self.pos = 0;
        Ok(())
    }
}

const T0: u64 = 1_700_000_000_000_000_000;

/// Records received at the given offsets (ns) from `T0`.
fn records_at(offsets_ns: &[u64]) -> Vec<MboMsg> {
    offsets_ns
        .iter()
        .enumerate()
        .map(|(i, &off)| MboMsg {
            order_id: i as u64 + 1,
            ts_recv: T0 + off,
            ..MboMsg::default()
        })
        .collect()
}

/// `n` records, one every `step_ns` of recorded time.
fn regular(n: u64, step_ns: u64) -> Vec<MboMsg> {
    records_at(&(0..n).map(|i| i * step_ns).collect::<Vec<_>>())
}

fn vec_feed(records: Vec<MboMsg>, options: ReplayOptions) -> Feed {
    let metadata = FeedMetadata {
        source: SourceKind::Simulator { seed: 0 },
        dataset: "TEST".into(),
        symbols: Vec::new(),
        start_ts: records.first().map(|r| r.ts_recv),
        end_ts: records.last().map(|r| r.ts_recv),
        record_count: Some(records.len() as u64),
    };
    let source = VecSource {
        records,
        pos: 0,
        fail_after: None,
    };
    spawn_replay(Box::new(source), metadata, options)
}

fn options(pace: Pace) -> ReplayOptions {
    ReplayOptions {
        pace,
        ..ReplayOptions::default()
    }
}

/// One received event and when (since the start of the test).
#[derive(Debug)]
struct Obs {
    at: Duration,
    event: FeedEvent,
}

/// Consumes a feed and keeps everything it received.
struct Run {
    events: mpsc::Receiver<mbo_feed::source::Result<FeedEvent>>,
    control: ReplayHandle,
    start: Instant,
    log: Vec<Obs>,
}

impl Run {
    /// Starts the clock now; call right before `spawn_replay` returns (same virtual instant).
    fn new(feed: Feed) -> Self {
        Self {
            events: feed.events,
            control: feed.control.expect("a replay has control"),
            start: Instant::now(),
            log: Vec::new(),
        }
    }

    fn elapsed(&self) -> Duration {
        Instant::now() - self.start
    }

    fn push(&mut self, item: Option<mbo_feed::source::Result<FeedEvent>>) -> bool {
        match item {
            Some(Ok(event)) => {
                let at = self.elapsed();
                self.log.push(Obs { at, event });
                true
            }
            Some(Err(e)) => panic!("feed error: {e}"),
            None => false,
        }
    }

    /// Receives everything until `t` after the start.
    async fn until(&mut self, t: Duration) {
        let deadline = self.start + t;
        loop {
            tokio::select! {
                biased;
                item = self.events.recv() => if !self.push(item) { return },
                () = tokio::time::sleep_until(deadline) => return,
            }
        }
    }

    /// Receives until `End` (panics if it does not come within `limit`).
    async fn until_end(&mut self, limit: Duration) {
        let deadline = self.start + limit;
        loop {
            tokio::select! {
                biased;
                item = self.events.recv() => {
                    assert!(self.push(item), "feed closed before End");
                    if matches!(self.log.last(), Some(Obs { event: FeedEvent::End, .. })) {
                        return;
                    }
                }
                () = tokio::time::sleep_until(deadline) => panic!("no End within {limit:?}"),
            }
        }
    }

    async fn send(&self, cmd: ReplayCommand) {
        self.control.send(cmd).await.unwrap();
        // Let the replay task handle it before the test goes on.
        tokio::task::yield_now().await;
    }

    /// Records received (all batches) so far.
    fn released(&self) -> u64 {
        self.released_by(Duration::MAX)
    }

    /// Records received at or before `t`.
    fn released_by(&self, t: Duration) -> u64 {
        self.log
            .iter()
            .filter(|o| o.at <= t)
            .map(|o| match &o.event {
                FeedEvent::Records { records, .. } => records.len() as u64,
                _ => 0,
            })
            .sum()
    }

    /// `(at, first_index, len, catch_up)` of every batch.
    fn batches(&self) -> Vec<(Duration, u64, usize, bool)> {
        self.log
            .iter()
            .filter_map(|o| match &o.event {
                FeedEvent::Records {
                    first_index,
                    records,
                    catch_up,
                } => Some((o.at, *first_index, records.len(), *catch_up)),
                _ => None,
            })
            .collect()
    }

    /// Index in `log` of the first event matching `pred` at or after `from`.
    fn find(&self, from: usize, pred: impl Fn(&FeedEvent) -> bool) -> Option<usize> {
        (from..self.log.len()).find(|&i| pred(&self.log[i].event))
    }
}

/// Records a rate pace allows by `t`: `floor(rate * t)`.
fn floor_rate(rate: u64, t: Duration) -> u64 {
    (u128::from(rate) * t.as_nanos() / 1_000_000_000) as u64
}

/// One timer tick's worth of records at `rate`.
fn tick_worth(rate: u64) -> u64 {
    rate / 1000 + 1
}

/// Asserts the rate schedule: at every batch and checkpoint, released is `floor(rate*t)`
/// within one tick's worth, never ahead; no batch larger than one tick's worth.
fn assert_rate_schedule(run: &Run, rate: u64, checkpoints: &[Duration]) {
    let tick = tick_worth(rate);
    let mut cum = 0u64;
    for (at, _, len, _) in run.batches() {
        assert!(
            len as u64 <= tick,
            "batch of {len} at {at:?} > one tick ({tick}) at {rate}/s"
        );
        cum += len as u64;
        let allowed = floor_rate(rate, at);
        assert!(
            cum <= allowed,
            "{cum} released by {at:?}, only {allowed} allowed at {rate}/s"
        );
        assert!(
            cum + tick >= allowed,
            "{cum} released by {at:?}, {allowed} due at {rate}/s"
        );
    }
    for &t in checkpoints {
        let got = run.released_by(t);
        let want = floor_rate(rate, t);
        assert!(
            got <= want && got + tick >= want,
            "at {t:?}: {got} released, floor(rate*t) = {want} (rate {rate}/s)"
        );
    }
}

fn assert_near(what: &str, got: Duration, want: Duration, tolerance: Duration) {
    let diff = got.abs_diff(want);
    assert!(
        diff <= tolerance,
        "{what}: got {got:?}, expected {want:?} ± {tolerance:?}"
    );
}

/// Time of the `End` event.
fn end_time(run: &Run) -> Duration {
    run.log
        .iter()
        .find(|o| o.event == FeedEvent::End)
        .map(|o| o.at)
        .expect("End received")
}

/// Checks that the records received between log positions `from..to` are `expected`,
/// contiguous from `first_index`, with the given catch-up flag.
fn assert_records(
    run: &Run,
    from: usize,
    to: usize,
    expected: &[MboMsg],
    first: u64,
    catch_up: bool,
) {
    let mut index = first;
    let mut k = 0usize;
    for o in &run.log[from..to] {
        match &o.event {
            FeedEvent::Records {
                first_index,
                records,
                catch_up: c,
            } => {
                assert_eq!(*first_index, index, "batch index");
                assert_eq!(*c, catch_up, "catch_up flag of batch at {index}");
                for rec in records {
                    assert!(k < expected.len(), "more records than expected at {index}");
                    assert_eq!(rec, &expected[k], "record {index}");
                    k += 1;
                    index += 1;
                }
            }
            other => panic!("unexpected event between records: {other:?}"),
        }
    }
    assert_eq!(k, expected.len(), "records received");
}

// ---------------------------------------------------------------------------------------------
// Max pace
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn max_pace_delivers_every_clx5_record_in_order_then_end() {
    let expected = clx5_records();
    let feed = clx5_feed(ReplayOptions {
        batch_size: 1000,
        ..options(Pace::Max)
    });
    assert_eq!(feed.metadata.record_count, Some(CLX5_RECORDS as u64));
    assert_eq!(feed.metadata.start_ts, Some(expected[0].ts_recv));
    assert_eq!(
        feed.metadata.end_ts,
        Some(expected[CLX5_RECORDS - 1].ts_recv)
    );
    assert_eq!(feed.metadata.dataset, "GLBX.MDP3");
    assert!(feed.metadata.symbols.iter().any(|s| s.symbol == "CLX5"));
    let mut run = Run::new(feed);
    run.until_end(Duration::from_secs(60)).await;
    let end = run.log.len() - 1;
    assert!(run.batches().iter().all(|b| b.2 <= 1000 && b.2 > 0));
    assert_records(&run, 0, end, &expected, 0, false);
    // The task stays alive after End, waiting for commands.
    let status = run.control.status();
    assert_eq!(status.state, PlayState::Ended);
    assert_eq!(status.released, CLX5_RECORDS as u64);
    assert_eq!(status.next_index, CLX5_RECORDS as u64);
    assert_eq!(status.position_ts, expected[CLX5_RECORDS - 1].ts_recv);
    assert!((status.progress - 1.0).abs() < f64::EPSILON);
    assert!(run.events.try_recv().is_err());
    assert!(!run.control.commands.is_closed());
}

#[tokio::test(start_paused = true)]
async fn max_pace_respects_backpressure_and_batch_size() {
    let feed = vec_feed(
        regular(10_000, 1),
        ReplayOptions {
            batch_size: 7,
            channel_capacity: 2,
            ..options(Pace::Max)
        },
    );
    let mut run = Run::new(feed);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Nobody consumed: the replay waits on the full channel (2 batches, +1 being sent).
    let status = run.control.status();
    assert!(
        status.released <= 3 * 7,
        "released {} without a consumer",
        status.released
    );
    run.until_end(Duration::from_secs(2)).await;
    assert_eq!(run.released(), 10_000);
    assert!(run.batches().iter().all(|b| b.2 <= 7));
}

// ---------------------------------------------------------------------------------------------
// Rate pace
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn rate_pace_releases_floor_rate_t_without_bursts() {
    for (rate, run_for) in [
        (7_777u64, Duration::from_secs(3)),
        (1_000, Duration::from_millis(2500)),
        (3, Duration::from_secs(5)),
        (500_000, Duration::from_millis(60)),
    ] {
        let mut run = Run::new(clx5_feed(options(Pace::Rate(rate))));
        run.until(run_for).await;
        let checkpoints: Vec<Duration> = [0.1, 0.25, 0.5, 0.75, 1.0]
            .iter()
            .map(|f| run_for.mul_f64(*f))
            .collect();
        assert_rate_schedule(&run, rate, &checkpoints);
        // Exact at the end of the run: the last wake-up is on the final tick.
        let want = floor_rate(rate, run_for);
        assert!(run.released() + tick_worth(rate) >= want && run.released() <= want);
    }
}

#[tokio::test(start_paused = true)]
async fn rate_pace_continues_across_loops_without_losing_time() {
    // 1,000 records looped at 10,000/s: the loop costs no time.
    let feed = vec_feed(
        regular(1000, 1000),
        ReplayOptions {
            looping: true,
            ..options(Pace::Rate(10_000))
        },
    );
    let mut run = Run::new(feed);
    // Just before the 20th pass ends (its Reset would race the end of the run).
    let end = Duration::from_millis(1999);
    run.until(end).await;
    assert_rate_schedule(&run, 10_000, &[Duration::from_secs(1), end]);
    let loops = run
        .log
        .iter()
        .filter(|o| {
            matches!(
                o.event,
                FeedEvent::Reset {
                    reason: ResetReason::Loop,
                    ..
                }
            )
        })
        .count();
    assert_eq!(loops, 19);
}

// ---------------------------------------------------------------------------------------------
// Realtime pace
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn realtime_speed_10_on_clx5_takes_the_recorded_span_over_10() {
    let records = clx5_records();
    let span = records[CLX5_RECORDS - 1].ts_recv - records[0].ts_recv;
    let mut run = Run::new(clx5_feed(options(Pace::Realtime { speed: 10.0 })));
    run.until_end(Duration::from_secs(10_000)).await;
    assert_eq!(run.released(), CLX5_RECORDS as u64);
    let want = Duration::from_nanos(span / 10);
    // About 900 s: the last record's due time, rounded up to the timer tick.
    assert_near("CLX5 at speed 10", end_time(&run), want, 2 * MS);

    // Every record is released when due: never early, at most one tick late.
    let mut k = 0usize;
    for o in &run.log {
        if let FeedEvent::Records { records: batch, .. } = &o.event {
            for rec in batch {
                let due = Duration::from_nanos((rec.ts_recv - records[0].ts_recv) / 10);
                assert!(
                    o.at + MS >= due,
                    "record {k} released at {:?}, due {due:?}",
                    o.at
                );
                assert!(
                    o.at <= due + 2 * MS,
                    "record {k} released at {:?}, due {due:?}",
                    o.at
                );
                k += 1;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn realtime_max_gap_caps_the_wall_clock_wait() {
    let records = clx5_records();
    let speed = 10.0;
    let max_gap = Duration::from_secs(1);
    // Expected: the sum of every consecutive gap's wall-clock wait, capped at max_gap.
    let want: Duration = records
        .windows(2)
        .map(|w| {
            Duration::from_nanos(w[1].ts_recv - w[0].ts_recv)
                .div_f64(speed)
                .min(max_gap)
        })
        .sum();
    let uncapped =
        Duration::from_nanos(records[CLX5_RECORDS - 1].ts_recv - records[0].ts_recv).div_f64(speed);
    assert!(
        want + Duration::from_secs(250) < uncapped,
        "the file has long gaps to cap"
    );
    let mut run = Run::new(clx5_feed(ReplayOptions {
        max_gap: Some(max_gap),
        ..options(Pace::Realtime { speed })
    }));
    run.until_end(Duration::from_secs(10_000)).await;
    assert_eq!(run.released(), CLX5_RECORDS as u64);
    assert_near(
        "CLX5 at speed 10, max gap 1 s",
        end_time(&run),
        want,
        2 * MS,
    );
}

#[tokio::test(start_paused = true)]
async fn realtime_max_gap_keeps_spacing_after_a_capped_gap() {
    // 0, 10 ms, (halt) 10 s, 10.01 s, 10.03 s at speed 1, max gap 100 ms.
    let feed = vec_feed(
        records_at(&[
            0,
            10_000_000,
            10_000_000_000,
            10_010_000_000,
            10_030_000_000,
        ]),
        ReplayOptions {
            max_gap: Some(Duration::from_millis(100)),
            ..options(Pace::Realtime { speed: 1.0 })
        },
    );
    let mut run = Run::new(feed);
    run.until_end(Duration::from_secs(5)).await;
    let times: Vec<Duration> = run.batches().iter().map(|b| b.0).collect();
    assert_eq!(run.released(), 5);
    assert_eq!(times.len(), 5, "one batch per record: {times:?}");
    let want = [0, 10, 110, 120, 140].map(Duration::from_millis);
    for (got, want) in times.iter().zip(want) {
        assert_near("release time", *got, want, MS);
    }
}

// ---------------------------------------------------------------------------------------------
// Pause, resume, pace changes
// ---------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn pause_stops_releases_and_resume_continues_without_a_burst() {
    let rate = 1000;
    let mut run = Run::new(vec_feed(regular(100_000, 1000), options(Pace::Rate(rate))));
    run.until(Duration::from_millis(500)).await;
    run.send(ReplayCommand::Pause).await;
    run.until(Duration::from_millis(501)).await;
    let at_pause = run.released();
    assert!(
        (499..=501).contains(&at_pause),
        "{at_pause} released at the pause"
    );
    assert_eq!(run.control.status().state, PlayState::Paused);
    assert_eq!(run.control.status().released, at_pause);

    run.until(Duration::from_millis(1500)).await;
    assert_eq!(run.released(), at_pause, "released while paused");

    run.send(ReplayCommand::Play).await;
    assert_eq!(run.control.status().state, PlayState::Playing);
    let before = run.log.len();
    run.until(Duration::from_millis(2000)).await;
    let after: Vec<_> = run
        .batches()
        .into_iter()
        .filter(|b| b.0 > Duration::from_millis(1500))
        .collect();
    assert!(
        after.iter().all(|b| b.2 as u64 <= tick_worth(rate)),
        "burst after resume: {after:?}"
    );
    // The schedule resumed where it was: 500 ms of pacing before, 500 ms after.
    let total = run.released();
    assert!(
        (999..=1001).contains(&total),
        "{total} released after 1 s of play"
    );
    assert!(run.log.len() > before);
}

#[tokio::test(start_paused = true)]
async fn pause_in_a_realtime_gap_keeps_the_rest_of_the_gap() {
    // Records at 0, 1 s, 2 s; pause at 0.3 s for 4.7 s: the second comes at 5.7 s.
    let feed = vec_feed(
        records_at(&[0, 1_000_000_000, 2_000_000_000]),
        options(Pace::Realtime { speed: 1.0 }),
    );
    let mut run = Run::new(feed);
    run.until(Duration::from_millis(300)).await;
    run.send(ReplayCommand::Pause).await;
    run.until(Duration::from_secs(5)).await;
    assert_eq!(run.released(), 1);
    run.send(ReplayCommand::Play).await;
    run.until_end(Duration::from_secs(10)).await;
    let times: Vec<Duration> = run.batches().iter().map(|b| b.0).collect();
    assert_near("second record", times[1], Duration::from_millis(5700), MS);
    assert_near("third record", times[2], Duration::from_millis(6700), MS);
}

#[tokio::test(start_paused = true)]
async fn start_paused_releases_nothing_until_play() {
    let feed = vec_feed(
        regular(10_000, 1000),
        ReplayOptions {
            start_paused: true,
            ..options(Pace::Rate(1000))
        },
    );
    let mut run = Run::new(feed);
    assert_eq!(run.control.status().state, PlayState::Paused);
    run.until(Duration::from_secs(2)).await;
    assert_eq!(run.released(), 0);
    run.send(ReplayCommand::Play).await;
    run.until(Duration::from_secs(3)).await;
    let got = run.released();
    assert!(
        (998..=1000).contains(&got),
        "{got} released in the first second of play"
    );
}

#[tokio::test(start_paused = true)]
async fn set_pace_changes_speed_mid_run() {
    // One record per recorded millisecond: speed 1 = 1,000/s, speed 10 = 10,000/s.
    let mut run = Run::new(vec_feed(
        regular(100_000, 1_000_000),
        options(Pace::Realtime { speed: 1.0 }),
    ));
    run.until(Duration::from_secs(1)).await;
    let first = run.released();
    assert!((1000..=1002).contains(&first), "{first} in 1 s at speed 1");
    run.send(ReplayCommand::SetPace(Pace::Realtime { speed: 10.0 }))
        .await;
    assert_eq!(run.control.status().pace, Pace::Realtime { speed: 10.0 });
    run.until(Duration::from_secs(2)).await;
    let second = run.released() - first;
    assert!(
        (9_990..=10_010).contains(&second),
        "{second} in 1 s at speed 10"
    );

    // To a rate, then back to realtime: both start from the current position.
    run.send(ReplayCommand::SetPace(Pace::Rate(2_000))).await;
    run.until(Duration::from_secs(3)).await;
    let third = run.released() - first - second;
    assert!(
        (1_998..=2_002).contains(&third),
        "{third} in 1 s at 2,000/s"
    );
    let before_back = run.released();
    run.send(ReplayCommand::SetPace(Pace::Realtime { speed: 0.5 }))
        .await;
    run.until(Duration::from_secs(4)).await;
    let fourth = run.released() - before_back;
    assert!(
        (499..=501).contains(&fourth),
        "{fourth} in 1 s at speed 0.5"
    );
    // Indexes stayed contiguous through every change.
    let mut next = 0;
    for (_, first_index, len, _) in run.batches() {
        assert_eq!(first_index, next);
        next += len as u64;
    }
}

#[tokio::test(start_paused = true)]
async fn set_pace_while_paused_applies_on_resume() {
    let mut run = Run::new(vec_feed(regular(100_000, 1000), options(Pace::Rate(1000))));
    run.until(Duration::from_secs(1)).await;
    run.send(ReplayCommand::Pause).await;
    run.until(Duration::from_millis(1001)).await;
    let at_pause = run.released();
    run.send(ReplayCommand::SetPace(Pace::Rate(5000))).await;
    run.until(Duration::from_secs(2)).await;
    assert_eq!(run.released(), at_pause);
    run.send(ReplayCommand::Play).await;
    run.until(Duration::from_secs(3)).await;
    let got = run.released() - at_pause;
    assert!((4_994..=5_000).contains(&got), "{got} in 1 s at 5,000/s");
}

#[tokio::test]
async fn invalid_commands_are_refused_by_the_handle() {
    let feed = vec_feed(regular(10, 1), options(Pace::Max));
    let control = feed.control.unwrap();
    for pace in [
        Pace::Rate(0),
        Pace::Realtime { speed: 0.0 },
        Pace::Realtime { speed: 5000.0 },
        Pace::Realtime { speed: f64::NAN },
    ] {
        let err = control
            .send(ReplayCommand::SetPace(pace))
            .await
            .unwrap_err();
        assert!(matches!(err, FeedError::Options(_)), "{pace:?}: {err}");
    }
}

#[tokio::test]
async fn invalid_options_make_the_first_event_an_error() {
    let mut feed = vec_feed(regular(10, 1), options(Pace::Rate(0)));
    match feed.events.recv().await {
        Some(Err(FeedError::Options(msg))) => assert!(msg.contains("rate"), "{msg}"),
        other => panic!("expected an options error, got {other:?}"),
    }
    assert!(feed.events.recv().await.is_none());
}

// ---------------------------------------------------------------------------------------------
// Seek
// ---------------------------------------------------------------------------------------------

/// Number of records with `ts_recv <= ts` (CLX5's `ts_recv` never decreases).
fn count_le(records: &[MboMsg], ts: u64) -> usize {
    assert!(records.windows(2).all(|w| w[0].ts_recv <= w[1].ts_recv));
    records.iter().filter(|r| r.ts_recv <= ts).count()
}

/// After the `Reset` at log position `reset`: catch-up records are exactly `records[..k]`,
/// then paced records continue from `records[k]`. Returns `k`.
fn assert_seek(run: &Run, reset: usize, records: &[MboMsg], ts: u64) -> usize {
    assert_eq!(
        run.log[reset].event,
        FeedEvent::Reset {
            reason: ResetReason::Seek { ts },
            next_index: 0
        }
    );
    let k = count_le(records, ts);
    let paced = run
        .find(reset + 1, |e| {
            !matches!(e, FeedEvent::Records { catch_up: true, .. })
        })
        .unwrap_or(run.log.len());
    assert_records(run, reset + 1, paced, &records[..k], 0, true);
    let end = run
        .find(paced, |e| !matches!(e, FeedEvent::Records { .. }))
        .unwrap_or(run.log.len());
    assert!(end > paced, "no paced records after the seek");
    let n: usize = run.log[paced..end]
        .iter()
        .map(|o| match &o.event {
            FeedEvent::Records { records, .. } => records.len(),
            _ => 0,
        })
        .sum();
    assert_records(run, paced, end, &records[k..k + n], k as u64, false);
    k
}

#[tokio::test(start_paused = true)]
async fn seek_forward_and_backward_catch_up_then_continue_paced() {
    let records = clx5_records();
    let rate = 10_000;
    let mut run = Run::new(clx5_feed(options(Pace::Rate(rate))));
    run.until(Duration::from_millis(200)).await;
    assert!(run.released() >= 1_990);

    // Forward: far past the current position.
    let forward = records[30_000].ts_recv;
    run.send(ReplayCommand::Seek(forward)).await;
    let t_seek = run.elapsed();
    run.until(Duration::from_millis(400)).await;
    let reset = run
        .find(0, |e| matches!(e, FeedEvent::Reset { .. }))
        .unwrap();
    let k = assert_seek(&run, reset, &records, forward);
    assert!(k > 30_000);
    // The catch-up arrived at the seek instant; then the rate resumed from the seek.
    assert!(run.log[reset + 1].at == t_seek);
    let paced: u64 = run.log[reset..]
        .iter()
        .map(|o| match &o.event {
            FeedEvent::Records {
                records,
                catch_up: false,
                ..
            } => records.len() as u64,
            _ => 0,
        })
        .sum();
    let want = floor_rate(rate, Duration::from_millis(400) - t_seek);
    assert!(
        paced <= want && paced + tick_worth(rate) >= want,
        "{paced} paced after the seek, {want} due"
    );
    let status = run.control.status();
    assert_eq!(status.state, PlayState::Playing);
    // The status is at most 100 ms old while playing.
    assert!((k as u64..=k as u64 + paced).contains(&status.next_index));

    // Backward.
    let backward = records[5_000].ts_recv;
    let from = run.log.len();
    run.send(ReplayCommand::Seek(backward)).await;
    run.until(Duration::from_millis(600)).await;
    let reset = run
        .find(from, |e| matches!(e, FeedEvent::Reset { .. }))
        .unwrap();
    let k = assert_seek(&run, reset, &records, backward);
    assert!((5_001..10_000).contains(&k));

    // Before the first record: nothing to catch up, continue from index 0.
    let from = run.log.len();
    run.send(ReplayCommand::Seek(records[0].ts_recv - 1)).await;
    run.until(Duration::from_millis(700)).await;
    let reset = run
        .find(from, |e| matches!(e, FeedEvent::Reset { .. }))
        .unwrap();
    assert!(matches!(
        run.log[reset + 1].event,
        FeedEvent::Records {
            first_index: 0,
            catch_up: false,
            ..
        }
    ));
}

#[tokio::test(start_paused = true)]
async fn seek_while_paused_stays_paused_and_seek_after_end_plays() {
    let records = clx5_records();
    let mut run = Run::new(clx5_feed(options(Pace::Rate(10_000))));
    run.until(Duration::from_millis(100)).await;
    run.send(ReplayCommand::Pause).await;
    let target = records[20_000].ts_recv;
    run.send(ReplayCommand::Seek(target)).await;
    run.until(Duration::from_secs(1)).await;
    let reset = run
        .find(0, |e| matches!(e, FeedEvent::Reset { .. }))
        .unwrap();
    let k = count_le(&records, target);
    assert_records(&run, reset + 1, run.log.len(), &records[..k], 0, true);
    let status = run.control.status();
    assert_eq!(status.state, PlayState::Paused);
    assert_eq!(status.next_index, k as u64);
    assert_eq!(status.position_ts, target);

    // Play to the end at max pace, then seek: it plays again from the target.
    run.send(ReplayCommand::SetPace(Pace::Max)).await;
    run.send(ReplayCommand::Play).await;
    run.until_end(Duration::from_secs(2)).await;
    assert_eq!(run.control.status().state, PlayState::Ended);
    let from = run.log.len();
    let target = records[37_000].ts_recv;
    run.send(ReplayCommand::Seek(target)).await;
    run.until_end(Duration::from_secs(3)).await;
    let reset = run
        .find(from, |e| matches!(e, FeedEvent::Reset { .. }))
        .unwrap();
    let k = assert_seek(&run, reset, &records, target);
    let end = run.log.len() - 1;
    let paced = run
        .find(reset + 1, |e| {
            matches!(
                e,
                FeedEvent::Records {
                    catch_up: false,
                    ..
                }
            )
        })
        .unwrap();
    assert_records(&run, paced, end, &records[k..], k as u64, false);
}

// ---------------------------------------------------------------------------------------------
// Loop and end
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn loop_restarts_at_index_0_with_a_reset() {
    let expected = clx5_records();
    let mut run = Run::new(clx5_feed(ReplayOptions {
        looping: true,
        ..options(Pace::Max)
    }));
    // Two full passes and the start of a third.
    while run.released() < 2 * CLX5_RECORDS as u64 + 10 {
        let item = run.events.recv().await;
        assert!(run.push(item));
    }
    let resets: Vec<usize> = (0..run.log.len())
        .filter(|&i| matches!(run.log[i].event, FeedEvent::Reset { .. }))
        .collect();
    assert_eq!(resets.len(), 2);
    for &r in &resets {
        assert_eq!(
            run.log[r].event,
            FeedEvent::Reset {
                reason: ResetReason::Loop,
                next_index: 0
            }
        );
    }
    assert_records(&run, 0, resets[0], &expected, 0, false);
    assert_records(&run, resets[0] + 1, resets[1], &expected, 0, false);
    assert!(!run.log.iter().any(|o| o.event == FeedEvent::End));
}

#[tokio::test(start_paused = true)]
async fn realtime_loop_starts_the_next_pass_right_after_the_last_record() {
    // Records at 0, 100 ms, 200 ms: passes start at 0, 200 ms, 400 ms, 600 ms.
    let feed = vec_feed(
        records_at(&[0, 100_000_000, 200_000_000]),
        ReplayOptions {
            looping: true,
            ..options(Pace::Realtime { speed: 1.0 })
        },
    );
    let mut run = Run::new(feed);
    run.until(Duration::from_millis(650)).await;
    let times: Vec<Duration> = run.batches().iter().map(|b| b.0).collect();
    let want = [0, 100, 200, 200, 300, 400, 400, 500, 600, 600].map(Duration::from_millis);
    assert_eq!(run.released(), 10, "{times:?}");
    for (got, want) in times.iter().zip(want) {
        assert_near("release time", *got, want, MS);
    }
}

#[tokio::test]
async fn play_after_end_restarts_from_the_beginning() {
    let mut run = Run::new(vec_feed(regular(100, 1), options(Pace::Max)));
    run.until_end(Duration::from_secs(5)).await;
    let from = run.log.len();
    run.send(ReplayCommand::Play).await;
    run.until_end(Duration::from_secs(10)).await;
    assert_eq!(
        run.log[from].event,
        FeedEvent::Reset {
            reason: ResetReason::Loop,
            next_index: 0
        }
    );
    assert_eq!(run.released(), 200);
    assert_eq!(run.control.status().released, 200);
}

#[tokio::test]
async fn source_error_is_forwarded_after_the_records_before_it() {
    let metadata = FeedMetadata {
        source: SourceKind::Simulator { seed: 0 },
        dataset: "TEST".into(),
        symbols: Vec::new(),
        start_ts: None,
        end_ts: None,
        record_count: None,
    };
    let source = VecSource {
        records: regular(100, 1),
        pos: 0,
        fail_after: Some(5),
    };
    let mut feed = spawn_replay(Box::new(source), metadata, options(Pace::Max));
    match feed.events.recv().await {
        Some(Ok(FeedEvent::Records {
            first_index: 0,
            records,
            ..
        })) => assert_eq!(records.len(), 5),
        other => panic!("expected 5 records, got {other:?}"),
    }
    match feed.events.recv().await {
        Some(Err(e)) => assert!(e.to_string().contains("synthetic failure"), "{e}"),
        other => panic!("expected the source error, got {other:?}"),
    }
    assert!(
        feed.events.recv().await.is_none(),
        "the error is the last event"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown and status
// ---------------------------------------------------------------------------------------------

/// Drops the feed's receiver (keeping nothing else) and checks the task ends.
async fn assert_task_ends_when_dropped(feed: Feed, keep_control: bool) {
    let control = feed.control.clone().unwrap();
    let mut status = control.status.clone();
    let kept = keep_control.then_some(control);
    drop(feed);
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while status.changed().await.is_ok() {}
    })
    .await;
    assert!(
        ended.is_ok(),
        "the replay task is still alive after the feed was dropped"
    );
    if let Some(control) = kept {
        assert!(control.send(ReplayCommand::Play).await.is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn dropping_the_feed_ends_the_task_in_every_state() {
    for keep_control in [false, true] {
        // Waiting for a paced deadline.
        let feed = vec_feed(
            regular(1000, 1_000_000_000),
            options(Pace::Realtime { speed: 1.0 }),
        );
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_task_ends_when_dropped(feed, keep_control).await;
        // Blocked on a full channel.
        let feed = vec_feed(regular(100_000, 1), options(Pace::Max));
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_task_ends_when_dropped(feed, keep_control).await;
        // Paused.
        let feed = vec_feed(
            regular(1000, 1),
            ReplayOptions {
                start_paused: true,
                ..options(Pace::Max)
            },
        );
        assert_task_ends_when_dropped(feed, keep_control).await;
        // Ended.
        let mut feed = vec_feed(regular(10, 1), options(Pace::Max));
        while let Some(Ok(ev)) = feed.events.recv().await {
            if ev == FeedEvent::End {
                break;
            }
        }
        assert_task_ends_when_dropped(feed, keep_control).await;
    }
}

#[tokio::test(start_paused = true)]
async fn status_follows_state_position_and_progress() {
    let records = clx5_records();
    let rate = 100_000;
    let mut run = Run::new(clx5_feed(options(Pace::Rate(rate))));
    let mut status = run.control.status.clone();
    assert_eq!(status.borrow_and_update().state, PlayState::Playing);

    // Refreshed at least every 100 ms while playing, and progress only grows.
    let mut last_progress = 0.0;
    for step in 1..=3u32 {
        run.until(Duration::from_millis(100) * step + Duration::from_millis(50))
            .await;
        let s = run.control.status();
        let t = run.elapsed();
        assert_eq!(s.state, PlayState::Playing);
        assert!(
            s.released + floor_rate(rate, Duration::from_millis(100)) + tick_worth(rate)
                >= floor_rate(rate, t),
            "stale status at {t:?}: {s:?}"
        );
        assert!(s.released <= run.released());
        assert_eq!(s.next_index, s.released);
        assert!(s.next_index > 0, "no refresh after {t:?}: {s:?}");
        assert_eq!(s.position_ts, records[s.next_index as usize - 1].ts_recv);
        let want = s.next_index as f64 / CLX5_RECORDS as f64;
        assert!((s.progress - want).abs() < 1e-12);
        assert!(s.progress >= last_progress);
        last_progress = s.progress;
    }

    run.send(ReplayCommand::Pause).await;
    assert_eq!(run.control.status().state, PlayState::Paused);
    assert!(status.has_changed().unwrap());
    run.send(ReplayCommand::Play).await;
    assert_eq!(run.control.status().state, PlayState::Playing);
    run.send(ReplayCommand::SetPace(Pace::Max)).await;
    run.until_end(Duration::from_secs(10)).await;
    let s = run.control.status();
    assert_eq!(s.state, PlayState::Ended);
    assert_eq!(s.pace, Pace::Max);
    assert!((s.progress - 1.0).abs() < f64::EPSILON);
    assert_eq!(s.released, CLX5_RECORDS as u64);
}

#[tokio::test(start_paused = true)]
async fn progress_by_time_when_the_count_is_unknown() {
    // Records every second for 10 s; no record count: progress follows ts_recv.
    let records = regular(11, 1_000_000_000);
    let metadata = FeedMetadata {
        source: SourceKind::Simulator { seed: 0 },
        dataset: "TEST".into(),
        symbols: Vec::new(),
        start_ts: Some(records[0].ts_recv),
        end_ts: Some(records[10].ts_recv),
        record_count: None,
    };
    let source = VecSource {
        records,
        pos: 0,
        fail_after: None,
    };
    let feed = spawn_replay(
        Box::new(source),
        metadata,
        options(Pace::Realtime { speed: 1.0 }),
    );
    let mut run = Run::new(feed);
    run.until(Duration::from_millis(4500)).await;
    let s = run.control.status();
    assert!((s.progress - 0.4).abs() < 1e-9, "{s:?}");
    run.until_end(Duration::from_secs(20)).await;
    assert!((run.control.status().progress - 1.0).abs() < f64::EPSILON);
}
