//! gRPC limits against the real app: open streams, stream age, key size.

use std::time::Duration;

use tonic::Code;
use verdict_proto::verdict::v1::{
    CaseView, WatchCaseRequest, WatchCasesRequest, watch_case_response,
};
use verdict_testkit::{Backend, TestApp, TestAppOptions, within};

use super::{get_case, new_case};

fn watch(scan_ref: &str, from_revision: u64, until_final: bool) -> WatchCaseRequest {
    WatchCaseRequest {
        scan_ref: scan_ref.to_owned(),
        from_revision,
        until_final,
        view: CaseView::Basic.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_past_the_limit_are_resource_exhausted_and_admitted_again_once_one_closes() {
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc.grpc_max_streams = 2;
    let app = TestApp::spawn_with(options).await.unwrap();
    let mut client = app.grpc().await;
    let first = within("WatchCase", client.watch_case(watch("scan-a", 0, false)))
        .await
        .unwrap();
    let _second = within(
        "WatchCases",
        client.watch_cases(WatchCasesRequest::default()),
    )
    .await
    .unwrap();

    let refused = within("WatchCase", client.watch_case(watch("scan-c", 0, false)))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    // Unary calls are not streams: still served.
    let scan_ref = new_case(&app).await;
    assert!(
        get_case(&mut client, &scan_ref, CaseView::Basic, None)
            .await
            .is_ok()
    );

    drop(first);
    within("a slot freed by a client going away", async {
        loop {
            match client.watch_case(watch("scan-c", 0, false)).await {
                Ok(_) => return,
                Err(status) => assert_eq!(status.code(), Code::ResourceExhausted),
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_past_its_maximum_age_ends_unavailable_and_resumes_where_it_was() {
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.grpc.stream_max_age = Duration::from_millis(500);
    let app = TestApp::spawn_with(options).await.unwrap();
    let scan_ref = new_case(&app).await;
    let mut client = app.grpc().await;
    let mut stream = within("WatchCase", client.watch_case(watch(&scan_ref, 0, false)))
        .await
        .unwrap()
        .into_inner();
    let ended = within("the stream to end", async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("the stream ended OK"),
                Err(status) => return status,
            }
        }
    })
    .await;
    assert_eq!(ended.code(), Code::Unavailable);
    assert!(
        ended.message().contains("maximum age"),
        "{}",
        ended.message()
    );

    app.post_ok(
        "IDENTIFICATION_MANUAL_FINISHED",
        &verdict_testkit::payloads::webhook(&scan_ref)
            .final_(true)
            .overall("APPROVED")
            .build(),
    )
    .await;
    // Resume after revision 1, as a client does, again if the new stream ages out too.
    let next = within("the final revision", async {
        loop {
            let mut resumed = client
                .watch_case(watch(&scan_ref, 1, true))
                .await
                .unwrap()
                .into_inner();
            loop {
                match resumed.message().await {
                    Ok(Some(message)) => match message.event {
                        Some(watch_case_response::Event::Case(case)) => return case,
                        Some(watch_case_response::Event::Heartbeat(_)) | None => continue,
                    },
                    Ok(None) => panic!("ended without the final revision"),
                    Err(status) => {
                        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                        break;
                    }
                }
            }
        }
    })
    .await;
    assert_eq!((next.revision, next.r#final), (2, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_over_128_bytes_or_with_nul_are_invalid_arguments() {
    let app = TestApp::spawn(Backend::Postgres).await;
    let Some(app) = app else { return };
    let mut client = app.grpc().await;
    for key in ["x".repeat(129), "scan\0ref".to_owned()] {
        let status = get_case(&mut client, &key, CaseView::Basic, None)
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        let status = within("WatchCase", client.watch_case(watch(&key, 0, false)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
}
