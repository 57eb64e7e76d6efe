//! The Redis change bus between replicas: two `RedisBus`es, each with its own hub (two
//! "replicas"), on one random channel of the machine's Redis; a subscription killed under the
//! bus; a private redis-server that starts late and restarts; and a Redis that is down or never
//! answers (those two need no Redis and always run).

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use verdict_bus::{CaseWatch, Hub, RedisBus, Signal};
use verdict_domain::{ChangeBus, Cursor, ErrorKind, Notification};
use verdict_testkit::{TestRedis, within};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn notification(scan_ref: &str, revision: u64, position: u64) -> Notification {
    Notification {
        scan_ref: scan_ref.to_owned(),
        revision,
        position: Cursor(position),
        traceparent: Some(TRACEPARENT.to_owned()),
        committed: None,
    }
}

/// A replica's bus and hub, with the subscription up.
async fn replica(url: &str, channel: &str, shutdown: &CancellationToken) -> (Arc<Hub>, RedisBus) {
    let hub = Hub::new();
    let bus = RedisBus::connect(url, channel, Arc::clone(&hub), shutdown.clone())
        .await
        .expect("valid url");
    within("the subscription", bus.link().wait_for(|up| *up))
        .await
        .expect("link sender alive");
    (hub, bus)
}

/// Waits until the watch reports at least `revision`, skipping wake-ups without a newer one.
async fn revision_at_least(watch: &mut CaseWatch, revision: u64) -> Signal {
    within("the revision", async {
        loop {
            let signal = watch.changed().await;
            if signal.revision >= revision {
                return signal;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_on_one_replica_wakes_watchers_on_the_other_with_revision_and_trace() {
    let Some(redis) = TestRedis::connect().await else {
        return;
    };
    let shutdown = CancellationToken::new();
    let (hub_a, bus_a) = replica(redis.url(), redis.channel(), &shutdown).await;
    let (hub_b, _bus_b) = replica(redis.url(), redis.channel(), &shutdown).await;
    let mut local = hub_a.watch_case("scan-1");
    let mut remote = hub_b.watch_case("scan-1");
    let mut remote_feed = hub_b.watch_feed();

    within("publish", bus_a.publish(notification("scan-1", 3, 12)))
        .await
        .expect("publish");

    let signal = revision_at_least(&mut remote, 3).await;
    assert_eq!(signal.revision, 3);
    assert_eq!(signal.traceparent.as_deref(), Some(TRACEPARENT));
    assert_eq!(revision_at_least(&mut local, 3).await.revision, 3);
    let position = within("the remote feed", async {
        loop {
            let position = remote_feed.changed().await;
            if position >= 12 {
                return position;
            }
        }
    })
    .await;
    assert_eq!(position, 12);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_subscription_resubscribes_and_wakes_every_watcher() {
    let Some(redis) = TestRedis::connect().await else {
        return;
    };
    let shutdown = CancellationToken::new();
    let (hub, bus) = replica(redis.url(), redis.channel(), &shutdown).await;
    let mut watch = hub.watch_case("scan-1");
    let mut feed = hub.watch_feed();
    let before = subscriber_id(redis.url(), bus.client_name()).await;

    let killed = raw(redis.url(), &["CLIENT", "KILL", "ID", &before]).await;
    assert_eq!(killed, "1", "the subscriber connection was killed");

    // Nothing was published on this channel: only the resubscription's wake_all wakes them.
    assert_eq!(
        within("the case wake", watch.changed()).await,
        Signal::default()
    );
    within("the feed wake", feed.changed()).await;
    within("the link", bus.link().wait_for(|up| *up))
        .await
        .expect("link sender alive");
    let after = subscriber_id(redis.url(), bus.client_name()).await;
    assert_ne!(before, after, "a new connection holds the subscription");

    // And the new subscription delivers (a message from a foreign publisher, without origin).
    let message = r#"{"scan_ref":"scan-1","revision":5,"position":5}"#;
    raw(redis.url(), &["PUBLISH", redis.channel(), message]).await;
    let signal = revision_at_least(&mut watch, 5).await;
    assert_eq!(
        signal,
        Signal {
            revision: 5,
            traceparent: None,
            committed: None,
        }
    );
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_is_skipped_and_the_subscription_goes_on() {
    let Some(redis) = TestRedis::connect().await else {
        return;
    };
    let shutdown = CancellationToken::new();
    let (hub, _bus) = replica(redis.url(), redis.channel(), &shutdown).await;
    let mut watch = hub.watch_case("scan-1");

    raw(redis.url(), &["PUBLISH", redis.channel(), "{not json"]).await;
    let message = r#"{"scan_ref":"scan-1","revision":2,"position":2}"#;
    raw(redis.url(), &["PUBLISH", redis.channel(), message]).await;
    assert_eq!(revision_at_least(&mut watch, 2).await.revision, 2);
    shutdown.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_an_unreachable_redis_fails_fast_but_still_wakes_local_watchers() {
    // A port nobody listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    assert_publish_fails_within(&url, Duration::from_secs(3)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_to_a_redis_that_never_answers_times_out() {
    // Accepts connections and never says a word.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let held: Vec<TcpStream> = listener.incoming().map_while(Result::ok).collect();
        drop(held);
    });
    assert_publish_fails_within(&url, Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_starts_late_and_restarts_is_followed_by_publisher_and_subscriber() {
    // Its own redis-server on a free port: restarting the shared one would disturb other tests.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let shutdown = CancellationToken::new();
    let hub = Hub::new();
    let bus = RedisBus::connect(
        &url,
        "verdict-test-restart",
        Arc::clone(&hub),
        shutdown.clone(),
    )
    .await
    .expect("valid url");
    let mut link = bus.link();

    // Started after the bus: the subscriber finds it, and the publisher connects on first use.
    let Some(server) = RedisServer::start(port) else {
        return;
    };
    within("the subscription", link.wait_for(|up| *up))
        .await
        .unwrap();
    publish_soon(&bus, notification("scan-1", 1, 1)).await;

    let mut watch = hub.watch_case("scan-1");
    drop(server);
    within("the link to drop", link.wait_for(|up| !*up))
        .await
        .unwrap();
    let failed = within(
        "publish while down",
        bus.publish(notification("scan-1", 2, 2)),
    )
    .await;
    assert!(failed.is_err());
    assert_eq!(within("the local wake", watch.changed()).await.revision, 2);

    let Some(_server) = RedisServer::start(port) else {
        return;
    };
    // The resubscription wakes every watcher so it re-reads what was missed while down.
    assert_eq!(
        within("the wake after restart", watch.changed())
            .await
            .revision,
        2
    );
    within("the subscription again", link.wait_for(|up| *up))
        .await
        .unwrap();
    publish_soon(&bus, notification("scan-1", 3, 3)).await;
    shutdown.cancel();
}

/// Publishes, allowing the publisher's first attempts to fail while it replaces a connection
/// that broke (each attempt is bounded by the publish timeout; no sleeping).
async fn publish_soon(bus: &RedisBus, notification: Notification) {
    let mut last = None;
    for _ in 0..3 {
        match within("publish", bus.publish(notification.clone())).await {
            Ok(()) => return,
            Err(error) => last = Some(error),
        }
    }
    panic!("publish kept failing: {last:?}");
}

/// A throwaway `redis-server` (no persistence), killed on drop.
struct RedisServer(std::process::Child);

impl RedisServer {
    /// `None` (after a loud message) when `redis-server` cannot be run, except in CI.
    fn start(port: u16) -> Option<Self> {
        let spawned = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(child) => Some(Self(child)),
            Err(error) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("redis-server could not be started in CI: {error}")
            }
            Err(error) => {
                eprintln!("SKIPPED: redis-server could not be started ({error})");
                None
            }
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn assert_publish_fails_within(url: &str, bound: Duration) {
    let shutdown = CancellationToken::new();
    let hub = Hub::new();
    let bus = RedisBus::connect(
        url,
        "verdict-test-unreachable",
        Arc::clone(&hub),
        shutdown.clone(),
    )
    .await
    .expect("an unreachable redis is not an error at startup");
    let mut watch = hub.watch_case("scan-1");

    let started = Instant::now();
    let result = within("publish", bus.publish(notification("scan-1", 1, 1))).await;
    let error = result.expect_err("publish must fail");
    assert_eq!(error.kind(), ErrorKind::Unavailable);
    assert!(
        started.elapsed() < bound,
        "publish took {:?}",
        started.elapsed()
    );

    assert_eq!(within("the local wake", watch.changed()).await.revision, 1);
    assert!(!*bus.link().borrow(), "no subscription without redis");
    shutdown.cancel();
}

/// The `id=` of the client named `name` in `CLIENT LIST`.
async fn subscriber_id(url: &str, name: &str) -> String {
    let list = raw(url, &["CLIENT", "LIST", "TYPE", "pubsub"]).await;
    let needle = format!(" name={name} ");
    let line = list
        .lines()
        .find(|line| line.contains(&needle))
        .unwrap_or_else(|| panic!("no pubsub client named {name}"));
    line.split(' ')
        .find_map(|field| field.strip_prefix("id="))
        .expect("an id field")
        .to_owned()
}

/// One command on a fresh connection of its own (so it never shares the bus's connections),
/// answered as text: an integer reply as its number, a string reply as its content.
async fn raw(url: &str, args: &[&str]) -> String {
    let client = redis::Client::open(url).expect("a redis url");
    let mut conn = within(
        "a redis connection",
        client.get_multiplexed_async_connection(),
    )
    .await
    .expect("connect to redis");
    let (name, rest) = args.split_first().expect("a command");
    let mut command = redis::cmd(name);
    for arg in rest {
        command.arg(*arg);
    }
    let reply: redis::Value = within("a redis reply", command.query_async(&mut conn))
        .await
        .expect("the redis command succeeds");
    match reply {
        redis::Value::Int(n) => n.to_string(),
        redis::Value::BulkString(bytes) => String::from_utf8(bytes).expect("utf-8 reply"),
        redis::Value::SimpleString(text) | redis::Value::VerbatimString { text, .. } => text,
        redis::Value::Okay => "OK".to_owned(),
        other => panic!("unexpected redis reply {other:?}"),
    }
}
