//! Databento sources, through the official `databento` client crate.
//!
//! * [`key`]: the API key, read from `DATABENTO_API_KEY` (or the older `DBN_KEY`), wrapped so
//!   that it is never printed.
//! * [`historical`]: `timeseries.get_range` downloads of MBO data to zstd DBN files, with a
//!   cost estimate first (refused above a limit unless confirmed), a progress bar, and a local
//!   cache so the same request is never paid for twice.
//! * [`live`]: a live MBO subscription as a [`Feed`](crate::Feed), starting from a snapshot,
//!   reconnecting with exponential backoff, and marking every reconnect with a
//!   [`FeedEvent::Reset`](crate::FeedEvent::Reset) so consumers never continue on a stale book.
//!
//! Both clients accept an address override (`base_url`, `addr`) so tests run them, unchanged,
//! against a loopback gateway that speaks the real wire protocols.
//!
//! TLS: reqwest's rustls with the `ring` crypto provider, installed here as the process default
//! before the first HTTP client is built (no OpenSSL; no cmake or nasm at build time).

pub mod historical;
pub mod key;
pub mod live;

pub use historical::{fetch, parse_time, FetchOptions, FetchOutcome, FetchRequest};
pub use key::ApiKey;
pub use live::{spawn_live, Backoff, LiveConfig};

use crate::source::FeedError;

/// Installs rustls' `ring` provider as the process default, once. reqwest is built without a
/// provider of its own (its default would compile aws-lc); when another part of the process
/// installed one first, that one is kept.
pub(crate) fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            // Err only if another thread won the race: its provider serves as well.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
    });
}

/// Maps a client error to a [`FeedError`], one line, never including the key (the clients
/// never put it in their errors; HTTP errors carry the URL, which holds no credentials).
pub(crate) fn map_error(err: ::databento::Error) -> FeedError {
    use ::databento::Error as E;
    match err {
        E::Auth(msg) => FeedError::Auth(auth_message(&msg)),
        E::Api(api) if matches!(api.status_code.as_u16(), 401 | 403) => {
            FeedError::Auth(auth_message(&api.message))
        }
        E::Api(api) => FeedError::Databento(api.to_string()),
        E::Http(e) => FeedError::Databento(format!("HTTP request failed: {}", chain(&e))),
        E::Io(e) => FeedError::Databento(format!("connection failed: {}", chain(&e))),
        other => FeedError::Databento(other.to_string()),
    }
}

/// The gateway's reason plus what to check.
fn auth_message(reason: &str) -> String {
    let reason = reason.trim().trim_end_matches('.');
    format!("{reason}. Check the API key in DATABENTO_API_KEY (or DBN_KEY)")
}

/// An error and its sources, joined with `: `.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = e.source();
    }
    out
}
