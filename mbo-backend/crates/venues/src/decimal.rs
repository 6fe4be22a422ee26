//! Exact fixed-point numbers parsed from the venues' decimal text (never through `f64`).
//!
//! ## Design
//!
//! * Prices are `i64` in 1e-9 units, the backend's unit ([`PRICE_SCALE`]). A price with more
//!   than 9 significant decimals or beyond `i64` is rejected with a [`DecimalError`], never
//!   rounded.
//! * Sizes are [`Qty`]: a `u128` count of 1e-18 units ([`QTY_SCALE`]). `u128` holds 3.4e20
//!   whole units at 18 decimals, more than the supply of any listed token (SHIB's is ~5.9e14),
//!   so a sum of sizes over venues cannot overflow in practice and no digit is ever lost.
//! * Each parse also returns the number of decimals *as written* ("0.00100000" → 8). Books keep
//!   it beside each level, so a level prints back to exactly the venue's text and Kraken's
//!   checksum (which hashes the digits as sent) is computed from the same digits.
//! * JSON numbers (Kraken v2 sends prices as JSON numbers) are parsed from their raw text,
//!   exponent notation included (`1e-05`), with the same exactness.
//!
//! Trailing zeros beyond the scale are accepted (`"1.0000000000"` is exactly 1); a non-zero
//! digit beyond the scale is [`DecimalError::TooManyDecimals`].

use std::fmt;

/// Decimals of the price unit: prices are `i64` counts of 1e-9.
pub const PRICE_SCALE: u32 = 9;
/// Decimals of the size unit: [`Qty`] counts 1e-18.
pub const QTY_SCALE: u32 = 18;

const POW10: [u128; 39] = {
    let mut t = [1u128; 39];
    let mut i = 1;
    while i < 39 {
        t[i] = t[i - 1] * 10;
        i += 1;
    }
    t
};

/// 10^n for n ≤ 38.
#[inline]
fn pow10(n: u32) -> Option<u128> {
    POW10.get(n as usize).copied()
}

/// Why a decimal text was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecimalError {
    /// No digits at all.
    #[error("empty number")]
    Empty,
    /// A character that is not part of a decimal number.
    #[error("invalid character in number")]
    InvalidChar,
    /// More significant decimals than the fixed-point scale holds.
    #[error("more than {scale} significant decimals")]
    TooManyDecimals {
        /// The scale that was exceeded.
        scale: u32,
    },
    /// The value does not fit the integer type.
    #[error("number out of range")]
    Overflow,
    /// A negative size.
    #[error("negative size")]
    Negative,
}

/// The parts of a decimal text: `negative`, integer `mantissa` of all digits, and the count of
/// decimals written (after applying any exponent).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    negative: bool,
    mantissa: u128,
    decimals: u32,
}

fn parse_parts(text: &str) -> Result<Parts, DecimalError> {
    match plain_parts(text.as_bytes()) {
        Some(p) => Ok(p),
        None => parse_parts_general(text),
    }
}

/// The form nearly every venue level is written in, `[0-9]+(\.[0-9]+)?` with at most 19
/// digits, in one tight pass of `u64` arithmetic (two numbers per level: this was the top
/// entry of the venue path's profile). `None` for anything else, which
/// [`parse_parts_general`] then reads; on what this takes the two agree (tested).
#[inline]
fn plain_parts(b: &[u8]) -> Option<Parts> {
    let digit = |i: usize| b.get(i).filter(|c| c.is_ascii_digit());
    let mut value: u64 = 0;
    let mut i = 0;
    while let Some(c) = digit(i) {
        value = value.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        i += 1;
    }
    let integer = i;
    let mut decimals = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while let Some(c) = digit(i) {
            value = value.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
            i += 1;
        }
        decimals = i - start;
        if decimals == 0 {
            return None;
        }
    }
    // 19 digits always fit a u64, so the wrapping arithmetic above never wrapped.
    if integer == 0 || i != b.len() || integer + decimals > 19 {
        return None;
    }
    Some(Parts {
        negative: false,
        mantissa: u128::from(value),
        decimals: u32::try_from(decimals).ok()?,
    })
}

