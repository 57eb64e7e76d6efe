//! `verdict quarantine`: deliveries that were signed but could not be used (an unknown event
//! type, a body we could not parse) wait here until a newer Verdict can take them.

use anyhow::Context;
use clap::Subcommand;
use serde_json::json;
use verdict_domain::{CaseStore, EventType, NewDelivery, Payload};
use verdict_store::SeaStore;

use crate::config::DatabaseConfig;

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
    /// Try every waiting delivery again; those that now parse are recorded and released.
    Reprocess {
        #[command(flatten)]
        db: DatabaseConfig,
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
            for item in store.quarantined(limit).await? {
                println!(
                    "{}",
                    json!({
                        "id": item.id,
                        "eventType": item.event_type,
                        "reason": item.reason,
                        "receivedAt": item.received_at.to_rfc3339(),
                        "bodyBytes": item.body.len(),
                    })
                );
            }
        }
        QuarantineCommand::Reprocess { db, limit } => {
            let store = open(&db).await?;
            let (mut recorded, mut waiting) = (0, 0);
            for item in store.quarantined(limit).await? {
                // The signature was checked when the delivery arrived; only the parse is retried.
                let parsed = EventType::from_header(item.event_type.as_deref())
                    .map_err(|e| e.to_string())
                    .and_then(|event| {
                        Payload::parse(&item.body)
                            .map(|payload| (event, payload))
                            .map_err(|e| e.to_string())
                    });
                match parsed {
                    Ok((event, payload)) => {
                        let result = store
                            .record(NewDelivery {
                                event,
                                payload,
                                body: item.body.clone(),
                                received_at: item.received_at,
                                traceparent: item.traceparent.clone(),
                            })
                            .await?;
                        store.release_quarantined(item.id).await?;
                        recorded += 1;
                        println!(
                            "{}",
                            json!({"id": item.id, "outcome": result.outcome.as_str(), "revision": result.case.revision})
                        );
                    }
                    Err(reason) => {
                        waiting += 1;
                        println!("{}", json!({"id": item.id, "stillQuarantined": reason}));
                    }
                }
            }
            eprintln!("{recorded} recorded, {waiting} still quarantined");
        }
    }
    Ok(())
}
