//! The trace behind a log line: `trace_id` and `span_id` on JSON lines ([`super::json_line`]),
//! so a line leads to its trace and back.

use std::sync::{Arc, OnceLock};

use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use tracing::dispatcher::WeakDispatch;
use tracing::{Dispatch, Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::registry::{LookupSpan as _, Registry};

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

    /// The context of the innermost span around `event` that the OpenTelemetry layer traces.
    ///
    /// Walks the registry itself rather than the fmt context: the fmt layer's `RUST_LOG` filter
    /// may hide the very spans that carry the trace.
    pub(super) fn innermost_traced(&self, event: &Event<'_>) -> Option<SpanContext> {
        let dispatch = self.get()?;
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

/// A layer that does nothing but fill a [`DispatchSlot`] when the subscriber is built.
impl<S: Subscriber> Layer<S> for DispatchSlot {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.0.set(subscriber.downgrade());
    }
}
