//! Telling the bus about a committed change without making anyone wait for it.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::task::TaskTracker;
use tracing::Instrument as _;
use verdict_domain::{ChangeBus, Notification};
use verdict_telemetry::metrics::metrics;

/// How long a notification may take. The database is the truth and watchers re-read it
/// periodically, so a notification that takes longer is given up rather than held on to.
pub(crate) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(1);

/// Publishes committed changes: the one way every use case (ingest, purge) tells watchers on
/// every replica. Cheap to clone; clones share the in-flight publishes [`Publisher::flush`]
/// waits for.
#[derive(Debug, Clone)]
pub struct Publisher {
    bus: Arc<dyn ChangeBus>,
    tasks: TaskTracker,
}

impl Publisher {
    /// Publishes on `bus`.
    pub fn new(bus: Arc<dyn ChangeBus>) -> Self {
        Self {
            bus,
            tasks: TaskTracker::new(),
        }
    }

    /// Publishes `notification` on a task of its own, after the commit it announces.
    ///
    /// Spawned rather than awaited: an answer depends only on the commit, a slow or unreachable
    /// bus (Redis) must not push iDenfy towards its 10 s retry deadline, and a client hanging
    /// up does not cancel the notification. The timeout bounds how long each task can live, so
    /// a hung bus cannot pile tasks up. Two notifications of one case may overtake each other;
    /// that is harmless because watchers only move to higher revisions and re-read the database
    /// anyway.
    ///
    /// Counted in `verdict.notifications{result}` as `published` or `failed`.
    pub fn publish(&self, notification: Notification) {
        let bus = Arc::clone(&self.bus);
        let scan_ref = notification.scan_ref.clone();
        let revision = notification.revision;
        let task = async move {
            match tokio::time::timeout(PUBLISH_TIMEOUT, bus.publish(notification)).await {
                Ok(Ok(())) => metrics().notification("published"),
                Ok(Err(err)) => {
                    let error: &(dyn std::error::Error + 'static) = &err;
                    tracing::warn!(%scan_ref, revision, error, "publish failed");
                    metrics().notification("failed");
                }
                Err(_) => {
                    tracing::warn!(%scan_ref, revision, timeout = ?PUBLISH_TIMEOUT, "publish timed out");
                    metrics().notification("failed");
                }
            }
        };
        self.tasks.spawn(task.in_current_span());
    }

    /// Waits until every notification handed over so far was published or gave up (each is
    /// bounded by its own timeout). A short-lived process calls this before it exits.
    pub async fn flush(&self) {
        self.tasks.close();
        self.tasks.wait().await;
        self.tasks.reopen();
    }
}
