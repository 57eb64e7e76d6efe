//! The bounds a server puts on its callers: open streams, stream age, key size, history length.

use super::*;

#[tokio::test]
async fn streams_over_the_limit_are_resource_exhausted_until_one_closes() {
    let server = Server::start(GrpcOptions {
        max_streams: 2,
        ..quiet_options()
    })
    .await;
    let mut client = server.client().await;
    let mut ending = client
        .watch_case(watch_req("scan-a", 0, true))
        .await
        .unwrap()
        .into_inner();
    let dropped = client
        .watch_case(watch_req("scan-b", 0, true))
        .await
        .unwrap()
        .into_inner();

    let refused = client
        .watch_cases(pb::WatchCasesRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("limit"), "{}", refused.message());

    // A stream that ends on the server frees its slot before the client sees the end.
    server.commit(approved("scan-a", 1));
    next_case(&mut ending).await;
    ends_ok(&mut ending).await;
    let _third = client
        .watch_case(watch_req("scan-c", 0, false))
        .await
        .expect("a slot was freed");

    // A client that goes away frees its slot once the server sees the reset.
    drop(dropped);
    within("a slot freed by a client going away", async {
        loop {
            match client.watch_case(watch_req("scan-d", 0, false)).await {
                Ok(_) => return,
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_stream_past_its_maximum_age_ends_unavailable_and_the_client_resumes() {
    let server = Server::start(GrpcOptions {
        stream_max_age: Duration::from_millis(300),
        ..quiet_options()
    })
    .await;
    server.commit(pending("scan-1", 1));
    let mut client = server.client().await;
    let mut stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_case(&mut stream).await.revision, 1);
    let ended = ends_with(&mut stream, Code::Unavailable).await;
    assert!(
        ended.message().contains("maximum age"),
        "{}",
        ended.message()
    );

    let mut resumed = client
        .watch_case(watch_req("scan-1", 1, false))
        .await
        .unwrap()
        .into_inner();
    server.commit(pending("scan-1", 2));
    assert_eq!(next_case(&mut resumed).await.revision, 2);
    server.stop().await;
}

#[tokio::test]
async fn oversized_or_nul_keys_are_invalid_arguments_on_every_call() {
    let server = Server::start(quiet_options()).await;
    let mut client = server.client().await;
    for (key, says) in [
        ("x".repeat(129), "longer than 128 bytes"),
        ("scan\0ref".to_owned(), "NUL"),
    ] {
        let mut statuses = vec![
            client
                .get_case(pb::GetCaseRequest {
                    key: Some(Key::ScanRef(key.clone())),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            client
                .get_case(pb::GetCaseRequest {
                    key: Some(Key::ClientId(key.clone())),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
            client
                .list_cases(pb::ListCasesRequest {
                    client_id: key.clone(),
                    ..Default::default()
                })
                .await
                .unwrap_err(),
        ];
        statuses.push(
            client
                .watch_case(watch_req(&key, 0, false))
                .await
                .unwrap_err(),
        );
        for status in statuses {
            assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
            assert!(status.message().contains(says), "{}", status.message());
        }
    }
    // 128 bytes is still a key (one that does not exist).
    let status = client
        .get_case(pb::GetCaseRequest {
            key: Some(Key::ScanRef("x".repeat(128))),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::NotFound);
    server.stop().await;
}

#[tokio::test]
async fn include_history_returns_the_newest_thousand_deliveries_oldest_first() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    for revision in 1..=1005 {
        server.store.add_history(
            "scan-1",
            CaseEvent {
                event_type: "IDENTIFICATION".into(),
                is_final: false,
                outcome: Outcome::Applied,
                revision,
                overall_status: None,
                received_at: Utc.timestamp_opt(1_700_000_000, 0).unwrap(),
            },
        );
    }
    let case = server
        .client()
        .await
        .get_case(pb::GetCaseRequest {
            key: Some(Key::ScanRef("scan-1".into())),
            view: 0,
            include_history: true,
        })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.history.len(), 1000);
    assert_eq!(case.history.first().unwrap().revision, 6);
    assert_eq!(case.history.last().unwrap().revision, 1005);
    server.stop().await;
}
