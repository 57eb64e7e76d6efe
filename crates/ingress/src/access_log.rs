//! The access line: one log line per request, written inside the request's span once the answer
//! is known, saying what the caller was told when it was refused.
//!
//! Refused signatures are sampled: at most one line a second, carrying how many were left out
//! since the previous one. A flood of forged (or misconfigured) webhooks must not become a flood
//! of log lines, and a JSON line with its span fields cost more than the refusal itself (about a
//! quarter of the service's CPU under `verdict-bench badsig`, perf). Every refusal is still
//! counted in `verdict.webhook.signature_failures`, which the alerts watch.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Why a request was refused, as the caller was told; set on the response by
/// [`crate::Error`]'s `IntoResponse` for 4xx answers.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    pub(crate) reason: String,
    /// A signature refusal, logged through the sampler.
    pub(crate) signature: bool,
}

/// How often a refused signature is logged at most.
const SIGNATURE_LINE_EVERY: Duration = Duration::from_secs(1);

static SIGNATURE_REFUSALS: Sampler = Sampler::new(SIGNATURE_LINE_EVERY);

/// Writes the request's access line (the caller enters the request span first).
pub(crate) fn write(status: u16, seconds: f64, refusal: Option<&Refusal>) {
    let latency_ms = seconds * 1000.0;
    match refusal {
        Some(Refusal {
            reason,
            signature: true,
        }) => {
            if let Some(suppressed) = SIGNATURE_REFUSALS.admit(since_start()) {
                tracing::warn!(status, latency_ms, %reason, suppressed, "webhook signature refused");
            }
        }
        Some(Refusal { reason, .. }) => {
            tracing::info!(status, latency_ms, %reason, "request refused");
        }
        None => tracing::info!(status, latency_ms, "request finished"),
    }
}

/// Time on a monotonic clock, as the sampler counts it.
fn since_start() -> Duration {
    static START: LazyLock<Instant> = LazyLock::new(Instant::now);
    START.elapsed()
}

/// Lets one event through per period and counts the others. Lock-free: every refused request
/// passes here, from every worker thread.
#[derive(Debug)]
struct Sampler {
    period_nanos: u64,
    /// When the next event may be written, in nanoseconds on the caller's clock.
    next_nanos: AtomicU64,
    /// Events turned away since the last one written.
    suppressed: AtomicU64,
}

impl Sampler {
    const fn new(period: Duration) -> Self {
        Self {
            period_nanos: period.as_nanos() as u64,
            next_nanos: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(events left out since the last admitted one)` when this event is to be written.
    fn admit(&self, now: Duration) -> Option<u64> {
        let now = u64::try_from(now.as_nanos()).unwrap_or(u64::MAX);
        let next = self.next_nanos.load(Ordering::Relaxed);
        let won = now >= next
            && self
                .next_nanos
                .compare_exchange(
                    next,
                    now.saturating_add(self.period_nanos),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok();
        if won {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_event_is_written_then_one_per_period_with_the_count_left_out() {
        let sampler = Sampler::new(SECOND);
        assert_eq!(sampler.admit(Duration::ZERO), Some(0));
        for ms in [1, 500, 999] {
            assert_eq!(sampler.admit(Duration::from_millis(ms)), None);
        }
        assert_eq!(sampler.admit(SECOND), Some(3));
        assert_eq!(sampler.admit(SECOND), None);
        // A quiet spell: the next event is written at once, with the one left out before it.
        assert_eq!(sampler.admit(Duration::from_secs(60)), Some(1));
    }

    #[test]
    fn concurrent_events_are_each_either_written_or_counted() {
        let sampler = Sampler::new(SECOND);
        // Per thread: lines written, and the left-out counts those lines carried. A loser that
        // counts itself before the winner collects is carried by the winner's own line.
        let (written, carried) = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        (0..1000)
                            .filter_map(|_| sampler.admit(Duration::ZERO))
                            .fold((0_u64, 0_u64), |(n, sum), left_out| (n + 1, sum + left_out))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap())
                .fold((0, 0), |(n, sum), (tn, tsum)| (n + tn, sum + tsum))
        });
        assert_eq!(written, 1);
        let rest = sampler
            .admit(SECOND)
            .expect("a second later a line is written");
        assert_eq!(
            carried + rest,
            3999,
            "every event left out is reported once"
        );
    }
}
