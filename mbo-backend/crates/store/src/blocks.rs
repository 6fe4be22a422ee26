//! Event blocks: how MBO records are stored (schema migration 3).
//!
//! Every writer batch of consecutive records becomes **one row** of `mbo_blocks`:
//! `(session_id, first_index, last_index, ts_first, ts_last, records, format, data)`, where
//! `data` holds all the batch's records, every field, exactly.
//!
//! ## Why blocks, not a row per event
//!
//! A row per event, with every field in its own column, tops out near 1.1 M rows/s in SQLite
//! on this machine (measured with a bare insert loop, no index, 15 integer columns): the cost
//! is SQLite's per-row work (VDBE, B-tree cell, page), not I/O. An ingest applies records at
//! ~9 M/s, so per-row storage could only ever keep up with an eighth of it. A block costs
//! SQLite one row per batch (16,384 records by default); the work per record is this module's encoding, a few
//! nanoseconds, on the writer thread (off the ingest thread).
//!
//! Readers lose nothing they use: every reader already starts at an event index (a
//! checkpoint round or a cursor) and scans forward in stream order, which is a scan of
//! consecutive blocks. `trades` stay one row per trade, because bars are computed in SQL.
//!
//! ## Format 1: delta + LEB128 varints, row after row
//!
//! `data` = `varint(count)`, one byte `e` (the block's **price scale** `10^e`: the largest,
//! up to `10^12`, dividing every price of the block other than `UNDEF_PRICE`), then, per
//! record, its fields in this order, each relative to the previous record of the block (the
//! first record's "previous" is all zeros):
//!
//! | field | stored as |
//! |---|---|
//! | `ts_recv`, `ts_event` | zigzag varint of the wrapping difference from the previous record's |
//! | `instrument_id`, `publisher_id`, `sequence`, `ts_in_delta` | zigzag varint of the difference from the previous |
//! | `action`, `side`, `flags`, `channel_id` | one byte each, verbatim (unknown codes survive) |
//! | `price` | `e = 0`: zigzag varint of the wrapping difference from the previous price. `e > 0`: `0` for `UNDEF_PRICE`, else `1 +` zigzag of the difference of `price / 10^e` from the previous such quotient |
//! | `size` | varint |
//! | `order_id` | zigzag varint of the wrapping difference from the previous order id |
//!
//! The price scale is what makes prices cheap: Databento prices are in 1e-9 units and real
//! ticks are multiples of 1e-7 or more, so a move of a few ticks is one byte instead of four.
//! Wrapping differences make every value round-trip exactly, including `u64` fields above
//! `i64::MAX` and sentinel prices. Timestamps of neighbouring records differ by micro- to
//! milliseconds, prices by a few ticks, so a record takes ~15-25 bytes instead of the 56 of
//! its DBN form (measured: `mbo db stats` reports bytes per million). Decoding checks every
//! bound and reports a corrupt block as [`StoreError::Block`], never panics.

use std::ffi::c_char;
use std::ops::ControlFlow;

use dbn::{FlagSet, MboMsg};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{u64_from_sql, u64_to_sql, Result, SessionId, StoreError};

/// The `format` column of blocks this build writes.
pub const BLOCK_FORMAT: i64 = 1;

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// The fields a record is encoded relative to (`price` is the quotient by the block's price
/// scale).
#[derive(Debug, Clone, Copy, Default)]
struct Previous {
    ts_recv: u64,
    ts_event: u64,
    instrument_id: u32,
    publisher_id: u16,
    sequence: u32,
    ts_in_delta: i32,
    price: i64,
    order_id: u64,
}

/// Largest price-scale exponent tried (`10^12`: far above any real tick).
const MAX_SCALE_EXP: u8 = 12;

/// `10^e` for `e <= MAX_SCALE_EXP`.
const POW10: [i64; MAX_SCALE_EXP as usize + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
    10_000_000_000,
    100_000_000_000,
    1_000_000_000_000,
];

/// Whether every price of `records` but `UNDEF_PRICE` is a multiple of `D` (a constant, so
/// the remainder is a multiply and a shift, not a division).
fn all_multiples<const D: i64>(records: &[MboMsg]) -> bool {
    records
        .iter()
        .all(|r| r.price == dbn::UNDEF_PRICE || r.price % D == 0)
}

