//! Erasure of one case: by RPC and by CLI, what it keeps and what it erases, how watchers learn
//! of it, and that nothing personal comes back afterwards.

use verdict_proto::verdict::v1::{Decision, PurgeCaseRequest};
use verdict_testkit::payloads;
use verdict_testkit::streams::{next_case, next_change};
use verdict_testkit::{Backend, TestAppOptions, on_every_backend};

use super::forgotten::{assert_forgotten, scan};
use super::*;

/// PurgeCase as an anonymous caller (the app has no credentials: every scope).
async fn purge_rpc(app: &TestApp, scan_ref: &str) -> Result<Case, tonic::Status> {
    let request = PurgeCaseRequest {
        scan_ref: scan_ref.to_owned(),
    };
    within("PurgeCase", admin_client(app).await.purge_case(request))
        .await
        .map(|response| response.into_inner().case.expect("a case"))
}

/// A final case of `person` with a preliminary result before it, and two deliveries of it set
/// aside in the quarantine (one refused by triage, one by the state machine).
async fn decided_case_with_quarantined_copies(app: &TestApp, person: &Person) -> String {
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &person.body(&scan_ref).build()).await;
    app.post_ok(MANUAL, &person.decided(&scan_ref, "APPROVED"))
        .await;
    for (event, body, kind) in [
        (
            "IDENTIFICATION_TELEPORTED",
            person.body(&scan_ref).overall("APPROVED").final_(true),
            "unknown_event_type",
        ),
        (
            MANUAL,
            person.body(&scan_ref).overall("DENIED").final_(false),
            "header_body_mismatch",
        ),
    ] {
        let (status, answer) = app.post_json(Some(event), &body.build()).await;
        assert_eq!((status, answer["kind"].as_str()), (200, Some(kind)));
    }
    scan_ref
}

