//! The service's metrics: one set of instruments, recorded through OpenTelemetry, scraped as
//! Prometheus text on `GET /metrics` and pushed over OTLP when configured.
//!
//! # Without `init`
//!
//! The instruments and the Prometheus registry do not depend on [`crate::init`]: the first call to
//! [`metrics()`] or [`render_prometheus()`] builds a process-wide meter provider with the
//! Prometheus reader if `init` has not already built one (with an OTLP reader too). Tests can thus
//! spawn several apps per process, with no global subscriber, and still scrape `/metrics`. The
//! provider is built once per process, so the values are process-wide: tests should assert on
//! what they recorded being *present*, not on exact totals.
//!
//! The one ordering rule: a binary that wants OTLP metrics calls `init` before anything records a
//! metric; otherwise `init` fails with [`crate::Error::MetricsStartedBeforeInit`] rather than
//! silently not exporting.
//!
//! # Labels
//!
//! Label values are `&'static str` on purpose: they must come from a small fixed set chosen in
//! code (an enum's name, a route template), never from a request. That keeps personal data and
//! unbounded values (names, document numbers, `scan_ref`s) out of every series.

mod instruments;
mod provider;

pub use instruments::Metrics;
pub(crate) use provider::{install, shutdown};

use std::sync::OnceLock;

/// The instruments, created on first use and shared by every caller in the process.
///
/// Recording is a few atomic operations on the Prometheus reader's aggregation, so calling it on
/// hot paths is fine whether or not an OTLP exporter is configured.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new(&provider::core().meter))
}

/// Everything recorded so far, in the Prometheus text exposition format, for `GET /metrics`.
///
/// Serve it with `Content-Type: text/plain; version=0.0.4`. Returns an empty string (and logs
/// the cause) in the unlikely case the registry cannot be encoded, so a scrape never fails the
/// process.
pub fn render_prometheus() -> String {
    // Make sure the instruments exist, so a scrape before the first request already lists them.
    let _ = metrics();
    let families = provider::core().registry.gather();
    match prometheus::TextEncoder::new().encode_to_string(&families) {
        Ok(text) => text,
        Err(error) => {
            tracing::error!(error = %error, "cannot encode prometheus metrics");
            String::new()
        }
    }
}

/// The instrumentation scope of every Verdict instrument.
pub const METER_NAME: &str = "verdict";

/// Content type of [`render_prometheus`]'s output, so the HTTP layer does not hard-code it.
pub const PROMETHEUS_CONTENT_TYPE: &str = prometheus::TEXT_FORMAT;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_prometheus_contains_recorded_counter() {
        metrics().webhook("idenfy.verification", "accepted");
        metrics().signature_failure("mismatch");
        let text = render_prometheus();
        assert!(
            text.lines()
                .any(|line| line.starts_with("verdict_webhooks_total{")
                    && line.contains(r#"event_type="idenfy.verification""#)
                    && line.contains(r#"outcome="accepted""#)),
            "{text}"
        );
        assert!(
            text.contains(r#"verdict_webhook_signature_failures_total{"#)
                && text.contains(r#"reason="mismatch""#),
            "{text}"
        );
    }

    #[test]
    fn every_instrument_renders_under_its_prometheus_name() {
        metrics().record_every_instrument();
        let text = render_prometheus();
        for name in [
            "http_server_request_duration_seconds_bucket{",
            "rpc_server_call_duration_seconds_count{",
            "verdict_watch_streams{",
            "verdict_watch_cases ",
            "verdict_watch_feed_lag ",
            "verdict_watch_delivery_duration_seconds_sum ",
            "verdict_notifications_total{",
            "verdict_resyncs_total ",
            "verdict_resync_caught_total ",
            "verdict_quarantined_total{",
            "verdict_purges_total{",
            "verdict_reconcile_total{",
            "verdict_reconcile_after_seconds ",
            "verdict_decisions_total{",
            "verdict_redis_subscription_up ",
            "verdict_watch_streams_limit ",
            "verdict_oldest_pending_case_seconds ",
            "verdict_quarantine_depth ",
        ] {
            assert!(
                text.lines().any(|line| line.starts_with(name.trim_end())),
                "{name} missing from\n{text}"
            );
        }
        assert!(text.contains(r#"http_request_method="_OTHER""#), "{text}");
        assert!(text.contains(r#"error_type="500""#), "{text}");
        assert!(text.contains(r#"http_route="/webhooks/idenfy""#), "{text}");
        assert!(
            text.contains(r#"rpc_response_status_code="NOT_FOUND""#),
            "{text}"
        );
    }

    #[test]
    fn the_backlog_gauges_report_the_last_read_as_of_the_scrape() {
        use std::time::{Duration, SystemTime};

        metrics().backlog(Some(SystemTime::now() - Duration::from_secs(600)), 5);
        let text = render_prometheus();
        let value = |name: &str| -> f64 {
            text.lines()
                .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
                .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
        };
        let oldest = value("verdict_oldest_pending_case_seconds ");
        assert!((600.0..660.0).contains(&oldest), "{oldest}");
        assert_eq!(value("verdict_quarantine_depth "), 5.0);

        metrics().backlog(None, 0);
        let text = render_prometheus();
        assert!(
            text.lines()
                .any(|line| line == "verdict_oldest_pending_case_seconds 0"),
            "no open case: 0\n{text}"
        );
    }
}
