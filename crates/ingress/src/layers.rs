//! What wraps every route: a request id, one OpenTelemetry SERVER span and one access line per
//! request.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use http::header::AsHeaderName;
use http::uri::Authority;
use http::{HeaderMap, HeaderName, Version, header};
use tower::ServiceBuilder;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tracing::field::Empty;
use tracing::{Instrument, Span};
use verdict_telemetry::{metrics::metrics, propagation};

use crate::access_log::{self, Refusal};

/// Methods kept as they are in span names and attributes; others become `_OTHER` (semconv), so
/// a client cannot put arbitrary text into span names.
const KNOWN_METHODS: [&str; 9] = [
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE",
];

/// The request id's header, as `SetRequestIdLayer::x_request_id` names it. A name rather than a
/// string: a lookup by `&str` parses and hashes the name again on every request.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Outermost first: the id is set before the span is made (so the span carries it) and copied
/// onto the response last. A caller's own `x-request-id` is kept.
pub(crate) fn around(router: Router) -> Router {
    router.layer(
        ServiceBuilder::new()
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(middleware::from_fn(trace_request))
            .layer(PropagateRequestIdLayer::x_request_id()),
    )
}

/// Runs the request inside its span (extractors and handler included, so work spawned
/// `in_current_span` and the traceparent stored with a delivery belong to it), then records the
/// status on the span and the duration in `http.server.request.duration`, and writes the access
/// line.
async fn trace_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = known_method(request.method().as_str());
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned());
    let span = request_span(&request, method, route.as_deref());
    // Before the span is first entered: afterwards its parent is fixed.
    propagation::set_parent(&span, propagation::extract(request.headers()));

    let response = next.run(request).instrument(span.clone()).await;

    let status = response.status().as_u16();
    // i64: the OpenTelemetry bridge exports unsigned integers as strings.
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        span.record("error.type", status.to_string().as_str());
        span.record("otel.status_code", "error");
    }
    let seconds = started.elapsed().as_secs_f64();
    metrics().http_request(
        method,
        route.as_deref().unwrap_or_default(),
        status,
        seconds,
    );
    let refusal = response.extensions().get::<Refusal>();
    span.in_scope(|| access_log::write(status, seconds, refusal));
    response
}

/// The span, named `{method} {route}` (just `{method}` when no route matched, so unmatched paths
/// cannot create new span names), with the OpenTelemetry HTTP server attributes.
///
/// Only the method, route, path, protocol, addresses, user agent and request id: never the
/// query, other headers or the body, which carry signatures and personal data.
fn request_span(request: &Request, method: &'static str, route: Option<&str>) -> Span {
    let headers = request.headers();
    let request_id = header_str(headers, &X_REQUEST_ID).unwrap_or_default();
    let server = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| host.parse::<Authority>().ok())
        .or_else(|| request.uri().authority().cloned());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string());
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let span = tracing::info_span!(
        "http request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = Empty,
        http.request.method = method,
        http.route = route,
        url.path = request.uri().path(),
        url.scheme = "http",
        network.protocol.version = protocol_version(request.version()),
        server.address = server.as_ref().map(Authority::host),
        server.port = server.as_ref().and_then(Authority::port_u16).map(i64::from),
        client.address = client,
        user_agent.original = header_str(headers, header::USER_AGENT),
        request_id,
        http.response.status_code = Empty,
        error.type = Empty,
        scan_ref = Empty,
        revision = Empty,
    );
    span
}

fn known_method(method: &str) -> &'static str {
    KNOWN_METHODS
        .iter()
        .find(|known| **known == method)
        .copied()
        .unwrap_or("_OTHER")
}

fn protocol_version(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "0.9",
        Version::HTTP_10 => "1.0",
        Version::HTTP_2 => "2",
        Version::HTTP_3 => "3",
        _ => "1.1",
    }
}

fn header_str(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(known_method("POST"), "POST");
        assert_eq!(known_method("post"), "_OTHER");
        assert_eq!(known_method("BREW"), "_OTHER");
    }

    #[test]
    fn protocol_versions_are_spelled_as_semconv_wants() {
        assert_eq!(protocol_version(Version::HTTP_11), "1.1");
        assert_eq!(protocol_version(Version::HTTP_2), "2");
    }
}
