//! Test support for the crates and end-to-end tests that check Verdict's traces (feature
//! `testing`, off by default).
//!
//! - [`OtlpReceiver`]: a real OTLP/gRPC trace endpoint on `127.0.0.1:0`, to point
//!   `OTEL_EXPORTER_OTLP_ENDPOINT` (or an exporter) at and assert on what arrives over the wire.
//! - [`SpanCapture`]: the production span bridge into an in-memory exporter, scoped to the
//!   current thread, for in-process tests of span structure without a network hop.

mod capture;
mod receiver;

pub use capture::SpanCapture;
pub use opentelemetry_proto::tonic::trace::v1::Span;
pub use receiver::OtlpReceiver;

/// Lower-case hex of an OTLP id (`trace_id`, `span_id`, `parent_span_id`), the form used in a
/// `traceparent`, so a received span can be compared with a stored one.
pub fn hex_id(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
