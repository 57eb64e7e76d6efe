//! What a verified delivery is, as far as that can be told without a database: a usable event,
//! or a reason to quarantine it. The reasons that need the case's state (a contradiction between
//! header and body, a final result with no decision) are the state machine's, judged in the
//! store's transaction after the duplicate check.

use verdict_domain::{EventType, Payload, QuarantineReason, VerifiedWebhook};

/// A verified delivery's event type and parsed body (its `scanRef` validated), or why it must
/// be quarantined. The reason never quotes the body.
pub fn triage(webhook: &VerifiedWebhook) -> Result<(EventType, Payload), QuarantineReason> {
    let event = EventType::from_header(webhook.event_type())?;
    let payload = Payload::parse(webhook.body())?;
    Ok((event, payload))
}

#[cfg(test)]
mod tests {
    use verdict_domain::{SignatureVerifier, UnverifiedWebhook};

    use super::*;

    fn verified(body: &[u8], event_type: Option<&str>) -> VerifiedWebhook {
        SignatureVerifier::allow_unsigned()
            .verify(UnverifiedWebhook {
                body: bytes::Bytes::copy_from_slice(body),
                signature: None,
                event_type: event_type.map(str::to_owned),
            })
            .unwrap()
    }

    fn kind_of(body: &[u8], event_type: Option<&str>) -> &'static str {
        triage(&verified(body, event_type)).unwrap_err().kind()
    }

    #[test]
    fn known_event_with_scan_ref_is_usable() {
        let (event, payload) = triage(&verified(
            br#"{"scanRef":"abc","final":true}"#,
            Some("IDENTIFICATION_MANUAL_FINISHED"),
        ))
        .unwrap();
        assert_eq!(event, EventType::ManualFinished);
        assert_eq!(payload.scan_ref.as_str(), "abc");
    }

    #[test]
    fn missing_event_type_is_legacy() {
        let (event, _) = triage(&verified(br#"{"scanRef":"abc"}"#, None)).unwrap();
        assert_eq!(event, EventType::Legacy);
    }

    #[test]
    fn unknown_event_type_is_quarantined_with_its_name() {
        let reason = triage(&verified(br#"{"scanRef":"abc"}"#, Some("AML_FINISHED"))).unwrap_err();
        assert_eq!(reason.to_string(), r#"unknown event type "AML_FINISHED""#);
        assert_eq!(reason.kind(), "unknown_event_type");
    }

    #[test]
    fn each_unusable_body_is_quarantined_for_its_reason() {
        let table: [(&[u8], &str); 7] = [
            (br#"{"final":true}"#, "missing_scan_ref"),
            (br#"{"scanRef":null}"#, "missing_scan_ref"),
            (br#"{"scanRef":""}"#, "invalid_scan_ref"),
            (br#"{"scanRef":"a\u0000b"}"#, "invalid_scan_ref"),
            (
                br#"{"scanRef":"0123456789012345678901234567890123456"}"#,
                "invalid_scan_ref",
            ),
            (b"{not json", "unparseable"),
            (b"[1,2]", "unparseable"),
        ];
        for (body, kind) in table {
            assert_eq!(
                kind_of(body, None),
                kind,
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn the_event_type_is_judged_before_the_body() {
        assert_eq!(
            kind_of(b"{not json", Some("AML_FINISHED")),
            "unknown_event_type"
        );
    }
}
