//! Reconciliation with iDenfy (DESIGN §13): its API and the schedule of lookups.

use std::time::Duration;

use clap::Args;
use secrecy::SecretString;
use verdict_reconcile::{ApiSettings, IdenfyClient, Schedule, SetupError, client};

use super::{ConfigError, parse_duration, parse_secret};

/// Where iDenfy's API is and how to authenticate: for the reconciler of `serve` and for
/// `verdict reconcile`.
#[derive(Debug, Clone, Args)]
pub struct IdenfyApiConfig {
    /// Base URL of iDenfy's API; lookups go to `{url}/api/v2/status`.
    #[arg(long, env = "VERDICT_IDENFY_API_URL", default_value = client::DEFAULT_URL)]
    pub idenfy_api_url: String,

    /// iDenfy API key (HTTP Basic user of the status API).
    #[arg(long, env = "VERDICT_IDENFY_API_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub idenfy_api_key: Option<SecretString>,

    /// iDenfy API secret (HTTP Basic password of the status API).
    #[arg(long, env = "VERDICT_IDENFY_API_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub idenfy_api_secret: Option<SecretString>,

    /// Bound on one lookup: connecting, sending and reading the answer.
    #[arg(long, env = "VERDICT_IDENFY_API_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub idenfy_api_timeout: Duration,
}

impl Default for IdenfyApiConfig {
    /// iDenfy's API, no credentials.
    fn default() -> Self {
        Self {
            idenfy_api_url: client::DEFAULT_URL.to_owned(),
            idenfy_api_key: None,
            idenfy_api_secret: None,
            idenfy_api_timeout: client::DEFAULT_TIMEOUT,
        }
    }
}

impl IdenfyApiConfig {
    /// The status API client, or what is missing or wrong.
    pub fn client(&self) -> Result<IdenfyClient, SetupError> {
        let (Some(key), Some(secret)) = (&self.idenfy_api_key, &self.idenfy_api_secret) else {
            return Err(SetupError::MissingCredentials);
        };
        IdenfyClient::new(&ApiSettings {
            url: self.idenfy_api_url.clone(),
            key: key.clone(),
            secret: secret.clone(),
            timeout: self.idenfy_api_timeout,
        })
    }
}

/// When `serve` looks open cases up at iDenfy.
#[derive(Debug, Clone, Args)]
pub struct ReconcileConfig {
    #[command(flatten)]
    pub api: IdenfyApiConfig,

    /// Look a case up at iDenfy once it is still not final and unchanged this long, and at
    /// most once per this long (iDenfy forbids regular polling: hours, not minutes). Unset:
    /// reconciliation is off.
    #[arg(long, env = "VERDICT_RECONCILE_AFTER", value_parser = parse_duration)]
    pub reconcile_after: Option<Duration>,

    /// Most lookups per second on this replica.
    #[arg(long, env = "VERDICT_RECONCILE_RATE", default_value_t = 1.0, value_parser = parse_rate)]
    pub reconcile_rate: f64,
}

impl Default for ReconcileConfig {
    /// Off.
    fn default() -> Self {
        Self {
            api: IdenfyApiConfig::default(),
            reconcile_after: None,
            reconcile_rate: 1.0,
        }
    }
}

impl ReconcileConfig {
    /// The schedule, when reconciliation is on.
    pub fn schedule(&self) -> Option<Schedule> {
        self.reconcile_after.map(|after| Schedule {
            after,
            rate: self.reconcile_rate,
        })
    }

    /// Reconciliation that is on needs credentials and a positive interval.
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let Some(after) = self.reconcile_after else {
            return Ok(());
        };
        if after.is_zero() {
            return Err(ConfigError::ZeroReconcileAfter);
        }
        if self.api.idenfy_api_key.is_none() || self.api.idenfy_api_secret.is_none() {
            return Err(ConfigError::ReconcileWithoutCredentials);
        }
        Ok(())
    }
}

/// A positive, finite number of lookups per second.
fn parse_rate(raw: &str) -> Result<f64, String> {
    match raw.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "{raw:?} is not a positive number of lookups per second"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_positive_finite_numbers() {
        assert_eq!(parse_rate("1"), Ok(1.0));
        assert_eq!(parse_rate("0.2"), Ok(0.2));
        for bad in ["0", "-1", "NaN", "inf", "fast", ""] {
            assert!(parse_rate(bad).is_err(), "{bad:?}");
        }
    }
}
