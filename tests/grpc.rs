//! End to end over gRPC: GetCase, ListCases, health and reflection against the real app.

use tonic::Code;
use verdict_proto::verdict::v1::{
    CaseView, Decision, GetCaseRequest, ListCasesRequest, get_case_request::Key,
};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestApp, on_every_backend, within};

const AUTO: &str = "IDENTIFICATION_AUTO_FINISHED";
const MANUAL: &str = "IDENTIFICATION_MANUAL_FINISHED";

async fn get_case_by_client_id_returns_the_most_recently_updated(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let client = format!("client-{}", payloads::scan_ref());
    let (older, newer) = (payloads::scan_ref(), payloads::scan_ref());
    app.post_ok(AUTO, &webhook(&older).client_id(&client).build())
        .await;
    app.post_ok(AUTO, &webhook(&newer).client_id(&client).build())
        .await;

    let mut grpc = app.grpc().await;
    let request = |client: &str| GetCaseRequest {
        key: Some(Key::ClientId(client.to_owned())),
        view: CaseView::Unspecified.into(),
        include_history: false,
    };
    let case = within("GetCase", grpc.get_case(request(&client)))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.scan_ref, newer);

    // Updating the older case makes it the most recent.
    app.post_ok(
        MANUAL,
        &webhook(&older)
            .client_id(&client)
            .overall("APPROVED")
            .final_(true)
            .build(),
    )
    .await;
    let case = within("GetCase", grpc.get_case(request(&client)))
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(case.scan_ref, older);
    assert!(case.person.is_none(), "UNSPECIFIED view is BASIC");
}

async fn list_cases_filters_and_pages_without_gaps(backend: Backend) {
    let Some(app) = TestApp::spawn(backend).await else {
        return;
    };
    let client = format!("client-{}", payloads::scan_ref());
    let mut approved = Vec::new();
    for i in 0..7 {
        let scan_ref = payloads::scan_ref();
        if i % 2 == 0 {
            app.post_ok(
                MANUAL,
                &webhook(&scan_ref)
                    .client_id(&client)
                    .overall("APPROVED")
                    .final_(true)
                    .build(),
            )
            .await;
            approved.push(scan_ref);
        } else {
            app.post_ok(AUTO, &webhook(&scan_ref).client_id(&client).build())
                .await;
        }
    }
    // Another client's case never shows up in this client's listing.
    app.post_ok(
        AUTO,
        &webhook(&payloads::scan_ref())
            .client_id("someone-else")
            .build(),
    )
    .await;

    let mut grpc = app.grpc().await;
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = within(
            "ListCases",
            grpc.list_cases(ListCasesRequest {
                client_id: client.clone(),
                decision: Decision::Approved.into(),
                r#final: Some(true),
                page_size: 2,
                page_token: token.clone(),
                view: CaseView::Basic.into(),
            }),
        )
        .await
        .unwrap()
        .into_inner();
        assert!(page.cases.len() <= 2);
        seen.extend(page.cases.into_iter().map(|c| {
            assert_eq!(
                (c.decision(), c.r#final, c.client_id.as_str()),
                (Decision::Approved, true, client.as_str())
            );
            c.scan_ref
        }));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    approved.reverse(); // most recently changed first
    assert_eq!(seen, approved);

    let all = within(
        "ListCases",
        grpc.list_cases(ListCasesRequest {
            client_id: client.clone(),
            ..Default::default()
        }),
    )
    .await
    .unwrap()
    .into_inner();
    assert_eq!(all.cases.len(), 7);
    assert!(all.next_page_token.is_empty());
}

on_every_backend!(
    get_case_by_client_id_returns_the_most_recently_updated,
    list_cases_filters_and_pages_without_gaps,
);

#[tokio::test]
async fn get_case_rejects_an_empty_key_and_reports_unknown_cases() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut grpc = app.grpc().await;
    for key in [
        None,
        Some(Key::ScanRef(String::new())),
        Some(Key::ClientId(String::new())),
    ] {
        let err = within(
            "GetCase",
            grpc.get_case(GetCaseRequest {
                key,
                ..Default::default()
            }),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    }
    let err = within(
        "GetCase",
        grpc.get_case(GetCaseRequest {
            key: Some(Key::ScanRef("nope".into())),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn list_cases_rejects_bad_page_tokens_and_sizes() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let mut grpc = app.grpc().await;
    let err = within(
        "ListCases",
        grpc.list_cases(ListCasesRequest {
            page_token: "garbage".into(),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let err = within(
        "ListCases",
        grpc.list_cases(ListCasesRequest {
            page_size: -1,
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn health_reports_serving_and_reflection_lists_the_service() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    for service in ["", "verdict.v1.CaseService", "verdict.v1.AdminService"] {
        let request = || HealthCheckRequest {
            service: service.into(),
        };
        // Health turns SERVING once the first database ping answers: await that event.
        let mut updates = within("health watch", health.watch(request()))
            .await
            .unwrap()
            .into_inner();
        loop {
            let update = within("a health update", updates.message())
                .await
                .unwrap()
                .unwrap();
            if update.status() == ServingStatus::Serving {
                break;
            }
        }
        let answer = within("health check", health.check(request()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = within(
        "reflection",
        reflection.server_reflection_info(tokio_stream::once(request)),
    )
    .await
    .unwrap()
    .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        within("reflection answer", stream.message())
            .await
            .unwrap()
            .unwrap()
            .message_response
    else {
        panic!("expected a service list");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"verdict.v1.CaseService"), "{names:?}");
    assert!(names.contains(&"verdict.v1.AdminService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");
}

#[tokio::test]
async fn case_service_requires_the_bearer_token_when_one_is_configured() {
    let mut options = verdict_testkit::TestAppOptions::new(Backend::Sqlite);
    options.grpc_token = Some("old-token, new-token".into());
    let app = TestApp::spawn_with(options).await.unwrap();
    let mut grpc = app.grpc().await;
    let request = |authorization: Option<&str>| {
        let mut request = tonic::Request::new(GetCaseRequest {
            key: Some(Key::ScanRef("nope".into())),
            ..Default::default()
        });
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    };
    for authorization in [None, Some("Bearer wrong"), Some("new-token")] {
        let err = within("GetCase", grpc.get_case(request(authorization)))
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{authorization:?}");
    }
    for token in ["Bearer old-token", "Bearer new-token"] {
        let err = within("GetCase", grpc.get_case(request(Some(token))))
            .await
            .unwrap_err();
        assert_eq!(
            err.code(),
            Code::NotFound,
            "{token} is let through to the lookup"
        );
    }

    // Probes carry no credentials: health stays open.
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.grpc_addr()))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let request = tonic_health::pb::HealthCheckRequest {
        service: String::new(),
    };
    within("health check", health.check(request))
        .await
        .expect("health needs no token");
}
