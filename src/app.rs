//! Wiring: the only place that knows the concrete adapters.
//!
//! [`App::build`] connects the database and Redis and binds both listeners (port 0 allowed), so
//! callers — `verdict serve` and the tests alike — learn the real addresses before serving;
//! [`App::run`] serves until the shutdown token is cancelled.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use verdict_bus::{Hub, LocalBus, RedisBus, Resync};
use verdict_domain::{CaseStore, ChangeBus, SignatureVerifier};
use verdict_store::SeaStore;

use crate::Config;

/// Why the app could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("could not open the database")]
    Store(#[from] verdict_store::Error),
    #[error("could not connect to Redis")]
    Bus(#[from] verdict_bus::Error),
    #[error("could not bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error("gRPC server failed")]
    Grpc(#[from] verdict_grpc::Error),
    #[error("a server task panicked")]
    Join(#[from] tokio::task::JoinError),
}

/// A built, not yet serving, Verdict.
#[derive(Debug)]
pub struct App {
    config: Config,
    http: TcpListener,
    grpc: TcpListener,
    store: Arc<SeaStore>,
    hub: Arc<Hub>,
    bus: Arc<dyn ChangeBus>,
    redis_link: Option<tokio::sync::watch::Receiver<bool>>,
    verifier: SignatureVerifier,
    /// Cancelled when `run`'s token is: every component watches this one.
    shutdown: CancellationToken,
}

impl App {
    /// Connects, migrates when configured, and binds the listeners.
    pub async fn build(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let verifier = if config.webhook_keys().is_empty() {
            warn!(
                "webhook signatures are NOT checked (--allow-unsigned): never do this in production"
            );
            SignatureVerifier::allow_unsigned()
        } else {
            SignatureVerifier::new(config.webhook_keys())
        };

        let store = Arc::new(config.database.connect().await?);
        if config.migrate_on_start {
            store.migrate().await?;
        }

        let shutdown = CancellationToken::new();
        let hub = Hub::new();
        let (bus, redis_link): (Arc<dyn ChangeBus>, _) = match &config.redis_url {
            Some(url) => {
                let bus =
                    RedisBus::connect(url, &config.redis_channel, hub.clone(), shutdown.clone())
                        .await?;
                let link = bus.link();
                (Arc::new(bus), Some(link))
            }
            None => (Arc::new(LocalBus::new(hub.clone())), None),
        };

        let http = bind(config.http_addr).await?;
        let grpc = bind(config.grpc_addr).await?;
        Ok(Self {
            config,
            http,
            grpc,
            store,
            hub,
            bus,
            redis_link,
            verifier,
            shutdown,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        self.http
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The bound gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc
            .local_addr()
            .expect("a bound listener has an address")
    }

    /// The store, for tests and tools that inspect what was written.
    pub fn store(&self) -> Arc<SeaStore> {
        self.store.clone()
    }

    /// Serves until `token` is cancelled, then shuts down in order: readiness and gRPC health
    /// turn NOT_SERVING, open streams end UNAVAILABLE so clients resume elsewhere, and in-flight
    /// requests drain under the shutdown timeout.
    pub async fn run(self, token: CancellationToken) -> Result<(), Error> {
        let Self {
            config,
            http,
            grpc,
            store,
            hub,
            bus,
            redis_link,
            verifier,
            shutdown,
        } = self;
        let store_port: Arc<dyn CaseStore> = store;

        let ingress = verdict_ingress::router(verdict_ingress::IngressState {
            store: store_port.clone(),
            bus,
            verifier,
            write_timeout: config.write_timeout,
            max_body_bytes: config.max_body_bytes,
            shutdown: shutdown.clone(),
        })
        .route("/metrics", axum::routing::get(metrics));
        info!(http = %http.local_addr().map_err(Error::Http)?, grpc = %grpc.local_addr().map_err(Error::Http)?, "verdict serving");

        let http_task = tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                // Connect info gives the request spans their `client.address`.
                let service = ingress.into_make_service_with_connect_info::<SocketAddr>();
                axum::serve(http, service)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await
                    .map_err(Error::Http)
            }
        });
        let grpc_task = tokio::spawn(verdict_grpc::serve(
            grpc,
            store_port.clone(),
            hub.clone(),
            verdict_grpc::GrpcOptions {
                heartbeat_interval: config.heartbeat_interval,
                poll_interval: config.resync_interval,
                credentials: verdict_grpc::Credentials::load(&config.grpc_tokens(), None, false)?,
                ..verdict_grpc::GrpcOptions::default()
            },
            shutdown.clone(),
        ));
        let resync = Resync::new(
            store_port,
            hub,
            config.resync_interval,
            config.resync_degraded_interval,
            redis_link,
        );
        let resync_task = tokio::spawn(resync.run(shutdown.clone()));

        token.cancelled().await;
        info!("shutting down");
        shutdown.cancel();
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            let (http, grpc, resync) = tokio::join!(http_task, grpc_task, resync_task);
            http??;
            grpc??;
            resync?;
            Ok::<_, Error>(())
        })
        .await;
        match drained {
            Ok(result) => result,
            Err(_) => {
                warn!(timeout = ?config.shutdown_timeout, "shutdown timed out; dropping in-flight work");
                Ok(())
            }
        }
    }
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// `GET /metrics`: Prometheus text.
async fn metrics() -> impl axum::response::IntoResponse {
    use verdict_telemetry::metrics::{PROMETHEUS_CONTENT_TYPE, render_prometheus};
    (
        [(axum::http::header::CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE)],
        render_prometheus(),
    )
}
