//! `verdict reconcile REF`: look one case up at iDenfy now and record the answer, as the
//! reconciler of `serve` does, straight into the database of `VERDICT_DATABASE_URL`, published
//! to the watchers of every replica (with the deployment's `VERDICT_REDIS_URL`).

use anyhow::Context;
use clap::Args;
use serde_json::json;
use verdict_domain::ScanRef;
use verdict_reconcile::{Reconciler, result_of};

use super::session::Session;
use crate::config::{BusConfig, DatabaseConfig, IdenfyApiConfig};

/// Arguments of `verdict reconcile`.
#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// The scanRef to look up.
    pub scan_ref: String,

    #[command(flatten)]
    pub db: DatabaseConfig,

    #[command(flatten)]
    pub bus: BusConfig,

    #[command(flatten)]
    pub api: IdenfyApiConfig,
}

/// One lookup; prints what it did as a JSON line, fails (exit 1) when nothing was recorded.
pub(super) async fn run(args: ReconcileArgs) -> anyhow::Result<()> {
    let scan_ref = ScanRef::new(args.scan_ref).context("not a scanRef iDenfy could have issued")?;
    let client = args.api.client().context("cannot ask iDenfy")?;
    let session = Session::open(&args.db, &args.bus).await?;
    let reconciler = Reconciler::new(client, session.ingest.clone());
    let outcome = reconciler.reconcile(&scan_ref).await;
    // A recorded change is published before the process ends.
    session.close().await;
    let recorded = outcome.with_context(|| format!("could not reconcile {scan_ref}"))?;
    let case = recorded.case();
    println!(
        "{}",
        json!({
            "scanRef": scan_ref.as_str(),
            "result": result_of(&recorded),
            "outcome": recorded.label(),
            "revision": case.map(|c| c.revision),
            "decision": case.map(|c| c.decision.as_str()),
            "final": case.map(|c| c.is_final),
            "overallStatus": case.and_then(|c| c.overall_status.clone()),
        })
    );
    Ok(())
}