fn parse_parts_general(text: &str) -> Result<Parts, DecimalError> {
    let b = text.as_bytes();
    let mut i = 0;
    let mut negative = false;
    match b.first() {
        Some(b'-') => {
            negative = true;
            i = 1;
        }
        Some(b'+') => i = 1,
        _ => {}
    }
    let mut mantissa: u128 = 0;
    // Up to 19 digits accumulate in u64 (cheap); beyond, in u128 with overflow checks.
    let mut small: u64 = 0;
    let mut digits = 0u32;
    let mut decimals = 0u32;
    let mut seen_dot = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'0'..=b'9' => {
                if digits < 19 {
                    small = small * 10 + u64::from(c - b'0');
                } else {
                    if digits == 19 {
                        mantissa = u128::from(small);
                    }
                    mantissa = mantissa
                        .checked_mul(10)
                        .and_then(|m| m.checked_add(u128::from(c - b'0')))
                        .ok_or(DecimalError::Overflow)?;
                }
                digits += 1;
                if seen_dot {
                    decimals += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' => break,
            _ => return Err(DecimalError::InvalidChar),
        }
        i += 1;
    }
    if digits == 0 {
        return Err(DecimalError::Empty);
    }
    if digits <= 19 {
        mantissa = u128::from(small);
    }
    if i < b.len() {
        // Exponent part.
        i += 1;
        let mut exp_negative = false;
        match b.get(i) {
            Some(b'-') => {
                exp_negative = true;
                i += 1;
            }
            Some(b'+') => i += 1,
            _ => {}
        }
        if i >= b.len() {
            return Err(DecimalError::Empty);
        }
        let mut exp: u32 = 0;
        for &c in &b[i..] {
            if !c.is_ascii_digit() {
                return Err(DecimalError::InvalidChar);
            }
            exp = exp
                .checked_mul(10)
                .and_then(|e| e.checked_add(u32::from(c - b'0')))
                .filter(|e| *e <= 400)
                .ok_or(DecimalError::Overflow)?;
        }
        if exp_negative {
            decimals += exp;
        } else if exp <= decimals {
            decimals -= exp;
        } else {
            let up = pow10(exp - decimals).ok_or(DecimalError::Overflow)?;
            mantissa = mantissa.checked_mul(up).ok_or(DecimalError::Overflow)?;
            decimals = 0;
        }
    }
    Ok(Parts {
        negative,
        mantissa,
        decimals,
    })
}

/// `mantissa / 10^decimals` expressed in units of 10^-scale, exactly.
fn to_scale(p: Parts, scale: u32) -> Result<u128, DecimalError> {
    if p.decimals <= scale {
        let up = pow10(scale - p.decimals).ok_or(DecimalError::Overflow)?;
        p.mantissa.checked_mul(up).ok_or(DecimalError::Overflow)
    } else {
        let extra = p.decimals - scale;
        if p.mantissa == 0 {
            return Ok(0);
        }
        // Only zeros may be cut.
        let down = pow10(extra).ok_or(DecimalError::TooManyDecimals { scale })?;
        if p.mantissa % down != 0 {
            return Err(DecimalError::TooManyDecimals { scale });
        }
        Ok(p.mantissa / down)
    }
}

/// Number of decimals as written, saturated to `u8` (more than 255 cannot be parsed anyway).
fn written(decimals: u32) -> u8 {
    u8::try_from(decimals).unwrap_or(u8::MAX)
}

/// Parses a price into 1e-9 units, with the decimals written.
///
/// # Errors
/// [`DecimalError`] when the text is not a number, has a non-zero digit past 9 decimals, or
/// does not fit `i64`.
pub fn parse_price(text: &str) -> Result<(i64, u8), DecimalError> {
    let p = parse_parts(text)?;
    let v = to_scale(p, PRICE_SCALE)?;
    let v = i64::try_from(v).map_err(|_| DecimalError::Overflow)?;
    Ok((if p.negative { -v } else { v }, written(p.decimals)))
}

/// Parses a size into a [`Qty`] (1e-18 units), with the decimals written.
///
/// # Errors
/// [`DecimalError`] when the text is not a number, is negative (other than `-0`), has a
/// non-zero digit past 18 decimals, or does not fit `u128`.
pub fn parse_qty(text: &str) -> Result<(Qty, u8), DecimalError> {
    let p = parse_parts(text)?;
    let v = to_scale(p, QTY_SCALE)?;
    if p.negative && v != 0 {
        return Err(DecimalError::Negative);
    }
    Ok((Qty(v), written(p.decimals)))
}

/// A size: a count of 1e-18 units. Ordered and summed exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Qty(pub u128);

impl Qty {
    /// Zero.
    pub const ZERO: Qty = Qty(0);

