//! Borrowed JSON pieces shared by the venue parsers: level arrays read as `&str` without
//! allocating per level, and the decimal conversion of a level.

use std::fmt;

use serde::de::{Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

use crate::book::Level;
use crate::decimal::{parse_price, parse_qty, DecimalError};

/// `["price","size", ...]`: the first two strings of an array; further elements (Kraken v1's
/// timestamp and republish flag) are skipped.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pair<'a>(pub &'a str, pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Pair<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Pair<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of at least two strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let a: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(0, &self))?;
                let b: &'de str = seq
                    .next_element()?
                    .ok_or_else(|| serde::de::Error::invalid_length(1, &self))?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Pair(a, b))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// `["side","price","size", ...]` (Coinbase legacy `l2update` changes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Triple<'a>(pub &'a str, pub &'a str, pub &'a str);

impl<'de: 'a, 'a> Deserialize<'de> for Triple<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Triple<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of at least three strings")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut next = |i| -> Result<&'de str, A::Error> {
                    seq.next_element()?
                        .ok_or_else(|| serde::de::Error::invalid_length(i, &self))
                };
                let a = next(0)?;
                let b = next(1)?;
                let c = next(2)?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Triple(a, b, c))
            }
        }
        d.deserialize_seq(V(std::marker::PhantomData))
    }
}

/// A level from its price and size text.
pub(crate) fn level(price: &str, qty: &str) -> Result<(i64, Level), DecimalError> {
    let (price, price_decimals) = parse_price(price)?;
    let (qty, qty_decimals) = parse_qty(qty)?;
    Ok((
        price,
        Level {
            qty,
            price_decimals,
            qty_decimals,
        },
    ))
}

/// Whether a level's error means a well-formed price the backend's `i64` 1e-9 unit cannot
/// hold (Kraken lists an XBT/CHF ask at 9,999,999,997: beyond 9.22e9). Such levels are
/// skipped and counted in [`Counters::unrepresentable_levels`](crate::Counters), not treated
/// as a bad frame.
pub(crate) fn unrepresentable(price: &str, e: DecimalError) -> bool {
    matches!(
        e,
        DecimalError::Overflow | DecimalError::TooManyDecimals { .. }
    ) && parse_price(price).is_err()
}

/// Parses all levels of a message before any is applied, so a bad number leaves the book
/// untouched (the frame is then counted as bad). Unrepresentable prices are skipped and
/// counted in `skipped`.
pub(crate) fn levels<'a, I>(
    side: crate::book::Side,
    pairs: I,
    out: &mut Vec<(crate::book::Side, i64, Level)>,
    skipped: &mut u64,
) -> Result<(), DecimalError>
where
    I: IntoIterator<Item = &'a Pair<'a>>,
{
    for p in pairs {
        match level(p.0, p.1) {
            Ok((price, lv)) => out.push((side, price, lv)),
            Err(e) if unrepresentable(p.0, e) => *skipped += 1,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Milliseconds since the epoch to nanoseconds (saturating).
pub(crate) fn ms_to_ns(ms: u64) -> u64 {
    ms.saturating_mul(1_000_000)
}

/// Parses an RFC 3339 UTC timestamp (`2021-04-17T16:43:37.075687Z`) to nanoseconds since the
/// epoch; `None` when it is not in that form.
pub(crate) fn rfc3339_ns(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, se) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let mut nanos = 0i64;
    let mut i = 19;
    if b.get(19) == Some(&b'.') {
        i = 20;
        let mut scale = 100_000_000i64;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            nanos += i64::from(c - b'0') * scale;
            scale /= 10;
            i += 1;
        }
    }
    if b.get(i) != Some(&b'Z') {
        return None;
    }
    // Days from civil (Howard Hinnant).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3_600 + mi * 60 + se;
    u64::try_from(secs * 1_000_000_000 + nanos).ok()
}

/// Seconds with a decimal fraction (`"1618678133.365913"`) to nanoseconds, exactly.
pub(crate) fn seconds_text_ns(s: &str) -> Option<u64> {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: u64 = int.parse().ok()?;
    let mut nanos = 0u64;
    let mut scale = 100_000_000u64;
    for c in frac.bytes().take(9) {
        if !c.is_ascii_digit() {
            return None;
        }
        nanos += u64::from(c - b'0') * scale;
        scale /= 10;
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert_eq!(
            rfc3339_ns("2021-04-17T16:43:37.075687Z"),
            Some(1_618_677_817_075_687_000)
        );
        assert_eq!(rfc3339_ns("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_ns("garbage"), None);
        assert_eq!(
            seconds_text_ns("1618678133.365913"),
            Some(1_618_678_133_365_913_000)
        );
    }

    #[test]
    fn pairs() {
        let v: Vec<Pair<'_>> =
            serde_json::from_str(r#"[["1.5","2","123.4","r"],["3","4"]]"#).unwrap();
        assert_eq!((v[0].0, v[0].1, v[1].0), ("1.5", "2", "3"));
        assert!(serde_json::from_str::<Vec<Pair<'_>>>(r#"[["1"]]"#).is_err());
    }
}
