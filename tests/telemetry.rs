//! OpenTelemetry end to end: the real `verdict` binary exports to an in-test OTLP receiver, and
//! one trace follows a webhook to every watcher it reaches — through the in-process hub, and
//! across Redis to a watcher on another replica. Also: `/metrics` names, OTLP metrics, and no
//! personal data in any log line, span or metric label (`telemetry/privacy.rs`).

#[path = "telemetry/privacy.rs"]
mod privacy;
#[path = "telemetry/process.rs"]
mod process;
#[path = "telemetry/spans.rs"]
mod spans;

use std::time::Duration;

use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::json;
use tonic::transport::Channel;
use verdict_proto::verdict::v1::case_service_client::CaseServiceClient;
use verdict_proto::verdict::v1::{
    CaseView, GetCaseRequest, WatchCaseRequest, WatchCasesRequest, get_case_request::Key,
    watch_case_response, watch_cases_response,
};
use verdict_telemetry::testing::{OtlpReceiver, hex_id};
use verdict_testkit::{TestDatabase, TestRedis, payloads, within};

use crate::process::{Options, SECRET, Verdict};
use crate::spans::{assert_attrs, assert_child_of, assert_kind, attr, has_all, named, names};

const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";
/// Spans arrive at shutdown (the exporter flushes): bounded, with room for a loaded machine.
const SPANS: Duration = Duration::from_secs(20);
/// A caller's trace, as a client of the gRPC API would send it.
const CALLER_TRACE: &str = "5d0a4c6f1e2b3a4958677a8b9cadbecf";
const CALLER_SPAN: &str = "a1b2c3d4e5f60718";

async fn grpc(verdict: &Verdict) -> CaseServiceClient<Channel> {
    within(
        "a gRPC connection",
        CaseServiceClient::connect(format!("http://{}", verdict.grpc)),
    )
    .await
    .expect("connect")
}

/// Posts a correctly signed, final (APPROVED) decision for `scan_ref` and checks it applied.
async fn post_final_decision(verdict: &Verdict, scan_ref: &str) {
    let body = payloads::webhook(scan_ref)
        .final_(true)
        .overall("APPROVED")
        .build();
    let response = within(
        "the webhook answer",
        reqwest::Client::new()
            .post(verdict.url("/webhooks/idenfy"))
            .header("content-type", "application/json")
            .header("idenfy-event-type", MANUAL)
            .header(
                "idenfy-signature",
                verdict_domain::sign(SECRET.as_bytes(), &body),
            )
            .body(body)
            .send(),
    )
    .await
    .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    let answer: serde_json::Value = within("the answer body", response.json()).await.unwrap();
    assert_eq!(answer, json!({"outcome": "applied", "revision": 1}));
}

/// Opens `WatchCase` (until final); the hub subscription exists once this returns.
async fn watch_case(
    client: &mut CaseServiceClient<Channel>,
    scan_ref: &str,
) -> tonic::Streaming<verdict_proto::verdict::v1::WatchCaseResponse> {
    within(
        "WatchCase",
        client.watch_case(WatchCaseRequest {
            scan_ref: scan_ref.to_owned(),
            from_revision: 0,
            until_final: true,
            view: CaseView::Basic.into(),
        }),
    )
    .await
    .expect("WatchCase opens")
    .into_inner()
}

