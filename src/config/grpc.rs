//! The gRPC listener's transport security, credentials and limits (DESIGN §10).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use secrecy::{ExposeSecret, SecretString};

use super::{ConfigError, duration_text, parse_duration, parse_secret, split_keys};

/// How gRPC callers are authenticated and bounded.
#[derive(Debug, Clone, Args)]
pub struct GrpcConfig {
    /// PEM certificate chain of the gRPC listener; with --grpc-tls-key, gRPC is served over TLS
    /// only.
    #[arg(long, env = "VERDICT_GRPC_TLS_CERT")]
    pub grpc_tls_cert: Option<PathBuf>,

    /// PEM private key of --grpc-tls-cert.
    #[arg(long, env = "VERDICT_GRPC_TLS_KEY")]
    pub grpc_tls_key: Option<PathBuf>,

    /// PEM CA certificate: clients must present a certificate signed by it (mutual TLS).
    #[arg(long, env = "VERDICT_GRPC_CLIENT_CA")]
    pub grpc_client_ca: Option<PathBuf>,

    /// Bearer tokens granting `cases:read` (no personal data), comma-separated for rotation.
    /// Unset, with no tokens file and no client CA, means no authentication.
    #[arg(long, env = "VERDICT_GRPC_TOKEN", hide_env_values = true, value_parser = parse_secret)]
    pub grpc_token: Option<SecretString>,

    /// TOML file of named tokens (plain or as hex SHA-256) and client certificate SANs, each
    /// with its scopes: `cases:read`, `pii:read`, `admin`.
    #[arg(long, env = "VERDICT_GRPC_TOKENS_FILE")]
    pub grpc_tokens_file: Option<PathBuf>,

    /// Serve gRPC on a non-loopback address with neither TLS nor tokens (anyone who reaches the
    /// port reads personal data): only where the network itself is protected.
    #[arg(long, env = "VERDICT_GRPC_INSECURE")]
    pub grpc_insecure: bool,

    /// Open WatchCase + WatchCases streams on this replica; more are RESOURCE_EXHAUSTED.
    #[arg(long, env = "VERDICT_GRPC_MAX_STREAMS", default_value_t = verdict_grpc::DEFAULT_MAX_STREAMS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub grpc_max_streams: usize,

    /// Calls in flight on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "VERDICT_GRPC_MAX_CONCURRENT_STREAMS",
        default_value_t = verdict_grpc::DEFAULT_MAX_CONCURRENT_STREAMS,
        value_parser = clap::value_parser!(u32).range(1..))]
    pub grpc_max_concurrent_streams: u32,

    /// HTTP/2 keepalive PING interval on idle gRPC connections.
    #[arg(long, env = "VERDICT_GRPC_KEEPALIVE_INTERVAL",
        default_value = duration_text(verdict_grpc::DEFAULT_KEEPALIVE_INTERVAL), value_parser = parse_duration)]
    pub grpc_keepalive_interval: Duration,

    /// A keepalive PING unanswered this long closes the connection.
    #[arg(long, env = "VERDICT_GRPC_KEEPALIVE_TIMEOUT",
        default_value = duration_text(verdict_grpc::DEFAULT_KEEPALIVE_TIMEOUT), value_parser = parse_duration)]
    pub grpc_keepalive_timeout: Duration,

    /// Streams older than this end UNAVAILABLE so clients resume (and rebalance across
    /// replicas); up to a tenth earlier, at random.
    #[arg(long, env = "VERDICT_STREAM_MAX_AGE",
        default_value = duration_text(verdict_grpc::DEFAULT_STREAM_MAX_AGE), value_parser = parse_duration)]
    pub stream_max_age: Duration,

    /// Recent feed changes kept in memory for WatchCases streams; a stream further behind reads
    /// the database until it catches up.
    #[arg(long, env = "VERDICT_FEED_WINDOW", default_value_t = verdict_grpc::DEFAULT_FEED_WINDOW,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub feed_window: usize,
}

impl Default for GrpcConfig {
    /// The documented defaults: plaintext, no credentials, the DESIGN limits.
    fn default() -> Self {
        Self {
            grpc_tls_cert: None,
            grpc_tls_key: None,
            grpc_client_ca: None,
            grpc_token: None,
            grpc_tokens_file: None,
            grpc_insecure: false,
            grpc_max_streams: verdict_grpc::DEFAULT_MAX_STREAMS,
            grpc_max_concurrent_streams: verdict_grpc::DEFAULT_MAX_CONCURRENT_STREAMS,
            grpc_keepalive_interval: verdict_grpc::DEFAULT_KEEPALIVE_INTERVAL,
            grpc_keepalive_timeout: verdict_grpc::DEFAULT_KEEPALIVE_TIMEOUT,
            stream_max_age: verdict_grpc::DEFAULT_STREAM_MAX_AGE,
            feed_window: verdict_grpc::DEFAULT_FEED_WINDOW,
        }
    }
}

impl GrpcConfig {
    /// The `VERDICT_GRPC_TOKEN` tokens, split at commas, blanks dropped.
    pub fn tokens(&self) -> Vec<Vec<u8>> {
        self.grpc_token
            .as_ref()
            .map(|s| split_keys(s.expose_secret()))
            .unwrap_or_default()
    }

    /// The TLS files, once both halves are given.
    pub fn tls_files(&self) -> Option<(&PathBuf, &PathBuf)> {
        self.grpc_tls_cert.as_ref().zip(self.grpc_tls_key.as_ref())
    }

    /// What clap cannot check: settings that would silently weaken authentication are
    /// refused, and so is an open listener on the network.
    pub(super) fn validate(&self, addr: SocketAddr) -> Result<(), ConfigError> {
        if self.grpc_token.is_some() && self.tokens().is_empty() {
            return Err(ConfigError::EmptyGrpcToken);
        }
        if self.grpc_tls_cert.is_some() != self.grpc_tls_key.is_some() {
            return Err(ConfigError::HalfTls);
        }
        if self.grpc_client_ca.is_some() && self.tls_files().is_none() {
            return Err(ConfigError::ClientCaWithoutTls);
        }
        let has_tokens = self.grpc_token.is_some() || self.grpc_tokens_file.is_some();
        if !addr.ip().is_loopback()
            && self.tls_files().is_none()
            && !has_tokens
            && !self.grpc_insecure
        {
            return Err(ConfigError::InsecureGrpc(addr));
        }
        Ok(())
    }

    /// True when gRPC runs without TLS but with tokens on the network: they travel in
    /// plaintext, worth a warning.
    pub fn sends_tokens_in_plaintext(&self, addr: SocketAddr) -> bool {
        !addr.ip().is_loopback()
            && self.tls_files().is_none()
            && (self.grpc_token.is_some() || self.grpc_tokens_file.is_some())
    }
}
