//! Startup: install the subscriber, the exporters and the propagator, once per process.

use opentelemetry_otlp::MetricExporter;
use opentelemetry_sdk::metrics::PeriodicReader;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::config::ExportPlan;
use crate::logs::DispatchSlot;
use crate::{Error, TelemetryConfig, TelemetryGuard, logs, metrics, propagation, resource, traces};

/// Installs the global tracing subscriber, the W3C propagator and the meter provider.
///
/// - Logs: the fmt layer (pretty or JSON with span fields and `trace_id`/`span_id`) on stdout,
///   filtered by `RUST_LOG` (default [`crate::DEFAULT_LOG_FILTER`]) as a per-layer filter.
/// - Traces: only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is
///   set (and neither `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`), an OTLP/gRPC
///   batch exporter behind its own filter (Verdict's crates at `info`), so `RUST_LOG` never
///   stops spans from being exported. Without an endpoint no OpenTelemetry layer is installed
///   at all: spans cost what plain `tracing` spans cost, and nothing dials out.
/// - Metrics: the Prometheus reader always (see [`crate::metrics`]), plus an OTLP/gRPC periodic
///   reader under the same conditions with the metrics variables.
/// - Resource: the SDK's (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`), with `service.name`
///   defaulting to `config.service_name_default`.
///
/// When OTLP export is on, call it inside the Tokio runtime that will outlive the guard: the
/// exporters' gRPC channel runs there.
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, Error> {
    let plan = ExportPlan::from_env();
    if (plan.traces || plan.metrics) && tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::NoRuntime);
    }
    let resource = resource::build(config.service_name_default);
    let tracer_provider = if plan.traces {
        Some(traces::otlp_provider(resource.clone())?)
    } else {
        None
    };
    let metric_reader = if plan.metrics {
        let exporter = MetricExporter::builder()
            .with_tonic()
            .build()
            .map_err(Error::MetricExporter)?;
        Some(PeriodicReader::builder(exporter).build())
    } else {
        None
    };

    let dispatch = DispatchSlot::default();
    let fmt = logs::layer(config.log_format, &dispatch)?;
    let subscriber = tracing_subscriber::registry()
        // Filtered to nothing: the slot only wants the dispatcher. An unfiltered layer counts as
        // interested in every callsite, and then every dependency's TRACE span (h2 makes several
        // per frame) was created in the registry even though no layer would ever see it.
        .with(dispatch.with_filter(LevelFilter::OFF))
        .with(fmt);
    // Two arms rather than an `Option` layer: a `None` layer counts as unfiltered too, and then a
    // span every filter refuses at a level some filter allows (a trace-only span, a dependency's
    // INFO span) was still made.
    match &tracer_provider {
        Some(provider) => subscriber.with(traces::layer(provider)).try_init(),
        None => subscriber.try_init(),
    }
    .map_err(Error::AlreadyInitialized)?;
    // After the subscriber, so a second `init` reports itself as such.
    metrics::install(resource, metric_reader)?;
    propagation::install_propagator();
    if let Some(provider) = &tracer_provider {
        opentelemetry::global::set_tracer_provider(provider.clone());
    }
    tracing::info!(
        otlp_traces = plan.traces,
        otlp_metrics = plan.metrics,
        "telemetry started"
    );
    Ok(TelemetryGuard::new(tracer_provider, plan.metrics))
}
