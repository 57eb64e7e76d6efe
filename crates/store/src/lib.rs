//! Storage of Verdict's cases, deliveries, change feed and quarantine with SeaORM, on SQLite or
//! PostgreSQL through the same code.
//!
//! [`SeaStore`] implements [`verdict_domain::CaseStore`] and [`verdict_domain::PurgeStore`].
//! The schema belongs to
//! `verdict-migration`; [`entity`] mirrors it for queries. Rows become domain values only in
//! `convert`.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};
use verdict_domain::{
    Backlog, BacklogStore, Case, CaseEvent, CasePage, CaseQuery, CaseStore, ChangedCases, Claim,
    Cursor, DueQuery, ExpiredBatch, FeedChange, FeedQuery, NewDelivery, NewQuarantine, NextLookup,
    Purge, PurgeStore, QuarantineItem, ReconcileQueue, Recorded,
};

mod by_key;
mod check_connection;
mod connect;
mod convert;
pub mod entity;
mod error;
mod feed;
mod purge;
mod quarantine;
mod read;
mod reconcile;
mod record;
mod span;
mod sqlite_file;
mod sqlite_write;
mod write_gate;

pub use connect::{DEFAULT_MAX_CONNECTIONS, StoreOptions};
pub use error::Error;
/// The schema this store expects, so callers can roll it back or inspect it without depending on
/// `verdict-migration` themselves.
pub use verdict_migration as migration;

/// The database behind a [`SeaStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one replica.
    Sqlite,
    /// Shared by many replicas.
    Postgres,
}

/// The [`CaseStore`] on a SeaORM connection pool. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SeaStore {
    db: DatabaseConnection,
    backend: Backend,
    /// Turns for SQLite's write lock, so waiting writers hold no connection, and for batches
    /// of deliveries on both backends.
    writes: write_gate::WriteGate,
    /// What the write path's CLIENT spans say about the database.
    target: span::DbTarget,
    /// The `GetCase` cache's check runs on a connection of its own.
    checks: std::sync::Arc<check_connection::CheckConnection>,
}

/// A quarantine item with its bookkeeping, as an operator inspects it.
#[derive(Debug, Clone)]
pub struct QuarantineEntry {
    /// The item; its `Debug` leaves the body out.
    pub item: QuarantineItem,
    /// When a reprocess recorded it; `None` while it waits.
    pub released_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Hex SHA-256 of the body, to compare with a saved copy without reading it.
    pub body_sha256: Option<String>,
}

impl SeaStore {
    /// One quarantine item by id, released or not: what `verdict quarantine show` prints.
    pub async fn quarantine_entry(&self, id: i64) -> Result<Option<QuarantineEntry>, Error> {
        quarantine::entry(&self.db, id).await
    }

    /// The pool, for tools and tests that need to look underneath.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

/// A write transaction, after this writer's turn at the gate (keep the turn until the
/// transaction ends). On SQLite it starts `IMMEDIATE`, taking the single write lock at once, so
/// it never has to upgrade from reader to writer (which fails with `SQLITE_BUSY` whatever the
/// busy timeout; see `record`); PostgreSQL ignores the mode.
async fn begin_write(
    db: &DatabaseConnection,
    gate: &write_gate::WriteGate,
) -> Result<(write_gate::Turn, DatabaseTransaction), Error> {
    let turn = gate.turn().await;
    let txn = begin_immediate(turn.connection(db)).await?;
    Ok((turn, txn))
}

/// A write transaction on `connection`, which the caller's turn gave it (see [`begin_write`]).
async fn begin_immediate(connection: &DatabaseConnection) -> Result<DatabaseTransaction, Error> {
    Ok(connection
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?)
}

#[async_trait]
impl CaseStore for SeaStore {
    async fn record(&self, delivery: NewDelivery) -> Result<Recorded, verdict_domain::Error> {
        Ok(record::record(&self.db, &self.writes, &self.target, delivery).await?)
    }

    async fn quarantine(&self, item: NewQuarantine) -> Result<i64, verdict_domain::Error> {
        Ok(quarantine::insert(&self.db, &self.writes, &self.target, item).await?)
    }

    async fn case(
        &self,
        scan_ref: &str,
        with_person: bool,
    ) -> Result<Option<Case>, verdict_domain::Error> {
        Ok(read::case(&self.db, scan_ref, with_person).await?)
    }

    async fn latest_case_of_client(
        &self,
        client_id: &str,
        with_person: bool,
    ) -> Result<Option<Case>, verdict_domain::Error> {
        Ok(read::latest_case_of_client(&self.db, client_id, with_person).await?)
    }

    async fn history(
        &self,
        scan_ref: &str,
        limit: u32,
    ) -> Result<Vec<CaseEvent>, verdict_domain::Error> {
        Ok(read::history(&self.db, scan_ref, limit).await?)
    }

    async fn list_cases(&self, query: &CaseQuery) -> Result<CasePage, verdict_domain::Error> {
        Ok(read::list_cases(&self.db, query).await?)
    }

    async fn revisions(
        &self,
        scan_refs: &[String],
    ) -> Result<Vec<(String, u64)>, verdict_domain::Error> {
        Ok(read::revisions(&self.db, scan_refs).await?)
    }

    async fn changes_after(
        &self,
        query: &FeedQuery,
    ) -> Result<Vec<FeedChange>, verdict_domain::Error> {
        Ok(feed::changes_after(&self.db, query).await?)
    }

    async fn feed_head(&self) -> Result<Cursor, verdict_domain::Error> {
        Ok(feed::head(&self.db).await?)
    }

    async fn changed_cases(
        &self,
        after: Cursor,
        limit: u32,
    ) -> Result<ChangedCases, verdict_domain::Error> {
        Ok(feed::changed_cases(&self.db, &self.checks, after, limit).await?)
    }

    async fn quarantined(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<QuarantineItem>, verdict_domain::Error> {
        Ok(quarantine::pending(&self.db, after, limit).await?)
    }

    async fn ping(&self) -> Result<(), verdict_domain::Error> {
        Ok(read::ping(&self.db).await?)
    }
}

#[async_trait]
impl PurgeStore for SeaStore {
    async fn purge(
        &self,
        scan_ref: &str,
        traceparent: Option<String>,
    ) -> Result<Option<Purge>, verdict_domain::Error> {
        Ok(purge::purge(&self.db, &self.writes, &self.target, scan_ref, traceparent).await?)
    }

    async fn purge_expired(
        &self,
        cutoff: DateTime<Utc>,
        limit: u32,
        traceparent: Option<String>,
    ) -> Result<Option<ExpiredBatch>, verdict_domain::Error> {
        Ok(purge::purge_expired(
            &self.db,
            &self.writes,
            &self.target,
            cutoff,
            limit,
            traceparent,
        )
        .await?)
    }
}

#[async_trait]
impl ReconcileQueue for SeaStore {
    async fn claim_due(&self, query: DueQuery) -> Result<Option<Claim>, verdict_domain::Error> {
        Ok(reconcile::claim_due(&self.db, query).await?)
    }

    async fn settle(
        &self,
        scan_ref: &str,
        next: Option<NextLookup>,
    ) -> Result<(), verdict_domain::Error> {
        Ok(reconcile::settle(&self.db, scan_ref, next).await?)
    }
}

#[async_trait]
impl BacklogStore for SeaStore {
    async fn backlog(&self) -> Result<Backlog, verdict_domain::Error> {
        Ok(reconcile::backlog(&self.db).await?)
    }
}
