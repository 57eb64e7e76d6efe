//! The scope matrix of DESIGN §10: every CaseService call × view × credential, streams included
//! (checked before the stream starts).

use std::io::Write as _;

use tonic::Code;
use verdict_proto::verdict::v1::{
    CaseView, ListCasesRequest, WatchCaseRequest, WatchCasesRequest, watch_case_response,
    watch_cases_response,
};
use verdict_testkit::{Backend, TestApp, TestAppOptions, within};

use super::{bearer, get_case, new_case};

const TOKENS: &str = r#"
[[token]]
name = "onboarding-ui"
scopes = ["cases:read"]
token = "reader-token"

[[token]]
name = "accounts"
scopes = ["cases:read", "pii:read"]
sha256 = "SHA"
"#;

/// Who calls: no credential, an unknown token, `cases:read`, `cases:read` + `pii:read`.
const CALLERS: [(&str, Option<&str>); 5] = [
    ("no credential", None),
    ("unknown token", Some("forged-token")),
    ("cases:read (file)", Some("reader-token")),
    ("cases:read (VERDICT_GRPC_TOKEN)", Some("env-token")),
    ("cases:read + pii:read", Some("pii-token")),
];

fn expected(caller: Option<&str>, view: CaseView) -> Result<bool, Code> {
    match (caller, view) {
        (None | Some("forged-token"), _) => Err(Code::Unauthenticated),
        (Some("reader-token" | "env-token"), CaseView::Full) => Err(Code::PermissionDenied),
        (Some(_), CaseView::Full) => Ok(true),
        (Some(_), _) => Ok(false),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_and_view_needs_the_right_scope() {
    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    let digest = sha256_hex(b"pii-token");
    tokens
        .write_all(TOKENS.replace("SHA", &digest).as_bytes())
        .unwrap();
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc_token = Some("env-token".into());
    options.grpc.grpc_tokens_file = Some(tokens.path().to_owned());
    let app = TestApp::spawn_with(options).await.unwrap();
    let scan_ref = new_case(&app).await;
    let mut client = app.grpc().await;

    let mut checked = 0;
    for view in [CaseView::Unspecified, CaseView::Basic, CaseView::Full] {
        for (who, token) in CALLERS {
            let want = expected(token, view);
            let what = format!("{who}, {view:?}");

            let got = get_case(&mut client, &scan_ref, view, token)
                .await
                .map_err(|s| s.code());
            assert_eq!(got, want, "GetCase: {what}");

            let got = within(
                "ListCases",
                client.list_cases(bearer(
                    ListCasesRequest {
                        view: view.into(),
                        ..Default::default()
                    },
                    token,
                )),
            )
            .await
            .map(|r| r.into_inner().cases[0].person.is_some())
            .map_err(|s| s.code());
            assert_eq!(got, want, "ListCases: {what}");

            let got = match within(
                "WatchCase",
                client.watch_case(bearer(
                    WatchCaseRequest {
                        scan_ref: scan_ref.clone(),
                        view: view.into(),
                        ..Default::default()
                    },
                    token,
                )),
            )
            .await
            {
                Err(status) => Err(status.code()),
                Ok(stream) => {
                    let first = within("the snapshot", stream.into_inner().message())
                        .await
                        .unwrap()
                        .and_then(|m| m.event);
                    match first {
                        Some(watch_case_response::Event::Case(case)) => Ok(case.person.is_some()),
                        other => panic!("WatchCase sent {other:?} first"),
                    }
                }
            };
            assert_eq!(got, want, "WatchCase: {what}");

            let got = match within(
                "WatchCases",
                client.watch_cases(bearer(
                    WatchCasesRequest {
                        view: view.into(),
                        ..Default::default()
                    },
                    token,
                )),
            )
            .await
            {
                Err(status) => Err(status.code()),
                Ok(stream) => {
                    let first = within("the first change", stream.into_inner().message())
                        .await
                        .unwrap()
                        .and_then(|m| m.event);
                    match first {
                        Some(watch_cases_response::Event::Change(change)) => {
                            Ok(change.case.unwrap().person.is_some())
                        }
                        other => panic!("WatchCases sent {other:?} first"),
                    }
                }
            };
            assert_eq!(got, want, "WatchCases: {what}");
            checked += 4;
        }
    }
    assert_eq!(checked, 60);
}

#[tokio::test]
async fn refusals_say_what_is_missing() {
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc_token = Some("env-token".into());
    let app = TestApp::spawn_with(options).await.unwrap();
    let scan_ref = new_case(&app).await;
    let mut client = app.grpc().await;

    let denied = get_case(&mut client, &scan_ref, CaseView::Full, Some("env-token"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied);
    assert_eq!(
        denied.message(),
        r#"caller "VERDICT_GRPC_TOKEN#1" lacks the scope pii:read"#
    );
    let missing = get_case(&mut client, &scan_ref, CaseView::Basic, None)
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::Unauthenticated);
    assert!(
        missing.message().contains("Bearer"),
        "{}",
        missing.message()
    );
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}
