#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! End-to-end tests of the `mbo` binary (`export-book`, `bench`) on the real Databento files
//! in `../shared/data/mbo/` (see its PROVENANCE.md).
//!
//! Expectations are computed independently of the project's own code: records are decoded
//! with the `dbn` crate's decoder, and the expected books come from a naive reference model
//! (a hash map of orders plus `BTreeMap` levels) that follows the documented rules of
//! `mbo_book::Book::apply`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use dbn::decode::{DecodeRecord, DynDecoder};
use dbn::{MboMsg, VersionUpgradePolicy, UNDEF_PRICE};
use serde_json::Value;

const CLX5: &str = "CLX5_mbo.dbn";
const ESH4_SNAPSHOT: &str = "esh4-glbx-mdp3-20231224.mbo.dbn.zst";
const ESH4_SESSION: &str = "esh4-glbx-mdp3-20231225.mbo.dbn.zst";
const ESM4: &str = "esm4-glbx-mdp3-20240508T0000-0002.mbo.dbn.zst";
const MBP10: &str = "other-schemas/test_data.mbp-10.dbn.zst";
const TRADES: &str = "other-schemas/test_data.trades.dbn.zst";

const CLX5_RECORDS: u64 = 38_212;

const LINE_KEYS: [&str; 8] = [
    "i",
    "ts_recv",
    "ts_event",
    "sequence",
    "instrument_id",
    "publisher_id",
    "bids",
    "asks",
];

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A real data file; panics (never skips) when it is missing.
fn data(name: &str) -> PathBuf {
    mbo_testkit::mbo_data(name)
}

fn mbo() -> Command {
    Command::cargo_bin("mbo").expect("the mbo binary is built by cargo test")
}

fn run<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    mbo().args(args).output().expect("mbo runs")
}

/// Runs `mbo` and asserts success with a quiet stderr; returns stdout.
fn run_ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let out = run(args);
    assert!(
        out.status.success(),
        "mbo failed: {:?}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "unexpected stderr on success: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn export(file: &Path, extra: &[&str]) -> Vec<u8> {
    let mut args: Vec<&OsStr> = vec![OsStr::new("export-book"), file.as_os_str()];
    args.extend(extra.iter().map(OsStr::new));
    run_ok(args)
}

/// Decodes every MBO record of `path` with the `dbn` crate's own decoder.
fn dbn_records(path: &Path) -> Vec<MboMsg> {
    let mut dec = DynDecoder::from_file(path, VersionUpgradePolicy::AsIs)
        .unwrap_or_else(|e| panic!("dbn cannot open {}: {e}", path.display()));
    let mut out = Vec::new();
    while let Some(rec) = dec
        .decode_record::<MboMsg>()
        .unwrap_or_else(|e| panic!("dbn cannot decode {}: {e}", path.display()))
    {
        out.push(rec.clone());
    }
    out
}

fn lines(stdout: &[u8]) -> Vec<&str> {
    let text = std::str::from_utf8(stdout).expect("output is UTF-8");
    if text.is_empty() {
        return Vec::new();
    }
    assert!(text.ends_with('\n'), "output does not end with a newline");
    text[..text.len() - 1].split('\n').collect()
}

type Level = (i64, u64, u64);

/// Parses one output line, checking its exact shape; returns the value and its levels.
fn parse_line(line: &str, depth: usize) -> (Value, Vec<Level>, Vec<Level>) {
    let v: Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("line is not JSON ({e}): {line}"));
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("line is not an object: {line}"));
    let keys: HashSet<&str> = obj.keys().map(String::as_str).collect();
    let want: HashSet<&str> = LINE_KEYS.into_iter().collect();
    assert_eq!(keys, want, "keys of line: {line}");
    for k in ["i", "ts_recv", "ts_event"] {
        assert!(v[k].is_u64(), "{k} is not a u64: {line}");
    }
    assert!(
        v["sequence"]
            .as_u64()
            .is_some_and(|s| u32::try_from(s).is_ok()),
        "sequence is not a u32: {line}"
    );
    assert!(
        v["instrument_id"]
            .as_u64()
            .is_some_and(|s| u32::try_from(s).is_ok()),
        "instrument_id is not a u32: {line}"
    );
    assert!(
        v["publisher_id"]
            .as_u64()
            .is_some_and(|s| u16::try_from(s).is_ok()),
        "publisher_id is not a u16: {line}"
    );
    let side = |name: &str| -> Vec<Level> {
        let arr = v[name]
            .as_array()
            .unwrap_or_else(|| panic!("{name} is not an array: {line}"));
        assert!(
            arr.len() <= depth,
            "{name} has {} levels, depth is {depth}: {line}",
            arr.len()
        );
        arr.iter()
            .map(|lvl| {
                let t = lvl
                    .as_array()
                    .unwrap_or_else(|| panic!("a {name} level is not an array: {line}"));
                assert_eq!(
                    t.len(),
                    3,
                    "a {name} level is not [price,size,count]: {line}"
                );
                let price = t[0]
                    .as_i64()
                    .unwrap_or_else(|| panic!("price is not an i64: {line}"));
                let size = t[1]
                    .as_u64()
                    .unwrap_or_else(|| panic!("size is not a u64: {line}"));
                let count = t[2]
                    .as_u64()
                    .unwrap_or_else(|| panic!("count is not a u64: {line}"));
                assert!(size > 0, "{name} level with size 0: {line}");
                assert!(count > 0, "{name} level with count 0: {line}");
                (price, size, count)
            })
            .collect()
    };
    let bids = side("bids");
    let asks = side("asks");
    assert!(
        bids.windows(2).all(|w| w[0].0 > w[1].0),
        "bids not strictly descending: {line}"
    );
    assert!(
        asks.windows(2).all(|w| w[0].0 < w[1].0),
        "asks not strictly ascending: {line}"
    );
    (v, bids, asks)
}

