//! End to end: signed iDenfy webhooks posted over real HTTP to the real app, read back over real
//! gRPC. Every ingress answer of DESIGN.md section 4, on SQLite and PostgreSQL.

use serde_json::{Value, json};
use tonic::Code;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use verdict_proto::verdict::v1::{Case, CaseView, Decision};
use verdict_testkit::payloads::{self, REAL_LEGACY, REAL_NEW, webhook};
use verdict_testkit::{Backend, TestApp, TestAppOptions, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";
const RESUBMITTED: &str = "IDENTIFICATION_RESUBMITTED";

async fn post(app: &TestApp, event: Option<&str>, body: &[u8]) -> (u16, Value) {
    app.post_json(event, body).await
}

async fn get(
    app: &TestApp,
    scan_ref: &str,
    view: CaseView,
    history: bool,
) -> Result<Case, tonic::Status> {
    app.get_case(scan_ref, view, history).await
}

async fn signed_real_payload_is_visible_through_get_case(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = payloads::real(REAL_NEW, &scan_ref);

    let (status, answer) = post(&app, Some(AUTO), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "applied");

    let case = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
    assert_eq!(case.scan_ref, scan_ref);
    assert_eq!(case.client_id, "123");
    assert_eq!(case.revision, 1);
    assert!(!case.r#final, "the real payload says final: false");
    assert_eq!(case.decision(), Decision::Pending);
    assert_eq!(case.overall_status, "APPROVED");
    assert_eq!(case.auto_document, "DOC_VALIDATED");
    assert_eq!(case.manual_face, "FACE_MATCH");
    assert!(
        case.person.is_none(),
        "the basic view never carries personal data"
    );

    let full = get(&app, &scan_ref, CaseView::Full, false).await.unwrap();
    let person = full.person.expect("the full view carries the person");
    assert_eq!(person.first_name, "FIRST-NAME-EXAMPLE");
    assert_eq!(
        person.date_of_birth, "YYYY-MM-DD",
        "placeholder dates are kept verbatim"
    );
}

async fn legacy_payload_without_final_or_event_type_is_final_when_approved(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let (status, answer) = post(&app, None, &payloads::real(REAL_LEGACY, &scan_ref)).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("applied")));

    let case = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
    assert!(case.r#final);
    assert_eq!(case.decision(), Decision::Approved);
    assert_eq!(case.last_event_type, "IDENTIFICATION");
    assert!(case.finalized_at.is_some());
}

async fn review_round_ends_in_the_manual_decision(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let preliminary = webhook(&scan_ref).overall("APPROVED").final_(false).build();
    let manual = webhook(&scan_ref).overall("DENIED").final_(true).build();

    assert_eq!(
        post(&app, Some(AUTO), &preliminary).await.1["outcome"],
        "applied"
    );
    let pending = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
    assert_eq!(
        (pending.decision(), pending.r#final),
        (Decision::Pending, false)
    );

    assert_eq!(
        post(&app, Some(MANUAL), &manual).await.1["outcome"],
        "applied"
    );
    let case = get(&app, &scan_ref, CaseView::Basic, true).await.unwrap();
    assert_eq!(
        (case.decision(), case.r#final, case.revision),
        (Decision::Denied, true, 2)
    );
    let outcomes: Vec<_> = case
        .history
        .iter()
        .map(|e| (e.event_type.as_str(), e.outcome.as_str(), e.revision))
        .collect();
    assert_eq!(outcomes, [(AUTO, "applied", 1), (MANUAL, "applied", 2)]);
}

async fn late_preliminary_result_does_not_override_final(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let manual = webhook(&scan_ref).overall("APPROVED").final_(true).build();
    let preliminary = webhook(&scan_ref)
        .overall("SUSPECTED")
        .final_(false)
        .build();

    assert_eq!(
        post(&app, Some(MANUAL), &manual).await.1["outcome"],
        "applied"
    );
    let (status, answer) = post(&app, Some(AUTO), &preliminary).await;
    assert_eq!((status, answer["outcome"].as_str()), (200, Some("stale")));

    let case = get(&app, &scan_ref, CaseView::Basic, true).await.unwrap();
    assert_eq!((case.decision(), case.revision), (Decision::Approved, 1));
    assert_eq!(
        case.history.len(),
        2,
        "the stale delivery is kept in the history"
    );
    assert_eq!(case.history[1].outcome, "stale");
}

async fn duplicate_delivery_is_acknowledged_without_a_new_revision(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();

    assert_eq!(
        post(&app, Some(MANUAL), &body).await.1["outcome"],
        "applied"
    );
    for _ in 0..2 {
        let (status, answer) = post(&app, Some(MANUAL), &body).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (200, Some("duplicate"))
        );
    }
    let case = get(&app, &scan_ref, CaseView::Basic, true).await.unwrap();
    assert_eq!(case.revision, 1);
    let outcomes: Vec<_> = case.history.iter().map(|e| e.outcome.as_str()).collect();
    assert_eq!(outcomes, ["applied", "duplicate", "duplicate"]);
}

async fn resubmission_reopens_a_final_case(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let denied = webhook(&scan_ref).overall("DENIED").final_(true).build();
    let resubmitted = webhook(&scan_ref)
        .overall("REVIEWING")
        .final_(false)
        .build();
    let approved = webhook(&scan_ref).overall("APPROVED").final_(true).build();

    post(&app, Some(MANUAL), &denied).await;
    assert_eq!(
        post(&app, Some(RESUBMITTED), &resubmitted).await.1["outcome"],
        "applied"
    );
    let reopened = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
    assert_eq!(
        (reopened.decision(), reopened.r#final, reopened.revision),
        (Decision::Pending, false, 2)
    );
    assert!(reopened.finalized_at.is_none());

    post(&app, Some(MANUAL), &approved).await;
    let case = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
    assert_eq!(
        (case.decision(), case.r#final, case.revision),
        (Decision::Approved, true, 3)
    );
}

async fn cancellation_and_expiry_are_final_decisions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for (event, decision) in [
        ("IDENTIFICATION_CANCELLED", Decision::Cancelled),
        ("IDENTIFICATION_CANCELED", Decision::Cancelled),
        ("IDENTIFICATION_EXPIRED", Decision::Expired),
    ] {
        let scan_ref = payloads::scan_ref();
        let body = webhook(&scan_ref).overall("ACTIVE").final_(false).build();
        assert_eq!(
            post(&app, Some(event), &body).await.1["outcome"],
            "applied",
            "{event}"
        );
        let case = get(&app, &scan_ref, CaseView::Basic, false).await.unwrap();
        assert_eq!((case.decision(), case.r#final), (decision, true), "{event}");
    }
}

async fn unicode_names_survive_the_round_trip(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    // Written with \u escapes on the wire, as iDenfy sends original-script fields.
    let body = webhook(&scan_ref).build();
    let text = String::from_utf8(body)
        .unwrap()
        .replace("\"JONAS\"", "\"\\u0160ar\\u016bnas \\ud83d\\ude00\"")
        .replace(
            "\"JONAITIS\"",
            "\"\u{0416}\u{0443}\u{043a}\u{043e}\u{0432}\"",
        );
    assert_eq!(post(&app, Some(AUTO), text.as_bytes()).await.0, 200);
    let person = get(&app, &scan_ref, CaseView::Full, false)
        .await
        .unwrap()
        .person
        .unwrap();
    assert_eq!(person.first_name, "Šarūnas 😀");
    assert_eq!(person.last_name, "Жуков");
}

async fn unknown_event_type_is_quarantined_not_lost(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let (status, answer) = post(&app, Some("IDENTIFICATION_TELEPORTED"), &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["outcome"], "quarantined");
    assert!(
        answer["reason"]
            .as_str()
            .unwrap()
            .contains("IDENTIFICATION_TELEPORTED"),
        "{answer}"
    );
    let err = get(&app, &scan_ref, CaseView::Basic, false)
        .await
        .unwrap_err();
    assert_eq!(
        err.code(),
        Code::NotFound,
        "a quarantined delivery does not make a case"
    );
}

async fn signed_garbage_is_quarantined(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    for body in [
        &b"{not json"[..],
        br#"{"status": {"overall": "APPROVED"}}"#,
        b"[1,2]",
    ] {
        let (status, answer) = post(&app, Some(MANUAL), body).await;
        assert_eq!(
            (status, answer["outcome"].as_str()),
            (200, Some("quarantined")),
            "{answer}"
        );
        assert!(!answer["reason"].as_str().unwrap_or_default().is_empty());
    }
}

on_every_backend!(
    signed_real_payload_is_visible_through_get_case,
    legacy_payload_without_final_or_event_type_is_final_when_approved,
    review_round_ends_in_the_manual_decision,
    late_preliminary_result_does_not_override_final,
    duplicate_delivery_is_acknowledged_without_a_new_revision,
    resubmission_reopens_a_final_case,
    cancellation_and_expiry_are_final_decisions,
    unicode_names_survive_the_round_trip,
    unknown_event_type_is_quarantined_not_lost,
    signed_garbage_is_quarantined,
);

// The rejections below never reach the database, so SQLite is enough to prove them.

fn sqlite_app() -> impl std::future::Future<Output = Option<TestApp>> {
    TestApp::spawn(Backend::Sqlite)
}

async fn raw_post(app: &TestApp, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, Value) {
    let mut request = app.http().post(app.url("/webhooks/idenfy")).body(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = within("the webhook answer", request.send()).await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn assert_nothing_stored(app: &TestApp, scan_ref: &str) {
    let err = get(app, scan_ref, CaseView::Basic, false)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn missing_signature_is_401_and_stores_nothing() {
    let app = sqlite_app().await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let (status, answer) = raw_post(&app, &[("content-type", "application/json")], body).await;
    assert_eq!(status, 401);
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .contains("Idenfy-Signature"),
        "{answer}"
    );
    assert_nothing_stored(&app, &scan_ref).await;
}

#[tokio::test]
async fn wrong_or_malformed_signature_is_401_and_stores_nothing() {
    let app = sqlite_app().await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let wrong = verdict_domain::sign(b"another key", &body);
    let mut tampered_body = body.clone();
    tampered_body[10] ^= 1;
    let right = app.sign(&body);
    for (signature, body) in [
        (wrong.as_str(), body.clone()),
        ("not-hex", body.clone()),
        ("abcd", body.clone()),
        (right.as_str(), tampered_body),
    ] {
        let headers = [
            ("content-type", "application/json"),
            ("idenfy-signature", signature),
        ];
        let (status, answer) = raw_post(&app, &headers, body).await;
        assert_eq!(status, 401, "{signature}: {answer}");
        assert!(answer["error"].is_string());
    }
    assert_nothing_stored(&app, &scan_ref).await;
}

#[tokio::test]
async fn uppercase_hex_signature_is_accepted() {
    let app = sqlite_app().await.unwrap();
    let body = webhook(&payloads::scan_ref()).build();
    let signature = app.sign(&body).to_uppercase();
    let headers = [
        ("content-type", "application/json"),
        ("idenfy-signature", signature.as_str()),
    ];
    assert_eq!(raw_post(&app, &headers, body).await.0, 200);
}

#[tokio::test]
async fn body_over_the_limit_is_413() {
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.max_body_bytes = 1024;
    let app = TestApp::spawn_with(options).await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref)
        .field("padding", json!("x".repeat(2048)))
        .build();
    let signature = app.sign(&body);
    let headers = [
        ("content-type", "application/json"),
        ("idenfy-signature", signature.as_str()),
    ];
    let (status, answer) = raw_post(&app, &headers, body).await;
    assert_eq!(status, 413, "{answer}");
    assert_nothing_stored(&app, &scan_ref).await;
}

#[tokio::test]
async fn non_json_content_type_is_415() {
    let app = sqlite_app().await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let signature = app.sign(&body);
    for content_type in ["text/plain", "application/x-www-form-urlencoded"] {
        let headers = [
            ("content-type", content_type),
            ("idenfy-signature", signature.as_str()),
        ];
        let (status, answer) = raw_post(&app, &headers, body.clone()).await;
        assert_eq!(status, 415, "{content_type}: {answer}");
        assert!(
            answer["error"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    let headers = [("idenfy-signature", signature.as_str())];
    assert_eq!(
        raw_post(&app, &headers, body).await.0,
        415,
        "a missing content type is not JSON"
    );
    assert_nothing_stored(&app, &scan_ref).await;
}

#[tokio::test]
async fn json_content_type_with_charset_is_accepted() {
    let app = sqlite_app().await.unwrap();
    let body = webhook(&payloads::scan_ref()).build();
    let signature = app.sign(&body);
    let headers = [
        ("content-type", "application/json; charset=utf-8"),
        ("idenfy-signature", signature.as_str()),
    ];
    assert_eq!(raw_post(&app, &headers, body).await.0, 200);
}

/// The app's gRPC health for the whole server, as a stream of changes.
async fn serving_updates(app: &TestApp) -> tonic::Streaming<HealthCheckResponse> {
    let url = format!("http://{}", app.grpc_addr());
    let endpoint = tonic::transport::Channel::from_shared(url).unwrap();
    let mut client = HealthClient::new(within("connect", endpoint.connect()).await.unwrap());
    within("health watch", client.watch(HealthCheckRequest::default()))
        .await
        .unwrap()
        .into_inner()
}

/// Waits (bounded) until the health stream reports `wanted`.
async fn next_serving_status(
    updates: &mut tonic::Streaming<HealthCheckResponse>,
    wanted: ServingStatus,
) {
    within("a health update", async {
        while let Some(update) = updates.message().await.unwrap() {
            if update.status() == wanted {
                return;
            }
        }
        panic!("the health stream ended before {wanted:?}");
    })
    .await;
}

#[tokio::test]
async fn database_outage_is_503_with_retry_after_and_the_retry_is_stored() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).overall("APPROVED").final_(true).build();

    let mut health = serving_updates(&app).await;
    app.database().set_reachable(false).await;
    let response = app.post_webhook(Some(MANUAL), &body).await;
    assert_eq!(response.status().as_u16(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let answer: Value = response.json().await.unwrap();
    assert!(answer["error"].is_string(), "{answer}");
    // The next readiness ping fails: gRPC health says so, and `/readyz` on both listeners,
    // reading the same signal, says so the same moment.
    next_serving_status(&mut health, ServingStatus::NotServing).await;
    for url in [app.url("/readyz"), app.admin_url("/readyz")] {
        let ready = within("readyz", app.http().get(&url).send()).await.unwrap();
        assert_eq!(
            ready.status().as_u16(),
            503,
            "{url}: not ready while the database is down"
        );
    }

    app.database().set_reachable(true).await;
    next_serving_status(&mut health, ServingStatus::Serving).await;
    let ready = within("readyz", app.http().get(app.url("/readyz")).send())
        .await
        .unwrap();
    assert_eq!(ready.status().as_u16(), 200, "ready again");
    // iDenfy retries the same delivery: it is stored once and applied.
    let (status, answer) = post(&app, Some(MANUAL), &body).await;
    assert_eq!(
        (status, answer["outcome"].as_str()),
        (200, Some("applied")),
        "{answer}"
    );
    let case = get(&app, &scan_ref, CaseView::Basic, true).await.unwrap();
    assert_eq!((case.revision, case.history.len()), (1, 1));
}

#[tokio::test]
async fn health_endpoints_answer() {
    let app = sqlite_app().await.unwrap();
    for url in [app.url("/healthz"), app.url("/readyz")]
        .into_iter()
        .chain([app.admin_url("/healthz"), app.admin_url("/readyz")])
    {
        let response = within(&url, app.http().get(&url).send()).await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
    }
    // Metrics live on the admin listener only.
    let metrics = within("/metrics", app.http().get(app.admin_url("/metrics")).send())
        .await
        .unwrap();
    assert_eq!(metrics.status().as_u16(), 200);
    let public = within("/metrics", app.http().get(app.url("/metrics")).send())
        .await
        .unwrap();
    assert_eq!(public.status().as_u16(), 404);
}
