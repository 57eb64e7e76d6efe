//! Verdict's telemetry: logs on stdout, traces over OTLP, metrics for Prometheus and OTLP.
//!
//! The binary calls [`init`] once at startup and [`TelemetryGuard::shutdown`] last at shutdown.
//! Libraries only use `tracing` macros, [`metrics::metrics`] and [`propagation`]; none of them
//! needs `init` to have run (tests build several apps per process without it).
//!
//! Configuration is the standard one: `RUST_LOG` for the stdout logs, `OTEL_*` for the rest
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, ...), plus the
//! log format chosen in [`TelemetryConfig`].
#![forbid(unsafe_code)]

mod config;
mod error;
mod guard;
mod init;
mod logs;
pub mod metrics;
pub mod propagation;
mod resource;
#[cfg(feature = "testing")]
pub mod testing;
mod traces;

pub use config::{LogFormat, ParseLogFormatError, TelemetryConfig};
pub use error::Error;
pub use guard::TelemetryGuard;
pub use init::init;
pub use logs::DEFAULT_LOG_FILTER;
pub use traces::{TRACE_ONLY, TRACER_NAME};

/// `service.name` when the environment names none.
pub const SERVICE_NAME_DEFAULT: &str = "verdict";