/// The block's price-scale exponent (see the module docs).
fn price_scale(records: &[MboMsg]) -> u8 {
    // Start from the first real price's trailing decimal zeros, then lower until every
    // price is a multiple.
    let Some(first) = records.iter().find(|r| r.price != dbn::UNDEF_PRICE) else {
        return 0;
    };
    let mut e = 0u8;
    while e < MAX_SCALE_EXP && first.price % POW10[usize::from(e) + 1] == 0 {
        e += 1;
    }
    while e > 0 {
        let ok = match e {
            1 => all_multiples::<10>(records),
            2 => all_multiples::<100>(records),
            3 => all_multiples::<1_000>(records),
            4 => all_multiples::<10_000>(records),
            5 => all_multiples::<100_000>(records),
            6 => all_multiples::<1_000_000>(records),
            7 => all_multiples::<10_000_000>(records),
            8 => all_multiples::<100_000_000>(records),
            9 => all_multiples::<1_000_000_000>(records),
            10 => all_multiples::<10_000_000_000>(records),
            11 => all_multiples::<100_000_000_000>(records),
            _ => all_multiples::<1_000_000_000_000>(records),
        };
        if ok {
            break;
        }
        e -= 1;
    }
    e
}

/// Encodes `records` as a format-[`BLOCK_FORMAT`] block, replacing `out`'s contents (the
/// writer reuses one buffer, so steady-state encoding allocates nothing).
pub fn encode_block(records: &[MboMsg], out: &mut Vec<u8>) {
    out.clear();
    // Typical is under 20 bytes a record; the worst case is RECORD_MAX.
    out.reserve(records.len() * 20 + 11);
    put_varint(out, records.len() as u64);
    let e = price_scale(records);
    out.push(e);
    let scale = POW10[usize::from(e)];
    let mut prev = Previous::default();
    // Each record is assembled in a fixed scratch array and appended with one copy: pushing
    // byte by byte onto the Vec checked its capacity for every byte (half the encode time).
    let mut rec = Scratch::default();
    for r in records {
        rec.len = 0;
        rec.signed(r.ts_recv.wrapping_sub(prev.ts_recv) as i64);
        rec.signed(r.hd.ts_event.wrapping_sub(prev.ts_event) as i64);
        rec.signed(i64::from(r.hd.instrument_id) - i64::from(prev.instrument_id));
        rec.signed(i64::from(r.hd.publisher_id) - i64::from(prev.publisher_id));
        rec.bytes([r.action as u8, r.side as u8, r.flags.raw(), r.channel_id]);
        let mut price = prev.price;
        if e == 0 {
            rec.signed(r.price.wrapping_sub(prev.price));
            price = r.price;
        } else if r.price == dbn::UNDEF_PRICE {
            rec.varint(0);
        } else {
            // Exact: the price is a multiple of `scale`; quotients are within ±i64::MAX/10,
            // so their difference and its zigzag (< 2^63) cannot overflow.
            let q = r.price / scale;
            rec.varint(zigzag(q - prev.price) + 1);
            price = q;
        }
        rec.varint(u64::from(r.size));
        rec.signed(r.order_id.wrapping_sub(prev.order_id) as i64);
        rec.signed(i64::from(r.sequence) - i64::from(prev.sequence));
        rec.signed(i64::from(r.ts_in_delta) - i64::from(prev.ts_in_delta));
        rec.append_to(out);
        prev = Previous {
            ts_recv: r.ts_recv,
            ts_event: r.hd.ts_event,
            instrument_id: r.hd.instrument_id,
            publisher_id: r.hd.publisher_id,
            sequence: r.sequence,
            ts_in_delta: r.ts_in_delta,
            price,
            order_id: r.order_id,
        };
    }
}

/// Most bytes one encoded record can take: five 64-bit varints (ts_recv, ts_event, price,
/// order_id: 10 bytes each; the price counts once), instrument and sequence deltas of 33 bits
/// (5 each), ts_in_delta (5), publisher (3), size (5) and 4 raw bytes: 67.
const RECORD_MAX: usize = 67;

