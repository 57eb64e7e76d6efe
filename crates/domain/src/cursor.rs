//! Opaque cursors for the `WatchCases` feed and `ListCases` pages.
//!
//! A cursor is a position in the commit-ordered change feed. It is versioned and encoded so
//! clients treat it as opaque and we can change the representation later.

use crate::Error;

const PREFIX: &str = "v1.";

/// A position in the change feed: everything at or below it has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// The beginning of the feed.
    pub const START: Cursor = Cursor(0);

    /// The opaque string handed to clients.
    pub fn encode(self) -> String {
        format!("{PREFIX}{:x}", self.0)
    }

    /// Parses a client's cursor; empty means the start of the feed.
    pub fn decode(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() {
            return Ok(Self::START);
        }
        raw.strip_prefix(PREFIX)
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .map(Cursor)
            .ok_or_else(|| Error::InvalidArgument(format!("malformed cursor {raw:?}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        for n in [0, 1, 255, u64::MAX] {
            assert_eq!(Cursor::decode(&Cursor(n).encode()).unwrap(), Cursor(n));
        }
    }

    #[test]
    fn encoded_cursors_are_versioned() {
        assert_eq!(Cursor(255).encode(), "v1.ff");
        assert_eq!(Cursor::START.encode(), "v1.0");
    }

    #[test]
    fn cursor_order_is_feed_order() {
        assert!(Cursor::START < Cursor(1));
        assert!(Cursor(9) < Cursor(10));
    }

    #[test]
    fn cursor_beyond_u64_is_invalid_argument() {
        assert!(matches!(
            Cursor::decode("v1.10000000000000000"),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn empty_cursor_is_the_start() {
        assert_eq!(Cursor::decode("").unwrap(), Cursor::START);
    }

    #[test]
    fn garbage_cursor_is_invalid_argument() {
        for bad in [
            "x", "v1.", "v1.zz", "v2.10", "10", "v1.-1", " v1.1", "v1.1 ",
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
