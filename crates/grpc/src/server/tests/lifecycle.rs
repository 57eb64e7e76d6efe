//! Health, reflection and the shutdown order.

use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use super::*;

async fn health_of(client: &mut HealthClient<Channel>, service: &str) -> ServingStatus {
    let response = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .unwrap()
        .into_inner();
    ServingStatus::try_from(response.status).unwrap()
}

async fn health_becomes(client: &mut HealthClient<Channel>, wanted: ServingStatus) {
    within("health status", async {
        loop {
            let overall = health_of(client, "").await;
            let service = health_of(client, "verdict.v1.CaseService").await;
            if overall == wanted && service == wanted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn health_follows_the_database() {
    let server = Server::start(quiet_options()).await;
    let mut health = HealthClient::new(server.channel().await);
    health_becomes(&mut health, ServingStatus::Serving).await;
    server.store.set_down(true);
    health_becomes(&mut health, ServingStatus::NotServing).await;
    server.store.set_down(false);
    health_becomes(&mut health, ServingStatus::Serving).await;
    server.stop().await;
}

#[tokio::test]
async fn shutdown_flips_health_then_ends_every_stream_unavailable_and_drains() {
    let server = Server::start(quiet_options()).await;
    server.commit(pending("scan-1", 1));
    let channel = server.channel().await;
    let mut health = HealthClient::new(channel.clone());
    health_becomes(&mut health, ServingStatus::Serving).await;
    let mut health_watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut client = CaseServiceClient::new(channel);
    let mut case_stream = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();
    next_case(&mut case_stream).await;
    let mut feed = client
        .watch_cases(pb::WatchCasesRequest::default())
        .await
        .unwrap()
        .into_inner();
    next_change(&mut feed).await;
    // Opened but never read from: it must end too.
    let mut stalled = client
        .watch_case(watch_req("scan-1", 0, false))
        .await
        .unwrap()
        .into_inner();

    server.shutdown.cancel();
    let mut statuses = Vec::new();
    while let Some(response) = within("health watch", health_watch.message())
        .await
        .unwrap()
    {
        statuses.push(ServingStatus::try_from(response.status).unwrap());
    }
    assert_eq!(
        statuses.last(),
        Some(&ServingStatus::NotServing),
        "{statuses:?}"
    );

    for status in [
        ends_with(&mut case_stream, Code::Unavailable).await,
        ends_with(&mut feed, Code::Unavailable).await,
        ends_with(&mut stalled, Code::Unavailable).await,
    ] {
        assert_eq!(status.message(), "server shutting down");
    }
    within("server drain", server.task).await.unwrap().unwrap();
}

#[tokio::test]
async fn reflection_v1_and_v1alpha_both_list_the_case_service() {
    use tonic_reflection::pb::{v1, v1alpha};

    let server = Server::start(quiet_options()).await;
    let channel = server.channel().await;

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = within("v1 reflection", responses.message())
        .await
        .unwrap()
        .unwrap();
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"verdict.v1.CaseService"), "{names:?}");
    assert!(names.contains(&"grpc.health.v1.Health"), "{names:?}");

    let mut client = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "verdict.v1.CaseService".into(),
            ),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::once(request))
        .await
        .unwrap()
        .into_inner();
    let response = within("v1alpha reflection", responses.message())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            response.message_response,
            Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
        ),
        "{:?}",
        response.message_response
    );
    drop(responses);
    server.stop().await;
}
