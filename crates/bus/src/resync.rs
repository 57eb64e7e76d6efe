//! The safety net: pub/sub is at-most-once and a replica can crash between commit and publish,
//! so every watched case and the feed head are re-read periodically, in one batched query, and
//! the watchers of whatever moved are woken.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};
use verdict_domain::CaseStore;
use verdict_telemetry::metrics::metrics;

use crate::Hub;

#[cfg(test)]
mod tests;

/// How often every watched case and the feed head are re-read while the bus works.
pub const DEFAULT_RESYNC_INTERVAL: Duration = Duration::from_secs(30);

/// How often they are re-read while the Redis subscription is down.
pub const DEFAULT_RESYNC_DEGRADED_INTERVAL: Duration = Duration::from_secs(2);

/// Most scanRefs per `CaseStore::revisions` query, well under SQLite's bound-parameter limit.
const BATCH: usize = 1000;

/// Periodic batched re-read of every watched case and of the feed head.
pub struct Resync {
    store: Arc<dyn CaseStore>,
    hub: Arc<Hub>,
    interval: Duration,
    degraded_interval: Duration,
    link: Option<watch::Receiver<bool>>,
}

impl Resync {
    /// A resync that runs every `interval`, or every `degraded_interval` while `link` (from
    /// [`RedisBus::link`](crate::RedisBus::link)) says the subscription is down. Without a link
    /// (in-process bus) it always uses `interval`.
    pub fn new(
        store: Arc<dyn CaseStore>,
        hub: Arc<Hub>,
        interval: Duration,
        degraded_interval: Duration,
        link: Option<watch::Receiver<bool>>,
    ) -> Self {
        Self {
            store,
            hub,
            interval,
            degraded_interval,
            link,
        }
    }

    /// Runs passes until `shutdown` is cancelled. A failed pass is logged and retried at the
    /// next tick: the database may be briefly unavailable. Each completed pass counts in
    /// `verdict.resyncs`, its wake-ups in `verdict.resync.caught`.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut last_pass = Instant::now();
        loop {
            let deadline = last_pass + self.period();
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {}
                // The period depends on the link: recompute the deadline when it changes.
                () = link_changed(&mut self.link) => continue,
            }
            last_pass = Instant::now();
            let pass = tokio::select! {
                () = shutdown.cancelled() => return,
                pass = self.run_once() => pass,
            };
            match pass {
                Ok(caught) => {
                    metrics().resync(u64::try_from(caught).unwrap_or(u64::MAX));
                    if caught > 0 {
                        debug!(caught, "resync caught changes the bus missed");
                    }
                }
                Err(error) => warn!(error = %error, "resync pass failed"),
            }
        }
    }

    /// One pass: reads the revisions of all watched cases (one query per [`BATCH`] cases) and
    /// wakes the watchers of every case that moved past what the hub knew (with the database
    /// revision and no traceparent); then compares the feed head with the highest feed position
    /// seen and wakes the feed watchers if behind. Returns how many wake-ups it caused (cases
    /// plus at most one for the feed): the resync metric. A case watched since before any
    /// notification reached this hub counts once, since the hub cannot tell it was already read.
    pub async fn run_once(&self) -> Result<usize, verdict_domain::Error> {
        let scan_refs: Vec<String> = self
            .hub
            .watched_cases()
            .into_iter()
            .map(|(scan_ref, _)| scan_ref)
            .collect();
        let mut caught = 0;
        for batch in scan_refs.chunks(BATCH) {
            for (scan_ref, revision) in self.store.revisions(batch).await? {
                // The hub compares with what it knows now, so a notification that arrived
                // during the query is neither repeated nor undone.
                if self.hub.bump_case(&scan_ref, revision, None, None) {
                    caught += 1;
                }
            }
        }
        let head = self.store.feed_head().await?;
        if self.hub.advance_feed(head.0) {
            caught += 1;
        }
        Ok(caught)
    }

    fn period(&self) -> Duration {
        match &self.link {
            Some(link) if !*link.borrow() => self.degraded_interval,
            _ => self.interval,
        }
    }
}

/// Resolves when the link changes; never when there is no link or its sender is gone.
async fn link_changed(link: &mut Option<watch::Receiver<bool>>) {
    if let Some(rx) = link
        && rx.changed().await.is_ok()
    {
        return;
    }
    std::future::pending().await
}

impl fmt::Debug for Resync {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resync")
            .field("interval", &self.interval)
            .field("degraded_interval", &self.degraded_interval)
            .field("link_up", &self.link.as_ref().map(|link| *link.borrow()))
            .finish_non_exhaustive()
    }
}
