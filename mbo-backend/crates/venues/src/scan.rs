//! The allocation-free JSON scanner behind the venues' fast paths (Kraken, Bybit, Binance,
//! Coinbase book frames; each venue's module doc says what it takes and why).
//!
//! The scanner accepts a strict subset of JSON and returns `None` for anything outside it
//! (the caller then parses the frame with `serde_json`), so for every frame it accepts it
//! must see exactly what the `serde_json` path sees:
//!
//! * whitespace is JSON's four characters only (what `serde_json` skips);
//! * strings are taken only without escapes or control characters: then their text is the
//!   bytes between the quotes, which is what `serde_json` borrows (it cannot borrow an
//!   escaped string and fails the frame instead);
//! * numbers are taken only in plain decimal form, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`; their
//!   text is then exactly what a `RawValue` holds. Exponents fall back; integers read as
//!   `u32`/`u64` must be unsigned and fit;
//! * each object's keys may come in any order, but a key the caller does not know, a
//!   repeated key or a `null` falls back (`serde_json` ignores unknown keys and fails
//!   repeated ones). A key `serde_json` ignores may be taken only when its value is one the
//!   scanner reads in full (a plain string or integer), so the frame is valid JSON;
//! * nothing but whitespace may follow the frame's value.
//!
//! Level numbers are converted (`wire::level`) while scanning; the outcome is kept
//! ([`LevelScan`]) and only acted on once the whole frame has scanned, as the `serde_json`
//! paths parse the whole frame before they touch a book.

use std::ops::Range;

use crate::book::{Level, Side};
use crate::wire;

/// A cursor over a frame.
pub(crate) struct Cur<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

