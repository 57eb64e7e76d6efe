//! The change feed behind WatchCases: positions come from `feed_counter`, taken last in the
//! writing transaction so they are commit-ordered (see `record`).

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use verdict_domain::{Cursor, FeedChange};

use crate::entity::{case_change, feed_counter};
use crate::{Error, convert, read};

/// Portable: `UPDATE … RETURNING` exists in PostgreSQL and in SQLite since 3.35 (the bundled
/// SQLite is newer). A raw statement because the row lock it takes is the point.
const BUMP_COUNTER: &str = "UPDATE feed_counter SET value = value + 1 WHERE id = 1 RETURNING value";

/// Takes the next feed position. Holds the counter row lock until the transaction ends.
pub(crate) async fn next_position(txn: &DatabaseTransaction) -> Result<i64, Error> {
    let row = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            BUMP_COUNTER,
        ))
        .await?
        .ok_or_else(|| Error::corrupt("feed_counter row 1 missing"))?;
    Ok(row.try_get::<i64>("", "value")?)
}

/// Applied changes after `after`, oldest first.
pub(crate) async fn changes_after(
    db: &DatabaseConnection,
    after: Cursor,
    limit: u32,
    final_only: bool,
    with_person: bool,
) -> Result<Vec<FeedChange>, Error> {
    let mut query = case_change::Entity::find()
        .filter(case_change::Column::Position.gt(convert::position(after)))
        .order_by_asc(case_change::Column::Position)
        .limit(u64::from(limit));
    if final_only {
        query = query.filter(case_change::Column::IsFinal.eq(true));
    }
    let rows = query.all(db).await?;
    let persons = if with_person {
        let scan_refs: Vec<String> = rows.iter().map(|r| r.scan_ref.clone()).collect();
        read::persons(db, &scan_refs).await?
    } else {
        HashMap::new()
    };
    rows.into_iter()
        .map(|row| {
            // The person as it is now (it may have been purged), not as of the change.
            let person = persons.get(&row.scan_ref).cloned();
            convert::change_from_row(row, person)
        })
        .collect()
}

/// The last assigned feed position, `Cursor::START` on an empty feed.
pub(crate) async fn head(db: &DatabaseConnection) -> Result<Cursor, Error> {
    let value = feed_counter::Entity::find_by_id(1)
        .select_only()
        .column(feed_counter::Column::Value)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or_else(|| Error::corrupt("feed_counter row 1 missing"))?;
    Ok(Cursor(convert::to_u64(value, "feed_counter.value")?))
}
