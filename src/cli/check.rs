//! `verdict check`: everything `verdict serve` needs, checked without serving — before a
//! rollout, or as the Kubernetes init container that keeps a pod from starting while its
//! configuration, files, database or Redis are not ready.
//!
//! It reads the same settings as `serve` and runs the same loading code as `App::build` (the
//! gRPC TLS and credential files, the reconciliation client), then reaches the database (are
//! all migrations applied?) and Redis. One line per check; a failed check does not stop the
//! others, and the exit status is non-zero naming every check that failed.

use std::fmt::Display;
use std::time::Duration;

use anyhow::{anyhow, bail};
use clap::{Args, ValueEnum};
use verdict_store::SeaStore;
use verdict_store::migration::{Migrator, MigratorTrait as _};

use crate::Config;
use crate::app::{grpc_security, reconciliation};

/// How long the database and Redis may take to answer.
const REACH_TIMEOUT: Duration = Duration::from_secs(10);

/// Arguments of `verdict check`: the settings of `serve`, and what not to check.
#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub config: Config,

    /// A check to leave out (repeatable). An init container skips `redis`: serving does not
    /// need Redis (watchers fall back to the periodic re-read), so its outage must not keep
    /// pods from starting.
    #[arg(long, value_enum)]
    pub skip: Vec<Skippable>,
}

/// The checks that reach outside the process, which a caller may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Skippable {
    /// The database and its migrations.
    Database,
    /// Redis.
    Redis,
}

/// Runs every check, prints one line each, fails naming those that failed.
pub(super) async fn run(args: CheckArgs) -> anyhow::Result<()> {
    let CheckArgs { config, skip } = args;
    let mut report = Report::default();

    match config.validate() {
        Ok(()) => report.ok("configuration", configuration(&config)),
        Err(error) => report.fail("configuration", error),
    }
    match grpc_security(&config) {
        Ok((tls, credentials)) => {
            let tls = match &tls {
                None => "no TLS",
                Some(tls) if tls.verifies_clients() => "TLS with client certificates",
                Some(_) => "TLS",
            };
            let auth = match credentials.is_required() {
                true => "credentials required",
                false => "no authentication",
            };
            report.ok("grpc tls and credentials", format!("{tls}, {auth}"));
        }
        Err(error) => report.fail("grpc tls and credentials", error),
    }
    match reconciliation(&config) {
        Ok(None) => report.ok("reconciliation", "off (VERDICT_RECONCILE_AFTER unset)"),
        Ok(Some((client, schedule))) => report.ok(
            "reconciliation",
            format!(
                "open cases unchanged for {} are looked up at {}, at most {}/s",
                spelled(schedule.after),
                client.endpoint(),
                schedule.rate
            ),
        ),
        Err(error) => report.fail("reconciliation", error),
    }

    if skip.contains(&Skippable::Database) {
        report.skip("database");
        report.skip("migrations");
    } else {
        database(&mut report, &config).await;
    }
    if skip.contains(&Skippable::Redis) {
        report.skip("redis");
    } else {
        match config.bus.ping(REACH_TIMEOUT).await {
            Ok(true) => report.ok(
                "redis",
                format!("reachable, channel {:?}", config.bus.redis_channel),
            ),
            Ok(false) => report.ok("redis", "not configured: in-process bus, one replica"),
            Err(error) => report.fail("redis", error),
        }
    }

    if !report.failed.is_empty() {
        bail!("check failed: {}", report.failed.join(", "));
    }
    Ok(())
}

/// The database answers, and every migration of this binary is applied.
async fn database(report: &mut Report, config: &Config) {
    match within(config.database.connect()).await {
        Ok(store) => {
            let backend = match store.backend() {
                verdict_store::Backend::Sqlite => "SQLite",
                verdict_store::Backend::Postgres => "PostgreSQL",
            };
            report.ok("database", format!("{backend} answers"));
            migrations(report, &store, config.migrate_on_start).await;
        }
        Err(error) => {
            report.fail("database", error);
            report.fail(
                "migrations",
                anyhow!("not checked: the database is not reachable"),
            );
        }
    }
}

/// A duration as it would be configured: `6h`, `90m`, `45s`, `250ms`.
fn spelled(duration: Duration) -> String {
    let (secs, millis) = (duration.as_secs(), duration.subsec_millis());
    match (secs, millis) {
        (s, 0) if s > 0 && s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s > 0 && s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        _ => format!("{}ms", duration.as_millis()),
    }
}

/// What the configuration amounts to, without a secret.
fn configuration(config: &Config) -> String {
    let keys = config.webhook_keys().len();
    let signatures = match keys {
        0 => "webhook signatures NOT checked (--allow-unsigned)".to_owned(),
        1 => "1 webhook signing key".to_owned(),
        n => format!("{n} webhook signing keys"),
    };
    format!(
        "{signatures}; http {}, grpc {}, admin {}",
        config.http_addr, config.grpc_addr, config.admin_addr
    )
}

/// Every migration of this binary applied, and none it does not know.
async fn migrations(report: &mut Report, store: &SeaStore, migrate_on_start: bool) {
    match within(async {
        Migrator::get_pending_migrations(store.connection())
            .await
            .map_err(anyhow::Error::from)
    })
    .await
    {
        Ok(pending) if pending.is_empty() => report.ok("migrations", "all applied"),
        Ok(pending) => {
            let names: Vec<&str> = pending.iter().map(|m| m.name()).collect();
            let named = match names.as_slice() {
                [first, .., last] if names.len() > 3 => format!("{first} … {last}"),
                _ => names.join(", "),
            };
            let pending = format!("{} pending ({named})", names.len());
            match migrate_on_start {
                true => report.ok(
                    "migrations",
                    format!("{pending}, applied when serve starts (VERDICT_MIGRATE_ON_START)"),
                ),
                false => report.fail(
                    "migrations",
                    anyhow!("{pending}: run `verdict migrate` (VERDICT_MIGRATE_ON_START is false)"),
                ),
            }
        }
        // Typically a database migrated by a newer release than this binary.
        Err(error) => report.fail("migrations", error),
    }
}

/// Awaits `fut` under [`REACH_TIMEOUT`].
async fn within<T, E>(fut: impl Future<Output = Result<T, E>>) -> anyhow::Result<T>
where
    E: Into<anyhow::Error>,
{
    match tokio::time::timeout(REACH_TIMEOUT, fut).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => bail!("no answer within {REACH_TIMEOUT:?}"),
    }
}

/// The lines printed so far and the checks that failed.
#[derive(Debug, Default)]
struct Report {
    failed: Vec<&'static str>,
}

impl Report {
    fn ok(&mut self, check: &'static str, detail: impl Display) {
        println!("ok    {check}: {detail}");
    }

    fn skip(&mut self, check: &'static str) {
        println!("skip  {check}: --skip");
    }

    /// `error`'s whole chain on one line: `{:#}` of an anyhow error.
    fn fail(&mut self, check: &'static str, error: impl Into<anyhow::Error>) {
        println!("FAIL  {check}: {:#}", error.into());
        self.failed.push(check);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spelled_as_configured() {
        for (ms, spelled_as) in [
            (21_600_000, "6h"),
            (5_400_000, "90m"),
            (45_000, "45s"),
            (250, "250ms"),
            (1_500, "1500ms"),
        ] {
            assert_eq!(spelled(Duration::from_millis(ms)), spelled_as);
        }
    }
}
