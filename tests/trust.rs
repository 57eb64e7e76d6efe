//! End to end, on SQLite and PostgreSQL: what signed bytes can and cannot be made to mean
//! (DESIGN.md sections 3 and 9). Every answer is checked over real HTTP and every case read back
//! over real gRPC.

use serde_json::{Value, json};
use tonic::Code;
use verdict_domain::CaseStore as _;
use verdict_proto::verdict::v1::{Case, CaseView, Decision};
use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestApp, on_every_backend};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";
const RESUBMITTED: &str = "IDENTIFICATION_RESUBMITTED";

/// Every header a delivery can come with; `None` is a missing header (a legacy delivery).
const HEADERS: [Option<&str>; 8] = [
    Some(AUTO),
    Some(MANUAL),
    Some(RESUBMITTED),
    Some("IDENTIFICATION_CANCELLED"),
    Some("IDENTIFICATION_CANCELED"),
    Some("IDENTIFICATION_EXPIRED"),
    Some("IDENTIFICATION"),
    None,
];

async fn basic(app: &TestApp, scan_ref: &str) -> Case {
    app.get_case(scan_ref, CaseView::Basic, false)
        .await
        .expect("the case exists")
}

async fn assert_no_case(app: &TestApp, scan_ref: &str) {
    let err = app
        .get_case(scan_ref, CaseView::Basic, false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{scan_ref} must not exist");
}

/// `(status, outcome, revision)` of an answer.
fn answered(answer: &(u16, Value)) -> (u16, &str, Option<u64>) {
    (
        answer.0,
        answer.1["outcome"].as_str().unwrap_or_default(),
        answer.1["revision"].as_u64(),
    )
}

/// `(status, outcome, kind)` of a quarantining answer.
fn quarantined(answer: &(u16, Value)) -> (u16, &str, &str) {
    (
        answer.0,
        answer.1["outcome"].as_str().unwrap_or_default(),
        answer.1["kind"].as_str().unwrap_or_default(),
    )
}

/// Signed file links as the dashboard's "Resend" mints them anew.
fn links(signature: &str) -> Value {
    let url = |kind: &str| format!("https://s3.example/{kind}.png?Signature={signature}");
    json!({"FRONT": url("FRONT"), "FACE": url("FACE")})
}

async fn stored_bytes_replayed_under_every_other_header_are_duplicates(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A preliminary APPROVED must not become a final approval, end the case or reopen it; a
    // final decision must not be reopened, cancelled or expired.
    let stored = [
        (AUTO, webhook("").overall("APPROVED").final_(false)),
        (MANUAL, webhook("").overall("APPROVED").final_(true)),
    ];
    for (stored_under, body) in stored {
        let scan_ref = payloads::scan_ref();
        let body = body.field("scanRef", json!(scan_ref)).build();
        let first = app.post_json(Some(stored_under), &body).await;
        assert_eq!(answered(&first), (200, "applied", Some(1)));
        let before = basic(&app, &scan_ref).await;

        let mut forged = 0;
        for header in HEADERS.into_iter().filter(|h| *h != Some(stored_under)) {
            let answer = app.post_json(header, &body).await;
            assert_eq!(
                answered(&answer),
                (200, "duplicate", Some(1)),
                "{stored_under} replayed as {header:?}"
            );
            forged += 1;
        }
        assert_eq!(
            basic(&app, &scan_ref).await,
            before,
            "{stored_under}: case unchanged"
        );
        let history = app
            .get_case(&scan_ref, CaseView::Basic, true)
            .await
            .unwrap()
            .history;
        assert_eq!(history.len(), 1 + forged);
        assert!(
            history[1..]
                .iter()
                .all(|e| e.outcome == "duplicate" && e.revision == 1)
        );
    }
}

async fn resends_with_new_file_links_after_the_final_decision_change_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let denied = webhook(&scan_ref).overall("DENIED").final_(true);
    let resubmission = webhook(&scan_ref).overall("REVIEWING").final_(false);
    let approved = webhook(&scan_ref).overall("APPROVED").final_(true);
    let round = [
        (MANUAL, denied.clone().field("fileUrls", links("round-1"))),
        (
            RESUBMITTED,
            resubmission.clone().field("fileUrls", links("resubmitted")),
        ),
        (MANUAL, approved.field("fileUrls", links("round-2"))),
    ];
    for (revision, (event, body)) in (1..).zip(round) {
        let answer = app.post_json(Some(event), &body.build()).await;
        assert_eq!(
            answered(&answer),
            (200, "applied", Some(revision)),
            "{event}"
        );
    }

    // The dashboard resends the old resubmission and the first round's denial, re-signed.
    let resends = [
        (
            RESUBMITTED,
            resubmission.field("fileUrls", links("resent-1")),
        ),
        (MANUAL, denied.field("fileUrls", links("resent-2"))),
    ];
    for (event, body) in resends {
        let answer = app.post_json(Some(event), &body.build()).await;
        assert_eq!(answered(&answer), (200, "duplicate", Some(3)), "{event}");
    }
    let case = basic(&app, &scan_ref).await;
    assert_eq!(
        (case.decision(), case.r#final, case.revision),
        (Decision::Approved, true, 3),
        "the old resubmission did not reopen, the old final did not flip"
    );
}

async fn manual_finished_saying_not_final_is_quarantined(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    // A case Verdict never saw: quarantined, and no case (not even a placeholder) appears.
    let new_case = payloads::scan_ref();
    let body = webhook(&new_case).overall("APPROVED").final_(false).build();
    let answer = app.post_json(Some(MANUAL), &body).await;
    assert_eq!(
        quarantined(&answer),
        (200, "quarantined", "header_body_mismatch")
    );
    assert!(answer.1.get("revision").is_none());
    assert_no_case(&app, &new_case).await;

    // A case in review: it stays as it was.
    let open = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&open).overall("REVIEWING").build())
        .await;
    let before = basic(&app, &open).await;
    let contradicting = webhook(&open).overall("DENIED").final_(false).build();
    let answer = app.post_json(Some(MANUAL), &contradicting).await;
    assert_eq!(
        quarantined(&answer),
        (200, "quarantined", "header_body_mismatch")
    );
    assert_eq!(basic(&app, &open).await, before);

    let store = SeaStore::connect(app.database().url(), StoreOptions::default())
        .await
        .unwrap();
    let kinds: Vec<_> = store
        .quarantined(0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|item| (item.event_type, item.reason_kind))
        .collect();
    let expected = (
        Some(MANUAL.to_owned()),
        Some("header_body_mismatch".to_owned()),
    );
    assert_eq!(kinds, [expected.clone(), expected], "kept for reprocessing");
}

