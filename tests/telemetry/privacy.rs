//! No personal data in telemetry: a webhook full of distinctive personal values goes through
//! every path (applied, duplicate, quarantined twice, refused), is read back in full over every
//! RPC, with `RUST_LOG=debug`; none of the values, the signature or the secret may appear in any
//! log line, exported span (attributes, events, links, status) or metric label.

use serde_json::json;
use verdict_proto::verdict::v1::{
    CaseView, GetCaseRequest, ListCasesRequest, WatchCaseRequest, WatchCasesRequest,
    get_case_request::Key, watch_cases_response,
};
use verdict_telemetry::testing::OtlpReceiver;
use verdict_testkit::{TestDatabase, payloads, within};

use crate::process::{Options, SECRET, Verdict};
use crate::spans::has_all;
use crate::{MANUAL, SPANS, grpc};

const FIRST_NAME: &str = "Zorbaqfirstname";
const LAST_NAME: &str = "Quixlastname";
const DOCUMENT_NUMBER: &str = "XD9917263544";
const PERSONAL_CODE: &str = "PC31415926535";
const DATE_OF_BIRTH: &str = "1911-07-23";
const EXPIRY: &str = "2041-09-17";
const ADDRESS: &str = "77 Markerpath Lane";
const CLIENT_ID: &str = "usr-marker-8812";
const CLIENT_IP: &str = "203.0.113.77";
const LOCATION: &str = "Markerville";

fn personal_body(scan_ref: &str) -> Vec<u8> {
    payloads::webhook(scan_ref)
        .final_(true)
        .overall("APPROVED")
        .client_id(CLIENT_ID)
        .field("clientIp", json!(CLIENT_IP))
        .field("clientLocation", json!(LOCATION))
        .data("docFirstName", json!(FIRST_NAME))
        .data("docLastName", json!(LAST_NAME))
        .data("docNumber", json!(DOCUMENT_NUMBER))
        .data("docPersonalCode", json!(PERSONAL_CODE))
        .data("docDob", json!(DATE_OF_BIRTH))
        .data("docExpiry", json!(EXPIRY))
        .data("address", json!(ADDRESS))
        .build()
}

async fn post(verdict: &Verdict, event: &str, body: &[u8], signature: &str) -> u16 {
    let response = within(
        "the webhook answer",
        reqwest::Client::new()
            .post(verdict.url("/webhooks/idenfy"))
            .header("content-type", "application/json")
            .header("idenfy-event-type", event)
            .header("idenfy-signature", signature)
            .body(body.to_vec())
            .send(),
    )
    .await
    .expect("sent");
    response.status().as_u16()
}

