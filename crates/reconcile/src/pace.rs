//! The per-replica rate limit of lookups, and the back-off after failures.

use std::time::Duration;

use tokio::time::Instant;

/// At most `rate` lookups per second: a token bucket holding one token, so that any window of
/// `w` seconds sees at most `1 + rate × w` lookups, after an idle spell too.
#[derive(Debug)]
pub(crate) struct Pacer {
    interval: Duration,
    next: Option<Instant>,
}

impl Pacer {
    /// `rate` lookups per second (positive; a tiny rate means one lookup every very long while).
    pub(crate) fn new(rate: f64) -> Self {
        let interval = Duration::try_from_secs_f64(1.0 / rate).unwrap_or(Duration::MAX);
        Self {
            interval,
            next: None,
        }
    }

    /// Waits for the next token and takes it.
    pub(crate) async fn ready(&mut self) {
        if let Some(next) = self.next {
            tokio::time::sleep_until(next).await;
        }
        let now = Instant::now();
        self.next = Some(now.checked_add(self.interval).unwrap_or(now));
    }
}

/// The pause after a failed lookup: doubling from one second to five minutes, reset by a
/// lookup that got an answer. iDenfy forbids regular polling; failing must never make
/// Verdict ask faster.
#[derive(Debug)]
pub(crate) struct Backoff {
    next: Duration,
}

impl Backoff {
    pub(crate) const FIRST: Duration = Duration::from_secs(1);
    pub(crate) const MAX: Duration = Duration::from_secs(300);

    pub(crate) fn new() -> Self {
        Self { next: Self::FIRST }
    }

    /// The pause now, doubling the next one.
    pub(crate) fn pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::FIRST;
    }
}

/// How long after a lookup a case may be looked up again: `after` once the case changed, else
/// `after` × 2, 4, 8, then 16 for each lookup in a row that told nothing new or failed (a
/// case under a long manual review is asked ever less often).
pub(crate) fn case_interval(after: Duration, attempts: u32) -> Duration {
    after.saturating_mul(1 << attempts.min(4))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_pacer_spaces_tokens_by_the_rate() {
        let mut pacer = Pacer::new(4.0);
        let start = Instant::now();
        for _ in 0..9 {
            pacer.ready().await;
        }
        // 1 immediately, then one every 250 ms.
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        tokio::time::sleep(Duration::from_secs(10)).await;
        let idle = Instant::now();
        pacer.ready().await;
        assert_eq!(idle.elapsed(), Duration::ZERO, "after idling, at once");
        pacer.ready().await;
        assert_eq!(idle.elapsed(), Duration::from_millis(250), "but no burst");
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_rate_waits_long() {
        let mut pacer = Pacer::new(0.1);
        let start = Instant::now();
        pacer.ready().await;
        pacer.ready().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[test]
    fn backoff_doubles_up_to_five_minutes_and_resets() {
        let mut backoff = Backoff::new();
        let pauses: Vec<u64> = (0..11).map(|_| backoff.pause().as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
        backoff.reset();
        assert_eq!(backoff.pause(), Duration::from_secs(1));
    }

    #[test]
    fn a_case_is_asked_ever_less_often_up_to_sixteen_times_the_interval() {
        let after = Duration::from_secs(3600);
        let hours: Vec<u64> = (0..7)
            .map(|attempts| case_interval(after, attempts).as_secs() / 3600)
            .collect();
        assert_eq!(hours, [1, 2, 4, 8, 16, 16, 16]);
    }
}
