//! Reads of cases and their history.

use std::collections::HashMap;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use verdict_domain::{Case, CaseEvent, CasePage, CaseQuery, Cursor, Person};

use crate::by_key::ByKey as _;
use crate::entity::{case, case_person, delivery};
use crate::{Error, convert};

/// Bound on the values of one `IN (…)` list, well under both backends' parameter limits.
const IN_CHUNK: usize = 500;

pub(crate) async fn case(
    db: &DatabaseConnection,
    scan_ref: &str,
    with_person: bool,
) -> Result<Option<Case>, Error> {
    let Some(row) = case::Entity::find_by_id(scan_ref).by_key(db).await? else {
        return Ok(None);
    };
    with_persons(db, vec![row], with_person)
        .await
        .map(|mut cases| cases.pop())
}

pub(crate) async fn latest_case_of_client(
    db: &DatabaseConnection,
    client_id: &str,
    with_person: bool,
) -> Result<Option<Case>, Error> {
    let Some(row) = case::Entity::find()
        .filter(case::Column::ClientId.eq(client_id))
        .order_by_desc(case::Column::LastPosition)
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    with_persons(db, vec![row], with_person)
        .await
        .map(|mut cases| cases.pop())
}

/// The newest `limit` deliveries of a case, oldest first; the raw bodies stay in the database.
pub(crate) async fn history(
    db: &DatabaseConnection,
    scan_ref: &str,
    limit: u32,
) -> Result<Vec<CaseEvent>, Error> {
    let rows = delivery::Entity::find()
        .select_only()
        .columns(convert::DELIVERY_EVENT_COLUMNS)
        .filter(delivery::Column::ScanRef.eq(scan_ref))
        .order_by_desc(delivery::Column::Id)
        .limit(u64::from(limit))
        .into_model::<convert::DeliveryEvent>()
        .all(db)
        .await?;
    rows.into_iter()
        .rev()
        .map(convert::event_from_row)
        .collect()
}

/// A page of cases, most recently changed first, keyed on `last_position`.
pub(crate) async fn list_cases(
    db: &DatabaseConnection,
    query: &CaseQuery,
) -> Result<CasePage, Error> {
    let limit = query.limit.max(1);
    let mut select = case::Entity::find()
        // Placeholders never outlive their transaction; this only documents the invariant.
        .filter(case::Column::Revision.gt(0))
        .order_by_desc(case::Column::LastPosition)
        .limit(u64::from(limit) + 1);
    if let Some(client_id) = &query.client_id {
        select = select.filter(case::Column::ClientId.eq(client_id.as_str()));
    }
    if let Some(decision) = query.decision {
        select = select.filter(case::Column::Decision.eq(decision.as_str()));
    }
    if let Some(is_final) = query.is_final {
        select = select.filter(case::Column::IsFinal.eq(is_final));
    }
    if let Some(before) = query.before {
        select = select.filter(case::Column::LastPosition.lt(convert::position(before)));
    }
    let mut rows = select.all(db).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next = match rows.last() {
        Some(last) if more => Some(Cursor(convert::to_u64(
            last.last_position,
            "cases.last_position",
        )?)),
        _ => None,
    };
    Ok(CasePage {
        cases: with_persons(db, rows, query.with_person).await?,
        next,
    })
}

/// Current revisions of the given cases; absent ones are left out.
pub(crate) async fn revisions(
    db: &DatabaseConnection,
    scan_refs: &[String],
) -> Result<Vec<(String, u64)>, Error> {
    let mut out = Vec::with_capacity(scan_refs.len());
    for chunk in scan_refs.chunks(IN_CHUNK) {
        let rows = case::Entity::find()
            .select_only()
            .columns([case::Column::ScanRef, case::Column::Revision])
            .filter(case::Column::ScanRef.is_in(chunk.iter().map(String::as_str)))
            .filter(case::Column::Revision.gt(0))
            .into_tuple::<(String, i64)>()
            .all(db)
            .await?;
        for (scan_ref, revision) in rows {
            out.push((scan_ref, convert::to_u64(revision, "cases.revision")?));
        }
    }
    Ok(out)
}

/// The current person of each given case that has one.
pub(crate) async fn persons(
    db: &DatabaseConnection,
    scan_refs: &[String],
) -> Result<HashMap<String, Person>, Error> {
    let mut unique = scan_refs.to_vec();
    unique.sort_unstable();
    unique.dedup();
    let mut out = HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(IN_CHUNK) {
        let rows = case_person::Entity::find()
            .filter(case_person::Column::ScanRef.is_in(chunk.iter().map(String::as_str)))
            .all(db)
            .await?;
        out.extend(
            rows.into_iter()
                .map(|row| (row.scan_ref.clone(), convert::person_from_row(row))),
        );
    }
    Ok(out)
}

/// Case rows as domain cases, with their persons when asked for (one query for all).
async fn with_persons(
    db: &DatabaseConnection,
    rows: Vec<case::Model>,
    with_person: bool,
) -> Result<Vec<Case>, Error> {
    let persons = if with_person {
        let scan_refs: Vec<String> = rows.iter().map(|r| r.scan_ref.clone()).collect();
        persons(db, &scan_refs).await?
    } else {
        HashMap::new()
    };
    rows.into_iter()
        .map(|row| {
            let person = persons.get(&row.scan_ref).cloned();
            convert::case_from_row(row, person)
        })
        .collect()
}

/// `SELECT 1`: the database answers.
pub(crate) async fn ping(db: &DatabaseConnection) -> Result<(), Error> {
    db.query_one_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT 1",
    ))
    .await?;
    Ok(())
}
