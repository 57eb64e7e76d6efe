//! Wiring: the only place that knows the concrete adapters.
//!
//! [`App::build`] validates the configuration, loads the TLS and credential files, connects the
//! database and Redis and binds the three listeners (port 0 allowed), so callers — `verdict
//! serve` and the tests alike — learn the real addresses before serving, and a bad setting stops
//! the start; [`App::run`] serves until the shutdown token is cancelled. `verdict check` runs
//! the same loading code (`grpc_security`, `reconciliation`) without serving.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use verdict_bus::{Hub, Resync};
use verdict_domain::{CaseStore, ChangeBus, SignatureVerifier};
use verdict_grpc::{AdminUseCases, Credentials, ServerTls};
use verdict_ingest::Ingest;
use verdict_ingest::readiness::Readiness;
use verdict_ingress::{ServeOptions, SourceFilter};
use verdict_lifecycle::Lifecycle;
use verdict_reconcile::{BacklogGauges, IdenfyClient, Reconciler, Schedule, Scheduler};
use verdict_store::SeaStore;

use crate::Config;
use crate::config::Bus;

/// Why the app could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The gRPC TLS or credential files are missing or invalid.
    #[error(transparent)]
    GrpcSetup(verdict_grpc::Error),
    #[error("could not open the database")]
    Store(#[from] verdict_store::Error),
    /// Reconciliation is on, but its API client cannot be built.
    #[error("reconciliation with iDenfy cannot start")]
    Reconcile(#[source] verdict_reconcile::SetupError),
    #[error(transparent)]
    Bus(#[from] crate::config::BusError),
    #[error("could not bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error("gRPC server failed")]
    Grpc(#[source] verdict_grpc::Error),
    #[error("a server task panicked")]
    Join(#[from] tokio::task::JoinError),
}

/// A built, not yet serving, Verdict.
#[derive(Debug)]
pub struct App {
    config: Config,
    http: TcpListener,
    grpc: TcpListener,
    admin: TcpListener,
    store: Arc<SeaStore>,
    hub: Arc<Hub>,
    bus: Arc<dyn ChangeBus>,
    redis_link: Option<tokio::sync::watch::Receiver<bool>>,
    verifier: SignatureVerifier,
    credentials: Credentials,
    tls: Option<ServerTls>,
    /// The status API client and schedule, when reconciliation is on.
    reconcile: Option<(IdenfyClient, Schedule)>,
    /// Cancelled when `run`'s token is: every component watches this one.
    shutdown: CancellationToken,
}

impl App {
    /// Validates, loads the gRPC TLS and credential files, connects, migrates when configured,
    /// and binds the listeners.
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
        let (tls, credentials) = grpc_security(&config)?;
        let reconcile = reconciliation(&config)?;

        let store = Arc::new(config.database.connect().await?);
        if config.migrate_on_start {
            store.migrate().await?;
        }

        let shutdown = CancellationToken::new();
        let hub = Hub::new();
        let Bus {
            publisher: bus,
            link: redis_link,
        } = config.bus.connect(hub.clone(), shutdown.clone()).await?;

        let http = bind(config.http_addr).await?;
        let grpc = bind(config.grpc_addr).await?;
        let admin = bind(config.admin_addr).await?;
        Ok(Self {
            config,
            http,
            grpc,
            admin,
            store,
            hub,
            bus,
            redis_link,
            verifier,
            credentials,
            tls,
            reconcile,
            shutdown,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> SocketAddr {
        local_addr(&self.http)
    }

    /// The bound gRPC address (useful with port 0).
    pub fn grpc_addr(&self) -> SocketAddr {
        local_addr(&self.grpc)
    }

    /// The bound admin address (`/metrics` and the probes; useful with port 0).
    pub fn admin_addr(&self) -> SocketAddr {
        local_addr(&self.admin)
    }

    /// The store, for tests and tools that inspect what was written.
    pub fn store(&self) -> Arc<SeaStore> {
        self.store.clone()
    }

    /// Serves until `token` is cancelled, then shuts down in order: readiness and gRPC health
    /// turn NOT_SERVING, open streams end UNAVAILABLE so clients resume elsewhere, and in-flight
    /// requests drain under the shutdown timeout. The admin listener keeps answering probes
    /// (`/readyz` 503) until the drain is over.
    pub async fn run(self, token: CancellationToken) -> Result<(), Error> {
        let Self {
            config,
            http,
            grpc,
            admin,
            store,
            hub,
            bus,
            redis_link,
            verifier,
            credentials,
            tls,
            reconcile,
            shutdown,
        } = self;
        let store_port: Arc<dyn CaseStore> = store.clone();
        // The use cases the entrances other than the webhook share: AdminService, the retention
        // job and the reconciler.
        let ingest =
            Ingest::new(store_port.clone(), bus.clone()).with_write_timeout(config.write_timeout);
        let lifecycle = Lifecycle::new(store.clone(), bus.clone());
        let admin_use_cases = AdminUseCases {
            lifecycle: lifecycle.clone(),
            ingest: ingest.clone(),
        };

        let source_filter = (!config.http.webhook_allow_cidrs.is_empty()).then(|| {
            SourceFilter::new(
                config.http.webhook_allow_cidrs.clone(),
                config.http.trusted_proxies.clone(),
            )
        });
        let reconcile_task = reconcile.map(|(client, schedule)| {
            let scheduler =
                Scheduler::new(store.clone(), Reconciler::new(client, ingest), schedule);
            tokio::spawn(scheduler.run(shutdown.clone()))
        });
        let backlog_task = tokio::spawn(
            BacklogGauges::new(store.clone(), config.backlog_interval).run(shutdown.clone()),
        );
        // One readiness signal: `/readyz` on both listeners and gRPC health report it. Serving
        // starts once the first ping has an answer (at most one interval), so the first probe
        // already tells the truth.
        let readiness = Readiness::spawn(
            store_port.clone(),
            config.readiness_interval,
            shutdown.clone(),
        );
        readiness.clone().changed().await;
        let ingress = verdict_ingress::router(verdict_ingress::IngressState {
            store: store_port.clone(),
            bus,
            verifier,
            write_timeout: config.write_timeout,
            max_body_bytes: config.max_body_bytes,
            body_timeout: config.http.http_body_timeout,
            max_inflight: config.http.max_inflight(config.database.db_max_connections),
            source_filter,
            readiness: readiness.clone(),
            shutdown: shutdown.clone(),
        });
        let admin_router = verdict_ingress::admin_router(readiness.clone(), shutdown.clone());
        let serve_options = ServeOptions {
            header_read_timeout: config.http.http_header_timeout,
            max_connections: config.http.http_max_connections,
        };
        info!(
            http = %local_addr(&http),
            grpc = %local_addr(&grpc),
            admin = %local_addr(&admin),
            "verdict serving"
        );

        let http_task = tokio::spawn({
            let (options, shutdown) = (serve_options.clone(), shutdown.clone());
            async move {
                verdict_ingress::serve(http, ingress, options, shutdown)
                    .await
                    .map_err(Error::Http)
            }
        });
        // Stopped only after the drain, so probes see `/readyz` 503 rather than a closed port.
        let admin_stop = CancellationToken::new();
        let admin_task = tokio::spawn({
            let stop = admin_stop.clone();
            async move {
                verdict_ingress::serve(admin, admin_router, serve_options, stop)
                    .await
                    .map_err(Error::Http)
            }
        });
        let grpc_task = tokio::spawn({
            let serve = verdict_grpc::serve(
                grpc,
                store_port.clone(),
                hub.clone(),
                admin_use_cases,
                readiness,
                verdict_grpc::GrpcOptions {
                    heartbeat_interval: config.heartbeat_interval,
                    poll_interval: config.resync_interval,
                    credentials,
                    tls,
                    max_streams: config.grpc.grpc_max_streams,
                    max_concurrent_streams: config.grpc.grpc_max_concurrent_streams,
                    keepalive_interval: config.grpc.grpc_keepalive_interval,
                    keepalive_timeout: config.grpc.grpc_keepalive_timeout,
                    stream_max_age: config.grpc.stream_max_age,
                    feed_window: config.grpc.feed_window,
                },
                shutdown.clone(),
            );
            async move { serve.await.map_err(Error::Grpc) }
        });
        let resync = Resync::new(
            store_port,
            hub,
            config.resync_interval,
            config.resync_degraded_interval,
            redis_link,
        );
        let resync_task = tokio::spawn(resync.run(shutdown.clone()));
        let retention_task = config.retention.retention.map(|retention| {
            let every = config.retention.purge_interval;
            tokio::spawn(lifecycle.run_retention(retention, every, shutdown.clone()))
        });

        token.cancelled().await;
        info!("shutting down");
        shutdown.cancel();
        let drained = tokio::time::timeout(config.shutdown_timeout, async {
            let retention = async {
                match retention_task {
                    Some(task) => task.await,
                    None => Ok(()),
                }
            };
            let (http, grpc, resync, backlog, retention) =
                tokio::join!(http_task, grpc_task, resync_task, backlog_task, retention);
            http??;
            grpc??;
            resync?;
            backlog?;
            retention?;
            if let Some(reconcile) = reconcile_task {
                reconcile.await?;
            }
            Ok::<_, Error>(())
        })
        .await;
        admin_stop.cancel();
        let result = match drained {
            Ok(result) => result,
            Err(_) => {
                warn!(timeout = ?config.shutdown_timeout, "shutdown timed out; dropping in-flight work");
                Ok(())
            }
        };
        // The admin listener has nothing long-running to drain; bound it all the same.
        if let Ok(admin) = tokio::time::timeout(config.shutdown_timeout, admin_task).await {
            admin??;
        }
        result
    }
}

/// The status API client and the schedule when reconciliation is on (`VERDICT_RECONCILE_AFTER`),
/// so a bad URL stops the start.
pub(crate) fn reconciliation(config: &Config) -> Result<Option<(IdenfyClient, Schedule)>, Error> {
    let Some(schedule) = config.reconcile.schedule() else {
        return Ok(None);
    };
    let client = config.reconcile.api.client().map_err(Error::Reconcile)?;
    if schedule.after < MIN_SENSIBLE_RECONCILE_AFTER {
        warn!(after = ?schedule.after, "VERDICT_RECONCILE_AFTER is short: iDenfy forbids regular polling of its status API and may restrict access");
    }
    Ok(Some((client, schedule)))
}

/// Below this, reconciliation starts to look like the polling iDenfy forbids.
const MIN_SENSIBLE_RECONCILE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// The gRPC listener's TLS and credentials, from files read now so a bad one stops the start.
pub(crate) fn grpc_security(config: &Config) -> Result<(Option<ServerTls>, Credentials), Error> {
    let grpc = &config.grpc;
    let tls = match grpc.tls_files() {
        Some((cert, key)) => Some(
            ServerTls::load(cert, key, grpc.grpc_client_ca.as_deref()).map_err(Error::GrpcSetup)?,
        ),
        None => None,
    };
    let credentials = Credentials::load(
        &grpc.tokens(),
        grpc.grpc_tokens_file.as_deref(),
        tls.as_ref().is_some_and(ServerTls::verifies_clients),
    )
    .map_err(Error::GrpcSetup)?;
    if grpc.grpc_insecure && tls.is_none() && !credentials.is_required() {
        warn!(addr = %config.grpc_addr, "gRPC serves personal data without TLS or authentication (--grpc-insecure)");
    }
    if grpc.sends_tokens_in_plaintext(config.grpc_addr) {
        warn!(addr = %config.grpc_addr, "gRPC bearer tokens travel in plaintext: set VERDICT_GRPC_TLS_CERT and VERDICT_GRPC_TLS_KEY unless the network encrypts");
    }
    if !config.http.trusted_proxies.is_empty() && config.http.webhook_allow_cidrs.is_empty() {
        warn!("VERDICT_TRUSTED_PROXIES has no effect without VERDICT_WEBHOOK_ALLOW_CIDRS");
    }
    Ok((tls, credentials))
}

fn local_addr(listener: &TcpListener) -> SocketAddr {
    listener
        .local_addr()
        .expect("a bound listener has an address")
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}
