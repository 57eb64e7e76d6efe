//! In-memory span capture with the production span filter.

use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::subscriber::DefaultGuard;
use tracing_subscriber::layer::SubscriberExt as _;

/// Captures the spans Verdict's code creates on the current thread, as OTLP export would see
/// them (same tracing bridge, same `verdict*`-at-`info` filter), and installs the W3C propagator
/// so [`crate::propagation::extract`] works without `init`.
///
/// The subscriber is thread-local: use it with `#[tokio::test]` (current-thread runtime) or
/// synchronous code; spans created on other threads are not captured.
#[derive(Debug)]
pub struct SpanCapture {
    exporter: InMemorySpanExporter,
    provider: SdkTracerProvider,
    _default: DefaultGuard,
}

impl SpanCapture {
    /// Installs the capture as the current thread's default subscriber until dropped.
    pub fn install() -> Self {
        crate::propagation::install_propagator();
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let subscriber = tracing_subscriber::registry().with(crate::traces::layer(&provider));
        Self {
            _default: tracing::subscriber::set_default(subscriber),
            exporter,
            provider,
        }
    }

    /// Every span that has ended so far.
    ///
    /// # Panics
    /// If the in-memory exporter was shut down, which only this type could do.
    pub fn finished_spans(&self) -> Vec<SpanData> {
        let _ = self.provider.force_flush();
        self.exporter
            .get_finished_spans()
            .expect("in-memory exporter is alive")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_only_verdict_spans() {
        let capture = SpanCapture::install();
        tracing::info_span!("ours").in_scope(|| {
            tracing::info_span!(target: "h2::codec", "theirs").in_scope(|| {});
            tracing::info_span!(target: crate::TRACE_ONLY, "for traces").in_scope(|| {});
        });
        let names: Vec<String> = capture
            .finished_spans()
            .into_iter()
            .map(|span| span.name.into_owned())
            .collect();
        assert_eq!(names, ["for traces", "ours"]);
    }
}
