//! `verdict purge`: erase personal data now — one retention pass (`--older-than`, what the
//! Kubernetes CronJob runs) or one case (`--scan-ref`, an erasure request). The same use case
//! as the retention job and `AdminService.PurgeCase`, against the database named by
//! `VERDICT_DATABASE_URL`; each purge is published, so watchers on every replica see it.

use std::time::Duration;

use anyhow::Context;
use clap::{ArgGroup, Args};
use serde_json::json;
use verdict_domain::Case;
use verdict_lifecycle::Lifecycle;

use super::session::Session;
use crate::config::{BusConfig, DatabaseConfig, parse_positive_duration};

/// Arguments of `verdict purge`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("what").required(true).args(["older_than", "scan_ref"])))]
pub struct PurgeArgs {
    /// One retention pass: erase the person and raw bodies of every case that became final
    /// longer ago than this (e.g. `90d`), and the bodies of quarantined deliveries of that age
    /// that belong to no case.
    #[arg(long, value_parser = parse_positive_duration)]
    pub older_than: Option<Duration>,

    /// Erase the person and raw bodies of this one case now, final or not.
    #[arg(long)]
    pub scan_ref: Option<String>,

    #[command(flatten)]
    pub db: DatabaseConfig,

    #[command(flatten)]
    pub bus: BusConfig,
}

/// Purges, printing one JSON line per case purged; fails (exit 1) for an unknown scanRef.
pub(super) async fn run(args: PurgeArgs) -> anyhow::Result<()> {
    let session = Session::open(&args.db, &args.bus).await?;
    let result = purge(&session.lifecycle, &args).await;
    // Every purge is published before the process ends.
    session.close().await;
    result
}

async fn purge(lifecycle: &Lifecycle, args: &PurgeArgs) -> anyhow::Result<()> {
    match (&args.scan_ref, args.older_than) {
        (Some(scan_ref), _) => {
            let purge = lifecycle.purge_case(scan_ref).await?;
            println!("{}", line(&purge.case, purge.position.is_some()));
            if purge.position.is_none() {
                eprintln!("{scan_ref} was purged before, nothing was left to erase");
            }
        }
        (None, Some(older_than)) => {
            let summary = lifecycle
                .retention_pass(older_than, |case| println!("{}", line(case, true)))
                .await
                .context("the retention pass failed")?;
            eprintln!(
                "{} cases purged, {} quarantine bodies erased",
                summary.purged, summary.quarantine_erased
            );
            if summary.busy {
                eprintln!(
                    "another process is running a retention pass and carries on with the rest"
                );
            }
        }
        (None, None) => anyhow::bail!("say what to purge: --older-than D or --scan-ref REF"),
    }
    Ok(())
}

/// `{"scanRef":…,"revision":…,"purgedAt":…,"erased":…}`: what was purged, never what it held.
fn line(case: &Case, erased: bool) -> serde_json::Value {
    json!({
        "scanRef": case.scan_ref,
        "revision": case.revision,
        "purgedAt": case.purged_at.map(|at| at.to_rfc3339()),
        "erased": erased,
    })
}
