//! Several replicas on one PostgreSQL database and one Redis channel, and the guarantees of
//! DESIGN.md section 5: a change reaches every replica's watchers, the feed never skips or
//! repeats under concurrent ingest, a lost notification is caught by the re-read, and GetCase
//! on any replica returns what any replica acknowledged.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use verdict_domain::{CaseStore, EventType, NewDelivery, Payload};
use verdict_proto::verdict::v1::admin_service_client::AdminServiceClient;
use verdict_proto::verdict::v1::{
    CaseView, Decision, GetCaseRequest, PurgeCaseRequest, get_case_request::Key,
};
use verdict_store::{SeaStore, StoreOptions};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::{next_case, next_change};
use verdict_testkit::{Backend, TestApp, TestAppOptions, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

/// Long re-read interval: these tests prove delivery through Redis, not through the safety net.
fn redis_options() -> TestAppOptions {
    let mut options = TestAppOptions::new(Backend::Postgres).with_redis();
    options.resync_interval = Duration::from_secs(600);
    options
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_on_one_replica_reaches_watchers_on_another() {
    let Some(a) = TestApp::spawn_with(redis_options()).await else {
        return;
    };
    let b = a.replica().await;
    let scan_ref = payloads::scan_ref();

    let mut case_stream = b.watch_case(&scan_ref, 0, true).await;
    let mut feed = b.watch_cases("", false).await;
    a.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
    )
    .await;

    let case = next_case(&mut case_stream)
        .await
        .expect("replica B's watcher gets the decision");
    assert_eq!((case.revision, case.decision()), (1, Decision::Approved));
    assert!(next_case(&mut case_stream).await.is_none());
    let change = next_change(&mut feed).await;
    assert_eq!(change.case.unwrap().scan_ref, scan_ref);

    let request = GetCaseRequest {
        key: Some(Key::ScanRef(scan_ref.clone())),
        ..Default::default()
    };
    let case = within("GetCase on B", b.grpc().await.get_case(request))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(case.case.unwrap().decision(), Decision::Approved);
}

/// Read-after-acknowledge for `GetCase`, whose BASIC answers come from a cache: once any
/// replica answered 200, a call on any replica returns that change or a newer one. No Redis, so
/// nothing but the database can tell replica B; readers keep B's cache warm and busy meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_case_on_any_replica_returns_every_change_acknowledged_before_it() {
    let Some(a) = TestApp::spawn_with(TestAppOptions::new(Backend::Postgres)).await else {
        return;
    };
    let b = Arc::new(a.replica().await);
    let revision_on = |app: Arc<TestApp>, scan_ref: String| async move {
        app.get_case(&scan_ref, CaseView::Basic, false)
            .await
            .map(|case| (case.revision, case.decision(), case.purged_at.is_some()))
    };
    let scan_ref = payloads::scan_ref();
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let (b, scan_ref, busy) = (b.clone(), scan_ref.clone(), busy.clone());
            tokio::spawn(async move {
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    let _ = revision_on(b.clone(), scan_ref.clone()).await;
                }
            })
        })
        .collect();

    a.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    for _ in 0..3 {
        let seen = revision_on(b.clone(), scan_ref.clone()).await.unwrap();
        assert_eq!(seen, (1, Decision::Pending, false));
    }
    a.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("DENIED").final_(true).build(),
    )
    .await;
    let seen = revision_on(b.clone(), scan_ref.clone()).await.unwrap();
    assert_eq!(seen, (2, Decision::Denied, false));

    let purge = PurgeCaseRequest {
        scan_ref: scan_ref.clone(),
    };
    let url = format!("http://{}", a.grpc_addr());
    let mut admin = within("connect", AdminServiceClient::connect(url))
        .await
        .unwrap();
    within("PurgeCase on A", admin.purge_case(purge))
        .await
        .unwrap();
    let seen = revision_on(b.clone(), scan_ref.clone()).await.unwrap();
    assert_eq!(
        seen,
        (3, Decision::Denied, true),
        "B shows the purge at once"
    );

    // Cases B has never been asked about, written on either replica, read on the other.
    for round in 0..10 {
        let (writer, reader): (&TestApp, &TestApp) =
            if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let other = payloads::scan_ref();
        writer.post_ok(AUTO, &webhook(&other).build()).await;
        let got = reader
            .get_case(&other, CaseView::Basic, false)
            .await
            .unwrap();
        assert_eq!(got.revision, 1);
        writer
            .post_ok(
                MANUAL,
                &webhook(&other).overall("APPROVED").final_(true).build(),
            )
            .await;
        let got = reader
            .get_case(&other, CaseView::Basic, false)
            .await
            .unwrap();
        assert_eq!((got.revision, got.decision()), (2, Decision::Approved));
    }

    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        within("a reader to stop", reader).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_notification_is_caught_by_the_periodic_re_read() {
    let mut options = TestAppOptions::new(Backend::Postgres);
    options.resync_interval = Duration::from_millis(200);
    let Some(app) = TestApp::spawn_with(options).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let mut stream = app.watch_case(&scan_ref, 0, true).await;

    // Another writer commits and crashes before publishing: nothing tells the hub.
    let writer = SeaStore::connect(app.database().url(), StoreOptions::default())
        .await
        .unwrap();
    let body = webhook(&scan_ref).overall("DENIED").final_(true).build();
    writer
        .record(NewDelivery {
            event: EventType::ManualFinished,
            payload: Payload::parse(&body).unwrap(),
            body: body.into(),
            received_at: chrono::Utc::now(),
            traceparent: None,
            releases: None,
        })
        .await
        .unwrap();

    let case = next_case(&mut stream)
        .await
        .expect("the re-read delivers the decision");
    assert_eq!((case.revision, case.decision()), (1, Decision::Denied));
}

