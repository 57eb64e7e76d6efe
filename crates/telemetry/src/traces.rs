//! The OTLP span pipeline: tracer provider, batch exporter, and the tracing bridge layer.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

use crate::Error;

/// Instrumentation scope of Verdict's spans.
pub const TRACER_NAME: &str = "verdict";

/// The target of the spans that exist only to draw a trace: one per database transaction, bus
/// hop and watcher delivery, and each gRPC call's SERVER span, whose method span below it gives
/// log lines the call's context (`info_span!(target: TRACE_ONLY, …)`).
///
/// They are exported like every `verdict*` span, but the log layer never sees them: the fmt
/// layer formats every span it is interested in when the span is made, and these are made per
/// webhook and per delivery (ten thousand for one change with ten thousand watchers) while no
/// line is ever written inside them. So with export off they cost nothing at all (no layer
/// wants them), and log lines keep the context that matters: the HTTP request's span and each
/// gRPC method's (a stream's, for the watches), which name the case too.
pub const TRACE_ONLY: &str = "verdict_trace";

/// A provider exporting through OTLP/gRPC in batches, configured by the `OTEL_EXPORTER_OTLP_*`,
/// `OTEL_BSP_*` and `OTEL_TRACES_SAMPLER*` variables. The batch processor runs on its own
/// thread; the gRPC channel runs on the current Tokio runtime.
pub(crate) fn otlp_provider(resource: Resource) -> Result<SdkTracerProvider, Error> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
        .map_err(Error::SpanExporter)?;
    Ok(SdkTracerProvider::builder()
        .with_resource(resource)
        .with_batch_exporter(exporter)
        .build())
}

/// The tracing → OpenTelemetry layer with its own filter.
///
/// The filter ignores `RUST_LOG` so quieting logs never drops spans, and admits only Verdict's
/// crates (every `verdict*` target) at `info`: dependency spans (h2, hyper, tonic, the exporter's
/// own gRPC calls) would add noise, and the exporter's would loop back into the exporter.
pub(crate) fn layer<S>(provider: &SdkTracerProvider) -> impl Layer<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(TRACER_NAME))
        .with_filter(span_filter())
}

/// Which spans become OpenTelemetry spans.
pub(crate) fn span_filter() -> Targets {
    Targets::new().with_target("verdict", Level::INFO)
}
