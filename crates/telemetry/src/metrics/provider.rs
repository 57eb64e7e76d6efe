//! The one process-wide meter provider behind [`super::metrics`] and `/metrics`.

use std::sync::OnceLock;

use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry_otlp::MetricExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};

use crate::Error;

/// The provider, the meter the instruments come from, and the registry `/metrics` gathers.
#[derive(Debug)]
pub(super) struct MeterCore {
    provider: SdkMeterProvider,
    pub(super) meter: Meter,
    pub(super) registry: prometheus::Registry,
}

static CORE: OnceLock<MeterCore> = OnceLock::new();

/// The provider, built Prometheus-only with the default resource if `init` has not built it.
pub(super) fn core() -> &'static MeterCore {
    CORE.get_or_init(|| build(crate::resource::build(crate::SERVICE_NAME_DEFAULT), None))
}

/// Builds the provider from `init`, attaching the OTLP reader when one is given.
///
/// Fails only when an OTLP reader is given but the provider already exists without it.
pub(crate) fn install(
    resource: Resource,
    otlp: Option<PeriodicReader<MetricExporter>>,
) -> Result<(), Error> {
    let wants_otlp = otlp.is_some();
    let mut built_here = false;
    CORE.get_or_init(|| {
        built_here = true;
        build(resource, otlp)
    });
    if wants_otlp && !built_here {
        return Err(Error::MetricsStartedBeforeInit);
    }
    Ok(())
}

/// Flushes and stops the OTLP reader; only the guard of an `init` that attached one calls this.
pub(crate) fn shutdown() {
    if let Some(core) = CORE.get()
        && let Err(error) = core.provider.shutdown()
    {
        tracing::warn!(error = %error, "meter provider shutdown failed");
    }
}

fn build(resource: Resource, otlp: Option<PeriodicReader<MetricExporter>>) -> MeterCore {
    let registry = prometheus::Registry::new();
    let mut builder = SdkMeterProvider::builder().with_resource(resource);
    // Registering into a registry nobody else has seen cannot collide; if the exporter still
    // refuses, metrics keep working over OTLP and `/metrics` is empty rather than the process
    // failing.
    match opentelemetry_prometheus::exporter()
        .with_registry(registry.clone())
        .scope_info_enabled(false)
        .build()
    {
        Ok(exporter) => builder = builder.with_reader(exporter),
        Err(error) => tracing::error!(error = %error, "cannot build the prometheus exporter"),
    }
    if let Some(reader) = otlp {
        builder = builder.with_reader(reader);
    }
    let provider = builder.build();
    // Libraries that record through the global meter land in the same registry.
    opentelemetry::global::set_meter_provider(provider.clone());
    MeterCore {
        meter: provider.meter(super::METER_NAME),
        provider,
        registry,
    }
}
