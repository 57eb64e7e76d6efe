//! Shutdown: the last thing the process does is push out what it still holds.

use opentelemetry_sdk::trace::SdkTracerProvider;
use tokio::runtime::{Handle, RuntimeFlavor};

/// Keeps the OTLP pipelines alive; [`shutdown`](Self::shutdown) (or drop) flushes and stops them.
#[derive(Debug)]
#[must_use = "dropping the guard shuts telemetry down at once"]
pub struct TelemetryGuard {
    tracer_provider: Option<SdkTracerProvider>,
    owns_otlp_metrics: bool,
}

impl TelemetryGuard {
    pub(crate) fn new(tracer_provider: Option<SdkTracerProvider>, owns_otlp_metrics: bool) -> Self {
        Self {
            tracer_provider,
            owns_otlp_metrics,
        }
    }

    /// Flushes pending spans and metrics to the collector and stops the exporters; call it last
    /// during shutdown, before the Tokio runtime stops (the export runs on it). Blocks for at
    /// most the exporters' timeouts. A no-op when OTLP export is off. After it, `/metrics` may be
    /// empty if OTLP metrics were on (the shared provider is shut down).
    pub fn shutdown(mut self) {
        self.flush_and_stop();
    }

    fn flush_and_stop(&mut self) {
        let tracer_provider = self.tracer_provider.take();
        let owns_otlp_metrics = std::mem::take(&mut self.owns_otlp_metrics);
        if tracer_provider.is_none() && !owns_otlp_metrics {
            return;
        }
        blocking(|| {
            if let Some(provider) = tracer_provider
                && let Err(error) = provider.shutdown()
            {
                tracing::warn!(error = %error, "tracer provider shutdown failed");
            }
            if owns_otlp_metrics {
                crate::metrics::shutdown();
            }
        });
    }
}

impl Drop for TelemetryGuard {
    /// Best effort, for early returns and panics that skip [`TelemetryGuard::shutdown`].
    fn drop(&mut self) {
        self.flush_and_stop();
    }
}

/// Runs the blocking shutdown without starving the runtime the gRPC export needs: on a
/// multi-thread runtime the worker is handed off first.
fn blocking(f: impl FnOnce()) {
    match Handle::try_current().map(|handle| handle.runtime_flavor()) {
        Ok(RuntimeFlavor::MultiThread) => tokio::task::block_in_place(f),
        _ => f(),
    }
}
