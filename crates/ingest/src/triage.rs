//! Deciding what a verified delivery is: a usable event, or something to quarantine and why.

use serde_json::error::Category;
use verdict_domain::payload::PayloadError;
use verdict_domain::{EventType, Payload, VerifiedWebhook};

/// Why a verified delivery is quarantined: `kind` for the metric label (a fixed set), `reason`
/// for the record, the log and the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unusable {
    pub(crate) kind: &'static str,
    pub(crate) reason: String,
}

/// A verified delivery's event type and parsed body, or why it must be quarantined.
///
/// The reason is stored, logged and answered to the sender, so it must never quote the body
/// (which carries personal data): see [`payload_reason`].
pub(crate) fn triage(webhook: &VerifiedWebhook) -> Result<(EventType, Payload), Unusable> {
    let event = EventType::from_header(webhook.event_type()).map_err(|err| Unusable {
        kind: "unknown_event_type",
        reason: err.to_string(),
    })?;
    let payload = Payload::parse(webhook.body()).map_err(|err| Unusable {
        kind: match err {
            PayloadError::NotJson(_) => "unparseable",
            PayloadError::MissingScanRef => "missing_scan_ref",
        },
        reason: payload_reason(&err),
    })?;
    Ok((event, payload))
}

/// The domain's message, except where serde_json would quote the input: a body that is valid
/// JSON but not an object makes it say e.g. `invalid type: string "Jane Doe", expected ...`.
/// Syntax and end-of-input messages name only a position, so they are kept for diagnosis.
fn payload_reason(err: &PayloadError) -> String {
    match err {
        PayloadError::NotJson(json) => match json.classify() {
            Category::Syntax | Category::Eof => err.to_string(),
            Category::Data => format!(
                "body is not a JSON object: another JSON value at line {} column {}",
                json.line(),
                json.column()
            ),
            Category::Io => "body is not a JSON object: it could not be read".to_owned(),
        },
        PayloadError::MissingScanRef => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use verdict_domain::{SignatureVerifier, UnverifiedWebhook};

    use super::*;

    fn verified(body: &'static [u8], event_type: Option<&str>) -> VerifiedWebhook {
        SignatureVerifier::allow_unsigned()
            .verify(UnverifiedWebhook {
                body: body.into(),
                signature: None,
                event_type: event_type.map(str::to_owned),
            })
            .unwrap()
    }

    #[test]
    fn known_event_with_scan_ref_is_usable() {
        let (event, payload) = triage(&verified(
            br#"{"scanRef":"abc","final":true}"#,
            Some("IDENTIFICATION_MANUAL_FINISHED"),
        ))
        .unwrap();
        assert_eq!(event, EventType::ManualFinished);
        assert_eq!(payload.scan_ref(), "abc");
    }

    #[test]
    fn missing_event_type_is_legacy() {
        let (event, _) = triage(&verified(br#"{"scanRef":"abc"}"#, None)).unwrap();
        assert_eq!(event, EventType::Legacy);
    }

    #[test]
    fn unknown_event_type_is_quarantined_with_its_name() {
        let unusable =
            triage(&verified(br#"{"scanRef":"abc"}"#, Some("AML_FINISHED"))).unwrap_err();
        assert_eq!(unusable.reason, r#"unknown event type "AML_FINISHED""#);
        assert_eq!(unusable.kind, "unknown_event_type");
    }

    #[test]
    fn body_without_scan_ref_is_quarantined() {
        let unusable = triage(&verified(br#"{"final":true}"#, None)).unwrap_err();
        assert_eq!(unusable.reason, "body has no scanRef");
        assert_eq!(unusable.kind, "missing_scan_ref");
    }

    #[test]
    fn syntax_error_reason_names_the_position() {
        let Unusable { kind, reason } = triage(&verified(b"{not json", None)).unwrap_err();
        assert_eq!(kind, "unparseable");
        assert!(
            reason.starts_with("body is not a JSON object: "),
            "{reason}"
        );
        assert!(reason.contains("line 1"), "{reason}");
    }

    #[test]
    fn reason_never_quotes_the_body() {
        for body in [
            &br#""Jane Doe 1990-01-01""#[..],
            br#"1990010112345"#,
            br#"{"scanRef": "abc", "data": 1} "Jane Doe""#,
            br#"{"scanRef": "Jane Doe"#,
            br#"{"Jane Doe": }"#,
        ] {
            let webhook = SignatureVerifier::allow_unsigned()
                .verify(UnverifiedWebhook {
                    body: bytes::Bytes::copy_from_slice(body),
                    signature: None,
                    event_type: None,
                })
                .unwrap();
            let reason = triage(&webhook).unwrap_err().reason;
            assert!(!reason.contains("Jane"), "{reason}");
            assert!(!reason.contains("1990"), "{reason}");
        }
    }
}
