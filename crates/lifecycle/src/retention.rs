//! Retention: purging what has been kept long enough, once (`verdict purge --older-than`) or
//! every `VERDICT_PURGE_INTERVAL` on every replica.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;
use verdict_domain::{Case, PurgeReason};
use verdict_telemetry::propagation;

use crate::{Error, Lifecycle};

/// Cases purged per transaction: enough to get through a backlog quickly, few enough that a
/// batch holds its row locks (and, on SQLite, the write lock) for a fraction of a second.
pub const DEFAULT_BATCH: u32 = 200;

/// What a retention pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    /// Cases purged.
    pub purged: u64,
    /// Bodies of quarantine items that belong to no case, erased for their age.
    pub quarantine_erased: u64,
    /// Another process was running a batch: this pass stopped and left the rest to it.
    pub busy: bool,
}

impl Lifecycle {
    /// One retention pass: purges, a batch per transaction, every case that became final
    /// longer than `retention` ago and is not purged yet, and erases the bodies of quarantine
    /// items older than that which belong to no case; tells `each` about every case purged.
    /// Each batch is published after its commit. Stops early when another process is running
    /// a batch (on PostgreSQL one batch runs at a time across replicas).
    pub async fn retention_pass(
        &self,
        retention: Duration,
        mut each: impl FnMut(&Case),
    ) -> Result<RetentionSummary, Error> {
        let mut summary = RetentionSummary::default();
        let Some(cutoff) = cutoff(Utc::now(), retention) else {
            return Ok(summary);
        };
        loop {
            let batch = self
                .store
                .purge_expired(cutoff, self.batch, propagation::current_traceparent())
                .await?;
            let Some(batch) = batch else {
                summary.busy = true;
                break;
            };
            summary.quarantine_erased += batch.quarantine_erased;
            // A batch only takes cases not purged yet; one that changed nothing is no purge.
            for purge in batch.purged.iter().filter(|purge| purge.position.is_some()) {
                self.purged(purge, PurgeReason::Retention);
                summary.purged += 1;
                each(&purge.case);
            }
            if !batch.more {
                break;
            }
        }
        Ok(summary)
    }

    /// The retention job: a pass now and every `every` after, until `shutdown`. A failed pass
    /// is logged and tried again at the next tick; a pass cut short by shutdown rolls its batch
    /// back.
    pub async fn run_retention(
        self,
        retention: Duration,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        tracing::info!(?retention, ?every, "retention job started");
        let mut ticker = tokio::time::interval(every.max(Duration::from_millis(1)));
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // A root span per pass: its purges and their deliveries to watchers are one trace.
            let span = tracing::info_span!(parent: None, "retention pass");
            let pass = self.retention_pass(retention, |_| {}).instrument(span);
            let result = tokio::select! {
                biased;
                () = shutdown.cancelled() => break,
                result = pass => result,
            };
            match result {
                Ok(summary) if summary.purged > 0 || summary.quarantine_erased > 0 => {
                    tracing::info!(
                        purged = summary.purged,
                        quarantine_erased = summary.quarantine_erased,
                        busy = summary.busy,
                        "retention pass done"
                    );
                }
                Ok(summary) => {
                    tracing::debug!(busy = summary.busy, "retention pass found nothing to purge");
                }
                Err(err) => {
                    let error: &(dyn std::error::Error + 'static) = &err;
                    tracing::warn!(
                        error,
                        "retention pass failed, trying again at the next tick"
                    );
                }
            }
        }
        tracing::info!("retention job stopped");
    }
}

/// The arrival before which things are old enough to purge; `None` when the retention reaches
/// further back than time itself (nothing is that old).
fn cutoff(now: DateTime<Utc>, retention: Duration) -> Option<DateTime<Utc>> {
    let retention = chrono::Duration::from_std(retention).ok()?;
    now.checked_sub_signed(retention)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_retention_before_now() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let day = Duration::from_secs(86_400);
        assert_eq!(
            cutoff(now, 90 * day),
            DateTime::<Utc>::from_timestamp(1_800_000_000 - 90 * 86_400, 0)
        );
        assert_eq!(cutoff(now, Duration::ZERO), Some(now));
        assert_eq!(cutoff(now, Duration::from_secs(u64::MAX)), None);
    }
}
