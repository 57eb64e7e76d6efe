//! Purging cases (DESIGN.md section 11): erasing their personal data and recording each purge
//! as a change. One implementation behind every way a case is purged: the erasure of one case,
//! a batch of the retention pass, and a lifecycle notice recorded by `record`.
//!
//! # What is erased, what is kept
//! Erased: the case's `case_persons` row and the raw body of every delivery and quarantine item
//! of the case (emptied: the columns are NOT NULL). Kept: the case row (decision, statuses,
//! tags, revision), the deliveries' and quarantine items' metadata and hashes — so a copy that
//! arrives later is still a duplicate — and the feed, whose snapshots never held a person. A
//! purge bumps the revision, sets `purged_at` and appends the change to the feed, unless the
//! case was already marked and nothing was left to erase: purging twice changes nothing.
//!
//! # After a purge
//! `purged_at` stays. What arrives for the case afterwards is kept without its body and without
//! a person (`record`; `quarantine` for items naming the case), so nothing personal comes back.
//!
//! # Locks and the feed
//! A purge locks in the order every writer does — the case's quarantine items, the case rows,
//! then the feed counter — and erases before it takes feed positions, all of a batch's at once:
//! the counter, on which every applied change serialises, is held only for the last two
//! statements, however many cases the batch purges. On PostgreSQL a retention batch first takes
//! a transaction-scoped advisory lock, so batches never run side by side whichever replicas run
//! them; a replica that finds it taken leaves the pass to the one holding it. Candidates are
//! read again under their row locks, so a case is purged once even if two passes pick it.

use std::collections::HashSet;

