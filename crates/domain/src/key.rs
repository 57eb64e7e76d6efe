//! The keys a caller names cases by (`scan_ref`, `client_id`), checked the same way wherever a
//! request carries one: a gRPC lookup or a `WatchCases` filter.

use crate::Error;

/// The longest scanRef or clientId a request may name (DESIGN §10): none is longer, and the
/// bound keeps a hostile key from costing more than a lookup.
pub const MAX_KEY_BYTES: usize = 128;

/// Refuses (`InvalidArgument`, naming `field`, never echoing the value: a client id may be
/// personal) a key that is empty, longer than [`MAX_KEY_BYTES`] bytes, or holds a NUL byte,
/// which PostgreSQL can neither store nor compare.
pub fn check_key(field: &str, value: &str) -> Result<(), Error> {
    let problem = if value.is_empty() {
        "must not be empty".to_owned()
    } else if value.len() > MAX_KEY_BYTES {
        format!("is longer than {MAX_KEY_BYTES} bytes")
    } else if value.contains('\0') {
        "contains a NUL byte".to_owned()
    } else {
        return Ok(());
    };
    Err(Error::InvalidArgument(format!("{field} {problem}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(field: &str, value: &str) -> String {
        match check_key(field, value) {
            Err(Error::InvalidArgument(message)) => message,
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
    }

    #[test]
    fn keys_are_refused_when_empty_too_long_or_holding_nul() {
        assert!(check_key("scan_ref", "scan-1").is_ok());
        assert!(check_key("scan_ref", &"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert_eq!(message("scan_ref", ""), "scan_ref must not be empty");
        assert_eq!(
            message("scan_ref", &"x".repeat(MAX_KEY_BYTES + 1)),
            "scan_ref is longer than 128 bytes"
        );
        assert_eq!(
            message("client_ids[3]", "a\0b"),
            "client_ids[3] contains a NUL byte"
        );
        // Bytes, not characters: 43 three-byte characters are 129 bytes.
        assert!(check_key("client_id", &"€".repeat(43)).is_err());
    }
}
