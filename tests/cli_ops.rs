//! The operator's commands, run as the real binary: `verdict check`, `replay`, `reconcile` and
//! `quarantine show`.

use std::process::{Command, Output};

use serde_json::Value;
use verdict_domain::CaseStore;
use verdict_proto::verdict::v1::Decision;
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::idenfy::{API_KEY, API_SECRET, Answer, FakeIdenfy};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::next_case;
use verdict_testkit::{Backend, TestApp, TestAppOptions, TestDatabase, TestPki, within};

const KEY: &str = "ops-test-signing-key";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

/// Runs `verdict args…` with `env` on top of an environment without any `VERDICT_*` of the
/// test's own, on a blocking thread (a fake server may have to answer it meanwhile).
async fn verdict(args: &[&str], env: &[(&str, &str)]) -> Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verdict"));
        for (key, _) in std::env::vars() {
            if key.starts_with("VERDICT_") {
                command.env_remove(key);
            }
        }
        command
            .args(&args)
            .envs(env)
            .output()
            .expect("run the verdict binary")
    });
    within("the verdict binary", run).await.unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The one JSON line a successful command printed.
fn json_line(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "failed: {}{}",
        stdout(output),
        stderr(output)
    );
    serde_json::from_str(stdout(output).trim()).expect("one JSON line")
}

/// A migrated SQLite database, and a store on it to look at what the commands wrote.
async fn database() -> (TestDatabase, SeaStore) {
    let db = TestDatabase::sqlite();
    let store = SeaStore::connect(db.url(), StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    (db, store)
}

fn body_file(dir: &tempfile::TempDir, body: &[u8]) -> String {
    let path = dir.path().join(format!("{}.json", payloads::scan_ref()));
    std::fs::write(&path, body).unwrap();
    path.to_str().unwrap().to_owned()
}

// ---- verdict replay and quarantine show ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_checks_the_signature_and_records_a_body_once() {
    let (db, store) = database().await;
    let dir = tempfile::tempdir().unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    let file = body_file(&dir, &body);
    let env = [
        ("VERDICT_DATABASE_URL", db.url()),
        ("VERDICT_WEBHOOK_SECRET", KEY),
    ];
    let replay = |signature: String| {
        let file = file.clone();
        async move {
            verdict(
                &[
                    "replay",
                    &file,
                    "--event-type",
                    MANUAL,
                    "--signature",
                    &signature,
                ],
                &env,
            )
            .await
        }
    };

    // A bad signature: refused, nothing stored.
    let forged = replay(verdict_domain::sign(b"another key", &body)).await;
    assert!(!forged.status.success());
    assert!(
        stderr(&forged).contains("does not match"),
        "{}",
        stderr(&forged)
    );
    assert!(store.case(&scan_ref, false).await.unwrap().is_none());

    // Signed: recorded as a webhook would be.
    let signed = json_line(&replay(verdict_domain::sign(KEY.as_bytes(), &body)).await);
    assert_eq!(signed["outcome"], "applied");
    assert_eq!(
        (signed["scanRef"].as_str(), signed["revision"].as_u64()),
        (Some(scan_ref.as_str()), Some(1))
    );
    assert!(
        store
            .case(&scan_ref, false)
            .await
            .unwrap()
            .unwrap()
            .is_final
    );

    // The same body again, trusted or under another header: a duplicate, and exit 0.
    let again = json_line(
        &verdict(
            &["replay", &file, "--event-type", MANUAL, "--trusted"],
            &env,
        )
        .await,
    );
    assert_eq!(again["outcome"], "duplicate");
    let other_header = json_line(
        &verdict(
            &[
                "replay",
                &file,
                "--event-type",
                "IDENTIFICATION_CANCELLED",
                "--trusted",
            ],
            &env,
        )
        .await,
    );
    assert_eq!(other_header["outcome"], "duplicate");
    assert_eq!(
        store
            .case(&scan_ref, false)
            .await
            .unwrap()
            .unwrap()
            .revision,
        1
    );

    // Neither a signature nor --trusted.
    let neither = verdict(&["replay", &file, "--event-type", MANUAL], &env).await;
    assert!(!neither.status.success());
    assert!(
        stderr(&neither).contains("--trusted"),
        "{}",
        stderr(&neither)
    );
}

