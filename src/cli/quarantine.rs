//! `verdict quarantine`: deliveries that were signed but could not be used (an unknown event
//! type, a body that is not a JSON object or names no valid case, a header the body
//! contradicts, a final result with no decision) wait here until a newer Verdict, or an
//! operator who fixed the cause, can take them.

use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use verdict_bus::Hub;
use verdict_domain::{CaseStore, Recorded};
use verdict_ingest::{Ingest, Reprocessed};
use verdict_store::SeaStore;

use crate::config::{BusConfig, DatabaseConfig};

/// Quarantine subcommands.
#[derive(Debug, Subcommand)]
pub enum QuarantineCommand {
    /// Print waiting deliveries as JSON lines (metadata only, never the body).
    List {
        #[command(flatten)]
        db: DatabaseConfig,
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: u32,
    },
    /// Ingest every waiting delivery again, as of its original arrival, exactly as a webhook is
    /// ingested; those that are now usable are recorded (and published, so watchers on every
    /// replica see the change) and released, the others wait on with their current reason.
    Reprocess {
        #[command(flatten)]
        db: DatabaseConfig,
        #[command(flatten)]
        bus: BusConfig,
        /// At most this many.
        #[arg(long, default_value_t = 1000)]
        limit: u32,
    },
}

async fn open(db: &DatabaseConfig) -> anyhow::Result<SeaStore> {
    db.connect().await.context("could not open the database")
}

/// Runs a quarantine subcommand.
pub(super) async fn run(command: QuarantineCommand) -> anyhow::Result<()> {
    match command {
        QuarantineCommand::List { db, limit } => {
            let store = open(&db).await?;
            for item in store.quarantined(0, limit).await? {
                println!(
                    "{}",
                    json!({
                        "id": item.id,
                        "eventType": item.event_type,
                        "scanRef": item.scan_ref,
                        "reasonKind": item.reason_kind,
                        "reason": item.reason,
                        "receivedAt": item.received_at.to_rfc3339(),
                        "bodyBytes": item.body.len(),
                    })
                );
            }
        }
        QuarantineCommand::Reprocess { db, bus, limit } => {
            let store = Arc::new(open(&db).await?);
            let shutdown = CancellationToken::new();
            let bus = bus
                .connect(Hub::new(), shutdown.clone())
                .await
                .context("could not set up the change bus")?;
            let ingest = Ingest::new(store, bus.publisher);
            // One JSON line per item, as it is done.
            let result = ingest
                .reprocess_waiting(limit, |done| println!("{}", line(done)))
                .await;
            // Every applied change is published before the process ends.
            ingest.flush().await;
            shutdown.cancel();
            let summary = result.context("the reprocess stopped")?;
            eprintln!(
                "{} recorded, {} still quarantined, {} skipped",
                summary.recorded, summary.waiting, summary.skipped
            );
        }
    }
    Ok(())
}

/// What became of one item: its outcome and revision, or why it still waits or was skipped.
fn line(done: &Reprocessed) -> serde_json::Value {
    match done {
        Reprocessed::Ingested {
            id,
            recorded: Recorded::Quarantined { reason, .. },
        } => {
            json!({"id": id, "outcome": "quarantined", "reasonKind": reason.kind(), "reason": reason.to_string()})
        }
        Reprocessed::Ingested { id, recorded } => {
            let revision = recorded.case().map(|case| case.revision);
            json!({"id": id, "outcome": recorded.label(), "revision": revision})
        }
        // Another reprocess released it in the meantime.
        Reprocessed::Skipped { id, why } => json!({"id": id, "skipped": why}),
    }
}
