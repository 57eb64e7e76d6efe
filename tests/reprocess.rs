//! `verdict quarantine reprocess`, run as an operator runs it, next to a running Verdict: a
//! quarantined delivery goes through the same ingest path as a webhook, is judged as of its
//! original arrival and is published to the watchers of every replica.

use std::process::Command;

use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::Value;
use verdict_domain::event::UnknownEventType;
use verdict_domain::{CaseStore, NewQuarantine};
use verdict_proto::verdict::v1::{CaseView, Decision};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::next_case;
use verdict_testkit::{Backend, TestApp, TestAppOptions, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

/// An hour ago, to the second (both databases keep that exactly).
fn an_hour_ago() -> DateTime<Utc> {
    Utc::now().duration_trunc(Duration::seconds(1)).unwrap() - Duration::hours(1)
}

/// Quarantines a final APPROVED of `scan_ref` that arrived an hour ago, as a version that did
/// not know MANUAL_FINISHED yet would have.
async fn quarantine_old_final(app: &TestApp, scan_ref: &str) -> (SeaStore, DateTime<Utc>) {
    let store = SeaStore::connect(app.database().url(), StoreOptions::default())
        .await
        .unwrap();
    let arrived = an_hour_ago();
    store
        .quarantine(NewQuarantine {
            event_type: Some(MANUAL.into()),
            body: webhook(scan_ref)
                .overall("APPROVED")
                .final_(true)
                .build()
                .into(),
            reason: UnknownEventType(MANUAL.into()).into(),
            received_at: arrived,
            traceparent: None,
        })
        .await
        .unwrap();
    (store, arrived)
}

/// Runs `verdict quarantine reprocess` against the app's database (and Redis channel, when it
/// has one) and returns the JSON line it printed per item.
async fn reprocess(app: &TestApp) -> Vec<Value> {
    let mut env = vec![("VERDICT_DATABASE_URL", app.database().url().to_owned())];
    if let Some(redis) = app.redis() {
        env.push(("VERDICT_REDIS_URL", redis.url().to_owned()));
        env.push(("VERDICT_REDIS_CHANNEL", redis.channel().to_owned()));
    }
    let run = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["quarantine", "reprocess"])
            .env_remove("VERDICT_REDIS_URL")
            .env_remove("VERDICT_REDIS_CHANNEL")
            .envs(env)
            .output()
            .expect("run the verdict binary")
    });
    let output = within("verdict quarantine reprocess", run).await.unwrap();
    assert!(
        output.status.success(),
        "reprocess failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON lines"))
        .collect()
}

/// An old final decision, reprocessed after a newer final one arrived, changes nothing: it is
/// kept in the history as stale and released from the quarantine.
async fn old_quarantined_final_does_not_override_a_newer_final(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let (store, arrived) = quarantine_old_final(&app, &scan_ref).await;
    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("DENIED").final_(true).build(),
    )
    .await;
    let before = app
        .get_case(&scan_ref, CaseView::Basic, false)
        .await
        .unwrap();

    let lines = reprocess(&app).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (lines[0]["outcome"].as_str(), lines[0]["revision"].as_u64()),
        (Some("stale"), Some(1))
    );

    let after = app
        .get_case(&scan_ref, CaseView::Basic, true)
        .await
        .unwrap();
    assert_eq!(
        (after.decision(), after.r#final, after.revision),
        (Decision::Denied, true, 1)
    );
    assert_eq!(
        after.updated_at, before.updated_at,
        "updated_at never goes back"
    );
    let stale = &after.history[1];
    assert_eq!((stale.outcome.as_str(), stale.revision), ("stale", 1));
    assert_eq!(
        stale.received_at.as_ref().map(|t| t.seconds),
        Some(arrived.timestamp()),
        "kept with its original arrival"
    );
    assert!(
        store.quarantined(0, 10).await.unwrap().is_empty(),
        "released"
    );

    // Released means done: a second run finds nothing to do.
    assert!(reprocess(&app).await.is_empty());
}

/// A reprocessed final that does apply is published like a webhook's change: a watcher of the
/// running app (another process, reached through Redis) sees it, long before any re-read
/// could. It is judged as of its arrival: final since then, while `updated_at` stays at the
/// newer preliminary result's arrival.
async fn reprocessed_change_reaches_watchers_of_every_replica(backend: Backend) {
    let mut options = TestAppOptions::new(backend).with_redis();
    // Far beyond the test's patience: only the publish can deliver the change in time.
    options.resync_interval = std::time::Duration::from_secs(300);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let (store, arrived) = quarantine_old_final(&app, &scan_ref).await;
    app.post_ok(AUTO, &webhook(&scan_ref).overall("REVIEWING").build())
        .await;
    let preliminary = app
        .get_case(&scan_ref, CaseView::Basic, false)
        .await
        .unwrap();
    let mut stream = app.watch_case(&scan_ref, 1, true).await;

    let lines = reprocess(&app).await;
    assert_eq!(
        (lines[0]["outcome"].as_str(), lines[0]["revision"].as_u64()),
        (Some("applied"), Some(2)),
        "{lines:?}"
    );

    let case = within("the published change", next_case(&mut stream))
        .await
        .expect("the watcher sees the change");
    assert_eq!(
        (case.decision(), case.r#final, case.revision),
        (Decision::Approved, true, 2)
    );
    assert_eq!(
        case.finalized_at.as_ref().map(|t| t.seconds),
        Some(arrived.timestamp()),
        "final as of its original arrival"
    );
    assert_eq!(
        case.updated_at, preliminary.updated_at,
        "updated_at never goes back"
    );
    assert!(
        next_case(&mut stream).await.is_none(),
        "until_final ends the stream"
    );
    assert!(store.quarantined(0, 10).await.unwrap().is_empty());
}

on_every_backend!(
    old_quarantined_final_does_not_override_a_newer_final,
    reprocessed_change_reaches_watchers_of_every_replica,
);
