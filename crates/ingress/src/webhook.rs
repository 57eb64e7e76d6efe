//! `POST /webhooks/idenfy`: verify, hand the delivery to the ingest use case, answer.

use std::sync::Arc;

use axum::extract::State;
use chrono::Utc;
use tracing::Span;
use verdict_domain::{EventType, SignatureError};
use verdict_ingest::Arrival;
use verdict_telemetry::metrics::metrics;

use crate::Error;
use crate::extract::IncomingWebhook;
use crate::response::WebhookAnswer;
use crate::routes::Shared;

/// The webhook handler. Every 200 follows a commit; every failure is an [`Error`].
///
/// Counts every delivery that got past the body checks in `verdict.webhooks{event_type,
/// outcome}`: the outcome answered (`applied`, `duplicate`, `stale`, `quarantined`), `rejected`
/// for a failed signature check, `failed` when it could not be stored.
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    IncomingWebhook {
        webhook,
        traceparent,
    }: IncomingWebhook,
) -> Result<WebhookAnswer, Error> {
    // A fixed set of labels even for an unverified header: unknown values become "unknown".
    let event_type = event_type_label(webhook.event_type.as_deref());
    let verified = shared.state.verifier.verify(webhook).inspect_err(|err| {
        metrics().signature_failure(signature_reason(*err));
        metrics().webhook(event_type, "rejected");
    })?;
    let arrival = Arrival {
        webhook: verified,
        received_at: Utc::now(),
        traceparent,
    };
    let answer = shared
        .ingest
        .ingest(arrival)
        .await
        .map(|recorded| {
            // On the request span too, so an operator can find the webhook's trace by scan_ref.
            if let Some(case) = recorded.case() {
                let span = Span::current();
                span.record("scan_ref", case.scan_ref.as_str());
                span.record("revision", i64::try_from(case.revision).unwrap_or(i64::MAX));
            }
            WebhookAnswer::from(&recorded)
        })
        .map_err(Error::from);
    let outcome = answer.as_ref().map_or("failed", WebhookAnswer::outcome);
    metrics().webhook(event_type, outcome);
    answer
}

/// The `event_type` label: the canonical spelling of a known event type, else `unknown`.
fn event_type_label(header: Option<&str>) -> &'static str {
    EventType::from_header(header).map_or("unknown", EventType::as_str)
}

/// The `reason` label of `verdict.webhook.signature_failures`.
fn signature_reason(err: SignatureError) -> &'static str {
    match err {
        SignatureError::Missing => "missing",
        SignatureError::Malformed => "malformed",
        SignatureError::Mismatch => "mismatch",
    }
}
