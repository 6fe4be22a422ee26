//! Server-Sent Events framing shared by both streams. Events are written straight into a
//! byte buffer (one `write` per flush, however many events it holds); a stream is a plain
//! `Stream` of `Bytes` given to hyper, which polls it only when the socket can take more, so
//! a slow client holds at most one chunk.

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// Keep-alive comment.
pub const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// The first bytes of every stream: a browser's `EventSource` waits this long (ms) before it
/// reconnects after a dropped connection. Its own default is about 3 s; a dashboard watching
/// a live book should be back within a second. A block with no data is not an event, so
/// clients see nothing else of it.
pub const RETRY: &[u8] = b"retry: 1000\n\n";

/// Appends one event. `data` must be a single line (compact JSON is). An empty `id` writes
/// no `id:` line: an empty one would reset the client's last event id.
pub fn write_event(buf: &mut Vec<u8>, event: &str, id: &str, data: &[u8]) {
    if !id.is_empty() {
        buf.extend_from_slice(b"id: ");
        buf.extend_from_slice(id.as_bytes());
        buf.push(b'\n');
    }
    buf.extend_from_slice(b"event: ");
    buf.extend_from_slice(event.as_bytes());
    buf.extend_from_slice(b"\ndata: ");
    buf.extend_from_slice(data);
    buf.extend_from_slice(b"\n\n");
}

/// An SSE response around a stream of chunks.
pub fn response<S>(chunks: S) -> Response
where
    S: Stream<Item = Result<Bytes, Infallible>> + Send + 'static,
{
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Reverse proxies (nginx) must not buffer an event stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    let chunks = futures::stream::iter([Ok(Bytes::from_static(RETRY))]).chain(chunks);
    (headers, Body::from_stream(chunks)).into_response()
}

/// The `(epoch, event_index)` of a `Last-Event-ID` header (`"{epoch}-{index}"`), if any and
/// well formed. Anything else is ignored: the client then simply starts afresh.
pub fn last_event_id(headers: &HeaderMap) -> Option<(u64, u64)> {
    let raw = headers.get("last-event-id")?.to_str().ok()?;
    let (e, i) = raw.trim().split_once('-')?;
    Some((e.parse().ok()?, i.parse().ok()?))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn event_framing() {
        let mut b = Vec::new();
        write_event(&mut b, "book", "1-2", b"{\"a\":1}");
        assert_eq!(b, b"id: 1-2\nevent: book\ndata: {\"a\":1}\n\n");
        b.clear();
        write_event(&mut b, "health", "", b"{}");
        assert_eq!(b, b"event: health\ndata: {}\n\n");
    }

    #[tokio::test]
    async fn a_stream_starts_with_the_reconnect_delay() {
        let chunks = futures::stream::iter([Ok(Bytes::from_static(KEEP_ALIVE))]);
        let body = response(chunks).into_body();
        let bytes = axum::body::to_bytes(body, 1 << 10).await.unwrap();
        assert_eq!(&bytes[..], b"retry: 1000\n\n: keep-alive\n\n");
    }

    #[test]
    fn last_event_id_parses_or_is_ignored() {
        let mut h = HeaderMap::new();
        assert_eq!(last_event_id(&h), None);
        h.insert("last-event-id", HeaderValue::from_static("3-41"));
        assert_eq!(last_event_id(&h), Some((3, 41)));
        h.insert("last-event-id", HeaderValue::from_static("3-"));
        assert_eq!(last_event_id(&h), None);
        h.insert("last-event-id", HeaderValue::from_static("garbage"));
        assert_eq!(last_event_id(&h), None);
    }
}
