//! The reconciler's loop on every replica: claim the open case that has gone longest without a
//! change, look it up, settle the claim, at most `rate` lookups per second, pausing after
//! failures.
//!
//! Only one replica asks about a case: the claim (see `verdict_domain::ReconcileQueue`) holds
//! it for `after`, then settling decides when it may be asked again (see
//! [`crate::pace::case_interval`]). A failed lookup pauses this replica's loop (doubling from
//! one second to five minutes, or as long as a 429's `Retry-After` says) and pushes the case
//! back like an answer that told nothing new, so one case that keeps failing never starves the
//! others and nothing ever turns into a tight loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;
use verdict_domain::{Claim, DueQuery, NextLookup, ReconcileQueue, Recorded, ScanRef};
use verdict_telemetry::metrics::metrics;

use crate::lookup::{Reconciler, result_of};
use crate::pace::{Backoff, Pacer, case_interval};

/// The longest a `Retry-After` is honoured: beyond it, advice that looks wrong is capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// When and how fast to look cases up.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// A case still not final and unchanged for this long is looked up, at most once per this
    /// long (`VERDICT_RECONCILE_AFTER`).
    pub after: Duration,
    /// Lookups per second on this replica (`VERDICT_RECONCILE_RATE`).
    pub rate: f64,
}

impl Schedule {
    /// How often to look for due cases when none was due: a fraction of `after`, between
    /// 100 ms and 30 s (one indexed query each).
    fn poll(&self) -> Duration {
        (self.after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30))
    }
}

/// The loop; see the module docs.
#[derive(Debug)]
pub struct Scheduler {
    queue: Arc<dyn ReconcileQueue>,
    reconciler: Reconciler,
    schedule: Schedule,
}

impl Scheduler {
    /// Claims from `queue`, looks up with `reconciler`.
    pub fn new(queue: Arc<dyn ReconcileQueue>, reconciler: Reconciler, schedule: Schedule) -> Self {
        Self {
            queue,
            reconciler,
            schedule,
        }
    }

    /// Runs until `shutdown` is cancelled; a lookup in flight is abandoned (its case is
    /// claimed for `after`, then due again).
    pub async fn run(self, shutdown: CancellationToken) {
        let Schedule { after, rate } = self.schedule;
        metrics().reconcile_after(after);
        tracing::info!(?after, rate, "reconciliation with iDenfy on");
        let mut pacer = Pacer::new(rate);
        let mut backoff = Backoff::new();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = pacer.ready() => {}
            }
            let now = Utc::now();
            let due = DueQuery {
                now,
                unchanged_since: now - after,
                hold_until: now + after,
            };
            let claim = match self.queue.claim_due(due).await {
                Ok(Some(claim)) => claim,
                Ok(None) => {
                    if !wait(self.schedule.poll(), &shutdown).await {
                        return;
                    }
                    continue;
                }
                Err(error) => {
                    log_claim_failure(&error);
                    if !wait(backoff.pause(), &shutdown).await {
                        return;
                    }
                    continue;
                }
            };
            let pause = tokio::select! {
                () = shutdown.cancelled() => return,
                pause = self.look_up(claim) => pause,
            };
            match pause {
                Some(pause) => {
                    let pause = pause.unwrap_or_else(|| backoff.pause());
                    if !wait(pause, &shutdown).await {
                        return;
                    }
                }
                None => backoff.reset(),
            }
        }
    }

    /// Looks the claimed case up and settles its claim. Returns the pause the loop owes
    /// iDenfy: `None` after an answer, `Some(None)` after a failure (the back-off decides),
    /// `Some(Some(d))` when iDenfy said when to come back.
    async fn look_up(&self, claim: Claim) -> Option<Option<Duration>> {
        let after = self.schedule.after;
        let Ok(scan_ref) = ScanRef::new(claim.scan_ref.clone()) else {
            // Stored cases always have a valid scanRef; never ask about one that does not.
            self.settle(&claim.scan_ref, None).await;
            return None;
        };
        let outcome = self.reconciler.reconcile(&scan_ref).await;
        // A change starts the back-off over; nothing new, or a failure, pushes the case back.
        let next = |changed: bool, result| {
            let attempts = match changed {
                true => 0,
                false => claim.attempts.saturating_add(1),
            };
            Some(NextLookup {
                at: Utc::now() + case_interval(after, attempts),
                attempts,
                result,
            })
        };
        let (next, pause) = match &outcome {
            Ok(Recorded::Applied { case, .. }) if case.is_final => (None, None),
            Ok(recorded) => {
                let changed = matches!(recorded, Recorded::Applied { .. });
                (next(changed, result_of(recorded)), None)
            }
            Err(error) => {
                let pause = match error.is_about_the_case() {
                    true => None,
                    false => Some(error.retry_after().map(|d| d.min(MAX_RETRY_AFTER))),
                };
                (next(false, error.result()), pause)
            }
        };
        self.settle(&claim.scan_ref, next).await;
        pause
    }

    async fn settle(&self, scan_ref: &str, next: Option<NextLookup>) {
        if let Err(error) = self.queue.settle(scan_ref, next).await {
            // The claim's hold still keeps the case from being asked again too soon.
            let error: &(dyn std::error::Error + 'static) = &error;
            tracing::warn!(%scan_ref, error, "could not settle a reconcile claim");
        }
    }
}

fn log_claim_failure(error: &verdict_domain::Error) {
    let error: &(dyn std::error::Error + 'static) = error;
    tracing::warn!(error, "could not claim a case to reconcile");
}

/// Sleeps `pause` unless shut down first; false when shut down.
async fn wait(pause: Duration, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        () = shutdown.cancelled() => false,
        () = tokio::time::sleep(pause) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_cases_are_looked_for_at_a_fraction_of_the_interval() {
        let poll = |after: u64| {
            Schedule {
                after: Duration::from_millis(after),
                rate: 1.0,
            }
            .poll()
        };
        assert_eq!(poll(3_600_000), Duration::from_secs(30));
        assert_eq!(poll(60_000), Duration::from_secs(15));
        assert_eq!(poll(1_000), Duration::from_millis(250));
        assert_eq!(poll(10), Duration::from_millis(100));
    }
}
