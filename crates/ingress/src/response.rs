//! The JSON bodies the webhook endpoint answers with. iDenfy only looks at the status code;
//! these bodies are for the people reading delivery logs in the iDenfy dashboard and for tests.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use verdict_domain::Recorded;

/// A 200 answer: `{"outcome":"applied","revision":3}` or
/// `{"outcome":"quarantined","kind":"unknown_event_type","reason":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WebhookAnswer {
    outcome: &'static str,
    /// The case's revision after the delivery; absent when there is no case.
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u64>,
    /// `QuarantineReason::kind` of a quarantined delivery.
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl From<&Recorded> for WebhookAnswer {
    fn from(recorded: &Recorded) -> Self {
        let quarantined = match recorded {
            Recorded::Quarantined { reason, .. } => Some(reason),
            Recorded::Applied { .. } | Recorded::Duplicate { .. } | Recorded::Stale { .. } => None,
        };
        Self {
            outcome: recorded.label(),
            revision: recorded.case().map(|case| case.revision),
            kind: quarantined.map(|reason| reason.kind()),
            reason: quarantined.map(ToString::to_string),
        }
    }
}

impl WebhookAnswer {
    /// The outcome as answered, for logs and metrics.
    pub(crate) fn outcome(&self) -> &'static str {
        self.outcome
    }
}

impl IntoResponse for WebhookAnswer {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// Every error answer: `{"error":"<what was wrong>"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: String,
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use verdict_domain::{Case, Cursor, QuarantineReason};

    use super::*;

    fn case(revision: u64) -> Case {
        Case {
            revision,
            ..Case::new("scan-1", chrono::DateTime::<chrono::Utc>::UNIX_EPOCH)
        }
    }

    fn answer(recorded: Recorded) -> serde_json::Value {
        serde_json::to_value(WebhookAnswer::from(&recorded)).unwrap()
    }

    #[test]
    fn recorded_answer_has_outcome_and_revision() {
        let applied = Recorded::Applied {
            case: case(7),
            position: Cursor(9),
            purged: false,
        };
        assert_eq!(
            answer(applied),
            json!({"outcome": "applied", "revision": 7})
        );
        let duplicate = Recorded::Duplicate {
            case: Some(case(7)),
        };
        assert_eq!(
            answer(duplicate),
            json!({"outcome": "duplicate", "revision": 7})
        );
        let stale = Recorded::Stale { case: case(7) };
        assert_eq!(answer(stale), json!({"outcome": "stale", "revision": 7}));
    }

    #[test]
    fn duplicate_of_a_case_that_does_not_exist_has_no_revision() {
        let duplicate = Recorded::Duplicate { case: None };
        assert_eq!(answer(duplicate), json!({"outcome": "duplicate"}));
    }

    #[test]
    fn quarantined_answer_has_outcome_kind_and_reason() {
        let quarantined = Recorded::Quarantined {
            id: 3,
            reason: QuarantineReason::UnsummarisableFinal,
        };
        assert_eq!(
            answer(quarantined),
            json!({
                "outcome": "quarantined",
                "kind": "unsummarisable_final",
                "reason": QuarantineReason::UnsummarisableFinal.to_string(),
            })
        );
    }

    #[test]
    fn error_body_is_a_single_error_field() {
        let value = serde_json::to_value(ErrorBody {
            error: "missing Idenfy-Signature header".into(),
        })
        .unwrap();
        assert_eq!(value, json!({"error": "missing Idenfy-Signature header"}));
    }
}
