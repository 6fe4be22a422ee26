//! The allocation-free scanner behind Kraken's fast path (see the [`kraken`](super) module
//! doc for why it exists and what falls back to `serde_json`).
//!
//! The scanner accepts a strict subset of JSON and returns `None` for anything outside it,
//! so for every frame it accepts it must see exactly what the `serde_json` path sees:
//!
//! * whitespace is JSON's four characters only (what `serde_json` skips);
//! * strings are taken only without escapes or control characters: then their text is the
//!   bytes between the quotes, which is what `serde_json` borrows (it cannot borrow an
//!   escaped string and fails the frame instead);
//! * numbers are taken only in plain decimal form, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`; their
//!   text is then exactly what a `RawValue` holds. Exponents fall back;
//! * each object's keys may come in any order, but a key it does not know, a repeated key
//!   or a `null` falls back (`serde_json` ignores unknown keys and fails repeated ones);
//! * nothing but whitespace may follow the frame's value.
//!
//! v1 level numbers are JSON strings (`"27120.00000"`): their text is the string's, as
//! `serde_json` borrows it.
//!
//! Level numbers are converted (`wire::level`) while scanning; the outcome is kept per entry
//! and only acted on once the whole frame has scanned, as the `serde_json` path parses the
//! whole frame before it touches a book.

use std::ops::Range;

use crate::book::Level;
use crate::wire;

/// A cursor over a frame.
pub(super) struct Cur<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self {
            text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// Skips JSON whitespace (exactly what `serde_json` skips).
    fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Whether only whitespace is left.
    pub(super) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    /// The span (inside the quotes) of a string without escapes or control characters.
    fn string_span(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.i;
        let end = special(self.b, start)?;
        (self.b.get(end) == Some(&b'"')).then_some(())?;
        self.i = end + 1;
        Some(start..end)
    }

    /// A string without escapes or control characters.
    pub(super) fn string(&mut self) -> Option<&'a str> {
        let r = self.string_span()?;
        self.text.get(r)
    }

    /// A number in plain decimal form, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: its text.
    pub(super) fn plain_number(&mut self) -> Option<&'a str> {
        self.ws();
        let start = self.i;
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        self.plain_digits()?;
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let d = self.i;
            self.digits();
            if self.i == d {
                return None;
            }
        }
        self.number_ends()?;
        self.text.get(start..self.i)
    }

    /// `0|[1-9][0-9]*`.
    fn plain_digits(&mut self) -> Option<()> {
        match self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        Some(())
    }

    /// Fails when the number goes on (a leading zero's digits, a second dot, an exponent).
    fn number_ends(&self) -> Option<()> {
        (!matches!(self.b.get(self.i), Some(b'0'..=b'9' | b'.' | b'e' | b'E'))).then_some(())
    }

    /// A non-negative integer that fits `u32`, written `0|[1-9][0-9]*`.
    pub(super) fn plain_u32(&mut self) -> Option<u32> {
        self.ws();
        let start = self.i;
        self.plain_digits()?;
        self.number_ends()?;
        let t = self.b.get(start..self.i)?;
        if t.len() > 10 {
            return None;
        }
        let v = t
            .iter()
            .fold(0u64, |v, c| v * 10 + u64::from(c.wrapping_sub(b'0')));
        u32::try_from(v).ok()
    }

    /// An object: `f` reads the value of each key (and fails on keys it does not take).
    pub(super) fn object(
        &mut self,
        mut f: impl FnMut(&mut Self, &'a str) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.eat(b':')?;
            f(self, key)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An array: `f` reads each element.
    pub(super) fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            f(self)?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }
}

/// Index of the first `"`, `\\` or control character at or after `i`: eight bytes per step
/// (strings are most of a frame's bytes).
pub(super) fn special(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().ok()?);
        let quote = x ^ (ONES * u64::from(b'"'));
        let backslash = x ^ (ONES * u64::from(b'\\'));
        // Per byte, the high bit is set where the byte is zero (resp. below 0x20); bits above
        // the first such byte may be set spuriously (borrows), so only the lowest is used.
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (x.wrapping_sub(ONES * 0x20) & !x))
            & HIGH;
        if found != 0 {
            return Some(i + found.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    let tail = b.get(i..)?;
    tail.iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|p| i + p)
}

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
    // The channel id: a plain integer that fits `u64` (19 digits always do).
    c.ws();
    let start = c.i;
    c.plain_digits()?;
    c.number_ends()?;
    if c.i - start > 19 {
        return None;
    }
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
