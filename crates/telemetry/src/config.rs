//! What the binary tells telemetry, and what the standard `OTEL_*` variables switch on.

use std::fmt;
use std::str::FromStr;

/// How log lines are written to stdout.
///
/// Humans read `Pretty` in a terminal; log shippers parse `Json` (one object per line, with the
/// span fields and the trace id so a line can be found from its trace and back).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Single-line human-readable text, coloured when stdout is a terminal.
    #[default]
    Pretty,
    /// One JSON object per line.
    Json,
}

impl LogFormat {
    /// The spelling accepted by [`FromStr`], so `--help` and error messages agree with parsing.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Pretty => "pretty",
            Self::Json => "json",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `VERDICT_LOG_FORMAT` held a value that is neither `pretty` (alias `text`) nor `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?}, expected \"pretty\" or \"json\"")]
pub struct ParseLogFormatError(String);

impl FromStr for LogFormat {
    type Err = ParseLogFormatError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pretty" | "text" => Ok(Self::Pretty),
            "json" => Ok(Self::Json),
            _ => Err(ParseLogFormatError(s.to_owned())),
        }
    }
}

/// Everything [`crate::init`] needs from the binary's typed configuration.
///
/// The OTLP side is deliberately absent: it is configured by the standard `OTEL_*` variables,
/// which operators already know and the OpenTelemetry SDK already reads.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// Stdout log format (`VERDICT_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
    pub service_name_default: &'static str,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Pretty,
            service_name_default: crate::SERVICE_NAME_DEFAULT,
        }
    }
}

/// Which OTLP exporters to build, decided from the environment once at startup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ExportPlan {
    pub(crate) traces: bool,
    pub(crate) metrics: bool,
}

impl ExportPlan {
    /// Reads the process environment.
    pub(crate) fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Export only when an endpoint is named, so an unconfigured process never dials the SDK's
    /// default `localhost:4317`. `OTEL_SDK_DISABLED` and `OTEL_{TRACES,METRICS}_EXPORTER=none` are
    /// honoured here because the Rust SDK does not read them, yet operators expect them.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let set = |key: &str| lookup(key).is_some_and(|v| !v.trim().is_empty());
        let is = |key: &str, value: &str| {
            lookup(key).is_some_and(|v| v.trim().eq_ignore_ascii_case(value))
        };
        if is("OTEL_SDK_DISABLED", "true") {
            return Self {
                traces: false,
                metrics: false,
            };
        }
        let generic = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        Self {
            traces: (generic || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                && !is("OTEL_TRACES_EXPORTER", "none"),
            metrics: (generic || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
                && !is("OTEL_METRICS_EXPORTER", "none"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn plan(vars: &[(&str, &str)]) -> ExportPlan {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ExportPlan::from_lookup(|key| vars.get(key).cloned())
    }

    #[test]
    fn log_format_parses_both_spellings_and_rejects_others() {
        assert_eq!("json".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!(" JSON ".parse::<LogFormat>(), Ok(LogFormat::Json));
        assert_eq!("pretty".parse::<LogFormat>(), Ok(LogFormat::Pretty));
        assert_eq!("text".parse::<LogFormat>(), Ok(LogFormat::Pretty));
        assert!("yaml".parse::<LogFormat>().is_err());
        assert_eq!(
            LogFormat::Json.to_string().parse::<LogFormat>(),
            Ok(LogFormat::Json)
        );
    }

    #[test]
    fn nothing_is_exported_without_an_endpoint() {
        let none = ExportPlan {
            traces: false,
            metrics: false,
        };
        assert_eq!(plan(&[]), none);
        assert_eq!(plan(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), none);
        assert_eq!(plan(&[("OTEL_SERVICE_NAME", "verdict")]), none);
    }

    #[test]
    fn generic_endpoint_enables_both_signals() {
        let p = plan(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317")]);
        assert!(p.traces && p.metrics);
    }

    #[test]
    fn signal_endpoints_enable_only_their_signal() {
        let p = plan(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317")]);
        assert!(p.traces && !p.metrics);
        let p = plan(&[("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://c:4317")]);
        assert!(!p.traces && p.metrics);
    }

    #[test]
    fn sdk_disabled_and_exporter_none_switch_export_off() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4317");
        let p = plan(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]);
        assert!(!p.traces && !p.metrics);
        let p = plan(&[endpoint, ("OTEL_SDK_DISABLED", "false")]);
        assert!(p.traces && p.metrics);
        let p = plan(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]);
        assert!(!p.traces && p.metrics);
        let p = plan(&[endpoint, ("OTEL_METRICS_EXPORTER", "none")]);
        assert!(p.traces && !p.metrics);
    }
}
