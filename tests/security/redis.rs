//! Redis with a password, and over TLS (`rediss://`), each on a private `redis-server` this test
//! starts: the app's subscriber authenticates and its publisher reaches other subscribers.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use redis::{Client, TlsCertificates};
use verdict_testkit::payloads::{self, webhook};
use verdict_testkit::{Backend, TestApp, TestAppOptions, TestPki, TestRedis, within};

const PASSWORD: &str = "redis-test-passw0rd";

/// A `redis-server` of this test, stopped (by its pid) when dropped.
struct PrivateRedis {
    child: Child,
    port: u16,
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `redis-server` with `args`; `None` (after a loud message) when it is not installed
/// off CI.
fn start(args: &[String]) -> Option<PrivateRedis> {
    let port = free_port();
    let spawned = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match spawned {
        Ok(child) => Some(PrivateRedis { child, port }),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") => {
            panic!("redis-server cannot be started ({e}); CI=true, so this test fails")
        }
        Err(e) => {
            eprintln!("\n!!! SKIPPING: redis-server cannot be started ({e})\n");
            None
        }
    }
}

/// Waits until `client` answers PING (the server is starting).
async fn ready(client: &Client) -> redis::aio::MultiplexedConnection {
    within("the private redis-server to answer", async {
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return conn;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// The app's subscription is up on `channel` (it authenticated), and a webhook's notification
/// reaches a subscriber of ours (its publisher authenticated).
async fn app_talks_through(client: &Client, app: &TestApp, channel: &str) {
    let mut conn = ready(client).await;
    within("the app to subscribe", async {
        loop {
            let (_, subscribers): (String, u32) = redis::cmd("PUBSUB")
                .arg("NUMSUB")
                .arg(channel)
                .query_async::<(String, u32)>(&mut conn)
                .await
                .unwrap();
            if subscribers == 1 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    let mut ours = client.get_async_pubsub().await.unwrap();
    ours.subscribe(channel).await.unwrap();
    let scan_ref = payloads::scan_ref();
    app.post_ok("IDENTIFICATION_AUTO_FINISHED", &webhook(&scan_ref).build())
        .await;
    let message = within("the app's notification", async {
        use futures::StreamExt as _;
        ours.on_message().next().await
    })
    .await
    .expect("a message");
    let payload: String = message.get_payload().unwrap();
    assert!(payload.contains(&scan_ref), "{payload}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_password_in_the_url_is_used() {
    let Some(server) = start(&[
        "--port".into(),
        "{port}".into(),
        "--requirepass".into(),
        PASSWORD.into(),
    ]) else {
        return;
    };
    let url = format!("redis://:{PASSWORD}@127.0.0.1:{}", server.port);
    let redis = TestRedis::at(url.clone());
    let channel = redis.channel().to_owned();
    let app = TestApp::spawn_with_redis(redis, TestAppOptions::new(Backend::Sqlite)).await;
    app_talks_through(&Client::open(url).unwrap(), &app, &channel).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_private_ca_and_a_password_works() {
    let pki = TestPki::new("redis");
    let server_cert = pki.server();
    let Some(server) = start(&[
        "--port".into(),
        "0".into(),
        "--tls-port".into(),
        "{port}".into(),
        "--tls-cert-file".into(),
        server_cert.cert.display().to_string(),
        "--tls-key-file".into(),
        server_cert.key.display().to_string(),
        "--tls-ca-cert-file".into(),
        pki.ca_path().display().to_string(),
        "--tls-auth-clients".into(),
        "no".into(),
        "--requirepass".into(),
        PASSWORD.into(),
    ]) else {
        return;
    };
    let url = format!("rediss://:{PASSWORD}@127.0.0.1:{}", server.port);
    let redis = TestRedis::at(url.clone());
    let channel = redis.channel().to_owned();
    let mut options = TestAppOptions::new(Backend::Sqlite);
    options.redis_ca_cert = Some(pki.ca_path().to_owned());
    let app = TestApp::spawn_with_redis(redis, options).await;
    let client = Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls: None,
            root_cert: Some(std::fs::read(pki.ca_path()).unwrap()),
        },
    )
    .unwrap();
    app_talks_through(&client, &app, &channel).await;
}
