//! Recording a delivery: the one write path, one transaction per delivery.
//!
//! # Concurrency
//!
//! The transaction is correct on PostgreSQL (READ COMMITTED) and SQLite alike:
//!
//! 1. Its **first statement** inserts a placeholder case row (revision 0) with
//!    `ON CONFLICT (scan_ref) DO NOTHING`. On SQLite the transaction starts `IMMEDIATE` anyway,
//!    and a write as first statement takes the single write lock at once, so a transaction
//!    never has to upgrade from reader to writer (the upgrade fails with `SQLITE_BUSY`
//!    regardless of the busy timeout). On PostgreSQL two first deliveries of a new case cannot
//!    both insert: the second waits for the first to commit, then does nothing.
//! 2. The case row is then read `FOR UPDATE` (PostgreSQL; SQLite's write lock already
//!    serialises writers and sea-query renders no lock clause there), so every later read in
//!    the transaction — person, duplicate check — sees the state left by the previous writer
//!    of this case, and revisions are assigned without gaps or repeats.
//! 3. Only for an applied change, after everything else (delivery row, person upsert), the feed
//!    position is taken with `UPDATE feed_counter SET value = value + 1 WHERE id = 1 RETURNING
//!    value`; all that follows before the commit is the update of the already locked case row
//!    (with `last_position`) and the insert of the feed row.
//!
//! Taking the counter row lock last is what makes feed positions commit-ordered: the
//! transaction holding position N keeps the counter row locked until it commits, so nobody can
//! take N+1 before N is committed and visible. A reader asking for `position > cursor` can
//! therefore never skip a row that commits late — the failure DESIGN.md warns about with
//! PostgreSQL sequences, whose values are handed out at call time, not at commit. The price is
//! that applied changes serialise on the counter for the few statements between it and the
//! commit, which is why it comes last. Locks are always taken case row → counter row, so there
//! is no deadlock cycle.

use chrono::Utc;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QuerySelect,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sha2::{Digest, Sha256};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::{Case, Cursor, NewDelivery, Outcome, Recorded, machine};

use crate::entity::{case, case_change, case_person, delivery};
use crate::span::{self, DbTarget};
use crate::{Error, convert, feed};

/// Records one delivery and applies it; see the module docs for the locking.
///
/// The whole transaction is one OpenTelemetry CLIENT span, `INSERT deliveries` (every delivery
/// inserts its row; an applied one also updates `cases` and appends to `case_changes`), a child
/// of the webhook's request span. It carries the semconv `db.*` attributes and the case's
/// scanRef, event type, outcome and revision, never a statement's values.
pub(crate) async fn record(
    db: &DatabaseConnection,
    target: &DbTarget,
    delivery: NewDelivery,
) -> Result<Recorded, Error> {
    let span = tracing::info_span!(
        "store.record",
        otel.name = "INSERT deliveries",
        otel.kind = "client",
        otel.status_code = Empty,
        db.system.name = target.system,
        db.namespace = target.namespace.as_deref(),
        db.operation.name = "INSERT",
        db.collection.name = "deliveries",
        server.address = target.server_address.as_deref(),
        server.port = target.server_port,
        error.type = Empty,
        scan_ref = %delivery.payload.scan_ref(),
        event_type = %delivery.event,
        outcome = Empty,
        revision = Empty,
    );
    let recorded = transaction(db, delivery).instrument(span.clone()).await;
    match &recorded {
        Ok(recorded) => {
            span.record("outcome", recorded.outcome.as_str());
            span.record(
                "revision",
                i64::try_from(recorded.case.revision).unwrap_or(i64::MAX),
            );
        }
        Err(error) => span::record_error(&span, error),
    }
    recorded
}

async fn transaction(db: &DatabaseConnection, delivery: NewDelivery) -> Result<Recorded, Error> {
    let txn = db
        .begin_with_options(TransactionOptions {
            // Ignored by PostgreSQL.
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        })
        .await?;
    let recorded = record_in(&txn, delivery).await?;
    txn.commit().await?;
    Ok(recorded)
}

