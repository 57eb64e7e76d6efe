//! The real Verdict, started in-process on `127.0.0.1:0` exactly as `verdict serve` starts it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, ClientTlsConfig};
use verdict::config::{GrpcConfig, HttpConfig, RetentionConfig};
use verdict::{App, Config};
use verdict_proto::verdict::v1::case_service_client::CaseServiceClient;

use crate::{Backend, TestDatabase, TestRedis, within};

/// The secret test apps check signatures with.
pub const SECRET: &str = "test-webhook-secret";

/// How to start a test app.
#[derive(Debug, Clone)]
pub struct TestAppOptions {
    pub backend: Backend,
    /// Use Redis between replicas (the test is skipped when Redis is unreachable off CI).
    pub redis: bool,
    /// Heartbeat interval on idle streams (short, so tests can see one).
    pub heartbeat_interval: Duration,
    /// Safety-net re-read interval.
    pub resync_interval: Duration,
    /// Readiness pings: short, so a test sees an outage in `/readyz` and gRPC health quickly.
    pub readiness_interval: Duration,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Bearer token gRPC callers must present (none: no authentication).
    pub grpc_token: Option<String>,
    /// The rest of the gRPC security settings (TLS, tokens file, limits); `grpc_token` wins
    /// over `grpc.grpc_token`.
    pub grpc: GrpcConfig,
    /// HTTP timeouts, caps and the webhook allowlist.
    pub http: HttpConfig,
    /// PEM CA for a `rediss://` test Redis.
    pub redis_ca_cert: Option<std::path::PathBuf>,
    /// The retention job (off by default, as in production).
    pub retention: RetentionConfig,
    /// Reconciliation with iDenfy (off unless a test turns it on, e.g. against
    /// [`crate::FakeIdenfy`]).
    pub reconcile: verdict::config::ReconcileConfig,
}

impl TestAppOptions {
    /// Defaults for `backend`: no Redis, short heartbeats.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            redis: false,
            heartbeat_interval: Duration::from_millis(500),
            resync_interval: Duration::from_secs(30),
            readiness_interval: Duration::from_millis(200),
            max_body_bytes: 4 * 1024 * 1024,
            grpc_token: None,
            grpc: GrpcConfig::default(),
            http: HttpConfig::default(),
            redis_ca_cert: None,
            retention: RetentionConfig::default(),
            reconcile: verdict::config::ReconcileConfig::default(),
        }
    }

    /// Same, with Redis.
    pub fn with_redis(mut self) -> Self {
        self.redis = true;
        self
    }
}

/// A running Verdict with its own fresh database.
#[derive(Debug)]
pub struct TestApp {
    http_addr: SocketAddr,
    grpc_addr: SocketAddr,
    admin_addr: SocketAddr,
    db: Arc<TestDatabase>,
    redis: Option<TestRedis>,
    options: TestAppOptions,
    token: CancellationToken,
    task: Option<JoinHandle<Result<(), verdict::app::Error>>>,
    http: reqwest::Client,
}

