//! The quarantine: signed deliveries that could not be used, kept until reprocessed.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use verdict_domain::{NewQuarantine, QuarantineItem};

use crate::entity::quarantine;
use crate::{Error, convert};

pub(crate) async fn insert(db: &DatabaseConnection, item: NewQuarantine) -> Result<i64, Error> {
    let inserted = quarantine::Entity::insert(convert::quarantine_to_row(item))
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
