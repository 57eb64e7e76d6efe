//! The server end to end over a real socket, against an in-memory store and the real hub: the
//! request contract, the stream semantics and the shutdown order.

use std::{future::Future, net::SocketAddr};

use chrono::{TimeZone, Utc};
use tokio::task::JoinHandle;
use tonic::{Code, Status, Streaming, transport::Channel};
use verdict_domain::{Case, CaseEvent, Decision, Outcome, Person};
use verdict_proto::verdict::v1::{
    self as pb, case_service_client::CaseServiceClient, get_case_request::Key,
};

use self::fake_store::FakeStore;
use super::*;

mod admin;
mod audit;
mod fake_store;
mod feed;
mod lifecycle;
mod limits;
mod streams;

const WAIT: Duration = Duration::from_secs(5);

async fn within<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Long enough never to fire in a test that does not want them.
fn quiet_options() -> GrpcOptions {
    GrpcOptions {
        heartbeat_interval: Duration::from_secs(600),
        poll_interval: Duration::from_secs(600),
        ..GrpcOptions::default()
    }
}

struct Server {
    addr: SocketAddr,
    store: Arc<FakeStore>,
    hub: Arc<Hub>,
    shutdown: CancellationToken,
    task: JoinHandle<Result<(), Error>>,
}

impl Server {
    async fn start(options: GrpcOptions) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = Arc::new(FakeStore::default());
        let hub = Hub::new();
        let shutdown = CancellationToken::new();
        let bus = Arc::new(verdict_bus::LocalBus::new(Arc::clone(&hub)));
        let admin = AdminUseCases {
            lifecycle: verdict_lifecycle::Lifecycle::new(store.clone(), bus.clone()),
            ingest: verdict_ingest::Ingest::new(store.clone(), bus),
        };
        // Pinged often, so health follows `set_down` quickly.
        let readiness = Readiness::spawn(
            Arc::clone(&store) as Arc<dyn CaseStore>,
            Duration::from_millis(20),
            shutdown.clone(),
        );
        let task = tokio::spawn(serve(
            listener,
            Arc::clone(&store) as Arc<dyn CaseStore>,
            Arc::clone(&hub),
            admin,
            readiness,
            options,
            shutdown.clone(),
        ));
        Self {
            addr,
            store,
            hub,
            shutdown,
            task,
        }
    }

    async fn channel(&self) -> Channel {
        within(
            "connect",
            Channel::from_shared(format!("http://{}", self.addr))
                .unwrap()
                .connect(),
        )
        .await
        .unwrap()
    }

    async fn client(&self) -> CaseServiceClient<Channel> {
        CaseServiceClient::new(self.channel().await)
    }

    /// Commits a case and tells the hub, as the webhook path does.
    fn commit(&self, case: Case) {
        let notification = self.store.put(case);
        self.hub.notify(&notification);
    }

    async fn stop(self) {
        self.shutdown.cancel();
        within("server drain", self.task).await.unwrap().unwrap();
    }
}

fn case(scan_ref: &str, revision: u64, decision: Decision, is_final: bool) -> Case {
    Case {
        scan_ref: scan_ref.into(),
        client_id: "client-1".into(),
        external_ref: None,
        decision,
        is_final,
        overall_status: Some(if is_final { "APPROVED" } else { "REVIEWING" }.into()),
        last_event_type: "IDENTIFICATION".into(),
        revision,
        auto_document: None,
        auto_face: None,
        manual_document: None,
        manual_face: None,
        fraud_tags: vec![],
        mismatch_tags: vec![],
        suspicion_reasons: vec![],
        created_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
        updated_at: Utc
            .timestamp_opt(1_700_000_000 + revision as i64, 0)
            .unwrap(),
        finalized_at: None,
        purged_at: None,
        person: Some(Person {
            first_name: Some("Jonas".into()),
            ..Person::default()
        }),
    }
}

fn pending(scan_ref: &str, revision: u64) -> Case {
    case(scan_ref, revision, Decision::Pending, false)
}

fn approved(scan_ref: &str, revision: u64) -> Case {
    case(scan_ref, revision, Decision::Approved, true)
}

fn watch_req(scan_ref: &str, from_revision: u64, until_final: bool) -> pb::WatchCaseRequest {
    pb::WatchCaseRequest {
        scan_ref: scan_ref.into(),
        from_revision,
        until_final,
        view: pb::CaseView::Basic.into(),
    }
}

/// The next case on a WatchCase stream, skipping heartbeats.
async fn next_case(stream: &mut Streaming<pb::WatchCaseResponse>) -> pb::Case {
    loop {
        let item = within("next case", stream.message()).await.unwrap();
        match item.and_then(|r| r.event) {
            Some(pb::watch_case_response::Event::Case(case)) => return case,
            Some(pb::watch_case_response::Event::Heartbeat(_)) => continue,
            None => panic!("stream ended or sent an empty event"),
        }
    }
}

async fn next_change(stream: &mut Streaming<pb::WatchCasesResponse>) -> pb::CaseChange {
    loop {
        let item = within("next change", stream.message()).await.unwrap();
        match item.and_then(|r| r.event) {
            Some(pb::watch_cases_response::Event::Change(change)) => return change,
            Some(pb::watch_cases_response::Event::Heartbeat(_)) => continue,
            None => panic!("stream ended or sent an empty event"),
        }
    }
}

