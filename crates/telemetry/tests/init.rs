//! `init` end to end, each case in a child process of this test binary: the global subscriber
//! can be installed once per process, and the OTLP variables must be set before it starts
//! (setting them in-process needs `unsafe`).

use std::process::{Command, Output};
use std::time::Duration;

use verdict_telemetry::testing::{OtlpReceiver, hex_id};
use verdict_telemetry::{LogFormat, TRACE_ONLY, TelemetryConfig, metrics, propagation};

const CHILD: &str = "VERDICT_TELEMETRY_TEST_CHILD";
const OTEL_VARS: [&str; 7] = [
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
];

/// Runs the ignored `child` test of this binary in a fresh process with `env`.
fn run_child(env: &[(&str, &str)]) -> Output {
    let exe = std::env::current_exe().expect("test binary path");
    let mut command = Command::new(exe);
    command.args([
        "--exact",
        "child",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for var in OTEL_VARS {
        command.env_remove(var);
    }
    command.envs(env.iter().copied());
    let output = command.output().expect("run child");
    assert!(
        output.status.success(),
        "child failed\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// The JSON object logged with `message` (libtest may print its status before it on the line).
fn json_line<'a>(stdout: &'a str, message: &str) -> &'a str {
    stdout
        .lines()
        .filter(|line| line.contains(message))
        .find_map(|line| line.find('{').map(|start| &line[start..]))
        .unwrap_or_else(|| panic!("no JSON line with {message:?} in\n{stdout}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quiet_rust_log_still_exports_spans_and_json_logs_carry_the_trace_id() {
    let receiver = OtlpReceiver::start().await;
    let endpoint = receiver.endpoint();
    let output = tokio::task::spawn_blocking(move || {
        run_child(&[
            (CHILD, "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("RUST_LOG", "warn"),
        ])
    })
    .await
    .expect("join");

    // The guard flushed before the child exited, so everything is already here.
    let spans = receiver
        .wait_for_spans(
            |spans| spans.iter().any(|s| s.name == "webhook"),
            Duration::from_secs(10),
        )
        .await;
    let webhook = spans.iter().find(|s| s.name == "webhook").expect("webhook");
    let delivery = spans
        .iter()
        .find(|s| s.name == "delivery")
        .expect("delivery");
    assert_eq!(delivery.trace_id, webhook.trace_id);
    assert_eq!(delivery.parent_span_id, webhook.span_id);
    assert!(
        !spans.iter().any(|s| s.name == "dependency"),
        "only verdict targets are exported"
    );
    assert!(
        receiver.service_names().iter().all(|n| n == "verdict"),
        "{:?}",
        receiver.service_names()
    );

    let stdout = String::from_utf8_lossy(&output.stdout);
    let inside_delivery = json_line(&stdout, "inside the delivery span");
    assert!(
        !inside_delivery.contains(r#""revision":4"#),
        "a trace-only span is exported but never formatted for the logs: {inside_delivery}"
    );
    let line = json_line(&stdout, "inside the webhook span");
    let trace_id = hex_id(&webhook.trace_id);
    assert!(
        line.starts_with(&format!("{{\"trace_id\":\"{trace_id}\",\"span_id\":\"")),
        "{line}"
    );
    assert!(
        !stdout.contains("filtered by RUST_LOG"),
        "RUST_LOG=warn still filters the logs"
    );
    assert!(
        !stdout.contains("Export"),
        "no export errors are logged: {stdout}"
    );
    receiver
        .wait_for_metric("verdict.webhooks", Duration::from_secs(10))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_traced_and_logs_have_no_trace_id() {
    let output = tokio::task::spawn_blocking(|| run_child(&[(CHILD, "off")]))
        .await
        .expect("join");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = json_line(&stdout, "inside the webhook span");
    assert!(!line.contains("trace_id"), "{line}");
    assert!(
        line.contains(r#""revision":3"#),
        "span fields are on the line: {line}"
    );
    assert!(
        stdout.contains("filtered by RUST_LOG"),
        "default filter is info: {stdout}"
    );
}

/// The child side: runs only when spawned by the tests above.
#[test]
#[ignore = "run by the other tests in a child process"]
fn child() {
    let Ok(mode) = std::env::var(CHILD) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let config = TelemetryConfig {
            log_format: LogFormat::Json,
            ..TelemetryConfig::default()
        };
        let guard = verdict_telemetry::init(&config).expect("init");
        assert!(
            matches!(
                verdict_telemetry::init(&config),
                Err(verdict_telemetry::Error::AlreadyInitialized(_))
            ),
            "a second init is refused"
        );
        metrics::metrics().webhook("idenfy.verification", "accepted");

        let webhook = tracing::info_span!(target: "verdict::test", "webhook", revision = 3);
        assert!(!webhook.is_disabled());
        assert!(
            tracing::trace_span!(target: "h2::proto", "frame").is_disabled(),
            "a span that neither the logs nor the export want is never made"
        );
        assert!(
            tracing::info_span!(target: "sqlx::query", "statement").is_disabled(),
            "nor is one at a level the logs take from others (sqlx is at warn)"
        );
        let traceparent = webhook.in_scope(|| {
            tracing::warn!(target: "verdict::test", "inside the webhook span");
            tracing::info!(target: "verdict::test", "filtered by RUST_LOG");
            tracing::info_span!(target: "h2::codec", "dependency").in_scope(|| {});
            propagation::current_traceparent()
        });
        drop(webhook);
        match mode.as_str() {
            "otlp" => {
                let traceparent = traceparent.expect("a traced span has a traceparent");
                let delivery = tracing::info_span!(target: TRACE_ONLY, "delivery", revision = 4);
                propagation::set_parent_from_traceparent(&delivery, &traceparent);
                delivery.in_scope(|| {
                    tracing::warn!(target: "verdict::test", "inside the delivery span");
                });
            }
            _ => {
                assert_eq!(traceparent, None, "no OpenTelemetry context without export");
                assert!(
                    tracing::info_span!(target: TRACE_ONLY, "delivery").is_disabled(),
                    "a trace-only span is not made when nothing is exported"
                );
            }
        }
        guard.shutdown();
    });
}