impl<'a> Cur<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Self {
            text,
            b: text.as_bytes(),
            i: 0,
        }
    }

    /// Skips JSON whitespace (exactly what `serde_json` skips).
    pub(crate) fn ws(&mut self) {
        while self
            .b
            .get(self.i)
            .is_some_and(|c| matches!(c, b' ' | b'\t' | b'\n' | b'\r'))
        {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    pub(crate) fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    /// The next byte after whitespace, not consumed.
    pub(crate) fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    pub(crate) fn eat(&mut self, c: u8) -> Option<()> {
        (self.next()? == c).then_some(())
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.ws();
        self.i == self.b.len()
    }

    fn digits(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
    }

    /// The span (inside the quotes) of a string without escapes or control characters.
    pub(crate) fn string_span(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.i;
        let end = special(self.b, start)?;
        (self.b.get(end) == Some(&b'"')).then_some(())?;
        self.i = end + 1;
        Some(start..end)
    }

    /// A string without escapes or control characters.
    pub(crate) fn string(&mut self) -> Option<&'a str> {
        let r = self.string_span()?;
        self.text.get(r)
    }

    /// A number in plain decimal form, `-?(0|[1-9][0-9]*)(\.[0-9]+)?`: its text.
    pub(crate) fn plain_number(&mut self) -> Option<&'a str> {
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
    pub(crate) fn plain_u32(&mut self) -> Option<u32> {
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

    /// A non-negative integer that fits `u64`, written `0|[1-9][0-9]*` (what `serde_json`
    /// reads as a `u64`; larger ones it reads as floats, which a `u64` field refuses).
    pub(crate) fn plain_u64(&mut self) -> Option<u64> {
        self.ws();
        let start = self.i;
        self.plain_digits()?;
        self.number_ends()?;
        self.b.get(start..self.i)?.iter().try_fold(0u64, |v, c| {
            v.checked_mul(10)?
                .checked_add(u64::from(c.wrapping_sub(b'0')))
        })
    }

    /// `[["price","size",..],..]` (each element past the first two a plain string too, as
    /// `wire::Pair` ignores them) converted into `scan` on `side`; returns their range.
    /// Written out rather than with [`Self::array`]: this loop is most of a book frame.
    pub(crate) fn pairs(&mut self, side: Side, scan: &mut LevelScan) -> Option<Range<usize>> {
        let start = scan.levels.len();
        self.eat(b'[')?;
        if self.peek()? == b']' {
            self.i += 1;
            return Some(start..start);
        }
        loop {
            self.eat(b'[')?;
            let price = self.string()?;
            self.eat(b',')?;
            let qty = self.string()?;
            loop {
                match self.next()? {
                    b']' => break,
                    b',' => {
                        self.string()?;
                    }
                    _ => return None,
                }
            }
            scan.push(side, price, qty);
            match self.next()? {
                b',' => {}
                b']' => return Some(start..scan.levels.len()),
                _ => return None,
            }
        }
    }

    /// An object: `f` reads the value of each key (and fails on keys it does not take).
    #[inline]
    pub(crate) fn object(
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
    #[inline]
    pub(crate) fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
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
pub(crate) fn special(b: &[u8], mut i: usize) -> Option<usize> {
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

/// Levels converted while scanning, reused across frames (no allocation once warm).
#[derive(Debug, Clone, Default)]
pub(crate) struct LevelScan {
    pub levels: Vec<(Side, i64, Level)>,
    /// Levels whose price the `i64` unit cannot hold (skipped, as `wire::levels` does).
    pub skipped: u64,
    /// A level number that is not a valid price or size: the frame is bad. Nothing is
    /// converted after it (`wire::levels` stops there too).
    pub bad_number: bool,
}

impl LevelScan {
    pub(crate) fn clear(&mut self) {
        self.levels.clear();
        self.skipped = 0;
        self.bad_number = false;
    }

    /// Converts one level as `wire::levels` does.
    pub(crate) fn push(&mut self, side: Side, price: &str, qty: &str) {
        if self.bad_number {
            return;
        }
        match wire::level(price, qty) {
            Ok((p, l)) => self.levels.push((side, p, l)),
            Err(e) if wire::unrepresentable(price, e) => self.skipped += 1,
            Err(_) => self.bad_number = true,
        }
    }

    /// Puts the levels in `bids`-then-`asks` order (the `serde_json` paths convert bids
    /// first whatever the key order) when the frame held exactly these two lists, `asks`
    /// first.
    pub(crate) fn bids_first(&mut self, bids: &Range<usize>, asks: &Range<usize>) {
        if asks.start < bids.start {
            self.levels.rotate_left(asks.len());
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_integers() {
        let u64_of = |t: &str| Cur::new(t).plain_u64();
        assert_eq!(u64_of("0"), Some(0));
        assert_eq!(u64_of(" 123"), Some(123));
        assert_eq!(u64_of("18446744073709551615"), Some(u64::MAX));
        for t in [
            "18446744073709551616",
            "99999999999999999999",
            "-1",
            "-0",
            "01",
            "1.0",
            "1e3",
            "1E3",
            "\"1\"",
            "",
            "+1",
            "null",
        ] {
            assert_eq!(u64_of(t), None, "{t}");
        }
        assert_eq!(Cur::new("4294967295").plain_u32(), Some(u32::MAX));
        assert_eq!(Cur::new("4294967296").plain_u32(), None);
    }

    #[test]
    fn string_end_search_matches_a_byte_loop() {
        // Every byte value at every position of strings long enough to cross the 8-byte
        // steps, after a run of ordinary bytes (including non-ASCII ones).
        for len in 0..20 {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut b: Vec<u8> =
                        (0..len).map(|i| [b'a', b'0', 0xc3, 0x7f][i % 4]).collect();
                    b[at] = byte;
                    for start in 0..=len.min(9) {
                        let naive = b[start..]
                            .iter()
                            .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                            .map(|p| start + p);
                        assert_eq!(special(&b, start), naive, "{b:?} from {start}");
                    }
                }
            }
        }
    }

    #[test]
    fn pairs_in_any_side_order() {
        let mut scan = LevelScan::default();
        let mut c = Cur::new(r#"[["1.5","2"]] [["1","3","x"],["2","4"]]"#);
        let asks = c.pairs(Side::Ask, &mut scan).unwrap();
        let bids = c.pairs(Side::Bid, &mut scan).unwrap();
        assert!(c.at_end());
        scan.bids_first(&bids, &asks);
        let sides: Vec<Side> = scan.levels.iter().map(|l| l.0).collect();
        assert_eq!(sides, [Side::Bid, Side::Bid, Side::Ask]);
        assert_eq!(scan.levels[0].1, 1_000_000_000);
        assert!(Cur::new(r#"[["1"]]"#).pairs(Side::Bid, &mut scan).is_none());
        assert!(Cur::new(r#"[["1","2",3]]"#)
            .pairs(Side::Bid, &mut scan)
            .is_none());
    }
}
