//! A verification case as Verdict keeps it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Verdict's own summary of a case, stable even as iDenfy's status vocabulary grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Decision {
    /// No final result yet.
    Pending,
    /// Final and approved.
    Approved,
    /// Final and denied.
    Denied,
    /// Final, with fraud or mismatch tags: iDenfy leaves the call to us.
    Suspected,
    /// The verification expired before it was done.
    Expired,
    /// The verification was cancelled.
    Cancelled,
}

impl Decision {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Denied => "DENIED",
            Self::Suspected => "SUSPECTED",
            Self::Expired => "EXPIRED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == raw)
    }

    /// Every decision.
    pub const ALL: [Decision; 6] = [
        Self::Pending,
        Self::Approved,
        Self::Denied,
        Self::Suspected,
        Self::Expired,
        Self::Cancelled,
    ];
}

/// What happened to a stored delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It changed the case and bumped its revision.
    Applied,
    /// The same event type with the same body was stored before: nothing changed.
    Duplicate,
    /// A preliminary result that arrived after the final one: kept, not applied.
    Stale,
}

impl Outcome {
    /// The stored and answered spelling (`{"outcome": "applied"}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Applied => "applied",
            Self::Duplicate => "duplicate",
            Self::Stale => "stale",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|o| o.as_str() == raw)
    }

    /// Every outcome.
    pub const ALL: [Outcome; 3] = [Self::Applied, Self::Duplicate, Self::Stale];
}

/// The identity read from the document. Kept apart from the case so it can be purged, and only
/// returned to callers who ask for the full view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub date_of_birth: Option<String>,
    pub nationality: Option<String>,
    pub sex: Option<String>,
    pub document_type: Option<String>,
    pub document_number: Option<String>,
    pub document_expiry: Option<String>,
    pub issuing_country: Option<String>,
}

impl Person {
    /// True when nothing is known.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The current state of one verification. Vendor statuses are kept verbatim as strings: iDenfy
/// adds values over time and we never reject one we do not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    pub scan_ref: String,
    pub client_id: String,
    pub external_ref: Option<String>,
    pub decision: Decision,
    pub is_final: bool,
    pub overall_status: Option<String>,
    pub last_event_type: String,
    /// 1 for the first applied delivery, +1 for each applied one after.
    pub revision: u64,
    pub auto_document: Option<String>,
    pub auto_face: Option<String>,
    pub manual_document: Option<String>,
    pub manual_face: Option<String>,
    pub fraud_tags: Vec<String>,
    pub mismatch_tags: Vec<String>,
    pub suspicion_reasons: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// When the case last became final; `None` while it is open.
    pub finalized_at: Option<DateTime<Utc>>,
    /// When Verdict erased the case's personal data — the person and every stored raw body
    /// (DESIGN.md section 11); `None` while it holds them. It stays set: what arrives for a
    /// purged case is kept without its body and without a person.
    ///
    /// `default` reads feed snapshots written before purges existed.
    #[serde(default)]
    pub purged_at: Option<DateTime<Utc>>,
    /// Only filled when the reader asked for personal data.
    pub person: Option<Person>,
}

impl Case {
    /// A case Verdict has just heard of at `at`: PENDING, not final, nothing known yet, and
    /// revision 0 until its first change is applied.
    pub fn new(scan_ref: impl Into<String>, at: DateTime<Utc>) -> Self {
        Self {
            scan_ref: scan_ref.into(),
            client_id: String::new(),
            external_ref: None,
            decision: Decision::Pending,
            is_final: false,
            overall_status: None,
            last_event_type: String::new(),
            revision: 0,
            auto_document: None,
            auto_face: None,
            manual_document: None,
            manual_face: None,
            fraud_tags: Vec::new(),
            mismatch_tags: Vec::new(),
            suspicion_reasons: Vec::new(),
            created_at: at,
            updated_at: at,
            finalized_at: None,
            purged_at: None,
            person: None,
        }
    }

    /// Whether the case's personal data was erased.
    pub fn is_purged(&self) -> bool {
        self.purged_at.is_some()
    }
}

/// One stored delivery of a case, as shown in its history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseEvent {
    pub event_type: String,
    pub is_final: bool,
    pub outcome: Outcome,
    /// The case revision after this delivery.
    pub revision: u64,
    pub overall_status: Option<String>,
    pub received_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn person(first: Option<&str>, last: Option<&str>, number: Option<&str>) -> Person {
        Person {
            first_name: first.map(str::to_owned),
            last_name: last.map(str::to_owned),
            document_number: number.map(str::to_owned),
            ..Person::default()
        }
    }

    #[test]
    fn decision_spelling_round_trips_and_matches_serde() {
        for decision in Decision::ALL {
            assert_eq!(Decision::parse(decision.as_str()), Some(decision));
            assert_eq!(
                serde_json::to_value(decision).unwrap(),
                serde_json::Value::from(decision.as_str())
            );
        }
        assert_eq!(Decision::Cancelled.as_str(), "CANCELLED");
        assert_eq!(Decision::parse("approved"), None);
        assert_eq!(Decision::parse("CANCELED"), None);
    }

    /// `ALL` drives parsing and the exhaustive tests; see `EventType`'s twin test.
    #[test]
    fn all_lists_are_in_step_with_their_enums() {
        fn decision_ordinal(decision: Decision) -> usize {
            match decision {
                Decision::Pending => 0,
                Decision::Approved => 1,
                Decision::Denied => 2,
                Decision::Suspected => 3,
                Decision::Expired => 4,
                Decision::Cancelled => 5,
            }
        }
        fn outcome_ordinal(outcome: Outcome) -> usize {
            match outcome {
                Outcome::Applied => 0,
                Outcome::Duplicate => 1,
                Outcome::Stale => 2,
            }
        }
        let mut decisions: Vec<usize> = Decision::ALL.into_iter().map(decision_ordinal).collect();
        decisions.sort_unstable();
        assert_eq!(decisions, (0..6).collect::<Vec<_>>());
        let mut outcomes: Vec<usize> = Outcome::ALL.into_iter().map(outcome_ordinal).collect();
        outcomes.sort_unstable();
        assert_eq!(outcomes, (0..3).collect::<Vec<_>>());
    }

    #[test]
    fn outcome_spelling_round_trips_and_matches_serde() {
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(outcome));
            assert_eq!(
                serde_json::to_value(outcome).unwrap(),
                serde_json::Value::from(outcome.as_str())
            );
        }
        assert_eq!(Outcome::Applied.as_str(), "applied");
        assert_eq!(Outcome::parse("APPLIED"), None);
    }

    #[test]
    fn snapshots_written_before_purges_existed_read_as_not_purged() {
        let mut case = Case::new("scan-1", DateTime::<Utc>::UNIX_EPOCH);
        case.purged_at = Some(DateTime::<Utc>::UNIX_EPOCH);
        let mut old = serde_json::to_value(&case).unwrap();
        old.as_object_mut().unwrap().remove("purged_at");
        let read: Case = serde_json::from_value(old).unwrap();
        assert!(!read.is_purged());
        let read: Case = serde_json::from_value(serde_json::to_value(&case).unwrap()).unwrap();
        assert!(read.is_purged());
    }

    #[test]
    fn person_is_empty_only_when_nothing_is_known() {
        assert!(Person::default().is_empty());
        assert!(!person(None, None, Some("X1")).is_empty());
    }
}
