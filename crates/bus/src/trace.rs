//! The bus's OpenTelemetry spans: a PRODUCER span per publish and a CONSUMER span per message
//! received from Redis, linked through the `traceparent` the notification carries.
//!
//! The notification handed to a hub carries the context of the span that handled it (the
//! producer span locally, the consumer span on other replicas), so a watcher's delivery span
//! becomes its child: webhook request → `send …` → `process …` → delivery, one trace.

use tracing::Span;
use tracing::field::Empty;
use verdict_domain::Notification;
use verdict_telemetry::{TRACE_ONLY, propagation};

/// `messaging.system` of the in-process hub (no registered value exists for it).
pub(crate) const HUB_SYSTEM: &str = "verdict_hub";
/// `messaging.destination.name` of the in-process hub.
pub(crate) const HUB_DESTINATION: &str = "hub";
/// `messaging.system` of Redis pub/sub (no registered value exists; semconv suggests a custom one).
pub(crate) const REDIS_SYSTEM: &str = "redis";

/// The PRODUCER span `send {destination}` of one notification, a child of the current span (the
/// webhook request).
pub(crate) fn producer(system: &'static str, destination: &str, n: &Notification) -> Span {
    tracing::info_span!(
        target: TRACE_ONLY,
        "bus.send",
        otel.name = format!("send {destination}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = system,
        messaging.operation.type = "send",
        messaging.operation.name = "publish",
        messaging.destination.name = destination,
        error.type = Empty,
        scan_ref = %n.scan_ref,
        revision = i64::try_from(n.revision).unwrap_or(i64::MAX),
    )
}

/// The CONSUMER span `process {channel}` of one message from another replica, a child of the
/// producer span whose context the message carries (a root when it carries none).
pub(crate) fn consumer(channel: &str, n: &Notification) -> Span {
    let span = tracing::info_span!(
        target: TRACE_ONLY,
        "bus.process",
        otel.name = format!("process {channel}"),
        otel.kind = "consumer",
        messaging.system = REDIS_SYSTEM,
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = channel,
        scan_ref = %n.scan_ref,
        revision = i64::try_from(n.revision).unwrap_or(i64::MAX),
    );
    if let Some(traceparent) = &n.traceparent {
        propagation::set_parent_from_traceparent(&span, traceparent);
    }
    span
}

/// `n` carrying `span`'s context instead of its own, so what it reaches joins `span`; unchanged
/// when `span` has no OpenTelemetry context (export off).
pub(crate) fn carried_by(span: &Span, n: &Notification) -> Notification {
    let mut n = n.clone();
    if let Some(traceparent) = span.in_scope(propagation::current_traceparent) {
        n.traceparent = Some(traceparent);
    }
    n
}

/// Marks a failed publish on its span, with a low-cardinality `error.type`.
pub(crate) fn record_error(span: &Span, kind: &'static str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}

#[cfg(test)]
mod tests {
    use verdict_domain::Cursor;
    use verdict_telemetry::testing::SpanCapture;

    use super::*;

    #[test]
    fn producer_and_consumer_spans_chain_through_the_carried_traceparent() {
        let capture = SpanCapture::install();
        let request = tracing::info_span!("request");
        let n = Notification {
            scan_ref: "scan-1".to_owned(),
            revision: 2,
            position: Cursor(5),
            traceparent: request.in_scope(propagation::current_traceparent),
            committed: None,
        };
        let sent = request.in_scope(|| {
            let span = producer(REDIS_SYSTEM, "chan", &n);
            carried_by(&span, &n)
        });
        let received = carried_by(&consumer("chan", &sent), &sent);
        drop(request);

        let spans = capture.finished_spans();
        let find = |name: &str| {
            spans
                .iter()
                .find(|s| s.name == name)
                .unwrap_or_else(|| panic!("{name} in {spans:?}"))
        };
        let (request, send, process) = (find("request"), find("send chan"), find("process chan"));
        assert_eq!(send.parent_span_id, request.span_context.span_id());
        assert_eq!(process.parent_span_id, send.span_context.span_id());
        assert_eq!(
            process.span_context.trace_id(),
            request.span_context.trace_id()
        );
        assert_eq!(send.span_kind, opentelemetry::trace::SpanKind::Producer);
        assert_eq!(process.span_kind, opentelemetry::trace::SpanKind::Consumer);
        let traceparent = received.traceparent.expect("carried");
        assert!(traceparent.contains(&process.span_context.span_id().to_string()));
    }

    #[test]
    fn without_export_the_notification_is_unchanged() {
        let n = Notification {
            scan_ref: "scan-1".to_owned(),
            revision: 1,
            position: Cursor(1),
            traceparent: Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into()),
            committed: None,
        };
        let span = producer(HUB_SYSTEM, HUB_DESTINATION, &n);
        assert_eq!(carried_by(&span, &n), n);
    }
}
