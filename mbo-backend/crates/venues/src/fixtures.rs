//! Readers for recorded frames: the fixture formats in `shared/data/crypto`.
//!
//! * cryptofeed raw WebSocket files: `wss://host <-> ts` (connect), `wss://host <- ts: json`
//!   (sent by the client, skipped), `ts: json` (received).
//! * cryptofeed raw HTTP files: `url -> ts: body`, one REST response per line; the symbol
//!   comes from the URL's `symbol=` parameter.
//! * JSONL: one frame per line (Bybit history dumps, `mbo record`'s own output), or a single
//!   JSON document (one frame).
//! * The Kraken SDK's `{"init": frame or [frames], "updates": [frames]}`: each frame is kept
//!   as its original text (`RawValue`), so numbers keep the digits written in the file.
//!
//! Frames borrow from the file text; receive times are nanoseconds parsed exactly from the
//! decimal seconds.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::wire::seconds_text_ns;

/// A received text frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Receive time, nanoseconds since the epoch, when recorded.
    pub recv_ns: Option<u64>,
    /// The frame's text.
    pub text: &'a str,
}

/// A recorded REST order-book snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestSnapshot<'a> {
    /// Receive time, nanoseconds since the epoch, when recorded.
    pub recv_ns: Option<u64>,
    /// The venue symbol it is for.
    pub symbol: String,
    /// The response body.
    pub body: &'a str,
}

/// A file that is not in any known recording format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {detail}")]
pub struct FixtureError {
    /// 1-based line (0 for the whole file).
    pub line: usize,
    /// What is wrong.
    pub detail: String,
}

/// Recording formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// cryptofeed raw WebSocket file.
    CryptofeedWs,
    /// cryptofeed raw HTTP file.
    CryptofeedHttp,
    /// Kraken SDK `{init, updates}` JSON.
    KrakenSdk,
    /// One JSON frame per line, or one JSON document.
    Jsonl,
}

/// Guesses a file's format from its text.
#[must_use]
pub fn detect(text: &str) -> Format {
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let starts_with_ts = first.split_once(": ").is_some_and(|(ts, _)| {
        !ts.is_empty() && ts.bytes().all(|c| c.is_ascii_digit() || c == b'.')
    });
    if first.starts_with("wss://") || first.starts_with("ws://") || starts_with_ts {
        Format::CryptofeedWs
    } else if first.starts_with("http") && first.contains(" -> ") {
        Format::CryptofeedHttp
    } else if first.trim_start().starts_with('{')
        && serde_json::from_str::<KrakenSdk<'_>>(text).is_ok()
    {
        Format::KrakenSdk
    } else {
        Format::Jsonl
    }
}

/// Reads any known format's frames.
///
/// # Errors
/// [`FixtureError`] when the text is a malformed Kraken SDK file.
pub fn read_frames(text: &str) -> Result<Vec<Frame<'_>>, FixtureError> {
    match detect(text) {
        Format::CryptofeedWs => Ok(read_cryptofeed_ws(text)),
        Format::KrakenSdk => read_kraken_sdk(text),
        Format::Jsonl | Format::CryptofeedHttp => Ok(read_jsonl(text)),
    }
}

/// Received frames of a cryptofeed raw WebSocket file.
#[must_use]
pub fn read_cryptofeed_ws(text: &str) -> Vec<Frame<'_>> {
    text.lines()
        .filter_map(|line| {
            let (ts, json) = line.split_once(": ")?;
            // Connect and client-sent lines start with the URL.
            if ts.is_empty() || !ts.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
                return None;
            }
            Some(Frame {
                recv_ns: seconds_text_ns(ts),
                text: json,
            })
        })
        .collect()
}