// ---------------------------------------------------------------------------------------------
// Reference model: deliberately naive, written from the documented rules of `Book::apply`.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum RefSide {
    Bid,
    Ask,
}

fn ref_side(c: std::ffi::c_char) -> Option<RefSide> {
    match c as u8 {
        b'B' => Some(RefSide::Bid),
        b'A' => Some(RefSide::Ask),
        _ => None,
    }
}

#[derive(Default)]
struct RefBook {
    orders: HashMap<u64, (RefSide, i64, u32)>,
    /// price -> (total size, count)
    bids: BTreeMap<i64, (u64, u64)>,
    asks: BTreeMap<i64, (u64, u64)>,
}

impl RefBook {
    fn ladder(&mut self, side: RefSide) -> &mut BTreeMap<i64, (u64, u64)> {
        match side {
            RefSide::Bid => &mut self.bids,
            RefSide::Ask => &mut self.asks,
        }
    }

    fn insert(&mut self, id: u64, side: RefSide, price: i64, size: u32) {
        if self.orders.contains_key(&id) {
            self.remove(id);
        }
        self.orders.insert(id, (side, price, size));
        let lvl = self.ladder(side).entry(price).or_insert((0, 0));
        lvl.0 += u64::from(size);
        lvl.1 += 1;
    }

    fn remove(&mut self, id: u64) {
        let Some((side, price, size)) = self.orders.remove(&id) else {
            return;
        };
        let ladder = self.ladder(side);
        let lvl = ladder.get_mut(&price).expect("level of a live order");
        lvl.0 -= u64::from(size);
        lvl.1 -= 1;
        if lvl.1 == 0 {
            assert_eq!(lvl.0, 0, "reference model: empty level with size");
            ladder.remove(&price);
        }
    }

    fn add(&mut self, r: &MboMsg) {
        let Some(side) = ref_side(r.side) else { return };
        if r.price == UNDEF_PRICE || r.size == 0 {
            return;
        }
        self.insert(r.order_id, side, r.price, r.size);
    }

