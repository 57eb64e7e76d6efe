//! Puts `trace_id` and `span_id` on JSON log lines, so a line leads to its trace and back.

use std::fmt;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::{LookupSpan, Registry};

/// The installed dispatcher, captured when the subscriber is registered.
///
/// The formatter needs it to ask the OpenTelemetry layer for a span's context, and it cannot
/// look it up while formatting: inside an event, `tracing::dispatcher::get_default` returns the
/// no-op dispatcher whenever a scoped (test) subscriber is in use.
#[derive(Debug, Clone, Default)]
pub(crate) struct DispatchSlot(Arc<OnceLock<WeakDispatch>>);

impl DispatchSlot {
    fn get(&self) -> Option<Dispatch> {
        self.0.get().and_then(WeakDispatch::upgrade)
    }
}

/// A layer that does nothing but fill a [`DispatchSlot`] when the subscriber is built.
impl<S: Subscriber> Layer<S> for DispatchSlot {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}

/// Wraps the JSON event format and prefixes each object with the ids of the innermost traced
/// span; lines outside any traced span (or with OTLP off) are written unchanged.
#[derive(Debug)]
pub(super) struct WithTraceIds<F> {
    inner: F,
    dispatch: DispatchSlot,
}

impl<F> WithTraceIds<F> {
    pub(super) fn new(inner: F, dispatch: DispatchSlot) -> Self {
        Self { inner, dispatch }
    }
}

impl<F> WithTraceIds<F> {
    /// The context of the innermost span around `event` that the OpenTelemetry layer traces.
    ///
    /// Walks the registry itself rather than the fmt context: the fmt layer's `RUST_LOG` filter
    /// may hide the very spans that carry the trace.
    fn innermost_traced(&self, event: &Event<'_>) -> Option<SpanContext> {
        let dispatch = self.dispatch.get()?;
        let registry = dispatch.downcast_ref::<Registry>()?;
        let leaf = if event.is_root() {
            return None;
        } else if let Some(parent) = event.parent() {
            parent.clone()
        } else {
            registry.current_span().id()?.clone()
        };
        registry.span(&leaf)?.scope().find_map(|span| {
            let cx = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let span_cx = cx.span().span_context().clone();
            span_cx.is_valid().then_some(span_cx)
        })
    }
}

impl<S, N, F> FormatEvent<S, N> for WithTraceIds<F>
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
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        match (self.innermost_traced(event), line.strip_prefix('{')) {
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
