//! The orchestrator's probes, served on both listeners, and the Prometheus scrape on the admin
//! one.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use tokio_util::sync::CancellationToken;
use verdict_domain::CaseStore;

use crate::error::ErrorChain;

/// Readiness probes usually time out after 1 s; answering 503 a little earlier gives the
/// orchestrator a reason instead of a timeout.
const PING_TIMEOUT: Duration = Duration::from_millis(900);

/// What the probes look at.
#[derive(Debug)]
pub(crate) struct Probes {
    pub(crate) store: Arc<dyn CaseStore>,
    pub(crate) shutdown: CancellationToken,
}

/// Liveness: the process serves HTTP. No dependency is checked, so a database outage makes
/// the pod unready, not restarted.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: no shutdown has begun and the database answers a ping in time.
pub(crate) async fn readyz(State(probes): State<Arc<Probes>>) -> (StatusCode, String) {
    if probes.shutdown.is_cancelled() {
        return unready("shutting down");
    }
    match tokio::time::timeout(PING_TIMEOUT, probes.store.ping()).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(err)) => {
            tracing::warn!(error = %ErrorChain(&err), "readiness ping failed");
            unready(&err.to_string())
        }
        Err(_) => unready(&format!("storage did not answer within {PING_TIMEOUT:?}")),
    }
}

fn unready(reason: &str) -> (StatusCode, String) {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("not ready: {reason}"),
    )
}

/// `GET /metrics`: Prometheus text.
pub(crate) async fn metrics() -> impl IntoResponse {
    use verdict_telemetry::metrics::{PROMETHEUS_CONTENT_TYPE, render_prometheus};
    (
        [(header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        render_prometheus(),
    )
}
