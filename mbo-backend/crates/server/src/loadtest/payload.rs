//! Cheap reads of the few numbers the load test needs from an event's JSON.
//!
//! Payloads are never parsed as JSON: at ten thousand clients that would cost more than the
//! server being measured. The server writes `server_ts` as the first key and an mbo batch's
//! `count` before its `records` array, so a scan of the payload's first bytes finds them.

/// `server_ts` (Unix ns): the first key, with a fallback search of the prefix in case a
/// server puts something before it.
pub fn server_ts(data: &[u8]) -> Option<u64> {
    const FIRST: &[u8] = b"{\"server_ts\":";
    if let Some(rest) = data.strip_prefix(FIRST) {
        if let Some(v) = leading_uint(rest) {
            return Some(v);
        }
    }
    uint_field(data, "server_ts")
}

/// The `count` of an `mbo` batch, looked for only before its `"records"` key (so a record's
/// own fields can never be mistaken for it).
pub fn mbo_count(data: &[u8]) -> Option<u64> {
    let stop = find(data, b"\"records\"").unwrap_or(data.len());
    uint_field(data.get(..stop)?, "count")
}

/// The value of key `key` when it is a non-negative integer: the first `"key"` followed by
/// optional whitespace and a colon.
pub fn uint_field(data: &[u8], key: &str) -> Option<u64> {
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key.as_bytes());
    quoted.push(b'"');
    let mut from = 0;
    while let Some(at) = find(data.get(from..)?, &quoted) {
        let after = data.get(from + at + quoted.len()..)?;
        let after = trim_start(after);
        if let Some(value) = after.strip_prefix(b":") {
            return leading_uint(trim_start(value));
        }
        // The key text appeared as a value, not as a key: keep looking.
        from += at + 1;
    }
    None
}

/// The unsigned integer at the start of `bytes` (digits up to a non-digit); `None` when
/// there is none or it overflows.
fn leading_uint(bytes: &[u8]) -> Option<u64> {
    let mut value: u64 = 0;
    let mut digits = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        digits += 1;
    }
    (digits > 0).then_some(value)
}

fn trim_start(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
        .count();
    bytes.get(n..).unwrap_or_default()
}

/// Position of `needle` in `hay` (payload prefixes are short: a plain scan is enough).
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_ts_first_key() {
        assert_eq!(
            server_ts(br#"{"server_ts":1763900000123456789,"symbol":"CLX5","bids":[]}"#),
            Some(1_763_900_000_123_456_789)
        );
        // Whitespace and another key first still work (the fallback scan).
        assert_eq!(server_ts(br#"{ "server_ts" : 42 }"#), Some(42));
        assert_eq!(
            server_ts(br#"{"symbol":"server_ts","server_ts":7}"#),
            Some(7)
        );
        // A prefix cut right after the number is fine.
        assert_eq!(server_ts(br#"{"server_ts":123"#), Some(123));
    }

    #[test]
    fn server_ts_missing_or_bad() {
        assert_eq!(server_ts(b""), None);
        assert_eq!(server_ts(br#"{"symbol":"CLX5"}"#), None);
        assert_eq!(server_ts(br#"{"server_ts":"12"}"#), None);
        assert_eq!(server_ts(br#"{"server_ts":-5}"#), None);
        assert_eq!(server_ts(br#"{"server_ts":99999999999999999999999}"#), None);
        assert_eq!(server_ts(br#"{"server_ts":"#), None);
    }

    #[test]
    fn mbo_count_before_records_only() {
        let batch = br#"{"server_ts":5,"symbol":"CLX5","count":3,"records":[{"count":9},{},{}]}"#;
        assert_eq!(mbo_count(batch), Some(3));
        // `count` only inside the records does not count.
        let no_count = br#"{"server_ts":5,"records":[{"count":9}]}"#;
        assert_eq!(mbo_count(no_count), None);
        // A prefix cut before the records still has it.
        assert_eq!(mbo_count(br#"{"server_ts":5,"count":12,"rec"#), Some(12));
    }

    #[test]
    fn lagged_skipped() {
        assert_eq!(
            uint_field(br#"{"server_ts":5,"skipped":1500}"#, "skipped"),
            Some(1500)
        );
        assert_eq!(uint_field(br#"{"skipped" :	8}"#, "skipped"), Some(8));
        assert_eq!(uint_field(br#"{"note":"skipped"}"#, "skipped"), None);
    }
}
