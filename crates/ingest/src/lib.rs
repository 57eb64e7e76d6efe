//! Ingesting a delivery: the use case every entrance shares (DESIGN.md section 2).
//!
//! The webhook handler, `verdict quarantine reprocess` and `verdict replay` hand a verified
//! delivery to [`Ingest`], and the reconciler iDenfy's answer to a lookup, which
//!
//! 1. triages it without a database ([`triage`]): an unknown event type, a body that is not a
//!    JSON object or names no valid `scanRef` is quarantined;
//! 2. records it under the write deadline (`CaseStore::record`, where the state machine decides,
//!    and may still quarantine it) or quarantines it;
//! 3. publishes an applied change to the bus, spawned and bounded, never changing the answer;
//! 4. logs and counts what happened.
//!
//! It knows neither HTTP nor gRPC: where a delivery came from stays with the entrance, which
//! says only when it arrived (a reprocess: its original arrival) and which trace it belongs to.
//! [`Ingest::reprocess_waiting`] is the reprocess pass itself, shared by `verdict quarantine
//! reprocess` and `AdminService.ReprocessQuarantine`; [`Publisher`] is how a committed change
//! reaches the bus, shared with the purge use case.
//!
//! A status answer enters only through [`Ingest::reconcile`], the one way to record a delivery
//! of event type RECONCILED: every other entrance reads the event type from the unsigned
//! header, which never names it.
//!
//! [`readiness`] is the other thing both entrances share: whether the database answers, as one
//! signal for `/readyz` and `grpc.health.v1`.

#![forbid(unsafe_code)]

mod error;
mod publish;
pub mod readiness;
mod reprocess;
pub mod triage;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use verdict_domain::{
    CaseStore, ChangeBus, EventType, NewDelivery, NewQuarantine, Notification, PurgeReason,
    QuarantineItem, Recorded, StatusAnswer, VerifiedWebhook,
};
use verdict_telemetry::metrics::metrics;

pub use error::Error;
pub use publish::Publisher;
pub use reprocess::{ReprocessSummary, Reprocessed};

/// iDenfy retries a webhook not answered within 10 s; 5 s for the write leaves room for the
/// rest of the request and for the answer to travel back.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The ingest use case over a store and a bus. Cheap to clone; clones share the in-flight
/// publishes that [`Ingest::flush`] waits for.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: Arc<dyn CaseStore>,
    publisher: Publisher,
    write_timeout: Duration,
}

/// One delivery handed to [`Ingest`].
#[derive(Debug, Clone)]
pub struct Arrival {
    /// The delivery, its signature checked.
    pub webhook: VerifiedWebhook,
    /// When it reached Verdict: it is judged as of this time.
    pub received_at: DateTime<Utc>,
    /// W3C traceparent of the request that brought it.
    pub traceparent: Option<String>,
}

