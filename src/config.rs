//! Configuration: one typed value, parsed by clap from flags and `VERDICT_*` variables, so
//! `verdict serve --help` documents every variable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use verdict_bus::{Hub, LocalBus, RedisBus};
use verdict_domain::ChangeBus;
use verdict_telemetry::LogFormat;

/// Where the database lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://file.db?mode=rwc` for one replica, `postgres://…` for many.
    #[arg(
        long,
        env = "VERDICT_DATABASE_URL",
        default_value = "sqlite://verdict.db?mode=rwc"
    )]
    pub database_url: String,

    /// Most database connections the pool opens.
    #[arg(long, env = "VERDICT_DB_MAX_CONNECTIONS", default_value_t = 16)]
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
        verdict_store::SeaStore::connect(&self.database_url, options).await
    }
}

/// How replicas tell each other about changes.
#[derive(Debug, Clone, Args)]
pub struct BusConfig {
    /// Redis URL for change notifications between replicas; unset means an in-process hub.
    #[arg(long, env = "VERDICT_REDIS_URL")]
    pub redis_url: Option<String>,

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

impl BusConfig {
    /// The configured bus over `hub`: one way for `serve` and for `quarantine reprocess`, whose
    /// changes must reach the watchers of every replica too. With Redis, a subscriber task runs
    /// until `shutdown` is cancelled.
    pub async fn connect(
        &self,
        hub: Arc<Hub>,
        shutdown: CancellationToken,
    ) -> Result<Bus, verdict_bus::Error> {
        Ok(match &self.redis_url {
            Some(url) => {
                let bus = RedisBus::connect(url, &self.redis_channel, hub, shutdown).await?;
                let link = Some(bus.link());
                Bus {
                    publisher: Arc::new(bus),
                    link,
                }
            }
            None => Bus {
                publisher: Arc::new(LocalBus::new(hub)),
                link: None,
            },
        })
    }
}

/// Everything `verdict serve` needs.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address of the HTTP listener (webhooks, /healthz, /readyz, /metrics); port 0 picks one.
    #[arg(long, env = "VERDICT_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// Address of the gRPC listener (CaseService, health, reflection); port 0 picks one.
    #[arg(long, env = "VERDICT_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

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

    /// Bearer tokens gRPC callers of CaseService must present, comma-separated for rotation;
    /// unset means no authentication (health and reflection are always open).
    #[arg(long, env = "VERDICT_GRPC_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub grpc_token: Option<SecretString>,

    /// Accept webhooks without checking signatures (development only).
    #[arg(long, env = "VERDICT_ALLOW_UNSIGNED")]
    pub allow_unsigned: bool,

    /// Largest accepted webhook body.
    #[arg(long, env = "VERDICT_MAX_BODY_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Deadline for storing a webhook; past it the answer is 503 and iDenfy retries.
    #[arg(long, env = "VERDICT_WRITE_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub write_timeout: Duration,

    /// Heartbeat interval on idle watch streams.
    #[arg(long, env = "VERDICT_HEARTBEAT_INTERVAL", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat_interval: Duration,

    /// Interval of the safety-net re-read of watched cases.
    #[arg(long, env = "VERDICT_RESYNC_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub resync_interval: Duration,

    /// Interval of the re-read while the Redis subscription is down.
    #[arg(long, env = "VERDICT_RESYNC_DEGRADED_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub resync_degraded_interval: Duration,

    /// How long shutdown waits for in-flight requests before giving up.
    #[arg(long, env = "VERDICT_SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log format: `pretty` for people, `json` for machines.
    #[arg(long, env = "VERDICT_LOG_FORMAT", default_value = "pretty")]
    pub log_format: LogFormat,
}

/// Configuration errors found after parsing.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error(
        "no webhook secret: set VERDICT_WEBHOOK_SECRET (or --webhook-secret), or pass --allow-unsigned for development"
    )]
    MissingSecret,
}

impl Config {
    /// The webhook signing keys, split at commas, blanks dropped.
    pub fn webhook_keys(&self) -> Vec<Vec<u8>> {
        self.webhook_secret
            .as_ref()
            .map(|s| split_keys(s.expose_secret()))
            .unwrap_or_default()
    }

    /// The gRPC bearer tokens, split at commas, blanks dropped.
    pub fn grpc_tokens(&self) -> Vec<Vec<u8>> {
        self.grpc_token
            .as_ref()
            .map(|s| split_keys(s.expose_secret()))
            .unwrap_or_default()
    }

    /// Checks what clap cannot: a server without keys only runs when explicitly unsigned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.webhook_keys().is_empty() && !self.allow_unsigned {
            return Err(ConfigError::MissingSecret);
        }
        Ok(())
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

fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw.to_owned()))
}

/// Parses `250ms`, `5s`, `2m`, `1h` (a bare number means seconds).
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration like 250ms, 5s, 2m or 1h"))?;
    match unit.trim() {
        "ms" => Ok(Duration::from_millis(n)),
        "" | "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        other => Err(format!(
            "unknown duration unit {other:?} (use ms, s, m or h)"
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
        assert_eq!(c.database.database_url, "sqlite://verdict.db?mode=rwc");
        assert_eq!(c.write_timeout, Duration::from_secs(5));
        assert_eq!(c.max_body_bytes, 4 * 1024 * 1024);
        assert!(c.bus.redis_url.is_none());
        assert_eq!(c.bus.redis_channel, "verdict.case-changes");
        assert!(c.migrate_on_start);
    }

    #[test]
    fn server_without_secret_refuses_unless_unsigned_is_allowed() {
        assert_eq!(parse(&[]).validate(), Err(ConfigError::MissingSecret));
        assert_eq!(parse(&["--allow-unsigned"]).validate(), Ok(()));
        assert_eq!(parse(&["--webhook-secret", "k1"]).validate(), Ok(()));
        assert_eq!(
            parse(&["--webhook-secret", " , "]).validate(),
            Err(ConfigError::MissingSecret)
        );
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
        ]);
        let debug = format!("{c:?}");
        assert!(!debug.contains("super-secret-key"));
        assert!(!debug.contains("t0ken"));
        assert_eq!(
            c.grpc_tokens(),
            vec![b"t0ken-a".to_vec(), b"t0ken-b".to_vec()]
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("5d").is_err());
    }

    #[test]
    fn bad_values_are_rejected_by_name() {
        let err = Wrapper::try_parse_from(["verdict", "--http-addr", "nowhere"]).unwrap_err();
        assert!(err.to_string().contains("--http-addr"), "{err}");
    }
}
