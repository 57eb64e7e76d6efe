//! The one subscription of this process: connects, subscribes, feeds every message into the hub,
//! and reconnects by itself with backoff. Each (re)subscription wakes every watcher, because
//! pub/sub drops whatever was published while we were away.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, PushInfo, PushKind, Value};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::message::Message;
use crate::{Error, Hub, trace};

/// Bound on connecting and on each command, so a dead Redis is noticed rather than waited on.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);
/// A silent connection is pinged this often: a half-open TCP connection (peer gone without a
/// FIN) sends no disconnect, and only a failed ping reveals it.
const PING_INTERVAL: Duration = Duration::from_secs(5);
/// Reconnect backoff: doubles from MIN to MAX, with up to 50 % jitter so replicas do not
/// reconnect in lockstep after a Redis restart.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// While Redis stays down, one failure in this many is logged at warn level.
const LOG_EVERY_FAILURES: u64 = 12;

/// How a session ended.
enum Ended {
    Shutdown,
    /// The subscription was up and then lost.
    Lost,
}

/// The subscriber task's state.
pub(super) struct Subscriber {
    /// Configured for RESP3, so one multiplexed connection both receives pushes and runs
    /// `CLIENT SETNAME` and `PING`.
    pub(super) client: Client,
    pub(super) channel: String,
    pub(super) client_name: String,
    pub(super) origin: String,
    pub(super) hub: Arc<Hub>,
    pub(super) link: watch::Sender<bool>,
    pub(super) shutdown: CancellationToken,
}

