//! The orchestrator's probes.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use http::StatusCode;

use crate::error::ErrorChain;
use crate::routes::Shared;

/// Readiness probes usually time out after 1 s; answering 503 a little earlier gives the
/// orchestrator a reason instead of a timeout.
const PING_TIMEOUT: Duration = Duration::from_millis(900);

/// Liveness: the process serves HTTP. No dependency is checked, so a database outage makes
/// the pod unready, not restarted.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: no shutdown has begun and the database answers a ping in time.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> (StatusCode, String) {
    if shared.state.shutdown.is_cancelled() {
        return unready("shutting down");
    }
    match tokio::time::timeout(PING_TIMEOUT, shared.state.store.ping()).await {
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