fn sign(body: &[u8]) -> String {
    verdict_domain::sign(SECRET.as_bytes(), body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_never_reaches_logs_spans_or_metrics() {
    let receiver = OtlpReceiver::start().await;
    let db = TestDatabase::sqlite();
    let verdict = Verdict::start(&Options {
        database_url: db.url().to_owned(),
        otlp_endpoint: receiver.endpoint(),
        // The worst case: everything Verdict and its dependencies log at debug.
        rust_log: "debug",
        redis: None,
        service_name: "verdict-privacy-test",
    })
    .await;
    let scan_ref = payloads::scan_ref();
    let body = personal_body(&scan_ref);
    let signature = sign(&body);

    let mut client = grpc(&verdict).await;
    let mut feed = within(
        "WatchCases",
        client.watch_cases(WatchCasesRequest {
            view: CaseView::Full.into(),
            ..WatchCasesRequest::default()
        }),
    )
    .await
    .expect("WatchCases opens")
    .into_inner();

    assert_eq!(post(&verdict, MANUAL, &body, &signature).await, 200);
    assert_eq!(
        post(&verdict, MANUAL, &body, &signature).await,
        200,
        "duplicate"
    );
    assert_eq!(
        post(
            &verdict,
            "IDENTIFICATION_FROM_THE_FUTURE",
            &body,
            &signature
        )
        .await,
        200,
        "quarantined: unknown event type"
    );
    let not_an_object = json!(format!("{FIRST_NAME} {LAST_NAME} {DATE_OF_BIRTH}"))
        .to_string()
        .into_bytes();
    assert_eq!(
        post(&verdict, MANUAL, &not_an_object, &sign(&not_an_object)).await,
        200,
        "quarantined: not an object"
    );
    let wrong = verdict_domain::sign(b"another key", &body);
    assert_eq!(post(&verdict, MANUAL, &body, &wrong).await, 401);

    // Read everything back in full, over every RPC.
    let case = within(
        "GetCase",
        client.get_case(GetCaseRequest {
            key: Some(Key::ScanRef(scan_ref.clone())),
            view: CaseView::Full.into(),
            include_history: true,
        }),
    )
    .await
    .expect("GetCase")
    .into_inner()
    .case
    .expect("case");
    assert_eq!(case.person.expect("full view").first_name, FIRST_NAME);
    within(
        "GetCase by client",
        client.get_case(GetCaseRequest {
            key: Some(Key::ClientId(CLIENT_ID.to_owned())),
            view: CaseView::Full.into(),
            include_history: false,
        }),
    )
    .await
    .expect("GetCase by client_id");
    let missing = within(
        "GetCase of an unknown client",
        client.get_case(GetCaseRequest {
            key: Some(Key::ClientId(format!("{CLIENT_ID}-absent"))),
            view: CaseView::Full.into(),
            include_history: false,
        }),
    )
    .await
    .expect_err("no such client");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    within(
        "ListCases",
        client.list_cases(ListCasesRequest {
            client_id: CLIENT_ID.to_owned(),
            view: CaseView::Full.into(),
            ..ListCasesRequest::default()
        }),
    )
    .await
    .expect("ListCases");
    let mut watch = within(
        "WatchCase",
        client.watch_case(WatchCaseRequest {
            scan_ref: scan_ref.clone(),
            from_revision: 0,
            until_final: true,
            view: CaseView::Full.into(),
        }),
    )
    .await
    .expect("WatchCase")
    .into_inner();
    while within("WatchCase", watch.message())
        .await
        .expect("ok")
        .is_some()
    {}
    loop {
        let message = within("WatchCases", feed.message())
            .await
            .expect("ok")
            .expect("open");
        if let Some(watch_cases_response::Event::Change(change)) = message.event {
            assert_eq!(change.case.expect("case").scan_ref, scan_ref);
            break;
        }
    }
    drop(feed);

    let metrics = within(
        "/metrics",
        within(
            "scrape",
            reqwest::Client::new()
                .get(verdict.admin_url("/metrics"))
                .send(),
        )
        .await
        .expect("scrape")
        .text(),
    )
    .await
    .expect("text");
    drop(client);
    let logs = verdict.stop().await;
    let spans = receiver
        .wait_for_spans(
            |spans| {
                has_all(
                    spans,
                    &[
                        "POST /webhooks/idenfy",
                        "INSERT deliveries",
                        "INSERT quarantine",
                        "WatchCase deliver",
                        "WatchCases deliver",
                        "verdict.v1.CaseService/ListCases",
                    ],
                )
            },
            SPANS,
        )
        .await;

    assert!(
        logs.contains("webhook recorded") && logs.contains("webhook quarantined"),
        "the logs are there to be checked:\n{logs}"
    );
    // The positive control: the case's own id (not personal) is where the markers would be.
    assert!(logs.contains(&scan_ref), "scan_ref in the logs");
    assert!(
        spans
            .iter()
            .any(|span| format!("{span:?}").contains(&scan_ref)),
        "scan_ref in the spans"
    );
    assert!(
        logs.lines().any(|line| line.contains(r#""level":"DEBUG""#)),
        "debug lines were logged"
    );
    let body_text = String::from_utf8(body.clone()).expect("utf-8");
    let secrets = [
        FIRST_NAME,
        LAST_NAME,
        DOCUMENT_NUMBER,
        PERSONAL_CODE,
        DATE_OF_BIRTH,
        EXPIRY,
        ADDRESS,
        CLIENT_ID,
        CLIENT_IP,
        LOCATION,
        SECRET,
        &signature,
        &wrong,
        &body_text,
    ];
    for secret in secrets {
        for line in logs.lines() {
            assert!(!line.contains(secret), "{secret:?} in the log line\n{line}");
        }
        for span in &spans {
            let exported = format!("{span:?}");
            assert!(
                !exported.contains(secret),
                "{secret:?} in the exported span {exported}"
            );
        }
        for line in metrics.lines() {
            assert!(!line.contains(secret), "{secret:?} in the metric {line}");
        }
    }
}
