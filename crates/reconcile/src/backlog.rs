//! The backlog gauges, `verdict_oldest_pending_case_seconds` and `verdict_quarantine_depth`:
//! read from the database periodically (one indexed query each) and reported by observable
//! gauges as of each scrape, so a scrape never scans anything.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;
use verdict_domain::{Backlog, BacklogStore};
use verdict_telemetry::metrics::metrics;

/// How often the backlog is read when nothing else is configured.
pub const DEFAULT_BACKLOG_INTERVAL: Duration = Duration::from_secs(15);

/// Reads the backlog into the gauges every interval.
#[derive(Debug)]
pub struct BacklogGauges {
    store: Arc<dyn BacklogStore>,
    interval: Duration,
}

impl BacklogGauges {
    /// Reads `store` every `interval`.
    pub fn new(store: Arc<dyn BacklogStore>, interval: Duration) -> Self {
        Self { store, interval }
    }

    /// Reads now, then every interval, until `shutdown` is cancelled. A failed read is logged
    /// and the gauges keep the last value (a database outage has its own signals).
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            if let Err(error) = self.refresh().await {
                let error: &(dyn std::error::Error + 'static) = &error;
                tracing::warn!(error, "could not read the backlog");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
    }

    /// One read, handed to the gauges.
    pub async fn refresh(&self) -> Result<Backlog, verdict_domain::Error> {
        let backlog = self.store.backlog().await?;
        metrics().backlog(
            backlog.oldest_pending_since.map(SystemTime::from),
            backlog.quarantine_depth,
        );
        Ok(backlog)
    }
}