async fn record_in(txn: &DatabaseTransaction, delivery: NewDelivery) -> Result<Recorded, Error> {
    let scan_ref = delivery.payload.scan_ref().to_owned();
    let event_type = delivery.event.as_str();
    let body_sha256 = hex::encode(Sha256::digest(&delivery.body));

    // 1. First statement: the write lock on SQLite, the per-case insert race on PostgreSQL.
    case::Entity::insert(placeholder(&delivery))
        .on_conflict_do_nothing_on([case::Column::ScanRef])
        .exec_without_returning(txn)
        .await?;

    // 2. The current state, locked for the rest of the transaction.
    let row = case::Entity::find_by_id(scan_ref.as_str())
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or_else(|| Error::corrupt("case row missing right after its upsert"))?;
    let current = match row.revision {
        0 => None,
        _ => {
            let person = case_person::Entity::find_by_id(scan_ref.as_str())
                .one(txn)
                .await?
                .map(convert::person_from_row);
            Some(convert::case_from_row(row, person)?)
        }
    };

    // 3. Same event type and same raw body stored before for this case?
    let already_stored = match current {
        None => false,
        Some(_) => delivery::Entity::find()
            .select_only()
            .column(delivery::Column::Id)
            .filter(delivery::Column::ScanRef.eq(scan_ref.as_str()))
            .filter(delivery::Column::EventType.eq(event_type))
            .filter(delivery::Column::BodySha256.eq(body_sha256.as_str()))
            .limit(1)
            .into_tuple::<i64>()
            .one(txn)
            .await?
            .is_some(),
    };

    // 4. The state machine decides.
    let transition = machine::apply(
        current.as_ref(),
        delivery.event,
        &delivery.payload,
        already_stored,
        delivery.received_at,
    );

    // 5. Every delivery is kept, whatever its outcome.
    delivery::Entity::insert(delivery::ActiveModel {
        id: NotSet,
        scan_ref: Set(scan_ref.clone()),
        event_type: Set(event_type.to_owned()),
        body: Set(delivery.body.to_vec()),
        body_sha256: Set(body_sha256),
        outcome: Set(transition.outcome.as_str().to_owned()),
        is_final: Set(transition.delivery_final),
        revision: Set(convert::to_i64(transition.case.revision, "case revision")?),
        overall_status: Set(delivery.payload.status.overall.clone()),
        received_at: Set(delivery.received_at),
        traceparent: Set(delivery.traceparent.clone()),
    })
    .exec_without_returning(txn)
    .await?;

    // 6. An applied change updates the case and joins the feed.
    let position = match transition.outcome {
        Outcome::Applied => Some(apply_change(txn, &transition.case, delivery.traceparent).await?),
        Outcome::Duplicate | Outcome::Stale => None,
    };
    Ok(Recorded {
        outcome: transition.outcome,
        case: transition.case,
        position,
    })
}

/// Writes the applied case and its feed entry. The counter is taken after the person upsert so
/// that as little as possible happens while this transaction holds it.
async fn apply_change(
    txn: &DatabaseTransaction,
    case: &Case,
    traceparent: Option<String>,
) -> Result<Cursor, Error> {
    if let Some(person) = &case.person {
        case_person::Entity::insert(convert::person_to_row(&case.scan_ref, person))
            .on_conflict(
                OnConflict::column(case_person::Column::ScanRef)
                    .update_columns([
                        case_person::Column::FirstName,
                        case_person::Column::LastName,
                        case_person::Column::DateOfBirth,
                        case_person::Column::Nationality,
                        case_person::Column::Sex,
                        case_person::Column::DocumentType,
                        case_person::Column::DocumentNumber,
                        case_person::Column::DocumentExpiry,
                        case_person::Column::IssuingCountry,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(txn)
            .await?;
    }

    // Commit order starts here: see the module docs.
    let position = feed::next_position(txn).await?;
    case::Entity::update_many()
        .set(convert::case_to_row(case, position)?)
        .filter(case::Column::ScanRef.eq(case.scan_ref.as_str()))
        .exec(txn)
        .await?;
    case_change::Entity::insert(convert::change_to_row(
        position,
        case,
        traceparent,
        Utc::now(),
    )?)
    .exec_without_returning(txn)
    .await?;
    Ok(Cursor(convert::to_u64(position, "feed position")?))
}

/// The row that reserves a new case's scanRef; always overwritten in the same transaction
/// because the first delivery of a case is always applied.
fn placeholder(delivery: &NewDelivery) -> case::ActiveModel {
    let empty_tags = convert::tags_to_json(&[]);
    case::ActiveModel {
        scan_ref: Set(delivery.payload.scan_ref().to_owned()),
        client_id: Set(delivery.payload.client_id.clone().unwrap_or_default()),
        external_ref: Set(None),
        decision: Set(verdict_domain::Decision::Pending.as_str().to_owned()),
        is_final: Set(false),
        overall_status: Set(None),
        last_event_type: Set(delivery.event.as_str().to_owned()),
        revision: Set(0),
        auto_document: Set(None),
        auto_face: Set(None),
        manual_document: Set(None),
        manual_face: Set(None),
        fraud_tags: Set(empty_tags.clone()),
        mismatch_tags: Set(empty_tags.clone()),
        suspicion_reasons: Set(empty_tags),
        created_at: Set(delivery.received_at),
        updated_at: Set(delivery.received_at),
        finalized_at: Set(None),
        last_position: Set(0),
    }
}
