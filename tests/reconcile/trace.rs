//! One lookup is one trace: a root INTERNAL span `reconcile` holding the CLIENT span of the
//! HTTP call (semconv attributes, never the body or the credentials), the store's CLIENT span
//! and the publish; the stored delivery carries the root span's traceparent.

use std::sync::Arc;

use base64::Engine as _;
use chrono::Utc;
use opentelemetry::trace::SpanKind;
use opentelemetry::{Key, Value};
use verdict_bus::{Hub, LocalBus};
use verdict_domain::{CaseStore, EventType, NewDelivery, Payload, ScanRef};
use verdict_ingest::Ingest;
use verdict_reconcile::Reconciler;
use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};
use verdict_store::{SeaStore, StoreOptions};
use verdict_telemetry::testing::SpanCapture;
use verdict_testkit::TestDatabase;
use verdict_testkit::idenfy::{API_KEY, API_SECRET, Answer, FakeIdenfy};
use verdict_testkit::payloads::{self, webhook};

type SpanData = opentelemetry_sdk::trace::SpanData;

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key == Key::from(key.to_owned()))
        .map(|kv| kv.value.clone())
}

/// The span `name` of the lookup's trace (the case's first webhook has a trace of its own).
fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    let lookup = spans
        .iter()
        .find(|span| span.name == "reconcile")
        .map(|span| span.span_context.trace_id());
    spans
        .iter()
        .filter(|span| Some(span.span_context.trace_id()) == lookup)
        .find(|span| span.name == name)
        .unwrap_or_else(|| {
            panic!(
                "no span {name:?} in {:?}",
                spans.iter().map(|s| &s.name).collect::<Vec<_>>()
            )
        })
}

#[tokio::test]
async fn a_lookup_is_one_trace_from_the_http_call_to_the_publish() {
    let capture = SpanCapture::install();
    let fake = FakeIdenfy::start().await;
    // PostgreSQL: sqlx's SQLite driver hands each statement's span to a worker thread, which
    // lets go of it some time after the statement's answer, so a SQLite span's end is racy.
    let Some(db) = TestDatabase::postgres().await else {
        return;
    };
    let store = Arc::new(
        SeaStore::connect(db.url(), StoreOptions::default())
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    store
        .record(NewDelivery {
            event: EventType::AutoFinished,
            payload: Payload::parse(&body).unwrap(),
            body: body.into(),
            received_at: Utc::now(),
            traceparent: None,
            releases: None,
        })
        .await
        .unwrap();
    fake.answer(&scan_ref, [Answer::Status("APPROVED")]);

    let client = fake.api_config().client().unwrap();
    let ingest = Ingest::new(store.clone(), Arc::new(LocalBus::new(Hub::new())));
    let reconciler = Reconciler::new(client, ingest.clone());
    let recorded = reconciler
        .reconcile(&ScanRef::new(scan_ref.clone()).unwrap())
        .await
        .expect("the answer is recorded");
    assert_eq!(recorded.label(), "applied");
    ingest.flush().await;
    let row = store
        .connection()
        .query_one_raw(Statement::from_string(
            store.connection().get_database_backend(),
            "SELECT traceparent FROM deliveries WHERE event_type = 'RECONCILED'",
        ))
        .await
        .unwrap()
        .expect("the reconciled delivery");
    let traceparent: String = row.try_get("", "traceparent").unwrap();

    let spans: Vec<SpanData> = capture.finished_spans();
    let root = named(&spans, "reconcile");
    assert_eq!(root.span_kind, SpanKind::Internal);
    assert_eq!(
        root.parent_span_id,
        opentelemetry::trace::SpanId::INVALID,
        "a trace of its own"
    );
    assert_eq!(
        attribute(root, "scan_ref"),
        Some(Value::from(scan_ref.clone()))
    );
    assert_eq!(attribute(root, "result"), Some(Value::from("applied")));
    let trace_id = root.span_context.trace_id();
    let root_id = root.span_context.span_id();

    let http = named(&spans, "POST /api/v2/status");
    assert_eq!(http.span_kind, SpanKind::Client);
    assert_eq!(http.parent_span_id, root_id);
    let port = i64::from(
        fake.url()
            .rsplit(':')
            .next()
            .unwrap()
            .parse::<u16>()
            .unwrap(),
    );
    for (key, value) in [
        ("http.request.method", Value::from("POST")),
        ("http.response.status_code", Value::from(200_i64)),
        ("server.address", Value::from("127.0.0.1")),
        ("server.port", Value::from(port)),
        (
            "url.full",
            Value::from(format!("{}/api/v2/status", fake.url())),
        ),
        ("url.template", Value::from("/api/v2/status")),
    ] {
        assert_eq!(attribute(http, key), Some(value), "{key}");
    }

    for (name, kind) in [
        ("INSERT deliveries", SpanKind::Client),
        ("send hub", SpanKind::Producer),
    ] {
        let span = named(&spans, name);
        assert_eq!(span.span_kind, kind, "{name}");
        assert_eq!(span.parent_span_id, root_id, "{name}");
    }
    let lookup: Vec<&SpanData> = spans
        .iter()
        .filter(|span| span.span_context.trace_id() == trace_id)
        .collect();
    assert_eq!(lookup.len(), 4, "{lookup:?}");
    for span in lookup {
        // Neither the credentials nor the answer travel in telemetry.
        let shown = format!("{:?}", span.attributes);
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"));
        for secret in [API_SECRET, credentials.as_str(), "DOC_VALIDATED"] {
            assert!(
                !shown.contains(secret),
                "{secret} in {}: {shown}",
                span.name
            );
        }
    }

    assert_eq!(traceparent, format!("00-{trace_id}-{root_id}-01"));
}
