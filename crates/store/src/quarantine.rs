//! The quarantine: signed deliveries that could not be used, kept until reprocessed.
//!
//! Items are written here directly (what triage refuses without a database) or from inside the
//! record transaction (what the state machine refuses, see `record`), which also claims, releases
//! or rewords the item a reprocess comes from.
//!
//! Every item keeps the case its body names (`scan_ref`), so that a purge of that case erases
//! the item's body too (see `purge`); an item that arrives for a case already purged is kept
//! without its body from the start.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, Func, Query, UpdateStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{
    Fingerprint, NewQuarantine, QuarantineItem, QuarantineReason, named_scan_ref,
};
use verdict_telemetry::TRACE_ONLY;

use crate::by_key::ByKey as _;
use crate::entity::{case, quarantine};
use crate::span::{self, DbTarget};
use crate::write_gate::WriteGate;
use crate::{Error, convert};

/// Keeps a delivery, in a CLIENT span `INSERT quarantine` like the record path's.
pub(crate) async fn insert(
    db: &DatabaseConnection,
    gate: &WriteGate,
    target: &DbTarget,
    item: NewQuarantine,
) -> Result<i64, Error> {
    let span = tracing::info_span!(
        target: TRACE_ONLY,
        "store.quarantine",
        otel.name = "INSERT quarantine",
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = target.system,
        db.namespace = target.namespace.as_deref(),
        db.operation.name = "INSERT",
        db.collection.name = "quarantine",
        server.address = target.server_address.as_deref(),
        server.port = target.server_port,
        error.type = Empty,
    );
    let inserted = insert_checked(db, gate, item)
        .instrument(span.clone())
        .await;
    if let Err(error) = &inserted {
        span::record_error(&span, error);
    }
    inserted
}

/// Inserts an item in a transaction of its own that first reads whether the case its body
/// names is purged. On PostgreSQL the read takes a share lock on the case row, so a purge of
/// that case either waits for this insert (and then erases the new row with the others) or
/// commits first (and this insert sees it); SQLite serialises the two anyway.
async fn insert_checked(
    db: &DatabaseConnection,
    gate: &WriteGate,
    item: NewQuarantine,
) -> Result<i64, Error> {
    let fingerprint = Fingerprint::of(&item.body);
    let scan_ref = named_scan_ref(&item.body).map(String::from);
    let (_turn, txn) = crate::begin_write(db, gate).await?;
    let purged = match &scan_ref {
        Some(scan_ref) => case::Entity::find_by_id(scan_ref.as_str())
            .select_only()
            .column(case::Column::PurgedAt)
            .lock_shared()
            .into_tuple::<Option<DateTime<Utc>>>()
            .by_key(&txn)
            .await?
            .flatten()
            .is_some(),
        None => false,
    };
    let id = insert_row(&txn, item, fingerprint, scan_ref, purged).await?;
    txn.commit().await?;
    Ok(id)
}

/// The insert itself, inside a transaction that knows whether the case the body names
/// (`scan_ref`) is `purged`: then the row keeps the hashes only and waits for nothing.
pub(crate) async fn insert_row(
    db: &impl ConnectionTrait,
    item: NewQuarantine,
    fingerprint: Fingerprint,
    scan_ref: Option<String>,
    purged: bool,
) -> Result<i64, Error> {
    let purged_at = purged.then(crate::purge::now);
    let row = convert::quarantine_to_row(item, fingerprint, scan_ref, purged_at);
    let inserted = quarantine::Entity::insert(row).exec(db).await?;
    Ok(inserted.last_insert_id)
}

/// Still waiting, oldest first: up to `limit` items with an id above `after`.
pub(crate) async fn pending(
    db: &DatabaseConnection,
    after: i64,
    limit: u32,
) -> Result<Vec<QuarantineItem>, Error> {
    let rows = quarantine::Entity::find()
        .filter(quarantine::Column::ReleasedAt.is_null())
        .filter(quarantine::Column::Id.gt(after))
        .order_by_asc(quarantine::Column::Id)
        .limit(u64::from(limit))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(convert::quarantine_from_row).collect())
}

/// Locks the items of the given cases, in id order, for the rest of the transaction: a purge
/// takes them before the case rows, as a reprocess does (the lock order is quarantine item →
/// case row → counter row).
pub(crate) async fn lock_of_cases(
    txn: &impl ConnectionTrait,
    scan_refs: &[String],
) -> Result<(), Error> {
    quarantine::Entity::find()
        .select_only()
        .column(quarantine::Column::Id)
        .filter(quarantine::Column::ScanRef.is_in(scan_refs.iter().map(String::as_str)))
        .order_by_asc(quarantine::Column::Id)
        .lock_exclusive()
        .into_tuple::<i64>()
        .all(txn)
        .await?;
    Ok(())
}