impl Subscriber {
    /// Holds the subscription until `shutdown` is cancelled.
    pub(super) async fn run(self) {
        let mut backoff = MIN_BACKOFF;
        let mut failures: u64 = 0;
        loop {
            match self.session().await {
                Ok(Ended::Shutdown) => break,
                Ok(Ended::Lost) => {
                    warn!(channel = %self.channel, "redis subscription lost");
                    backoff = MIN_BACKOFF;
                    failures = 0;
                }
                Err(error) => {
                    failures += 1;
                    // The first failure, then about once a minute at the longest backoff: a
                    // Redis that stays down must not flood the logs.
                    if failures % LOG_EVERY_FAILURES == 1 {
                        warn!(
                            channel = %self.channel,
                            failures,
                            error = %error,
                            cause = %source_of(&error),
                            "redis subscription failed"
                        );
                    } else {
                        debug!(channel = %self.channel, failures, error = %error, "redis subscription failed");
                    }
                }
            }
            self.set_link(false);
            tokio::select! {
                () = self.shutdown.cancelled() => break,
                () = tokio::time::sleep(jittered(backoff)) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        self.link.send_replace(false);
        debug!(channel = %self.channel, "redis subscriber stopped");
    }

    /// Tells the resync (which re-reads more often while the link is down) and the
    /// `verdict.redis.subscription.up` gauge (which alerts watch).
    fn set_link(&self, up: bool) {
        self.link.send_replace(up);
        verdict_telemetry::metrics::metrics().redis_subscription(up);
    }

    /// One connection: subscribe, wake everyone, then watch the link until it breaks.
    async fn session(&self) -> Result<Ended, Error> {
        let lost = Arc::new(Notify::new());
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_push_sender(self.push_handler(Arc::clone(&lost)));
        let mut connection = tokio::select! {
            () = self.shutdown.cancelled() => return Ok(Ended::Shutdown),
            connection = self.client.get_multiplexed_async_connection_with_config(&config) => connection?,
        };
        // Best effort: the name only helps operators find this connection in CLIENT LIST, and
        // a restricted ACL may forbid it.
        if let Err(error) = redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(&self.client_name)
            .query_async::<()>(&mut connection)
            .await
        {
            debug!(channel = %self.channel, error = %error, "redis client setname refused");
        }
        connection.subscribe(&self.channel).await?;

        // Only now, with the subscription confirmed, is every later publish guaranteed to reach
        // us; whatever came before is recovered by the re-read this wake triggers.
        self.hub.wake_all();
        self.set_link(true);
        info!(channel = %self.channel, "redis subscription up");

        loop {
            tokio::select! {
                () = self.shutdown.cancelled() => return Ok(Ended::Shutdown),
                () = lost.notified() => return Ok(Ended::Lost),
                () = tokio::time::sleep(PING_INTERVAL) => {
                    if let Err(error) = ping(&mut connection).await {
                        debug!(channel = %self.channel, error = %error, "redis ping failed");
                        return Ok(Ended::Lost);
                    }
                }
            }
        }
    }

    /// Called by the connection's driver for every push: must not block, and does not (the hub
    /// only takes a short lock). Messages go straight to the hub, so nothing queues here.
    fn push_handler(
        &self,
        lost: Arc<Notify>,
    ) -> impl Fn(PushInfo) -> Result<(), Infallible> + Send + Sync + 'static {
        let hub = Arc::clone(&self.hub);
        let origin = self.origin.clone();
        let channel = self.channel.clone();
        move |push: PushInfo| {
            match push.kind {
                PushKind::Message => deliver(&hub, &origin, &channel, &push.data),
                // `notify_one` keeps a permit if the session is not waiting yet.
                PushKind::Disconnection => lost.notify_one(),
                _ => {}
            }
            Ok(())
        }
    }
}

/// Hands a message from the channel to the hub, skipping this replica's own echoes.
fn deliver(hub: &Hub, origin: &str, channel: &str, data: &[Value]) {
    // A message push is [channel, payload].
    let Some(Value::BulkString(payload)) = data.get(1) else {
        warn!(channel, "ignoring a bus message without a payload");
        return;
    };
    match Message::decode(payload) {
        Ok(message) if message.is_from(origin) => {}
        Ok(message) => {
            let notification = message.into_notification();
            let span = trace::consumer(channel, &notification);
            hub.notify(&trace::carried_by(&span, &notification));
        }
        // Only the error's category and place: the payload is not ours to log.
        Err(error) => warn!(
            channel,
            category = ?error.classify(),
            line = error.line(),
            column = error.column(),
            bytes = payload.len(),
            "ignoring a malformed bus message"
        ),
    }
}

async fn ping(connection: &mut MultiplexedConnection) -> Result<(), Error> {
    // Bounded by RESPONSE_TIMEOUT via the connection config.
    redis::cmd("PING").query_async::<()>(connection).await?;
    Ok(())
}

fn jittered(backoff: Duration) -> Duration {
    backoff.mul_f64(1.0 + rand::random::<f64>() * 0.5)
}

/// The underlying cause, for the log line (our `Error` displays only its own layer).
fn source_of(error: &Error) -> String {
    std::error::Error::source(error)
        .map(ToString::to_string)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use verdict_domain::{Cursor, Notification};

    use super::*;

    fn push(payload: &str) -> Vec<Value> {
        vec![
            Value::BulkString(b"chan".to_vec()),
            Value::BulkString(payload.as_bytes().to_vec()),
        ]
    }

    fn notification() -> Notification {
        Notification {
            scan_ref: "scan-1".to_owned(),
            revision: 2,
            position: Cursor(9),
            traceparent: None,
            committed: None,
        }
    }

    #[tokio::test]
    async fn messages_of_other_replicas_reach_the_hub() {
        let hub = Hub::new();
        let mut watch = hub.watch_case("scan-1");
        let wire = Message::encode(&notification(), "replica-a").unwrap();
        deliver(&hub, "replica-b", "chan", &push(&wire));
        let signal = tokio::time::timeout(Duration::from_secs(5), watch.changed())
            .await
            .expect("woken");
        assert_eq!(signal.revision, 2);
        assert_eq!(hub.feed_position(), 9);
    }

    #[test]
    fn own_echoes_and_malformed_messages_are_skipped() {
        let hub = Hub::new();
        let wire = Message::encode(&notification(), "replica-a").unwrap();
        deliver(&hub, "replica-a", "chan", &push(&wire));
        deliver(&hub, "replica-a", "chan", &push("{not json"));
        deliver(&hub, "replica-a", "chan", &[Value::Nil]);
        assert_eq!(hub.feed_position(), 0, "nothing reached the hub");
    }
}
