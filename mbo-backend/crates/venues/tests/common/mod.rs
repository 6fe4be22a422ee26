//! Shared helpers: the real recordings in `shared/data/crypto` (see its PROVENANCE.md).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use mbo_venues::Summary;

/// Directory of the crypto recordings: `$MBO_CRYPTO_DATA` when set, else
/// `../shared/data/crypto` relative to the repository root.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("MBO_CRYPTO_DATA") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../../shared/data/crypto"),
    }
}

/// A recording's text. A missing file fails the test, loudly; it is never skipped.
pub fn read(rel: &str) -> String {
    let path = data_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "required recording is missing: {} ({e}); expected in ../shared/data/crypto relative \
             to the repository root, or set MBO_CRYPTO_DATA; it is never skipped",
            path.display()
        )
    })
}

/// The summary of one symbol.
pub fn of<'a>(s: &'a [Summary], symbol: &str) -> &'a Summary {
    s.iter()
        .find(|x| x.symbol == symbol)
        .unwrap_or_else(|| panic!("no summary for {symbol}: {s:?}"))
}
