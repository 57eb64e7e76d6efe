//! Percentiles and medians.

use std::time::Duration;

/// The `q` quantile (0..=1) of `samples` in milliseconds, nearest rank; `None` when empty.
pub(crate) fn quantile_ms(samples: &mut [Duration], q: f64) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    samples.sort_unstable();
    let rank = ((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len());
    Some(samples[rank - 1].as_secs_f64() * 1000.0)
}

/// The median of some numbers (the lower middle one for an even count); `None` when empty.
pub(crate) fn median(mut values: Vec<f64>) -> Option<f64> {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[(values.len() - 1) / 2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_use_nearest_rank() {
        let mut s: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile_ms(&mut s, 0.5), Some(50.0));
        assert_eq!(quantile_ms(&mut s, 0.99), Some(99.0));
        assert_eq!(quantile_ms(&mut [], 0.5), None);
    }

    #[test]
    fn median_of_three_is_the_middle() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![]), None);
    }
}