    fn apply(&mut self, r: &MboMsg) {
        match r.action as u8 {
            b'A' => {
                if r.flags.is_tob() || r.flags.is_mbp() {
                    let Some(side) = ref_side(r.side) else { return };
                    let ids: Vec<u64> = self
                        .orders
                        .iter()
                        .filter(|(_, o)| o.0 == side)
                        .map(|(id, _)| *id)
                        .collect();
                    for id in ids {
                        self.remove(id);
                    }
                    if r.price != UNDEF_PRICE && r.size > 0 {
                        self.add(r);
                    }
                } else {
                    self.add(r);
                }
            }
            b'C' => {
                let Some(&(side, price, size)) = self.orders.get(&r.order_id) else {
                    return;
                };
                if r.size >= size {
                    self.remove(r.order_id);
                } else {
                    self.orders.insert(r.order_id, (side, price, size - r.size));
                    self.ladder(side).get_mut(&price).expect("level").0 -= u64::from(r.size);
                }
            }
            b'M' => {
                if !self.orders.contains_key(&r.order_id) {
                    self.add(r);
                    return;
                }
                let Some(side) = ref_side(r.side) else { return };
                if r.price == UNDEF_PRICE {
                    return;
                }
                if r.size == 0 {
                    self.remove(r.order_id);
                } else {
                    self.insert(r.order_id, side, r.price, r.size);
                }
            }
            b'R' => *self = Self::default(),
            _ => {}
        }
    }

    fn top(&self, side: RefSide, depth: usize) -> Vec<Level> {
        let conv = |(p, (s, c)): (&i64, &(u64, u64))| (*p, *s, *c);
        match side {
            RefSide::Bid => self.bids.iter().rev().take(depth).map(conv).collect(),
            RefSide::Ask => self.asks.iter().take(depth).map(conv).collect(),
        }
    }
}

/// Exports `name` at `depth` and checks every line against the `dbn` decoder and the
/// reference model. Returns the number of lines.
fn check_export_against_reference(name: &str, depth: Option<usize>) -> usize {
    let path = data(name);
    let records = dbn_records(&path);
    assert!(!records.is_empty(), "{name}: dbn decoded no records");
    let depth_arg = depth.map(|d| d.to_string());
    let extra: Vec<&str> = match &depth_arg {
        Some(d) => vec!["--depth", d.as_str()],
        None => Vec::new(),
    };
    let depth = depth.unwrap_or(10);
    let stdout = export(&path, &extra);
    let out = lines(&stdout);

    let expected_count = records.iter().filter(|r| r.flags.is_last()).count();
    assert_eq!(
        out.len(),
        expected_count,
        "{name}: line count != records with F_LAST"
    );

    let mut books: HashMap<(u32, u16), RefBook> = HashMap::new();
    let mut lines_iter = out.iter();
    let mut last_i: Option<u64> = None;
    for (index, r) in records.iter().enumerate() {
        let key = (r.hd.instrument_id, r.hd.publisher_id);
        let book = books.entry(key).or_default();
        book.apply(r);
        if !r.flags.is_last() {
            continue;
        }
        let line = lines_iter.next().expect("as many lines as F_LAST records");
        let (v, bids, asks) = parse_line(line, depth);
        let i = v["i"].as_u64().unwrap();
        if let Some(prev) = last_i {
            assert!(i > prev, "{name}: i not strictly increasing: {line}");
        }
        last_i = Some(i);
        assert_eq!(
            i, index as u64,
            "{name}: i of F_LAST record {index}: {line}"
        );
        assert_eq!(v["ts_recv"].as_u64(), Some(r.ts_recv), "{name}: {line}");
        assert_eq!(
            v["ts_event"].as_u64(),
            Some(r.hd.ts_event),
            "{name}: {line}"
        );
        assert_eq!(
            v["sequence"].as_u64(),
            Some(u64::from(r.sequence)),
            "{name}: {line}"
        );
        assert_eq!(
            v["instrument_id"].as_u64(),
            Some(u64::from(r.hd.instrument_id)),
            "{name}: {line}"
        );
        assert_eq!(
            v["publisher_id"].as_u64(),
            Some(u64::from(r.hd.publisher_id)),
            "{name}: {line}"
        );
        assert_eq!(
            bids,
            book.top(RefSide::Bid, depth),
            "{name}: bids differ from the reference model at record {index}: {line}"
        );
        assert_eq!(
            asks,
            book.top(RefSide::Ask, depth),
            "{name}: asks differ from the reference model at record {index}: {line}"
        );
    }
    out.len()
}