/// Reads `WatchCase` until the case arrives (skipping heartbeats), then until the stream ends.
async fn receive_final_case(
    stream: &mut tonic::Streaming<verdict_proto::verdict::v1::WatchCaseResponse>,
) {
    loop {
        let message = within("a WatchCase message", stream.message())
            .await
            .expect("stream ok")
            .expect("stream open");
        if let Some(watch_case_response::Event::Case(case)) = message.event {
            assert!(case.r#final);
            break;
        }
    }
    assert!(
        within("the end of WatchCase", stream.message())
            .await
            .expect("ends OK")
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_trace_reaches_every_watcher_through_the_in_process_hub() {
    let receiver = OtlpReceiver::start().await;
    let db = TestDatabase::sqlite();
    let verdict = Verdict::start(&Options {
        database_url: db.url().to_owned(),
        otlp_endpoint: receiver.endpoint(),
        rust_log: "info",
        redis: None,
        service_name: "verdict-hub-test",
    })
    .await;
    let mut client = grpc(&verdict).await;
    let scan_ref = payloads::scan_ref();

    let mut case_stream = watch_case(&mut client, &scan_ref).await;
    let mut feed = within(
        "WatchCases",
        client.watch_cases(WatchCasesRequest {
            view: CaseView::Basic.into(),
            ..WatchCasesRequest::default()
        }),
    )
    .await
    .expect("WatchCases opens")
    .into_inner();

    post_final_decision(&verdict, &scan_ref).await;

    receive_final_case(&mut case_stream).await;
    loop {
        let message = within("a WatchCases message", feed.message())
            .await
            .expect("stream ok")
            .expect("stream open");
        if let Some(watch_cases_response::Event::Change(change)) = message.event {
            assert_eq!(change.case.expect("case").scan_ref, scan_ref);
            break;
        }
    }
    drop(feed);

    // A caller's traceparent in gRPC metadata is continued.
    let mut request = tonic::Request::new(GetCaseRequest {
        key: Some(Key::ScanRef(scan_ref.clone())),
        view: CaseView::Basic.into(),
        include_history: false,
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01")
            .parse()
            .expect("ascii"),
    );
    within("GetCase", client.get_case(request))
        .await
        .expect("GetCase");

    let scrape = within(
        "/metrics",
        reqwest::Client::new()
            .get(verdict.admin_url("/metrics"))
            .send(),
    )
    .await
    .expect("scrape");
    assert!(
        scrape.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = within("/metrics body", scrape.text()).await.unwrap();
    for line_start in [
        r#"verdict_webhooks_total{event_type="IDENTIFICATION_MANUAL_FINISHED",outcome="applied""#,
        "http_server_request_duration_seconds_bucket{",
        "rpc_server_call_duration_seconds_count{",
        r#"verdict_watch_streams{kind="case""#,
        "verdict_watch_cases ",
        "verdict_watch_delivery_duration_seconds_count ",
        r#"verdict_notifications_total{result="published""#,
    ] {
        assert!(
            text.lines().any(|line| line.starts_with(line_start)),
            "{line_start} missing from\n{text}"
        );
    }

    drop(client);
    verdict.stop().await;

    let spans = receiver
        .wait_for_spans(
            |spans| {
                has_all(
                    spans,
                    &[
                        "POST /webhooks/idenfy",
                        "INSERT deliveries",
                        "send hub",
                        "WatchCase deliver",
                        "WatchCases deliver",
                        "verdict.v1.CaseService/WatchCase",
                        "verdict.v1.CaseService/GetCase",
                    ],
                )
            },
            SPANS,
        )
        .await;

    let server = named(&spans, "POST /webhooks/idenfy");
    assert_kind(server, SpanKind::Server);
    assert!(
        server.parent_span_id.is_empty(),
        "the webhook starts the trace"
    );
    assert_attrs(
        server,
        &[
            ("http.request.method", "POST"),
            ("http.route", "/webhooks/idenfy"),
            ("url.path", "/webhooks/idenfy"),
            ("url.scheme", "http"),
            ("http.response.status_code", "200"),
            ("network.protocol.version", "1.1"),
            ("server.address", "127.0.0.1"),
            ("client.address", "127.0.0.1"),
            ("scan_ref", scan_ref.as_str()),
            ("revision", "1"),
        ],
    );
    assert_eq!(attr(server, "error.type"), None);

    let store = named(&spans, "INSERT deliveries");
    assert_kind(store, SpanKind::Client);
    assert_child_of(store, server);
    assert_attrs(
        store,
        &[
            ("db.system.name", "sqlite"),
            ("db.operation.name", "INSERT"),
            ("db.collection.name", "deliveries"),
            ("db.namespace", "main"),
            ("outcome", "applied"),
        ],
    );

    let publish = named(&spans, "send hub");
    assert_kind(publish, SpanKind::Producer);
    assert_child_of(publish, server);
    assert_attrs(publish, &[("messaging.operation.type", "send")]);

    // WatchCase was woken by the publish: its delivery is the producer's child.
    let delivery = named(&spans, "WatchCase deliver");
    assert_child_of(delivery, publish);
    assert_attrs(
        delivery,
        &[
            ("scan_ref", scan_ref.as_str()),
            ("revision", "1"),
            ("rpc.method", "verdict.v1.CaseService/WatchCase"),
        ],
    );
    // ... and links to the stream's own span, in the trace the watcher started.
    let stream = named(&spans, "verdict.v1.CaseService/WatchCase");
    assert_kind(stream, SpanKind::Server);
    assert_attrs(
        stream,
        &[
            ("rpc.system.name", "grpc"),
            ("rpc.method", "verdict.v1.CaseService/WatchCase"),
            ("rpc.response.status_code", "OK"),
        ],
    );
    // (to the stream's `watch_case` span, a child of the server span).
    let watch_case_span = named(&spans, "watch_case");
    assert_child_of(watch_case_span, stream);
    assert!(
        delivery.links.iter().any(|link| {
            link.span_id == watch_case_span.span_id && link.trace_id == stream.trace_id
        }),
        "the delivery links to its stream"
    );

    // WatchCases reads the traceparent stored with the change: the webhook's request span.
    let feed_delivery = named(&spans, "WatchCases deliver");
    assert_child_of(feed_delivery, server);

    let get = named(&spans, "verdict.v1.CaseService/GetCase");
    assert_kind(get, SpanKind::Server);
    assert_eq!(
        hex_id(&get.trace_id),
        CALLER_TRACE,
        "continues the caller's trace"
    );
    assert_eq!(hex_id(&get.parent_span_id), CALLER_SPAN);
    assert_attrs(
        get,
        &[
            ("rpc.system.name", "grpc"),
            ("rpc.method", "verdict.v1.CaseService/GetCase"),
            ("rpc.response.status_code", "OK"),
        ],
    );
    assert!(
        receiver
            .service_names()
            .iter()
            .all(|name| name == "verdict-hub-test"),
        "{:?}",
        receiver.service_names()
    );
    receiver.wait_for_metric("verdict.webhooks", SPANS).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_trace_crosses_redis_to_a_watcher_on_another_replica() {
    let Some(redis) = TestRedis::connect().await else {
        return;
    };
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let receiver = OtlpReceiver::start().await;
    let options = |service_name| Options {
        database_url: db.url().to_owned(),
        otlp_endpoint: receiver.endpoint(),
        rust_log: "info",
        redis: Some((redis.url().to_owned(), redis.channel().to_owned())),
        service_name,
    };
    // One after the other: both would migrate the fresh database at once otherwise.
    let a = Verdict::start(&options("verdict-a")).await;
    let b = Verdict::start(&options("verdict-b")).await;
    // Published messages reach B only once its subscription is confirmed.
    b.wait_for_log("redis subscription up").await;

    let scan_ref = payloads::scan_ref();
    let mut client = grpc(&b).await;
    let mut stream = watch_case(&mut client, &scan_ref).await;
    post_final_decision(&a, &scan_ref).await;
    receive_final_case(&mut stream).await;
    drop(client);
    a.stop().await;
    b.stop().await;

    let send = format!("send {}", redis.channel());
    let process = format!("process {}", redis.channel());
    let spans = receiver
        .wait_for_spans(
            |spans| {
                has_all(
                    spans,
                    &[
                        "POST /webhooks/idenfy",
                        "INSERT deliveries",
                        &send,
                        &process,
                        "WatchCase deliver",
                    ],
                )
            },
            SPANS,
        )
        .await;

    // On A: the request, its transaction, its publish.
    let server = named(&spans, "POST /webhooks/idenfy");
    assert!(server.parent_span_id.is_empty());
    let store = named(&spans, "INSERT deliveries");
    assert_child_of(store, server);
    assert_attrs(store, &[("db.system.name", "postgresql")]);
    assert!(attr(store, "db.namespace").is_some_and(|n| n.starts_with("verdict_test_")));
    let producer = named(&spans, &send);
    assert_kind(producer, SpanKind::Producer);
    assert_child_of(producer, server);
    assert_attrs(
        producer,
        &[
            ("messaging.system", "redis"),
            ("messaging.operation.type", "send"),
            ("messaging.destination.name", redis.channel()),
        ],
    );

    // On B: the message handled in a consumer span, parented on A's producer through the
    // traceparent in the message body, and the watcher's delivery under it.
    let consumer = named(&spans, &process);
    assert_kind(consumer, SpanKind::Consumer);
    assert_child_of(consumer, producer);
    assert_attrs(
        consumer,
        &[
            ("messaging.system", "redis"),
            ("messaging.operation.type", "process"),
            ("messaging.destination.name", redis.channel()),
        ],
    );
    let delivery = named(&spans, "WatchCase deliver");
    assert_child_of(delivery, consumer);
    assert_eq!(
        delivery.trace_id,
        server.trace_id,
        "one trace: {:?}",
        names(&spans)
    );
}
