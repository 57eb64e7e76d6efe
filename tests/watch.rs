//! End to end: WatchCase and WatchCases streams against the real app, on both databases.

use std::collections::HashSet;

use tonic::{Code, Streaming};
use verdict_proto::verdict::v1::{
    Decision, WatchCaseRequest, WatchCasesRequest, watch_case_response, watch_cases_response,
};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::streams::{next_case, next_change};
use verdict_testkit::{Backend, TestApp, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

async fn watcher_that_connects_before_the_case_exists_gets_every_revision_until_final(
    backend: Backend,
) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let mut stream = app.watch_case(&scan_ref, 0, true).await;

    app.post_ok(AUTO, &webhook(&scan_ref).overall("REVIEWING").build())
        .await;
    let first = next_case(&mut stream).await.expect("the first revision");
    assert_eq!((first.revision, first.decision()), (1, Decision::Pending));

    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
    )
    .await;
    let last = next_case(&mut stream).await.expect("the final revision");
    assert_eq!(
        (last.revision, last.decision(), last.r#final),
        (2, Decision::Approved, true)
    );
    assert!(
        next_case(&mut stream).await.is_none(),
        "until_final ends the stream OK after the final snapshot"
    );
}

async fn watcher_resuming_with_from_revision_gets_only_newer_revisions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&scan_ref).overall("REVIEWING").build())
        .await;
    app.post_ok(AUTO, &webhook(&scan_ref).overall("SUSPECTED").build())
        .await;

    let mut stream = app.watch_case(&scan_ref, 1, false).await;
    let case = next_case(&mut stream).await.unwrap();
    assert_eq!(
        (case.revision, case.overall_status.as_str()),
        (2, "SUSPECTED")
    );

    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("DENIED").final_(true).build(),
    )
    .await;
    let case = next_case(&mut stream).await.unwrap();
    assert_eq!((case.revision, case.decision()), (3, Decision::Denied));
}

async fn until_final_on_a_final_case_sends_the_snapshot_and_ends(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
    )
    .await;
    let mut stream = app.watch_case(&scan_ref, 0, true).await;
    assert_eq!(next_case(&mut stream).await.unwrap().revision, 1);
    assert!(next_case(&mut stream).await.is_none());
}

async fn many_watchers_of_one_case_all_get_the_final_decision(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let scan_ref = payloads::scan_ref();
    let mut streams = Vec::new();
    for _ in 0..20 {
        streams.push(app.watch_case(&scan_ref, 0, true).await);
    }
    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
    )
    .await;
    for stream in &mut streams {
        let case = next_case(stream).await.unwrap();
        assert_eq!((case.revision, case.decision()), (1, Decision::Approved));
        assert!(next_case(stream).await.is_none());
    }
}

async fn feed_consumer_resuming_from_its_cursor_misses_and_repeats_nothing(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let app = std::sync::Arc::new(app);
    const CASES: usize = 12;
    // Two changes per case (preliminary, then final): 24 changes posted while we read.
    let poster = tokio::spawn({
        let app = app.clone();
        async move {
            for _ in 0..CASES {
                let scan_ref = payloads::scan_ref();
                app.post_ok(AUTO, &webhook(&scan_ref).build()).await;
                app.post_ok(
                    MANUAL,
                    &webhook(&scan_ref).overall("APPROVED").final_(true).build(),
                )
                .await;
            }
        }
    });

    let mut seen = Vec::new();
    let mut cursor = String::new();
    while seen.len() < CASES * 2 {
        // Read a few changes, then drop the connection and resume from the last cursor.
        let mut stream = app.watch_cases(&cursor, false).await;
        for _ in 0..5 {
            if seen.len() == CASES * 2 {
                break;
            }
            let change = next_change(&mut stream).await;
            let case = change.case.expect("a change carries the case");
            seen.push((case.scan_ref, case.revision));
            cursor = change.cursor;
        }
    }
    within("the poster", poster).await.unwrap();

    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(
        unique.len(),
        seen.len(),
        "no change is repeated across resumes"
    );
    let cases: HashSet<_> = seen.iter().map(|(s, _)| s.clone()).collect();
    assert_eq!(cases.len(), CASES);
    for scan_ref in &cases {
        let revisions: Vec<_> = seen
            .iter()
            .filter(|(s, _)| s == scan_ref)
            .map(|(_, r)| *r)
            .collect();
        assert_eq!(revisions, [1, 2], "every change of {scan_ref}, in order");
    }

    // Nothing more is waiting after the last cursor.
    let mut stream = app.watch_cases(&cursor, false).await;
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    let change = next_change(&mut stream).await;
    assert_eq!(
        change.case.unwrap().scan_ref,
        scan_ref,
        "the resumed stream starts after the cursor"
    );
}

async fn final_only_feed_carries_only_final_decisions(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let mut stream = app.watch_cases("", true).await;
    let scan_ref = payloads::scan_ref();
    app.post_ok(AUTO, &webhook(&scan_ref).build()).await;
    app.post_ok(
        MANUAL,
        &webhook(&scan_ref).overall("DENIED").final_(true).build(),
    )
    .await;
    let case = next_change(&mut stream).await.case.unwrap();
    assert_eq!(
        (case.scan_ref.as_str(), case.revision, case.r#final),
        (scan_ref.as_str(), 2, true)
    );
}

on_every_backend!(
    watcher_that_connects_before_the_case_exists_gets_every_revision_until_final,
    watcher_resuming_with_from_revision_gets_only_newer_revisions,
    until_final_on_a_final_case_sends_the_snapshot_and_ends,
    many_watchers_of_one_case_all_get_the_final_decision,
    feed_consumer_resuming_from_its_cursor_misses_and_repeats_nothing,
    final_only_feed_carries_only_final_decisions,
);

#[tokio::test]
async fn idle_streams_get_heartbeats() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut stream = app.watch_case(&payloads::scan_ref(), 0, false).await;
    let message = within("a heartbeat", stream.message())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(message.event, Some(watch_case_response::Event::Heartbeat(ref h)) if h.at.is_some())
    );

    let mut feed = app.watch_cases("", false).await;
    let message = within("a heartbeat", feed.message())
        .await
        .unwrap()
        .unwrap();
    assert!(matches!(
        message.event,
        Some(watch_cases_response::Event::Heartbeat(_))
    ));
}

#[tokio::test]
async fn bad_watch_requests_are_invalid_argument() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut grpc = app.grpc().await;
    let err = within("WatchCase", grpc.watch_case(WatchCaseRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let request = WatchCasesRequest {
        cursor: "not-a-cursor".into(),
        ..Default::default()
    };
    let err = within("WatchCases", grpc.watch_cases(request))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn shutdown_ends_open_streams_unavailable() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut case_stream = app.watch_case(&payloads::scan_ref(), 0, false).await;
    let mut feed = app.watch_cases("", false).await;
    app.begin_shutdown();
    for status in [drain(&mut case_stream).await, drain(&mut feed).await] {
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    }
    within("shutdown", app.shutdown())
        .await
        .expect("a clean shutdown");
}

/// Reads past heartbeats until the stream fails, returning the status.
async fn drain<T>(stream: &mut Streaming<T>) -> tonic::Status {
    loop {
        match within("the stream to end", stream.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended OK instead of UNAVAILABLE"),
            Err(status) => return status,
        }
    }
}
