//! Why telemetry could not start.

/// Everything that can stop [`crate::init`]; each is a startup misconfiguration to fix, not a
/// condition to retry.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// `RUST_LOG` is set but is not a valid filter; failing beats silently logging everything.
    #[error("invalid RUST_LOG filter")]
    LogFilter(#[source] tracing_subscriber::filter::ParseError),
    /// A global tracing subscriber is already installed (init called twice, or a test installed
    /// one first).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInitialized(#[source] tracing_subscriber::util::TryInitError),
    /// OTLP export was requested outside a Tokio runtime; the gRPC channel needs one.
    #[error("OTLP export needs init to be called inside a Tokio runtime")]
    NoRuntime,
    /// The OTLP span exporter rejected its configuration (endpoint, headers, TLS, ...).
    #[error("cannot build the OTLP span exporter")]
    SpanExporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// The OTLP metric exporter rejected its configuration.
    #[error("cannot build the OTLP metric exporter")]
    MetricExporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// OTLP metrics were requested, but instruments were already recorded into the
    /// Prometheus-only provider (something called [`crate::metrics::metrics`] before init), so
    /// the OTLP reader can no longer be attached.
    #[error(
        "metrics were recorded before telemetry init; call init first to export them over OTLP"
    )]
    MetricsStartedBeforeInit,
}