async fn ends_ok<T>(stream: &mut Streaming<T>) {
    assert!(
        within("stream end", stream.message())
            .await
            .unwrap()
            .is_none()
    );
}

async fn ends_with<T: std::fmt::Debug>(stream: &mut Streaming<T>, code: Code) -> Status {
    loop {
        match within("stream error", stream.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("stream ended OK, expected {code:?}"),
            Err(status) => {
                assert_eq!(status.code(), code, "{status:?}");
                return status;
            }
        }
    }
}

#[tokio::test]
async fn get_case_hides_the_person_unless_the_full_view_is_asked_for() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    let mut client = server.client().await;

    for (view, has_person) in [
        (pb::CaseView::Unspecified, false),
        (pb::CaseView::Basic, false),
        (pb::CaseView::Full, true),
    ] {
        let case = client
            .get_case(pb::GetCaseRequest {
                key: Some(Key::ScanRef("scan-1".into())),
                view: view.into(),
                include_history: false,
            })
            .await
            .unwrap()
            .into_inner()
            .case
            .unwrap();
        assert_eq!(case.scan_ref, "scan-1");
        assert_eq!(case.person.is_some(), has_person, "{view:?}");
        assert!(case.history.is_empty());
    }
    server.stop().await;
}

#[tokio::test]
async fn get_case_by_client_id_returns_the_latest_case_with_history() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-old", 1));
    server.commit(approved("scan-new", 2));
    server.store.add_history(
        "scan-new",
        CaseEvent {
            event_type: "IDENTIFICATION_AUTO_FINISHED".into(),
            is_final: true,
            outcome: Outcome::Applied,
            revision: 2,
            overall_status: Some("APPROVED".into()),
            received_at: Utc.timestamp_opt(1_700_000_002, 0).unwrap(),
        },
    );
    let mut client = server.client().await;
    let case = client
        .get_case(pb::GetCaseRequest {
            key: Some(Key::ClientId("client-1".into())),
            view: pb::CaseView::Basic.into(),
            include_history: true,
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.scan_ref, "scan-new");
    assert_eq!(case.decision, pb::Decision::Approved as i32);
    assert_eq!(case.history.len(), 1);
    assert_eq!(case.history[0].outcome, "applied");
    server.stop().await;
}

#[tokio::test]
async fn get_case_refuses_missing_keys_and_reports_unknown_ones() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    let get = |key| pb::GetCaseRequest {
        key,
        view: 0,
        include_history: false,
    };
    for key in [
        None,
        Some(Key::ScanRef(String::new())),
        Some(Key::ClientId(String::new())),
    ] {
        let status = client.get_case(get(key.clone())).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{key:?}");
    }

    let status = client
        .get_case(get(Some(Key::ScanRef("nope".into()))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(
        status.message().contains("scan_ref"),
        "{}",
        status.message()
    );

    let status = client
        .get_case(get(Some(Key::ClientId("user-4711@example.com".into()))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("client_id"));
    assert!(
        !status.message().contains("4711"),
        "client ids may be personal"
    );

    let status = client
        .get_case(pb::GetCaseRequest {
            key: Some(Key::ScanRef("scan-1".into())),
            view: 99,
            include_history: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn storage_down_is_unavailable_without_the_cause() {
    let server = Server::start(quiet_options()).await;
    server.store.set_down(true);
    let mut client = server.client().await;
    let status = client
        .get_case(pb::GetCaseRequest {
            key: Some(Key::ScanRef("scan-1".into())),
            view: 0,
            include_history: false,
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        !status.message().contains("refused"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn list_cases_pages_with_filters_and_opaque_tokens() {
    let server = Server::start(quiet_options()).await;
    for n in 1..=5 {
        server.commit(pending(&format!("scan-{n}"), 1));
    }
    server.commit(approved("scan-final", 2));
    let mut client = server.client().await;
    let list = |page_size, page_token: &str| pb::ListCasesRequest {
        client_id: "client-1".into(),
        decision: pb::Decision::Pending.into(),
        r#final: Some(false),
        page_size,
        page_token: page_token.into(),
        view: 0,
    };

    let first = client.list_cases(list(3, "")).await.unwrap().into_inner();
    let names: Vec<_> = first.cases.iter().map(|c| c.scan_ref.as_str()).collect();
    assert_eq!(names, ["scan-5", "scan-4", "scan-3"]);
    assert!(first.cases.iter().all(|c| c.person.is_none()));
    assert!(!first.next_page_token.is_empty());

    let second = client
        .list_cases(list(3, &first.next_page_token))
        .await
        .unwrap()
        .into_inner();
    let names: Vec<_> = second.cases.iter().map(|c| c.scan_ref.as_str()).collect();
    assert_eq!(names, ["scan-2", "scan-1"]);
    assert_eq!(second.next_page_token, "");

    for bad in [list(-1, ""), list(3, "not-a-token")] {
        let status = client.list_cases(bad).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
    }
    server.stop().await;
}