// ---------------------------------------------------------------------------------------------
// export-book on the real files
// ---------------------------------------------------------------------------------------------

#[test]
fn export_clx5_matches_dbn_decoder_and_reference() {
    let n = check_export_against_reference(CLX5, None);
    assert!(n > 0);
    assert_eq!(dbn_records(&data(CLX5)).len() as u64, CLX5_RECORDS);
}

#[test]
fn export_esh4_snapshot_matches_dbn_decoder_and_reference() {
    assert_eq!(check_export_against_reference(ESH4_SNAPSHOT, None), 1);
}

#[test]
fn export_esh4_session_matches_dbn_decoder_and_reference() {
    assert!(check_export_against_reference(ESH4_SESSION, None) > 0);
}

#[test]
fn export_esm4_matches_dbn_decoder_and_reference() {
    assert!(check_export_against_reference(ESM4, None) > 0);
}

#[test]
fn export_depth_1_and_3_match_reference() {
    check_export_against_reference(ESH4_SESSION, Some(1));
    check_export_against_reference(ESH4_SESSION, Some(3));
    check_export_against_reference(CLX5, Some(1));
    check_export_against_reference(CLX5, Some(3));
}

#[test]
fn export_depth_limits_levels_to_a_prefix_of_the_default() {
    let path = data(ESH4_SESSION);
    let full = export(&path, &[]);
    let full = lines(&full);
    let mut saw_ten = false;
    let full_levels: Vec<(Vec<Level>, Vec<Level>)> = full
        .iter()
        .map(|l| {
            let (_, b, a) = parse_line(l, 10);
            saw_ten |= b.len() == 10 || a.len() == 10;
            (b, a)
        })
        .collect();
    assert!(
        saw_ten,
        "default depth never reached 10 levels on a deep book"
    );
    for depth in [1usize, 3] {
        let d = depth.to_string();
        let out = export(&path, &["--depth", &d]);
        let out = lines(&out);
        assert_eq!(out.len(), full.len());
        let mut saw_full_depth = false;
        for (line, (fb, fa)) in out.iter().zip(&full_levels) {
            let (_, b, a) = parse_line(line, depth);
            assert_eq!(&b[..], &fb[..fb.len().min(depth)], "depth {depth}: {line}");
            assert_eq!(&a[..], &fa[..fa.len().min(depth)], "depth {depth}: {line}");
            saw_full_depth |= b.len() == depth && a.len() == depth;
        }
        assert!(saw_full_depth, "--depth {depth} never binds");
    }
}

#[test]
fn export_snapshot_whole_book_has_1451_levels() {
    // PROVENANCE.md: the ESH4 snapshot is a deep book of 1,451 price levels.
    let out = export(&data(ESH4_SNAPSHOT), &["--depth", "100000"]);
    let out = lines(&out);
    assert_eq!(out.len(), 1);
    let (_, bids, asks) = parse_line(out[0], 100_000);
    assert_eq!(bids.len() + asks.len(), 1451);
    check_export_against_reference(ESH4_SNAPSHOT, Some(100_000));
}

