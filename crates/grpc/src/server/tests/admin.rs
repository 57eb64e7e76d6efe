//! AdminService over the real server: what `PurgeCase` answers and publishes, and how it refuses.
//! The real store, scopes and the CLI are exercised end to end in the root package's tests.

use verdict_proto::verdict::v1::admin_service_client::AdminServiceClient;

use super::*;

async fn purge(server: &Server, scan_ref: &str) -> Result<pb::Case, Status> {
    let mut admin = AdminServiceClient::new(server.channel().await);
    let request = pb::PurgeCaseRequest {
        scan_ref: scan_ref.into(),
    };
    within("PurgeCase", admin.purge_case(request))
        .await
        .map(|response| response.into_inner().case.expect("a case"))
}

#[tokio::test]
async fn a_purge_answers_the_purged_case_and_reaches_its_watchers() {
    let server = Server::start(quiet_options()).await;
    server.commit(approved("scan-1", 2));
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 2, false))
        .await
        .unwrap()
        .into_inner();

    let case = purge(&server, "scan-1").await.unwrap();
    assert_eq!(case.revision, 3);
    assert!(case.purged_at.is_some());
    assert_eq!(case.person, None);

    let seen = within("the purge on WatchCase", stream.message())
        .await
        .unwrap()
        .and_then(|m| m.event);
    let Some(pb::watch_case_response::Event::Case(seen)) = seen else {
        panic!("{seen:?}");
    };
    assert_eq!((seen.revision, seen.purged_at), (3, case.purged_at));

    let again = purge(&server, "scan-1").await.unwrap();
    assert_eq!(again.revision, 3, "purging twice changes nothing");
    server.stop().await;
}

#[tokio::test]
async fn a_purge_of_an_unknown_or_malformed_scan_ref_is_refused() {
    let server = Server::start(quiet_options()).await;
    let unknown = purge(&server, "nope").await.unwrap_err();
    assert_eq!(
        (unknown.code(), unknown.message()),
        (Code::NotFound, r#"no case with scan_ref "nope""#)
    );
    let empty = purge(&server, "").await.unwrap_err();
    assert_eq!(
        (empty.code(), empty.message()),
        (Code::InvalidArgument, "scan_ref must not be empty")
    );
    server.stop().await;
}
