//! The change feed behind WatchCases: positions come from `feed_counter`, taken last in the
//! writing transaction so they are commit-ordered (see `record`).

use std::ops::RangeInclusive;

use sea_orm::sea_query::{self, Expr, Query, UpdateStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Select, Statement,
};
use verdict_domain::{ChangedCases, Cursor, FeedChange, FeedFilter, FeedQuery};

use crate::by_key::ByKey as _;
use crate::check_connection::{CheckConnection, CheckRow};
use crate::entity::{case_change, feed_counter};
use crate::{Error, convert, read};

/// Takes the next `count` feed positions at once (at least one), for changes committed
/// together. Holds the counter row lock until the transaction ends.
pub(crate) async fn next_positions(
    txn: &impl ConnectionTrait,
    count: usize,
) -> Result<RangeInclusive<i64>, Error> {
    let count = i64::try_from(count.max(1))
        .map_err(|_| Error::corrupt("more feed positions than an i64 holds"))?;
    let row = txn
        .query_one(&bump(count))
        .await?
        .ok_or_else(|| Error::corrupt("feed_counter row 1 missing"))?;
    let last = row.try_get_by_index::<i64>(0)?;
    Ok(last - count + 1..=last)
}

/// `UPDATE feed_counter SET value = value + count WHERE id = 1 RETURNING value`: PostgreSQL, and
/// SQLite since 3.35 (the bundled one is newer). The row lock it takes is the point.
pub(crate) fn bump(count: i64) -> UpdateStatement {
    Query::update()
        .table(feed_counter::Entity)
        .value(
            feed_counter::Column::Value,
            sea_query::ExprTrait::add(Expr::col(feed_counter::Column::Value), count),
        )
        .and_where(feed_counter::Column::Id.eq(1))
        .returning_col(feed_counter::Column::Value)
        .to_owned()
}

/// The changes of `query`, oldest first.
///
/// The filter runs in SQL on the columns copied from the snapshot, and again on the decoded
/// snapshot, which is the authority: rows an older release wrote without those columns pass the
/// SQL filter and are decided there. When that drops rows from a full page, the next page is
/// read, so that a short answer still means "nothing more matches" (the port's contract).
pub(crate) async fn changes_after(
    db: &DatabaseConnection,
    query: &FeedQuery,
) -> Result<Vec<FeedChange>, Error> {
    let limit = query.limit.max(1) as usize;
    let mut after = query.after;
    let mut changes = Vec::new();
    loop {
        let rows = select(query, after, limit).all(db).await?;
        let full = rows.len() == limit;
        if let Some(last) = rows.last() {
            after = Cursor(convert::to_u64(last.position, "case_changes.position")?);
        }
        for row in rows {
            let change = convert::change_from_row(row, None)?;
            if query.filter.matches(&change.case) {
                changes.push(change);
            }
        }
        if !full || changes.len() >= limit {
            break;
        }
    }
    changes.truncate(limit);
    if query.with_person {
        let scan_refs: Vec<String> = changes.iter().map(|c| c.case.scan_ref.clone()).collect();
        let persons = read::persons(db, &scan_refs).await?;
        for change in &mut changes {
            // The person as it is now (it may have been purged), not as of the change.
            change.case.person = persons.get(&change.case.scan_ref).cloned();
        }
    }
    Ok(changes)
}

/// One page of feed rows in `(after, query.until]` that may match the filter.
fn select(query: &FeedQuery, after: Cursor, limit: usize) -> Select<case_change::Entity> {
    let mut select = case_change::Entity::find()
        .filter(case_change::Column::Position.gt(convert::position(after)))
        .filter(sql_filter(&query.filter))
        .order_by_asc(case_change::Column::Position)
        .limit(limit as u64);
    if let Some(until) = query.until {
        select = select.filter(case_change::Column::Position.lte(convert::position(until)));
    }
    select
}