/// A saved body replayed as RECONCILED is what a webhook saying so is: quarantined as an
/// unknown event type. `quarantine show` prints it, and its body only when asked to.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quarantine_show_prints_the_reason_and_the_body_only_with_reveal() {
    let (db, store) = database().await;
    let dir = tempfile::tempdir().unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    let file = body_file(&dir, &body);
    let env = [("VERDICT_DATABASE_URL", db.url())];
    let replayed = json_line(
        &verdict(
            &["replay", &file, "--event-type", "RECONCILED", "--trusted"],
            &env,
        )
        .await,
    );
    assert_eq!(
        (replayed["outcome"].as_str(), replayed["kind"].as_str()),
        (Some("quarantined"), Some("unknown_event_type"))
    );
    assert!(store.case(&scan_ref, false).await.unwrap().is_none());
    let id = replayed["quarantineId"].as_i64().unwrap().to_string();

    let shown = verdict(&["quarantine", "show", &id], &env).await;
    let item = json_line(&shown);
    assert_eq!(item["eventType"], "RECONCILED");
    assert_eq!(item["reasonKind"], "unknown_event_type");
    assert_eq!(item["reason"], r#"unknown event type "RECONCILED""#);
    assert_eq!(item["bodyBytes"].as_u64(), Some(body.len() as u64));
    assert!(item["releasedAt"].is_null());
    assert!(item.get("body").is_none());
    assert!(
        !stdout(&shown).contains("JONAS"),
        "no personal data without --reveal"
    );

    let revealed = json_line(&verdict(&["quarantine", "show", &id, "--reveal"], &env).await);
    assert_eq!(
        revealed["body"].as_str().map(str::as_bytes),
        Some(body.as_slice())
    );

    let missing = verdict(&["quarantine", "show", "999999"], &env).await;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no quarantine item 999999"),
        "{}",
        stderr(&missing)
    );
}

// ---- verdict reconcile ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_looks_one_case_up_now_and_says_why_when_it_cannot() {
    let (db, store) = database().await;
    let fake = FakeIdenfy::start().await;
    let dir = tempfile::tempdir().unwrap();
    let scan_ref = payloads::scan_ref();
    let file = body_file(&dir, &webhook(&scan_ref).build());
    let url = fake.url();
    let env = [
        ("VERDICT_DATABASE_URL", db.url()),
        ("VERDICT_IDENFY_API_URL", url.as_str()),
        ("VERDICT_IDENFY_API_KEY", API_KEY),
        ("VERDICT_IDENFY_API_SECRET", API_SECRET),
    ];
    json_line(
        &verdict(
            &[
                "replay",
                &file,
                "--event-type",
                "IDENTIFICATION_AUTO_FINISHED",
                "--trusted",
            ],
            &env,
        )
        .await,
    );
    fake.answer(&scan_ref, [Answer::Status("DENIED")]);

    let line = json_line(&verdict(&["reconcile", &scan_ref], &env).await);
    assert_eq!(line["result"], "applied");
    assert_eq!(line["decision"], "DENIED");
    assert_eq!(
        (line["final"].as_bool(), line["revision"].as_u64()),
        (Some(true), Some(2))
    );
    let case = store.case(&scan_ref, false).await.unwrap().unwrap();
    assert_eq!(
        (case.is_final, case.last_event_type.as_str()),
        (true, "RECONCILED")
    );

    // The same answer again tells nothing new.
    let again = json_line(&verdict(&["reconcile", &scan_ref], &env).await);
    assert_eq!(
        (again["result"].as_str(), again["outcome"].as_str()),
        (Some("unchanged"), Some("duplicate"))
    );

    /// The scanRef asked about, settings changed, what the error says.
    type Failure<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
    let failures: [Failure<'_>; 3] = [
        (
            scan_ref.as_str(),
            &[("VERDICT_IDENFY_API_SECRET", "wrong")],
            "refused the credentials",
        ),
        ("unknown-scan-ref", &[], "does not know this scanRef"),
        (
            scan_ref.as_str(),
            &[("VERDICT_IDENFY_API_KEY", "")],
            "VERDICT_IDENFY_API_KEY",
        ),
    ];
    for (asked, overrides, says) in failures {
        let mut env = env.to_vec();
        env.extend_from_slice(overrides);
        let failed = verdict(&["reconcile", asked], &env).await;
        assert!(!failed.status.success(), "{asked}: {}", stdout(&failed));
        assert!(
            stderr(&failed).contains(says),
            "{says:?} not in {}",
            stderr(&failed)
        );
        assert!(
            !stderr(&failed).contains("wrong"),
            "no secret in the message"
        );
    }
    assert_eq!(
        store
            .case(&scan_ref, false)
            .await
            .unwrap()
            .unwrap()
            .revision,
        2
    );
}

/// Like `quarantine reprocess`, the change reaches the watchers of a running replica at once,
/// through the deployment's Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciled_change_reaches_the_watchers_of_a_running_app() {
    let mut options = TestAppOptions::new(Backend::Sqlite).with_redis();
    // Far beyond the test's patience: only the publish can deliver the change in time.
    options.resync_interval = std::time::Duration::from_secs(300);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let fake = FakeIdenfy::start().await;
    let scan_ref = payloads::scan_ref();
    app.post_ok("IDENTIFICATION_AUTO_FINISHED", &webhook(&scan_ref).build())
        .await;
    fake.answer(&scan_ref, [Answer::Status("APPROVED")]);
    let mut stream = app.watch_case(&scan_ref, 1, true).await;

    let redis = app.redis().expect("with Redis");
    let url = fake.url();
    let env = [
        ("VERDICT_DATABASE_URL", app.database().url()),
        ("VERDICT_REDIS_URL", redis.url()),
        ("VERDICT_REDIS_CHANNEL", redis.channel()),
        ("VERDICT_IDENFY_API_URL", url.as_str()),
        ("VERDICT_IDENFY_API_KEY", API_KEY),
        ("VERDICT_IDENFY_API_SECRET", API_SECRET),
    ];
    json_line(&verdict(&["reconcile", &scan_ref], &env).await);
    let case = within("the published change", next_case(&mut stream))
        .await
        .expect("the watcher sees it");
    assert_eq!((case.decision(), case.revision), (Decision::Approved, 2));
}

