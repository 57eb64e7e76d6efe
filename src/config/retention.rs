//! How long personal data is kept (DESIGN §11).

use std::time::Duration;

use clap::Args;

use super::parse_duration;

/// The retention job's settings.
#[derive(Debug, Clone, Args)]
pub struct RetentionConfig {
    /// Erase the person and every raw body of cases that became final longer ago than this
    /// (e.g. `90d`), and the bodies of quarantined deliveries of that age that belong to no
    /// case; decisions, statuses and history metadata stay. Unset keeps everything.
    #[arg(long, env = "VERDICT_RETENTION", value_parser = parse_positive_duration)]
    pub retention: Option<Duration>,

    /// How often each replica runs the retention job (only one at a time does the work).
    #[arg(long, env = "VERDICT_PURGE_INTERVAL", default_value = "10m",
        value_parser = parse_positive_duration)]
    pub purge_interval: Duration,
}

impl Default for RetentionConfig {
    /// What clap parses from an empty command line: keep everything.
    fn default() -> Self {
        Self {
            retention: None,
            purge_interval: Duration::from_secs(600),
        }
    }
}

/// A duration above zero. A retention of zero would erase every final case at once, which is
/// more likely a mistake than a wish (unset keeps everything; a short retention is explicit).
pub fn parse_positive_duration(raw: &str) -> Result<Duration, String> {
    match parse_duration(raw)? {
        Duration::ZERO => Err(format!("{raw:?} is zero: give a duration above zero")),
        duration => Ok(duration),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(flatten)]
        retention: RetentionConfig,
    }

    fn parse(args: &[&str]) -> Result<RetentionConfig, clap::Error> {
        Wrapper::try_parse_from(std::iter::once("verdict").chain(args.iter().copied()))
            .map(|w| w.retention)
    }

    #[test]
    fn unset_keeps_everything_and_the_job_runs_every_ten_minutes() {
        let c = parse(&[]).unwrap();
        assert_eq!(c.retention, None);
        assert_eq!(c.purge_interval, Duration::from_secs(600));
    }

    #[test]
    fn retention_takes_days() {
        let c = parse(&["--retention", "90d", "--purge-interval", "1h"]).unwrap();
        assert_eq!(c.retention, Some(Duration::from_secs(90 * 86_400)));
        assert_eq!(c.purge_interval, Duration::from_secs(3600));
    }

    #[test]
    fn zero_is_refused_by_name() {
        for args in [["--retention", "0d"], ["--purge-interval", "0s"]] {
            let err = parse(&args).unwrap_err().to_string();
            assert!(err.contains(args[0]) && err.contains("zero"), "{err}");
        }
    }
}
