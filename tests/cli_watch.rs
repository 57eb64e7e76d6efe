//! `verdict watch --all` as a shell consumer runs it: filters, `--from-now`, bookmark lines, and
//! resuming with `--cursor` from the last line printed.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;
use tokio::sync::mpsc;
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestApp, within};

/// A running `verdict watch` whose stdout lines arrive on a channel; killed when dropped.
struct Watch {
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
}

impl Watch {
    fn start(app: &TestApp, args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
            .arg("watch")
            .args(args)
            .env("VERDICT_GRPC_URL", format!("http://{}", app.grpc_addr()))
            .env_remove("VERDICT_GRPC_TOKEN")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("run verdict watch");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self { child, lines }
    }

    /// The next printed line, as JSON.
    async fn next(&mut self) -> Value {
        let line = within("a line from verdict watch", self.lines.recv())
            .await
            .expect("verdict watch is still running");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
    }

    /// The next change line, past bookmark lines (a slow machine may print some meanwhile).
    async fn next_change(&mut self) -> Value {
        loop {
            let line = self.next().await;
            if line.get("bookmark").is_none() {
                return line;
            }
        }
    }

    /// Reads bookmark lines until one says `cursor`; no change line may come first.
    async fn bookmark(&mut self, cursor: &str) {
        loop {
            let line = self.next().await;
            let bookmark = line["bookmark"]
                .as_str()
                .unwrap_or_else(|| panic!("{line}"));
            if bookmark == cursor {
                return;
            }
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

async fn decide(app: &TestApp, client: &str, overall: &str) -> String {
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref)
        .client_id(client)
        .overall(overall)
        .final_(true)
        .build();
    app.post_ok(MANUAL, &body).await;
    scan_ref
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_all_filters_prints_bookmarks_and_resumes_from_the_last_line() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    decide(&app, "user-1", "APPROVED").await; // position 1, before the watch

    let mut watch = Watch::start(
        &app,
        &[
            "--all",
            "--from-now",
            "--client-id",
            "user-1",
            "--client-id",
            "user-2",
            "--decision",
            "approved",
        ],
    );
    assert_eq!(watch.next().await, serde_json::json!({"bookmark": "v1.1"}));

    decide(&app, "user-3", "APPROVED").await; // 2: another client
    decide(&app, "user-2", "DENIED").await; // 3: another decision
    let wanted = decide(&app, "user-2", "APPROVED").await; // 4
    let line = watch.next_change().await;
    assert_eq!(line["cursor"], "v1.4");
    assert_eq!(line["case"]["scanRef"], wanted.as_str());
    assert_eq!(line["case"]["clientId"], "user-2");

    // Filtered-out changes move the bookmark, printed once it moved.
    decide(&app, "user-3", "APPROVED").await; // 5
    watch.bookmark("v1.5").await;
    drop(watch);

    // A consumer resuming from the last line it printed gets what came since, only.
    decide(&app, "user-3", "DENIED").await; // 6
    let wanted = decide(&app, "user-1", "APPROVED").await; // 7
    let mut resumed = Watch::start(
        &app,
        &["--all", "--cursor", "v1.5", "--client-id", "user-1"],
    );
    let line = resumed.next_change().await;
    assert_eq!(line["cursor"], "v1.7");
    assert_eq!(line["case"]["scanRef"], wanted.as_str());
}
