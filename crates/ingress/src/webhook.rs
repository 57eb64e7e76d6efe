//! `POST /webhooks/idenfy`: verify, triage, record (or quarantine), answer, then notify.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use chrono::Utc;
use tracing::{Instrument, Span};
use verdict_domain::{
    ChangeBus, EventType, NewDelivery, NewQuarantine, Notification, Outcome, Payload, Recorded,
    SignatureError, VerifiedWebhook,
};
use verdict_telemetry::metrics::metrics;

use crate::Error;
use crate::error::ErrorChain;
use crate::extract::IncomingWebhook;
use crate::response::{QUARANTINED, WebhookAnswer};
use crate::routes::Shared;
use crate::triage::{Unusable, triage};

/// How long a notification may take. The database is the truth and watchers re-read it
/// periodically, so a notification that takes longer is given up rather than held on to.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

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
    let answer = match triage(&verified) {
        Ok((event, payload)) => record(&shared, &verified, event, payload, traceparent).await,
        Err(unusable) => quarantine(&shared, &verified, unusable, traceparent).await,
    };
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

async fn record(
    shared: &Shared,
    verified: &VerifiedWebhook,
    event: EventType,
    payload: Payload,
    traceparent: Option<String>,
) -> Result<WebhookAnswer, Error> {
    let write_timeout = shared.state.write_timeout;
    let delivery = NewDelivery {
        event,
        payload,
        body: verified.body().clone(),
        received_at: Utc::now(),
        traceparent: traceparent.clone(),
    };
    // On timeout the write is dropped, which rolls back an uncommitted transaction. Should it
    // have committed at the last instant, iDenfy's retry is recorded as a duplicate: the 503
    // never hides a commit that the retry would not find.
    let Recorded {
        outcome,
        case,
        position,
    } = tokio::time::timeout(write_timeout, shared.state.store.record(delivery))
        .await
        .map_err(|_| Error::WriteTimeout(write_timeout))??;
    // On the request span too, so an operator can find the webhook's trace by scan_ref.
    let span = Span::current();
    span.record("scan_ref", case.scan_ref.as_str());
    span.record("revision", i64::try_from(case.revision).unwrap_or(i64::MAX));
    tracing::info!(
        scan_ref = %case.scan_ref,
        event_type = event.as_str(),
        outcome = outcome.as_str(),
        revision = case.revision,
        "webhook recorded"
    );
    match outcome {
        Outcome::Applied => match position {
            Some(position) => publish(
                Arc::clone(&shared.state.bus),
                Notification {
                    scan_ref: case.scan_ref.clone(),
                    revision: case.revision,
                    position,
                    traceparent,
                },
            ),
            None => {
                // A store bug, not a reason to fail a committed delivery: watchers' periodic
                // re-read still picks the change up.
                tracing::error!(scan_ref = %case.scan_ref, revision = case.revision,
                    "applied change has no feed position, not published");
                metrics().notification("failed");
            }
        },
        Outcome::Duplicate | Outcome::Stale => {}
    }
    Ok(WebhookAnswer::recorded(outcome, case.revision))
}

async fn quarantine(
    shared: &Shared,
    verified: &VerifiedWebhook,
    Unusable { kind, reason }: Unusable,
    traceparent: Option<String>,
) -> Result<WebhookAnswer, Error> {
    let write_timeout = shared.state.write_timeout;
    let item = NewQuarantine {
        event_type: verified.event_type().map(str::to_owned),
        body: verified.body().clone(),
        reason: reason.clone(),
        received_at: Utc::now(),
        traceparent,
    };
    let id = tokio::time::timeout(write_timeout, shared.state.store.quarantine(item))
        .await
        .map_err(|_| Error::WriteTimeout(write_timeout))??;
    metrics().quarantined(kind);
    tracing::warn!(
        quarantine_id = id,
        event_type = verified.event_type(),
        outcome = QUARANTINED,
        reason_kind = kind,
        %reason,
        "webhook quarantined"
    );
    Ok(WebhookAnswer::quarantined(reason))
}

/// Tells the bus about an applied change without making the answer wait for it.
///
/// Spawned rather than awaited: the answer depends only on the commit, a slow or unreachable
/// bus (Redis) must not push iDenfy towards its 10 s retry deadline, and a client hanging up
/// does not cancel the notification. The timeout bounds how long each task can live, so a hung
/// bus cannot pile tasks up. Two notifications of one case may overtake each other; that is
/// harmless because watchers only move to higher revisions and re-read the database anyway.
///
/// Counted in `verdict.notifications{result}` as `published` or `failed`.
fn publish(bus: Arc<dyn ChangeBus>, notification: Notification) {
    let scan_ref = notification.scan_ref.clone();
    let revision = notification.revision;
    let task = async move {
        match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(notification)).await {
            Ok(Ok(())) => metrics().notification("published"),
            Ok(Err(err)) => {
                tracing::warn!(%scan_ref, revision, error = %ErrorChain(&err), "publish failed");
                metrics().notification("failed");
            }
            Err(_) => {
                tracing::warn!(%scan_ref, revision, timeout = ?PUBLISH_TIMEOUT, "publish timed out");
                metrics().notification("failed");
            }
        }
    };
    tokio::spawn(task.in_current_span());
}