/// Erases the bodies of the given cases' items that still have one; they no longer wait.
/// Returns the case of each item erased.
pub(crate) async fn erase_of_cases(
    txn: &impl ConnectionTrait,
    scan_refs: &[String],
    at: DateTime<Utc>,
) -> Result<Vec<String>, Error> {
    let erase = erasing(at)
        .and_where(quarantine::Column::ScanRef.is_in(scan_refs.iter().map(String::as_str)))
        .returning_col(quarantine::Column::ScanRef)
        .to_owned();
    txn.query_all(&erase)
        .await?
        .iter()
        .map(|row| Ok(row.try_get_by_index::<String>(0)?))
        .collect()
}

/// Erases the bodies of up to `limit` items that arrived before `cutoff` and that no case's
/// purge will reach: they name no stored case (no `scan_ref`, or one no case row has), or a
/// case already purged (an item inserted while its case was created and purged at once slips
/// past both checks). The retention of what belongs to no case. Returns how many were erased.
pub(crate) async fn erase_orphans_before(
    txn: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    limit: u32,
    at: DateTime<Utc>,
) -> Result<u64, Error> {
    let cases = Query::select()
        .column(case::Column::ScanRef)
        .from(case::Entity)
        .to_owned();
    let purged_cases = Query::select()
        .column(case::Column::ScanRef)
        .from(case::Entity)
        .and_where(case::Column::PurgedAt.is_not_null())
        .to_owned();
    let orphans = Condition::any()
        .add(quarantine::Column::ScanRef.is_null())
        .add(quarantine::Column::ScanRef.not_in_subquery(cases))
        .add(quarantine::Column::ScanRef.in_subquery(purged_cases));
    let ids: Vec<i64> = quarantine::Entity::find()
        .select_only()
        .column(quarantine::Column::Id)
        .filter(quarantine::Column::ReceivedAt.lt(cutoff))
        .filter(quarantine::Column::Body.ne(Vec::<u8>::new()))
        .filter(orphans)
        .order_by_asc(quarantine::Column::Id)
        .limit(u64::from(limit))
        .lock_exclusive()
        .into_tuple()
        .all(txn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    let erase = erasing(at)
        .and_where(quarantine::Column::Id.is_in(ids))
        .to_owned();
    Ok(txn.execute(&erase).await?.rows_affected())
}

/// `UPDATE quarantine SET body = '', purged_at, released_at` for rows that still have a body.
fn erasing(at: DateTime<Utc>) -> UpdateStatement {
    Query::update()
        .table(quarantine::Entity)
        .value(quarantine::Column::Body, Vec::<u8>::new())
        .value(quarantine::Column::PurgedAt, at)
        .value(
            quarantine::Column::ReleasedAt,
            Func::if_null(Expr::col(quarantine::Column::ReleasedAt), at),
        )
        .and_where(quarantine::Column::Body.ne(Vec::<u8>::new()))
        .to_owned()
}

/// One item, released or not, with what `verdict quarantine show` prints beyond the item.
pub(crate) async fn entry(
    db: &DatabaseConnection,
    id: i64,
) -> Result<Option<crate::QuarantineEntry>, Error> {
    let Some(row) = quarantine::Entity::find_by_id(id).by_key(db).await? else {
        return Ok(None);
    };
    let (released_at, body_sha256) = (row.released_at, row.body_sha256.clone());
    Ok(Some(crate::QuarantineEntry {
        item: convert::quarantine_from_row(row),
        released_at,
        body_sha256,
    }))
}

/// Locks an unreleased item for the rest of the transaction (PostgreSQL; SQLite's write lock
/// already serialises writers). A second reprocess of the same item waits here, then finds it
/// released: an item is recorded once.
pub(crate) async fn claim(txn: &impl ConnectionTrait, id: i64) -> Result<(), Error> {
    quarantine::Entity::find_by_id(id)
        .select_only()
        .column(quarantine::Column::Id)
        .filter(quarantine::Column::ReleasedAt.is_null())
        .lock_exclusive()
        .into_tuple::<i64>()
        .by_key(txn)
        .await?
        .map(|_| ())
        .ok_or(Error::NotQuarantined(id))
}

/// Marks a claimed item reprocessed, in the transaction that recorded it.
pub(crate) async fn release(txn: &impl ConnectionTrait, id: i64) -> Result<(), Error> {
    quarantine::Entity::update_many()
        .col_expr(quarantine::Column::ReleasedAt, Expr::value(Utc::now()))
        .filter(quarantine::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// A claimed item that is quarantined again keeps waiting, with the reason it has now.
pub(crate) async fn reword(
    txn: &impl ConnectionTrait,
    id: i64,
    reason: &QuarantineReason,
) -> Result<(), Error> {
    quarantine::Entity::update_many()
        .col_expr(quarantine::Column::Reason, Expr::value(reason.to_string()))
        .col_expr(quarantine::Column::ReasonKind, Expr::value(reason.kind()))
        .filter(quarantine::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}
