use http::{HeaderMap, HeaderValue};
use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_subscriber::layer::SubscriberExt as _;

use super::*;

const REMOTE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Runs `f` under a thread-local subscriber that bridges Verdict's spans to an in-memory
/// exporter, then returns the finished spans.
fn with_spans(f: impl FnOnce()) -> Vec<SpanData> {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(crate::traces::layer(&provider));
    tracing::subscriber::with_default(subscriber, f);
    provider.force_flush().expect("flush");
    exporter.get_finished_spans().expect("finished spans")
}

fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"))
}

#[test]
fn delivery_span_joins_the_trace_of_a_stored_traceparent() {
    let mut stored = None;
    let spans = with_spans(|| {
        let webhook = tracing::info_span!("webhook");
        stored = webhook.in_scope(current_traceparent);
        drop(webhook);

        let delivery = tracing::info_span!("delivery");
        set_parent_from_traceparent(&delivery, stored.as_deref().expect("traceparent"));
        delivery.in_scope(|| {});
    });

    let traceparent = stored.expect("traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00");
    assert_eq!(parts[3], "01", "sampled flag");

    let webhook = named(&spans, "webhook");
    let delivery = named(&spans, "delivery");
    assert_eq!(parts[1], webhook.span_context.trace_id().to_string());
    assert_eq!(parts[2], webhook.span_context.span_id().to_string());
    assert_eq!(
        delivery.span_context.trace_id().to_string(),
        parts[1],
        "delivery shares the webhook's trace"
    );
    assert_eq!(delivery.parent_span_id, webhook.span_context.span_id());
}

#[test]
fn invalid_traceparent_leaves_the_span_a_root() {
    let spans = with_spans(|| {
        let delivery = tracing::info_span!("delivery");
        set_parent_from_traceparent(&delivery, "00-not-a-trace-01");
        delivery.in_scope(|| {});
    });
    assert_eq!(named(&spans, "delivery").parent_span_id, SpanId::INVALID);
}

#[test]
fn no_traceparent_without_an_opentelemetry_layer() {
    let subscriber = tracing_subscriber::registry();
    tracing::subscriber::with_default(subscriber, || {
        let span = tracing::info_span!("plain");
        assert_eq!(span.in_scope(current_traceparent), None);
        // Setting a parent is a silent no-op.
        set_parent_from_traceparent(&span, REMOTE);
    });
}

#[test]
fn extract_reads_traceparent_from_headers() {
    install_propagator();
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static(REMOTE));
    let cx = extract(&headers);
    let span_cx = cx.span().span_context().clone();
    assert!(span_cx.is_valid() && span_cx.is_remote() && span_cx.is_sampled());
    assert_eq!(
        span_cx.trace_id(),
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex")
    );
    assert_eq!(
        span_cx.span_id(),
        SpanId::from_hex("00f067aa0ba902b7").expect("hex")
    );

    assert!(!extract(&HeaderMap::new()).span().span_context().is_valid());
}

#[test]
fn server_span_continues_an_extracted_remote_parent() {
    install_propagator();
    let mut headers = HeaderMap::new();
    headers.insert("traceparent", HeaderValue::from_static(REMOTE));
    let spans = with_spans(|| {
        let server = tracing::info_span!("server");
        set_parent(&server, extract(&headers));
        let child_traceparent = server.in_scope(current_traceparent).expect("traceparent");
        assert!(child_traceparent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
    });
    let server = named(&spans, "server");
    assert_eq!(
        server.parent_span_id,
        SpanId::from_hex("00f067aa0ba902b7").expect("hex")
    );
}
