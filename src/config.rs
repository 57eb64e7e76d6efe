//! Configuration: one typed value, parsed by clap from flags and `VERDICT_*` variables, so
//! `verdict serve --help` documents every variable. Values that may hold secrets (keys, tokens,
//! URLs with passwords) are hidden from `--help` and masked in `Debug`.

mod grpc;
mod http;
mod reconcile;
mod retention;
mod secret_url;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verdict_bus::{Hub, LocalBus, RedisBus};
use verdict_domain::ChangeBus;
use verdict_telemetry::LogFormat;

pub use self::grpc::GrpcConfig;
pub use self::http::{HttpConfig, INFLIGHT_PER_DB_CONNECTION};
pub use self::reconcile::{IdenfyApiConfig, ReconcileConfig};
pub use self::retention::{RetentionConfig, parse_positive_duration};
pub use self::secret_url::SecretUrl;

/// Where the database lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://file.db?mode=rwc` for one replica, `postgres://…` for many.
    #[arg(
        long,
        env = "VERDICT_DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://verdict.db?mode=rwc"
    )]
    pub database_url: SecretUrl,

    /// Most database connections the pool opens.
    #[arg(long, env = "VERDICT_DB_MAX_CONNECTIONS", default_value_t = verdict_store::DEFAULT_MAX_CONNECTIONS)]
    pub db_max_connections: u32,
}

impl DatabaseConfig {
    /// Opens the configured database with the configured pool size: one way for `serve`,
    /// `migrate` and `quarantine` alike.
    pub async fn connect(&self) -> Result<verdict_store::SeaStore, verdict_store::Error> {
        let options = verdict_store::StoreOptions {
            max_connections: self.db_max_connections,
            ..verdict_store::StoreOptions::default()
        };
        verdict_store::SeaStore::connect(self.database_url.expose(), options).await
    }
}

/// How replicas tell each other about changes.
#[derive(Debug, Clone, Args)]
pub struct BusConfig {
    /// Redis URL for change notifications between replicas (`redis://` or `rediss://` for
    /// TLS, a password as `redis://:password@host`); unset means an in-process hub.
    #[arg(long, env = "VERDICT_REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<SecretUrl>,

    /// PEM CA certificate to verify a `rediss://` server with, instead of the system's roots.
    #[arg(long, env = "VERDICT_REDIS_CA_CERT")]
    pub redis_ca_cert: Option<PathBuf>,

    /// Redis pub/sub channel shared by all replicas of one deployment.
    #[arg(
        long,
        env = "VERDICT_REDIS_CHANNEL",
        default_value = "verdict.case-changes"
    )]
    pub redis_channel: String,
}

/// A connected change bus, from [`BusConfig::connect`].
#[derive(Debug)]
pub struct Bus {
    /// Where changes are published: this process's hub, and Redis when configured.
    pub publisher: Arc<dyn ChangeBus>,
    /// Whether the Redis subscription is up (`None` without Redis), for the resync's pace.
    pub link: Option<watch::Receiver<bool>>,
}