impl Ingest {
    /// Ingest into `store`, publishing applied changes on `bus`, with the default deadline.
    pub fn new(store: Arc<dyn CaseStore>, bus: Arc<dyn ChangeBus>) -> Self {
        Self {
            store,
            publisher: Publisher::new(bus),
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// Sets the deadline of one store write; past it the delivery fails with
    /// [`Error::WriteTimeout`] and is not acknowledged.
    pub fn with_write_timeout(mut self, write_timeout: Duration) -> Self {
        self.write_timeout = write_timeout;
        self
    }

    /// Ingests a delivery. `Ok` only once what it became is committed.
    pub async fn ingest(&self, arrival: Arrival) -> Result<Recorded, Error> {
        self.run(arrival, None).await
    }

    /// Ingests a quarantined delivery again, as of its original arrival. Recording it releases
    /// the item in the same transaction. If it is still unusable it stays quarantined and the
    /// answer says why now (the store also rewords an item the state machine quarantines
    /// again; one that triage still refuses keeps its stored wording). Another reprocess that
    /// got there first makes this one fail with a `NotFound` store error.
    pub async fn reprocess(&self, item: QuarantineItem) -> Result<Recorded, Error> {
        let arrival = Arrival {
            // Its signature was checked when it arrived; the quarantine keeps only what passed.
            webhook: VerifiedWebhook::previously_verified(item.body, item.event_type),
            received_at: item.received_at,
            traceparent: item.traceparent,
        };
        self.run(arrival, Some(item.id)).await
    }

    /// Records iDenfy's answer to a reconciliation lookup as a RECONCILED delivery that
    /// arrived at `received_at`, through the same state machine, and publishes what it changed.
    /// An answer is never quarantined (its status alone decides what it is).
    pub async fn reconcile(
        &self,
        answer: StatusAnswer,
        received_at: DateTime<Utc>,
        traceparent: Option<String>,
    ) -> Result<Recorded, Error> {
        let (body, payload) = answer.into_parts();
        let delivery = NewDelivery {
            event: EventType::Reconciled,
            payload,
            body,
            received_at,
            traceparent: traceparent.clone(),
            releases: None,
        };
        let recorded = self.within_deadline(self.store.record(delivery)).await?;
        self.announce(
            &recorded,
            Some(EventType::Reconciled.as_str()),
            None,
            traceparent,
        );
        Ok(recorded)
    }

    /// Waits until every notification spawned so far was published or gave up (each is bounded
    /// by its own timeout). A short-lived process calls this before it exits.
    pub async fn flush(&self) {
        self.publisher.flush().await;
    }

    async fn run(&self, arrival: Arrival, releases: Option<i64>) -> Result<Recorded, Error> {
        let Arrival {
            webhook,
            received_at,
            traceparent,
        } = arrival;
        let header = webhook.event_type().map(str::to_owned);
        let recorded = match triage::triage(&webhook) {
            Ok((event, payload)) => {
                let delivery = NewDelivery {
                    event,
                    payload,
                    body: webhook.body().clone(),
                    received_at,
                    traceparent: traceparent.clone(),
                    releases,
                };
                // On timeout the write is dropped, which rolls back an uncommitted transaction.
                // Should it have committed at the last instant, a retry is recorded as a
                // duplicate: the failure never hides a commit that a retry would not find.
                self.within_deadline(self.store.record(delivery)).await?
            }
            Err(reason) => match releases {
                // Unusable as before: it waits on, untouched.
                Some(id) => Recorded::Quarantined { id, reason },
                None => {
                    let item = NewQuarantine {
                        event_type: header.clone(),
                        body: webhook.body().clone(),
                        reason: reason.clone(),
                        received_at,
                        traceparent: traceparent.clone(),
                    };
                    let id = self.within_deadline(self.store.quarantine(item)).await?;
                    Recorded::Quarantined { id, reason }
                }
            },
        };
        self.announce(&recorded, header.as_deref(), releases, traceparent);
        Ok(recorded)
    }

    /// Logs and counts what a delivery became, and publishes an applied change.
    fn announce(
        &self,
        recorded: &Recorded,
        header: Option<&str>,
        releases: Option<i64>,
        traceparent: Option<String>,
    ) {
        report(recorded, header, releases);
        if let Recorded::Applied {
            case,
            position,
            purged,
        } = recorded
        {
            // A lifecycle notice keeps the decision of a final case: not a decision of its own.
            if case.is_final && !purged {
                metrics().decision(case.decision.as_str());
            }
            self.publisher
                .publish(Notification::of_commit(case, *position, traceparent));
        }
    }

    async fn within_deadline<T>(
        &self,
        write: impl Future<Output = Result<T, verdict_domain::Error>>,
    ) -> Result<T, Error> {
        match tokio::time::timeout(self.write_timeout, write).await {
            Ok(written) => Ok(written?),
            Err(_) => Err(Error::WriteTimeout(self.write_timeout)),
        }
    }
}

/// One log line per delivery, the quarantine counter for newly quarantined ones and the purge
/// counter for a lifecycle notice that erased personal data.
fn report(recorded: &Recorded, header: Option<&str>, releases: Option<i64>) {
    if let Recorded::Applied {
        case, purged: true, ..
    } = recorded
    {
        let reason = PurgeReason::LifecycleStatus;
        metrics().purge(reason.as_str());
        tracing::info!(scan_ref = %case.scan_ref, revision = case.revision, %reason, "case purged");
    }
    match recorded {
        Recorded::Quarantined { id, reason } => {
            if releases.is_none() {
                metrics().quarantined(reason.kind());
            }
            tracing::warn!(
                quarantine_id = *id,
                event_type = header,
                outcome = recorded.label(),
                reason_kind = reason.kind(),
                %reason,
                reprocessed = releases,
                "webhook quarantined"
            );
        }
        Recorded::Applied { case, .. }
        | Recorded::Stale { case }
        | Recorded::Duplicate { case: Some(case) } => tracing::info!(
            scan_ref = %case.scan_ref,
            event_type = header,
            outcome = recorded.label(),
            revision = case.revision,
            reprocessed = releases,
            "webhook recorded"
        ),
        Recorded::Duplicate { case: None } => tracing::info!(
            event_type = header,
            outcome = recorded.label(),
            reprocessed = releases,
            "webhook recorded: a copy of a quarantined delivery, no case yet"
        ),
    }
}

#[cfg(test)]
mod tests;
