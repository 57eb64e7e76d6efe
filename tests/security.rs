//! End to end: the security of DESIGN §10 against the real app (and the real binary for start
//! refusals): TLS and mutual TLS with certificates made at test time, the scope matrix, the
//! HTTP timeouts, caps and allowlist, secrets kept out of `--help`, Redis with a password and
//! over TLS, the private SQLite file.

#[path = "security/http.rs"]
mod http;
#[path = "security/limits.rs"]
mod limits;
#[path = "security/redis.rs"]
mod redis;
#[path = "security/scopes.rs"]
mod scopes;
#[path = "security/secrets.rs"]
mod secrets;
#[path = "security/startup.rs"]
mod startup;
#[path = "security/tls.rs"]
mod tls;

use tonic::transport::Channel;
use verdict_proto::verdict::v1::case_service_client::CaseServiceClient;
use verdict_proto::verdict::v1::{CaseView, GetCaseRequest, get_case_request::Key};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{TestApp, within};

/// Posts a preliminary webhook for a new case and returns its scanRef.
async fn new_case(app: &TestApp) -> String {
    let scan_ref = payloads::scan_ref();
    app.post_ok("IDENTIFICATION_AUTO_FINISHED", &webhook(&scan_ref).build())
        .await;
    scan_ref
}

/// `request` with `authorization: Bearer <token>` when a token is given.
fn bearer<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {token}").parse().expect("ASCII token"),
        );
    }
    request
}

/// GetCase of `scan_ref` in `view`: the status code, and whether the person came back.
async fn get_case(
    client: &mut CaseServiceClient<Channel>,
    scan_ref: &str,
    view: CaseView,
    token: Option<&str>,
) -> Result<bool, tonic::Status> {
    let request = GetCaseRequest {
        key: Some(Key::ScanRef(scan_ref.to_owned())),
        view: view.into(),
        include_history: false,
    };
    let response = within("GetCase", client.get_case(bearer(request, token))).await?;
    Ok(response.into_inner().case.expect("a case").person.is_some())
}
