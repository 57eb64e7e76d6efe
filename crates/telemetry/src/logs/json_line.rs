//! One JSON log line: the event as `tracing-subscriber`'s JSON format writes it, the ids of its
//! trace in front, and the spans it happened in at the end, copied from their stored text.
//!
//! `tracing-subscriber` writes the span list by parsing each span's stored fields (the JSON
//! object [`super::json_fields`] keeps) into a map of `serde_json` values and serialising the map
//! again, for every line. A webhook writes two lines inside its request span (sixteen fields):
//! the parsing and writing again were 68 000 of the 106 000 instructions its logging cost
//! (callgrind, 200 sequential webhooks), all before the webhook is answered. The stored text is
//! already the JSON of the span's fields, each field once ([`super::json_fields`] replaces a
//! field recorded again), so it is copied as it is, with the span's name after it. The members
//! come in the order they were recorded rather than sorted: JSON objects have no order.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use super::json_fields::push_escaped;
use super::trace_ids::DispatchSlot;

/// Wraps the JSON event format, set up without spans: adds the trace ids of the innermost traced
/// span (lines outside any, or with OTLP off, have none) and the list of spans.
#[derive(Debug)]
pub(super) struct JsonLine<F> {
    inner: F,
    dispatch: DispatchSlot,
}

impl<F> JsonLine<F> {
    pub(super) fn new(inner: F, dispatch: DispatchSlot) -> Self {
        Self { inner, dispatch }
    }
}

impl<S, N, F> FormatEvent<S, N> for JsonLine<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::with_capacity(1024);
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        add_spans(&mut line, ctx, event)?;
        match (
            self.dispatch.innermost_traced(event),
            line.strip_prefix('{'),
        ) {
            (Some(span_cx), Some(rest)) if !rest.starts_with('}') => {
                write!(
                    writer,
                    "{{\"trace_id\":\"{}\",\"span_id\":\"{}\",{rest}",
                    span_cx.trace_id(),
                    span_cx.span_id()
                )
            }
            _ => writer.write_str(&line),
        }
    }
}

/// Adds `"spans":[…]` as the last member of `line` (one JSON object and a newline), as
/// `tracing-subscriber` would with its span list on: present when the event has a span, listing
/// the current span and those around it, from the root, each as its fields and its `name`. The
/// spans this layer's filter hides are not in `ctx`, so not listed.
fn add_spans<S, N>(line: &mut String, ctx: &FmtContext<'_, S, N>, event: &Event<'_>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let in_a_span =
        event.parent().and_then(|id| ctx.span(id)).is_some() || ctx.lookup_current().is_some();
    if !in_a_span {
        return Ok(());
    }
    let Some(object) = line.strip_suffix("}\n") else {
        return Err(fmt::Error);
    };
    line.truncate(object.len());
    line.push_str(",\"spans\":[");
    if let Some(current) = ctx.lookup_current() {
        for (i, span) in current.scope().from_root().enumerate() {
            if i > 0 {
                line.push(',');
            }
            line.push('{');
            let extensions = span.extensions();
            let members = extensions
                .get::<FormattedFields<N>>()
                .and_then(|stored| stored.fields.strip_prefix('{')?.strip_suffix('}'))
                .unwrap_or_default();
            if !members.is_empty() {
                line.push_str(members);
                line.push(',');
            }
            line.push_str("\"name\":\"");
            push_escaped(line, span.name());
            line.push_str("\"}");
        }
    }
    line.push_str("]}\n");
    Ok(())
}
