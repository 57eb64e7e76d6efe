//! The orchestrator's probes, served on both listeners, and the Prometheus scrape on the admin
//! one.

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use http::{StatusCode, header};
use tokio_util::sync::CancellationToken;
use verdict_ingest::readiness::{Readiness, Status};

/// What the probes look at.
#[derive(Debug)]
pub(crate) struct Probes {
    pub(crate) readiness: Readiness,
    pub(crate) shutdown: CancellationToken,
}

/// Liveness: the process serves HTTP. No dependency is checked, so a database outage makes
/// the pod unready, not restarted.
pub(crate) async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: no shutdown has begun and the database answered the process's last ping (the
/// signal gRPC health follows too); the probe itself asks the database nothing.
pub(crate) async fn readyz(State(probes): State<Arc<Probes>>) -> (StatusCode, String) {
    if probes.shutdown.is_cancelled() {
        return unready("shutting down");
    }
    match probes.readiness.status() {
        Status::Ready => (StatusCode::OK, "ready".to_owned()),
        Status::Unready(reason) => unready(&reason),
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