/// One record's encoding, built in place.
///
/// `len` is a `u8` and `buf` holds 256 bytes plus room for a 4-byte write, so every index
/// the methods form is provably in bounds and the compiler drops the bounds checks. With the
/// fixed-length copy of `append_to`, that is 21 fewer instructions a record, about a tenth of
/// the encoding (cachegrind of the `encode_rate` example). A record writes at most
/// [`RECORD_MAX`] bytes (counted above, and checked by the extreme-values test) and `len`
/// restarts at 0 per record, so it never wraps.
struct Scratch {
    buf: [u8; SCRATCH_LEN],
    len: u8,
}

/// 256 positions a `u8` can address, plus 4 for [`Scratch::bytes`].
const SCRATCH_LEN: usize = 260;

/// Bytes [`Scratch::append_to`] copies: a constant-length copy is a few vector moves, a
/// variable-length one a `memcpy` call.
const COPY_LEN: usize = 72;
const _: () = assert!(RECORD_MAX <= COPY_LEN && COPY_LEN <= SCRATCH_LEN);

impl Default for Scratch {
    fn default() -> Self {
        Scratch {
            buf: [0; SCRATCH_LEN],
            len: 0,
        }
    }
}

impl Scratch {
    #[inline]
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf[usize::from(self.len)] = (v as u8) | 0x80;
            self.len = self.len.wrapping_add(1);
            v >>= 7;
        }
        self.buf[usize::from(self.len)] = v as u8;
        self.len = self.len.wrapping_add(1);
    }

    #[inline]
    fn signed(&mut self, v: i64) {
        self.varint(zigzag(v));
    }

    #[inline]
    fn bytes(&mut self, b: [u8; 4]) {
        let at = usize::from(self.len);
        self.buf[at..at + 4].copy_from_slice(&b);
        self.len = self.len.wrapping_add(4);
    }

    /// Appends the record's bytes to `out`: a fixed [`COPY_LEN`] bytes, then cut back.
    #[inline]
    fn append_to(&self, out: &mut Vec<u8>) {
        let keep = out.len() + usize::from(self.len);
        if let Some(head) = self.buf.first_chunk::<COPY_LEN>() {
            out.extend_from_slice(head);
        }
        out.truncate(keep);
    }
}

fn corrupt(reason: &'static str) -> StoreError {
    StoreError::Block(reason)
}

/// Iterates the records of a stored block, in stream order (see [`decode_block`]).
#[derive(Debug, Clone)]
pub struct BlockRecords<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: u64,
    /// The block's price scale (`10^e`).
    scale: i64,
    prev: Previous,
}

impl<'a> BlockRecords<'a> {
    /// Records not yet read.
    pub fn remaining(&self) -> u64 {
        self.remaining
    }

