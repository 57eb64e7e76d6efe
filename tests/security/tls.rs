//! TLS and mutual TLS on the gRPC listener, with real tonic clients and the `verdict` CLI.

use std::io::Write as _;
use std::process::Command;

use tonic::Code;
use tonic::transport::Channel;
use verdict_proto::verdict::v1::CaseView;
use verdict_proto::verdict::v1::case_service_client::CaseServiceClient;
use verdict_testkit::{Backend, TestApp, TestAppOptions, TestPki, within};

use super::{get_case, new_case};

const ACCOUNTS: &str = "spiffe://verdict.test/ns/accounts/sa/accounts";

async fn tls_app(
    pki: &TestPki,
    client_ca: bool,
    tokens: Option<&str>,
) -> (TestApp, Option<tempfile::NamedTempFile>) {
    let server = pki.server();
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc.grpc_tls_cert = Some(server.cert);
    options.grpc.grpc_tls_key = Some(server.key);
    if client_ca {
        options.grpc.grpc_client_ca = Some(pki.ca_path().to_owned());
    }
    let file = tokens.map(|text| {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    });
    options.grpc.grpc_tokens_file = file.as_ref().map(|f| f.path().to_owned());
    (TestApp::spawn_with(options).await.unwrap(), file)
}

/// A GetCase of `scan_ref` over `client`, or why it failed (handshake refusals included: with
/// TLS 1.3 a refused client certificate shows on the first call, not at connect).
async fn basic_get(
    client: Result<CaseServiceClient<Channel>, tonic::transport::Error>,
    scan_ref: &str,
) -> Result<bool, String> {
    let mut client = client.map_err(|e| format!("connect: {e:?}"))?;
    get_case(&mut client, scan_ref, CaseView::Basic, None)
        .await
        .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_clients_that_trust_the_ca_and_refuses_plaintext() {
    let pki = TestPki::new("verdict");
    let (app, _) = tls_app(&pki, false, None).await;
    let scan_ref = new_case(&app).await;

    let answer = basic_get(app.grpc_tls(pki.client_tls()).await, &scan_ref).await;
    assert_eq!(
        answer,
        Ok(false),
        "a TLS client that trusts the CA reads the case"
    );

    // Plaintext h2c to a TLS listener: no gRPC answer at all.
    let plaintext = Channel::from_shared(format!("http://{}", app.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .map(CaseServiceClient::new);
    let answer = basic_get(plaintext, &scan_ref).await;
    assert!(answer.is_err(), "plaintext was served: {answer:?}");
    assert!(!answer.unwrap_err().starts_with("NotFound"));

    // A client that trusts another CA refuses the server.
    let stranger = TestPki::new("stranger");
    let answer = basic_get(app.grpc_tls(stranger.client_tls()).await, &scan_ref).await;
    assert!(answer.is_err(), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_admits_certificates_of_the_ca_and_their_listed_scopes() {
    let pki = TestPki::new("verdict");
    let tokens = format!(
        "[[client]]\nsan = \"{ACCOUNTS}\"\nname = \"accounts\"\nscopes = [\"cases:read\", \"pii:read\"]\n\n\
         [[token]]\nname = \"ui\"\nscopes = [\"cases:read\"]\ntoken = \"ui-token\"\n"
    );
    let (app, _file) = tls_app(&pki, true, Some(&tokens)).await;
    let scan_ref = new_case(&app).await;

    // A good client: its SAN is listed with pii:read.
    let accounts = pki.client(ACCOUNTS);
    let mut client = app
        .grpc_tls(pki.client_tls().identity(accounts.identity()))
        .await
        .expect("the handshake succeeds");
    assert_eq!(
        get_case(&mut client, &scan_ref, CaseView::Full, None)
            .await
            .map_err(|s| s.code()),
        Ok(true)
    );

    // No client certificate: the handshake is refused.
    let answer = basic_get(app.grpc_tls(pki.client_tls()).await, &scan_ref).await;
    assert!(
        answer.is_err(),
        "served without a client certificate: {answer:?}"
    );
    assert!(
        !answer.as_ref().unwrap_err().contains("Unauthenticated"),
        "{answer:?}"
    );

    // A certificate from a foreign CA: refused too.
    let foreign_ca = TestPki::new("foreign");
    let foreign = foreign_ca.client(ACCOUNTS);
    let answer = basic_get(
        app.grpc_tls(pki.client_tls().identity(foreign.identity()))
            .await,
        &scan_ref,
    )
    .await;
    assert!(answer.is_err(), "served a foreign certificate: {answer:?}");

    // A certificate of the CA whose SAN is not listed: the connection is fine, the call needs
    // a token.
    let other = pki.client("spiffe://verdict.test/ns/other/sa/other");
    let mut client = app
        .grpc_tls(pki.client_tls().identity(other.identity()))
        .await
        .expect("the handshake succeeds");
    assert_eq!(
        get_case(&mut client, &scan_ref, CaseView::Basic, None)
            .await
            .map_err(|s| s.code()),
        Err(Code::Unauthenticated)
    );
    assert_eq!(
        get_case(&mut client, &scan_ref, CaseView::Basic, Some("ui-token"))
            .await
            .map_err(|s| s.code()),
        Ok(false)
    );
    assert_eq!(
        get_case(&mut client, &scan_ref, CaseView::Full, Some("ui-token"))
            .await
            .map_err(|s| s.code()),
        Err(Code::PermissionDenied)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reads_over_mutual_tls_with_ca_cert_and_key() {
    let pki = TestPki::new("verdict");
    let tokens =
        format!("[[client]]\nsan = \"{ACCOUNTS}\"\nscopes = [\"cases:read\", \"pii:read\"]\n");
    let (app, _file) = tls_app(&pki, true, Some(&tokens)).await;
    let scan_ref = new_case(&app).await;
    let accounts = pki.client(ACCOUNTS);

    let run = |with_identity: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_verdict"));
        command
            .args(["get", &scan_ref, "--full"])
            .arg("--grpc-url")
            .arg(format!("https://{}", app.grpc_addr()))
            .arg("--ca")
            .arg(pki.ca_path())
            .env_remove("VERDICT_GRPC_TOKEN");
        if with_identity {
            command
                .arg("--cert")
                .arg(&accounts.cert)
                .arg("--key")
                .arg(&accounts.key);
        }
        command.output().expect("run verdict get")
    };
    let output = within("verdict get", async {
        tokio::task::block_in_place(|| run(true))
    })
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let case: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(case["scanRef"], scan_ref.as_str());
    assert!(case["person"].is_object(), "{case}");

    let output = within("verdict get", async {
        tokio::task::block_in_place(|| run(false))
    })
    .await;
    assert!(
        !output.status.success(),
        "served a CLI without a client certificate"
    );
}
