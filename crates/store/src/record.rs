//! Recording a delivery: the one write path, one transaction per delivery (on SQLite, the
//! deliveries waiting for the write gate share one: `group_commit`).
//!
//! The transaction claims the quarantine item a reprocess comes from (if any), locks or creates
//! the case, looks for an earlier copy of the delivery (rule 1 of the state machine), lets
//! `machine::apply` judge it, and writes what it decided: the delivery in the case history —
//! for an applied one also the case and its feed entry — or, when the machine quarantines it,
//! the quarantine item instead, leaving no trace on any case. A reprocessed item is released (or
//! reworded, when it is quarantined again) in the same transaction, so a crash can neither
//! record it twice nor lose it.
//!
//! # Purges
//!
//! A lifecycle notice (`Transition::Applied { purges: true, .. }`) purges its case in the same
//! transaction and the same change (see `purge`): the person row and the bodies are erased,
//! the notice itself is kept without its body, and `purged_at` is set. A delivery to a case
//! that is already purged is kept without its body too (the hashes stay, so a copy is still a
//! duplicate), and the machine gives a purged case no person: nothing personal comes back.
//!
//! # Concurrency
//!
//! The transaction is correct on PostgreSQL (READ COMMITTED) and SQLite alike:
//!
//! 1. Its **first write** inserts a placeholder case row (revision 0) or, when the case row is
//!    there, locks it, in one statement that returns the row either way:
//!    `INSERT … ON CONFLICT (scan_ref) DO UPDATE SET scan_ref = excluded.scan_ref RETURNING …`.
//!    On SQLite the transaction starts `IMMEDIATE` anyway, and a write as first statement takes
//!    the single write lock at once, so a transaction never has to upgrade from reader to writer
//!    (the upgrade fails with `SQLITE_BUSY` regardless of the busy timeout). On PostgreSQL two
//!    first deliveries of a new case cannot both insert: the second waits for the first to
//!    commit, then takes the conflict path.
//!    A placeholder that the delivery does not turn into a case (a duplicate of a quarantined
//!    copy, a quarantined delivery) is deleted again before the commit.
//! 2. The conflict path's (no-op) update locks the case row as `SELECT … FOR UPDATE` would, on
//!    the latest committed version (PostgreSQL; SQLite's write lock already serialises writers),
//!    so every later read in the transaction — person, duplicate check — sees the state left by
//!    the previous writer of this case, and revisions are assigned without gaps or repeats. (A
//!    reprocess locks its quarantine item before that, and a lifecycle notice, which erases
//!    them, the case's quarantine items; other webhooks never lock quarantine rows: the lock
//!    order is always quarantine items → case row → counter row, as in `purge`.)
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
//!
//! # Group commit (SQLite)
//!
//! SQLite writes one transaction at a time anyway, so the deliveries waiting at the write gate
//! are written by whoever gets the turn, one after the other in one transaction, and each is
//! answered after its commit (`group_commit`). Everything above holds delivery by delivery: each
//! sees the writes of the ones before it in the transaction as it would see them committed. A
//! delivery that fails makes the batch roll back and every delivery of it be written alone.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, EntityTrait,
    QueryFilter, Statement,
};
use tracing::Instrument as _;
use tracing::field::Empty;
use verdict_domain::machine::Kind;
use verdict_domain::{
    Case, Cursor, EventType, Fingerprint, NewDelivery, NewQuarantine, Outcome, Prior, Recorded,
    Transition, machine,
};
use verdict_telemetry::TRACE_ONLY;

mod group_commit;

pub(crate) use group_commit::Waiting;

use crate::by_key::ByKey as _;
use crate::entity::{case, case_change, case_person, delivery};
use crate::span::{self, DbTarget};
use crate::write_gate::WriteGate;
use crate::{Error, convert, feed, purge, quarantine};