/// The filter as SQL: a superset of what matches (NULL columns pass, see [`changes_after`]).
fn sql_filter(filter: &FeedFilter) -> Condition {
    let mut condition = Condition::all();
    if filter.final_only() {
        condition = condition.add(case_change::Column::IsFinal.eq(true));
    }
    if !filter.scan_refs().is_empty() {
        condition = condition
            .add(case_change::Column::ScanRef.is_in(filter.scan_refs().iter().map(String::as_str)));
    }
    if !filter.client_ids().is_empty() {
        condition = condition.add(
            Condition::any()
                .add(
                    case_change::Column::ClientId
                        .is_in(filter.client_ids().iter().map(String::as_str)),
                )
                .add(case_change::Column::ClientId.is_null()),
        );
    }
    if !filter.decisions().is_empty() {
        condition = condition.add(
            Condition::any()
                .add(
                    case_change::Column::Decision
                        .is_in(filter.decisions().iter().map(|d| d.as_str())),
                )
                .add(case_change::Column::Decision.is_null()),
        );
    }
    condition
}

/// `feed_counter`'s value and the changes above `$1` up to it, in one statement so that both
/// come from one snapshot. With no change in the range the one row has NULLs on the right.
///
/// The limit is written into the text, not bound: SQLite re-plans a statement whose `LIMIT`
/// is a bound parameter each time it is bound (see `by_key`). The text is the same for the same
/// limit (the cache asks with one constant), so each pooled connection prepares it once.
const CHANGED_CASES_POSTGRES: &str = "SELECT f.value, c.scan_ref, c.revision \
    FROM feed_counter f \
    LEFT JOIN case_changes c ON c.position > $1 AND c.position <= f.value \
    WHERE f.id = 1 ORDER BY c.position LIMIT ";
const CHANGED_CASES_SQLITE: &str = "SELECT f.value, c.scan_ref, c.revision \
    FROM feed_counter f \
    LEFT JOIN case_changes c ON c.position > ? AND c.position <= f.value \
    WHERE f.id = 1 ORDER BY c.position LIMIT ";

/// See [`verdict_domain::CaseStore::changed_cases`]. On the check's own connection where the
/// store holds one (`check_connection`), else through the pool.
pub(crate) async fn changed_cases(
    db: &DatabaseConnection,
    checks: &CheckConnection,
    after: Cursor,
    limit: u32,
) -> Result<ChangedCases, Error> {
    let backend = db.get_database_backend();
    let head = match backend {
        DbBackend::Postgres => CHANGED_CASES_POSTGRES,
        _ => CHANGED_CASES_SQLITE,
    };
    // One more than asked, to tell a complete answer from a cut one.
    let sql = format!("{head}{}", u64::from(limit) + 1);
    let after = convert::position(after);
    let rows = match checks.rows(db, &sql, after).await {
        Some(rows) => rows?,
        None => {
            let values = [after.into()];
            let rows = db
                .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
                .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        row.try_get_by_index(0)?,
                        row.try_get_by_index(1)?,
                        row.try_get_by_index(2)?,
                    ))
                })
                .collect::<Result<Vec<CheckRow>, DbErr>>()?
        }
    };
    let head = match rows.first() {
        Some((head, _, _)) => *head,
        None => return Err(Error::corrupt("feed_counter row 1 missing")),
    };
    let mut changes = Vec::with_capacity(rows.len());
    for (_, scan_ref, revision) in rows {
        if let (Some(scan_ref), Some(revision)) = (scan_ref, revision) {
            changes.push((
                scan_ref,
                convert::to_u64(revision, "case_changes.revision")?,
            ));
        }
    }
    let complete = changes.len() <= limit as usize;
    changes.truncate(limit as usize);
    Ok(ChangedCases {
        head: Cursor(convert::to_u64(head, "feed_counter.value")?),
        changes,
        complete,
    })
}

/// The last assigned feed position, `Cursor::START` on an empty feed.
pub(crate) async fn head(db: &DatabaseConnection) -> Result<Cursor, Error> {
    let value = feed_counter::Entity::find_by_id(1)
        .select_only()
        .column(feed_counter::Column::Value)
        .into_tuple::<i64>()
        .by_key(db)
        .await?
        .ok_or_else(|| Error::corrupt("feed_counter row 1 missing"))?;
    Ok(Cursor(convert::to_u64(value, "feed_counter.value")?))
}