    /// Whether the size is zero (a removal in every venue's L2 protocol).
    #[must_use]
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Exact sum; `None` on overflow.
    #[must_use]
    pub fn checked_add(self, other: Qty) -> Option<Qty> {
        self.0.checked_add(other.0).map(Qty)
    }

    /// Decimal text with at least `decimals` decimals (more if needed to lose no digit).
    #[must_use]
    pub fn format(self, decimals: u8) -> String {
        format_fixed(false, self.0, QTY_SCALE, decimals)
    }
}

impl fmt::Display for Qty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.format(0))
    }
}

/// A price in 1e-9 units as decimal text with at least `decimals` decimals (more if needed to
/// lose no digit).
#[must_use]
pub fn format_price(price: i64, decimals: u8) -> String {
    format_fixed(
        price < 0,
        u128::from(price.unsigned_abs()),
        PRICE_SCALE,
        decimals,
    )
}

/// Fewest decimals that print `value` (in 10^-scale units) exactly.
fn min_decimals(value: u128, scale: u32) -> u32 {
    let mut d = scale;
    let mut v = value;
    while d > 0 && v % 10 == 0 {
        v /= 10;
        d -= 1;
    }
    d
}

fn format_fixed(negative: bool, value: u128, scale: u32, decimals: u8) -> String {
    let decimals = u32::from(decimals).max(min_decimals(value, scale));
    let unit = POW10[scale as usize];
    let int = value / unit;
    let frac = value % unit;
    let mut s = String::with_capacity(48);
    if negative && value != 0 {
        s.push('-');
    }
    s.push_str(&int.to_string());
    if decimals > 0 {
        s.push('.');
        // `frac` has `scale` digits; print the first `decimals` of them, zero-padded after.
        let digits = format!("{frac:0width$}", width = scale as usize);
        let shown = decimals.min(scale) as usize;
        s.push_str(&digits[..shown]);
        for _ in scale..decimals {
            s.push('0');
        }
    }
    s
}

/// Writes the digits of `value` (10^-scale units) printed with exactly `decimals` decimals,
/// without the dot and without leading zeros, into `out`; returns the count written, or
/// `None` when `out` is too small.
///
/// This is Kraken's checksum form of a number ("0.00100000" → "100000"). Digits past
/// `decimals` are cut, which makes a checksum mismatch (the venue printed fewer digits than the
/// level holds), never a silent success.
pub(crate) fn checksum_digits(
    value: u128,
    scale: u32,
    decimals: u8,
    out: &mut [u8],
) -> Option<usize> {
    let decimals = u32::from(decimals);
    let v: u128 = if decimals <= scale {
        let div = POW10[(scale - decimals) as usize];
        // u128 division is a library call: stay on u64 when both fit (the common case).
        match (u64::try_from(value), u64::try_from(div)) {
            (Ok(v), Ok(d)) => u128::from(v / d),
            _ => value / div,
        }
    } else {
        pow10(decimals - scale)
            .and_then(|m| value.checked_mul(m))
            .unwrap_or(value)
    };
    match u64::try_from(v) {
        Ok(v) => write_u64(v, out),
        Err(_) => {
            let mut fmt = itoa::Buffer::new();
            let text = fmt.format(v);
            let dst = out.get_mut(..text.len())?;
            dst.copy_from_slice(text.as_bytes());
            Some(text.len())
        }
    }
}

