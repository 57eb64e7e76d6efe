//! Reading spans received over OTLP.

use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use verdict_telemetry::testing::{Span, hex_id};

/// The one span named `name`.
pub(crate) fn named<'a>(spans: &'a [Span], name: &str) -> &'a Span {
    let matching: Vec<&Span> = spans.iter().filter(|s| s.name == name).collect();
    match matching.as_slice() {
        [span] => span,
        _ => panic!(
            "expected one span {name:?}, found {}; all: {:?}",
            matching.len(),
            names(spans)
        ),
    }
}

/// Every span name, for failure messages.
pub(crate) fn names(spans: &[Span]) -> Vec<&str> {
    spans.iter().map(|s| s.name.as_str()).collect()
}

/// Whether spans named `names` have all arrived.
pub(crate) fn has_all(spans: &[Span], names: &[&str]) -> bool {
    names
        .iter()
        .all(|name| spans.iter().any(|span| span.name == *name))
}

/// An attribute as text (numbers and booleans formatted), when present.
pub(crate) fn attr(span: &Span, key: &str) -> Option<String> {
    let value = span
        .attributes
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// Asserts `span` has each `(key, value)` attribute.
pub(crate) fn assert_attrs(span: &Span, expected: &[(&str, &str)]) {
    for (key, value) in expected {
        assert_eq!(
            attr(span, key).as_deref(),
            Some(*value),
            "{key} of {}",
            span.name
        );
    }
}

/// Asserts `child` is a child of `parent` in the same trace.
pub(crate) fn assert_child_of(child: &Span, parent: &Span) {
    assert_eq!(
        hex_id(&child.trace_id),
        hex_id(&parent.trace_id),
        "{} is in the trace of {}",
        child.name,
        parent.name
    );
    assert_eq!(
        hex_id(&child.parent_span_id),
        hex_id(&parent.span_id),
        "{} is a child of {}",
        child.name,
        parent.name
    );
}

/// Asserts the span's kind.
pub(crate) fn assert_kind(span: &Span, kind: SpanKind) {
    assert_eq!(span.kind, kind as i32, "kind of {}", span.name);
}