#[test]
fn export_clx5_first_line_is_known() {
    let out = export(&data(CLX5), &[]);
    let first = lines(&out)[0];
    assert_eq!(
        first,
        r#"{"i":0,"ts_recv":1758742200001385399,"ts_event":1758742200000860311,"sequence":94225061,"instrument_id":432669,"publisher_id":1,"bids":[],"asks":[[64830000000,1,1]]}"#
    );
}

#[test]
fn export_detects_compression_by_content_not_name() {
    let dir = tempfile::tempdir().unwrap();
    // Plain DBN named like a zstd file.
    let plain_as_zst = dir.path().join("clx5.dbn.zst");
    std::fs::copy(data(CLX5), &plain_as_zst).unwrap();
    assert_eq!(export(&plain_as_zst, &[]), export(&data(CLX5), &[]));
    // zstd content named like a plain file, and its decompressed form: same lines.
    let zst_as_plain = dir.path().join("esm4.dbn");
    std::fs::copy(data(ESM4), &zst_as_plain).unwrap();
    let decompressed = dir.path().join("esm4-decompressed.dbn");
    std::fs::write(
        &decompressed,
        zstd::decode_all(&std::fs::read(data(ESM4)).unwrap()[..]).unwrap(),
    )
    .unwrap();
    let reference = export(&data(ESM4), &[]);
    assert!(!reference.is_empty());
    assert_eq!(export(&zst_as_plain, &[]), reference);
    assert_eq!(export(&decompressed, &[]), reference);
}

// ---------------------------------------------------------------------------------------------
// --out
// ---------------------------------------------------------------------------------------------

#[test]
fn out_path_writes_the_same_bytes_as_stdout() {
    let dir = tempfile::tempdir().unwrap();
    for name in [CLX5, ESM4] {
        let stdout = export(&data(name), &["--depth", "5"]);
        let out = dir.path().join(format!("{name}.jsonl"));
        let printed = export(
            &data(name),
            &["--depth", "5", "--out", out.to_str().unwrap()],
        );
        assert!(printed.is_empty(), "--out PATH also printed to stdout");
        assert_eq!(std::fs::read(&out).unwrap(), stdout, "{name}");
    }
    // Only the outputs are left in the directory (no temporary files).
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec![format!("{CLX5}.jsonl"), format!("{ESM4}.jsonl")]
    );
}

#[test]
fn out_path_replaces_a_pre_existing_file_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("book.jsonl");
    std::fs::write(
        &out,
        "old content that is much longer than nothing\n".repeat(1000),
    )
    .unwrap();
    export(&data(ESM4), &["--out", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), export(&data(ESM4), &[]));
}

