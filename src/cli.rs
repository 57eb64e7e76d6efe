//! The `verdict` command line: one binary to serve, migrate, sign test webhooks, read and watch
//! cases, reprocess quarantined deliveries, erase personal data, and the operator's tools:
//! check a configuration, replay a saved body, reconcile a case with iDenfy.

mod check;
mod client;
mod json;
mod purge;
mod quarantine;
mod reconcile;
mod replay;
mod serve;
mod session;
mod sign;

use clap::{Parser, Subcommand};

use crate::config::{Config, DatabaseConfig};

/// Verdict turns iDenfy KYC webhooks into a live, queryable, streamable record of every case.
#[derive(Debug, Parser)]
#[command(name = "verdict", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: webhook ingress over HTTP, CaseService over gRPC.
    Serve(Box<Config>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseConfig),
    /// Print the Idenfy-Signature of a body file, to post test webhooks.
    Sign(sign::SignArgs),
    /// Print one case as JSON (a gRPC client of a running Verdict).
    Get(client::GetArgs),
    /// Stream a case, or every change, as JSON lines (a gRPC client of a running Verdict).
    Watch(client::WatchArgs),
    /// List, show or reprocess deliveries that were signed but could not be used.
    #[command(subcommand)]
    Quarantine(quarantine::QuarantineCommand),
    /// Erase personal data: one retention pass (--older-than) or one case (--scan-ref).
    Purge(purge::PurgeArgs),
    /// Check what `serve` needs without serving: configuration, TLS and credential files,
    /// database and migrations, Redis; one line each, non-zero exit naming what failed.
    Check(Box<check::CheckArgs>),
    /// Feed a saved webhook body through the ingest path into the database (duplicates stay
    /// duplicates), its signature checked unless --trusted.
    Replay(Box<replay::ReplayArgs>),
    /// Look one case up at iDenfy now and record the answer, as the reconciler does.
    Reconcile(Box<reconcile::ReconcileArgs>),
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Serve(config) => serve::run(*config).await,
            Command::Migrate(db) => serve::migrate(db).await,
            Command::Sign(args) => sign::run(args),
            Command::Get(args) => client::get(args).await,
            Command::Watch(args) => client::watch(args).await,
            Command::Quarantine(cmd) => quarantine::run(cmd).await,
            Command::Purge(args) => purge::run(args).await,
            Command::Check(args) => check::run(*args).await,
            Command::Replay(args) => replay::run(*args).await,
            Command::Reconcile(args) => reconcile::run(*args).await,
        }
    }
}
