//! The HTTP listeners' limits and the webhook source allowlist (DESIGN §10).

use std::net::IpAddr;
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;

use super::{duration_text, parse_duration};

/// Timeouts, caps and the source allowlist of the webhook listener.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// A connection that has not sent a whole request head this long after opening (or after
    /// its last response) is closed.
    #[arg(long, env = "VERDICT_HTTP_HEADER_TIMEOUT",
        default_value = duration_text(verdict_ingress::DEFAULT_HEADER_READ_TIMEOUT), value_parser = parse_duration)]
    pub http_header_timeout: Duration,

    /// A webhook body not received this long after its head is answered 408.
    #[arg(long, env = "VERDICT_HTTP_BODY_TIMEOUT",
        default_value = duration_text(verdict_ingress::DEFAULT_BODY_TIMEOUT), value_parser = parse_duration)]
    pub http_body_timeout: Duration,

    /// Open connections per listener; more wait in the kernel backlog.
    #[arg(long, env = "VERDICT_HTTP_MAX_CONNECTIONS", default_value_t = verdict_ingress::DEFAULT_MAX_CONNECTIONS,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    pub http_max_connections: usize,

    /// Webhooks handled at once; more are answered 503 + Retry-After at once. Default: 16 per
    /// database connection (VERDICT_DB_MAX_CONNECTIONS), a queue the store drains well within
    /// the write deadline.
    #[arg(long, env = "VERDICT_WEBHOOK_MAX_INFLIGHT",
        value_parser = clap::value_parser!(u32).range(1..))]
    pub webhook_max_inflight: Option<u32>,

    /// Source addresses allowed to POST webhooks, comma-separated CIDRs (or addresses); others
    /// get 403. Unset allows any source (the signature still decides).
    #[arg(long, env = "VERDICT_WEBHOOK_ALLOW_CIDRS", value_delimiter = ',', value_parser = parse_net)]
    pub webhook_allow_cidrs: Vec<IpNet>,

    /// Proxies whose X-Forwarded-For is believed, comma-separated CIDRs: the client is the
    /// right-most address not in one of them.
    #[arg(long, env = "VERDICT_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net)]
    pub trusted_proxies: Vec<IpNet>,
}

impl Default for HttpConfig {
    /// The documented defaults: no allowlist.
    fn default() -> Self {
        Self {
            http_header_timeout: verdict_ingress::DEFAULT_HEADER_READ_TIMEOUT,
            http_body_timeout: verdict_ingress::DEFAULT_BODY_TIMEOUT,
            http_max_connections: verdict_ingress::DEFAULT_MAX_CONNECTIONS,
            webhook_max_inflight: None,
            webhook_allow_cidrs: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }
}

/// In-flight webhooks per database connection when `VERDICT_WEBHOOK_MAX_INFLIGHT` is unset: a
/// webhook holds a connection for about a millisecond, so sixteen queued per connection wait
/// tens of milliseconds, far inside the 5 s write deadline, while memory stays bounded (each
/// holds its body).
pub const INFLIGHT_PER_DB_CONNECTION: u32 = 16;

impl HttpConfig {
    /// The in-flight bound for a pool of `db_connections`.
    pub fn max_inflight(&self, db_connections: u32) -> usize {
        let limit = self.webhook_max_inflight.unwrap_or_else(|| {
            db_connections
                .max(1)
                .saturating_mul(INFLIGHT_PER_DB_CONNECTION)
        });
        usize::try_from(limit).unwrap_or(usize::MAX)
    }
}

/// `10.0.0.0/8`, `2001:db8::/32`, or a single address (`203.0.113.9` = `/32`); blanks around
/// commas are fine.
fn parse_net(raw: &str) -> Result<IpNet, String> {
    let raw = raw.trim();
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("{raw:?} is not a CIDR like 10.0.0.0/8 or an IP address"))
}
