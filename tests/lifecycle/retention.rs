//! Retention: cases that became final longer ago than `VERDICT_RETENTION` are purged by the
//! job on every replica (one batch at a time across them) and by `verdict purge --older-than`;
//! open cases, recent ones and what belongs to them stay.

use std::collections::HashMap;
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures::StreamExt as _;
use verdict_domain::event::UnknownEventType;
use verdict_domain::{CaseStore as _, FeedQuery, NewQuarantine};
use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};
use verdict_testkit::payloads;
use verdict_testkit::streams::next_change;
use verdict_testkit::{Backend, TestAppOptions, on_every_backend};

use super::forgotten::{assert_forgotten, scan};
use super::*;

/// Two hours ago, past a one-hour retention.
fn long_ago() -> Duration {
    Duration::hours(2)
}

/// What a retention pass must tell apart: a final case past the retention, an open case as
/// old, a final case decided just now, and two quarantined bodies as old: one belonging to no
/// case, one naming the open case.
struct Cases {
    expired: (String, Person),
    open: (String, Person),
    recent: (String, Person),
    caseless: Person,
}

async fn cases(app: &TestApp) -> Cases {
    let new = || (payloads::scan_ref(), Person::new());
    let (expired, open, recent, caseless) = (new(), new(), new(), Person::new());
    let final_of = |(scan_ref, person): &(String, Person)| person.decided(scan_ref, "APPROVED");
    ingest_ago(app, MANUAL, &final_of(&expired), long_ago()).await;
    ingest_ago(app, AUTO, &open.1.body(&open.0).build(), long_ago()).await;
    ingest_ago(app, MANUAL, &final_of(&recent), Duration::zero()).await;
    let store = store(app).await;
    for body in [
        // Names no case: a scanRef longer than iDenfy issues.
        caseless.body(&"x".repeat(40)).build(),
        // The open case's, under an event type this version does not know.
        open.1.decided(&open.0, "APPROVED"),
    ] {
        store
            .quarantine(NewQuarantine {
                event_type: Some("IDENTIFICATION_TELEPORTED".into()),
                body: body.into(),
                reason: UnknownEventType("IDENTIFICATION_TELEPORTED".into()).into(),
                received_at: Utc::now() - long_ago(),
                traceparent: None,
            })
            .await
            .unwrap();
    }
    Cases {
        expired,
        open,
        recent,
        caseless,
    }
}

/// Only the expired case and the caseless quarantine body are erased.
async fn assert_only_the_expired_were_purged(app: &TestApp, cases: &Cases) {
    let expired = get(app, &cases.expired.0, CaseView::Full).await;
    assert!(expired.purged_at.is_some() && expired.person.is_none());
    assert_eq!(expired.revision, 2);
    let mut gone = cases.expired.1.markers();
    gone.extend(cases.caseless.markers());
    assert_forgotten(app, &gone, "after a retention pass").await;
    for (scan_ref, person) in [&cases.open, &cases.recent] {
        let kept = get(app, scan_ref, CaseView::Full).await;
        assert_eq!((kept.revision, kept.purged_at.as_ref()), (1, None));
        assert!(kept.person.is_some());
        assert_eq!(
            scan(app, &person.markers()).await.found().len(),
            person.markers().len(),
            "kept whole"
        );
    }
}

/// The job: a replica with a one-hour retention purges the case decided two hours ago at its
/// next pass (the change arrives on WatchCases) and nothing else.
async fn the_retention_job_purges_final_cases_past_the_retention_and_nothing_else(
    backend: Backend,
) {
    let mut options = TestAppOptions::new(backend);
    options.retention.retention = Some(StdDuration::from_secs(3600));
    options.retention.purge_interval = StdDuration::from_millis(200);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let mut feed = watch_from_now(&app).await;
    let cases = cases(&app).await;

    let purge = loop {
        let case = next_change(&mut feed).await.case.expect("a case");
        if case.purged_at.is_some() {
            break case;
        }
    };
    assert_eq!(purge.scan_ref, cases.expired.0, "the expired case, first");
    assert_only_the_expired_were_purged(&app, &cases).await;
}

/// `verdict purge --older-than` runs one pass and prints each case it purged; a second run
/// finds nothing left to do.
async fn verdict_purge_older_than_runs_one_pass(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let cases = cases(&app).await;

    let output = verdict_purge(&app, &["--older-than", "1h"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["scanRef"].as_str(), Some(cases.expired.0.as_str()));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("1 cases purged, 1 quarantine bodies erased"),
        "{stderr}"
    );
    assert_only_the_expired_were_purged(&app, &cases).await;

    let again = verdict_purge(&app, &["--older-than", "1h"]).await;
    assert!(again.status.success());
    assert!(json_lines(&again).is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("0 cases purged"));
}

