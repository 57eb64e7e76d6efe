//! One reconciliation: ask iDenfy about one case and record the answer through the ingest use
//! case — the same state machine, duplicate check, store write and publish as a webhook.
//!
//! Each lookup is one trace: a root INTERNAL span `reconcile`, holding the CLIENT span of the
//! HTTP call and the ingest's store span and publish; the stored delivery carries the root
//! span's traceparent, so watchers' delivery spans join the same trace.

use chrono::Utc;
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{AnswerError, Recorded, ScanRef, StatusAnswer};
use verdict_ingest::Ingest;
use verdict_telemetry::metrics::metrics;
use verdict_telemetry::propagation::current_traceparent;

use crate::client::{IdenfyClient, LookupError};

/// Why a lookup recorded nothing. The case stays as it was.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable answer came back.
    #[error(transparent)]
    Lookup(#[from] LookupError),
    /// An answer came back that cannot be recorded (junk, or about another case).
    #[error("iDenfy's answer cannot be recorded: {0}")]
    Answer(#[from] AnswerError),
    /// The answer could not be stored.
    #[error("the answer could not be stored")]
    Store(#[from] verdict_ingest::Error),
}

impl Error {
    /// The `result` label of `verdict.reconcile`.
    pub fn result(&self) -> &'static str {
        match self {
            Self::Lookup(error) => error.result(),
            Self::Answer(_) => "bad_answer",
            Self::Store(_) => "store_error",
        }
    }

    /// When iDenfy said to come back (a 429 with `Retry-After`).
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        match self {
            Self::Lookup(LookupError::RateLimited { retry_after }) => *retry_after,
            Self::Lookup(_) | Self::Answer(_) | Self::Store(_) => None,
        }
    }

    /// Whether the failure concerns this case only (iDenfy does not know it), as opposed to
    /// iDenfy, the network or the database failing for every case alike.
    pub fn is_about_the_case(&self) -> bool {
        matches!(self, Self::Lookup(LookupError::NotFound(_)))
    }
}

/// The `result` label of a recorded answer: `applied` when it changed the case, `unchanged`
/// when it told nothing new (stale or duplicate).
pub fn result_of(recorded: &Recorded) -> &'static str {
    match recorded {
        Recorded::Applied { .. } => "applied",
        Recorded::Stale { .. } | Recorded::Duplicate { .. } => "unchanged",
        // The state machine never quarantines an answer; were it to, the answer was unusable.
        Recorded::Quarantined { .. } => "bad_answer",
    }
}

/// Looks cases up at iDenfy and records the answers. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Reconciler {
    client: IdenfyClient,
    ingest: Ingest,
}

impl Reconciler {
    /// Asks through `client`, records through `ingest`.
    pub fn new(client: IdenfyClient, ingest: Ingest) -> Self {
        Self { client, ingest }
    }

    /// One lookup of `scan_ref`, now: what the answer did to the case, or why nothing was
    /// recorded. Counted in `verdict.reconcile{result}`, logged without the answer.
    pub async fn reconcile(&self, scan_ref: &ScanRef) -> Result<Recorded, Error> {
        let span = tracing::info_span!(
            parent: None,
            "reconcile",
            otel.name = "reconcile",
            otel.kind = "internal",
            otel.status_code = Empty,
            scan_ref = %scan_ref,
            result = Empty,
            revision = Empty,
        );
        let outcome = self.look_up(scan_ref).instrument(span.clone()).await;
        let result = match &outcome {
            Ok(recorded) => result_of(recorded),
            Err(error) => error.result(),
        };
        metrics().reconcile(result);
        span.record("result", result);
        let _entered = span.enter();
        match &outcome {
            Ok(recorded) => {
                let revision = recorded.case().map(|case| case.revision);
                if let Some(revision) = revision {
                    span.record("revision", i64::try_from(revision).unwrap_or(i64::MAX));
                }
                tracing::info!(%scan_ref, result, outcome = recorded.label(), revision, "case reconciled with iDenfy");
            }
            Err(error) => {
                span.record("otel.status_code", "error");
                let error: &(dyn std::error::Error + 'static) = error;
                tracing::warn!(%scan_ref, result, error, "reconciliation lookup failed");
            }
        }
        outcome
    }

    async fn look_up(&self, scan_ref: &ScanRef) -> Result<Recorded, Error> {
        let body = self.client.status(scan_ref).await?;
        let received_at = Utc::now();
        let answer = StatusAnswer::parse(body, scan_ref)?;
        Ok(self
            .ingest
            .reconcile(answer, received_at, current_traceparent())
            .await?)
    }
}