/// Decimal digits of `v` written in place (no intermediate buffer and copy).
#[inline]
fn write_u64(mut v: u64, out: &mut [u8]) -> Option<usize> {
    let n = v.checked_ilog10().map_or(1, |l| l as usize + 1);
    let dst = out.get_mut(..n)?;
    for d in dst.iter_mut().rev() {
        // `v % 10` < 10, so the cast is exact.
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices() {
        assert_eq!(parse_price("0.35130000"), Ok((351_300_000, 8)));
        assert_eq!(parse_price("29430.2"), Ok((29_430_200_000_000, 1)));
        assert_eq!(parse_price("0.000022900"), Ok((22_900, 9)));
        assert_eq!(parse_price("1e-05"), Ok((10_000, 5)));
        assert_eq!(parse_price("2.5E+2"), Ok((250_000_000_000, 0)));
        assert_eq!(parse_price("-1.5"), Ok((-1_500_000_000, 1)));
        assert_eq!(parse_price("1.0000000000"), Ok((1_000_000_000, 10)));
        assert_eq!(
            parse_price("1.0000000001"),
            Err(DecimalError::TooManyDecimals { scale: 9 })
        );
        assert_eq!(parse_price("9223372037"), Err(DecimalError::Overflow));
        assert_eq!(parse_price(""), Err(DecimalError::Empty));
        assert_eq!(parse_price("1.2.3"), Err(DecimalError::InvalidChar));
        assert_eq!(parse_price("abc"), Err(DecimalError::InvalidChar));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_qty("0.00100000"), Ok((Qty(1_000_000_000_000_000), 8)));
        assert_eq!(parse_qty("4.0"), Ok((Qty(4 * 10u128.pow(18)), 1)));
        assert_eq!(parse_qty("-1"), Err(DecimalError::Negative));
        // Large-supply tokens: 10^15 units at 18 decimals still fit.
        let (q, d) = parse_qty("589735030408323.123456789012345678").unwrap();
        assert_eq!(d, 18);
        assert_eq!(q.format(d), "589735030408323.123456789012345678");
    }

    #[test]
    fn print_back() {
        assert_eq!(format_price(351_300_000, 8), "0.35130000");
        assert_eq!(format_price(29_430_200_000_000, 1), "29430.2");
        assert_eq!(format_price(29_430_200_000_000, 0), "29430.2");
        assert_eq!(format_price(-1_500_000_000, 3), "-1.500");
        assert_eq!(format_price(1_000_000_000, 10), "1.0000000000");
        assert_eq!(Qty(1_000_000_000_000_000).format(8), "0.00100000");
        assert_eq!(Qty(0).format(0), "0");
    }

    #[test]
    fn checksum_form() {
        fn digits(v: u128, scale: u32, d: u8) -> String {
            let mut b = [0u8; 64];
            let n = checksum_digits(v, scale, d, &mut b).unwrap();
            String::from_utf8(b[..n].to_vec()).unwrap()
        }
        let big: u128 = 12_345_678_901_234_567_890_123;
        assert_eq!(digits(big, QTY_SCALE, 18), "12345678901234567890123");
        let padded: u128 = 10u128.pow(20) + 5;
        assert_eq!(digits(padded, QTY_SCALE, 18), "100000000000000000005");
        assert_eq!(digits(padded, QTY_SCALE, 0), "100");
        assert_eq!(digits(0, QTY_SCALE, 8), "0");
        assert_eq!(checksum_digits(big, QTY_SCALE, 18, &mut [0u8; 4]), None);
        // 20+ digit mantissas parse exactly too.
        assert_eq!(
            parse_qty("123456789012345678901.5"),
            Ok((Qty(123_456_789_012_345_678_901_500_000_000_000_000_000), 1))
        );
        let (q, _) = parse_qty("0.00100000").unwrap();
        assert_eq!(digits(q.0, QTY_SCALE, 8), "100000");
        let (p, _) = parse_price("29430.2").unwrap();
        assert_eq!(digits(p.unsigned_abs().into(), PRICE_SCALE, 1), "294302");
    }
}

#[cfg(test)]
mod plain_parts_tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Whatever the text, the plain fast path and the general parser agree wherever the
        /// fast path answers, and it answers for every plain number of up to 19 digits.
        #[test]
        fn fast_path_agrees_with_the_general_parser(s in "[-+]?[0-9]{0,12}[.]?[0-9]{0,12}(e[-+]?[0-9]{1,3})?x?") {
            if let Some(p) = plain_parts(s.as_bytes()) {
                prop_assert_eq!(Ok(p), parse_parts_general(&s));
            }
            prop_assert_eq!(parse_parts(&s), parse_parts_general(&s));
        }

        #[test]
        fn plain_numbers_take_the_fast_path(int in "[0-9]{1,10}", dec in "([.][0-9]{1,9})?") {
            let s = format!("{int}{dec}");
            prop_assert!(plain_parts(s.as_bytes()).is_some(), "{}", s);
        }
    }

    #[test]
    fn edge_forms_fall_back() {
        for s in [
            "",
            ".",
            "5.",
            ".5",
            "-1",
            "+1",
            "1e3",
            "1.2.3",
            "12345678901234567890",
            "0.1234567890123456789",
        ] {
            assert_eq!(plain_parts(s.as_bytes()), None, "{s}");
            assert_eq!(parse_parts(s), parse_parts_general(s), "{s}");
        }
        assert_eq!(
            plain_parts(b"1234567890.123456789"),
            Some(Parts {
                negative: false,
                mantissa: 1_234_567_890_123_456_789,
                decimals: 9
            })
        );
    }
}