    #[inline]
    fn byte(&mut self) -> Result<u8> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| corrupt("block ends inside a record"))?;
        self.pos += 1;
        Ok(b)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64> {
        let mut v = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return Err(corrupt("varint overflows 64 bits"));
            }
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
            shift += 7;
            if shift > 63 {
                return Err(corrupt("varint longer than 10 bytes"));
            }
        }
    }

    #[inline]
    fn signed(&mut self) -> Result<i64> {
        Ok(unzigzag(self.varint()?))
    }

    /// `v` (a previous value plus a decoded difference) if it fits `T`.
    fn narrow<T: TryFrom<i64>>(v: Option<i64>, what: &'static str) -> Result<T> {
        v.and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| corrupt(what))
    }

    fn next_record(&mut self) -> Result<MboMsg> {
        let ts_recv = self.prev.ts_recv.wrapping_add(self.signed()? as u64);
        let ts_event = self.prev.ts_event.wrapping_add(self.signed()? as u64);
        let instrument_id: u32 = Self::narrow(
            i64::from(self.prev.instrument_id).checked_add(self.signed()?),
            "instrument_id out of range",
        )?;
        let publisher_id: u16 = Self::narrow(
            i64::from(self.prev.publisher_id).checked_add(self.signed()?),
            "publisher_id out of range",
        )?;
        let action = self.byte()?;
        let side = self.byte()?;
        let flags = self.byte()?;
        let channel_id = self.byte()?;
        let (price, prev_price) = if self.scale == 1 {
            let p = self.prev.price.wrapping_add(self.signed()?);
            (p, p)
        } else {
            match self.varint()? {
                0 => (dbn::UNDEF_PRICE, self.prev.price),
                v => {
                    let q = self
                        .prev
                        .price
                        .checked_add(unzigzag(v - 1))
                        .ok_or_else(|| corrupt("price out of range"))?;
                    let p = q
                        .checked_mul(self.scale)
                        .ok_or_else(|| corrupt("price out of range"))?;
                    (p, q)
                }
            }
        };
        let size = u32::try_from(self.varint()?).map_err(|_| corrupt("size out of range"))?;
        let order_id = self.prev.order_id.wrapping_add(self.signed()? as u64);
        let sequence: u32 = Self::narrow(
            i64::from(self.prev.sequence).checked_add(self.signed()?),
            "sequence out of range",
        )?;
        let ts_in_delta: i32 = Self::narrow(
            i64::from(self.prev.ts_in_delta).checked_add(self.signed()?),
            "ts_in_delta out of range",
        )?;
        self.prev = Previous {
            ts_recv,
            ts_event,
            instrument_id,
            publisher_id,
            sequence,
            ts_in_delta,
            price: prev_price,
            order_id,
        };
        Ok(MboMsg {
            hd: dbn::RecordHeader::new::<MboMsg>(
                dbn::rtype::MBO,
                publisher_id,
                instrument_id,
                ts_event,
            ),
            order_id,
            price,
            size,
            flags: FlagSet::new(flags),
            channel_id,
            action: action as c_char,
            side: side as c_char,
            ts_recv,
            ts_in_delta,
            sequence,
        })
    }
}

impl Iterator for BlockRecords<'_> {
    type Item = Result<MboMsg>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let r = self.next_record();
        if r.is_err() {
            // A corrupt block yields its error once, then ends.
            self.remaining = 0;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.remaining).unwrap_or(usize::MAX);
        (n, Some(n))
    }
}

/// The records of a block stored with `format`.
///
/// # Errors
/// [`StoreError::Block`] for an unknown format or a block whose header is unreadable (a
/// record that cannot be decoded is reported by the iterator).
pub fn decode_block(format: i64, data: &[u8]) -> Result<BlockRecords<'_>> {
    if format != BLOCK_FORMAT {
        return Err(corrupt("unknown block format"));
    }
    let mut it = BlockRecords {
        data,
        pos: 0,
        remaining: 0,
        scale: 1,
        prev: Previous::default(),
    };
    let count = it.varint()?;
    let e = it.byte()?;
    it.scale = *POW10
        .get(usize::from(e))
        .ok_or_else(|| corrupt("price scale out of range"))?;
    // Each record takes at least 13 bytes: a count the data cannot hold is corrupt (and
    // would otherwise size a consumer's allocation).
    if count > (data.len() as u64) / 13 + 1 {
        return Err(corrupt("record count larger than the block"));
    }
    it.remaining = count;
    Ok(it)
}

/// The blocks holding indexes `>= ?2` and `< ?3`: from the last block starting at or before
/// `?2` (it may hold `?2`), by key.
const BLOCKS_FROM: &str = "SELECT first_index, format, data FROM mbo_blocks \
     WHERE session_id = ?1 AND first_index >= coalesce((SELECT max(first_index) \
     FROM mbo_blocks WHERE session_id = ?1 AND first_index <= ?2), ?2) \
     AND first_index < ?3 ORDER BY first_index";

