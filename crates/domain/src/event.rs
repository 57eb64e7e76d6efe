//! The `Idenfy-Event-Type` header, an open string on the wire and a closed enum here.

use std::fmt;

/// The kinds of KYC webhook iDenfy sends. All share one body; they differ in what they mean for
/// the case lifecycle (see [`crate::machine`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// The automatic check finished; a manual review may still follow (`final` tells).
    AutoFinished,
    /// A human reviewer decided: always final.
    ManualFinished,
    /// The reviewer asked the user for more information: the case reopens for a new round.
    Resubmitted,
    /// The user or the operator cancelled the verification: always final.
    Cancelled,
    /// The verification token expired unused: always final.
    Expired,
    /// Deliveries from before event types existed (no header, or `IDENTIFICATION`).
    Legacy,
    /// Verdict's own, not iDenfy's: the answer of iDenfy's status API to a reconciliation lookup
    /// (DESIGN.md section 13). Never read from a header — [`EventType::from_header`] refuses it
    /// like any unknown value — so a signed webhook body can never be passed off as one; only
    /// the reconciler's entrance into the ingest use case records it.
    Reconciled,
}

/// An `Idenfy-Event-Type` value Verdict does not know. Such deliveries are quarantined rather
/// than rejected, so a new vendor event never loses data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl EventType {
    /// Parses the header value; a missing header means a legacy delivery.
    pub fn from_header(value: Option<&str>) -> Result<Self, UnknownEventType> {
        let Some(raw) = value else {
            return Ok(Self::Legacy);
        };
        match raw.trim() {
            "" | "IDENTIFICATION" => Ok(Self::Legacy),
            "IDENTIFICATION_AUTO_FINISHED" => Ok(Self::AutoFinished),
            "IDENTIFICATION_MANUAL_FINISHED" => Ok(Self::ManualFinished),
            "IDENTIFICATION_RESUBMITTED" => Ok(Self::Resubmitted),
            // iDenfy's documentation spells it both ways.
            "IDENTIFICATION_CANCELLED" | "IDENTIFICATION_CANCELED" => Ok(Self::Cancelled),
            "IDENTIFICATION_EXPIRED" => Ok(Self::Expired),
            other => Err(UnknownEventType(other.to_owned())),
        }
    }

    /// The canonical header spelling, as stored and shown in `last_event_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AutoFinished => "IDENTIFICATION_AUTO_FINISHED",
            Self::ManualFinished => "IDENTIFICATION_MANUAL_FINISHED",
            Self::Resubmitted => "IDENTIFICATION_RESUBMITTED",
            Self::Cancelled => "IDENTIFICATION_CANCELLED",
            Self::Expired => "IDENTIFICATION_EXPIRED",
            Self::Legacy => "IDENTIFICATION",
            Self::Reconciled => "RECONCILED",
        }
    }

    /// Every event type, for exhaustive tests and property generators.
    pub const ALL: [EventType; 7] = [
        Self::AutoFinished,
        Self::ManualFinished,
        Self::Resubmitted,
        Self::Cancelled,
        Self::Expired,
        Self::Legacy,
        Self::Reconciled,
    ];

    /// The event types a webhook's `Idenfy-Event-Type` header can name: all but
    /// [`EventType::Reconciled`].
    pub const WEBHOOK: [EventType; 6] = [
        Self::AutoFinished,
        Self::ManualFinished,
        Self::Resubmitted,
        Self::Cancelled,
        Self::Expired,
        Self::Legacy,
    ];
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_header_parses_to_its_event() {
        let table = [
            ("IDENTIFICATION_AUTO_FINISHED", EventType::AutoFinished),
            ("IDENTIFICATION_MANUAL_FINISHED", EventType::ManualFinished),
            ("IDENTIFICATION_RESUBMITTED", EventType::Resubmitted),
            ("IDENTIFICATION_CANCELLED", EventType::Cancelled),
            ("IDENTIFICATION_CANCELED", EventType::Cancelled),
            ("IDENTIFICATION_EXPIRED", EventType::Expired),
            ("IDENTIFICATION", EventType::Legacy),
        ];
        for (header, event) in table {
            assert_eq!(EventType::from_header(Some(header)), Ok(event), "{header}");
        }
    }

    #[test]
    fn missing_or_empty_header_is_legacy() {
        assert_eq!(EventType::from_header(None), Ok(EventType::Legacy));
        assert_eq!(EventType::from_header(Some("")), Ok(EventType::Legacy));
        assert_eq!(EventType::from_header(Some("  ")), Ok(EventType::Legacy));
    }

    #[test]
    fn surrounding_whitespace_is_ignored() {
        assert_eq!(
            EventType::from_header(Some(" IDENTIFICATION_EXPIRED\t")),
            Ok(EventType::Expired)
        );
    }

    #[test]
    fn unknown_event_type_is_an_error_carrying_the_value() {
        for raw in [
            "IDENTIFICATION_SOMETHING_NEW",
            "identification_auto_finished",
            "AML_CHECK_FINISHED",
            "IDENTIFICATION_AUTO_FINISHED2",
        ] {
            assert_eq!(
                EventType::from_header(Some(raw)),
                Err(UnknownEventType(raw.to_owned())),
                "{raw}"
            );
        }
        assert_eq!(
            UnknownEventType("X".into()).to_string(),
            "unknown event type \"X\""
        );
    }

    #[test]
    fn canonical_spelling_round_trips_for_every_webhook_event() {
        for event in EventType::WEBHOOK {
            assert_eq!(EventType::from_header(Some(event.as_str())), Ok(event));
            assert_eq!(event.to_string(), event.as_str());
        }
    }

    /// The header is unsigned: were RECONCILED accepted from it, a replayed body could pose as
    /// iDenfy's answer to a lookup. It is an unknown event type like any other.
    #[test]
    fn reconciled_is_never_read_from_a_header() {
        for raw in ["RECONCILED", " RECONCILED ", EventType::Reconciled.as_str()] {
            assert_eq!(
                EventType::from_header(Some(raw)),
                Err(UnknownEventType(raw.trim().to_owned())),
                "{raw:?}"
            );
        }
        assert!(!EventType::WEBHOOK.contains(&EventType::Reconciled));
        assert_eq!(EventType::Reconciled.to_string(), "RECONCILED");
    }

    #[test]
    fn both_cancel_spellings_are_stored_as_one() {
        assert_eq!(EventType::Cancelled.as_str(), "IDENTIFICATION_CANCELLED");
    }

    #[test]
    fn all_lists_each_event_once() {
        let distinct: std::collections::HashSet<_> = EventType::ALL.into_iter().collect();
        assert_eq!(distinct.len(), EventType::ALL.len());
    }

    /// `ALL` feeds the property tests and every exhaustive table: a variant missing from it
    /// would go untested. The match stops compiling when a variant is added; the count then
    /// fails until `ALL` has it too.
    #[test]
    fn all_is_in_step_with_the_enum() {
        fn ordinal(event: EventType) -> usize {
            match event {
                EventType::AutoFinished => 0,
                EventType::ManualFinished => 1,
                EventType::Resubmitted => 2,
                EventType::Cancelled => 3,
                EventType::Expired => 4,
                EventType::Legacy => 5,
                EventType::Reconciled => 6,
            }
        }
        const VARIANTS: usize = 7;
        let mut ordinals: Vec<usize> = EventType::ALL.into_iter().map(ordinal).collect();
        ordinals.sort_unstable();
        assert_eq!(ordinals, (0..VARIANTS).collect::<Vec<_>>());
    }
}
