//! WatchCase and WatchCases: ordering, resumption, heartbeats, the safety-net poll, failures.

use super::*;

#[tokio::test]
async fn watch_case_waits_for_a_case_that_does_not_exist_yet() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, true))
        .await
        .unwrap()
        .into_inner();

    server.commit(pending("scan-1", 1));
    assert_eq!(next_case(&mut stream).await.revision, 1);
    server.commit(approved("scan-1", 2));
    let last = next_case(&mut stream).await;
    assert_eq!((last.revision, last.r#final), (2, true));
    ends_ok(&mut stream).await;
    server.stop().await;
}

#[tokio::test]
async fn watch_case_sends_only_newer_revisions_in_increasing_order() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 3));
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_case(&mut stream).await.revision, 3);

    // A burst may be conflated, but what arrives is strictly increasing and ends at the latest.
    for revision in 4..=20 {
        server.commit(pending("scan-1", revision));
    }
    let mut seen = 3;
    while seen < 20 {
        let revision = next_case(&mut stream).await.revision;
        assert!(revision > seen, "{revision} after {seen}");
        seen = revision;
    }

    // from_revision: the snapshot the client already has is not sent again.
    let mut resumed = client
        .watch_case(watch_req("scan-1", 20, false))
        .await
        .unwrap()
        .into_inner();
    server.commit(pending("scan-1", 21));
    assert_eq!(next_case(&mut resumed).await.revision, 21);
    server.stop().await;
}

#[tokio::test]
async fn watch_case_until_final_ends_at_once_when_the_client_has_the_final_revision() {
    let server = Server::start(quiet_options()).await;
    server.commit(approved("scan-1", 2));
    let mut client = server.client().await;

    let mut stream = client
        .watch_case(watch_req("scan-1", 2, true))
        .await
        .unwrap()
        .into_inner();
    ends_ok(&mut stream).await;

    let mut stream = client
        .watch_case(watch_req("scan-1", 0, true))
        .await
        .unwrap()
        .into_inner();
    assert!(next_case(&mut stream).await.r#final);
    ends_ok(&mut stream).await;
    server.stop().await;
}

#[tokio::test]
async fn a_client_going_away_releases_its_subscription() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    let mut feed = client
        .watch_cases(pb::WatchCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    next_case(&mut stream).await;
    next_change(&mut feed).await;
    assert_eq!(server.hub.watcher_count(), 2);

    drop((stream, feed));
    within("watchers released", async {
        while server.hub.watcher_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    server.stop().await;
}

/// A client that stops reading holds the server to a few buffered messages: its producer blocks
/// while the hub conflates the changes, then sends the latest state. A queue per change would
/// hand the client every revision, and grow without bound meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watcher_that_stops_reading_costs_a_bounded_buffer_not_a_backlog() {
    const CHANGES: u64 = 10_000;
    let server = Server::start(quiet_options()).await;
    // The client's HTTP/2 window (64 KiB, set here so it cannot drift) bounds what the transport
    // holds for a reader that does not read: some 800 of these small messages.
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535);
    let mut client = CaseServiceClient::new(within("connect", channel.connect()).await.unwrap());
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    for revision in 1..=CHANGES {
        server.commit(pending("scan-1", revision));
        // Let the producer run, fill the transport and block.
        tokio::task::yield_now().await;
    }
    let mut received = 0;
    loop {
        received += 1;
        if next_case(&mut stream).await.revision == CHANGES {
            break;
        }
    }
    // What the transport held when the producer blocked, the one item in hand, then the latest
    // revision: far fewer than one message per change.
    assert!(
        received < CHANGES / 4,
        "{received} messages for {CHANGES} changes: the slow client was queued every revision"
    );
    server.stop().await;
}

#[tokio::test]
async fn watch_case_refuses_an_empty_scan_ref() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    let status = client
        .watch_case(watch_req("", 0, false))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn idle_watch_case_gets_heartbeats() {
    let server = Server::start(GrpcOptions {
        heartbeat_interval: Duration::from_millis(50),
        ..quiet_options()
    })
    .await;
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    for _ in 0..2 {
        let event = within("heartbeat", stream.message())
            .await
            .unwrap()
            .unwrap()
            .event;
        assert!(
            matches!(
                event,
                Some(pb::watch_case_response::Event::Heartbeat(pb::Heartbeat {
                    at: Some(_),
                    ..
                }))
            ),
            "{event:?}"
        );
    }
    server.stop().await;
}

/// Streams do not poll: a change whose notification was lost reaches them through one pass of
/// the process's batched resync, which wakes the hub like any notification.
#[tokio::test]
async fn one_resync_pass_catches_a_change_whose_notification_was_lost() {
    let server = Server::start(quiet_options()).await;
    let resync = verdict_bus::Resync::new(
        Arc::clone(&server.store) as Arc<dyn CaseStore>,
        Arc::clone(&server.hub),
        Duration::from_secs(600),
        Duration::from_secs(600),
        None,
    );
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    // Committed, never notified.
    server.store.put(pending("scan-1", 1));
    within("the resync pass", resync.run_once()).await.unwrap();
    assert_eq!(next_case(&mut stream).await.revision, 1);

    let mut feed = client
        .watch_cases(pb::WatchCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_change(&mut feed).await.case.unwrap().revision, 1);
    server.store.put(pending("scan-1", 2));
    within("the resync pass", resync.run_once()).await.unwrap();
    assert_eq!(next_change(&mut feed).await.case.unwrap().revision, 2);
    assert_eq!(next_case(&mut stream).await.revision, 2);
    server.stop().await;
}

#[tokio::test]
async fn storage_failure_mid_stream_ends_it_unavailable() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    next_case(&mut stream).await;
    server.store.set_down(true);
    // The next change wakes the stream, whose read then fails.
    server.hub.notify(&verdict_domain::Notification {
        scan_ref: "scan-1".into(),
        revision: 2,
        position: verdict_domain::Cursor(2),
        traceparent: None,
        committed: None,
    });
    ends_with(&mut stream, Code::Unavailable).await;
    server.store.set_down(false);
    server.stop().await;
}

#[tokio::test]
async fn watch_cases_streams_every_change_in_order_and_resumes_without_repeats() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-a", 1));
    server.commit(pending("scan-b", 1));
    let mut client = server.client().await;
    let mut feed = client
        .watch_cases(pb::WatchCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    let first = next_change(&mut feed).await;
    let second = next_change(&mut feed).await;
    assert_eq!(first.case.as_ref().unwrap().scan_ref, "scan-a");
    assert_eq!(second.case.as_ref().unwrap().scan_ref, "scan-b");

    server.commit(approved("scan-a", 2));
    let third = next_change(&mut feed).await;
    assert_eq!(third.case.as_ref().unwrap().revision, 2);
    drop(feed);

    // Resume after the second change: exactly the third comes, nothing before it.
    let mut resumed = client
        .watch_cases(pb::WatchCasesRequest {
            cursor: second.cursor.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_change(&mut resumed).await, third);
    server.commit(pending("scan-c", 1));
    assert_eq!(
        next_change(&mut resumed).await.case.unwrap().scan_ref,
        "scan-c"
    );

    // final_only skips changes that leave a case open.
    let mut finals = client
        .watch_cases(pb::WatchCasesRequest {
            final_only: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_change(&mut finals).await.cursor, third.cursor);
    server.stop().await;
}

#[tokio::test]
async fn watch_cases_refuses_a_malformed_cursor() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    let status = client
        .watch_cases(pb::WatchCasesRequest {
            cursor: "garbage".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}
