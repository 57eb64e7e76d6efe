//! The `verdict` binary's offline commands, run as a user would run them.

use std::process::Command;

use verdict_domain::event::UnknownEventType;
use verdict_domain::{CaseStore, NewQuarantine};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestDatabase, on_every_backend};

fn verdict(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let output = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .env_remove("VERDICT_WEBHOOK_SECRET")
        .envs(env.iter().copied())
        .output()
        .expect("run the verdict binary");
    assert!(
        output.status.success(),
        "verdict {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn sign_prints_the_signature_idenfy_would_send() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("body.json");
    let body = webhook(&payloads::scan_ref()).build();
    std::fs::write(&path, &body).unwrap();

    let output = verdict(
        &["sign", path.to_str().unwrap()],
        &[("VERDICT_WEBHOOK_SECRET", "k1,k2")],
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(
        printed.trim(),
        verdict_domain::sign(b"k1", &body),
        "the first key signs"
    );
}

#[test]
fn serve_refuses_to_start_without_a_webhook_secret() {
    let output = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(["serve", "--database-url", "sqlite::memory:"])
        .env_remove("VERDICT_WEBHOOK_SECRET")
        .env_remove("VERDICT_ALLOW_UNSIGNED")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("VERDICT_WEBHOOK_SECRET"), "{stderr}");
}

/// A delivery quarantined by an older version (say, one that did not know the event type) is
/// recorded by `verdict quarantine reprocess` once it parses, and released.
async fn quarantined_delivery_is_recorded_by_reprocess(backend: Backend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let url = db.url().to_owned();
    verdict(&["migrate"], &[("VERDICT_DATABASE_URL", &url)]);

    let store = SeaStore::connect(&url, StoreOptions::default())
        .await
        .unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    store
        .quarantine(NewQuarantine {
            event_type: Some("IDENTIFICATION_MANUAL_FINISHED".into()),
            body: body.into(),
            // What a version that did not know MANUAL_FINISHED yet would have said.
            reason: UnknownEventType("IDENTIFICATION_MANUAL_FINISHED".into()).into(),
            received_at: chrono::Utc::now(),
            traceparent: None,
        })
        .await
        .unwrap();
    store
        .quarantine(NewQuarantine {
            event_type: Some("IDENTIFICATION_FROM_THE_FUTURE".into()),
            body: webhook(&payloads::scan_ref()).build().into(),
            reason: UnknownEventType("IDENTIFICATION_FROM_THE_FUTURE".into()).into(),
            received_at: chrono::Utc::now(),
            traceparent: None,
        })
        .await
        .unwrap();

    let listed = verdict(&["quarantine", "list"], &[("VERDICT_DATABASE_URL", &url)]);
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        !listed.contains("JONAS"),
        "the listing never shows the body: {listed}"
    );

    verdict(
        &["quarantine", "reprocess"],
        &[("VERDICT_DATABASE_URL", &url)],
    );
    let case = store
        .case(&scan_ref, false)
        .await
        .unwrap()
        .expect("the case was recorded");
    assert!(case.is_final);
    let waiting = store.quarantined(0, 10).await.unwrap();
    assert_eq!(waiting.len(), 1, "the still unknown event type waits on");
    assert_eq!(
        waiting[0].event_type.as_deref(),
        Some("IDENTIFICATION_FROM_THE_FUTURE")
    );
}

on_every_backend!(quarantined_delivery_is_recorded_by_reprocess);

/// `verdict get` and `verdict watch` against a running app that requires a token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_and_watch_print_the_case_as_json_lines() {
    let mut options = verdict_testkit::TestAppOptions::new(Backend::Sqlite);
    options.grpc_token = Some("cli-token".into());
    let app = verdict_testkit::TestApp::spawn_with(options).await.unwrap();
    let url = format!("http://{}", app.grpc_addr());
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref)
        .client_id("cli-user")
        .overall("APPROVED")
        .final_(true)
        .build();
    let response = app
        .post_webhook(Some("IDENTIFICATION_MANUAL_FINISHED"), &body)
        .await;
    assert_eq!(response.status().as_u16(), 200);

    let env = [
        ("VERDICT_GRPC_URL", url.as_str()),
        ("VERDICT_GRPC_TOKEN", "cli-token"),
    ];
    let output = tokio::task::spawn_blocking({
        let scan_ref = scan_ref.clone();
        let env = env.map(|(k, v)| (k, v.to_owned()));
        move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let get = verdict(&["get", &scan_ref, "--history"], &env);
            let watch = verdict(&["watch", &scan_ref, "--until-final"], &env);
            (get, watch)
        }
    });
    let (get, watch) = verdict_testkit::within("the CLI", output).await.unwrap();
    for output in [get, watch] {
        let line = String::from_utf8(output.stdout).unwrap();
        let case: serde_json::Value = serde_json::from_str(line.trim()).expect("one JSON line");
        assert_eq!(case["scanRef"], scan_ref.as_str());
        assert_eq!(case["decision"], "DECISION_APPROVED");
        assert_eq!(case["final"], true);
        assert!(
            case.get("person").is_none(),
            "no personal data without --full"
        );
    }
}
