//! `verdict replay FILE --event-type T`: feed a saved webhook body through the same ingest
//! path as the webhook endpoint, straight into the database of `VERDICT_DATABASE_URL`, and
//! publish what it changes. The signature is checked against the configured keys unless
//! `--trusted` says the file is known to be genuine. A replay of a stored body is a duplicate,
//! exactly as the webhook would answer it.

use std::path::PathBuf;

use anyhow::{Context, bail};
use chrono::Utc;
use clap::Args;
use secrecy::{ExposeSecret as _, SecretString};
use serde_json::json;
use verdict_domain::{Recorded, SignatureVerifier, UnverifiedWebhook};
use verdict_ingest::Arrival;

use super::session::Session;
use crate::config::{BusConfig, DatabaseConfig, parse_secret, split_keys};

/// Arguments of `verdict replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The body, byte for byte as iDenfy sent it (`-` reads standard input).
    pub file: PathBuf,

    /// The `Idenfy-Event-Type` it came with (`IDENTIFICATION_MANUAL_FINISHED`, ...).
    #[arg(long)]
    pub event_type: String,

    /// Its `Idenfy-Signature`, checked against VERDICT_WEBHOOK_SECRET.
    #[arg(long, conflicts_with = "trusted")]
    pub signature: Option<String>,

    /// Skip the signature check: only for a body known to be genuine (one Verdict stored, a
    /// copy from iDenfy's dashboard).
    #[arg(long)]
    pub trusted: bool,

    /// iDenfy webhook signing keys, comma-separated.
    #[arg(long, env = "VERDICT_WEBHOOK_SECRET", hide_env_values = true, value_parser = parse_secret)]
    pub webhook_secret: Option<SecretString>,

    #[command(flatten)]
    pub db: DatabaseConfig,

    #[command(flatten)]
    pub bus: BusConfig,
}

/// Ingests the file; prints what it became as a JSON line (as the webhook would answer).
pub(super) async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    if !args.trusted && args.signature.is_none() {
        bail!(
            "give the body's --signature (checked against VERDICT_WEBHOOK_SECRET), or --trusted for a body known to be genuine"
        );
    }
    let body = super::sign::read_body(&args.file)?;
    let verifier = match (args.trusted, &args.webhook_secret) {
        (true, _) => SignatureVerifier::allow_unsigned(),
        (false, Some(secret)) => {
            let keys = split_keys(secret.expose_secret());
            if keys.is_empty() {
                bail!("VERDICT_WEBHOOK_SECRET holds no key: set the signing keys, comma-separated");
            }
            SignatureVerifier::new(keys)
        }
        (false, None) => bail!(
            "no key to check --signature against: set VERDICT_WEBHOOK_SECRET, or pass --trusted for a body known to be genuine"
        ),
    };
    let webhook = verifier
        .verify(UnverifiedWebhook {
            body: body.into(),
            signature: args.signature,
            event_type: Some(args.event_type),
        })
        .context("refusing to replay: the signature does not check out")?;

    let session = Session::open(&args.db, &args.bus).await?;
    let recorded = session
        .ingest
        .ingest(Arrival {
            webhook,
            received_at: Utc::now(),
            traceparent: None,
        })
        .await;
    // A recorded change is published before the process ends.
    session.close().await;
    let recorded = recorded.context("could not store the body")?;
    let line = match &recorded {
        Recorded::Quarantined { id, reason } => json!({
            "outcome": recorded.label(),
            "quarantineId": id,
            "kind": reason.kind(),
            "reason": reason.to_string(),
        }),
        _ => json!({
            "outcome": recorded.label(),
            "scanRef": recorded.case().map(|c| c.scan_ref.clone()),
            "revision": recorded.case().map(|c| c.revision),
        }),
    };
    println!("{line}");
    Ok(())
}