/// Why the configured bus could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The CA certificate for `rediss://` could not be read.
    #[error("could not read VERDICT_REDIS_CA_CERT {path:?}")]
    RedisCa {
        /// The configured path.
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Redis refused or could not be reached.
    #[error("could not connect to Redis")]
    Connect(#[from] verdict_bus::Error),
}

impl BusConfig {
    /// The configured bus over `hub`: one way for `serve` and for `quarantine reprocess`, whose
    /// changes must reach the watchers of every replica too. With Redis, a subscriber task runs
    /// until `shutdown` is cancelled.
    pub async fn connect(
        &self,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> Result<Bus, BusError> {
        let Some(url) = &self.redis_url else {
            return Ok(Bus {
                publisher: Arc::new(LocalBus::new(hub)),
                link: None,
            });
        };
        let root_ca = self.root_ca()?;
        let bus = RedisBus::connect_with_root_ca(
            url.expose(),
            root_ca.as_deref(),
            &self.redis_channel,
            hub,
            shutdown,
        )
        .await?;
        let link = Some(bus.link());
        Ok(Bus {
            publisher: Arc::new(bus),
            link,
        })
    }

    /// Reaches the configured Redis and runs `PING` within `timeout` (`verdict check`);
    /// `Ok(false)` when no Redis is configured.
    pub async fn ping(&self, timeout: Duration) -> Result<bool, BusError> {
        let Some(url) = &self.redis_url else {
            return Ok(false);
        };
        let root_ca = self.root_ca()?;
        RedisBus::ping(url.expose(), root_ca.as_deref(), timeout).await?;
        Ok(true)
    }

    /// The CA certificate for `rediss://`, when one is configured.
    fn root_ca(&self) -> Result<Option<Vec<u8>>, BusError> {
        let Some(path) = &self.redis_ca_cert else {
            return Ok(None);
        };
        std::fs::read(path)
            .map(Some)
            .map_err(|source| BusError::RedisCa {
                path: path.clone(),
                source,
            })
    }
}

/// Everything `verdict serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the HTTP listener (webhooks, /healthz, /readyz); port 0 picks one.
    #[arg(long, env = "VERDICT_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Address of the gRPC listener (CaseService, health, reflection); port 0 picks one.
    #[arg(long, env = "VERDICT_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Address of the admin listener (/metrics, /healthz, /readyz): keep it off public networks;
    /// port 0 picks one.
    #[arg(long, env = "VERDICT_ADMIN_ADDR", default_value = "127.0.0.1:9090")]
    pub admin_addr: SocketAddr,

    #[command(flatten)]
    pub database: DatabaseConfig,

    /// Apply pending database migrations before serving.
    #[arg(long, env = "VERDICT_MIGRATE_ON_START", default_value_t = true, action = clap::ArgAction::Set)]
    pub migrate_on_start: bool,

    #[command(flatten)]
    pub bus: BusConfig,

    /// iDenfy webhook signing keys, comma-separated: several keys allow rotation.
    #[arg(long, env = "VERDICT_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_secret: Option<SecretString>,

    #[command(flatten)]
    pub grpc: GrpcConfig,

    #[command(flatten)]
    pub http: HttpConfig,

    #[command(flatten)]
    pub retention: RetentionConfig,

    /// Accept webhooks without checking signatures (development only).
    #[arg(long, env = "VERDICT_ALLOW_UNSIGNED")]
    pub allow_unsigned: bool,

    /// Largest accepted webhook body.
    #[arg(long, env = "VERDICT_MAX_BODY_BYTES", default_value_t = verdict_ingress::DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Deadline for storing a webhook; past it the answer is 503 and iDenfy retries.
    #[arg(long, env = "VERDICT_WRITE_TIMEOUT", default_value = duration_text(verdict_ingest::DEFAULT_WRITE_TIMEOUT),
        value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Heartbeat interval on idle watch streams.
    #[arg(long, env = "VERDICT_HEARTBEAT_INTERVAL", default_value = duration_text(verdict_grpc::DEFAULT_HEARTBEAT_INTERVAL),
        value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Interval of the safety-net re-read of watched cases.
    #[arg(long, env = "VERDICT_RESYNC_INTERVAL", default_value = duration_text(verdict_bus::DEFAULT_RESYNC_INTERVAL),
        value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Interval of the re-read while the Redis subscription is down.
    #[arg(long, env = "VERDICT_RESYNC_DEGRADED_INTERVAL",
        default_value = duration_text(verdict_bus::DEFAULT_RESYNC_DEGRADED_INTERVAL), value_parser = parse_duration)]
    pub resync_degraded_interval: Duration,

    #[command(flatten)]
    pub reconcile: ReconcileConfig,

    /// How often the database is pinged for `/readyz` and gRPC health (one signal for both), and
    /// how long a ping may take.
    #[arg(long, env = "VERDICT_READINESS_INTERVAL",
        default_value = duration_text(verdict_ingest::readiness::DEFAULT_READINESS_INTERVAL), value_parser = parse_duration)]
    pub readiness_interval: Duration,

    /// How often the backlog gauges (oldest open case, quarantine depth) are read from the
    /// database: one indexed query each.
    #[arg(long, env = "VERDICT_BACKLOG_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub backlog_interval: Duration,

    /// How long shutdown waits for in-flight requests before giving up.
    #[arg(long, env = "VERDICT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format: `pretty` for people, `json` for machines.
    #[arg(long, env = "VERDICT_LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
}