/// Records one delivery; see the module docs for what and in which order.
///
/// The whole transaction is one OpenTelemetry CLIENT span, `INSERT deliveries`, a child of the
/// webhook's request span. It carries the semconv `db.*` attributes and the case's scanRef,
/// event type, outcome and revision, never a statement's values.
pub(crate) async fn record(
    db: &DatabaseConnection,
    gate: &WriteGate,
    target: &DbTarget,
    delivery: NewDelivery,
) -> Result<Recorded, Error> {
    let span = tracing::info_span!(
        target: TRACE_ONLY,
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
        scan_ref = %delivery.payload.scan_ref,
        event_type = %delivery.event,
        outcome = Empty,
        revision = Empty,
    );
    let recorded = match gate.waiting() {
        Some(waiting) => group_commit::record(db, gate, waiting, delivery, span.clone()).await,
        None => {
            transaction(db, gate, delivery)
                .instrument(span.clone())
                .await
        }
    };
    match &recorded {
        Ok(recorded) => {
            span.record("outcome", recorded.label());
            if let Some(case) = recorded.case() {
                span.record("revision", i64::try_from(case.revision).unwrap_or(i64::MAX));
            }
        }
        Err(error) => span::record_error(&span, error),
    }
    recorded
}

/// One delivery in a transaction of its own, in its turn at `gate` (PostgreSQL: none).
async fn transaction(
    db: &DatabaseConnection,
    gate: &WriteGate,
    delivery: NewDelivery,
) -> Result<Recorded, Error> {
    let turn = gate.turn().await;
    alone(turn.connection(db), delivery).await
}

/// One delivery in a transaction of its own on `connection`, which the caller's turn gave it.
async fn alone(connection: &DatabaseConnection, delivery: NewDelivery) -> Result<Recorded, Error> {
    let txn = crate::begin_immediate(connection).await?;
    let recorded = record_in(&txn, delivery).await?;
    txn.commit().await?;
    Ok(recorded)
}

async fn record_in(txn: &DatabaseTransaction, delivery: NewDelivery) -> Result<Recorded, Error> {
    let scan_ref = delivery.payload.scan_ref.as_str();
    let fingerprint = Fingerprint::of(&delivery.body);

    // 0. A reprocess claims its item first; a concurrent reprocess of it finds it released.
    if let Some(id) = delivery.releases {
        quarantine::claim(txn, id).await?;
    }
    // A lifecycle notice erases the case's quarantine items: they are locked before the case.
    let notice = machine::classify(delivery.event, &delivery.payload) == Ok(Kind::Lifecycle);
    if notice {
        quarantine::lock_of_cases(txn, &[scan_ref.to_owned()]).await?;
    }

    // 1 and 2. The write lock on SQLite, the per-case insert race on PostgreSQL, and the
    // current state, locked for the rest of the transaction: one statement.
    let row = lock_or_create(txn, &delivery).await?;
    let decisive_at = row.decisive_at;
    let current = match row.revision {
        0 => None,
        _ => {
            let person = case_person::Entity::find_by_id(scan_ref)
                .by_key(txn)
                .await?
                .map(convert::person_from_row);
            Some(convert::case_from_row(row, person)?)
        }
    };

    // 3. Rule 1: an earlier copy, in the history or in the quarantine?
    let seen_before = seen_before(txn, &delivery, &fingerprint).await?;

    // 4. The state machine decides.
    let prior = current.as_ref().map(|case| Prior { case, decisive_at });
    let transition = machine::apply(
        prior,
        delivery.event,
        &delivery.payload,
        seen_before,
        delivery.received_at,
    );

    // 5. Write what it decided. A purged case keeps no body of what arrives for it.
    let was_purged = current.as_ref().is_some_and(Case::is_purged);
    let recorded = match transition {
        Transition::Applied {
            mut case,
            decisive_at,
            delivery_final,
            purges,
        } => {
            let mut purged = false;
            if purges {
                let at = purge::now();
                let erased = purge::erase(txn, &[scan_ref.to_owned()], at).await?;
                purged = !was_purged || !erased.is_empty();
                case.purged_at.get_or_insert(at);
            }
            let kept = Kept {
                outcome: Outcome::Applied,
                is_final: delivery_final,
                revision: case.revision,
                body: !(was_purged || purges),
            };
            insert_delivery(txn, &delivery, fingerprint, kept).await?;
            let position = apply_change(txn, &case, decisive_at, &delivery.traceparent).await?;
            Recorded::Applied {
                case,
                position,
                purged,
            }
        }
        Transition::Duplicate { delivery_final } => {
            // Kept even when the case does not exist (its earlier copy waits in the
            // quarantine), so every delivery stays recognisable; revision 0 says "no case".
            let kept = Kept {
                outcome: Outcome::Duplicate,
                is_final: delivery_final,
                revision: current.as_ref().map_or(0, |case| case.revision),
                body: !was_purged,
            };
            insert_delivery(txn, &delivery, fingerprint, kept).await?;
            if current.is_none() {
                forget_placeholder(txn, scan_ref).await?;
            }
            Recorded::Duplicate { case: current }
        }
        Transition::Stale { delivery_final } => {
            let case = current.ok_or_else(|| Error::corrupt("a stale delivery needs a case"))?;
            let kept = Kept {
                outcome: Outcome::Stale,
                is_final: delivery_final,
                revision: case.revision,
                body: !was_purged,
            };
            insert_delivery(txn, &delivery, fingerprint, kept).await?;
            Recorded::Stale { case }
        }
        Transition::Quarantine(reason) => {
            if current.is_none() {
                forget_placeholder(txn, scan_ref).await?;
            }
            let id = match delivery.releases {
                Some(id) => {
                    quarantine::reword(txn, id, &reason).await?;
                    id
                }
                None => {
                    let item = NewQuarantine {
                        event_type: Some(delivery.event.as_str().to_owned()),
                        body: delivery.body,
                        reason: reason.clone(),
                        received_at: delivery.received_at,
                        traceparent: delivery.traceparent,
                    };
                    let scan_ref = Some(scan_ref.to_owned());
                    quarantine::insert_row(txn, item, fingerprint, scan_ref, was_purged).await?
                }
            };
            return Ok(Recorded::Quarantined { id, reason });
        }
    };
    if let Some(id) = delivery.releases {
        quarantine::release(txn, id).await?;
    }
    Ok(recorded)
}

