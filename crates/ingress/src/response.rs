//! The JSON bodies the webhook endpoint answers with. iDenfy only looks at the status code;
//! these bodies are for the people reading delivery logs in the iDenfy dashboard and for tests.

use axum::Json;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use verdict_domain::Outcome;

/// A 200 answer: `{"outcome":"applied","revision":3}` or
/// `{"outcome":"quarantined","reason":"..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct WebhookAnswer {
    outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

impl WebhookAnswer {
    /// The delivery was committed; `revision` is the case's revision after it.
    pub(crate) fn recorded(outcome: Outcome, revision: u64) -> Self {
        Self {
            outcome: outcome.as_str(),
            revision: Some(revision),
            reason: None,
        }
    }

    /// The delivery was signed but unusable and is kept in quarantine.
    pub(crate) fn quarantined(reason: String) -> Self {
        Self {
            outcome: QUARANTINED,
            revision: None,
            reason: Some(reason),
        }
    }

    /// The outcome as answered, for logs and metrics.
    pub(crate) fn outcome(&self) -> &'static str {
        self.outcome
    }
}

/// The outcome spelling of a quarantined delivery (the stored outcomes come from the domain).
pub(crate) const QUARANTINED: &str = "quarantined";

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

    use super::*;

    #[test]
    fn recorded_answer_has_outcome_and_revision() {
        for (outcome, spelled) in [
            (Outcome::Applied, "applied"),
            (Outcome::Duplicate, "duplicate"),
            (Outcome::Stale, "stale"),
        ] {
            let value = serde_json::to_value(WebhookAnswer::recorded(outcome, 7)).unwrap();
            assert_eq!(value, json!({"outcome": spelled, "revision": 7}));
        }
    }

    #[test]
    fn quarantined_answer_has_outcome_and_reason() {
        let value =
            serde_json::to_value(WebhookAnswer::quarantined("body has no scanRef".into())).unwrap();
        assert_eq!(
            value,
            json!({"outcome": "quarantined", "reason": "body has no scanRef"})
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
