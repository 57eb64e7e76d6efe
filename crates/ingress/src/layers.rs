//! What wraps every route: a request id, and one span per request.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::MatchedPath;
use axum::response::Response;
use http::Request;
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use tracing::Span;
use tracing::field::Empty;

/// Outermost first: the id is set before the span is made (so the span carries it) and copied
/// onto the response last. A caller's own `x-request-id` is kept.
pub(crate) fn around(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(
                TraceLayer::new_for_http()
                    .make_span_with(make_span)
                    .on_request(())
                    .on_response(on_response)
                    // Failures are logged once, with their cause, where they become answers.
                    .on_failure(()),
            )
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

/// Field names follow the OpenTelemetry HTTP conventions so the telemetry layer exports them
/// as they are. Only method, route and id: never the query, headers or body.
fn make_span(request: &Request<Body>) -> Span {
    let method = request.method().as_str();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "http request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = method,
        http.route = route,
        request_id,
        http.response.status_code = Empty,
    )
}

fn on_response(response: &Response, latency: Duration, span: &Span) {
    let status = response.status().as_u16();
    span.record("http.response.status_code", status);
    tracing::info!(
        status,
        latency_ms = latency.as_secs_f64() * 1000.0,
        "request finished"
    );
}