/// Many tasks ingest at once on two replicas while a consumer streams the final decisions from
/// one of them, disconnecting and resuming from its cursor: it must see every final decision
/// exactly once. On PostgreSQL this is what a sequence-based cursor gets wrong.
async fn concurrent_ingest_feed_delivers_every_final_decision_exactly_once(backend: Backend) {
    let mut options = TestAppOptions::new(backend);
    if backend == Backend::Postgres {
        options = options.with_redis();
    }
    let Some(a) = TestApp::spawn_with(options).await else {
        return;
    };
    let a = Arc::new(a);
    // SQLite is one replica by design; on PostgreSQL a second replica ingests too.
    let b = match backend {
        Backend::Postgres => Arc::new(a.replica().await),
        Backend::Sqlite => a.clone(),
    };
    const TASKS: usize = 8;
    const CASES_PER_TASK: usize = 6;

    let mut posters = Vec::new();
    for task in 0..TASKS {
        let target = if task % 2 == 0 { a.clone() } else { b.clone() };
        posters.push(tokio::spawn(async move {
            let mut finals = Vec::new();
            for _ in 0..CASES_PER_TASK {
                let scan_ref = payloads::scan_ref();
                target.post_ok(AUTO, &webhook(&scan_ref).build()).await;
                target
                    .post_ok(
                        MANUAL,
                        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
                    )
                    .await;
                finals.push(scan_ref);
            }
            finals
        }));
    }

    let expected_total = TASKS * CASES_PER_TASK;
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut received = 0;
    let mut cursor = String::new();
    while received < expected_total {
        let mut stream = a.watch_cases(&cursor, true).await;
        for _ in 0..7 {
            if received == expected_total {
                break;
            }
            let change = next_change(&mut stream).await;
            let case = change.case.unwrap();
            assert!(case.r#final, "final_only sends only final changes");
            *seen.entry(case.scan_ref).or_default() += 1;
            received += 1;
            cursor = change.cursor;
        }
    }
    let mut expected = HashSet::new();
    for poster in posters {
        expected.extend(within("the posters", poster).await.unwrap());
    }
    let repeated: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(repeated.is_empty(), "repeated: {repeated:?}");
    assert_eq!(
        seen.keys().cloned().collect::<HashSet<_>>(),
        expected,
        "every final decision, exactly once"
    );
}

on_every_backend!(concurrent_ingest_feed_delivers_every_final_decision_exactly_once);
