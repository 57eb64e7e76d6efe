//! The routers the application serves: the public one (webhooks and probes) and the admin one
//! (metrics and probes).

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio_util::sync::CancellationToken;
use verdict_ingest::Ingest;
use verdict_ingest::readiness::Readiness;

use crate::health::Probes;
use crate::inflight::Inflight;
use crate::{IngressState, health, inflight, layers, source, webhook};

/// Where iDenfy is configured to deliver KYC webhooks.
pub const WEBHOOK_PATH: &str = "/webhooks/idenfy";
/// Liveness probe: answers while the process can serve HTTP at all.
pub const HEALTHZ_PATH: &str = "/healthz";
/// Readiness probe: answers 200 only while the database answered the last readiness ping and
/// no shutdown has begun.
pub const READYZ_PATH: &str = "/readyz";
/// Prometheus scrape, on the admin listener only.
pub const METRICS_PATH: &str = "/metrics";

/// The state behind every route: the integrator's [`IngressState`], and the ingest use case
/// built from it once rather than per request.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state: IngressState,
    pub(crate) ingest: Ingest,
}

/// `POST /webhooks/idenfy`, `GET /healthz` and `GET /readyz`, with request ids and a span per
/// request. Serve it with [`crate::serve`] (or with connect info) so spans carry
/// `client.address` and the source filter sees the peer.
///
/// In front of the webhook handler, cheapest first and before the body is read: the source
/// filter (403) when configured, then the in-flight bound (503 + Retry-After).
///
/// Metrics go to `verdict_telemetry::metrics`; call it after `verdict_telemetry::init` when
/// OTLP metrics are wanted (the telemetry crate's ordering rule).
pub fn router(state: IngressState) -> Router {
    // The webhook extractor enforces `max_body_bytes` itself; setting axum's limit to the same
    // value keeps any body extractor added later in line with it instead of axum's 2 MB default.
    let body_limit = DefaultBodyLimit::max(state.max_body_bytes);
    let probes = probes(state.readiness.clone(), state.shutdown.clone());
    let inflight = Inflight::new(state.max_inflight);
    let source_filter = state.source_filter.clone();
    let ingest = Ingest::new(Arc::clone(&state.store), Arc::clone(&state.bus))
        .with_write_timeout(state.write_timeout);
    let shared = Arc::new(Shared { state, ingest });
    let mut webhook = post(webhook::receive).route_layer(axum::middleware::from_fn_with_state(
        inflight,
        inflight::bound,
    ));
    if let Some(filter) = source_filter {
        webhook = webhook.route_layer(axum::middleware::from_fn_with_state(filter, source::check));
    }
    let router = Router::new()
        .route(WEBHOOK_PATH, webhook)
        .layer(body_limit)
        .with_state(shared)
        .merge(probes);
    layers::around(router)
}

/// `GET /metrics`, `GET /healthz` and `GET /readyz` for the admin listener
/// (`VERDICT_ADMIN_ADDR`), which is not exposed publicly. Untraced: scrapes and probes every few
/// seconds would bury the traces operators look for.
pub fn admin_router(readiness: Readiness, shutdown: CancellationToken) -> Router {
    Router::new()
        .route(METRICS_PATH, get(health::metrics))
        .merge(probes(readiness, shutdown))
}

fn probes(readiness: Readiness, shutdown: CancellationToken) -> Router {
    Router::new()
        .route(HEALTHZ_PATH, get(health::healthz))
        .route(READYZ_PATH, get(health::readyz))
        .with_state(Arc::new(Probes {
            readiness,
            shutdown,
        }))
}
