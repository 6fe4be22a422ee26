//! The Databento API key: where it comes from, and a wrapper that never prints it.

use std::fmt;

use crate::source::{FeedError, Result};

/// The environment variable read first.
pub const KEY_VAR: &str = "DATABENTO_API_KEY";
/// The older variable, read when [`KEY_VAR`] is unset or empty.
pub const LEGACY_KEY_VAR: &str = "DBN_KEY";

/// Length of every Databento API key.
const KEY_LEN: usize = 32;

/// A Databento API key. `Debug` and `Display` never show it; only the clients read it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    key: String,
    /// Where it came from (`DATABENTO_API_KEY`, `DBN_KEY`, or `argument`), for error messages.
    origin: &'static str,
}

impl ApiKey {
    /// Wraps a key given directly (tests, configuration files).
    ///
    /// # Errors
    /// [`FeedError::Auth`] when it cannot be a Databento key (not 32 ASCII characters); the
    /// message names the problem, never the key.
    pub fn new(key: impl Into<String>) -> Result<Self> {
        Self::validated(key.into(), "the given key")
    }

    /// Reads the key from `DATABENTO_API_KEY`, else from the older `DBN_KEY`.
    ///
    /// # Errors
    /// [`FeedError::NoApiKey`] (whose message says how to set one) when neither is set to a
    /// non-empty value; [`FeedError::Auth`] when the value cannot be a Databento key.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with `lookup` standing for the environment (tests).
    ///
    /// # Errors
    /// As [`from_env`](Self::from_env).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self> {
        for var in [KEY_VAR, LEGACY_KEY_VAR] {
            if let Some(value) = lookup(var) {
                let value = value.trim();
                if !value.is_empty() {
                    return Self::validated(value.to_owned(), var);
                }
            }
        }
        Err(FeedError::NoApiKey)
    }

    fn validated(key: String, origin: &'static str) -> Result<Self> {
        let key = key.trim().to_owned();
        if !key.is_ascii() {
            return Err(FeedError::Auth(format!(
                "{origin} is not a Databento API key: it contains non-ASCII characters"
            )));
        }
        if key.len() != KEY_LEN {
            return Err(FeedError::Auth(format!(
                "{origin} is not a Databento API key: expected {KEY_LEN} characters, got {}",
                key.len()
            )));
        }
        Ok(Self { key, origin })
    }

    /// Where the key came from: `DATABENTO_API_KEY`, `DBN_KEY` or `the given key`.
    pub fn origin(&self) -> &'static str {
        self.origin
    }

    /// The secret itself, for the Databento clients only.
    pub(crate) fn expose(&self) -> &str {
        &self.key
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("origin", &self.origin)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<Databento API key from {}>", self.origin)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    const KEY: &str = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ012";

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn prefers_databento_api_key_then_dbn_key() {
        let other = "db-zyxwvutsrqponmlkjihgfedcba987";
        let key = ApiKey::from_lookup(env(&[(KEY_VAR, KEY), (LEGACY_KEY_VAR, other)])).unwrap();
        assert_eq!(key.expose(), KEY);
        assert_eq!(key.origin(), KEY_VAR);
        let key = ApiKey::from_lookup(env(&[(KEY_VAR, " "), (LEGACY_KEY_VAR, other)])).unwrap();
        assert_eq!(key.expose(), other);
        assert_eq!(key.origin(), LEGACY_KEY_VAR);
    }

    #[test]
    fn missing_key_says_how_to_set_one() {
        let err = ApiKey::from_lookup(env(&[])).unwrap_err();
        assert!(matches!(err, FeedError::NoApiKey));
        assert!(err.to_string().contains("DATABENTO_API_KEY"), "{err}");
    }

    #[test]
    fn malformed_key_is_refused_without_printing_it() {
        let err = ApiKey::from_lookup(env(&[(KEY_VAR, "db-short-secret")])).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, FeedError::Auth(_)));
        assert!(
            msg.contains("DATABENTO_API_KEY") && msg.contains("32"),
            "{msg}"
        );
        assert!(!msg.contains("short-secret"), "{msg}");
    }

    #[test]
    fn never_printed() {
        let key = ApiKey::new(KEY).unwrap();
        for shown in [format!("{key:?}"), format!("{key:#?}"), key.to_string()] {
            assert!(!shown.contains("ABCDE"), "{shown}");
            assert!(!shown.contains("Z012"), "{shown}");
        }
    }
}
