//! One change delivered to a watcher: its span in the webhook's trace, and the latency metric.

use chrono::{DateTime, Utc};
use opentelemetry::trace::TraceContextExt as _;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use verdict_domain::Case;
use verdict_telemetry::{TRACE_ONLY, metrics::metrics, propagation};

/// The span of sending one change to one stream, named `{method} deliver` (`WatchCase deliver`,
/// `WatchCases deliver`; never the scanRef, which is an attribute).
///
/// Its parent is the span whose `traceparent` came with the change (the webhook's request span,
/// or the bus span that carried it), so every watcher a webhook reached shows up in the
/// webhook's trace; it links to the stream's own span (the current span), whose trace is the
/// caller's. Without a traceparent (a change found by a periodic re-read, or written while
/// export was off) it is simply a child of the stream's span.
pub(crate) fn span(method: Method, case: &Case, traceparent: Option<&str>) -> Span {
    let stream = Span::current();
    let (name, rpc_method) = method.names();
    let span = tracing::info_span!(
        target: TRACE_ONLY,
        "watch deliver",
        otel.name = name,
        rpc.system.name = "grpc",
        rpc.method = rpc_method,
        scan_ref = %case.scan_ref,
        revision = i64::try_from(case.revision).unwrap_or(i64::MAX),
        is_final = case.is_final,
    );
    if let Some(traceparent) = traceparent {
        propagation::set_parent_from_traceparent(&span, traceparent);
        let stream_cx = stream.context().span().span_context().clone();
        if stream_cx.is_valid() {
            span.add_link(stream_cx);
        }
    }
    span
}

/// The streaming method a change is delivered on.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Method {
    WatchCase,
    WatchCases,
}

impl Method {
    /// The span name and `rpc.method`: static, since every delivery of every stream names them.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Self::WatchCase => ("WatchCase deliver", "verdict.v1.CaseService/WatchCase"),
            Self::WatchCases => ("WatchCases deliver", "verdict.v1.CaseService/WatchCases"),
        }
    }
}

/// Records `verdict.watch.delivery.duration` for a change delivered live.
///
/// The change's time is the case's `updated_at`: when the delivery that changed it was
/// received, just before its transaction (so the figure includes the few milliseconds of the
/// commit). Changes older than the stream (its initial snapshot, a catch-up from an old cursor)
/// measure the client's lag, not Verdict's, and are left out.
pub(crate) fn record_latency(changed_at: DateTime<Utc>, stream_opened_at: DateTime<Utc>) {
    if changed_at < stream_opened_at {
        return;
    }
    let seconds = (Utc::now() - changed_at).num_microseconds().unwrap_or(0) as f64 / 1e6;
    metrics().delivery_latency(seconds.max(0.0));
}
