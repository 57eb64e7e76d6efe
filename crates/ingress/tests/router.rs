//! Router-level tests that need no answer from a store: every refusal happens before the store
//! is touched (the guard store panics if it is), and a store that never answers shows the write
//! deadline. The full path against a real database is tested end to end in the root `tests/`.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::body::Body;
use axum::response::Response;
use http::{Request, StatusCode, header};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;
use verdict_domain::{
    CaseEvent, CasePage, CaseQuery, CaseStore, ChangeBus, ChangedCases, Cursor, Error, FeedChange,
    FeedQuery, NewDelivery, NewQuarantine, Notification, QuarantineItem, Recorded,
    SignatureVerifier, sign,
};
use verdict_ingest::readiness::Readiness;
use verdict_ingress::{IngressState, router};

const KEY: &[u8] = b"test-signing-key";
const LIMIT: usize = 256;
const BODY: &str = r#"{"scanRef":"scan-1","final":true,"status":{"overall":"APPROVED"}}"#;

/// Fails the test if the code under test reaches the store or the bus.
#[derive(Debug)]
struct Untouchable;

/// Never answers: the store of a database that hangs.
#[derive(Debug)]
struct Hanging;

macro_rules! case_store {
    ($store:ty, $body:expr) => {
        #[async_trait]
        impl CaseStore for $store {
            async fn record(&self, _: NewDelivery) -> Result<Recorded, Error> {
                $body
            }
            async fn quarantine(&self, _: NewQuarantine) -> Result<i64, Error> {
                $body
            }
            async fn case(&self, _: &str, _: bool) -> Result<Option<verdict_domain::Case>, Error> {
                $body
            }
            async fn latest_case_of_client(
                &self,
                _: &str,
                _: bool,
            ) -> Result<Option<verdict_domain::Case>, Error> {
                $body
            }
            async fn history(&self, _: &str, _: u32) -> Result<Vec<CaseEvent>, Error> {
                $body
            }
            async fn list_cases(&self, _: &CaseQuery) -> Result<CasePage, Error> {
                $body
            }
            async fn revisions(&self, _: &[String]) -> Result<Vec<(String, u64)>, Error> {
                $body
            }
            async fn changes_after(&self, _: &FeedQuery) -> Result<Vec<FeedChange>, Error> {
                $body
            }
            async fn feed_head(&self) -> Result<Cursor, Error> {
                $body
            }
            async fn changed_cases(&self, _: Cursor, _: u32) -> Result<ChangedCases, Error> {
                $body
            }
            async fn quarantined(&self, _: i64, _: u32) -> Result<Vec<QuarantineItem>, Error> {
                $body
            }
            async fn ping(&self) -> Result<(), Error> {
                $body
            }
        }
    };
}

case_store!(Untouchable, panic!("the store must not be reached"));
case_store!(Hanging, pending().await);

/// Says when it is reached (on [`PARKED`]), then never answers: a webhook parked in the store.
#[derive(Debug)]
struct Parked;
static PARKED: tokio::sync::Notify = tokio::sync::Notify::const_new();
case_store!(Parked, {
    PARKED.notify_one();
    pending().await
});

#[async_trait]
impl ChangeBus for Untouchable {
    async fn publish(&self, _: Notification) -> Result<(), Error> {
        panic!("the bus must not be reached")
    }
}

/// A state over `store`; readiness pings a store that never answers, so `/readyz` is 503
/// unless a test says otherwise.
fn state(store: Arc<dyn CaseStore>) -> IngressState {
    IngressState {
        readiness: Readiness::spawn(
            Arc::new(Hanging),
            Duration::from_secs(600),
            CancellationToken::new(),
        ),
        store,
        bus: Arc::new(Untouchable),
        verifier: SignatureVerifier::new([KEY]),
        write_timeout: Duration::from_millis(50),
        max_body_bytes: LIMIT,
        body_timeout: Duration::from_secs(5),
        max_inflight: 64,
        source_filter: None,
        shutdown: CancellationToken::new(),
    }
}

