//! Why a signed delivery is set aside instead of recorded.

use crate::EventType;
use crate::event::UnknownEventType;
use crate::payload::PayloadError;

/// Why a verified delivery is quarantined: kept with its raw body, answered 200, reprocessable
/// with `verdict quarantine reprocess` once a newer Verdict (or an operator) can tell what it
/// means. Some reasons need no database (the event type, the body's shape); the last two are
/// judged by the state machine after the duplicate check, inside the store's transaction.
///
/// The message is stored, logged, printed and answered: it never quotes the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuarantineReason {
    /// An `Idenfy-Event-Type` this version does not know.
    #[error(transparent)]
    UnknownEventType(#[from] UnknownEventType),
    /// A body that is not a JSON object or names no valid case.
    #[error(transparent)]
    Payload(#[from] PayloadError),
    /// The unsigned header claims what the signed body contradicts: MANUAL_FINISHED is final by
    /// the vendor's contract, so a body saying `final: false` under it is either a vendor bug or
    /// a preliminary body replayed under a forged header.
    #[error("{0} is always final, but the body says final: false")]
    HeaderBodyMismatch(EventType),
    /// A final result whose overall status is no decision Verdict knows (REVIEWING, ACTIVE,
    /// absent, a new value): recording it would make the case final with a PENDING decision.
    #[error(
        "final result whose overall status is not a decision (APPROVED, DENIED, SUSPECTED or EXPIRED)"
    )]
    UnsummarisableFinal,
}

impl QuarantineReason {
    /// A short, fixed identifier: the `reason` label of `verdict.quarantined`, the stored
    /// `reason_kind`, the `kind` of the webhook answer.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::UnknownEventType(_) => "unknown_event_type",
            Self::Payload(PayloadError::NotJson(_)) => "unparseable",
            Self::Payload(PayloadError::MissingScanRef) => "missing_scan_ref",
            Self::Payload(PayloadError::InvalidScanRef(_)) => "invalid_scan_ref",
            Self::HeaderBodyMismatch(_) => "header_body_mismatch",
            Self::UnsummarisableFinal => "unsummarisable_final",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;
    use crate::scan_ref::ScanRefError;

    #[test]
    fn every_reason_has_its_kind_and_a_message() {
        let not_json = Payload::parse(b"{").unwrap_err();
        let table = [
            (
                QuarantineReason::from(UnknownEventType("X".into())),
                "unknown_event_type",
                "unknown event type \"X\"",
            ),
            (
                QuarantineReason::from(not_json),
                "unparseable",
                "body is not a JSON object: EOF while parsing an object at line 1 column 1",
            ),
            (
                PayloadError::MissingScanRef.into(),
                "missing_scan_ref",
                "body has no scanRef",
            ),
            (
                PayloadError::InvalidScanRef(ScanRefError::TooLong).into(),
                "invalid_scan_ref",
                "scanRef is longer than 36 characters",
            ),
            (
                QuarantineReason::HeaderBodyMismatch(EventType::ManualFinished),
                "header_body_mismatch",
                "IDENTIFICATION_MANUAL_FINISHED is always final, but the body says final: false",
            ),
            (
                QuarantineReason::UnsummarisableFinal,
                "unsummarisable_final",
                "final result whose overall status is not a decision (APPROVED, DENIED, SUSPECTED or EXPIRED)",
            ),
        ];
        for (reason, kind, message) in table {
            assert_eq!(reason.kind(), kind);
            assert_eq!(reason.to_string(), message);
        }
    }
}
