//! Whether the database answers: one ping loop per process, read by every probe.
//!
//! `/readyz` (on both HTTP listeners) and `grpc.health.v1` used to ask the database each on their
//! own (one ping per probe request with its own deadline, and a gRPC loop every 5 s), so they
//! could disagree for seconds and every probe cost a query. Now one task pings the store every
//! interval (the interval is also the ping's deadline) and both report what it last found.
//! Shutdown is not part of this signal: each entrance turns traffic away the moment its
//! shutdown token is cancelled.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{MissedTickBehavior, interval, timeout};
use tokio_util::sync::CancellationToken;
use verdict_domain::CaseStore;

/// How often the database is pinged, and how long a ping may take.
pub const DEFAULT_READINESS_INTERVAL: Duration = Duration::from_secs(5);

/// What the last ping found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The database answered.
    Ready,
    /// It did not (yet): why, for the probe's answer and the log.
    Unready(String),
}

/// The shared signal: cheap to clone, read without waiting.
#[derive(Debug, Clone)]
pub struct Readiness {
    status: watch::Receiver<Status>,
}

impl Readiness {
    /// Starts pinging `store` every `every` (at least 1 ms) until `shutdown`. Unready until the
    /// first answer.
    pub fn spawn(store: Arc<dyn CaseStore>, every: Duration, shutdown: CancellationToken) -> Self {
        let every = every.max(Duration::from_millis(1));
        let (sender, status) = watch::channel(Status::Unready(
            "the database has not answered yet".to_owned(),
        ));
        tokio::spawn(ping_loop(store, every, sender, shutdown));
        Self { status }
    }

    /// What the last ping found.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Waits until the status changes; `None` once the ping loop has stopped (shutdown).
    pub async fn changed(&mut self) -> Option<Status> {
        self.status.changed().await.ok()?;
        Some(self.status.borrow_and_update().clone())
    }
}

async fn ping_loop(
    store: Arc<dyn CaseStore>,
    every: Duration,
    sender: watch::Sender<Status>,
    shutdown: CancellationToken,
) {
    let mut ticker = interval(every);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let answered = tokio::select! {
            biased;
            () = shutdown.cancelled() => return,
            answered = timeout(every, store.ping()) => answered,
        };
        // The probes show the error's own text; the log also has its causes.
        let (status, cause) = match answered {
            Ok(Ok(())) => (Status::Ready, None),
            Ok(Err(err)) => (Status::Unready(err.to_string()), Some(err)),
            Err(_) => (
                Status::Unready(format!("the database did not answer within {every:?}")),
                None,
            ),
        };
        sender.send_if_modified(|current| {
            if *current == status {
                return false;
            }
            // Logged on changes only, so an outage does not flood the logs.
            match (&status, &cause) {
                (Status::Ready, _) => tracing::info!("database answers: ready"),
                (Status::Unready(reason), None) => tracing::warn!(%reason, "database unready"),
                (Status::Unready(reason), Some(err)) => {
                    tracing::warn!(%reason, error = ?err, "database unready");
                }
            }
            *current = status;
            true
        });
    }
}

#[cfg(test)]
mod tests;
