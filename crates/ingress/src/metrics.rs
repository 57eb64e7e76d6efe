//! The ingress's counters, recorded through the global OpenTelemetry meter so whatever provider
//! the telemetry crate installs (Prometheus, OTLP) exports them; without one they cost nothing.

use opentelemetry::KeyValue;
use opentelemetry::metrics::Counter;

/// Instruments built once per router.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    deliveries: Counter<u64>,
    signature_failures: Counter<u64>,
    publish_failures: Counter<u64>,
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let meter = opentelemetry::global::meter("verdict-ingress");
        Self {
            deliveries: meter
                .u64_counter("verdict.webhook.deliveries")
                .with_description("signed webhooks answered 200, by outcome")
                .build(),
            signature_failures: meter
                .u64_counter("verdict.webhook.signature_failures")
                .with_description("webhooks refused for a missing, malformed or wrong signature")
                .build(),
            publish_failures: meter
                .u64_counter("verdict.bus.publish_failures")
                .with_description("change notifications that failed or timed out after commit")
                .build(),
        }
    }

    /// `outcome` is `applied`, `duplicate`, `stale` or `quarantined`.
    pub(crate) fn delivery(&self, outcome: &'static str) {
        self.deliveries.add(1, &[KeyValue::new("outcome", outcome)]);
    }

    pub(crate) fn signature_failure(&self) {
        self.signature_failures.add(1, &[]);
    }

    pub(crate) fn publish_failure(&self) {
        self.publish_failures.add(1, &[]);
    }
}
