//! `verdict quarantine`: deliveries that were signed but could not be used (an unknown event
//! type, a body that is not a JSON object or names no valid case, a header the body
//! contradicts, a final result with no decision) wait here until a newer Verdict, or an
//! operator who fixed the cause, can take them.

use anyhow::{Context, bail};
use base64::Engine as _;
use clap::Subcommand;
use serde_json::{Value, json};
use verdict_domain::{CaseStore, Recorded};
use verdict_ingest::Reprocessed;
use verdict_store::SeaStore;

use super::session::Session;
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
    /// Print one delivery's metadata and reason as JSON (released or not); its body, which
    /// holds personal data, only with --reveal.
    Show {
        /// The item's id, as `list` prints it.
        id: i64,
        /// Also print the body (as text when it is UTF-8, else as `bodyBase64`).
        #[arg(long)]
        reveal: bool,
        #[command(flatten)]
        db: DatabaseConfig,
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
        QuarantineCommand::Show { id, reveal, db } => {
            let store = open(&db).await?;
            let Some(entry) = store.quarantine_entry(id).await? else {
                bail!("there is no quarantine item {id}");
            };
            let item = &entry.item;
            let mut shown = json!({
                "id": item.id,
                "eventType": item.event_type,
                "scanRef": item.scan_ref,
                "reasonKind": item.reason_kind,
                "reason": item.reason,
                "receivedAt": item.received_at.to_rfc3339(),
                "releasedAt": entry.released_at.map(|at| at.to_rfc3339()),
                "traceparent": item.traceparent,
                "bodyBytes": item.body.len(),
                "bodySha256": entry.body_sha256,
            });
            if reveal {
                eprintln!("the body holds personal data: keep this output out of tickets and logs");
                shown["body"] = match std::str::from_utf8(&item.body) {
                    Ok(text) => json!(text),
                    Err(_) => Value::Null,
                };
                if shown["body"].is_null() {
                    shown["bodyBase64"] =
                        json!(base64::engine::general_purpose::STANDARD.encode(&item.body));
                }
            }
            println!("{shown}");
        }
        QuarantineCommand::Reprocess { db, bus, limit } => {
            let session = Session::open(&db, &bus).await?;
            // One JSON line per item, as it is done.
            let result = session
                .ingest
                .reprocess_waiting(limit, |done| println!("{}", line(done)))
                .await;
            // Every applied change is published before the process ends.
            session.close().await;
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