fn guarded() -> IngressState {
    state(Arc::new(Untouchable))
}

fn webhook() -> http::request::Builder {
    Request::post("/webhooks/idenfy").header(header::CONTENT_TYPE, "application/json")
}

fn signed(body: &str) -> Request<Body> {
    webhook()
        .header("Idenfy-Signature", sign(KEY, body.as_bytes()))
        .header("Idenfy-Event-Type", "IDENTIFICATION_MANUAL_FINISHED")
        .body(Body::from(body.to_owned()))
        .unwrap()
}

async fn send(state: IngressState, request: Request<Body>) -> Response {
    tokio::time::timeout(Duration::from_secs(5), router(state).oneshot(request))
        .await
        .expect("answered in time")
        .expect("infallible")
}

async fn error_of(response: Response) -> String {
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&body).expect("a JSON error body");
    value["error"].as_str().expect("an error field").to_owned()
}

async fn text_of(response: Response) -> String {
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap();
    String::from_utf8(body.to_vec()).unwrap()
}

#[tokio::test]
async fn healthz_is_ok_without_asking_the_store() {
    let response = send(
        guarded(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(text_of(response).await, "ok");
}

#[tokio::test]
async fn readyz_is_unavailable_once_shutdown_begins() {
    let state = guarded();
    state.shutdown.cancel();
    let response = send(state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text_of(response).await.contains("shutting down"));
}

#[tokio::test]
async fn readyz_is_unavailable_until_the_database_answers_and_says_why() {
    let state = guarded();
    let response = send(state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(text_of(response).await.contains("has not answered yet"));

    let mut readiness = Readiness::spawn(
        Arc::new(Hanging),
        Duration::from_millis(20),
        CancellationToken::new(),
    );
    tokio::time::timeout(Duration::from_secs(5), readiness.changed())
        .await
        .expect("the first ping times out");
    let state = IngressState {
        readiness,
        ..guarded()
    };
    let response = send(state, Request::get("/readyz").body(Body::empty()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        text_of(response)
            .await
            .contains("did not answer within 20ms")
    );
}

#[tokio::test]
async fn declared_oversized_body_is_refused_with_413() {
    let body = "x".repeat(LIMIT + 1);
    let request = webhook()
        .header(header::CONTENT_LENGTH, body.len())
        .header("Idenfy-Signature", sign(KEY, body.as_bytes()))
        .body(Body::from(body))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        error_of(response).await,
        format!("body exceeds {LIMIT} bytes")
    );
}

#[tokio::test]
async fn oversized_body_without_content_length_is_refused_with_413() {
    let chunks = vec![Ok::<_, std::io::Error>("x".repeat(LIMIT)), Ok("y".into())];
    let request = webhook()
        .body(Body::from_stream(futures::stream::iter(chunks)))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn understated_content_length_does_not_get_past_the_limit() {
    let body = "x".repeat(LIMIT * 2);
    let request = webhook()
        .header(header::CONTENT_LENGTH, "10")
        .body(Body::from(body))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn size_is_checked_before_content_type() {
    let body = "x".repeat(LIMIT + 1);
    let request = Request::post("/webhooks/idenfy")
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from(body))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn missing_content_type_is_refused_with_415() {
    let request = Request::post("/webhooks/idenfy")
        .header("Idenfy-Signature", sign(KEY, BODY.as_bytes()))
        .body(Body::from(BODY))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        error_of(response).await,
        "content type must be application/json"
    );
}

#[tokio::test]
async fn content_type_is_checked_before_the_signature() {
    let request = Request::post("/webhooks/idenfy")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(BODY))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn missing_signature_is_refused_with_401() {
    let request = webhook().body(Body::from(BODY)).unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(error_of(response).await, "missing Idenfy-Signature header");
}

#[tokio::test]
async fn malformed_signature_is_refused_with_401() {
    for signature in ["not-hex", "abcd", &"0".repeat(63)] {
        let request = webhook()
            .header("Idenfy-Signature", signature)
            .body(Body::from(BODY))
            .unwrap();
        let response = send(guarded(), request).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{signature}");
        assert_eq!(
            error_of(response).await,
            "Idenfy-Signature is not a hex HMAC-SHA256"
        );
    }
}

#[tokio::test]
async fn signature_from_another_key_is_refused_with_401() {
    let request = webhook()
        .header(
            "Idenfy-Signature",
            sign(b"someone else's key", BODY.as_bytes()),
        )
        .body(Body::from(BODY))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        error_of(response).await,
        "Idenfy-Signature does not match the body"
    );
}

#[tokio::test]
async fn signature_over_a_different_body_is_refused_with_401() {
    let request = webhook()
        .header("Idenfy-Signature", sign(KEY, BODY.as_bytes()))
        .body(Body::from(BODY.replace("APPROVED", "DENIED")))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn store_past_the_write_deadline_answers_503_with_retry_after() {
    let response = send(state(Arc::new(Hanging)), signed(BODY)).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert_eq!(
        error_of(response).await,
        "storage did not answer within 50ms"
    );
}

#[tokio::test]
async fn quarantine_past_the_write_deadline_answers_503() {
    let request = webhook()
        .header("Idenfy-Signature", sign(KEY, b"{not json"))
        .body(Body::from("{not json"))
        .unwrap();
    let response = send(state(Arc::new(Hanging)), request).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let response = send(
        guarded(),
        Request::get("/healthz").body(Body::empty()).unwrap(),
    )
    .await;
    let id = response.headers()["x-request-id"].to_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
}

#[tokio::test]
async fn a_callers_request_id_is_kept() {
    let request = webhook()
        .header("x-request-id", "from-idenfy-42")
        .body(Body::from(BODY))
        .unwrap();
    let response = send(guarded(), request).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["x-request-id"], "from-idenfy-42");
}

#[tokio::test]
async fn other_methods_on_the_webhook_are_not_allowed() {
    let response = send(
        guarded(),
        Request::get("/webhooks/idenfy")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
}

mod spans {
    use opentelemetry::trace::{SpanKind, Status};
    use opentelemetry::{Key, Value};
    use verdict_telemetry::testing::SpanCapture;

    use super::*;

    const CALLER: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn attribute(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == Key::from(key.to_owned()))
            .map(|kv| kv.value.clone())
    }

    #[tokio::test]
    async fn webhook_request_is_a_server_span_continuing_the_callers_trace() {
        let capture = SpanCapture::install();
        let mut request = signed(BODY);
        request
            .headers_mut()
            .insert("traceparent", CALLER.parse().unwrap());
        request
            .headers_mut()
            .insert(header::USER_AGENT, "iDenfy-webhooks/1".parse().unwrap());
        request
            .headers_mut()
            .insert(header::HOST, "verdict.example:8080".parse().unwrap());
        let response = send(state(Arc::new(Hanging)), request).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

        let spans = capture.finished_spans();
        let server = spans
            .iter()
            .find(|s| s.name == "POST /webhooks/idenfy")
            .unwrap_or_else(|| panic!("no server span in {spans:?}"));
        assert_eq!(server.span_kind, SpanKind::Server);
        assert_eq!(
            server.span_context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(server.parent_span_id.to_string(), "00f067aa0ba902b7");
        assert!(
            matches!(server.status, Status::Error { .. }),
            "5xx is an error"
        );
        for (key, value) in [
            ("http.request.method", Value::from("POST")),
            ("http.route", Value::from("/webhooks/idenfy")),
            ("url.path", Value::from("/webhooks/idenfy")),
            ("url.scheme", Value::from("http")),
            ("network.protocol.version", Value::from("1.1")),
            ("server.address", Value::from("verdict.example")),
            ("server.port", Value::from(8080_i64)),
            ("user_agent.original", Value::from("iDenfy-webhooks/1")),
            ("http.response.status_code", Value::from(503_i64)),
            ("error.type", Value::from("503")),
        ] {
            assert_eq!(attribute(server, key), Some(value), "{key}");
        }
        assert!(attribute(server, "request_id").is_some());
    }

    #[tokio::test]
    async fn client_errors_are_not_span_errors() {
        let capture = SpanCapture::install();
        let response = send(guarded(), webhook().body(Body::from(BODY)).unwrap()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let spans = capture.finished_spans();
        let server = spans
            .iter()
            .find(|s| s.name == "POST /webhooks/idenfy")
            .expect("server span");
        assert_eq!(server.status, Status::Unset);
        assert_eq!(attribute(server, "error.type"), None);
        assert_eq!(
            attribute(server, "http.response.status_code"),
            Some(Value::from(401_i64))
        );
        assert_eq!(server.parent_span_id, opentelemetry::trace::SpanId::INVALID);
    }
}

/// Refusals that protect the service itself: a slow body, a foreign source, too many at once.
mod admission {
    use std::net::SocketAddr;

    use axum::extract::ConnectInfo;
    use futures::StreamExt as _;
    use verdict_ingress::SourceFilter;

    use super::*;

    fn from(peer: &str, mut request: Request<Body>) -> Request<Body> {
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_408() {
        let chunks = futures::stream::iter([Ok::<_, std::io::Error>("{\"scanRef\"")])
            .chain(futures::stream::pending());
        let request = webhook().body(Body::from_stream(chunks)).unwrap();
        let response = send(
            IngressState {
                body_timeout: Duration::from_millis(100),
                ..guarded()
            },
            request,
        )
        .await;
        assert_eq!(response.status(), StatusCode::REQUEST_TIMEOUT);
        assert_eq!(error_of(response).await, "body not received within 100ms");
    }

    #[tokio::test]
    async fn sources_outside_the_allowlist_are_403_before_anything_else() {
        let filter = SourceFilter::new(
            vec!["203.0.113.0/24".parse().unwrap()],
            vec!["10.0.0.0/8".parse().unwrap()],
        );
        let guarded = || IngressState {
            source_filter: Some(filter.clone()),
            ..guarded()
        };
        let refused = [
            from("198.51.100.7:4711", signed(BODY)),
            // Only a trusted proxy is believed about the client.
            from("198.51.100.7:4711", {
                let mut r = signed(BODY);
                r.headers_mut()
                    .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
                r
            }),
            // No peer address at all: the filter fails closed.
            signed(BODY),
        ];
        for request in refused {
            let response = send(guarded(), request).await;
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
            assert_eq!(error_of(response).await, "source address not allowed");
        }
        // Allowed sources go on to the signature check (the store is still never reached).
        let behind_proxy = {
            let mut r = from("10.1.2.3:4711", webhook().body(Body::from(BODY)).unwrap());
            r.headers_mut()
                .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
            r
        };
        for request in [
            from(
                "203.0.113.9:4711",
                webhook().body(Body::from(BODY)).unwrap(),
            ),
            behind_proxy,
        ] {
            let response = send(guarded(), request).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // Probes are not webhooks.
        let probe = send(
            guarded(),
            from(
                "198.51.100.7:4711",
                Request::get("/healthz").body(Body::empty()).unwrap(),
            ),
        )
        .await;
        assert_eq!(probe.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn webhooks_past_the_in_flight_bound_are_503_at_once() {
        let app = router(IngressState {
            max_inflight: 1,
            write_timeout: Duration::from_secs(30),
            ..state(Arc::new(Parked))
        });
        let first = tokio::spawn(app.clone().oneshot(signed(BODY)));
        tokio::time::timeout(Duration::from_secs(5), PARKED.notified())
            .await
            .expect("the first webhook reaches the store");

        let response =
            tokio::time::timeout(Duration::from_secs(5), app.clone().oneshot(signed(BODY)))
                .await
                .expect("answered at once, not queued")
                .unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        assert_eq!(
            error_of(response).await,
            "too many webhooks in flight (limit 1), retry later"
        );
        first.abort();
    }
}
