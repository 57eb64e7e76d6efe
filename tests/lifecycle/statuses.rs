//! Lifecycle statuses: a webhook whose overall status is DELETED, ARCHIVED or EXPIRED-DELETED
//! purges its case in the transaction that records it, keeping the decision.

use chrono::Duration;
use verdict_proto::verdict::v1::Decision;
use verdict_testkit::payloads;
use verdict_testkit::{Backend, on_every_backend};

use super::forgotten::assert_forgotten;
use super::*;

/// One change: the notice applies (its status, one revision) and purges in the same
/// transaction; the decision stays, the person and every body go.
async fn a_lifecycle_status_purges_in_the_transaction_that_records_it(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for status in ["DELETED", "ARCHIVED", "EXPIRED-DELETED"] {
        let person = Person::new();
        let scan_ref = payloads::scan_ref();
        app.post_ok(MANUAL, &person.decided(&scan_ref, "APPROVED"))
            .await;
        let head = feed_head(&app).await;

        let notice = person.decided(&scan_ref, status);
        let (code, answer) = app.post_json(Some(LEGACY), &notice).await;
        assert_eq!(
            (
                code,
                answer["outcome"].as_str(),
                answer["revision"].as_u64()
            ),
            (200, Some("applied"), Some(2)),
            "{status}"
        );
        assert_eq!(
            feed_head(&app).await.0,
            head.0 + 1,
            "{status}: the notice and the purge are one change"
        );
        let case = get(&app, &scan_ref, CaseView::Full).await;
        assert_eq!(
            (case.decision(), case.r#final, case.overall_status.as_str()),
            (Decision::Approved, true, status),
            "the decision stays"
        );
        assert!(case.purged_at.is_some(), "{status}");
        assert_eq!(case.person, None);
        assert_forgotten(&app, &person.markers(), &format!("after {status}")).await;
    }
}

/// A notice judged stale — it arrived before the final result recorded since — does not change
/// the status, but its purge still applies.
async fn a_superseded_lifecycle_notice_still_purges(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let person = Person::new();
    let scan_ref = payloads::scan_ref();
    let final_body = person.decided(&scan_ref, "DENIED");
    ingest_ago(&app, MANUAL, &final_body, Duration::minutes(5)).await;
    // Delivered late (reprocessed, say): it arrived ten minutes ago, before the decision.
    let notice = person.decided(&scan_ref, "DELETED");
    let recorded = ingest_ago(&app, LEGACY, &notice, Duration::minutes(10)).await;
    assert_eq!(
        (recorded.label(), recorded.case().unwrap().revision),
        ("applied", 2)
    );

    let case = get(&app, &scan_ref, CaseView::Full).await;
    assert_eq!(
        (case.overall_status.as_str(), case.decision()),
        ("DENIED", Decision::Denied),
        "superseded as a status"
    );
    assert!(
        case.purged_at.is_some() && case.person.is_none(),
        "but purged"
    );
    assert_forgotten(&app, &person.markers(), "after a superseded DELETED").await;

    // Purged now: the same notice again, or another one as late, changes nothing more.
    let archived = person.decided(&scan_ref, "ARCHIVED");
    let recorded = ingest_ago(&app, LEGACY, &archived, Duration::minutes(9)).await;
    assert_eq!(
        (recorded.label(), recorded.case().unwrap().revision),
        ("stale", 2)
    );
}

on_every_backend!(
    a_lifecycle_status_purges_in_the_transaction_that_records_it,
    a_superseded_lifecycle_notice_still_purges,
);
