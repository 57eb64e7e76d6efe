//! The quarantine: signed deliveries that could not be used, kept until reprocessed.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{NewQuarantine, QuarantineItem};

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
    let inserted = quarantine::Entity::insert(convert::quarantine_to_row(item))
        .exec(db)
        .instrument(span.clone())
        .await
        .map_err(Error::from);
    match inserted {
        Ok(inserted) => Ok(inserted.last_insert_id),
        Err(error) => {
            span::record_error(&span, &error);
            Err(error)
        }
    }
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

/// Marks an item released. Idempotent: releasing a released or unknown id changes nothing.
pub(crate) async fn release(db: &DatabaseConnection, id: i64) -> Result<(), Error> {
    quarantine::Entity::update_many()
        .col_expr(quarantine::Column::ReleasedAt, Expr::value(Utc::now()))
        .filter(quarantine::Column::Id.eq(id))
        .filter(quarantine::Column::ReleasedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}
