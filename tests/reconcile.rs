//! Reconciliation end to end: the real app on `127.0.0.1:0` against a fake of iDenfy's status
//! API (`verdict_testkit::FakeIdenfy`, the documented contract: Basic auth checked, answers per
//! scanRef, calls counted). A case still open a second after its last change is due (tests do
//! not wait hours); every wait is for an event — a stream message, a call at the fake.
//!
//! The scheduler of one replica works one lookup at a time, the longest-unchanged case first.
//! So a later call at the fake proves that an earlier lookup was recorded, whatever its fate.

#[path = "reconcile/trace.rs"]
mod trace;

use std::time::Duration;

use verdict_proto::verdict::v1::{CaseView, Decision};
use verdict_testkit::idenfy::{Answer, FakeIdenfy};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::{next_case, next_change};
use verdict_testkit::{Backend, TestApp, TestAppOptions, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

/// A case unchanged for this long is looked up.
const AFTER: Duration = Duration::from_secs(1);

/// An app reconciling against `fake`, with `tweak` applied to its options.
async fn app(
    backend: Backend,
    fake: &FakeIdenfy,
    tweak: impl FnOnce(&mut TestAppOptions),
) -> Option<TestApp> {
    let mut options = TestAppOptions::new(backend);
    options.reconcile = fake.reconcile_config(AFTER);
    tweak(&mut options);
    TestApp::spawn_with(options).await
}

/// Posts a preliminary result (REVIEWING, not final) for a new case and returns its scanRef.
async fn open_case(app: &TestApp) -> String {
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    scan_ref
}

/// The case as it stands, with its history.
async fn case(app: &TestApp, scan_ref: &str) -> verdict_proto::verdict::v1::Case {
    app.get_case(scan_ref, CaseView::Full, true)
        .await
        .expect("the case exists")
}

/// Waits for the final snapshot of `scan_ref` on a WatchCase opened after revision 1.
async fn final_of(app: &TestApp, scan_ref: &str) -> verdict_proto::verdict::v1::Case {
    let mut stream = app.watch_case(scan_ref, 1, true).await;
    let case = within("the final decision", next_case(&mut stream))
        .await
        .expect("a change arrives");
    assert!(case.r#final, "{case:?}");
    case
}

async fn approved_answer_makes_the_case_final_and_reaches_a_waiting_watcher(backend: Backend) {
    let fake = FakeIdenfy::start().await;
    let Some(app) = app(backend, &fake, |_| {}).await else {
        return;
    };
    let scan_ref = open_case(&app).await;
    fake.answer(&scan_ref, [Answer::Status("APPROVED")]);
    let mut stream = app.watch_case(&scan_ref, 1, true).await;

    let decided = within("the reconciled decision", next_case(&mut stream))
        .await
        .expect("the watcher sees the change");
    assert_eq!(
        (decided.decision(), decided.r#final, decided.revision),
        (Decision::Approved, true, 2)
    );
    assert_eq!(decided.last_event_type, "RECONCILED");
    assert_eq!(decided.manual_document, "DOC_VALIDATED");
    assert!(next_case(&mut stream).await.is_none(), "until_final ends");

    let calls = fake.calls();
    assert_eq!(fake.calls_for(&scan_ref).len(), 1, "{calls:?}");
    assert!(calls.iter().all(|call| call.authorized));
    let stored = case(&app, &scan_ref).await;
    let last = stored.history.last().expect("a history");
    assert_eq!(
        (
            last.event_type.as_str(),
            last.outcome.as_str(),
            last.revision
        ),
        ("RECONCILED", "applied", 2)
    );
    let person = stored.person.expect("the person the webhook brought");
    assert_eq!(person.first_name, "JONAS", "an answer names no person");
}

/// REVIEWING tells nothing new: kept in the history as stale, no revision, no change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewing_answer_changes_nothing() {
    let fake = FakeIdenfy::start().await;
    let app = app(Backend::Sqlite, &fake, |_| {}).await.unwrap();
    let reviewing = open_case(&app).await;
    let approved = open_case(&app).await;
    fake.answer(&reviewing, [Answer::Status("REVIEWING")]);
    fake.answer(&approved, [Answer::Status("APPROVED")]);

    // The older case is looked up first: once the newer one is decided, its answer is in.
    final_of(&app, &approved).await;
    assert!(!fake.calls_for(&reviewing).is_empty());
    let stored = case(&app, &reviewing).await;
    assert_eq!(
        (stored.decision(), stored.r#final, stored.revision),
        (Decision::Pending, false, 1)
    );
    assert_eq!(stored.last_event_type, AUTO);
    let outcomes: Vec<(&str, &str, u64)> = stored
        .history
        .iter()
        .map(|e| (e.event_type.as_str(), e.outcome.as_str(), e.revision))
        .collect();
    assert_eq!(
        outcomes[..2],
        [(AUTO, "applied", 1), ("RECONCILED", "stale", 1)]
    );
}

/// A lookup that fails leaves its case open and the service healthy, and is not retried in a
/// tight loop. The second call about the case proves the first failure was handled.
async fn failed_lookup_leaves_the_case_open_and_the_service_healthy(
    fault: Answer,
    result: &str,
    tweak: impl FnOnce(&mut TestAppOptions),
) {
    let fake = FakeIdenfy::start().await;
    let app = app(Backend::Sqlite, &fake, tweak).await.unwrap();
    let scan_ref = open_case(&app).await;
    fake.answer(&scan_ref, [fault]);
    fake.wait_for_calls(Some(&scan_ref), 2).await;

    let stored = case(&app, &scan_ref).await;
    assert_eq!(
        (stored.decision(), stored.r#final, stored.revision),
        (Decision::Pending, false, 1)
    );
    assert!(
        stored.history.iter().all(|e| e.event_type != "RECONCILED"),
        "nothing recorded: {:?}",
        stored.history
    );
    let calls = fake.calls_for(&scan_ref);
    assert!(
        calls[1] - calls[0] >= Duration::from_secs(1),
        "backed off before asking again: {:?}",
        calls[1] - calls[0]
    );

    // Healthy: probes green, webhooks and reads served.
    for probe in ["/readyz", "/healthz"] {
        let status = within("a probe", app.http().get(app.admin_url(probe)).send())
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200, "{probe}");
    }
    let other = payloads::scan_ref();
    app.post_ok(
        MANUAL,
        &webhook(&other).overall("DENIED").final_(true).build(),
    )
    .await;
    let decided = app.get_case(&other, CaseView::Basic, false).await.unwrap();
    assert_eq!(decided.decision(), Decision::Denied);

    let metrics = within("/metrics", app.http().get(app.admin_url("/metrics")).send())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let counted = format!(r#"result="{result}""#);
    assert!(
        metrics
            .lines()
            .any(|line| line.starts_with("verdict_reconcile_total{") && line.contains(&counted)),
        "{counted} not counted:\n{metrics}"
    );
    // The backlog gauges' first read ran when the app started, long before these lookups.
    for gauge in [
        "verdict_oldest_pending_case_seconds ",
        "verdict_quarantine_depth ",
        "verdict_reconcile_after_seconds 1",
    ] {
        assert!(
            metrics.lines().any(|line| line.starts_with(gauge)),
            "{gauge} missing:\n{metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_leave_the_case_open() {
    failed_lookup_leaves_the_case_open_and_the_service_healthy(
        Answer::Status("APPROVED"),
        "unauthorized",
        |options| options.reconcile.api.idenfy_api_secret = Some("wrong".to_owned().into()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_error_leaves_the_case_open() {
    failed_lookup_leaves_the_case_open_and_the_service_healthy(
        Answer::server_error(),
        "server_error",
        |_| {},
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_times_out_and_leaves_the_case_open() {
    failed_lookup_leaves_the_case_open_and_the_service_healthy(Answer::Hang, "timeout", |_| {})
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_instead_of_json_leaves_the_case_open() {
    failed_lookup_leaves_the_case_open_and_the_service_healthy(Answer::Junk, "bad_answer", |_| {})
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_scan_ref_leaves_the_case_open() {
    failed_lookup_leaves_the_case_open_and_the_service_healthy(
        Answer::Http {
            status: 404,
            retry_after: None,
        },
        "not_found",
        |_| {},
    )
    .await;
}

/// 429 with `Retry-After`: nothing is asked before the time iDenfy named (the regular pause
/// after a failure would be 1 s, the case's own next lookup 2 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_lookups_wait_as_long_as_retry_after_says() {
    let fake = FakeIdenfy::start().await;
    let app = app(Backend::Sqlite, &fake, |_| {}).await.unwrap();
    let scan_ref = open_case(&app).await;
    fake.answer(
        &scan_ref,
        [Answer::rate_limited(3), Answer::Status("SUSPECTED")],
    );

    let decided = final_of(&app, &scan_ref).await;
    assert_eq!(decided.decision(), Decision::Suspected);
    let calls = fake.calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_secs(3),
        "asked again after {waited:?}"
    );
}

/// With many cases due at once, one replica asks at most `VERDICT_RECONCILE_RATE` times a
/// second: n calls span at least (n - 1) / rate (one call of slack for scheduling jitter).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_keep_to_the_rate_limit() {
    const RATE: f64 = 4.0;
    const CALLS: usize = 8;
    let fake = FakeIdenfy::start().await;
    let app = app(Backend::Sqlite, &fake, |options| {
        options.reconcile.reconcile_rate = RATE;
    })
    .await
    .unwrap();
    for _ in 0..12 {
        let scan_ref = open_case(&app).await;
        fake.answer(&scan_ref, [Answer::Status("REVIEWING")]);
    }
    fake.wait_for_calls(None, CALLS).await;

    let calls = fake.calls();
    let window = calls[CALLS - 1].at - calls[0].at;
    let allowed = 2.0 + RATE * window.as_secs_f64();
    assert!(
        CALLS as f64 <= allowed,
        "{CALLS} calls within {window:?} at {RATE}/s"
    );
}

/// Two replicas on one PostgreSQL database (and one Redis, so a change either records reaches
/// the stream on the first): each case is asked about once, by one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_ask_once_per_case() {
    let fake = FakeIdenfy::start().await;
    let Some(first) = app(Backend::Postgres, &fake, |options| options.redis = true).await else {
        return;
    };
    let second = first.replica().await;
    let mut feed = first.watch_cases("", true).await;
    let mut open = Vec::new();
    for _ in 0..20 {
        let scan_ref = open_case(&first).await;
        fake.answer(&scan_ref, [Answer::Status("APPROVED")]);
        open.push(scan_ref);
    }

    let mut decided = Vec::new();
    while decided.len() < open.len() {
        let change = within("a final change", next_change(&mut feed)).await;
        let case = change.case.expect("a case");
        assert_eq!(case.last_event_type, "RECONCILED");
        decided.push(case.scan_ref);
    }
    decided.sort();
    open.sort();
    assert_eq!(decided, open);
    for scan_ref in &open {
        assert_eq!(fake.calls_for(scan_ref).len(), 1, "{scan_ref}");
    }
    drop(second);
}

/// The unsigned `Idenfy-Event-Type` header cannot turn a signed body into a reconciliation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_claiming_to_be_reconciled_is_quarantined() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    let (status, answer) = app.post_json(Some("RECONCILED"), &body).await;
    assert_eq!(status, 200);
    assert_eq!(answer["outcome"], "quarantined");
    assert_eq!(answer["kind"], "unknown_event_type");
    let missing = app.get_case(&scan_ref, CaseView::Basic, false).await;
    assert_eq!(missing.unwrap_err().code(), tonic::Code::NotFound);
}

on_every_backend!(approved_answer_makes_the_case_final_and_reaches_a_waiting_watcher);
