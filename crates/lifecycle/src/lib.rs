//! The personal-data lifecycle of a case (DESIGN.md section 11): the use case every entrance
//! that forgets shares — `verdict purge`, `AdminService.PurgeCase` and the retention job —
//! so that none of them re-implements a purge or skips its publish. (The fourth way, a
//! lifecycle notice from iDenfy, purges inside the transaction that records it: the store does
//! that for the ingest use case.)
//!
//! A purge erases the person and every stored raw body of a case, keeps its decision, history
//! metadata and body hashes, and is a change: published here after its commit, so watchers on
//! every replica see `purged_at` and downstream copies of personal data can be deleted too.
//! Retention purges cases that became final longer ago than `VERDICT_RETENTION`, a batch per
//! transaction, one process at a time across replicas.
//!
//! It knows neither HTTP nor gRPC nor SQL: only the [`PurgeStore`] and [`ChangeBus`] ports.

#![forbid(unsafe_code)]

mod error;
mod retention;

use std::sync::Arc;

use tracing::Instrument as _;
use verdict_domain::{ChangeBus, Notification, Purge, PurgeReason, PurgeStore};
use verdict_ingest::Publisher;
use verdict_telemetry::{metrics::metrics, propagation};

pub use error::Error;
pub use retention::{DEFAULT_BATCH, RetentionSummary};

/// The lifecycle use case over a store and a bus. Cheap to clone; clones share the in-flight
/// publishes that [`Lifecycle::flush`] waits for.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    store: Arc<dyn PurgeStore>,
    publisher: Publisher,
    batch: u32,
}

impl Lifecycle {
    /// Purges in `store`, publishing each purge on `bus`; retention batches of
    /// [`DEFAULT_BATCH`] cases.
    pub fn new(store: Arc<dyn PurgeStore>, bus: Arc<dyn ChangeBus>) -> Self {
        Self {
            store,
            publisher: Publisher::new(bus),
            batch: DEFAULT_BATCH,
        }
    }

    /// Sets how many cases one retention transaction purges at most (at least 1).
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Erases the personal data of the case `scan_ref` now (an erasure request): its person
    /// and every stored raw body. Purging a case with nothing left changes nothing and answers
    /// the case as it is, without a position.
    pub async fn purge_case(&self, scan_ref: &str) -> Result<Purge, Error> {
        if let Err(err) = verdict_domain::key::check_key("scan_ref", scan_ref) {
            return Err(Error::InvalidKey(err.to_string()));
        }
        let span = tracing::info_span!("purge case", scan_ref, revision = tracing::field::Empty);
        async {
            let purge = self
                .store
                .purge(scan_ref, propagation::current_traceparent())
                .await?
                .ok_or_else(|| Error::UnknownCase(scan_ref.to_owned()))?;
            tracing::Span::current().record("revision", purge.case.revision);
            match purge.position {
                Some(_) => self.purged(&purge, PurgeReason::Erasure),
                None => tracing::info!(
                    scan_ref,
                    revision = purge.case.revision,
                    "case already purged, nothing left to erase"
                ),
            }
            Ok(purge)
        }
        .instrument(span)
        .await
    }

    /// Waits until every purge published so far reached the bus or gave up. A short-lived
    /// process (`verdict purge`) calls this before it exits.
    pub async fn flush(&self) {
        self.publisher.flush().await;
    }

    /// A committed purge: logged, counted and published (nothing to do for one that changed
    /// nothing).
    fn purged(&self, purge: &Purge, reason: PurgeReason) {
        let Some(position) = purge.position else {
            return;
        };
        let case = &purge.case;
        metrics().purge(reason.as_str());
        tracing::info!(scan_ref = %case.scan_ref, revision = case.revision, %reason, "case purged");
        self.publisher.publish(Notification::of_commit(
            case,
            position,
            propagation::current_traceparent(),
        ));
    }
}

#[cfg(test)]
mod tests;