// ---- verdict check ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_a_ready_configuration() {
    let (db, _store) = database().await;
    let pki = TestPki::new("check");
    let server = pki.server();
    let env = [
        ("VERDICT_DATABASE_URL", db.url()),
        ("VERDICT_WEBHOOK_SECRET", KEY),
        ("VERDICT_MIGRATE_ON_START", "false"),
        ("VERDICT_GRPC_TLS_CERT", server.cert.to_str().unwrap()),
        ("VERDICT_GRPC_TLS_KEY", server.key.to_str().unwrap()),
        ("VERDICT_RECONCILE_AFTER", "2h"),
        ("VERDICT_IDENFY_API_KEY", API_KEY),
        ("VERDICT_IDENFY_API_SECRET", API_SECRET),
    ];
    let output = verdict(&["check"], &env).await;
    let printed = stdout(&output);
    assert!(output.status.success(), "{printed}{}", stderr(&output));
    let checks: Vec<&str> = printed
        .lines()
        .map(|line| line.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        checks,
        [
            "ok    configuration",
            "ok    grpc tls and credentials",
            "ok    reconciliation",
            "ok    database",
            "ok    migrations",
            "ok    redis",
        ]
    );
    assert!(printed.contains("migrations: all applied"), "{printed}");
    assert!(
        printed.contains("grpc tls and credentials: TLS"),
        "{printed}"
    );
    assert!(
        !printed.contains(KEY) && !printed.contains(API_SECRET),
        "no secrets: {printed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_names_every_check_that_fails() {
    let db = TestDatabase::sqlite(); // never migrated
    let env = [
        ("VERDICT_DATABASE_URL", db.url()),
        ("VERDICT_MIGRATE_ON_START", "false"),
        ("VERDICT_GRPC_TLS_CERT", "/nonexistent/tls.crt"),
        ("VERDICT_GRPC_TLS_KEY", "/nonexistent/tls.key"),
        ("VERDICT_REDIS_URL", "redis://127.0.0.1:1"),
        ("VERDICT_RECONCILE_AFTER", "2h"),
        ("VERDICT_IDENFY_API_URL", "ftp://ivs.idenfy.com"),
        ("VERDICT_IDENFY_API_KEY", API_KEY),
        ("VERDICT_IDENFY_API_SECRET", API_SECRET),
    ];
    let output = verdict(&["check"], &env).await;
    let printed = stdout(&output);
    assert!(!output.status.success(), "{printed}");
    for line in [
        "FAIL  configuration: no webhook secret",
        "FAIL  grpc tls and credentials:",
        "FAIL  reconciliation:",
        "ok    database:",
        "FAIL  migrations:",
        "FAIL  redis:",
    ] {
        assert!(printed.contains(line), "{line:?} not in\n{printed}");
    }
    assert!(
        printed.contains("/nonexistent/tls.crt"),
        "names the file: {printed}"
    );
    assert!(
        printed.contains("pending") && printed.contains("verdict migrate"),
        "{printed}"
    );
    assert!(
        stderr(&output).contains(
            "check failed: configuration, grpc tls and credentials, reconciliation, migrations, redis"
        ),
        "{}",
        stderr(&output)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_fails_when_the_database_cannot_be_reached() {
    let env = [
        (
            "VERDICT_DATABASE_URL",
            "postgres://verdict:pa55word@127.0.0.1:1/verdict",
        ),
        ("VERDICT_WEBHOOK_SECRET", KEY),
    ];
    let output = verdict(&["check"], &env).await;
    let printed = stdout(&output);
    assert!(!output.status.success());
    assert!(printed.contains("FAIL  database:"), "{printed}");
    assert!(
        printed.contains("FAIL  migrations: not checked"),
        "{printed}"
    );
    assert!(!printed.contains("pa55word") && !stderr(&output).contains("pa55word"));
}

/// The init container's form: Redis is not needed to serve, so its outage is no reason to keep
/// a pod from starting.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_can_leave_redis_out() {
    let (db, _store) = database().await;
    let env = [
        ("VERDICT_DATABASE_URL", db.url()),
        ("VERDICT_WEBHOOK_SECRET", KEY),
        ("VERDICT_REDIS_URL", "redis://127.0.0.1:1"),
    ];
    let output = verdict(&["check", "--skip", "redis"], &env).await;
    let printed = stdout(&output);
    assert!(output.status.success(), "{printed}{}", stderr(&output));
    assert!(printed.contains("skip  redis"), "{printed}");
    let failed = verdict(&["check"], &env).await;
    assert!(!failed.status.success());
    assert!(
        stdout(&failed).contains("FAIL  redis:"),
        "{}",
        stdout(&failed)
    );
}
