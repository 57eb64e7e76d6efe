//! What the HTTP side needs from the rest of the application.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use verdict_domain::{CaseStore, ChangeBus, SignatureVerifier};
use verdict_ingest::readiness::Readiness;

use crate::SourceFilter;

/// The ingest use case's deadline for one store write.
pub use verdict_ingest::DEFAULT_WRITE_TIMEOUT;

/// Real identification bodies are a few kilobytes; 4 MiB leaves ample room for vendor growth
/// while bounding what an unauthenticated caller can make us buffer before the signature check.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A webhook body not received within this long is answered 408 (DESIGN §10).
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Webhooks in flight before more are answered 503: sixteen per database connection of the
/// default pool of 16. See [`IngressState::max_inflight`].
pub const DEFAULT_MAX_INFLIGHT: usize = 256;

/// Everything the routes share, built once by the application and handed to [`crate::router`].
///
/// The fields are public so the integrator (and tests) can set each knob explicitly; use
/// [`IngressState::new`] for the documented defaults.
#[derive(Clone, Debug)]
pub struct IngressState {
    /// Where deliveries are recorded: the truth the answer waits for.
    pub store: Arc<dyn CaseStore>,
    /// Told after each applied commit so watchers re-read; best effort only.
    pub bus: Arc<dyn ChangeBus>,
    /// The only way from an unverified body to one the pipeline accepts.
    pub verifier: SignatureVerifier,
    /// Deadline for one store write; past it the webhook is answered 503 so iDenfy retries.
    pub write_timeout: Duration,
    /// Largest body accepted, checked before anything is buffered past it.
    pub max_body_bytes: usize,
    /// Deadline for reading a webhook's body once its head arrived; past it, 408.
    pub body_timeout: Duration,
    /// Webhooks being handled at once; the next one is answered 503 + Retry-After at once
    /// rather than queued. Each in-flight webhook holds its body (up to `max_body_bytes`) and
    /// waits for one of the store's connections, so the bound should be a small multiple of
    /// the pool: a queue the store drains well within the write deadline.
    pub max_inflight: usize,
    /// Where webhooks may come from; `None` accepts any source (the signature still decides).
    pub source_filter: Option<SourceFilter>,
    /// Whether the database answers: the process's one signal, which `/readyz` reports.
    pub readiness: Readiness,
    /// Cancelled when the process starts shutting down, so `/readyz` turns traffic away first.
    pub shutdown: CancellationToken,
}

impl IngressState {
    /// A state with the documented defaults: write deadline, body limit and timeout, in-flight
    /// bound, and no source filter.
    pub fn new(
        store: Arc<dyn CaseStore>,
        bus: Arc<dyn ChangeBus>,
        verifier: SignatureVerifier,
        readiness: Readiness,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            store,
            bus,
            verifier,
            readiness,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_inflight: DEFAULT_MAX_INFLIGHT,
            source_filter: None,
            shutdown,
        }
    }
}
