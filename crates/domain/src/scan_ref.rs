//! `scanRef`: iDenfy's id of one verification, and the key of every case Verdict keeps.

use std::fmt;

/// A `scanRef` within the vendor's contract: 1 to [`ScanRef::MAX_CHARS`] characters, none of
/// them a control character (NUL included).
///
/// Validated once, where a delivery's body is parsed, so everything downstream — the state
/// machine, the store's key, logs — holds a key iDenfy could have issued. A signed body whose
/// `scanRef` breaks the contract is quarantined (`invalid_scan_ref`), never stored as a case: a
/// 10 kB or NUL-carrying key would otherwise live forever in indexes, logs and gRPC answers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScanRef(String);

/// Why a `scanRef` is not one iDenfy could have issued. The message never quotes the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ScanRefError {
    /// Empty, or only whitespace.
    #[error("scanRef is empty")]
    Empty,
    /// More characters than iDenfy's documented maximum.
    #[error("scanRef is longer than {} characters", ScanRef::MAX_CHARS)]
    TooLong,
    /// A control character (NUL, newline, escape, ...): never part of an iDenfy id, and NUL
    /// cannot even be stored in PostgreSQL text.
    #[error("scanRef contains a control character")]
    ControlCharacter,
}

impl ScanRef {
    /// iDenfy documents `scanRef` as a string of at most 36 characters (a UUID's length).
    pub const MAX_CHARS: usize = 36;

    /// Checks `raw` against the vendor's contract.
    pub fn new(raw: impl Into<String>) -> Result<Self, ScanRefError> {
        let raw = raw.into();
        if raw.trim().is_empty() {
            return Err(ScanRefError::Empty);
        }
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(ScanRefError::TooLong);
        }
        if raw.chars().any(char::is_control) {
            return Err(ScanRefError::ControlCharacter);
        }
        Ok(Self(raw))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ScanRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ScanRef {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<ScanRef> for String {
    fn from(scan_ref: ScanRef) -> Self {
        scan_ref.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_as_idenfy_issues_them_are_accepted() {
        for raw in [
            "328c6766-934e-11ed-bb9b-025ad99a18e7",
            "scan-ref",
            "12345",
            "réf-😀",
            "a b",
        ] {
            assert_eq!(ScanRef::new(raw).unwrap().as_str(), raw);
        }
    }

    #[test]
    fn length_is_counted_in_characters_up_to_36() {
        assert!(ScanRef::new("x".repeat(36)).is_ok());
        assert_eq!(ScanRef::new("x".repeat(37)), Err(ScanRefError::TooLong));
        // 36 two-byte characters are 72 bytes and still within the contract.
        assert!(ScanRef::new("é".repeat(36)).is_ok());
        assert_eq!(ScanRef::new("é".repeat(37)), Err(ScanRefError::TooLong));
    }

    #[test]
    fn empty_or_blank_is_refused() {
        for raw in ["", " ", "\u{3000}"] {
            assert_eq!(ScanRef::new(raw), Err(ScanRefError::Empty), "{raw:?}");
        }
    }

    #[test]
    fn control_characters_are_refused() {
        for raw in [
            "a\0b",
            "\0",
            "line\nbreak",
            "tab\there",
            "esc\u{1b}[0m",
            "del\u{7f}",
            "c1\u{85}",
        ] {
            assert_eq!(
                ScanRef::new(raw),
                Err(ScanRefError::ControlCharacter),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn messages_never_quote_the_value() {
        for raw in ["secret\0", &"secret".repeat(10), ""] {
            let message = ScanRef::new(raw).unwrap_err().to_string();
            assert!(!message.contains("secret"), "{message}");
            assert!(message.starts_with("scanRef "), "{message}");
        }
    }
}
