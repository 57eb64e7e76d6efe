//! OpenTelemetry for every gRPC call: a SERVER span named after the fully qualified method that
//! continues the caller's `traceparent` metadata and lasts until the call's status is sent (the
//! end of the stream for `WatchCase`/`WatchCases`), and `rpc.server.call.duration`.
//!
//! A tower layer rather than tonic's `trace_fn`: the status of a call is only known from the
//! `grpc-status` trailer, which `trace_fn`'s span never sees for streams.
//!
//! The SERVER span is trace-only ([`TRACE_ONLY`]): log lines get a call's context from the
//! method's own span under it (`get_case`, `watch_case`, ... with the request's key fields),
//! whose name says as much as this span's fields. With export off the SERVER span is not made
//! at all. Formatted for the log layer, it was made, entered on every poll of the call and
//! closed for every call: closing it was about 5 % of the service's CPU in a fan-out of one
//! change to 10 000 WatchCase streams, whose calls all end with it (perf, `verdict-bench
//! watch`, 10 000 streams on 50 connections). Its status is set on the OpenTelemetry span
//! directly (`set_attribute`), as it is known only when the call ends.

mod body;

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use tonic::Code;
use tonic::body::Body;
use tonic::codegen::Service;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tower::Layer;
use tracing::{Instrument as _, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use verdict_telemetry::{TRACE_ONLY, metrics::metrics, propagation};

pub(crate) use body::TracedBody;

/// The methods served, as `rpc.method` spells them; anything else is `_OTHER`, so a caller
/// cannot mint span names or metric series.
const METHODS: [&str; 11] = [
    "verdict.v1.CaseService/GetCase",
    "verdict.v1.CaseService/ListCases",
    "verdict.v1.CaseService/WatchCase",
    "verdict.v1.CaseService/WatchCases",
    "verdict.v1.AdminService/PurgeCase",
    "verdict.v1.AdminService/ListQuarantine",
    "verdict.v1.AdminService/ReprocessQuarantine",
    "grpc.health.v1.Health/Check",
    "grpc.health.v1.Health/Watch",
    "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Health checks come every few seconds from the orchestrator: they are measured but get no
/// span, which would bury the traces operators look for.
const UNTRACED_SERVICE: &str = "grpc.health.v1.Health/";

/// Wraps every service of the server in [`RpcTelemetry`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RpcTelemetryLayer;

impl<S> Layer<S> for RpcTelemetryLayer {
    type Service = RpcTelemetry<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTelemetry { inner }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub(crate) struct RpcTelemetry<S> {
    inner: S,
}

impl<S> Service<Request<Body>> for RpcTelemetry<S>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    S::Future: Send + 'static,
{
    type Response = Response<TracedBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let mut call = Call::start(request.uri().path(), request.headers());
        let response = self.inner.call(request).instrument(call.span.clone());
        Box::pin(async move {
            let response = match response.await {
                Ok(response) => response,
                Err(error) => {
                    call.finish(Code::Unknown);
                    return Err(error);
                }
            };
            // Trailers-only answers (every error before the first message) carry the status
            // in the headers; the others in the trailers at the end of the body.
            if let Some(code) = status_of(response.headers()) {
                call.finish(code);
            }
            Ok(response.map(|body| TracedBody::new(body, call)))
        })
    }
}

/// One call in flight: its span, its start, and whether its status was recorded.
#[derive(Debug)]
pub(crate) struct Call {
    method: &'static str,
    span: Span,
    started: Instant,
    finished: bool,
}

impl Call {
    fn start(path: &str, headers: &HeaderMap) -> Self {
        let method = method_of(path);
        let span = if method.starts_with(UNTRACED_SERVICE) {
            Span::none()
        } else {
            tracing::info_span!(
                target: TRACE_ONLY,
                "grpc request",
                otel.name = method,
                otel.kind = "server",
                rpc.system.name = "grpc",
                rpc.method = method,
            )
        };
        // Before the span is first entered: afterwards its parent is fixed.
        propagation::set_parent(&span, propagation::extract(headers));
        Self {
            method,
            span,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Records the status once: on the OpenTelemetry span (an error for the codes semconv calls
    /// server errors) and in `rpc.server.call.duration`.
    pub(crate) fn finish(&mut self, code: Code) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let name = code_name(code);
        self.span.set_attribute("rpc.response.status_code", name);
        if is_server_error(code) {
            self.span.set_attribute("error.type", name);
            self.span
                .set_status(opentelemetry::trace::Status::error(""));
        }
        metrics().grpc_call(self.method, name, self.started.elapsed().as_secs_f64());
    }
}

impl Drop for Call {
    /// The response body was dropped before its trailers: the client went away.
    fn drop(&mut self) {
        self.finish(Code::Cancelled);
    }
}

fn method_of(path: &str) -> &'static str {
    let path = path.strip_prefix('/').unwrap_or(path);
    METHODS
        .iter()
        .find(|method| **method == path)
        .copied()
        .unwrap_or("_OTHER")
}

/// The `grpc-status` of headers or trailers, when present.
pub(crate) fn status_of(headers: &HeaderMap) -> Option<Code> {
    headers
        .get("grpc-status")
        .map(|value| Code::from_bytes(value.as_bytes()))
}

/// Server errors per the gRPC semantic conventions; client mistakes (`NOT_FOUND`,
/// `INVALID_ARGUMENT`, ...) leave the span unset.
fn is_server_error(code: Code) -> bool {
    match code {
        Code::Unknown
        | Code::DeadlineExceeded
        | Code::Unimplemented
        | Code::Internal
        | Code::Unavailable
        | Code::DataLoss => true,
        Code::Ok
        | Code::Cancelled
        | Code::InvalidArgument
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unauthenticated => false,
    }
}

/// `rpc.response.status_code` as semconv 1.42 spells it.
fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_fully_qualified_and_unknown_ones_other() {
        assert_eq!(
            method_of("/verdict.v1.CaseService/GetCase"),
            "verdict.v1.CaseService/GetCase"
        );
        assert_eq!(
            method_of("/verdict.v1.AdminService/PurgeCase"),
            "verdict.v1.AdminService/PurgeCase"
        );
        assert_eq!(method_of("/verdict.v1.CaseService/Nope"), "_OTHER");
        assert_eq!(method_of(""), "_OTHER");
    }

    #[test]
    fn status_comes_from_the_grpc_status_header() {
        let mut headers = HeaderMap::new();
        assert_eq!(status_of(&headers), None);
        headers.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(status_of(&headers), Some(Code::NotFound));
        assert_eq!(code_name(Code::NotFound), "NOT_FOUND");
    }

    /// The status reaches the exported span even though it is no longer a tracing field.
    #[test]
    fn the_status_is_on_the_exported_span_and_server_errors_mark_it_failed() {
        use opentelemetry::Value;
        use opentelemetry::trace::Status;

        let capture = verdict_telemetry::testing::SpanCapture::install();
        for (path, code) in [
            ("/verdict.v1.CaseService/GetCase", Code::NotFound),
            ("/verdict.v1.CaseService/WatchCase", Code::Unavailable),
        ] {
            let mut call = Call::start(path, &HeaderMap::new());
            call.finish(code);
            // A second status (the body dropped after its trailers) changes nothing.
            call.finish(Code::Cancelled);
        }
        let spans = capture.finished_spans();
        let attribute = |name: &str, key: &str| {
            let span = spans
                .iter()
                .find(|span| span.name == name)
                .unwrap_or_else(|| panic!("no span {name}"));
            let value = span
                .attributes
                .iter()
                .find(|kv| kv.key.as_str() == key)
                .map(|kv| kv.value.clone());
            (value, span.status.clone())
        };
        let (code, status) =
            attribute("verdict.v1.CaseService/GetCase", "rpc.response.status_code");
        assert_eq!(code, Some(Value::from("NOT_FOUND")));
        assert_eq!(status, Status::Unset, "a client's mistake is not a failure");
        let (error, _) = attribute("verdict.v1.CaseService/GetCase", "error.type");
        assert_eq!(error, None);
        let (code, status) = attribute(
            "verdict.v1.CaseService/WatchCase",
            "rpc.response.status_code",
        );
        assert_eq!(code, Some(Value::from("UNAVAILABLE")));
        assert_eq!(status, Status::error(""));
        let (error, _) = attribute("verdict.v1.CaseService/WatchCase", "error.type");
        assert_eq!(error, Some(Value::from("UNAVAILABLE")));
    }

    #[test]
    fn only_server_side_codes_are_errors() {
        assert!(is_server_error(Code::Unavailable));
        assert!(!is_server_error(Code::NotFound));
        assert!(!is_server_error(Code::Ok));
    }
}
