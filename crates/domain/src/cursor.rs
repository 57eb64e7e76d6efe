//! Opaque cursors for the `WatchCases` feed and `ListCases` pages.
//!
//! A cursor is a position in the commit-ordered change feed. It is versioned and encoded so
//! clients treat it as opaque and we can change the representation later.
//!
//! The codec is strict: every position has exactly one spelling (`v1.` and lowercase hex without
//! leading zeros), and only that spelling is accepted, so `decode(raw)` succeeding implies
//! `encode(decode(raw)) == raw`. A lenient parser (`v1.+1`, `v1.0001`, `v1.FF`) would let two
//! different strings name one position, which clients comparing cursors for equality (dedupe,
//! "is this the bookmark I stored?") would get wrong.

use crate::Error;

const PREFIX: &str = "v1.";

/// The hex digits of the largest position (`u64::MAX`).
const MAX_DIGITS: usize = 16;

/// A position in the change feed: everything at or below it has been seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Cursor(pub u64);

impl Cursor {
    /// The beginning of the feed.
    pub const START: Cursor = Cursor(0);

    /// The opaque string handed to clients.
    pub fn encode(self) -> String {
        format!("{PREFIX}{:x}", self.0)
    }

    /// Parses a client's cursor; empty means the start of the feed. Anything but a cursor exactly
    /// as [`Cursor::encode`] spells it is refused (the value is not echoed: it is the caller's).
    pub fn decode(raw: &str) -> Result<Self, Error> {
        if raw.is_empty() {
            return Ok(Self::START);
        }
        let malformed = || {
            Error::InvalidArgument(
                "malformed cursor: pass back a cursor exactly as Verdict sent it (like \"v1.2a\"), \
                 or leave it empty to start at the beginning of the feed"
                    .to_owned(),
            )
        };
        let hex = raw.strip_prefix(PREFIX).ok_or_else(malformed)?;
        let canonical = !hex.is_empty()
            && hex.len() <= MAX_DIGITS
            && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            && (hex == "0" || !hex.starts_with('0'));
        if !canonical {
            return Err(malformed());
        }
        u64::from_str_radix(hex, 16)
            .map(Cursor)
            .map_err(|_| malformed())
    }

    /// This cursor, if it is not past `head`, the feed's newest position.
    ///
    /// Positions are never reused, so a cursor past the head was not handed out by this feed: it
    /// comes from a database that was since restored from an older backup, from another
    /// deployment, or it was forged. Resuming there would silently skip every change until the
    /// feed grows past it, so it is refused with `OutOfRange`, like etcd's compacted revision or
    /// Kubernetes' 410 Gone: the client must list again.
    pub fn within(self, head: Cursor) -> Result<Self, Error> {
        if self <= head {
            return Ok(self);
        }
        Err(Error::OutOfRange(format!(
            "cursor {} is ahead of the feed head {}: the database was restored or replaced, or the \
             cursor comes from another deployment; list the cases again (ListCases) and watch \
             from its watch_cursor",
            self.encode(),
            head.encode()
        )))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

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
        assert_eq!(Cursor(u64::MAX).encode(), "v1.ffffffffffffffff");
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

    #[test]
    fn only_the_canonical_spelling_is_accepted() {
        // Each of these names a position, but not the way Verdict spells it.
        for bad in [
            "v1.+1",
            "v1.01",
            "v1.00",
            "v1.FF",
            "v1.Ff",
            "v1.0x1f",
            "V1.1",
            "v1.1\0",
            "v1.\u{0661}", // an Arabic-Indic digit one
            "v1.0000000000000000001",
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(Error::InvalidArgument(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn malformed_cursor_message_says_what_to_do_without_echoing_the_input() {
        let Err(Error::InvalidArgument(message)) = Cursor::decode("v1.SECRET") else {
            panic!("refused");
        };
        assert!(message.contains("malformed cursor"), "{message}");
        assert!(!message.contains("SECRET"), "{message}");
    }

    #[test]
    fn a_cursor_past_the_head_is_out_of_range_and_says_to_list_again() {
        assert_eq!(Cursor(7).within(Cursor(7)).unwrap(), Cursor(7));
        assert_eq!(Cursor::START.within(Cursor::START).unwrap(), Cursor::START);
        let Err(Error::OutOfRange(message)) = Cursor(8).within(Cursor(7)) else {
            panic!("out of range");
        };
        for needle in [
            "v1.8",
            "ahead of the feed head v1.7",
            "restored",
            "ListCases",
        ] {
            assert!(message.contains(needle), "{needle} in {message}");
        }
    }

    proptest! {
        #[test]
        fn every_accepted_cursor_is_its_own_encoding(raw in "v1\\.[0-9a-fA-F+-]{0,18}|.{0,20}") {
            if let Ok(cursor) = Cursor::decode(&raw) {
                let expected = if raw.is_empty() { Cursor::START.encode() } else { raw.clone() };
                prop_assert_eq!(cursor.encode(), expected);
            }
        }

        #[test]
        fn every_position_round_trips(n in any::<u64>()) {
            prop_assert_eq!(Cursor::decode(&Cursor(n).encode()).unwrap(), Cursor(n));
        }
    }
}
