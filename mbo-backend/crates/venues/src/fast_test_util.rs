//! Test support shared by the venues' fast-path tests: recordings, a
//! pair of synchronisers (fast path on and off) that must agree after every frame, and
//! generic frame mutations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::event::Event;
use crate::fixtures::read_frames;
use crate::venue::Venue;

/// A recording's text: `$MBO_CRYPTO_DATA` or `../shared/data/crypto` from the repository
/// root (as the integration tests find them); a missing file fails, never skips.
pub(crate) fn read(rel: &str) -> String {
    let dir = std::env::var_os("MBO_CRYPTO_DATA").map_or_else(
        || {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../../shared/data/crypto")
        },
        std::path::PathBuf::from,
    );
    let path = dir.join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "required recording is missing: {} ({e}); set MBO_CRYPTO_DATA",
            path.display()
        )
    })
}

/// A recording's frames, as recorded.
pub(crate) fn frames(rel: &str) -> Vec<String> {
    let text = read(rel);
    read_frames(&text)
        .unwrap()
        .iter()
        .map(|f| f.text.to_owned())
        .collect()
}

/// JSON text without the whitespace outside strings.
pub(crate) fn compact(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut in_str, mut escaped) = (false, false);
    for c in s.chars() {
        if in_str {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// JSON text with whitespace `ws` after every structural character outside strings.
pub(crate) fn spaced(s: &str, ws: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    let (mut in_str, mut escaped) = (false, false);
    out.push_str(ws);
    for c in s.chars() {
        out.push(c);
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
        } else if c == '"' {
            in_str = true;
        } else if matches!(c, '{' | '}' | '[' | ']' | ',' | ':') {
            out.push_str(ws);
        }
    }
    out
}

/// The same synchroniser twice: fast path on, and `serde_json` only.
pub(crate) struct Twin<V: Venue> {
    pub fast: V,
    pub serde: V,
}

impl<V: Venue> Twin<V> {
    /// Feeds one frame to both and asserts they agree.
    pub(crate) fn feed(&mut self, frame: &str) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.fast.on_frame(frame, &mut a);
        self.serde.on_frame(frame, &mut b);
        self.check(&a, &b, frame);
    }

    /// Delivers one REST snapshot to both and asserts they agree.
    pub(crate) fn rest(&mut self, symbol: &str, body: &str) {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        self.fast.on_rest_snapshot(symbol, body, &mut a);
        self.serde.on_rest_snapshot(symbol, body, &mut b);
        self.check(&a, &b, body);
    }

    fn check(&self, a: &[Event], b: &[Event], frame: &str) {
        assert_agree(&self.fast, &self.serde, a, b, frame);
    }
}

/// Asserts that two synchronisers fed the same `frame` agree: the events each produced
/// (`a`, `b`), their counters, and every book's levels, state, counters and sync fields.
pub(crate) fn assert_agree(
    fast: &dyn Venue,
    serde: &dyn Venue,
    a: &[Event],
    b: &[Event],
    frame: &str,
) {
    assert_eq!(a, b, "events differ for {frame:?}");
    assert_eq!(
        fast.counters(),
        serde.counters(),
        "counters differ for {frame:?}"
    );
    let (x, y) = (fast.books().all(), serde.books().all());
    assert_eq!(x.len(), y.len(), "books differ for {frame:?}");
    for (x, y) in x.iter().zip(y) {
        assert_eq!(x.symbol, y.symbol);
        assert_eq!(x.book, y.book, "book differs for {frame:?}");
        assert_eq!(x.state, y.state, "state differs for {frame:?}");
        assert_eq!(x.counters, y.counters, "counters differ for {frame:?}");
        assert_eq!(x.depth, y.depth, "depth differs for {frame:?}");
        assert_eq!(x.last_id, y.last_id, "last id differs for {frame:?}");
        assert_eq!(x.last_seq, y.last_seq, "last seq differs for {frame:?}");
        assert_eq!(x.bridge, y.bridge, "bridge differs for {frame:?}");
    }
}

/// Ways to change one number's text.
pub(crate) fn number_variants(n: &str) -> Vec<String> {
    let mut v = vec![
        format!("-{n}"),
        format!("{n}e0"),
        format!("{n}E+1"),
        format!("0{n}"),
        format!("{n}."),
        format!("{n}0000000000"),
        format!("{n}.5"),
        format!("{n}x"),
        format!(" {n}"),
        "99999999999999999999999999999999999999999.5".to_owned(),
        "18446744073709551615".to_owned(),
        "18446744073709551616".to_owned(),
        "9999999997".to_owned(),
        "9999999997.0".to_owned(),
        "0.0000000001".to_owned(),
        "0.00000000000000000001".to_owned(),
        "-0".to_owned(),
        "0".to_owned(),
        "1e400".to_owned(),
        "-".to_owned(),
        ".5".to_owned(),
        "+1".to_owned(),
        String::new(),
    ];
    if let Some((int, frac)) = n.split_once('.') {
        v.push(format!("{int}.{frac}{frac}"));
        v.push(format!("{int}{frac}e-{}", frac.len()));
    }
    v
}

