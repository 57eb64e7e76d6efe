//! The real `verdict` binary as a child process: started with `127.0.0.1:0` listeners (the
//! bound addresses are read from its `verdict serving` log line), stopped with SIGTERM so it
//! flushes its telemetry, its stdout and stderr kept for assertions.

use std::io::{BufRead as _, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::watch;
use verdict_testkit::within;

/// The webhook signing secret of the child.
pub(crate) const SECRET: &str = "telemetry-test-secret-5c1e7a";

/// How to start one child.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    pub(crate) database_url: String,
    pub(crate) otlp_endpoint: String,
    pub(crate) rust_log: &'static str,
    /// `(url, channel)` when the replicas talk over Redis.
    pub(crate) redis: Option<(String, String)>,
    pub(crate) service_name: &'static str,
}

/// A running `verdict serve`.
#[derive(Debug)]
pub(crate) struct Verdict {
    child: Option<Child>,
    lines: watch::Sender<Vec<String>>,
    readers: Vec<JoinHandle<()>>,
    pub(crate) http: SocketAddr,
    pub(crate) grpc: SocketAddr,
    pub(crate) admin: SocketAddr,
}

impl Verdict {
    /// Starts the binary and waits until it serves.
    pub(crate) async fn start(options: &Options) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verdict"));
        command.arg("serve");
        for (key, _) in std::env::vars() {
            if key.starts_with("OTEL_") || key.starts_with("VERDICT_") {
                command.env_remove(key);
            }
        }
        command
            .env("VERDICT_HTTP_ADDR", "127.0.0.1:0")
            .env("VERDICT_GRPC_ADDR", "127.0.0.1:0")
            .env("VERDICT_ADMIN_ADDR", "127.0.0.1:0")
            .env("VERDICT_DATABASE_URL", &options.database_url)
            .env("VERDICT_WEBHOOK_SECRET", SECRET)
            .env("VERDICT_LOG_FORMAT", "json")
            // The periodic re-read would wake watchers without a traceparent: keep it out of
            // the way so every delivery in these tests comes from the bus.
            .env("VERDICT_RESYNC_INTERVAL", "1h")
            .env("VERDICT_RESYNC_DEGRADED_INTERVAL", "1h")
            .env("VERDICT_SHUTDOWN_TIMEOUT", "5s")
            .env("RUST_LOG", options.rust_log)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &options.otlp_endpoint)
            .env("OTEL_SERVICE_NAME", options.service_name)
            .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some((url, channel)) = &options.redis {
            command
                .env("VERDICT_REDIS_URL", url)
                .env("VERDICT_REDIS_CHANNEL", channel);
        }
        let mut child = command.spawn().expect("start the verdict binary");
        let (lines, _) = watch::channel(Vec::new());
        let readers = vec![
            read_lines(child.stdout.take().expect("stdout"), lines.clone()),
            read_lines(child.stderr.take().expect("stderr"), lines.clone()),
        ];
        let mut verdict = Self {
            child: Some(child),
            lines,
            readers,
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            grpc: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
        };
        let serving = verdict.wait_for_log("verdict serving").await;
        let address = |key: &str| {
            serving["fields"][key]
                .as_str()
                .and_then(|a| a.parse().ok())
                .unwrap_or_else(|| panic!("no {key} address in {serving}"))
        };
        verdict.http = address("http");
        verdict.grpc = address("grpc");
        verdict.admin = address("admin");
        verdict
    }

    /// Waits for the JSON log line whose message is `message`, and returns it.
    pub(crate) async fn wait_for_log(&self, message: &str) -> Value {
        let mut rx = self.lines.subscribe();
        let found = within(
            &format!("the log line {message:?}"),
            rx.wait_for(|lines| lines.iter().any(|line| is_message(line, message))),
        )
        .await
        .expect("the reader threads keep the sender");
        let line = found
            .iter()
            .find(|line| is_message(line, message))
            .expect("just found")
            .clone();
        serde_json::from_str(&line).expect("a JSON line")
    }

    /// `http://<http addr><path>`.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    /// `http://<admin addr><path>`: `/metrics` and the probes.
    pub(crate) fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Sends SIGTERM, waits for a clean exit (telemetry flushed), and returns stdout and stderr.
    pub(crate) async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let exited = within(
            "verdict to exit after SIGTERM",
            tokio::task::spawn_blocking(move || child.wait()),
        )
        .await
        .expect("join")
        .expect("wait");
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        let output = self.lines.borrow().join("\n");
        assert!(exited.success(), "verdict exited with {exited}\n{output}");
        output
    }
}

impl Drop for Verdict {
    fn drop(&mut self) {
        // A failed test must not leave the process behind.
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn read_lines(
    stream: impl Read + Send + 'static,
    lines: watch::Sender<Vec<String>>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            lines.send_modify(|lines| lines.push(line));
        }
    })
}

fn is_message(line: &str, message: &str) -> bool {
    serde_json::from_str::<Value>(line)
        .is_ok_and(|value| value["fields"]["message"].as_str() == Some(message))
}
