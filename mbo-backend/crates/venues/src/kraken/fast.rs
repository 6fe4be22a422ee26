//! Kraken's book-frame scanners (see the [`kraken`](super) module doc for why they exist and
//! what falls back to `serde_json`), built on the crate's shared [`Cur`] scanner, whose
//! contract (`crate::scan`) they keep: what they take is exactly what `serde_json` sees.
//!
//! v1 level numbers are JSON strings (`"27120.00000"`): their text is the string's, as
//! `serde_json` borrows it.
//!
//! Level numbers are converted (`wire::level`) while scanning; the outcome is kept per entry
//! and only acted on once the whole frame has scanned, as the `serde_json` path parses the
//! whole frame before it touches a book.

use std::ops::Range;

use crate::book::Level;
use crate::scan::Cur;
use crate::wire;

/// One `data` entry of a v2 book frame, scanned.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Span of `symbol` in the frame.
    pub symbol: Option<Range<usize>>,
    /// Parsed bids, a range of [`BookScan::levels`].
    pub bids: Range<usize>,
    /// Parsed asks, a range of [`BookScan::levels`].
    pub asks: Range<usize>,
    pub checksum: Option<u32>,
    /// Levels whose price the `i64` unit cannot hold.
    pub skipped: u64,
    /// A level number that is not a valid price or size: the entry is a bad frame.
    pub bad_number: bool,
}

/// A scanned v2 book frame; reused across frames so scanning allocates nothing once warm.
#[derive(Debug, Clone, Default)]
pub(super) struct BookScan {
    pub entries: Vec<Entry>,
    pub levels: Vec<(i64, Level)>,
}

/// Scans `{"channel":"book","type":"snapshot"|"update","data":[entries]}` into `scan`:
/// `Some(snapshot)`, or `None` when the frame is anything else or outside the subset this
/// scanner takes (the caller then parses it with `serde_json`).
pub(super) fn v2_book(frame: &str, scan: &mut BookScan) -> Option<bool> {
    scan.entries.clear();
    scan.levels.clear();
    let mut c = Cur::new(frame);
    let (mut channel, mut kind, mut data) = (None, None, false);
    c.object(|c, key| {
        match key {
            "channel" if channel.is_none() => channel = Some(c.string()?),
            "type" if kind.is_none() => kind = Some(c.string()?),
            "data" if !data => {
                data = true;
                c.array(|c| entry(c, scan))?;
            }
            _ => return None,
        }
        Some(())
    })?;
    if !c.at_end() || channel != Some("book") || !data {
        return None;
    }
    match kind? {
        "snapshot" => Some(true),
        "update" => Some(false),
        _ => None,
    }
}

/// `{"symbol":..,"bids":[..],"asks":[..],"checksum":N,"timestamp":".."}`, keys in any order.
fn entry(c: &mut Cur<'_>, scan: &mut BookScan) -> Option<()> {
    let mut e = Entry {
        symbol: None,
        bids: 0..0,
        asks: 0..0,
        checksum: None,
        skipped: 0,
        bad_number: false,
    };
    let (mut bids, mut asks, mut timestamp) = (false, false, false);
    c.object(|c, key| {
        match key {
            "symbol" if e.symbol.is_none() => e.symbol = Some(c.string_span()?),
            "bids" if !bids => {
                bids = true;
                e.bids = levels(c, scan, &mut e.skipped, &mut e.bad_number)?;
            }
            "asks" if !asks => {
                asks = true;
                e.asks = levels(c, scan, &mut e.skipped, &mut e.bad_number)?;
            }
            "checksum" if e.checksum.is_none() => e.checksum = Some(c.plain_u32()?),
            "timestamp" if !timestamp => {
                timestamp = true;
                c.string()?;
            }
            _ => return None,
        }
        Some(())
    })?;
    scan.entries.push(e);
    Some(())
}

/// `[{"price":N,"qty":N},..]` converted into `scan.levels`; returns their range.
fn levels(
    c: &mut Cur<'_>,
    scan: &mut BookScan,
    skipped: &mut u64,
    bad: &mut bool,
) -> Option<Range<usize>> {
    let start = scan.levels.len();
    c.array(|c| {
        let (mut price, mut qty) = (None, None);
        c.object(|c, key| {
            match key {
                "price" if price.is_none() => price = Some(c.plain_number()?),
                "qty" if qty.is_none() => qty = Some(c.plain_number()?),
                _ => return None,
            }
            Some(())
        })?;
        let (price, qty) = price.zip(qty)?;
        if !*bad {
            match wire::level(price, qty) {
                Ok(l) => scan.levels.push(l),
                Err(e) if wire::unrepresentable(price, e) => *skipped += 1,
                Err(_) => *bad = true,
            }
        }
        Some(())
    })?;
    Some(start..scan.levels.len())
}

