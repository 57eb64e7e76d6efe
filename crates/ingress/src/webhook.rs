//! `POST /webhooks/idenfy`: verify, triage, record (or quarantine), answer, then notify.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use chrono::Utc;
use tracing::Instrument;
use verdict_domain::{
    ChangeBus, EventType, NewDelivery, NewQuarantine, Notification, Outcome, Payload, Recorded,
    VerifiedWebhook,
};

use crate::Error;
use crate::error::ErrorChain;
use crate::extract::IncomingWebhook;
use crate::metrics::Metrics;
use crate::response::{QUARANTINED, WebhookAnswer};
use crate::routes::Shared;
use crate::triage::triage;

/// How long a notification may take. The database is the truth and watchers re-read it
/// periodically, so a notification that takes longer is given up rather than held on to.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// The webhook handler. Every 200 follows a commit; every failure is an [`Error`].
pub(crate) async fn receive(
    State(shared): State<Arc<Shared>>,
    IncomingWebhook {
        webhook,
        traceparent,
    }: IncomingWebhook,
) -> Result<WebhookAnswer, Error> {
    let verified = shared.state.verifier.verify(webhook).inspect_err(|_| {
        shared.metrics.signature_failure();
    })?;
    let answer = match triage(&verified) {
        Ok((event, payload)) => record(&shared, &verified, event, payload, traceparent).await?,
        Err(reason) => quarantine(&shared, &verified, reason, traceparent).await?,
    };
    shared.metrics.delivery(answer.outcome());
    Ok(answer)
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
                shared.metrics.clone(),
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
                shared.metrics.publish_failure();
            }
        },
        Outcome::Duplicate | Outcome::Stale => {}
    }
    Ok(WebhookAnswer::recorded(outcome, case.revision))
}

async fn quarantine(
    shared: &Shared,
    verified: &VerifiedWebhook,
    reason: String,
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
    tracing::warn!(
        quarantine_id = id,
        event_type = verified.event_type(),
        outcome = QUARANTINED,
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
fn publish(bus: Arc<dyn ChangeBus>, metrics: Metrics, notification: Notification) {
    let scan_ref = notification.scan_ref.clone();
    let revision = notification.revision;
    let task = async move {
        match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(notification)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(%scan_ref, revision, error = %ErrorChain(&err), "publish failed");
                metrics.publish_failure();
            }
            Err(_) => {
                tracing::warn!(%scan_ref, revision, timeout = ?PUBLISH_TIMEOUT, "publish timed out");
                metrics.publish_failure();
            }
        }
    };
    tokio::spawn(task.in_current_span());
}