/// Rule 1 of the state machine: a delivery kept before this one *arrived* — in the case history
/// or in the quarantine — with the same raw body under any event type (1a), or with the same
/// event type and content (1b). Never the quarantine item being reprocessed itself.
///
/// One statement for both places (a round trip less on the write path). Both lookups are
/// indexed; the few rows they find are compared by arrival time here rather than in SQL, where
/// SQLite would compare timestamps as text. Quarantined bytes carry their case inside them, so
/// the quarantine is searched without a scanRef. The text is the same for every delivery and
/// both backends (`$n` parameters are SQLite's too), so each connection prepares it once.
async fn seen_before(
    txn: &DatabaseTransaction,
    delivery: &NewDelivery,
    fingerprint: &Fingerprint,
) -> Result<bool, Error> {
    const EARLIER_COPIES: &str = "\
        SELECT 0, received_at, id, event_type, body_sha256 FROM deliveries \
        WHERE scan_ref = $1 AND (body_sha256 = $2 OR (event_type = $3 AND content_sha256 = $4)) \
        UNION ALL \
        SELECT 1, received_at, id, event_type, body_sha256 FROM quarantine \
        WHERE body_sha256 = $2 OR content_sha256 = $4";
    let values = [
        delivery.payload.scan_ref.as_str().into(),
        fingerprint.body_sha256.as_str().into(),
        delivery.event.as_str().into(),
        fingerprint.content_sha256.as_str().into(),
    ];
    let statement =
        Statement::from_sql_and_values(txn.get_database_backend(), EARLIER_COPIES, values);
    for row in txn.query_all_raw(statement).await? {
        let parked = row.try_get_by_index::<i32>(0)? == 1;
        let at = row.try_get_by_index::<DateTime<Utc>>(1)?;
        if at >= delivery.received_at {
            continue;
        }
        if !parked {
            // The history rows are exactly the copies (the condition is in SQL).
            return Ok(true);
        }
        let id = row.try_get_by_index::<i64>(2)?;
        let event_type = row.try_get_by_index::<Option<String>>(3)?;
        let body_sha256 = row.try_get_by_index::<Option<String>>(4)?;
        if Some(id) != delivery.releases
            && (body_sha256.as_deref() == Some(fingerprint.body_sha256.as_str())
                || EventType::from_header(event_type.as_deref()) == Ok(delivery.event))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// How a delivery is kept in the case history.
struct Kept {
    outcome: Outcome,
    /// Whether the delivery itself was final.
    is_final: bool,
    /// The case revision after it.
    revision: u64,
    /// Whether its raw body is kept: not for a purged case (only the hashes).
    body: bool,
}

/// Keeps the delivery in the case history.
async fn insert_delivery(
    txn: &DatabaseTransaction,
    delivery: &NewDelivery,
    fingerprint: Fingerprint,
    Kept {
        outcome,
        is_final,
        revision,
        body,
    }: Kept,
) -> Result<(), Error> {
    delivery::Entity::insert(delivery::ActiveModel {
        id: NotSet,
        scan_ref: Set(delivery.payload.scan_ref.as_str().to_owned()),
        event_type: Set(delivery.event.as_str().to_owned()),
        body: Set(match body {
            true => delivery.body.to_vec(),
            false => Vec::new(),
        }),
        body_sha256: Set(fingerprint.body_sha256),
        content_sha256: Set(Some(fingerprint.content_sha256)),
        outcome: Set(outcome.as_str().to_owned()),
        is_final: Set(is_final),
        revision: Set(convert::to_i64(revision, "case revision")?),
        overall_status: Set(delivery.payload.status.overall.clone()),
        received_at: Set(delivery.received_at),
        traceparent: Set(delivery.traceparent.clone()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(())
}

/// Writes the applied case and its feed entry. The counter is taken after the person upsert so
/// that as little as possible happens while this transaction holds it.
async fn apply_change(
    txn: &DatabaseTransaction,
    case: &Case,
    decisive_at: Option<DateTime<Utc>>,
    traceparent: &Option<String>,
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
        .set(convert::case_to_row(case, position, decisive_at)?)
        .filter(case::Column::ScanRef.eq(case.scan_ref.as_str()))
        .exec(txn)
        .await?;
    case_change::Entity::insert(convert::change_to_row(
        position,
        case,
        traceparent.clone(),
        Utc::now(),
    )?)
    .exec_without_returning(txn)
    .await?;
    Ok(Cursor(convert::to_u64(position, "feed position")?))
}

/// Inserts the placeholder of a new case, or locks the case row that is there, and returns the
/// row either way: `INSERT … ON CONFLICT (scan_ref) DO UPDATE SET scan_ref = excluded.scan_ref
/// RETURNING …`. The update changes nothing; it is there because a conflicting `DO UPDATE` locks
/// the row as `SELECT … FOR UPDATE` would (PostgreSQL, READ COMMITTED: the latest committed
/// version, waiting for a concurrent writer of the case to finish) and returns it, which `DO
/// NOTHING` does not. A round trip less on every delivery than an insert and a locked read.
async fn lock_or_create(
    txn: &DatabaseTransaction,
    delivery: &NewDelivery,
) -> Result<case::Model, Error> {
    Ok(case::Entity::insert(placeholder(delivery))
        .on_conflict(
            OnConflict::column(case::Column::ScanRef)
                .update_column(case::Column::ScanRef)
                .to_owned(),
        )
        .exec_with_returning(txn)
        .await?)
}

/// The row that reserves a new case's scanRef: overwritten in the same transaction when the
/// delivery applies, deleted by [`forget_placeholder`] when it does not.
fn placeholder(delivery: &NewDelivery) -> case::ActiveModel {
    let empty_tags = convert::tags_to_json(&[]);
    case::ActiveModel {
        scan_ref: Set(delivery.payload.scan_ref.as_str().to_owned()),
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
        decisive_at: Set(None),
        purged_at: Set(None),
    }
}

/// Deletes this transaction's placeholder: no case row survives a delivery that made no case.
async fn forget_placeholder(txn: &DatabaseTransaction, scan_ref: &str) -> Result<(), Error> {
    case::Entity::delete_many()
        .filter(case::Column::ScanRef.eq(scan_ref))
        .filter(case::Column::Revision.eq(0))
        .exec(txn)
        .await?;
    Ok(())
}
