//! The router the application serves.

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::{IngressState, health, layers, webhook};

/// Where iDenfy is configured to deliver KYC webhooks.
pub const WEBHOOK_PATH: &str = "/webhooks/idenfy";
/// Liveness probe: answers while the process can serve HTTP at all.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness probe: answers 200 only while the database does and no shutdown has begun.
pub const READYZ_PATH: &str = "/readyz";

/// The state behind every route: the integrator's [`IngressState`].
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: IngressState,
}

/// `POST /webhooks/idenfy`, `GET /healthz` and `GET /readyz`, with request ids and a span per
/// request. Serve it with `into_make_service_with_connect_info::<SocketAddr>()` so spans carry
/// `client.address`.
///
/// Metrics go to `verdict_telemetry::metrics`; call it after `verdict_telemetry::init` when
/// OTLP metrics are wanted (the telemetry crate's ordering rule).
pub fn router(state: IngressState) -> Router {
    // The webhook extractor enforces `max_body_bytes` itself; setting axum's limit to the same
    // value keeps any body extractor added later in line with it instead of axum's 2 MB default.
    let body_limit = DefaultBodyLimit::max(state.max_body_bytes);
    let shared = Arc::new(Shared { state });
    let router = Router::new()
        .route(WEBHOOK_PATH, post(webhook::receive))
        .route(HEALTHZ_PATH, get(health::healthz))
        .route(READYZ_PATH, get(health::readyz))
        .layer(body_limit)
        .with_state(shared);
    layers::around(router)
}
