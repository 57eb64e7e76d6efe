//! The quarantine: signed deliveries that could not be used, kept until reprocessed.
//!
//! Items are written here directly (what triage refuses without a database) or from inside the
//! record transaction (what the state machine refuses, see `record`), which also claims, releases
//! or rewords the item a reprocess comes from.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{Fingerprint, NewQuarantine, QuarantineItem, QuarantineReason};

use crate::entity::quarantine;
use crate::span::{self, DbTarget};
use crate::{Error, convert};

/// Keeps a delivery, in a CLIENT span `INSERT quarantine` like the record path's.
pub(crate) async fn insert(
    db: &DatabaseConnection,
    target: &DbTarget,
    item: NewQuarantine,
) -> Result<i64, Error> {
    let span = tracing::info_span!(
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
    let fingerprint = Fingerprint::of(&item.body);
    let inserted = insert_row(db, item, fingerprint)
        .instrument(span.clone())
        .await;
    if let Err(error) = &inserted {
        span::record_error(&span, error);
    }
    inserted
}

/// The insert itself, on a connection or inside a transaction.
pub(crate) async fn insert_row(
    db: &impl ConnectionTrait,
    item: NewQuarantine,
    fingerprint: Fingerprint,
) -> Result<i64, Error> {
    let inserted = quarantine::Entity::insert(convert::quarantine_to_row(item, fingerprint))
        .exec(db)
        .await?;
    Ok(inserted.last_insert_id)
}

/// Not yet released, oldest first.
pub(crate) async fn pending(
    db: &DatabaseConnection,
    limit: u32,
) -> Result<Vec<QuarantineItem>, Error> {
    let rows = quarantine::Entity::find()
        .filter(quarantine::Column::ReleasedAt.is_null())
        .order_by_asc(quarantine::Column::Id)
        .limit(u64::from(limit))
        .all(db)
        .await?;
    Ok(rows.into_iter().map(convert::quarantine_from_row).collect())
}

/// One item, released or not, with what `verdict quarantine show` prints beyond the item.
pub(crate) async fn entry(
    db: &DatabaseConnection,
    id: i64,
) -> Result<Option<crate::QuarantineEntry>, Error> {
    let Some(row) = quarantine::Entity::find_by_id(id).one(db).await? else {
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
pub(crate) async fn claim(txn: &DatabaseTransaction, id: i64) -> Result<(), Error> {
    quarantine::Entity::find_by_id(id)
        .select_only()
        .column(quarantine::Column::Id)
        .filter(quarantine::Column::ReleasedAt.is_null())
        .lock_exclusive()
        .into_tuple::<i64>()
        .one(txn)
        .await?
        .map(|_| ())
        .ok_or(Error::NotQuarantined(id))
}

/// Marks a claimed item reprocessed, in the transaction that recorded it.
pub(crate) async fn release(txn: &DatabaseTransaction, id: i64) -> Result<(), Error> {
    quarantine::Entity::update_many()
        .col_expr(quarantine::Column::ReleasedAt, Expr::value(Utc::now()))
        .filter(quarantine::Column::Id.eq(id))
        .exec(txn)
        .await?;
    Ok(())
}

/// A claimed item that is quarantined again keeps waiting, with the reason it has now.
pub(crate) async fn reword(
    txn: &DatabaseTransaction,
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