/// Visits the stored records of `session` with index in `from..until`, in stream order, until
/// `visit` breaks. Reads only the blocks that hold that range (a key seek, then consecutive
/// blocks), decoding each in place from SQLite's buffer.
///
/// # Errors
/// [`StoreError::Block`] for a corrupt block; any SQLite error; `visit`'s error.
pub fn scan(
    conn: &Connection,
    session: SessionId,
    from: u64,
    until: u64,
    mut visit: impl FnMut(u64, MboMsg) -> Result<ControlFlow<()>>,
) -> Result<()> {
    if from >= until {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(BLOCKS_FROM)?;
    let mut rows = stmt.query(params![
        session.0,
        u64_to_sql(from),
        i64::try_from(until).unwrap_or(i64::MAX)
    ])?;
    while let Some(row) = rows.next()? {
        let first = u64_from_sql(row.get(0)?);
        let format: i64 = row.get(1)?;
        let data = row
            .get_ref(2)?
            .as_blob()
            .map_err(|_| corrupt("block data is not a blob"))?;
        for (i, rec) in decode_block(format, data)?.enumerate() {
            let index = first + i as u64;
            if index < from {
                // Skip without checking: a corrupt record before the range still fails.
                rec?;
                continue;
            }
            if index >= until {
                return Ok(());
            }
            if visit(index, rec?)?.is_break() {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// `ts_recv` of the stored record `index` of `session`, if stored.
///
/// # Errors
/// As [`scan`].
pub fn event_ts(conn: &Connection, session: SessionId, index: u64) -> Result<Option<u64>> {
    let mut ts = None;
    scan(conn, session, index, index.saturating_add(1), |_, r| {
        ts = Some(r.ts_recv);
        Ok(ControlFlow::Break(()))
    })?;
    Ok(ts)
}

/// `(ts_first, ts_last)` of the session's first and last stored blocks: the `ts_recv` of its
/// first and last stored records (its extremes, records being in `ts_recv` order).
///
/// # Errors
/// Any SQLite error.
pub fn time_range(conn: &Connection, session: SessionId) -> Result<Option<(u64, u64)>> {
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .prepare_cached(
            "SELECT (SELECT ts_first FROM mbo_blocks WHERE session_id = ?1 \
             ORDER BY first_index ASC LIMIT 1), (SELECT ts_last FROM mbo_blocks \
             WHERE session_id = ?1 ORDER BY first_index DESC LIMIT 1)",
        )?
        .query_row([session.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((None, None));
    Ok(lo
        .zip(hi)
        .map(|(lo, hi)| (u64_from_sql(lo), u64_from_sql(hi))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(i: u64) -> MboMsg {
        MboMsg {
            hd: dbn::RecordHeader::new::<MboMsg>(dbn::rtype::MBO, 1, 42_005_347, 1_700_000_000 + i),
            order_id: 6_407_000_000_000_000_000 + i * 17,
            price: 70_000_000_000 + (i as i64 % 7) * 10_000_000,
            size: (i % 50) as u32 + 1,
            flags: FlagSet::new(if i % 3 == 0 { 0x80 } else { 0 }),
            channel_id: 3,
            action: b'A' as c_char,
            side: if i % 2 == 0 { b'B' } else { b'A' } as c_char,
            ts_recv: 1_700_000_100 + i * 1_000,
            ts_in_delta: -(i as i32),
            sequence: 1_000 + i as u32,
        }
    }

    fn roundtrip(records: &[MboMsg]) -> Vec<MboMsg> {
        let mut buf = Vec::new();
        encode_block(records, &mut buf);
        decode_block(BLOCK_FORMAT, &buf)
            .and_then(|it| it.collect::<Result<Vec<_>>>())
            .unwrap()
    }

    #[test]
    fn ordinary_records_round_trip_exactly() {
        let records: Vec<MboMsg> = (0..5000).map(rec).collect();
        assert_eq!(roundtrip(&records), records);
        let mut buf = Vec::new();
        encode_block(&records, &mut buf);
        assert!(buf.len() < records.len() * 30, "{} bytes", buf.len());
    }

    #[test]
    fn extreme_values_round_trip_exactly() {
        let mut a = rec(1);
        a.price = i64::MAX; // UNDEF_PRICE
        a.order_id = u64::MAX;
        a.ts_recv = u64::MAX;
        a.hd.ts_event = 0;
        a.hd.instrument_id = u32::MAX;
        a.hd.publisher_id = u16::MAX;
        a.sequence = u32::MAX;
        a.size = u32::MAX;
        a.ts_in_delta = i32::MIN;
        a.action = 0xff_u8 as c_char;
        a.side = 0 as c_char;
        let mut b = rec(2);
        b.price = i64::MIN;
        b.order_id = 0;
        b.ts_recv = 0;
        b.hd.ts_event = u64::MAX;
        b.hd.instrument_id = 0;
        b.ts_in_delta = i32::MAX;
        let records = vec![a.clone(), b, a, rec(3)];
        assert_eq!(roundtrip(&records), records);
        assert!(roundtrip(&[]).is_empty());
    }

    #[test]
    fn price_scales_round_trip_exactly() {
        let with_prices = |prices: &[i64]| -> Vec<MboMsg> {
            prices
                .iter()
                .enumerate()
                .map(|(i, &p)| MboMsg {
                    price: p,
                    ..rec(i as u64)
                })
                .collect()
        };
        let cases: [(&[i64], u8); 7] = [
            // Ticks of 0.01 and 0.25 (CL, ES): scale 1e7.
            (&[70_120_000_000, 70_130_000_000, 70_110_000_000], 7),
            (&[4_750_250_000_000, 4_750_500_000_000], 7),
            // UNDEF_PRICE (a clear) does not lower the scale and survives.
            (
                &[
                    dbn::UNDEF_PRICE,
                    5_000_000_000,
                    dbn::UNDEF_PRICE,
                    6_000_000_000,
                ],
                9,
            ),
            // Negative prices (spreads) and zero.
            (&[-1_500_000_000, 0, 2_500_000_000], 8),
            // One odd price forces scale 1.
            (&[70_000_000_000, 70_000_000_001], 0),
            // Only UNDEF, and extremes at scale 1.
            (&[dbn::UNDEF_PRICE], 0),
            (&[i64::MIN, i64::MAX - 1, 0, i64::MIN + 10], 0),
        ];
        for (prices, want_e) in cases {
            let records = with_prices(prices);
            assert_eq!(price_scale(&records), want_e, "{prices:?}");
            assert_eq!(roundtrip(&records), records, "{prices:?}");
        }
        // Scaled prices cost a byte a move.
        let ticks: Vec<i64> = (0..1000)
            .map(|i| 70_000_000_000 + (i % 5) * 10_000_000)
            .collect();
        let mut buf = Vec::new();
        encode_block(&with_prices(&ticks), &mut buf);
        let mut unscaled = with_prices(&ticks);
        unscaled[0].price += 1;
        let mut buf1 = Vec::new();
        encode_block(&unscaled, &mut buf1);
        assert!(
            buf.len() + 2500 < buf1.len(),
            "{} vs {}",
            buf.len(),
            buf1.len()
        );
    }

    #[test]
    fn corrupt_blocks_are_errors_not_panics() {
        let records: Vec<MboMsg> = (0..100).map(rec).collect();
        let mut buf = Vec::new();
        encode_block(&records, &mut buf);
        assert!(decode_block(2, &buf).is_err());
        // Every truncation either fails or (cut at a record end) yields a prefix: never a
        // panic, never a wrong record.
        for cut in 0..buf.len() {
            match decode_block(BLOCK_FORMAT, &buf[..cut]) {
                Err(StoreError::Block(_)) => {}
                Err(e) => panic!("unexpected error {e}"),
                Ok(it) => {
                    let got: Vec<Result<MboMsg>> = it.collect();
                    assert!(got.iter().any(Result::is_err), "cut {cut} decoded silently");
                    for (r, want) in got.iter().zip(&records) {
                        if let Ok(r) = r {
                            assert_eq!(r, want);
                        }
                    }
                }
            }
        }
        // A huge count in a tiny block is refused up front.
        let mut huge = Vec::new();
        put_varint(&mut huge, u64::MAX);
        assert!(decode_block(BLOCK_FORMAT, &huge).is_err());
        // Garbage never panics.
        let garbage: Vec<u8> = (0..2000u32)
            .map(|i| i.wrapping_mul(2_654_435_761) as u8)
            .collect();
        for start in 0..64 {
            if let Ok(it) = decode_block(BLOCK_FORMAT, &garbage[start..]) {
                let _ = it.count();
            }
        }
    }
}