/// Configuration errors found after parsing; each message says what to do.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "no webhook secret: set VERDICT_WEBHOOK_SECRET (or --webhook-secret), or pass --allow-unsigned for development"
    )]
    MissingSecret,
    #[error(
        "VERDICT_WEBHOOK_SECRET is set but holds no key (only commas or blanks): set the signing keys, comma-separated"
    )]
    EmptySecret,
    #[error(
        "VERDICT_GRPC_TOKEN is set but holds no token (only commas or blanks): set the tokens, comma-separated, or unset it"
    )]
    EmptyGrpcToken,
    #[error("VERDICT_GRPC_TLS_CERT and VERDICT_GRPC_TLS_KEY go together: set both, or neither")]
    HalfTls,
    #[error(
        "VERDICT_GRPC_CLIENT_CA (mutual TLS) needs VERDICT_GRPC_TLS_CERT and VERDICT_GRPC_TLS_KEY"
    )]
    ClientCaWithoutTls,
    #[error(
        "refusing to serve gRPC on {0} insecure: a non-loopback address with neither TLS nor tokens lets anyone who reaches it read personal data. Set VERDICT_GRPC_TLS_CERT and VERDICT_GRPC_TLS_KEY, or VERDICT_GRPC_TOKEN / VERDICT_GRPC_TOKENS_FILE, or pass --grpc-insecure (VERDICT_GRPC_INSECURE=true) if the network itself is protected"
    )]
    InsecureGrpc(SocketAddr),
    #[error(
        "VERDICT_RECONCILE_AFTER is set but VERDICT_IDENFY_API_KEY or VERDICT_IDENFY_API_SECRET is not: set both, or unset VERDICT_RECONCILE_AFTER to turn reconciliation off"
    )]
    ReconcileWithoutCredentials,
    #[error(
        "VERDICT_RECONCILE_AFTER must be longer than zero (unset it to turn reconciliation off)"
    )]
    ZeroReconcileAfter,
}

impl Config {
    /// The webhook signing keys, split at commas, blanks dropped.
    pub fn webhook_keys(&self) -> Vec<Vec<u8>> {
        self.webhook_secret
            .as_ref()
            .map(|s| split_keys(s.expose_secret()))
            .unwrap_or_default()
    }

    /// Checks what clap cannot: a server without keys only runs when explicitly unsigned, a
    /// secret or token setting that yields nothing is refused (never read as "none"), and gRPC
    /// is not left open on the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.webhook_secret.is_some() && self.webhook_keys().is_empty() {
            return Err(ConfigError::EmptySecret);
        }
        if self.webhook_keys().is_empty() && !self.allow_unsigned {
            return Err(ConfigError::MissingSecret);
        }
        self.grpc.validate(self.grpc_addr)?;
        self.reconcile.validate()
    }
}

/// Splits a comma-separated key list.
pub(crate) fn split_keys(raw: &str) -> Vec<Vec<u8>> {
    raw.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| k.as_bytes().to_vec())
        .collect()
}

pub(crate) fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}

/// A library's default duration as `--help` shows it and [`parse_duration`] reads it back, so
/// the command line's defaults are the libraries' constants, never a second copy of them.
pub(crate) fn duration_text(duration: Duration) -> String {
    let ms = duration.as_millis();
    [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ]
    .into_iter()
    .find(|(_, per)| ms >= *per && ms.is_multiple_of(*per))
    .map_or_else(
        || format!("{ms}ms"),
        |(unit, per)| format!("{}{unit}", ms / per),
    )
}

