//! A fake of iDenfy's status API, `POST /api/v2/status`, as documented: HTTP Basic auth with
//! the API key and secret, `{"scanRef": …}` in, `{status, autoDocument, autoFace,
//! manualDocument, manualFace, fraudTags, mismatchTags, scanRef, clientId}` out, 404 for a
//! scanRef it does not know. Tests set what it answers per scanRef — including answers that
//! misbehave — and read which calls it got, when, and with which credentials.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use verdict::config::{IdenfyApiConfig, ReconcileConfig};

use crate::within;

/// The API key the fake accepts.
pub const API_KEY: &str = "fake-idenfy-key";
/// The API secret the fake accepts.
pub const API_SECRET: &str = "fake-idenfy-s3cret";

/// What the fake answers to one call about a scanRef.
#[derive(Debug, Clone)]
pub enum Answer {
    /// 200 with the documented answer, of this overall status.
    Status(&'static str),
    /// Any status with a JSON error body and, optionally, a `Retry-After`.
    Http {
        status: u16,
        retry_after: Option<String>,
    },
    /// Accepts the request and never answers.
    Hang,
    /// 200 with a body that is not JSON (a proxy's error page).
    Junk,
}

impl Answer {
    /// 429, with `Retry-After` in seconds.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::Http {
            status: 429,
            retry_after: Some(retry_after_secs.to_string()),
        }
    }

    /// 500.
    pub fn server_error() -> Self {
        Self::Http {
            status: 500,
            retry_after: None,
        }
    }
}

/// One call the fake received.
#[derive(Debug, Clone)]
pub struct Call {
    /// The `scanRef` of the request body, if it had one.
    pub scan_ref: Option<String>,
    /// When it arrived.
    pub at: Instant,
    /// Whether it carried the right Basic credentials.
    pub authorized: bool,
}

#[derive(Debug, Default)]
struct Fake {
    /// Per scanRef, the answers still to give; the last one repeats.
    answers: Mutex<HashMap<String, VecDeque<Answer>>>,
    calls: Mutex<Vec<Call>>,
    /// The number of calls so far, for tests to wait on.
    count: watch::Sender<usize>,
}

/// The fake API on `127.0.0.1:0`; stops when dropped.
#[derive(Debug)]
pub struct FakeIdenfy {
    addr: SocketAddr,
    fake: Arc<Fake>,
    server: JoinHandle<()>,
}

impl FakeIdenfy {
    /// Starts the fake.
    pub async fn start() -> Self {
        let fake = Arc::new(Fake::default());
        let app = Router::new()
            .route("/api/v2/status", post(status))
            .with_state(Arc::clone(&fake));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake iDenfy");
        let addr = listener.local_addr().expect("a bound address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, fake, server }
    }

    /// `http://127.0.0.1:<port>`: the `VERDICT_IDENFY_API_URL` of the fake.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API settings that reach the fake with the right credentials and a short timeout.
    pub fn api_config(&self) -> IdenfyApiConfig {
        IdenfyApiConfig {
            idenfy_api_url: self.url(),
            idenfy_api_key: Some(API_KEY.to_owned().into()),
            idenfy_api_secret: Some(API_SECRET.to_owned().into()),
            idenfy_api_timeout: Duration::from_millis(500),
        }
    }

    /// Reconciliation against the fake: cases unchanged for `after` are looked up, fast.
    pub fn reconcile_config(&self, after: Duration) -> ReconcileConfig {
        ReconcileConfig {
            api: self.api_config(),
            reconcile_after: Some(after),
            reconcile_rate: 50.0,
        }
    }

    /// What to answer about `scan_ref`, call after call; the last answer repeats.
    pub fn answer(&self, scan_ref: &str, answers: impl IntoIterator<Item = Answer>) {
        let answers: VecDeque<Answer> = answers.into_iter().collect();
        assert!(!answers.is_empty(), "at least one answer");
        self.fake
            .answers
            .lock()
            .unwrap()
            .insert(scan_ref.to_owned(), answers);
    }

    /// Every call so far, in arrival order.
    pub fn calls(&self) -> Vec<Call> {
        self.fake.calls.lock().unwrap().clone()
    }

    /// When the calls about `scan_ref` arrived.
    pub fn calls_for(&self, scan_ref: &str) -> Vec<Instant> {
        self.calls()
            .into_iter()
            .filter(|call| call.scan_ref.as_deref() == Some(scan_ref))
            .map(|call| call.at)
            .collect()
    }

    /// Waits until `n` calls about `scan_ref` (any scanRef with `None`) arrived.
    pub async fn wait_for_calls(&self, scan_ref: Option<&str>, n: usize) {
        let mut count = self.fake.count.subscribe();
        let matching = |fake: &Fake| {
            fake.calls
                .lock()
                .unwrap()
                .iter()
                .filter(|call| scan_ref.is_none() || call.scan_ref.as_deref() == scan_ref)
                .count()
        };
        let what = format!("{n} calls about {scan_ref:?} at the fake iDenfy");
        within(&what, async {
            while matching(&self.fake) < n {
                count.changed().await.expect("the fake lives");
            }
        })
        .await;
    }
}

impl Drop for FakeIdenfy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn status(State(fake): State<Arc<Fake>>, headers: HeaderMap, body: Bytes) -> Response {
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:{API_SECRET}"))
    );
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == expected.as_bytes());
    let scan_ref = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|body| body["scanRef"].as_str().map(str::to_owned));
    fake.calls.lock().unwrap().push(Call {
        scan_ref: scan_ref.clone(),
        at: Instant::now(),
        authorized,
    });
    fake.count.send_modify(|count| *count += 1);

    if !authorized {
        let error =
            json!({"identifier": "AUTHENTICATION_FAILED", "message": "Invalid credentials."});
        return (StatusCode::UNAUTHORIZED, axum::Json(error)).into_response();
    }
    let Some(scan_ref) = scan_ref else {
        let error = json!({"identifier": "MISSING_PARAMETER", "message": "scanRef is required."});
        return (StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
    };
    let answer = {
        let mut answers = fake.answers.lock().unwrap();
        match answers.get_mut(&scan_ref) {
            Some(queue) if queue.len() > 1 => queue.pop_front(),
            Some(queue) => queue.front().cloned(),
            None => None,
        }
    };
    match answer {
        None => {
            let error = json!({"identifier": "NOT_FOUND", "message": "Verification not found."});
            (StatusCode::NOT_FOUND, axum::Json(error)).into_response()
        }
        Some(Answer::Status(status)) => axum::Json(json!({
            "status": status,
            "autoDocument": "DOC_VALIDATED",
            "autoFace": "FACE_MATCH",
            "manualDocument": "DOC_VALIDATED",
            "manualFace": "FACE_MATCH",
            "fraudTags": [],
            "mismatchTags": [],
            "scanRef": scan_ref,
            "clientId": "client-1"
        }))
        .into_response(),
        Some(Answer::Http {
            status,
            retry_after,
        }) => {
            let code = StatusCode::from_u16(status).expect("a valid status");
            let mut response = (
                code,
                axum::Json(json!({"identifier": "ERROR", "message": "Failed."})),
            )
                .into_response();
            if let Some(retry_after) = retry_after {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    retry_after.parse().expect("a header value"),
                );
            }
            response
        }
        Some(Answer::Hang) => std::future::pending().await,
        Some(Answer::Junk) => (
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>502 Bad Gateway</body></html>",
        )
            .into_response(),
    }
}
