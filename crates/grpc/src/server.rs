//! The gRPC server runner: every service on one already-bound listener, with the shutdown order
//! operators rely on (health first, then streams, then drain).

use std::{sync::Arc, time::Duration};

use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::AbortOnDropHandle};
use tonic::transport::{Server, server::TcpIncoming};
use tracing::info;
use verdict_bus::Hub;
use verdict_domain::CaseStore;
use verdict_ingest::readiness::Readiness;
use verdict_proto::verdict::v1::admin_service_server::AdminServiceServer;
use verdict_proto::verdict::v1::case_service_server::CaseServiceServer;

use crate::{
    Credentials, Error, ServerTls,
    admin::{AdminApi, AdminUseCases},
    health::Health,
    service::CaseApi,
    stream::StreamLimits,
    telemetry::RpcTelemetryLayer,
};

/// Settings of the gRPC side; the defaults suit production, tests shorten them. Zero intervals
/// are raised to 1 ms.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// A stream that sent nothing for this long gets a `Heartbeat`, so proxies keep it open and
    /// clients can tell a quiet stream from a dead one.
    pub heartbeat_interval: Duration,
    /// The process's one `WatchCases` feed tail re-reads the feed at least this often (while any
    /// stream follows it), comparing the feed's head with its window: this is how it learns that
    /// the database was replaced by an older copy. Streams themselves never poll: a lost
    /// notification is caught by the bus's batched `Resync`.
    pub poll_interval: Duration,
    /// Who may call `CaseService`, with which scopes; empty means no authentication.
    pub credentials: Credentials,
    /// TLS (and mutual TLS) on the listener; `None` serves plaintext h2c.
    pub tls: Option<ServerTls>,
    /// Open `WatchCase` + `WatchCases` streams on this server; more are RESOURCE_EXHAUSTED.
    pub max_streams: usize,
    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS`: calls in flight on one connection.
    pub max_concurrent_streams: u32,
    /// HTTP/2 PING interval on idle connections, so dead peers (and the NAT entries and proxies
    /// in between) are noticed; a PING unanswered for `keepalive_timeout` closes the connection.
    pub keepalive_interval: Duration,
    /// See `keepalive_interval`.
    pub keepalive_timeout: Duration,
    /// A stream older than this (less up to a tenth, at random) ends UNAVAILABLE so its client
    /// resumes, perhaps on another replica: long-lived streams rebalance after a scale-out.
    pub stream_max_age: Duration,
    /// How many recent feed changes the process keeps for its `WatchCases` streams (at least
    /// 1). A stream further behind reads the database until it is back in this window.
    pub feed_window: usize,
}

impl GrpcOptions {
    /// Zero intervals would spin (or panic in `tokio::time::interval`): raise them to a floor.
    fn sanitized(self) -> Self {
        const FLOOR: Duration = Duration::from_millis(1);
        Self {
            heartbeat_interval: self.heartbeat_interval.max(FLOOR),
            poll_interval: self.poll_interval.max(FLOOR),
            feed_window: self.feed_window.max(1),
            keepalive_interval: self.keepalive_interval.max(FLOOR),
            keepalive_timeout: self.keepalive_timeout.max(FLOOR),
            stream_max_age: self.stream_max_age.max(FLOOR),
            ..self
        }
    }
}

/// A stream idle this long gets a heartbeat.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);

/// HTTP/2 PING interval on idle connections.
pub const DEFAULT_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(60);

/// A PING unanswered this long closes the connection.
pub const DEFAULT_KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Streams end UNAVAILABLE at about this age, so clients rebalance across replicas.
pub const DEFAULT_STREAM_MAX_AGE: Duration = Duration::from_secs(3600);

/// DESIGN §10: WatchCase + WatchCases streams per replica.
pub const DEFAULT_MAX_STREAMS: usize = 200_000;

/// DESIGN §10: calls in flight on one HTTP/2 connection (hyper's own default is 200, too few for
/// a client multiplexing its watchers on one connection).
pub const DEFAULT_MAX_CONCURRENT_STREAMS: u32 = 10_000;

/// Recent feed changes held for `WatchCases` streams: about 8 MB, 40 s of a 200 changes/s feed
/// for a client to reconnect into without a database read.
pub const DEFAULT_FEED_WINDOW: usize = 8192;

impl Default for GrpcOptions {
    fn default() -> Self {
        Self {
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            poll_interval: verdict_bus::DEFAULT_RESYNC_INTERVAL,
            credentials: Credentials::default(),
            tls: None,
            max_streams: DEFAULT_MAX_STREAMS,
            max_concurrent_streams: DEFAULT_MAX_CONCURRENT_STREAMS,
            keepalive_interval: DEFAULT_KEEPALIVE_INTERVAL,
            keepalive_timeout: DEFAULT_KEEPALIVE_TIMEOUT,
            stream_max_age: DEFAULT_STREAM_MAX_AGE,
            feed_window: DEFAULT_FEED_WINDOW,
        }
    }
}

/// Serves `verdict.v1.CaseService`, `verdict.v1.AdminService` (over `admin`'s use cases),
/// `grpc.health.v1` and server reflection (v1 and v1alpha, as older clients such as Python's
/// grpcio-reflection only speak v1alpha) on an already-bound listener until `shutdown` is
/// cancelled.
///
/// Over TLS when `options.tls` is set, with `CaseService` and `AdminService` calls
/// authenticated against `options.credentials` (health and reflection stay open).
///
/// On shutdown: health turns NOT_SERVING first, then every open stream ends with
/// `UNAVAILABLE "server shutting down"` (clients resume elsewhere), then the server drains
/// in-flight unary calls and returns. Put a timeout around it if the drain must be bounded.
/// Health is SERVING while `readiness` is (the database answered its last ping), NOT_SERVING
/// otherwise.
pub async fn serve(
    listener: TcpListener,
    store: Arc<dyn CaseStore>,
    hub: Arc<Hub>,
    admin: AdminUseCases,
    readiness: Readiness,
    options: GrpcOptions,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let options = options.sanitized();
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let (reporter, health_service) = tonic_health::server::health_reporter();

    // Streams watch their own token, cancelled only once health has flipped; the guard also ends
    // them if the server fails, so no producer outlives `serve`.
    let streams = CancellationToken::new();
    let _end_streams = streams.clone().drop_guard();

    let health = Health::new(reporter, readiness);
    let health = AbortOnDropHandle::new(tokio::spawn(health.run(shutdown.clone())));
    let signal = {
        let streams = streams.clone();
        async move {
            shutdown.cancelled().await;
            // The health task reports NOT_SERVING and returns when it sees the token.
            let _ = health.await;
            info!("grpc shutting down: ending open streams, draining");
            streams.cancel();
        }
    };

    let credentials = options.credentials.clone();
    let mut server = Server::builder()
        .max_concurrent_streams(options.max_concurrent_streams)
        .http2_keepalive_interval(Some(options.keepalive_interval))
        .http2_keepalive_timeout(Some(options.keepalive_timeout));
    if let Some(tls) = &options.tls {
        server = server.tls_config(tls.config())?;
    }
    let limits = StreamLimits::new(options.max_streams, options.stream_max_age, streams);
    verdict_telemetry::metrics::metrics().watch_streams_limit(options.max_streams);
    info!(
        addr = ?listener.local_addr().ok(),
        tls = options.tls.is_some(),
        mutual_tls = options.tls.as_ref().is_some_and(ServerTls::verifies_clients),
        authentication = credentials.is_required(),
        "grpc serving"
    );
    let admin = AdminApi::new(Arc::clone(&store), admin);
    let api = CaseApi::new(store, hub, options, limits);
    let admin_credentials = credentials.clone();
    server
        .layer(RpcTelemetryLayer)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(CaseServiceServer::with_interceptor(api, move |request| {
            credentials.authenticate(request)
        }))
        .add_service(AdminServiceServer::with_interceptor(
            admin,
            move |request| admin_credentials.authenticate(request),
        ))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), signal)
        .await?;
    info!("grpc drained");
    Ok(())
}

/// Reflection over our protos and the health protocol (the builder is consumed by each build).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(verdict_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

#[cfg(test)]
mod tests;