/// Parses `250ms`, `5s`, `2m`, `1h`, `90d` (a bare number means seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 250ms, 5s, 2m, 1h or 90d"))?;
    let seconds = |per: u64| {
        n.checked_mul(per)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{raw:?} is too long"))
    };
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => seconds(1),
        "m" => seconds(60),
        "h" => seconds(3600),
        "d" => seconds(86_400),
        other => Err(format!(
            "unknown duration unit {other:?} (use ms, s, m, h or d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        config: Config,
    }

    fn parse(args: &[&str]) -> Config {
        Wrapper::try_parse_from(std::iter::once("verdict").chain(args.iter().copied()))
            .expect("valid arguments")
            .config
    }

    #[test]
    fn defaults_match_the_documented_ones() {
        let c = parse(&[]);
        assert_eq!(c.http_addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.grpc_addr, "127.0.0.1:50051".parse().unwrap());
        assert_eq!(c.admin_addr, "127.0.0.1:9090".parse().unwrap());
        assert_eq!(
            c.database.database_url.expose(),
            "sqlite://verdict.db?mode=rwc"
        );
        assert_eq!(c.write_timeout, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
        assert!(c.bus.redis_url.is_none());
        assert_eq!(c.bus.redis_channel, "verdict.case-changes");
        assert!(c.migrate_on_start);
        assert_eq!(c.http.max_inflight(c.database.db_max_connections), 256);
        assert_eq!(
            c.http.max_inflight(c.database.db_max_connections),
            verdict_ingress::DEFAULT_MAX_INFLIGHT
        );
    }

    #[test]
    fn default_impls_match_what_clap_parses() {
        // The testkit builds configs from these impls; they must not drift from `--help`.
        let c = parse(&[]);
        assert_eq!(
            format!("{:?}", c.grpc),
            format!("{:?}", GrpcConfig::default())
        );
        assert_eq!(
            format!("{:?}", c.http),
            format!("{:?}", HttpConfig::default())
        );
        assert_eq!(
            format!("{:?}", c.retention),
            format!("{:?}", RetentionConfig::default())
        );
        assert_eq!(
            format!("{:?}", c.reconcile),
            format!("{:?}", ReconcileConfig::default())
        );
        assert_eq!(
            c.backlog_interval,
            verdict_reconcile::DEFAULT_BACKLOG_INTERVAL
        );
        assert_eq!(
            c.readiness_interval,
            verdict_ingest::readiness::DEFAULT_READINESS_INTERVAL
        );
        assert_eq!(c.grpc.grpc_max_streams, verdict_grpc::DEFAULT_MAX_STREAMS);
        assert_eq!(
            c.grpc.grpc_max_concurrent_streams,
            verdict_grpc::DEFAULT_MAX_CONCURRENT_STREAMS
        );
        assert_eq!(
            c.http.http_body_timeout,
            verdict_ingress::DEFAULT_BODY_TIMEOUT
        );
        assert_eq!(
            c.http.http_header_timeout,
            verdict_ingress::DEFAULT_HEADER_READ_TIMEOUT
        );
        // What the server and its libraries run with when nothing is configured.
        let grpc = verdict_grpc::GrpcOptions::default();
        assert_eq!(c.heartbeat_interval, grpc.heartbeat_interval);
        assert_eq!(c.resync_interval, grpc.poll_interval);
        assert_eq!(c.grpc.grpc_keepalive_interval, grpc.keepalive_interval);
        assert_eq!(c.grpc.grpc_keepalive_timeout, grpc.keepalive_timeout);
        assert_eq!(c.grpc.stream_max_age, grpc.stream_max_age);
        assert_eq!(c.grpc.grpc_max_streams, grpc.max_streams);
        assert_eq!(
            c.resync_degraded_interval,
            verdict_bus::DEFAULT_RESYNC_DEGRADED_INTERVAL
        );
        assert_eq!(
            c.database.db_max_connections,
            verdict_store::StoreOptions::default().max_connections
        );
        assert_eq!(c.write_timeout, verdict_ingest::DEFAULT_WRITE_TIMEOUT);
        assert_eq!(c.max_body_bytes, verdict_ingress::DEFAULT_MAX_BODY_BYTES);
        assert_eq!(
            c.http.http_max_connections,
            verdict_ingress::ServeOptions::default().max_connections
        );
    }

    #[test]
    fn default_durations_read_back_as_themselves() {
        for (text, duration) in [
            ("250ms", Duration::from_millis(250)),
            ("1500ms", Duration::from_millis(1500)),
            ("5s", Duration::from_secs(5)),
            ("90s", Duration::from_secs(90)),
            ("10m", Duration::from_secs(600)),
            ("1h", Duration::from_secs(3600)),
            ("2d", Duration::from_secs(2 * 86_400)),
            ("0ms", Duration::ZERO),
        ] {
            assert_eq!(duration_text(duration), text);
            assert_eq!(parse_duration(text), Ok(duration));
        }
    }

    #[test]
    fn server_without_secret_refuses_unless_unsigned_is_allowed() {
        assert_eq!(parse(&[]).validate(), Err(ConfigError::MissingSecret));
        assert_eq!(parse(&["--allow-unsigned"]).validate(), Ok(()));
        assert_eq!(parse(&["--webhook-secret", "k1"]).validate(), Ok(()));
    }

    #[test]
    fn settings_that_yield_no_secret_are_refused_not_read_as_none() {
        for blank in [",", " , ", ",,"] {
            assert_eq!(
                parse(&["--webhook-secret", blank, "--allow-unsigned"]).validate(),
                Err(ConfigError::EmptySecret),
                "{blank:?}"
            );
            assert_eq!(
                parse(&["--webhook-secret", "k", "--grpc-token", blank]).validate(),
                Err(ConfigError::EmptyGrpcToken),
                "{blank:?}"
            );
        }
    }

    #[test]
    fn grpc_on_the_network_needs_tls_or_tokens_or_an_explicit_insecure() {
        let base = ["--webhook-secret", "k", "--grpc-addr", "0.0.0.0:50051"];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            parse(&args).validate()
        };
        let refused = with(&[]).unwrap_err();
        assert_eq!(
            refused,
            ConfigError::InsecureGrpc("0.0.0.0:50051".parse().unwrap())
        );
        let message = refused.to_string();
        assert!(message.contains("insecure"), "{message}");
        assert!(message.contains("--grpc-insecure"), "{message}");
        assert_eq!(with(&["--grpc-insecure"]), Ok(()));
        assert_eq!(with(&["--grpc-token", "t"]), Ok(()));
        assert_eq!(
            with(&["--grpc-tokens-file", "/etc/verdict/tokens.toml"]),
            Ok(())
        );
        assert_eq!(
            with(&["--grpc-tls-cert", "c.pem", "--grpc-tls-key", "k.pem"]),
            Ok(())
        );
        assert!(
            parse(&["--webhook-secret", "k", "--grpc-addr", "[::1]:50051"])
                .validate()
                .is_ok()
        );
    }

    #[test]
    fn tls_settings_must_be_complete() {
        let base = ["--webhook-secret", "k"];
        let with = |extra: &[&str]| {
            let args: Vec<&str> = base.iter().chain(extra).copied().collect();
            parse(&args).validate()
        };
        assert_eq!(
            with(&["--grpc-tls-cert", "c.pem"]),
            Err(ConfigError::HalfTls)
        );
        assert_eq!(
            with(&["--grpc-tls-key", "k.pem"]),
            Err(ConfigError::HalfTls)
        );
        assert_eq!(
            with(&["--grpc-client-ca", "ca.pem"]),
            Err(ConfigError::ClientCaWithoutTls)
        );
    }

    #[test]
    fn allowlists_parse_cidrs_and_addresses() {
        let c = parse(&[
            "--webhook-allow-cidrs",
            "203.0.113.0/24, 198.51.100.7 ,2001:db8::/32",
            "--trusted-proxies",
            "10.0.0.0/8",
        ]);
        let shown: Vec<String> = c
            .http
            .webhook_allow_cidrs
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            ["203.0.113.0/24", "198.51.100.7/32", "2001:db8::/32"]
        );
        assert_eq!(c.http.trusted_proxies.len(), 1);
        let err = Wrapper::try_parse_from(["verdict", "--webhook-allow-cidrs", "10.0.0.0/33"])
            .unwrap_err();
        assert!(err.to_string().contains("not a CIDR"), "{err}");
    }

    #[test]
    fn inflight_bound_follows_the_pool_unless_set() {
        assert_eq!(
            parse(&["--db-max-connections", "4"]).http.max_inflight(4),
            64
        );
        assert_eq!(
            parse(&["--webhook-max-inflight", "10"])
                .http
                .max_inflight(16),
            10
        );
        assert!(Wrapper::try_parse_from(["verdict", "--webhook-max-inflight", "0"]).is_err());
    }

    #[test]
    fn comma_separated_secrets_allow_rotation() {
        let c = parse(&["--webhook-secret", "old, new,,"]);
        assert_eq!(c.webhook_keys(), vec![b"old".to_vec(), b"new".to_vec()]);
    }

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let c = parse(&[
            "--webhook-secret",
            "super-secret-key",
            "--grpc-token",
            "t0ken-a,t0ken-b",
            "--database-url",
            "postgres://verdict:db-passw0rd@db/verdict",
            "--redis-url",
            "rediss://:redis-passw0rd@cache:6380",
        ]);
        let debug = format!("{c:?}");
        assert!(!debug.contains("super-secret-key"));
        assert!(!debug.contains("t0ken"));
        assert!(!debug.contains("passw0rd"), "{debug}");
        assert!(
            debug.contains("postgres://verdict:***@db/verdict"),
            "{debug}"
        );
        assert_eq!(
            c.grpc.tokens(),
            vec![b"t0ken-a".to_vec(), b"t0ken-b".to_vec()]
        );
    }

    #[test]
    fn reconciliation_is_off_by_default_and_needs_credentials_when_on() {
        let c = parse(&["--webhook-secret", "k"]);
        assert!(c.reconcile.schedule().is_none());
        assert_eq!(c.reconcile.api.idenfy_api_url, "https://ivs.idenfy.com");
        let on = ["--webhook-secret", "k", "--reconcile-after", "2h"];
        assert_eq!(
            parse(&on).validate(),
            Err(ConfigError::ReconcileWithoutCredentials)
        );
        let with_key: Vec<&str> = on
            .iter()
            .copied()
            .chain(["--idenfy-api-key", "key", "--idenfy-api-secret", "s3cret"])
            .collect();
        let c = parse(&with_key);
        assert_eq!(c.validate(), Ok(()));
        let schedule = c.reconcile.schedule().expect("on");
        assert_eq!(
            (schedule.after, schedule.rate),
            (Duration::from_secs(7200), 1.0)
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        assert_eq!(
            parse(&["--webhook-secret", "k", "--reconcile-after", "0s"]).validate(),
            Err(ConfigError::ZeroReconcileAfter)
        );
        assert!(Wrapper::try_parse_from(["verdict", "--reconcile-rate", "0"]).is_err());
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5w").is_err());
        assert!(parse_duration("213503982334602d").is_err(), "too long");
    }

    #[test]
    fn bad_values_are_rejected_by_name() {
        let err = Wrapper::try_parse_from(["verdict", "--http-addr", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--http-addr"), "{err}");
    }
}