use chrono::{DateTime, SubsecRound as _, Utc};
use sea_orm::sea_query::{CaseStatement, Expr, ExprTrait as _, Func, Order, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{Case, Cursor, ExpiredBatch, Purge};
use verdict_telemetry::TRACE_ONLY;

use crate::by_key::ByKey as _;
use crate::entity::{case, case_change, case_person, delivery};
use crate::span::{self, DbTarget};
use crate::write_gate::WriteGate;
use crate::{Error, convert, feed, quarantine};

/// The advisory lock key of retention batches ("verdict" and a 1), the same on every replica.
const RETENTION_LOCK: i64 = 0x7665_7264_6963_7401;

/// Purges one case in its own transaction; `None` when there is no such case.
pub(crate) async fn purge(
    db: &DatabaseConnection,
    gate: &WriteGate,
    target: &DbTarget,
    scan_ref: &str,
    traceparent: Option<String>,
) -> Result<Option<Purge>, Error> {
    let span = client_span(target, "purge case");
    span.record("scan_ref", scan_ref);
    traced(span, async {
        let (_turn, txn) = crate::begin_write(db, gate).await?;
        let scan_refs = [scan_ref.to_owned()];
        quarantine::lock_of_cases(&txn, &scan_refs).await?;
        let Some(row) = case::Entity::find_by_id(scan_ref)
            .filter(case::Column::Revision.gt(0))
            .lock_exclusive()
            .by_key(&txn)
            .await?
        else {
            return Ok(None);
        };
        let case = convert::case_from_row(row, None)?;
        let purged = purge_locked(&txn, vec![case], now(), traceparent).await?;
        txn.commit().await?;
        Ok(purged.into_iter().next())
    })
    .await
}

/// One retention batch in one transaction: up to `limit` cases that became final before
/// `cutoff` and are not purged yet, and up to `limit` quarantine bodies older than `cutoff`
/// that no case's purge will reach. `None` when another process holds the batch lock.
pub(crate) async fn purge_expired(
    db: &DatabaseConnection,
    gate: &WriteGate,
    target: &DbTarget,
    cutoff: DateTime<Utc>,
    limit: u32,
    traceparent: Option<String>,
) -> Result<Option<ExpiredBatch>, Error> {
    let span = client_span(target, "purge expired cases");
    traced(span, async {
        let (_turn, txn) = crate::begin_write(db, gate).await?;
        if !take_retention_lock(&txn).await? {
            return Ok(None);
        }
        let expired = case::Column::PurgedAt
            .is_null()
            .and(case::Column::FinalizedAt.lt(cutoff));
        let candidates: Vec<String> = case::Entity::find()
            .select_only()
            .column(case::Column::ScanRef)
            .filter(expired.clone())
            .order_by_asc(case::Column::FinalizedAt)
            .limit(u64::from(limit))
            .into_tuple()
            .all(&txn)
            .await?;
        quarantine::lock_of_cases(&txn, &candidates).await?;
        // Read again under the row locks: a case another writer purged or reopened meanwhile
        // drops out here. Locked in key order, as `record` locks a batch's cases, so the two
        // never wait for each other in a cycle; purged oldest first, as they were picked.
        let rows = case::Entity::find()
            .filter(case::Column::ScanRef.is_in(candidates.iter().map(String::as_str)))
            .filter(expired)
            .order_by(key_order(txn.get_database_backend()), Order::Asc)
            .lock_exclusive()
            .all(&txn)
            .await?;
        let mut cases = rows
            .into_iter()
            .map(|row| convert::case_from_row(row, None))
            .collect::<Result<Vec<_>, _>>()?;
        cases.sort_by_key(|case| case.finalized_at);
        let now = now();
        let purged = purge_locked(&txn, cases, now, traceparent).await?;
        let quarantine_erased = quarantine::erase_orphans_before(&txn, cutoff, limit, now).await?;
        txn.commit().await?;
        let limit = limit as usize;
        Ok(Some(ExpiredBatch {
            more: candidates.len() >= limit || quarantine_erased >= limit as u64,
            purged,
            quarantine_erased,
        }))
    })
    .await
}

/// The byte order of case keys, the order `record` locks them in (a Rust string's order):
/// PostgreSQL's "C" collation, SQLite's default.
fn key_order(backend: DbBackend) -> Expr {
    match backend {
        DbBackend::Postgres => Expr::cust(r#""scan_ref" COLLATE "C""#),
        _ => Expr::col(case::Column::ScanRef),
    }
}

/// Erases what the given cases (locked by the caller, their quarantine items first) still hold
/// and records a purge of each one that had something erased or was not marked purged yet; the
/// others come back unchanged, without a position.
pub(crate) async fn purge_locked(
    txn: &impl ConnectionTrait,
    cases: Vec<Case>,
    at: DateTime<Utc>,
    traceparent: Option<String>,
) -> Result<Vec<Purge>, Error> {
    let scan_refs: Vec<String> = cases.iter().map(|c| c.scan_ref.clone()).collect();
    let erased = erase(txn, &scan_refs, at).await?;
    let (changed, unchanged): (Vec<Case>, Vec<Case>) = cases
        .into_iter()
        .partition(|case| !case.is_purged() || erased.contains(&case.scan_ref));
    let mut purges: Vec<Purge> = unchanged
        .into_iter()
        .map(|case| Purge {
            case,
            position: None,
        })
        .collect();
    if changed.is_empty() {
        return Ok(purges);
    }
    let changed: Vec<Case> = changed
        .into_iter()
        .map(|case| Case {
            revision: case.revision + 1,
            purged_at: case.purged_at.or(Some(at)),
            person: None,
            ..case
        })
        .collect();
    let keys = || changed.iter().map(|case| case.scan_ref.as_str());
    txn.execute(
        &Query::update()
            .table(case::Entity)
            .value(
                case::Column::Revision,
                Expr::col(case::Column::Revision).add(1),
            )
            .value(
                case::Column::PurgedAt,
                Func::if_null(Expr::col(case::Column::PurgedAt), at),
            )
            .and_where(case::Column::ScanRef.is_in(keys()))
            .to_owned(),
    )
    .await?;

    // Commit order starts here (see `record`): two statements, then the commit.
    let positions: Vec<i64> = feed::next_positions(txn, changed.len()).await?.collect();
    let mut last_position = CaseStatement::new();
    let mut feed_rows = Vec::with_capacity(changed.len());
    let committed_at = Utc::now();
    for (case, position) in changed.iter().zip(&positions) {
        last_position =
            last_position.case(case::Column::ScanRef.eq(case.scan_ref.as_str()), *position);
        feed_rows.push(convert::change_to_row(
            *position,
            case,
            traceparent.clone(),
            committed_at,
        )?);
    }
    txn.execute(
        &Query::update()
            .table(case::Entity)
            .value(
                case::Column::LastPosition,
                last_position.finally(Expr::col(case::Column::LastPosition)),
            )
            .and_where(case::Column::ScanRef.is_in(keys()))
            .to_owned(),
    )
    .await?;
    case_change::Entity::insert_many(feed_rows)
        .exec_without_returning(txn)
        .await?;
    for (case, position) in changed.into_iter().zip(positions) {
        purges.push(Purge {
            case,
            position: Some(Cursor(convert::to_u64(position, "feed position")?)),
        });
    }
    Ok(purges)
}

/// The time of a purge, to the microsecond: what PostgreSQL keeps, so the answer, the feed's
/// snapshot and the row agree.
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// Erases the persons of `scan_refs` and the bodies of their deliveries and quarantine items;
/// returns the cases that had anything erased.
pub(crate) async fn erase(
    txn: &impl ConnectionTrait,
    scan_refs: &[String],
    at: DateTime<Utc>,
) -> Result<HashSet<String>, Error> {
    let keys = || scan_refs.iter().map(String::as_str);
    let persons = Query::delete()
        .from_table(case_person::Entity)
        .and_where(case_person::Column::ScanRef.is_in(keys()))
        .returning_col(case_person::Column::ScanRef)
        .to_owned();
    let bodies = Query::update()
        .table(delivery::Entity)
        .value(delivery::Column::Body, Vec::<u8>::new())
        .and_where(delivery::Column::ScanRef.is_in(keys()))
        .and_where(delivery::Column::Body.ne(Vec::<u8>::new()))
        .returning_col(delivery::Column::ScanRef)
        .to_owned();
    let mut erased = HashSet::new();
    for row in txn.query_all(&persons).await? {
        erased.insert(row.try_get_by_index::<String>(0)?);
    }
    for row in txn.query_all(&bodies).await? {
        erased.insert(row.try_get_by_index::<String>(0)?);
    }
    erased.extend(quarantine::erase_of_cases(txn, scan_refs, at).await?);
    Ok(erased)
}

/// Takes the retention batch lock for the rest of the transaction, if no one holds it: on
/// PostgreSQL a transaction-scoped advisory lock (released by the commit, never left behind by
/// a pooled connection); SQLite serves one replica and its write lock already serialises.
async fn take_retention_lock(txn: &impl ConnectionTrait) -> Result<bool, Error> {
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            let row = txn
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_try_advisory_xact_lock($1)",
                    [RETENTION_LOCK.into()],
                ))
                .await?
                .ok_or_else(|| Error::corrupt("pg_try_advisory_xact_lock answered no row"))?;
            Ok(row.try_get_by_index::<bool>(0)?)
        }
        _ => Ok(true),
    }
}

/// Runs a purge transaction in its span, marking the span failed on an error.
async fn traced<T>(
    span: tracing::Span,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let result = work.instrument(span.clone()).await;
    if let Err(error) = &result {
        span::record_error(&span, error);
    }
    result
}

/// The CLIENT span of a purge transaction, like the record path's: `db.*` attributes and the
/// scanRef, never a value.
fn client_span(target: &DbTarget, name: &'static str) -> tracing::Span {
    tracing::info_span!(
        target: TRACE_ONLY,
        "store.purge",
        otel.name = name,
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = target.system,
        db.namespace = target.namespace.as_deref(),
        db.operation.name = "purge",
        db.collection.name = "cases",
        server.address = target.server_address.as_deref(),
        server.port = target.server_port,
        error.type = Empty,
        scan_ref = Empty,
    )
}
