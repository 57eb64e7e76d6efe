//! AdminService against the real app: the scope matrix, the quarantine listing and reprocess
//! (the same pass as `verdict quarantine reprocess`), and the quarantine's case, filled in by
//! migration for items stored before it.

use std::io::Write as _;

use tonic::Code;
use verdict_domain::event::UnknownEventType;
use verdict_domain::{CaseStore as _, NewQuarantine};
use verdict_proto::verdict::v1::{
    Decision, ListQuarantineRequest, PurgeCaseRequest, ReprocessQuarantineRequest,
};
use verdict_store::migration::sea_orm::{ConnectionTrait, Statement};
use verdict_store::migration::{Migrator, MigratorTrait};
use verdict_testkit::payloads;
use verdict_testkit::streams::next_case;
use verdict_testkit::{Backend, TestAppOptions, TestDatabase, on_every_backend};

use super::*;

const TOKENS: &str = r#"
[[token]]
name = "reader"
scopes = ["cases:read", "pii:read"]
token = "reader-token"

[[token]]
name = "operator"
scopes = ["admin"]
token = "admin-token"
"#;

/// `message` with `authorization: Bearer <token>` when a token is given.
fn bearer<T>(message: T, token: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(token) = token {
        let value = format!("Bearer {token}").parse().unwrap();
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Quarantines `body` under an event type this version does not know, as if it arrived an
/// hour ago; returns its id.
async fn quarantine(app: &TestApp, event_type: &str, body: Vec<u8>) -> i64 {
    store(app)
        .await
        .quarantine(NewQuarantine {
            event_type: Some(event_type.into()),
            body: body.into(),
            reason: UnknownEventType(event_type.into()).into(),
            received_at: Utc::now() - chrono::Duration::hours(1),
            traceparent: None,
        })
        .await
        .unwrap()
}

/// DESIGN §10: every AdminService call needs `admin`; reading scopes are not enough, and no or
/// an unknown credential is not a caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_admin_call_needs_the_admin_scope() {
    let mut tokens = tempfile::NamedTempFile::new().unwrap();
    tokens.write_all(TOKENS.as_bytes()).unwrap();
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc_token = Some("env-token".into());
    options.grpc.grpc_tokens_file = Some(tokens.path().to_owned());
    let app = TestApp::spawn_with(options).await.unwrap();
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    let mut admin = admin_client(&app).await;

    let callers = [
        (None, Err(Code::Unauthenticated)),
        (Some("forged-token"), Err(Code::Unauthenticated)),
        (Some("env-token"), Err(Code::PermissionDenied)),
        (Some("reader-token"), Err(Code::PermissionDenied)),
        (Some("admin-token"), Ok(())),
    ];
    for (token, expected) in callers {
        let purge = bearer(
            PurgeCaseRequest {
                scan_ref: scan_ref.clone(),
            },
            token,
        );
        let got = within("PurgeCase", admin.purge_case(purge)).await;
        assert_eq!(
            got.map(drop).map_err(|s| s.code()),
            expected,
            "PurgeCase {token:?}"
        );
        let list = bearer(ListQuarantineRequest::default(), token);
        let got = within("ListQuarantine", admin.list_quarantine(list)).await;
        assert_eq!(
            got.map(drop).map_err(|s| s.code()),
            expected,
            "List {token:?}"
        );
        let reprocess = bearer(ReprocessQuarantineRequest::default(), token);
        let got = within("ReprocessQuarantine", admin.reprocess_quarantine(reprocess)).await;
        assert_eq!(
            got.map(drop).map_err(|s| s.code()),
            expected,
            "Reprocess {token:?}"
        );
    }
    let denied = within(
        "PurgeCase",
        admin.purge_case(bearer(
            PurgeCaseRequest {
                scan_ref: scan_ref.clone(),
            },
            Some("reader-token"),
        )),
    )
    .await
    .unwrap_err();
    assert_eq!(denied.message(), r#"caller "reader" lacks the scope admin"#);
    let case = app.get_case(&scan_ref, CaseView::Basic, false).await;
    assert_eq!(
        case.unwrap_err().code(),
        Code::Unauthenticated,
        "CaseService still wants its own credentials"
    );
}

/// ListQuarantine pages through the waiting items with their case and reason and never a body;
/// ReprocessQuarantine records what is now usable, publishes it to watchers, and leaves the
/// rest waiting with its reason.
async fn the_quarantine_is_listed_and_reprocessed_over_rpc(backend: Backend) {
    let mut options = TestAppOptions::new(backend);
    // Far beyond the test's patience: only the publish can deliver the change in time.
    options.resync_interval = std::time::Duration::from_secs(300);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let person = Person::new();
    let scan_ref = payloads::scan_ref();
    let usable = quarantine(&app, MANUAL, person.decided(&scan_ref, "APPROVED")).await;
    let unknown = quarantine(
        &app,
        "IDENTIFICATION_TELEPORTED",
        person.body(&payloads::scan_ref()).build(),
    )
    .await;
    let garbage = quarantine(&app, MANUAL, b"{\"scanRef\": \"not closed".to_vec()).await;
    let mut admin = admin_client(&app).await;

    let first = within(
        "ListQuarantine",
        admin.list_quarantine(ListQuarantineRequest {
            page_size: 2,
            page_token: String::new(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        first.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [usable, unknown]
    );
    assert_eq!(
        (
            first.items[0].scan_ref.as_str(),
            first.items[0].reason_kind.as_str()
        ),
        (scan_ref.as_str(), "unknown_event_type")
    );
    assert!(first.items[0].body_bytes > 0);
    let rest = within(
        "ListQuarantine",
        admin.list_quarantine(ListQuarantineRequest {
            page_size: 2,
            page_token: first.next_page_token.clone(),
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(
        rest.items.iter().map(|i| i.id).collect::<Vec<_>>(),
        [garbage]
    );
    assert_eq!(
        (
            rest.items[0].scan_ref.as_str(),
            rest.next_page_token.as_str()
        ),
        ("", "")
    );
    let listed = format!("{first:?}{rest:?}");
    for marker in person.markers() {
        assert!(!listed.contains(marker), "the listing never shows a body");
    }
    let bad = within(
        "ListQuarantine",
        admin.list_quarantine(ListQuarantineRequest {
            page_size: 0,
            page_token: "x".into(),
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    let mut stream = app.watch_case(&scan_ref, 0, true).await;
    let done = within(
        "ReprocessQuarantine",
        admin.reprocess_quarantine(ReprocessQuarantineRequest { limit: 0 }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!((done.recorded, done.waiting, done.skipped), (1, 2, 0));
    let outcomes: Vec<(i64, &str, u64, &str)> = done
        .items
        .iter()
        .map(|i| (i.id, i.outcome.as_str(), i.revision, i.reason_kind.as_str()))
        .collect();
    assert_eq!(
        outcomes,
        [
            (usable, "applied", 1, ""),
            (unknown, "quarantined", 0, "unknown_event_type"),
            (garbage, "quarantined", 0, "unparseable"),
        ]
    );
    let case = next_case(&mut stream).await.expect("the watcher sees it");
    assert_eq!((case.revision, case.decision()), (1, Decision::Approved));
    let waiting = within(
        "ListQuarantine",
        admin.list_quarantine(ListQuarantineRequest::default()),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(waiting.items.len(), 2, "the unusable ones wait on");
}

/// Quarantine rows stored before the quarantine kept their case get it from the migration, so
/// purging that case erases them too.
async fn quarantine_rows_from_before_learn_their_case_and_go_with_it(backend: Backend) {
    let Some(db) = TestDatabase::new(backend).await else {
        return;
    };
    let store = SeaStore::connect(db.url(), StoreOptions::default())
        .await
        .unwrap();
    let conn = store.connection();
    let steps = Migrator::steps_back_to("m20261129_200001_add_quarantine_scan_ref").unwrap();
    let before = Migrator::migrations().len() as u32 - steps;
    within("the schema before", Migrator::up(conn, Some(before)))
        .await
        .unwrap();
    let person = Person::new();
    let scan_ref = payloads::scan_ref();
    let named = person.body(&scan_ref).build();
    for body in [&named[..], br#"{"scanRef": 12345}"#, b"not json"] {
        conn.execute_raw(Statement::from_sql_and_values(
            conn.get_database_backend(),
            match backend {
                Backend::Sqlite => {
                    "INSERT INTO quarantine (event_type, body, reason, received_at) \
                     VALUES ('IDENTIFICATION_NEW', ?, 'unknown event type', '2026-11-01 00:00:00+00:00')"
                }
                Backend::Postgres => {
                    "INSERT INTO quarantine (event_type, body, reason, received_at) \
                     VALUES ('IDENTIFICATION_NEW', $1, 'unknown event type', '2026-11-01 00:00:00+00:00')"
                }
            },
            [body.to_vec().into()],
        ))
        .await
        .unwrap();
    }
    within("the new migrations", store.migrate()).await.unwrap();

    let items = store.quarantined(0, 10).await.unwrap();
    let cases: Vec<Option<&str>> = items.iter().map(|i| i.scan_ref.as_deref()).collect();
    assert_eq!(cases, [Some(scan_ref.as_str()), Some("12345"), None]);

    // The app on this database: the case arrives, is purged, and its old quarantined copy goes.
    let app_store = std::sync::Arc::new(store);
    let ingest = Ingest::new(app_store.clone(), Arc::new(LocalBus::new(Hub::new())));
    let final_body = person.decided(&scan_ref, "APPROVED");
    ingest
        .ingest(arrival(MANUAL, &final_body, chrono::Duration::zero()))
        .await
        .unwrap();
    let lifecycle =
        verdict_lifecycle::Lifecycle::new(app_store.clone(), Arc::new(LocalBus::new(Hub::new())));
    lifecycle.purge_case(&scan_ref).await.unwrap();
    let items = app_store.quarantined(0, 10).await.unwrap();
    assert_eq!(items.len(), 2, "the erased item no longer waits");
    assert!(
        items
            .iter()
            .all(|i| i.scan_ref.as_deref() != Some(scan_ref.as_str()))
    );
}

on_every_backend!(
    the_quarantine_is_listed_and_reprocessed_over_rpc,
    quarantine_rows_from_before_learn_their_case_and_go_with_it,
);
