//! The webhook listener against slow and foreign clients: header and body read timeouts, the
//! connection cap, the source allowlist with and without a trusted proxy.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::Code;
use verdict_proto::verdict::v1::CaseView;
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestApp, TestAppOptions, within};

use super::get_case;

fn options(configure: impl FnOnce(&mut verdict::config::HttpConfig)) -> TestAppOptions {
    let mut options = TestAppOptions::new(Backend::Sqlite);
    configure(&mut options.http);
    options
}

/// Everything the server sends until it closes the connection.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    // A reset is a close too.
    let _ = within(
        "the server to close the connection",
        stream.read_to_end(&mut answer),
    )
    .await;
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_sending_half_a_header_is_disconnected_while_others_are_served() {
    let app = TestApp::spawn_with(options(|http| {
        http.http_header_timeout = Duration::from_millis(500);
    }))
    .await
    .unwrap();
    let mut slow = TcpStream::connect(app.http_addr()).await.unwrap();
    slow.write_all(b"POST /webhooks/idenfy HTTP/1.1\r\nHost: verdict\r\nContent-Ty")
        .await
        .unwrap();

    // Another connection is served meanwhile.
    let scan_ref = payloads::scan_ref();
    app.post_ok("IDENTIFICATION_AUTO_FINISHED", &webhook(&scan_ref).build())
        .await;

    let answer = read_to_close(&mut slow).await;
    assert!(!answer.contains("200 OK"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_does_not_arrive_in_time_is_answered_408_and_nothing_is_stored() {
    let app = TestApp::spawn_with(options(|http| {
        http.http_body_timeout = Duration::from_millis(500);
    }))
    .await
    .unwrap();
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let head = format!(
        "POST /webhooks/idenfy HTTP/1.1\r\nHost: verdict\r\nContent-Type: application/json\r\n\
         Idenfy-Signature: {}\r\nContent-Length: {}\r\n\r\n",
        app.sign(&body),
        body.len()
    );
    let mut slow = TcpStream::connect(app.http_addr()).await.unwrap();
    slow.write_all(head.as_bytes()).await.unwrap();
    slow.write_all(&body[..body.len() / 2]).await.unwrap();

    let mut answer = vec![0; 1024];
    let n = within("the 408", slow.read(&mut answer)).await.unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");

    let mut client = app.grpc().await;
    let stored = get_case(&mut client, &scan_ref, CaseView::Basic, None).await;
    assert_eq!(stored.map_err(|s| s.code()), Err(Code::NotFound));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_wait_until_one_closes() {
    let app = TestApp::spawn_with(options(|http| {
        http.http_max_connections = 2;
    }))
    .await
    .unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: verdict\r\n\r\n";
    // Two keep-alive connections, each answered once and then held open.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(app.http_addr()).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = vec![0; 512];
        let n = within("a probe answer", stream.read(&mut answer))
            .await
            .unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = TcpStream::connect(app.http_addr()).await.unwrap();
    third.write_all(request).await.unwrap();
    let mut answer = vec![0; 512];
    // Not served while both slots are taken (a missed refusal can only pass here, never fail).
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut answer))
            .await
            .is_err(),
        "a third connection was served past the cap of two"
    );
    drop(held.pop());
    let n = within("the third answer", third.read(&mut answer))
        .await
        .unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
}

/// Posts a signed webhook for a new case with `X-Forwarded-For` values; the status and whether
/// the case was stored.
async fn post_from(app: &TestApp, forwarded_for: &[&str]) -> (u16, bool) {
    let scan_ref = payloads::scan_ref();
    let body = webhook(&scan_ref).build();
    let mut request = app
        .http()
        .post(app.url("/webhooks/idenfy"))
        .header("content-type", "application/json")
        .header("idenfy-signature", app.sign(&body))
        .header("idenfy-event-type", "IDENTIFICATION_AUTO_FINISHED")
        .body(body);
    for value in forwarded_for {
        request = request.header("x-forwarded-for", *value);
    }
    let status = within("the webhook answer", request.send())
        .await
        .unwrap()
        .status()
        .as_u16();
    let mut client = app.grpc().await;
    let stored = get_case(&mut client, &scan_ref, CaseView::Basic, None)
        .await
        .is_ok();
    (status, stored)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_from_outside_the_allowlist_are_403_and_not_stored() {
    let app = TestApp::spawn_with(options(|http| {
        http.webhook_allow_cidrs = vec!["10.0.0.0/8".parse().unwrap()];
    }))
    .await
    .unwrap();
    assert_eq!(post_from(&app, &[]).await, (403, false));
    // Without a trusted proxy the header is not believed.
    assert_eq!(post_from(&app, &["10.1.2.3"]).await, (403, false));

    let app = TestApp::spawn_with(options(|http| {
        http.webhook_allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    }))
    .await
    .unwrap();
    assert_eq!(post_from(&app, &[]).await, (200, true));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_the_forwarded_client_is_checked() {
    let app = TestApp::spawn_with(options(|http| {
        http.webhook_allow_cidrs = vec!["203.0.113.0/24".parse().unwrap()];
        http.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }))
    .await
    .unwrap();
    assert_eq!(post_from(&app, &["203.0.113.9"]).await, (200, true));
    assert_eq!(post_from(&app, &["198.51.100.7"]).await, (403, false));
    // A client prepending an allowed address does not get in: the proxy saw 198.51.100.7.
    assert_eq!(
        post_from(&app, &["203.0.113.9, 198.51.100.7"]).await,
        (403, false)
    );
    // The proxy itself, without a header, is not an allowed source.
    assert_eq!(post_from(&app, &[]).await, (403, false));
}