/// A quarantined body that names a purged case — what a delivery racing the creation and purge
/// of its case can leave behind — is erased by age, like one that names no case.
async fn a_quarantined_body_naming_a_purged_case_goes_with_retention(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let person = Person::new();
    let scan_ref = payloads::scan_ref();
    app.post_ok(LEGACY, &person.decided(&scan_ref, "DELETED"))
        .await;
    let left_behind = person.decided(&scan_ref, "APPROVED");
    let conn = store(&app).await;
    let conn = conn.connection();
    let insert = match backend {
        Backend::Sqlite => {
            "INSERT INTO quarantine (event_type, scan_ref, body, reason, received_at) \
             VALUES ('IDENTIFICATION_NEW', ?, ?, 'unknown event type', ?)"
        }
        Backend::Postgres => {
            "INSERT INTO quarantine (event_type, scan_ref, body, reason, received_at) \
             VALUES ('IDENTIFICATION_NEW', $1, $2, 'unknown event type', $3)"
        }
    };
    conn.execute_raw(Statement::from_sql_and_values(
        conn.get_database_backend(),
        insert,
        [
            scan_ref.clone().into(),
            left_behind.into(),
            (Utc::now() - long_ago()).into(),
        ],
    ))
    .await
    .unwrap();
    assert_eq!(scan(&app, &person.markers()).await.found().len(), 8);

    let output = verdict_purge(&app, &["--older-than", "1h"]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr)
            .contains("0 cases purged, 1 quarantine bodies erased")
    );
    assert_forgotten(
        &app,
        &person.markers(),
        "after retention met a left-behind body",
    )
    .await;
}

/// Two replicas start the job on one PostgreSQL database at once, over more cases than a batch
/// (200) holds: every case is purged exactly once (one revision, one feed change), whichever replica
/// took which batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_retention_jobs_on_two_replicas_purge_each_case_once() {
    const CASES: usize = 250;
    // Over Redis, so this app's watcher hears of the other replicas' purges at once.
    let Some(app) = TestApp::spawn_with(TestAppOptions::new(Backend::Postgres).with_redis()).await
    else {
        return;
    };
    let mut feed = watch_from_now(&app).await;
    let ingest = ingest(&app).await;
    let expired: Vec<String> = (0..CASES).map(|_| payloads::scan_ref()).collect();
    let ingested = futures::stream::iter(&expired)
        .map(|scan_ref| {
            let body = webhook(scan_ref).overall("APPROVED").final_(true).build();
            let ingest = ingest.clone();
            async move { ingest.ingest(arrival(MANUAL, &body, long_ago())).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>();
    for ingested in within("ingesting the cases", ingested).await {
        ingested.unwrap();
    }

    // Both replicas run a pass as they start, and every 100 ms after.
    let mut options = TestAppOptions::new(Backend::Postgres);
    options.retention.retention = Some(StdDuration::from_secs(3600));
    options.retention.purge_interval = StdDuration::from_millis(100);
    let (_first, _second) =
        tokio::join!(app.replica_with(options.clone()), app.replica_with(options));

    let mut purged = 0;
    while purged < CASES {
        let case = next_change(&mut feed).await.case.expect("a case");
        if case.purged_at.is_some() {
            purged += 1;
        }
    }
    let changes = within(
        "the whole feed",
        store(&app)
            .await
            .changes_after(&FeedQuery::after(verdict_domain::Cursor::START, 10_000)),
    )
    .await
    .unwrap();
    let mut purges: HashMap<&str, Vec<u64>> = HashMap::new();
    for change in changes.iter().filter(|change| change.case.is_purged()) {
        purges
            .entry(change.case.scan_ref.as_str())
            .or_default()
            .push(change.case.revision);
    }
    for scan_ref in &expired {
        assert_eq!(purges.get(scan_ref.as_str()), Some(&vec![2]), "{scan_ref}");
    }
    assert_eq!(purges.len(), CASES, "no other purge");
}

on_every_backend!(
    the_retention_job_purges_final_cases_past_the_retention_and_nothing_else,
    verdict_purge_older_than_runs_one_pass,
    a_quarantined_body_naming_a_purged_case_goes_with_retention,
);
