//! The `service.name` and other attributes every span and metric carries.

use opentelemetry::Key;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::resource::{EnvResourceDetector, ResourceDetector as _};
use opentelemetry_semantic_conventions::resource::SERVICE_NAME;

/// The SDK's resource (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, SDK attributes), with
/// `service.name = default_name` when neither variable names the service: the SDK's own fallback,
/// `unknown_service:<exe>`, would file Verdict's data under the test or binary file name.
pub(crate) fn build(default_name: &'static str) -> Resource {
    let builder = Resource::builder();
    let named = std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty())
        || EnvResourceDetector::new()
            .detect()
            .get(&Key::from_static_str(SERVICE_NAME))
            .is_some();
    if named {
        builder.build()
    } else {
        builder.with_service_name(default_name).build()
    }
}