/// REST responses of a cryptofeed raw HTTP file.
///
/// # Errors
/// [`FixtureError`] for a line not of the form `url -> ts: body` or a URL without `symbol=`.
pub fn read_cryptofeed_http(text: &str) -> Result<Vec<RestSnapshot<'_>>, FixtureError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let err = |detail: &str| FixtureError {
            line: i + 1,
            detail: detail.to_owned(),
        };
        let (url, rest) = line
            .split_once(" -> ")
            .ok_or_else(|| err("expected `url -> ts: body`"))?;
        let (ts, body) = rest
            .split_once(": ")
            .ok_or_else(|| err("expected `ts: body`"))?;
        let symbol = url
            .split(['?', '&'])
            .find_map(|kv| kv.strip_prefix("symbol="))
            .ok_or_else(|| err("URL has no symbol= parameter"))?;
        out.push(RestSnapshot {
            recv_ns: seconds_text_ns(ts),
            symbol: symbol.to_ascii_uppercase(),
            body,
        });
    }
    Ok(out)
}

/// Frames of a JSONL file; a file holding one (possibly pretty-printed) JSON document is one
/// frame.
#[must_use]
pub fn read_jsonl(text: &str) -> Vec<Frame<'_>> {
    let trimmed = text.trim();
    if trimmed.contains('\n') && serde_json::from_str::<&RawValue>(trimmed).is_ok() {
        return vec![Frame {
            recv_ns: None,
            text: trimmed,
        }];
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| Frame {
            recv_ns: None,
            text: l,
        })
        .collect()
}

#[derive(Deserialize)]
struct KrakenSdk<'a> {
    #[serde(borrow)]
    init: &'a RawValue,
    #[serde(borrow)]
    updates: Vec<&'a RawValue>,
}

/// Frames of a Kraken SDK `{init, updates}` file, in order: `init` (one frame, or each
/// element when it is a list of frames), then `updates`.
///
/// # Errors
/// [`FixtureError`] when the text is not of that shape.
pub fn read_kraken_sdk(text: &str) -> Result<Vec<Frame<'_>>, FixtureError> {
    let sdk: KrakenSdk<'_> = serde_json::from_str(text).map_err(|e| FixtureError {
        line: e.line(),
        detail: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(sdk.updates.len() + 4);
    let init = sdk.init.get().trim_start();
    fn frame(r: &RawValue) -> Frame<'_> {
        Frame {
            recv_ns: None,
            text: r.get(),
        }
    }
    if init.starts_with('[') {
        // v1: a list of frames (status, pong, subscriptionStatus, snapshot).
        let list: Vec<&RawValue> =
            serde_json::from_str(sdk.init.get()).map_err(|e| FixtureError {
                line: 0,
                detail: e.to_string(),
            })?;
        out.extend(list.into_iter().map(frame));
    } else {
        out.push(frame(sdk.init));
    }
    out.extend(sdk.updates.into_iter().map(frame));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cryptofeed_lines() {
        let t = "wss://x <-> 1.5\nwss://x <- 2.0: {\"a\":1}\n3.25: {\"b\":2}\n";
        assert_eq!(detect(t), Format::CryptofeedWs);
        let f = read_cryptofeed_ws(t);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].text, "{\"b\":2}");
        assert_eq!(f[0].recv_ns, Some(3_250_000_000));
        let h = "https://a/api/v3/depth?symbol=NKNUSDT&limit=1000 -> 1.0: {}\n";
        assert_eq!(detect(h), Format::CryptofeedHttp);
        assert_eq!(read_cryptofeed_http(h).unwrap()[0].symbol, "NKNUSDT");
    }

    #[test]
    fn sdk_and_jsonl() {
        let t = r#"{"init": {"x": 1.50}, "updates": [{"y": 2.0}, [1, "a"]]}"#;
        assert_eq!(detect(t), Format::KrakenSdk);
        let f = read_kraken_sdk(t).unwrap();
        assert_eq!(
            f.iter().map(|f| f.text).collect::<Vec<_>>(),
            [r#"{"x": 1.50}"#, r#"{"y": 2.0}"#, r#"[1, "a"]"#]
        );
        assert_eq!(read_jsonl("{\"a\":1}\n\n{\"b\":2}\n").len(), 2);
        assert_eq!(read_jsonl("{\n \"a\": 1\n}\n").len(), 1);
    }
}