impl TestApp {
    /// Starts an app on `backend`; `None` when the backend is unreachable off CI.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(TestAppOptions::new(backend)).await
    }

    /// Starts an app with `options`; `None` when a service it needs is unreachable off CI.
    pub async fn spawn_with(options: TestAppOptions) -> Option<Self> {
        let db = Arc::new(TestDatabase::new(options.backend).await?);
        let redis = match options.redis {
            true => Some(TestRedis::connect().await?),
            false => None,
        };
        Some(Self::start(db, redis, options).await)
    }

    /// Starts an app on SQLite with the Redis `redis` (a private server with a password or
    /// TLS, say), however it answers.
    pub async fn spawn_with_redis(redis: TestRedis, options: TestAppOptions) -> Self {
        let db = Arc::new(TestDatabase::sqlite());
        Self::start(db, Some(redis), options).await
    }

    /// A second replica sharing this app's database and Redis channel.
    pub async fn replica(&self) -> Self {
        self.replica_with(self.options.clone()).await
    }

    /// A replica sharing this app's database and Redis channel, with other settings (its
    /// `backend` and `redis` are this app's).
    pub async fn replica_with(&self, options: TestAppOptions) -> Self {
        let options = TestAppOptions {
            backend: self.options.backend,
            redis: self.options.redis,
            ..options
        };
        Self::start(self.db.clone(), self.redis.clone(), options).await
    }

    async fn start(
        db: Arc<TestDatabase>,
        redis: Option<TestRedis>,
        options: TestAppOptions,
    ) -> Self {
        let config = config(&db, redis.as_ref(), &options);
        let app = within("the app to start", App::build(config))
            .await
            .expect("the app builds");
        let (http_addr, grpc_addr, admin_addr) =
            (app.http_addr(), app.grpc_addr(), app.admin_addr());
        let token = CancellationToken::new();
        let task = tokio::spawn(app.run(token.clone()));
        Self {
            http_addr,
            grpc_addr,
            admin_addr,
            db,
            redis,
            options,
            token,
            task: Some(task),
            http: reqwest::Client::new(),
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    /// `http://127.0.0.1:<admin port><path>`: `/metrics` and the probes.
    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin_addr)
    }

    /// The HTTP (webhook) listener's address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The gRPC listener's address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The test database.
    pub fn database(&self) -> &TestDatabase {
        &self.db
    }

    /// The Redis server and channel of this app, when it runs with Redis.
    pub fn redis(&self) -> Option<&TestRedis> {
        self.redis.as_ref()
    }

    /// A fresh gRPC client.
    pub async fn grpc(&self) -> CaseServiceClient<Channel> {
        let url = format!("http://{}", self.grpc_addr);
        within("a gRPC connection", CaseServiceClient::connect(url))
            .await
            .expect("connect to the gRPC listener")
    }

    /// A gRPC client over TLS (`https://127.0.0.1:<port>`), or why the connection failed. With
    /// TLS 1.3 a server refusing the client's certificate may only show on the first call.
    pub async fn grpc_tls(
        &self,
        tls: ClientTlsConfig,
    ) -> Result<CaseServiceClient<Channel>, tonic::transport::Error> {
        let channel = Channel::from_shared(format!("https://{}", self.grpc_addr))
            .expect("a valid URL")
            .tls_config(tls)?;
        within("a gRPC TLS connection", channel.connect())
            .await
            .map(CaseServiceClient::new)
    }

    /// The signature the app accepts for `body`.
    pub fn sign(&self, body: &[u8]) -> String {
        verdict_domain::sign(SECRET.as_bytes(), body)
    }

    /// Posts a correctly signed webhook.
    pub async fn post_webhook(&self, event_type: Option<&str>, body: &[u8]) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url("/webhooks/idenfy"))
            .header("content-type", "application/json")
            .header("idenfy-signature", self.sign(body))
            .body(body.to_vec());
        if let Some(event_type) = event_type {
            request = request.header("idenfy-event-type", event_type);
        }
        within("the webhook answer", request.send())
            .await
            .expect("the webhook request is sent")
    }

    /// Posts a correctly signed webhook and asserts it was answered 200.
    pub async fn post_ok(&self, event_type: &str, body: &[u8]) {
        let response = self.post_webhook(Some(event_type), body).await;
        assert_eq!(response.status().as_u16(), 200, "the webhook is accepted");
    }

    /// The shared HTTP client, for requests the helpers do not cover.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Begins shutdown without waiting for it.
    pub fn begin_shutdown(&self) {
        self.token.cancel();
    }

    /// Shuts down and waits for the app to stop, returning how `run` ended.
    pub async fn shutdown(mut self) -> Result<(), verdict::app::Error> {
        self.token.cancel();
        let task = self.task.take().expect("the app runs until shut down");
        within("the app to shut down", task)
            .await
            .expect("the app task does not panic")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.token.cancel();
    }
}

/// The bus settings of an app on `redis`, or in-process.
fn bus_config(redis: Option<&TestRedis>, options: &TestAppOptions) -> verdict::config::BusConfig {
    verdict::config::BusConfig {
        redis_url: redis.map(|r| r.url().into()),
        redis_ca_cert: options.redis_ca_cert.clone(),
        redis_channel: redis.map_or_else(|| "unused".to_owned(), |r| r.channel().to_owned()),
    }
}

fn config(db: &TestDatabase, redis: Option<&TestRedis>, options: &TestAppOptions) -> Config {
    let localhost = SocketAddr::from(([127, 0, 0, 1], 0));
    Config {
        http_addr: localhost,
        grpc_addr: localhost,
        admin_addr: localhost,
        database: verdict::config::DatabaseConfig {
            database_url: db.url().into(),
            db_max_connections: 8,
        },
        migrate_on_start: true,
        bus: bus_config(redis, options),
        webhook_secret: Some(SECRET.to_owned().into()),
        grpc: GrpcConfig {
            grpc_token: options
                .grpc_token
                .clone()
                .map(Into::into)
                .or_else(|| options.grpc.grpc_token.clone()),
            ..options.grpc.clone()
        },
        http: options.http.clone(),
        retention: options.retention.clone(),
        allow_unsigned: false,
        max_body_bytes: options.max_body_bytes,
        write_timeout: Duration::from_secs(5),
        heartbeat_interval: options.heartbeat_interval,
        resync_interval: options.resync_interval,
        resync_degraded_interval: Duration::from_millis(500),
        reconcile: options.reconcile.clone(),
        backlog_interval: Duration::from_secs(15),
        readiness_interval: options.readiness_interval,
        shutdown_timeout: Duration::from_secs(5),
        log_format: verdict_telemetry::LogFormat::Pretty,
    }
}