async fn final_result_without_a_decision_is_quarantined(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let unsummarisable = [
        (Some(AUTO), webhook("").overall("REVIEWING").final_(true)),
        (Some(MANUAL), webhook("").overall("REVIEWING").final_(true)),
        // MANUAL_FINISHED is final without the flag too.
        (Some(MANUAL), webhook("").overall("ACTIVE").without_final()),
        (
            Some(MANUAL),
            webhook("").status("overall", Value::Null).final_(true),
        ),
        (None, webhook("").overall("SOMETHING_NEW").final_(true)),
    ];
    for (event, body) in unsummarisable {
        let scan_ref = payloads::scan_ref();
        let body = body.field("scanRef", json!(scan_ref)).build();
        let answer = app.post_json(event, &body).await;
        assert_eq!(
            quarantined(&answer),
            (200, "quarantined", "unsummarisable_final"),
            "{event:?}: never a final case with a PENDING decision"
        );
        assert_no_case(&app, &scan_ref).await;
    }
    // CANCELLED decides by its type, whatever the status says.
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("ACTIVE").build();
    let answer = app.post_json(Some("IDENTIFICATION_CANCELLED"), &body).await;
    assert_eq!(answered(&answer), (200, "applied", Some(1)));
    let case = basic(&app, &scan_ref).await;
    assert_eq!((case.decision(), case.r#final), (Decision::Cancelled, true));
}

async fn lifecycle_statuses_keep_the_decision(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
    )
    .await;
    let approved = basic(&app, &scan_ref).await;

    let notices = [
        (MANUAL, "DELETED", true),
        (AUTO, "ARCHIVED", false),
        ("IDENTIFICATION", "EXPIRED-DELETED", true),
    ];
    for (revision, (event, overall, flag)) in (2..).zip(notices) {
        let body = webhook(&scan_ref).overall(overall).final_(flag).build();
        let answer = app.post_json(Some(event), &body).await;
        assert_eq!(
            answered(&answer),
            (200, "applied", Some(revision)),
            "{overall}"
        );
        let case = basic(&app, &scan_ref).await;
        assert_eq!(
            (case.decision(), case.r#final, &case.finalized_at),
            (Decision::Approved, true, &approved.finalized_at),
            "{overall} keeps the decision"
        );
        assert_eq!(case.overall_status, overall);
        assert_eq!(case.manual_document, approved.manual_document);
    }

    // A notice about a case Verdict never saw invents no decision.
    let unseen = payloads::scan_ref();
    let body = webhook(&unseen).overall("DELETED").final_(true).build();
    assert_eq!(
        answered(&app.post_json(Some(MANUAL), &body).await),
        (200, "applied", Some(1))
    );
    let case = basic(&app, &unseen).await;
    assert_eq!((case.decision(), case.r#final), (Decision::Pending, false));
    assert_eq!(case.overall_status, "DELETED");
}

async fn nul_characters_are_answered_200_and_stored_without_them(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref)
        .client_id("client\u{0}-1")
        .overall("APPROVED")
        .final_(true)
        .data("docFirstName", json!("JO\u{0}NAS"))
        .data("docNumber", json!("\u{0}LT1234567\u{0}"))
        .status("autoDocument", json!("DOC_\u{0}VALIDATED"))
        .status("fraudTags", json!(["TAG\u{0}A"]))
        .field("orgAddress", json!("nowhere\u{0}"))
        .build();
    assert!(
        String::from_utf8_lossy(&body).contains("\\u0000"),
        "NUL is on the wire as the JSON escape"
    );
    let answer = app.post_json(Some(MANUAL), &body).await;
    assert_eq!(answered(&answer), (200, "applied", Some(1)), "{}", answer.1);

    let case = app
        .get_case(&scan_ref, CaseView::Full, false)
        .await
        .unwrap();
    let person = case.person.clone().unwrap();
    assert_eq!(
        (
            case.client_id.as_str(),
            case.auto_document.as_str(),
            person.first_name.as_str(),
            person.document_number.as_str(),
        ),
        ("client-1", "DOC_VALIDATED", "JONAS", "LT1234567")
    );
    assert_eq!(case.fraud_tags, ["TAGA"]);
    assert_eq!(case.decision(), Decision::Approved);

    // The raw body is kept byte for byte (a blob), NUL escapes included.
    let store = SeaStore::connect(app.database().url(), StoreOptions::default())
        .await
        .unwrap();
    let db = store.connection();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            match backend {
                Backend::Sqlite => "SELECT body FROM deliveries WHERE scan_ref = ?",
                Backend::Postgres => "SELECT body FROM deliveries WHERE scan_ref = $1",
            },
            [scan_ref.clone().into()],
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get_by_index::<Vec<u8>>(0).unwrap(), body);

    // A NUL in the key itself is no key iDenfy issues: quarantined, never a case.
    let body = webhook("abc\u{0}def")
        .overall("APPROVED")
        .final_(true)
        .build();
    let answer = app.post_json(Some(MANUAL), &body).await;
    assert_eq!(
        quarantined(&answer),
        (200, "quarantined", "invalid_scan_ref")
    );
}

async fn scan_refs_outside_the_vendor_contract_are_quarantined(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let too_long = "x".repeat(37);
    for scan_ref in [too_long.as_str(), "", "   ", "line\nbreak", "esc\u{1b}[31m"] {
        let body = webhook(scan_ref).overall("APPROVED").final_(true).build();
        let answer = app.post_json(Some(MANUAL), &body).await;
        assert_eq!(
            quarantined(&answer),
            (200, "quarantined", "invalid_scan_ref"),
            "{scan_ref:?}"
        );
        let reason = answer.1["reason"].as_str().unwrap();
        assert!(reason.starts_with("scanRef "), "{reason}");
    }
    assert_no_case(&app, &too_long).await;

    // At the limit it is a case like any other.
    let longest = format!("{}-{}", "a".repeat(30), "b".repeat(5));
    assert_eq!(longest.len(), 36);
    let body = webhook(&longest).build();
    assert_eq!(
        answered(&app.post_json(Some(AUTO), &body).await),
        (200, "applied", Some(1))
    );
}

on_every_backend!(
    stored_bytes_replayed_under_every_other_header_are_duplicates,
    resends_with_new_file_links_after_the_final_decision_change_nothing,
    manual_finished_saying_not_final_is_quarantined,
    final_result_without_a_decision_is_quarantined,
    lifecycle_statuses_keep_the_decision,
    nul_characters_are_answered_200_and_stored_without_them,
    scan_refs_outside_the_vendor_contract_are_quarantined,
);
