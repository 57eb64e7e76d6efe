use std::io::Write as _;

use tonic::Code;

use super::*;

const FILE: &str = r#"
[[token]]
name = "onboarding-ui"
scopes = ["cases:read"]
token = "ui-token"

[[token]]
name = "accounts"
scopes = ["cases:read", "pii:read"]
sha256 = "e51b3ee9d96dcd39f45f06e4a5e4f0f7fdae1bb7a08b24b3fd6ee1d5c5f9b8f0"

[[client]]
san = "spiffe://prod/ns/accounts/sa/accounts"
name = "accounts-mtls"
scopes = ["cases:read", "pii:read"]
"#;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    file
}

fn metadata(authorization: Option<&str>) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    if let Some(value) = authorization {
        metadata.insert("authorization", value.parse().unwrap());
    }
    metadata
}

fn certificate(san: &str) -> CertificateDer<'static> {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params
        .subject_alt_names
        .push(rcgen::SanType::URI(san.try_into().unwrap()));
    let key = rcgen::KeyPair::generate().unwrap();
    params.self_signed(&key).unwrap().der().clone()
}

fn call(
    credentials: &Credentials,
    authorization: Option<&str>,
    san: Option<&str>,
) -> Result<Caller, Status> {
    let certs = san.map(|san| vec![certificate(san)]);
    credentials.caller(&metadata(authorization), certs.as_deref())
}

fn name_and_pii(caller: Result<Caller, Status>) -> (String, bool) {
    let caller = caller.expect("authenticated");
    (
        caller.name().to_owned(),
        caller.require(Scope::PiiRead).is_ok(),
    )
}

#[test]
fn without_credentials_every_call_is_an_anonymous_caller_with_every_scope() {
    let open = Credentials::default();
    assert!(!open.is_required());
    let caller = call(&open, None, None).unwrap();
    assert_eq!(caller.name(), "anonymous");
    assert!(caller.require(Scope::PiiRead).is_ok());
}

#[test]
fn env_tokens_grant_cases_read_only() {
    let credentials = Credentials::load(&["old", "new"], None, false).unwrap();
    assert!(credentials.is_required());
    for (header, name) in [
        ("Bearer old", "VERDICT_GRPC_TOKEN#1"),
        ("bearer new", "VERDICT_GRPC_TOKEN#2"),
    ] {
        let caller = call(&credentials, Some(header), None).unwrap();
        assert_eq!(caller.name(), name);
        assert!(caller.require(Scope::CasesRead).is_ok());
        assert_eq!(
            caller.require(Scope::PiiRead).unwrap_err().code(),
            Code::PermissionDenied
        );
    }
}

#[test]
fn missing_unknown_or_malformed_tokens_are_unauthenticated() {
    let credentials = Credentials::load(&["secret"], None, false).unwrap();
    for header in [
        None,
        Some("secret"),
        Some("Bearer wrong"),
        Some("Basic c2VjcmV0"),
        Some("Bearer "),
    ] {
        let status = call(&credentials, header, None).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
        assert!(!status.message().contains("secret"), "{}", status.message());
    }
}

#[test]
fn tokens_file_names_tokens_and_clients_with_their_scopes() {
    let tokens = file(&FILE.replace(
        "e51b3ee9d96dcd39f45f06e4a5e4f0f7fdae1bb7a08b24b3fd6ee1d5c5f9b8f0",
        &hex::encode(Sha256::digest(b"accounts-token")),
    ));
    let credentials = Credentials::load(&["env"], Some(tokens.path()), true).unwrap();
    let spiffe = "spiffe://prod/ns/accounts/sa/accounts";

    assert_eq!(
        name_and_pii(call(&credentials, Some("Bearer ui-token"), None)),
        ("onboarding-ui".into(), false)
    );
    assert_eq!(
        name_and_pii(call(&credentials, Some("Bearer accounts-token"), None)),
        ("accounts".into(), true)
    );
    assert_eq!(
        name_and_pii(call(&credentials, None, Some(spiffe))),
        ("accounts-mtls".into(), true)
    );
    // A token, when sent, is who the caller is.
    assert_eq!(
        name_and_pii(call(&credentials, Some("Bearer ui-token"), Some(spiffe))),
        ("onboarding-ui".into(), false)
    );
    assert_eq!(
        call(&credentials, Some("Bearer nope"), Some(spiffe))
            .unwrap_err()
            .code(),
        Code::Unauthenticated
    );
    // An unlisted certificate grants nothing: a token is still needed.
    let status = call(&credentials, None, Some("spiffe://prod/ns/other/sa/x")).unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().contains("not listed"),
        "{}",
        status.message()
    );
    assert_eq!(
        name_and_pii(call(
            &credentials,
            Some("Bearer env"),
            Some("spiffe://prod/ns/other/sa/x")
        )),
        ("VERDICT_GRPC_TOKEN#1".into(), false)
    );
}

#[test]
fn client_ca_alone_lets_every_certificate_read_cases() {
    let credentials = Credentials::load(&[] as &[&str], None, true).unwrap();
    assert!(credentials.is_required());
    let caller = call(&credentials, None, Some("spiffe://prod/ns/x/sa/y")).unwrap();
    assert_eq!(caller.name(), "spiffe://prod/ns/x/sa/y");
    assert!(caller.require(Scope::CasesRead).is_ok());
    assert!(caller.require(Scope::PiiRead).is_err());
    assert_eq!(
        call(&credentials, None, None).unwrap_err().code(),
        Code::Unauthenticated
    );
}

#[test]
fn unusable_tokens_files_are_refused_at_start() {
    let missing = Credentials::load(
        &[] as &[&str],
        Some(Path::new("/nonexistent/t.toml")),
        false,
    );
    assert!(
        matches!(missing, Err(Error::ReadFile { .. })),
        "{missing:?}"
    );

    let empty = file("# nothing yet\n");
    let error = Credentials::load(&[] as &[&str], Some(empty.path()), false).unwrap_err();
    assert!(error.to_string().contains("grant nothing"), "{error}");

    let clients = file("[[client]]\nsan = \"x\"\nscopes = [\"cases:read\"]\n");
    let error = Credentials::load(&[] as &[&str], Some(clients.path()), false).unwrap_err();
    assert!(
        error.to_string().contains("VERDICT_GRPC_CLIENT_CA"),
        "{error}"
    );

    let twice = file("[[token]]\nname = \"a\"\nscopes = []\ntoken = \"same\"\n");
    let error = Credentials::load(&["same"], Some(twice.path()), false).unwrap_err();
    assert!(
        error.to_string().contains("also in VERDICT_GRPC_TOKEN"),
        "{error}"
    );
    assert!(!error.to_string().contains("same\""), "{error}");
}

#[test]
fn debug_output_never_shows_tokens() {
    let credentials = Credentials::load(&["super-secret-token"], None, false).unwrap();
    assert!(!format!("{credentials:?}").contains("super-secret"));
}