#[test]
fn out_dash_goes_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let out = mbo()
        .current_dir(dir.path())
        .args([
            OsStr::new("export-book"),
            data(CLX5).as_os_str(),
            OsStr::new("--out"),
            OsStr::new("-"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(out.stderr.is_empty());
    assert_eq!(out.stdout, export(&data(CLX5), &[]));
    assert!(
        !dir.path().join("-").exists(),
        "--out - created a file named '-'"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn out_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    let out = missing.join("book.jsonl");
    let res = run([
        OsStr::new("export-book"),
        data(CLX5).as_os_str(),
        OsStr::new("--out"),
        out.as_os_str(),
    ]);
    let stderr = assert_one_line_error(&res);
    assert!(
        stderr.contains(&out.display().to_string())
            || stderr.contains(&missing.display().to_string()),
        "stderr does not name the output path: {stderr}"
    );
    assert!(
        stderr.to_lowercase().contains("no such file or directory"),
        "stderr does not say the directory is missing: {stderr}"
    );
    assert!(!missing.exists());
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Exit code 2, nothing on stdout, exactly one line on stderr; returns that line.
fn assert_one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        out.stdout.is_empty(),
        "stdout not empty on error ({} bytes), stderr: {stderr}",
        out.stdout.len()
    );
    assert!(
        stderr.ends_with('\n') && stderr.matches('\n').count() == 1,
        "stderr is not exactly one line: {stderr:?}"
    );
    stderr
}

/// Checks that `export-book FILE` fails as specified, to stdout and with `--out`:
/// the error names the file and contains every phrase; `--out PATH` is never created, and a
/// pre-existing PATH keeps its content; no temporary file is left behind.
fn assert_export_error(file: &Path, phrases: &[&str]) {
    let check = |out: &Output| {
        let stderr = assert_one_line_error(out);
        assert!(
            stderr.contains(&file.display().to_string()),
            "stderr does not name {}: {stderr}",
            file.display()
        );
        for p in phrases {
            assert!(
                stderr.to_lowercase().contains(&p.to_lowercase()),
                "stderr lacks {p:?}: {stderr}"
            );
        }
    };
    // Standard output.
    check(&run([OsStr::new("export-book"), file.as_os_str()]));
    check(&run([
        OsStr::new("export-book"),
        file.as_os_str(),
        OsStr::new("--out"),
        OsStr::new("-"),
    ]));

    // --out to a fresh path: not created, nothing left in the directory.
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh.jsonl");
    check(&run([
        OsStr::new("export-book"),
        file.as_os_str(),
        OsStr::new("--out"),
        fresh.as_os_str(),
    ]));
    assert!(!fresh.exists(), "--out path created on error");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "files left behind in the output directory"
    );

    // --out to an existing path: untouched.
    let existing = dir.path().join("existing.jsonl");
    let content = b"{\"keep\":\"me\"}\n";
    std::fs::write(&existing, content).unwrap();
    check(&run([
        OsStr::new("export-book"),
        file.as_os_str(),
        OsStr::new("--out"),
        existing.as_os_str(),
    ]));
    assert_eq!(std::fs::read(&existing).unwrap(), content);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "files left behind in the output directory"
    );
}

#[test]
fn error_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    assert_export_error(&dir.path().join("does-not-exist.dbn"), &["no such file"]);
}

#[test]
fn error_text_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.dbn");
    std::fs::write(&path, "this is plain text, not DBN\nsecond line\n").unwrap();
    assert_export_error(&path, &["not a DBN file"]);
}

#[test]
fn error_empty_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.dbn");
    std::fs::write(&path, b"").unwrap();
    assert_export_error(&path, &["not a DBN file", "empty"]);
}