/// Mutations of a compact frame: every string number (`"1.5"` inside a level) among the
/// first `levels`, and every value of the `keys` given (`"u":123`), replaced by variants,
/// quoted and not; `swaps` (first occurrence replaced); and every truncation.
pub(crate) fn mutations(
    f: &str,
    levels: usize,
    keys: &[&str],
    swaps: &[(&str, &str)],
) -> Vec<String> {
    let mut out = Vec::new();
    let replace = |out: &mut Vec<String>, start: usize, end: usize, with: &str| {
        out.push(format!("{}{with}{}", &f[..start], &f[end..]));
    };
    // Level strings: `["p","q"]` or `["side","p","q"]`.
    let mut at = 0;
    for _ in 0..levels {
        let Some(i) = f[at..].find("[\"") else { break };
        let mut start = at + i + 2;
        for _ in 0..3 {
            let Some(len) = f[start..].find('"') else {
                break;
            };
            let end = start + len;
            for n in number_variants(&f[start..end])
                .iter()
                .map(String::as_str)
                .chain(["\\u0031", "1\\n", "null"])
            {
                replace(&mut out, start, end, n);
                replace(&mut out, start - 1, end + 1, n);
            }
            replace(&mut out, start - 1, end + 1, "null");
            if !f[end + 1..].starts_with(",\"") {
                break;
            }
            start = end + 3;
        }
        at = start;
    }
    for key in keys {
        let pat = format!("\"{key}\":");
        for (i, _) in f.match_indices(&pat).take(2) {
            let start = i + pat.len();
            let end = start + f[start..].find([',', '}']).unwrap();
            let value = &f[start..end];
            let mut vs = number_variants(value.trim_matches('"'));
            vs.extend(
                [
                    "null",
                    "true",
                    "[]",
                    "{}",
                    "\"1\"",
                    "1.0",
                    "00",
                    "1e3",
                    "-1",
                    "\"\\u0031\"",
                ]
                .map(str::to_owned),
            );
            for v in vs {
                replace(&mut out, start, end, &v);
                if value.starts_with('"') {
                    replace(&mut out, start, end, &format!("\"{v}\""));
                }
            }
            // The key repeated, and unknown.
            out.push(format!("{}{pat}{value},{}", &f[..i], &f[i..]));
            out.push(format!("{}\"{key}x\":{value},{}", &f[..i], &f[i..]));
            out.push(format!("{}\"{key}\\u0020\":{value},{}", &f[..i], &f[i..]));
            // Left out.
            let tail = f[end..].strip_prefix(',').map_or(&f[end..], |t| t);
            out.push(format!("{}{tail}", &f[..i]));
        }
    }
    for (from, to) in swaps.iter().chain(&[
        (",", ", "),
        (",", ",\u{c}"),
        (",", ",\u{a0}"),
        (":", " \t:\n "),
        ("{", "\u{feff}{"),
        ("[[", "[ ["),
        ("],[", "],,["),
        ("],[", "]["),
        ("\"]", "\",]"),
        ("[]", "[,]"),
        ("[]", "null"),
        ("[]", "{}"),
    ]) {
        if let Some(at) = f.find(from) {
            out.push(format!("{}{to}{}", &f[..at], &f[at + from.len()..]));
        }
    }
    if let Some(head) = f.strip_suffix('}') {
        for tail in ["}", "} ", "}\n", "}}", "},", "}x", "}[]", ",}", ",\"x\":1}"] {
            out.push(format!("{head}{tail}"));
        }
    }
    for cut in (0..f.len()).filter(|&i| f.is_char_boundary(i)) {
        out.push(f[..cut].to_owned());
    }
    out
}

/// Bytes worth inserting: JSON structure, whitespace (allowed or not), escapes, digits.
pub(crate) const INSERTS: &[u8] = b" \t\n\r\x0c\\\"{}[],:.-+eE019x";

/// Applies random edits `(op, at, what, byte)` to a frame (proptest input).
pub(crate) fn edit(
    frame: &str,
    edits: &[(u8, proptest::sample::Index, proptest::sample::Index, u8)],
) -> String {
    let mut bytes = frame.as_bytes().to_vec();
    for (op, at, what, byte) in edits {
        let i = at.index(bytes.len() + 1);
        match op {
            0 => bytes.truncate(i),
            1 => bytes.insert(i, INSERTS[what.index(INSERTS.len())]),
            2 if i < bytes.len() => {
                bytes.remove(i);
            }
            _ if i < bytes.len() => bytes[i] = *byte,
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
