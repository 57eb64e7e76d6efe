//! W3C trace context in and out: HTTP headers and gRPC metadata, and the `traceparent` string that
//! travels with a change notification (through Redis too) and is stored with a delivery.
//!
//! Everything here is a cheap no-op when OTLP export is off: spans then carry no OpenTelemetry
//! context, [`current_traceparent`] returns `None`, and setting a parent does nothing.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::{OpenTelemetrySpanExt as _, SetParentError};

const TRACEPARENT: &str = "traceparent";

/// Installs the W3C TraceContext propagator as the global one ([`crate::init`] does this).
///
/// Exposed for tests that do not call `init` but want [`extract`] to honour `traceparent`.
pub fn install_propagator() {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
}

/// The remote parent described by `traceparent`/`tracestate` in HTTP headers or tonic metadata
/// (`tonic::metadata::MetadataMap::as_ref()` is an `http::HeaderMap`), read with the global
/// propagator. An empty context when there is none, or when no propagator is installed.
pub fn extract(headers: &http::HeaderMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    })
}

/// The W3C `traceparent` of the current span, to store with a delivery and send in a notification.
///
/// `None` when the span has no valid OpenTelemetry context (OTLP off, or a span outside
/// Verdict's targets). An unsampled context is still returned: its flags carry the "not sampled"
/// decision downstream, where a fresh root would otherwise be sampled and orphaned.
pub fn current_traceparent() -> Option<String> {
    traceparent_of(&tracing::Span::current())
}

/// The W3C `traceparent` of `span`; see [`current_traceparent`].
pub fn traceparent_of(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::with_capacity(2);
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// Makes `span` a child of the span a stored `traceparent` describes (a watcher's delivery span
/// joins the webhook's trace). Invalid strings are ignored: a delivery is never refused over
/// telemetry. Call it before the span is first entered; see [`set_parent`].
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: &str) {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        set_parent(span, cx);
    } else {
        tracing::debug!("ignoring an invalid traceparent");
    }
}

/// Makes `span` a child of `cx` (typically from [`extract`]).
///
/// Must happen before the span is first entered (tracing-opentelemetry 0.34 starts the
/// OpenTelemetry span on entry, after which its parent is fixed); a late call is logged at debug
/// and otherwise ignored.
pub fn set_parent(span: &tracing::Span, cx: Context) {
    match span.set_parent(cx) {
        Ok(()) => {}
        // OTLP is off, or the span is outside the exported targets: nothing to link.
        Err(SetParentError::LayerNotFound | SetParentError::SpanDisabled) => {}
        Err(SetParentError::AlreadyStarted) => {
            tracing::debug!("span already started; remote parent not set");
        }
    }
}

#[cfg(test)]
mod tests;