#[test]
fn error_truncated_plain_mid_record() {
    let bytes = std::fs::read(data(CLX5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Near the end (a streaming writer would have printed almost everything) and near the
    // start.
    for (label, cut) in [("late", bytes.len() - 30), ("early", 360 + 56 * 100 + 20)] {
        let path = dir.path().join(format!("clx5-cut-{label}.dbn"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_export_error(&path, &["truncated"]);
    }
}

#[test]
fn error_truncated_inside_metadata() {
    let bytes = std::fs::read(data(CLX5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [5usize, 100] {
        let path = dir.path().join(format!("clx5-meta-{cut}.dbn"));
        std::fs::write(&path, &bytes[..cut]).unwrap();
        assert_export_error(&path, &["truncated", "metadata"]);
    }
}

#[test]
fn error_truncated_zst() {
    let bytes = std::fs::read(data(ESH4_SESSION)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esh4-half.dbn.zst");
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert_export_error(&path, &["truncated"]);
}

#[test]
fn error_decompressed_then_truncated() {
    let plain = zstd::decode_all(&std::fs::read(data(ESM4)).unwrap()[..]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("esm4-cut.dbn");
    std::fs::write(&path, &plain[..plain.len() * 2 / 3 + 7]).unwrap();
    assert_export_error(&path, &["truncated"]);
}

#[test]
fn error_other_schema_mbp10() {
    assert_export_error(&data(MBP10), &["mbp-10", "expected mbo"]);
}

#[test]
fn error_other_schema_trades() {
    assert_export_error(&data(TRADES), &["trades", "expected mbo"]);
}

#[test]
fn error_bad_depth_is_rejected_by_clap() {
    for bad in ["0", "abc", "-1"] {
        let depth_arg = format!("--depth={bad}");
        let out = run([
            OsStr::new("export-book"),
            data(CLX5).as_os_str(),
            OsStr::new(&depth_arg),
        ]);
        assert_eq!(out.status.code(), Some(2), "--depth {bad}: {out:?}");
        assert!(out.stdout.is_empty(), "--depth {bad}: stdout not empty");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--depth"), "--depth {bad}: {stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// bench
// ---------------------------------------------------------------------------------------------

#[test]
fn bench_clx5_two_loops() {
    let stdout = run_ok([
        OsStr::new("bench"),
        data(CLX5).as_os_str(),
        OsStr::new("--loops"),
        OsStr::new("2"),
    ]);
    let out = lines(&stdout);
    assert_eq!(out.len(), 1, "bench printed {} lines", out.len());
    let v: Value = serde_json::from_str(out[0]).unwrap();
    assert_eq!(v["records"].as_u64(), Some(2 * CLX5_RECORDS), "{}", out[0]);
    for k in ["decode_only_rps", "apply_rps", "ratio"] {
        let x = v[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k} is not a number: {}", out[0]));
        assert!(x.is_finite() && x > 0.0, "{k} = {x}: {}", out[0]);
    }
}

#[test]
fn bench_rejects_bad_files() {
    let bytes = std::fs::read(data(CLX5)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = dir.path().join("clx5-cut.dbn");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let half = dir.path().join("esh4-half.dbn.zst");
    let z = std::fs::read(data(ESH4_SESSION)).unwrap();
    std::fs::write(&half, &z[..z.len() / 2]).unwrap();
    for (file, phrase) in [
        (cut, "truncated"),
        (half, "truncated"),
        (data(MBP10), "expected mbo"),
        (dir.path().join("missing.dbn"), "no such file"),
    ] {
        let out = run([
            OsStr::new("bench"),
            file.as_os_str(),
            OsStr::new("--loops"),
            OsStr::new("1"),
        ]);
        let stderr = assert_one_line_error(&out);
        assert!(stderr.contains(&file.display().to_string()), "{stderr}");
        assert!(stderr.to_lowercase().contains(phrase), "{stderr}");
    }
}

// ---------------------------------------------------------------------------------------------
// A reader that stops early (`mbo export-book FILE | head -1`)
// ---------------------------------------------------------------------------------------------

#[cfg(unix)]
#[test]
fn export_to_a_closed_pipe_exits_quietly() {
    use std::os::unix::process::ExitStatusExt;
    use std::process::Stdio;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_mbo"))
        .arg("export-book")
        .arg(data(CLX5))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    reader.read_line(&mut first).unwrap();
    drop(reader); // close the read end: the rest of the ~5 MB cannot be written
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(first.starts_with("{\"i\":0,"), "first line: {first}");
    assert!(
        stderr.is_empty(),
        "stderr noise after the reader closed the pipe: {stderr}"
    );
    assert!(
        status.success() || status.signal() == Some(13),
        "exit status {status:?} after the reader closed the pipe"
    );
}

/// `--out` naming a pipe (or a device such as /dev/null) writes into it in place: renaming a
/// temporary file over it would replace the pipe itself.
#[test]
fn out_to_a_named_pipe_writes_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("book.pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .expect("mkfifo (coreutils) is needed by this test");
    assert!(made.success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(&fifo).unwrap())
    };
    let mut cmd = Command::cargo_bin("mbo").unwrap();
    cmd.args([OsStr::new("export-book"), data(CLX5).as_os_str()])
        .args([OsStr::new("--out"), fifo.as_os_str()]);
    cmd.assert().success();
    let piped = reader.join().unwrap();
    let stdout = run_ok([OsStr::new("export-book"), data(CLX5).as_os_str()]);
    assert_eq!(piped, stdout);
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
}