/// The DESIGN §11 erasure: the person and every raw body go — deliveries and quarantine — the
/// decision and history stay, the purge is one change seen on WatchCase and WatchCases, and
/// another case's data is untouched.
async fn erasure_by_rpc_forgets_the_person_everywhere_and_keeps_the_decision(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let (person, bystander) = (Person::new(), Person::new());
    let scan_ref = decided_case_with_quarantined_copies(&app, &person).await;
    let other = payloads::scan_ref();
    app.post_ok(
        MANUAL,
        &bystander
            .body(&other)
            .final_(true)
            .overall("DENIED")
            .build(),
    )
    .await;

    let before = scan(&app, &person.markers()).await;
    println!("{}", before.report("table scan before the purge:"));
    assert_eq!(
        before.found(),
        {
            let mut all = person.markers();
            all.sort_unstable();
            all
        },
        "the scan finds every marker while they are stored"
    );
    for column in [
        "case_persons.first_name",
        "deliveries.body",
        "quarantine.body",
    ] {
        assert!(
            before.hits.keys().any(|(c, _)| c == column),
            "{column} held the person"
        );
    }

    let mut case_stream = app.watch_case(&scan_ref, 2, false).await;
    let mut feed = watch_from_now(&app).await;

    let purged = purge_rpc(&app, &scan_ref).await.unwrap();
    assert_eq!(
        (purged.revision, purged.decision(), purged.r#final),
        (3, Decision::Approved, true),
        "one revision more, the decision kept"
    );
    let purged_at = purged.purged_at.expect("purged_at set");
    assert_eq!(purged.person, None);

    let seen = next_case(&mut case_stream)
        .await
        .expect("WatchCase sees it");
    assert_eq!(
        (seen.revision, seen.purged_at.as_ref()),
        (3, Some(&purged_at))
    );
    let change = next_change(&mut feed).await.case.expect("a case");
    assert_eq!(
        (
            change.scan_ref.as_str(),
            change.revision,
            change.purged_at.as_ref()
        ),
        (scan_ref.as_str(), 3, Some(&purged_at))
    );

    let full = get(&app, &scan_ref, CaseView::Full).await;
    assert_eq!(
        full.person, None,
        "CASE_VIEW_FULL of a purged case has no person"
    );
    assert_eq!(full.overall_status, "APPROVED");
    let history: Vec<(&str, u64)> = full
        .history
        .iter()
        .map(|e| (e.outcome.as_str(), e.revision))
        .collect();
    assert_eq!(history, [("applied", 1), ("applied", 2)], "metadata stays");

    assert_forgotten(
        &app,
        &person.markers(),
        &format!("after the purge ({backend:?})"),
    )
    .await;
    assert_eq!(
        scan(&app, &bystander.markers()).await.found().len(),
        bystander.markers().len(),
        "another case keeps its data"
    );
    let other = get(&app, &other, CaseView::Full).await;
    assert!(other.person.is_some() && other.purged_at.is_none());

    let metrics = within("/metrics", app.http().get(app.admin_url("/metrics")).send())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("verdict_purges_total{") && l.contains(r#"reason="erasure""#)),
        "{metrics}"
    );
}

/// After a purge: a copy of an old delivery is still a duplicate (the hashes are kept),
/// purging again changes nothing, and what arrives later is recorded without its body or a
/// person — applied, duplicate or quarantined alike.
async fn after_a_purge_copies_are_duplicates_and_nothing_personal_comes_back(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let person = Person::new();
    let scan_ref = decided_case_with_quarantined_copies(&app, &person).await;
    purge_rpc(&app, &scan_ref).await.unwrap();
    let head = feed_head(&app).await;

    let final_body = person.decided(&scan_ref, "APPROVED");
    let (status, answer) = app.post_json(Some(MANUAL), &final_body).await;
    assert_eq!(
        (
            status,
            answer["outcome"].as_str(),
            answer["revision"].as_u64()
        ),
        (200, Some("duplicate"), Some(3)),
        "the purged body's hash still recognises it"
    );
    let again = purge_rpc(&app, &scan_ref).await.unwrap();
    assert_eq!(again.revision, 3, "purging twice changes nothing");
    assert_eq!(feed_head(&app).await, head, "and adds nothing to the feed");

    let later = Person::new();
    let reopened = later.body(&scan_ref).overall("REVIEWING").build();
    let (_, answer) = app
        .post_json(Some("IDENTIFICATION_RESUBMITTED"), &reopened)
        .await;
    assert_eq!(
        (answer["outcome"].as_str(), answer["revision"].as_u64()),
        (Some("applied"), Some(4))
    );
    let (_, answer) = app
        .post_json(
            Some("IDENTIFICATION_TELEPORTED"),
            &later.body(&scan_ref).build(),
        )
        .await;
    assert_eq!(answer["outcome"], "quarantined");
    let full = get(&app, &scan_ref, CaseView::Full).await;
    assert_eq!((full.revision, full.person.as_ref()), (4, None));
    assert!(full.purged_at.is_some(), "purged stays purged");
    assert_forgotten(&app, &later.markers(), "after deliveries to a purged case").await;
}

/// `verdict purge --scan-ref` erases one case and publishes the purge, so a watcher of the
/// running app (another process, reached through Redis) sees it long before any re-read; an
/// unknown scanRef fails with a message, and a second purge says nothing was left.
async fn erasure_by_cli_reaches_the_watchers_of_every_replica(backend: Backend) {
    let mut options = TestAppOptions::new(backend).with_redis();
    // Far beyond the test's patience: only the publish can deliver the purge in time.
    options.resync_interval = std::time::Duration::from_secs(300);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let person = Person::new();
    let scan_ref = payloads::scan_ref();
    app.post_ok(MANUAL, &person.decided(&scan_ref, "DENIED"))
        .await;
    let mut stream = app.watch_case(&scan_ref, 1, false).await;

    let output = verdict_purge(&app, &["--scan-ref", &scan_ref]).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = json_lines(&output);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(
        (
            lines[0]["scanRef"].as_str(),
            lines[0]["revision"].as_u64(),
            lines[0]["erased"].as_bool()
        ),
        (Some(scan_ref.as_str()), Some(2), Some(true))
    );
    let seen = next_case(&mut stream)
        .await
        .expect("the watcher sees the purge");
    assert_eq!(seen.revision, 2);
    assert!(seen.purged_at.is_some());
    assert_forgotten(&app, &person.markers(), "after verdict purge --scan-ref").await;

    let again = verdict_purge(&app, &["--scan-ref", &scan_ref]).await;
    assert!(again.status.success());
    assert_eq!(json_lines(&again)[0]["erased"], false);
    assert!(String::from_utf8_lossy(&again.stderr).contains("nothing was left to erase"));

    let unknown = verdict_purge(&app, &["--scan-ref", "no-such-case"]).await;
    assert!(!unknown.status.success(), "an unknown case is an error");
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(
        stderr.contains(r#"no case with scan_ref "no-such-case""#),
        "{stderr}"
    );
    assert!(unknown.stdout.is_empty());
}

on_every_backend!(
    erasure_by_rpc_forgets_the_person_everywhere_and_keeps_the_decision,
    after_a_purge_copies_are_duplicates_and_nothing_personal_comes_back,
    erasure_by_cli_reaches_the_watchers_of_every_replica,
);
