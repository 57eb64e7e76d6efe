//! The crate's error type.

use std::time::Duration;

/// What can go wrong talking to Redis. Callers of [`ChangeBus`](verdict_domain::ChangeBus) see
/// it as [`verdict_domain::Error::Unavailable`]: a lost hint is covered by the resync, so the
/// only sensible reaction is to log it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Redis URL could not be understood (the URL itself is never echoed: it may hold a
    /// password).
    #[error("invalid redis url")]
    InvalidUrl(#[source] redis::RedisError),
    /// Redis refused or failed a command, or the connection broke.
    #[error("redis command failed")]
    Redis(#[from] redis::RedisError),
    /// Redis did not answer in time; bounded so a dead Redis never stalls a webhook.
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    /// The notification could not be encoded as JSON.
    #[error("could not encode the notification")]
    Encode(#[from] serde_json::Error),
}

impl From<Error> for verdict_domain::Error {
    fn from(error: Error) -> Self {
        verdict_domain::Error::Unavailable(Box::new(error))
    }
}