/// One book object of a v1 frame, scanned.
#[derive(Debug, Clone)]
pub(super) struct V1Object {
    /// `as`, `bs`, `a`, `b`: ranges of [`V1Scan::levels`], `None` when absent.
    pub lists: [Option<Range<usize>>; 4],
    /// Span of `c` in the frame.
    pub checksum: Option<Range<usize>>,
    /// Levels whose price the `i64` unit cannot hold.
    pub skipped: u64,
    /// A level number that is not a valid price or size: the frame is bad.
    pub bad_number: bool,
}

/// A scanned v1 book frame; reused across frames.
#[derive(Debug, Clone, Default)]
pub(super) struct V1Scan {
    pub objects: Vec<V1Object>,
    pub levels: Vec<(i64, Level)>,
}

/// Scans `[channelID,{..}(,{..}),"book-N","PAIR"]` into `scan`: `Some((depth, pair))`, or
/// `None` when the frame is anything else or outside the subset this scanner takes.
pub(super) fn v1_book<'a>(frame: &'a str, scan: &mut V1Scan) -> Option<(usize, &'a str)> {
    scan.objects.clear();
    scan.levels.clear();
    let mut c = Cur::new(frame);
    c.eat(b'[')?;
    // The channel id: a plain integer that fits `u64` (what `V1Part` reads as a number).
    c.plain_u64()?;
    let mut strings: [Option<&'a str>; 2] = [None, None];
    loop {
        c.eat(b',')?;
        match c.peek()? {
            b'{' if strings[0].is_none() => v1_object(&mut c, scan)?,
            b'"' if strings[0].is_none() => strings[0] = Some(c.string()?),
            b'"' if strings[1].is_none() => strings[1] = Some(c.string()?),
            _ => return None,
        }
        if strings[1].is_some() {
            break;
        }
    }
    c.eat(b']')?;
    let (Some(name), Some(pair)) = (strings[0], strings[1]) else {
        return None;
    };
    if !c.at_end() || scan.objects.is_empty() {
        return None;
    }
    let depth = name.strip_prefix("book-")?.parse::<usize>().ok()?;
    Some((depth, pair))
}

/// `{"as":[..],"bs":[..]}` or `{"a":[..],"b":[..],"c":".."}`, keys in any order.
fn v1_object(c: &mut Cur<'_>, scan: &mut V1Scan) -> Option<()> {
    let mut o = V1Object {
        lists: [None, None, None, None],
        checksum: None,
        skipped: 0,
        bad_number: false,
    };
    c.object(|c, key| {
        let slot = match key {
            "as" => 0,
            "bs" => 1,
            "a" => 2,
            "b" => 3,
            "c" if o.checksum.is_none() => {
                o.checksum = Some(c.string_span()?);
                return Some(());
            }
            _ => return None,
        };
        if o.lists.get(slot)?.is_some() {
            return None;
        }
        let r = v1_levels(c, scan, &mut o.skipped, &mut o.bad_number)?;
        *o.lists.get_mut(slot)? = Some(r);
        Some(())
    })?;
    scan.objects.push(o);
    Some(())
}

/// `[["price","volume",..],..]` converted into `scan.levels` (elements past the first two
/// must be plain strings too); returns their range.
fn v1_levels(
    c: &mut Cur<'_>,
    scan: &mut V1Scan,
    skipped: &mut u64,
    bad: &mut bool,
) -> Option<Range<usize>> {
    let start = scan.levels.len();
    c.array(|c| {
        let (mut price, mut qty, mut n) = (None, None, 0);
        c.array(|c| {
            let s = c.string()?;
            match n {
                0 => price = Some(s),
                1 => qty = Some(s),
                _ => {}
            }
            n += 1;
            Some(())
        })?;
        let (price, qty) = price.zip(qty)?;
        if !*bad {
            match wire::level(price, qty) {
                Ok(l) => scan.levels.push(l),
                Err(e) if wire::unrepresentable(price, e) => *skipped += 1,
                Err(_) => *bad = true,
            }
        }
        Some(())
    })?;
    Some(start..scan.levels.len())
}
