//! The change bus across replicas: every replica publishes to, and holds ONE subscription on,
//! a fixed Redis channel, and fans out in-process through its [`Hub`]. Redis load therefore does
//! not grow with the number of watchers.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{
    AsyncCommands, Client, ConnectionInfo, IntoConnectionInfo, ProtocolVersion, TlsCertificates,
};
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};
use tracing::Instrument;
use verdict_domain::{ChangeBus, Notification};

use crate::{Error, Hub, trace};

mod message;
mod subscriber;

use message::Message;
use subscriber::Subscriber;

/// Bound on one publish, connection included: a webhook never waits longer than this on Redis.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);

/// [`ChangeBus`] across replicas over Redis pub/sub.
///
/// Publishing notifies this replica's hub directly (so local watchers never depend on Redis),
/// then publishes a small JSON hint. The subscriber task feeds other replicas' hints into the
/// hub. Pub/sub is at-most-once: [`crate::Resync`] and the wake-up on every (re)subscription
/// cover what it drops.
pub struct RedisBus {
    hub: Arc<Hub>,
    channel: String,
    /// Identifies this replica's messages, so it skips its own echoes.
    origin: String,
    client_name: String,
    publisher: ConnectionManager,
    link: watch::Receiver<bool>,
    /// Stops the subscriber when the bus is dropped, even if `shutdown` never fires.
    _stop: DropGuard,
}

impl RedisBus {
    /// Prepares the publisher (a [`ConnectionManager`] that connects lazily and reconnects by
    /// itself) and spawns the subscriber task, which holds one subscription on `channel` for the
    /// whole process, reconnects with backoff, calls [`Hub::wake_all`] on every (re)subscription
    /// and feeds every message into [`Hub::notify`]. It stops when `shutdown` is cancelled or
    /// the bus is dropped.
    ///
    /// Redis being unreachable is not an error here: the service must start and answer webhooks
    /// without it, so only a malformed URL fails. Watch [`RedisBus::link`] for the state. Needs
    /// Redis 6 or later (the subscriber speaks RESP3).
    ///
    /// `redis://:password@host` authenticates; `rediss://` speaks TLS, verified against the
    /// system's roots.
    pub async fn connect(
        url: &str,
        channel: &str,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> Result<RedisBus, Error> {
        Self::connect_with_root_ca(url, None, channel, hub, shutdown).await
    }

    /// [`RedisBus::connect`], verifying a `rediss://` server against `root_ca` (PEM) instead of
    /// the system's roots: for a Redis with a private CA.
    pub async fn connect_with_root_ca(
        url: &str,
        root_ca: Option<&[u8]>,
        channel: &str,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> Result<RedisBus, Error> {
        let info = url.into_connection_info().map_err(Error::InvalidUrl)?;
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(ProtocolVersion::RESP3);
        let subscriber_client =
            client(info.clone().set_redis_settings(resp3), root_ca).map_err(Error::InvalidUrl)?;
        let publisher_client = client(info, root_ca).map_err(Error::InvalidUrl)?;

        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(PUBLISH_TIMEOUT))
            .set_response_timeout(Some(PUBLISH_TIMEOUT))
            // Retrying inside one publish only eats the timeout; the next publish reconnects.
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let publisher = ConnectionManager::new_lazy_with_config(publisher_client, config)?;

        let origin = uuid::Uuid::new_v4().simple().to_string();
        let client_name = format!("verdict-bus-{origin}");
        let (link_tx, link) = watch::channel(false);
        let stop = shutdown.child_token();
        let subscriber = Subscriber {
            client: subscriber_client,
            channel: channel.to_owned(),
            client_name: client_name.clone(),
            origin: origin.clone(),
            hub: Arc::clone(&hub),
            link: link_tx,
            shutdown: stop.clone(),
        };
        tokio::spawn(subscriber.run());

        Ok(RedisBus {
            hub,
            channel: channel.to_owned(),
            origin,
            client_name,
            publisher,
            link,
            _stop: stop.drop_guard(),
        })
    }

    /// Connects to the Redis of `url` (with `root_ca` as [`RedisBus::connect_with_root_ca`]
    /// takes it) and runs `PING`, all within `timeout`: what `verdict check` asks before a
    /// rollout. Unlike [`RedisBus::connect`], an unreachable Redis is an error here.
    pub async fn ping(url: &str, root_ca: Option<&[u8]>, timeout: Duration) -> Result<(), Error> {
        let info = url.into_connection_info().map_err(Error::InvalidUrl)?;
        let client = client(info, root_ca).map_err(Error::InvalidUrl)?;
        let ping = async {
            let mut connection = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING")
                .query_async::<()>(&mut connection)
                .await?;
            Ok(())
        };
        tokio::time::timeout(timeout, ping)
            .await
            .map_err(|_| Error::Timeout(timeout))?
    }

    /// True while the subscription is up: the resync runs faster while it is false, and
    /// readiness can show it (Redis being down does not make the service unready).
    pub fn link(&self) -> watch::Receiver<bool> {
        self.link.clone()
    }

    /// The `CLIENT SETNAME` of the subscriber connection (`verdict-bus-<random>`), unique per
    /// bus, so operators can find it in `CLIENT LIST` (and tests can kill it).
    pub fn client_name(&self) -> &str {
        &self.client_name
    }

    async fn send(&self, payload: String) -> Result<(), Error> {
        let mut publisher = self.publisher.clone();
        let publish = publisher.publish::<_, _, i64>(&self.channel, payload);
        match tokio::time::timeout(PUBLISH_TIMEOUT, publish).await {
            Ok(Ok(_receivers)) => Ok(()),
            Ok(Err(error)) => Err(Error::Redis(error)),
            Err(_elapsed) => Err(Error::Timeout(PUBLISH_TIMEOUT)),
        }
    }
}

#[async_trait]
impl ChangeBus for RedisBus {
    /// In a PRODUCER span `send {channel}`, whose context both this replica's watchers and the
    /// message (for the other replicas' CONSUMER spans) carry.
    async fn publish(&self, notification: Notification) -> Result<(), verdict_domain::Error> {
        let span = trace::producer(trace::REDIS_SYSTEM, &self.channel, &notification);
        let notification = trace::carried_by(&span, &notification);
        // Local watchers first: they must not depend on Redis.
        self.hub.notify(&notification);
        let payload = match Message::encode(&notification, &self.origin) {
            Ok(payload) => payload,
            Err(error) => {
                trace::record_error(&span, "encode");
                return Err(Error::Encode(error).into());
            }
        };
        if let Err(error) = self.send(payload).instrument(span.clone()).await {
            let kind = match &error {
                Error::Timeout(_) => "timeout",
                Error::Redis(_) | Error::InvalidUrl(_) | Error::Encode(_) => "redis_error",
            };
            trace::record_error(&span, kind);
            return Err(error.into());
        }
        Ok(())
    }
}

/// A client of the Redis `info` names, verifying a `rediss://` server against `root_ca` (PEM)
/// when given, else against the system's roots.
fn client(info: ConnectionInfo, root_ca: Option<&[u8]>) -> Result<Client, redis::RedisError> {
    match root_ca {
        Some(pem) => Client::build_with_tls(
            info,
            TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.to_vec()),
            },
        ),
        None => Client::open(info),
    }
}

impl fmt::Debug for RedisBus {
    // No URL: it may carry a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBus")
            .field("channel", &self.channel)
            .field("client_name", &self.client_name)
            .field("link_up", &*self.link.borrow())
            .finish_non_exhaustive()
    }
}
