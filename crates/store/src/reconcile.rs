//! Reconciliation claims and the backlog: which open case is looked up at iDenfy next, by
//! which replica, and what is waiting.
//!
//! # Claiming
//!
//! A claim is one conditional upsert, so it needs no transaction and holds no lock beyond the
//! statement:
//!
//! ```sql
//! INSERT INTO reconcile_claims (scan_ref, revision, attempts, next_at, claimed_at, last_result)
//! VALUES (…) ON CONFLICT (scan_ref) DO UPDATE SET … WHERE reconcile_claims.next_at <= now
//! ```
//!
//! It changes a row — and the claimer owns the case until `next_at` — only where nobody holds
//! it. On PostgreSQL two replicas inserting the same new row serialise on the primary key: the
//! second waits for the first to commit, then takes the `ON CONFLICT` path and re-checks the
//! `WHERE` against the committed row, whose `next_at` now lies in the future, and changes
//! nothing; two updating an existing row serialise on its row lock the same way. On SQLite the
//! single writer serialises them. Either way exactly one claimer sees one affected row.
//!
//! Candidates are read first, without a lock (open cases unchanged long enough, not held by a
//! claim, the longest-unchanged first): a candidate someone else claims in between is simply
//! skipped by the upsert. Only open cases are candidates, so the read is a range of the
//! `(is_final, updated_at)` index; the claims it joins are looked up by primary key.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Alias, Expr, ExprTrait as _, JoinType, OnConflict, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QuerySelect,
};
use verdict_domain::{Backlog, Claim, DueQuery, NextLookup};

use crate::Error;
use crate::entity::{case, quarantine, reconcile_claim as claim};

/// Candidates read per claim: enough to get past those other replicas claim at the same time.
const CANDIDATES: u64 = 8;

/// Claims the longest-unchanged due case; see the module docs.
pub(crate) async fn claim_due(
    db: &DatabaseConnection,
    query: DueQuery,
) -> Result<Option<Claim>, Error> {
    for candidate in candidates(db, &query).await? {
        // A change since the last claim starts the back-off over.
        let attempts = match candidate.claimed_revision {
            Some(revision) if revision == candidate.revision => candidate.attempts,
            _ => 0,
        };
        if take(db, &candidate, attempts, &query).await? {
            return Ok(Some(Claim {
                scan_ref: candidate.scan_ref,
                attempts: u32::try_from(attempts).unwrap_or(0),
            }));
        }
    }
    Ok(None)
}

/// Records when the case may be claimed again, or forgets its claim.
pub(crate) async fn settle(
    db: &DatabaseConnection,
    scan_ref: &str,
    next: Option<NextLookup>,
) -> Result<(), Error> {
    let Some(next) = next else {
        claim::Entity::delete_by_id(scan_ref).exec(db).await?;
        return Ok(());
    };
    claim::Entity::update_many()
        .col_expr(claim::Column::NextAt, Expr::value(next.at))
        .col_expr(
            claim::Column::Attempts,
            Expr::value(i32::try_from(next.attempts).unwrap_or(i32::MAX)),
        )
        .col_expr(claim::Column::LastResult, Expr::value(next.result))
        .filter(claim::Column::ScanRef.eq(scan_ref))
        .exec(db)
        .await?;
    Ok(())
}

/// The oldest open case's last change and the number of unreleased quarantine items: two
/// indexed reads.
pub(crate) async fn backlog(db: &DatabaseConnection) -> Result<Backlog, Error> {
    let oldest_pending_since = case::Entity::find()
        .select_only()
        .column_as(case::Column::UpdatedAt.min(), "oldest")
        .filter(case::Column::IsFinal.eq(false))
        .into_tuple::<Option<DateTime<Utc>>>()
        .one(db)
        .await?
        .flatten();
    let quarantine_depth = quarantine::Entity::find()
        .filter(quarantine::Column::ReleasedAt.is_null())
        .count(db)
        .await?;
    Ok(Backlog {
        oldest_pending_since,
        quarantine_depth,
    })
}

/// An open case due for a lookup, with its claim if it has one.
#[derive(Debug)]
struct Candidate {
    scan_ref: String,
    revision: i64,
    claimed_revision: Option<i64>,
    attempts: i32,
}

/// Open cases unchanged since the cutoff and not held by a claim, longest-unchanged first.
async fn candidates(db: &DatabaseConnection, query: &DueQuery) -> Result<Vec<Candidate>, Error> {
    let (cases, claims) = (Alias::new("c"), Alias::new("r"));
    let select = Query::select()
        .expr_as(
            Expr::col((cases.clone(), case::Column::ScanRef)),
            Alias::new("scan_ref"),
        )
        .expr_as(
            Expr::col((cases.clone(), case::Column::Revision)),
            Alias::new("revision"),
        )
        .expr_as(
            Expr::col((claims.clone(), claim::Column::Revision)),
            Alias::new("claimed_revision"),
        )
        .expr_as(
            Expr::col((claims.clone(), claim::Column::Attempts)),
            Alias::new("attempts"),
        )
        .from_as(case::Entity, cases.clone())
        .join_as(
            JoinType::LeftJoin,
            claim::Entity,
            claims.clone(),
            Expr::col((claims.clone(), claim::Column::ScanRef))
                .equals((cases.clone(), case::Column::ScanRef)),
        )
        .and_where(Expr::col((cases.clone(), case::Column::IsFinal)).eq(false))
        .and_where(Expr::col((cases.clone(), case::Column::UpdatedAt)).lte(query.unchanged_since))
        .cond_where(
            Condition::any()
                .add(Expr::col((claims.clone(), claim::Column::NextAt)).is_null())
                .add(Expr::col((claims.clone(), claim::Column::NextAt)).lte(query.now)),
        )
        .order_by((cases, case::Column::UpdatedAt), Order::Asc)
        .limit(CANDIDATES)
        .to_owned();
    let rows = db.query_all(&select).await?;
    rows.iter()
        .map(|row| {
            Ok(Candidate {
                scan_ref: row.try_get("", "scan_ref")?,
                revision: row.try_get("", "revision")?,
                claimed_revision: row.try_get("", "claimed_revision")?,
                attempts: row.try_get::<Option<i32>>("", "attempts")?.unwrap_or(0),
            })
        })
        .collect()
}

/// The conditional upsert that claims `candidate`; true when this caller got it.
async fn take(
    db: &DatabaseConnection,
    candidate: &Candidate,
    attempts: i32,
    query: &DueQuery,
) -> Result<bool, Error> {
    let row = claim::ActiveModel {
        scan_ref: Set(candidate.scan_ref.clone()),
        revision: Set(candidate.revision),
        attempts: Set(attempts),
        next_at: Set(query.hold_until),
        claimed_at: Set(query.now),
        last_result: Set(None),
    };
    let on_conflict = OnConflict::column(claim::Column::ScanRef)
        .values([
            (claim::Column::Revision, Expr::value(candidate.revision)),
            (claim::Column::Attempts, Expr::value(attempts)),
            (claim::Column::NextAt, Expr::value(query.hold_until)),
            (claim::Column::ClaimedAt, Expr::value(query.now)),
        ])
        .action_and_where(Expr::col((claim::Entity, claim::Column::NextAt)).lte(query.now))
        .to_owned();
    let changed = claim::Entity::insert(row)
        .on_conflict(on_conflict)
        .exec_without_returning(db)
        .await?;
    Ok(changed == 1)
}
