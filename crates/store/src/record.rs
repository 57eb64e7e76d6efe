//! Recording deliveries: the one write path. The deliveries waiting for the write gate are
//! written together, in one transaction, by whoever gets the turn (`group_commit`); a
//! transaction of one delivery is the same path with a batch of one.
//!
//! For each delivery, in arrival order, the transaction looks for an earlier copy (rule 1 of the
//! state machine), lets `machine::apply` judge it against its case as the deliveries before it
//! left the case, and writes what it decided: the delivery in the case history — for an applied
//! one also the case and its feed entry — or, when the machine quarantines it, the quarantine
//! item instead, leaving no trace on any case. A reprocess claims the quarantine item it comes
//! from first and releases it (or rewords it, when it is quarantined again) in the same
//! transaction, so a crash can neither record it twice nor lose it.
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
//! The transaction is correct on PostgreSQL (READ COMMITTED) and SQLite alike. Its steps:
//!
//! 0. Quarantine items are locked first: a reprocess claims its item, a lifecycle notice (which
//!    erases them) locks its case's items. Such a delivery is always a batch of its own
//!    ([`locks_quarantine`]), so a batch never holds a case while it waits for an item.
//! 1. The batch's **first write** takes each of its cases, in key order: it inserts a placeholder
//!    case row (revision 0) or, when the case row is there, locks it, in one statement that
//!    returns the row either way:
//!    `INSERT … ON CONFLICT (scan_ref) DO UPDATE SET scan_ref = excluded.scan_ref RETURNING …`.
//!    On SQLite the transaction starts `IMMEDIATE` anyway, and a write as first statement takes
//!    the single write lock at once, so a transaction never has to upgrade from reader to writer
//!    (the upgrade fails with `SQLITE_BUSY` regardless of the busy timeout). On PostgreSQL two
//!    first deliveries of a new case cannot both insert: the second waits for the first to
//!    commit, then takes the conflict path.
//! 2. The conflict path's (no-op) update locks the case row as `SELECT … FOR UPDATE` would, on
//!    the latest committed version (PostgreSQL; SQLite's write lock already serialises writers),
//!    so the case read with it — and every later read in the transaction, person, duplicate
//!    check — is the state left by the previous writer of this case, and revisions are assigned
//!    without gaps or repeats. From there the transaction keeps each case's state itself, moved
//!    on by each applied delivery; the next delivery of the same case is judged against it.
//! 3. to 5. Each delivery, in arrival order: rule 1, the machine, and its rows (delivery, person
//!    upsert, quarantine item). Rule 1 reads the history, where the deliveries before it in the
//!    batch already are. A delivery alone in its batch has no delivery after it to find its row
//!    there, so when it applies, its rows wait and travel with the feed (step 6).
//! 6. Only then, once per batch, placeholders no delivery turned into a case are deleted, and
//!    the feed positions of all applied changes are taken at once with `UPDATE feed_counter SET
//!    value = value + n WHERE id = 1 RETURNING value`; all that follows before the commit is the
//!    update of each changed (already locked) case row, with its latest change's position as
//!    `last_position`, and the insert of the feed rows.
//!
//! Some of these statements travel together, in one round trip ([`one_trip`]): a delivery's row
//! with its person's upsert, and for a batch of a few changes the counter, the case rows and the
//! feed rows. On PostgreSQL they are data-modifying CTEs of one statement, run on one snapshot:
//! each writes rows the others neither write nor read, and the positions come from the counter
//! CTE's `RETURNING`. On SQLite they are one text of several statements, run in order. A
//! delivery written alone also sends its rows with the feed's, and on SQLite its rule-1 lookup
//! with its case's lock ([`lock_and_look`]). On SQLite the transaction's `BEGIN IMMEDIATE` goes
//! with its first statement and, for a delivery alone, its `COMMIT` with its last
//! (`sqlite_write`): a new case in two round trips on SQLite, five on PostgreSQL (nine before
//! any of this; the ceiling's eight).
//!
//! Taking the counter row lock last is what makes feed positions commit-ordered: the
//! transaction holding position N keeps the counter row locked until it commits, so nobody can
//! take N+1 before N is committed and visible. A reader asking for `position > cursor` can
//! therefore never skip a row that commits late — the failure DESIGN.md warns about with
//! PostgreSQL sequences, whose values are handed out at call time, not at commit. The price is
//! that applied changes serialise on the counter for the few statements between it and the
//! commit, which is why it comes last, once per batch. Locks are always taken quarantine items →
//! case rows in key order → counter row, here and in `purge`, so concurrent transactions —
//! batches on other replicas, a retention pass — never wait for each other in a cycle.

use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;

use chrono::{DateTime, SubsecRound as _, Utc};
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, InsertStatement, OnConflict, Query, SubQueryStatement,
    UpdateStatement, WithClause,
};
use sea_orm::sqlx::SqliteConnection;
use sea_orm::{
    ActiveModelTrait as _,
    ActiveValue::{NotSet, Set},
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait,
    FromQueryResult as _, Iterable as _, QueryFilter, QueryResult, QueryTrait as _, Statement,
    StatementBuilder, Value,
};
use tracing::field::Empty;
use tracing::{Instrument as _, Span};
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
use crate::sqlite_write::{SqliteWrite, Transaction};
use crate::write_gate::{Turn, WriteGate};
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
    mut delivery: NewDelivery,
) -> Result<Recorded, Error> {
    // To the microsecond, as PostgreSQL keeps times: the case answered (and published to this
    // process's watchers and `GetCase` cache) is then the case a read returns, on either
    // backend.
    delivery.received_at = delivery.received_at.trunc_subsecs(6);
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
    let recorded = group_commit::record(db, gate, delivery, span.clone()).await;
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

/// One delivery in a transaction of its own, during `turn`: on SQLite's connection for
/// deliveries with its COMMIT sent along with its last statement (`sqlite_write`), else on the
/// turn's connection in `db`.
async fn alone(
    db: &DatabaseConnection,
    turn: &mut Turn,
    delivery: NewDelivery,
) -> Result<Recorded, Error> {
    let batch = vec![(delivery, Span::current())];
    let recorded = match turn.take_deliveries().await {
        Some(connection) => on_sqlite(turn, connection?, batch, true).await?,
        None => {
            let txn = crate::begin_immediate(turn.connection(db)).await?;
            let recorded = record_in(&txn, batch).await?;
            txn.commit().await?;
            recorded
        }
    };
    recorded
        .into_iter()
        .next()
        .ok_or_else(|| Error::corrupt("a delivery written alone had no answer"))
}

/// `batch` in one transaction on `connection`, SQLite's connection for deliveries that `turn`
/// gave ([`Turn::take_deliveries`]), committed (with its last statement when `commit_rides`:
/// see `sqlite_write`). The connection goes back to the turn only then; otherwise it is dropped,
/// which rolls the transaction back.
async fn on_sqlite(
    turn: &mut Turn,
    mut connection: SqliteConnection,
    batch: Vec<(NewDelivery, Span)>,
    commit_rides: bool,
) -> Result<Vec<Recorded>, Error> {
    let txn = SqliteWrite::new(&mut connection, commit_rides);
    let recorded = record_in(&txn, batch).await?;
    txn.commit().await?;
    turn.give_back(connection);
    Ok(recorded)
}

/// Whether a delivery locks quarantine items (before its case: a reprocess its item, a
/// lifecycle notice its case's items). Such a delivery is written in a transaction of its own,
/// so that the lock order quarantine items → case rows → counter row holds.
pub(crate) fn locks_quarantine(delivery: &NewDelivery) -> bool {
    delivery.releases.is_some()
        || machine::classify(delivery.event, &delivery.payload) == Ok(Kind::Lifecycle)
}

/// Records `batch` in `txn` in four steps (see the module docs): quarantine locks, the cases
/// (locked in key order), each delivery judged and kept in arrival order, then the feed.
/// Returns one answer per delivery, in the same order. Each delivery's own statements run in
/// its span; the shared ones in the first delivery's.
async fn record_in(
    txn: &impl Transaction,
    batch: Vec<(NewDelivery, Span)>,
) -> Result<Vec<Recorded>, Error> {
    let Some(first) = batch.first().map(|(_, span)| span.clone()) else {
        return Ok(Vec::new());
    };
    // 0. A reprocess claims its item first; a concurrent reprocess of it finds it released. A
    // lifecycle notice erases the case's quarantine items: they are locked before the case.
    for (delivery, span) in &batch {
        lock_quarantine(txn, delivery)
            .instrument(span.clone())
            .await?;
    }
    // 1 and 2. Every case of the batch, locked (or reserved) with its current state.
    // Each delivery's fingerprint, once: rule 1 looks for it, the delivery's row keeps it.
    let fingerprints: Vec<Fingerprint> = batch
        .iter()
        .map(|(delivery, _)| Fingerprint::of(&delivery.body))
        .collect();
    let mut cases = lock_cases(txn, &batch, &fingerprints)
        .instrument(first.clone())
        .await?;
    // 3 to 5. Each delivery judged against the state the ones before it left. Alone in its
    // batch, an applied delivery's rows travel with the feed (no later delivery's rule 1 needs
    // them in the table first).
    let mut changes = Vec::new();
    let mut drafts = Vec::with_capacity(batch.len());
    let mut deferred = (batch.len() == 1).then(Vec::new);
    for ((delivery, span), fingerprint) in batch.into_iter().zip(fingerprints) {
        let deferred = deferred.as_mut();
        let draft = judge(
            txn,
            delivery,
            fingerprint,
            &mut cases,
            &mut changes,
            deferred,
        )
        .instrument(span)
        .await?;
        drafts.push(draft);
    }
    // 6. The feed, last: commit order starts there.
    let positions = write_changes(txn, &cases, &changes, deferred.unwrap_or_default())
        .instrument(first)
        .await?;
    drafts
        .into_iter()
        .map(|draft| match draft {
            Draft::Done(recorded) => Ok(recorded),
            Draft::Applied { change, purged } => Ok(Recorded::Applied {
                case: changes[change].case.clone(),
                position: Cursor(convert::to_u64(positions[change], "feed position")?),
                purged,
            }),
        })
        .collect()
}

/// What the transaction knows of a case it locked: its state after the deliveries so far.
struct Locked {
    /// `None` while the case does not exist: its row is this transaction's placeholder.
    case: Option<Case>,
    decisive_at: Option<DateTime<Utc>>,
    /// Its latest change in this transaction, an index into the batch's changes.
    last_change: Option<usize>,
    /// Rule 1's answer for the batch's only delivery, when it came with the lock
    /// ([`lock_and_look`]); taken by that delivery's judgement.
    seen_before: Option<bool>,
}

/// An applied change waiting for its feed position.
struct Change {
    case: Case,
    traceparent: Option<String>,
}

/// A delivery's answer before the feed positions are known.
#[expect(
    clippy::large_enum_variant,
    reason = "one per delivery of a batch, consumed when it commits: boxing would only allocate"
)]
enum Draft {
    Done(Recorded),
    Applied { change: usize, purged: bool },
}

async fn lock_quarantine(txn: &impl ConnectionTrait, delivery: &NewDelivery) -> Result<(), Error> {
    if let Some(id) = delivery.releases {
        quarantine::claim(txn, id).await?;
    }
    if machine::classify(delivery.event, &delivery.payload) == Ok(Kind::Lifecycle) {
        let scan_ref = delivery.payload.scan_ref.as_str().to_owned();
        quarantine::lock_of_cases(txn, &[scan_ref]).await?;
    }
    Ok(())
}

/// Locks every case of `batch` in key order (byte order, as `purge` locks them), creating the
/// placeholder of each new one, and reads its current state: the write lock on SQLite, the
/// per-case insert race and a lock order without cycles on PostgreSQL.
async fn lock_cases(
    txn: &impl ConnectionTrait,
    batch: &[(NewDelivery, Span)],
    fingerprints: &[Fingerprint],
) -> Result<HashMap<String, Locked>, Error> {
    let mut first_of_each = BTreeMap::new();
    for (delivery, _) in batch {
        first_of_each
            .entry(delivery.payload.scan_ref.as_str())
            .or_insert(delivery);
    }
    // On SQLite a batch of one looks for its earlier copies with the lock (see `lock_and_look`).
    let alone = match (batch, fingerprints) {
        ([(only, _)], [fingerprint]) if txn.get_database_backend() == DbBackend::Sqlite => {
            Some((only, fingerprint))
        }
        _ => None,
    };
    let mut cases = HashMap::with_capacity(first_of_each.len());
    for (scan_ref, delivery) in first_of_each {
        let (row, seen_before) = match alone {
            Some((only, fingerprint)) => {
                let (row, seen_before) = lock_and_look(txn, only, fingerprint).await?;
                (row, Some(seen_before))
            }
            None => (lock_or_create(txn, delivery).await?, None),
        };
        let decisive_at = row.decisive_at;
        let case = match row.revision {
            0 => None,
            _ => {
                let person = case_person::Entity::find_by_id(scan_ref)
                    .by_key(txn)
                    .await?
                    .map(convert::person_from_row);
                Some(convert::case_from_row(row, person)?)
            }
        };
        let locked = Locked {
            case,
            decisive_at,
            last_change: None,
            seen_before,
        };
        cases.insert(scan_ref.to_owned(), locked);
    }
    Ok(cases)
}

/// Judges one delivery against its case's state in `cases` and writes what the machine decided,
/// except the feed: an applied change is pushed to `changes` and its case's state moves on.
/// With `deferred` (a delivery alone in its batch), an applied delivery's rows are pushed there
/// for the feed's round trip instead of being written now.
async fn judge(
    txn: &impl ConnectionTrait,
    delivery: NewDelivery,
    fingerprint: Fingerprint,
    cases: &mut HashMap<String, Locked>,
    changes: &mut Vec<Change>,
    deferred: Option<&mut Vec<InsertStatement>>,
) -> Result<Draft, Error> {
    let scan_ref = delivery.payload.scan_ref.as_str();
    let locked = cases
        .get_mut(scan_ref)
        .ok_or_else(|| Error::corrupt("a delivery's case was not locked"))?;

    // 3. Rule 1: an earlier copy, in the history or in the quarantine?
    let seen_before = match locked.seen_before.take() {
        Some(seen_before) => seen_before,
        None => seen_before(txn, &delivery, &fingerprint).await?,
    };

    // 4. The state machine decides.
    let prior = locked.case.as_ref().map(|case| Prior {
        case,
        decisive_at: locked.decisive_at,
    });
    let transition = machine::apply(
        prior,
        delivery.event,
        &delivery.payload,
        seen_before,
        delivery.received_at,
    );

    // 5. Write what it decided. A purged case keeps no body of what arrives for it.
    let was_purged = locked.case.as_ref().is_some_and(Case::is_purged);
    let draft = match transition {
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
            let kept = delivery_row(&delivery, fingerprint, kept)?;
            let person = case
                .person
                .as_ref()
                .map(|person| person_row(scan_ref, person));
            match (deferred, person) {
                (Some(deferred), person) => deferred.extend(person.into_iter().chain([kept])),
                (None, Some(person)) => {
                    one_trip(txn, vec![person], kept).await?;
                }
                (None, None) => execute(txn, kept).await?,
            }
            let change = changes.len();
            changes.push(Change {
                case: case.clone(),
                traceparent: delivery.traceparent.clone(),
            });
            *locked = Locked {
                case: Some(case),
                decisive_at,
                last_change: Some(change),
                seen_before: None,
            };
            Draft::Applied { change, purged }
        }
        Transition::Duplicate { delivery_final } => {
            // Kept even when the case does not exist (its earlier copy waits in the
            // quarantine), so every delivery stays recognisable; revision 0 says "no case".
            let kept = Kept {
                outcome: Outcome::Duplicate,
                is_final: delivery_final,
                revision: locked.case.as_ref().map_or(0, |case| case.revision),
                body: !was_purged,
            };
            execute(txn, delivery_row(&delivery, fingerprint, kept)?).await?;
            Draft::Done(Recorded::Duplicate {
                case: locked.case.clone(),
            })
        }
        Transition::Stale { delivery_final } => {
            let case = locked
                .case
                .clone()
                .ok_or_else(|| Error::corrupt("a stale delivery needs a case"))?;
            let kept = Kept {
                outcome: Outcome::Stale,
                is_final: delivery_final,
                revision: case.revision,
                body: !was_purged,
            };
            execute(txn, delivery_row(&delivery, fingerprint, kept)?).await?;
            Draft::Done(Recorded::Stale { case })
        }
        Transition::Quarantine(reason) => {
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
                    let scan_ref = Some(delivery.payload.scan_ref.as_str().to_owned());
                    quarantine::insert_row(txn, item, fingerprint, scan_ref, was_purged).await?
                }
            };
            return Ok(Draft::Done(Recorded::Quarantined { id, reason }));
        }
    };
    if let Some(id) = delivery.releases {
        quarantine::release(txn, id).await?;
    }
    Ok(draft)
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
    txn: &impl ConnectionTrait,
    delivery: &NewDelivery,
    fingerprint: &Fingerprint,
) -> Result<bool, Error> {
    let values = earlier_copies_values(delivery, fingerprint);
    let statement =
        Statement::from_sql_and_values(txn.get_database_backend(), EARLIER_COPIES, values);
    is_a_copy(&txn.query_all_raw(statement).await?, delivery, fingerprint)
}

/// [`seen_before`]'s lookup, whose rows [`is_a_copy`] reads.
const EARLIER_COPIES: &str = "\
    SELECT 0, received_at, id, event_type, body_sha256 FROM deliveries \
    WHERE scan_ref = $1 AND (body_sha256 = $2 OR (event_type = $3 AND content_sha256 = $4)) \
    UNION ALL \
    SELECT 1, received_at, id, event_type, body_sha256 FROM quarantine \
    WHERE body_sha256 = $2 OR content_sha256 = $4";

/// The values of [`EARLIER_COPIES`]' `$1` to `$4`.
fn earlier_copies_values(delivery: &NewDelivery, fingerprint: &Fingerprint) -> [Value; 4] {
    [
        delivery.payload.scan_ref.as_str().into(),
        fingerprint.body_sha256.as_str().into(),
        delivery.event.as_str().into(),
        fingerprint.content_sha256.as_str().into(),
    ]
}

/// [`EARLIER_COPIES`] with anonymous parameters, and which of its values each takes in turn:
/// numbered parameters name values of the whole text, so in a text of several statements
/// ([`lock_and_look`]) it needs `?`, which sqlx binds after the statements before it.
static EARLIER_COPIES_ANONYMOUS: LazyLock<(String, Vec<usize>)> = LazyLock::new(|| {
    let mut sql = String::with_capacity(EARLIER_COPIES.len());
    let mut order = Vec::new();
    let mut rest = EARLIER_COPIES;
    while let Some(at) = rest.find('$') {
        sql.push_str(&rest[..at]);
        sql.push('?');
        let digits = rest[at + 1..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - at - 1);
        let number: usize = rest[at + 1..at + 1 + digits]
            .parse()
            .expect("EARLIER_COPIES numbers its parameters");
        order.push(number - 1);
        rest = &rest[at + 1 + digits..];
    }
    sql.push_str(rest);
    (sql, order)
});

/// Whether the rows of the earlier-copies lookup (`seen_before`'s columns) hold an earlier copy
/// of `delivery`.
fn is_a_copy(
    rows: &[QueryResult],
    delivery: &NewDelivery,
    fingerprint: &Fingerprint,
) -> Result<bool, Error> {
    for row in rows {
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

/// On SQLite, a batch of one delivery: its case's lock ([`lock_or_create`]) and rule 1's
/// lookup ([`seen_before`]) in one round trip, as one text of two statements that sqlx runs in
/// order on the connection's thread; the lock's row comes first, the copies after it. The
/// lookup needs no wait for the lock there: `BEGIN IMMEDIATE` took SQLite's single write lock,
/// so nobody writes between the two. (On PostgreSQL it must follow the lock's wait for a
/// concurrent writer of the case, so it stays a statement of its own.) The first of a new
/// case's two round trips: a webhook alone, as at c=1, is where round trips are its latency.
async fn lock_and_look(
    txn: &impl ConnectionTrait,
    delivery: &NewDelivery,
    fingerprint: &Fingerprint,
) -> Result<(case::Model, bool), Error> {
    let backend = txn.get_database_backend();
    let lock = StatementBuilder::build(&lock_statement(delivery, backend), &backend);
    let (copies_sql, order) = &*EARLIER_COPIES_ANONYMOUS;
    let copies_values = earlier_copies_values(delivery, fingerprint);
    let mut values = lock.values.map(|values| values.0).unwrap_or_default();
    values.extend(order.iter().map(|&i| copies_values[i].clone()));
    let sql = format!("{};\n{copies_sql}", lock.sql);
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let (row, copies) = rows
        .split_first()
        .ok_or_else(|| Error::corrupt("the case lock returned no row"))?;
    let row = case::Model::from_query_result(row, "")?;
    Ok((row, is_a_copy(copies, delivery, fingerprint)?))
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

/// The statement that keeps the delivery in the case history.
fn delivery_row(
    delivery: &NewDelivery,
    fingerprint: Fingerprint,
    Kept {
        outcome,
        is_final,
        revision,
        body,
    }: Kept,
) -> Result<InsertStatement, Error> {
    Ok(delivery::Entity::insert(delivery::ActiveModel {
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
    .into_query())
}

/// The statement that keeps the person a delivery stated: the body states it whole (see the
/// machine).
fn person_row(scan_ref: &str, person: &verdict_domain::Person) -> InsertStatement {
    case_person::Entity::insert(convert::person_to_row(scan_ref, person))
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
        .into_query()
}

/// Runs `first`, then `last`, in one round trip; returns the rows they return. A round trip is
/// a wake-up on each side: leaving two of a webhook's statements out took PostgreSQL ingest at
/// c=4 from 0.69 to 0.90 of its ceiling (`verdict-bench ingest --quick`).
///
/// On PostgreSQL each of `first` becomes a data-modifying CTE of `last` (`WITH w0 AS (…), w1
/// AS (…) INSERT …`), run exactly once whether or not anything reads it. They all run on one
/// snapshot, so they must not depend on one another's writes: callers pass writes to different
/// rows, and read what an earlier one returns through its CTE (`w0`). On SQLite they become one
/// text of several statements, which sqlx runs in order on the connection's thread, binding
/// each its share of the values.
async fn one_trip<S>(
    txn: &impl ConnectionTrait,
    first: Vec<S>,
    last: InsertStatement,
) -> Result<Vec<QueryResult>, Error>
where
    S: StatementBuilder + Into<SubQueryStatement>,
{
    let backend = txn.get_database_backend();
    if backend != DbBackend::Postgres {
        let mut sql = String::new();
        let mut values = Vec::new();
        let statements = first
            .iter()
            .map(|statement| StatementBuilder::build(statement, &backend));
        for statement in statements.chain([StatementBuilder::build(&last, &backend)]) {
            sql.push_str(&statement.sql);
            sql.push_str(";\n");
            values.extend(statement.values.map(|values| values.0).unwrap_or_default());
        }
        let statement = Statement::from_sql_and_values(backend, sql, values);
        return Ok(txn.query_all_raw(statement).await?);
    }
    let mut with = WithClause::new();
    for (i, statement) in first.into_iter().enumerate() {
        with.cte(
            CommonTableExpression::new()
                .query(statement)
                .table_name(Alias::new(format!("w{i}")))
                .to_owned(),
        );
    }
    Ok(txn.query_all(&last.with(with)).await?)
}

/// A statement of either kind among [`one_trip`]'s first ones.
enum Write {
    Update(UpdateStatement),
    Insert(InsertStatement),
}

impl StatementBuilder for Write {
    fn build(&self, db_backend: &DbBackend) -> Statement {
        match self {
            Self::Update(update) => StatementBuilder::build(update, db_backend),
            Self::Insert(insert) => StatementBuilder::build(insert, db_backend),
        }
    }
}

impl From<Write> for SubQueryStatement {
    fn from(write: Write) -> Self {
        match write {
            Write::Update(update) => update.into(),
            Write::Insert(insert) => insert.into(),
        }
    }
}

async fn execute(
    txn: &impl ConnectionTrait,
    statement: impl StatementBuilder,
) -> Result<(), Error> {
    txn.execute(&statement).await?;
    Ok(())
}

/// Feed rows per `INSERT`: a snapshot is about half a kilobyte, so a statement stays well under
/// 16 KiB (with as many case updates as rows, half as many). A batch of 25 changes or more in
/// one statement took 43 ms instead of half a millisecond (timed in `verdict-bench ingest` on
/// PostgreSQL, which connects with TLS when the server offers it). A 40 ms step is Nagle's
/// algorithm holding a second write until the server acknowledges the first, which it delays:
/// a statement larger than one TLS record (16 KiB) most likely leaves the client in two
/// writes, and sqlx does not set `TCP_NODELAY`.
const FEED_ROWS_PER_STATEMENT: usize = 16;

/// Deletes the placeholders no delivery turned into a case, then takes the feed positions of
/// `changes` (all at once), writes each changed case's latest state and the feed rows; returns
/// the position of each change. The counter is taken only now, after every other write of the
/// batch, so that as little as possible happens while this transaction holds it.
async fn write_changes(
    txn: &impl Transaction,
    cases: &HashMap<String, Locked>,
    changes: &[Change],
    deferred: Vec<InsertStatement>,
) -> Result<Vec<i64>, Error> {
    let mut unmade = Vec::new();
    for (scan_ref, locked) in cases {
        if locked.case.is_none() {
            unmade.push(scan_ref.as_str());
        }
    }
    if !unmade.is_empty() {
        case::Entity::delete_many()
            .filter(case::Column::ScanRef.is_in(unmade))
            .filter(case::Column::Revision.eq(0))
            .exec(txn)
            .await?;
    }
    if changes.len() <= FEED_ROWS_PER_STATEMENT / 2 && !changes.is_empty() {
        return feed_in_one_statement(txn, cases, changes, deferred).await;
    }
    for row in deferred {
        execute(txn, row).await?;
    }
    if changes.is_empty() {
        return Ok(Vec::new());
    }

    // Commit order starts here: see the module docs.
    let positions: Vec<i64> = feed::next_positions(txn, changes.len()).await?.collect();
    let position = |i: usize| Expr::val(positions[i]);
    for update in case_updates(cases, &position)? {
        execute(txn, update).await?;
    }
    let committed_at = Utc::now();
    for (k, chunk) in changes.chunks(FEED_ROWS_PER_STATEMENT).enumerate() {
        let from = k * FEED_ROWS_PER_STATEMENT;
        execute(txn, feed_rows(chunk, from, &position, committed_at)?).await?;
    }
    Ok(positions)
}

/// [`write_changes`] for a few changes: the counter, the case rows, the `deferred` rows of a
/// delivery written alone and the feed rows in one round trip ([`one_trip`]; each writes rows
/// none of the others writes), each position computed in SQL from the counter's new value (on
/// PostgreSQL what the counter CTE `w0` returns; on SQLite the counter row, updated by the
/// statement before). The counter's row lock is then held for this round trip and the commit
/// only.
async fn feed_in_one_statement(
    txn: &impl Transaction,
    cases: &HashMap<String, Locked>,
    changes: &[Change],
    deferred: Vec<InsertStatement>,
) -> Result<Vec<i64>, Error> {
    let n = changes.len();
    let count = i64::try_from(n).map_err(|_| Error::corrupt("more changes than an i64 holds"))?;
    let counter = match txn.get_database_backend() {
        DbBackend::Postgres => r#"(SELECT "value" FROM "w0")"#,
        _ => r#"(SELECT "value" FROM "feed_counter" WHERE "id" = 1)"#,
    };
    // Change `i` takes the i-th of the `n` positions up to the counter's new value.
    let position = |i: usize| Expr::cust(format!("{counter} - {}", n - 1 - i));
    let mut first = vec![Write::Update(feed::bump(count))];
    first.extend(
        case_updates(cases, &position)?
            .into_iter()
            .map(Write::Update),
    );
    first.extend(deferred.into_iter().map(Write::Insert));
    let mut feed = feed_rows(changes, 0, &position, Utc::now())?;
    feed.returning_col(case_change::Column::Position);
    // The feed rows' positions (and on SQLite the counter's value before them): the greatest is
    // the counter's new value. Nothing of the transaction follows this trip.
    txn.last_statement_next();
    let rows = one_trip(txn, first, feed).await?;
    if rows.len() < n {
        return Err(Error::corrupt(
            "the feed insert returned fewer rows than it inserted",
        ));
    }
    let last = rows
        .iter()
        .map(|row| row.try_get_by_index::<i64>(0))
        .try_fold(i64::MIN, |last, position| {
            Ok::<_, DbErr>(last.max(position?))
        })?;
    Ok((last - count + 1..=last).collect())
}

/// The update of each case the batch changed to its latest state; `position(i)` is the feed
/// position of change `i`, a value or SQL that computes it.
fn case_updates(
    cases: &HashMap<String, Locked>,
    position: &impl Fn(usize) -> Expr,
) -> Result<Vec<UpdateStatement>, Error> {
    let mut updates = Vec::new();
    for locked in cases.values() {
        if let (Some(case), Some(last)) = (&locked.case, locked.last_change) {
            let mut row = convert::case_to_row(case, 0, locked.decisive_at)?;
            row.last_position = NotSet;
            let mut update = case::Entity::update_many()
                .set(row)
                .filter(case::Column::ScanRef.eq(case.scan_ref.as_str()))
                .into_query();
            update.value(case::Column::LastPosition, position(last));
            updates.push(update);
        }
    }
    Ok(updates)
}

/// The insert of `changes` into the feed, the first being the batch's change `from`;
/// `position(i)` is the feed position of the batch's change `i`, a value or SQL that computes
/// it.
fn feed_rows(
    changes: &[Change],
    from: usize,
    position: &impl Fn(usize) -> Expr,
    committed_at: DateTime<Utc>,
) -> Result<InsertStatement, Error> {
    let mut feed = Query::insert();
    feed.into_table(case_change::Entity)
        .columns(case_change::Column::iter());
    for (i, change) in changes.iter().enumerate() {
        let row =
            convert::change_to_row(0, &change.case, change.traceparent.clone(), committed_at)?;
        let mut values = Vec::new();
        for column in case_change::Column::iter() {
            values.push(match column {
                case_change::Column::Position => position(from + i),
                column => match row.get(column).into_value() {
                    Some(value) => Expr::val(value),
                    None => return Err(Error::corrupt(format!("feed row without {column:?}"))),
                },
            });
        }
        feed.values(values)
            .map_err(|e| Error::corrupt(format!("feed row: {e}")))?;
    }
    Ok(feed)
}

/// Inserts the placeholder of a new case, or locks the case row that is there, and returns the
/// row either way: `INSERT … ON CONFLICT (scan_ref) DO UPDATE SET scan_ref = excluded.scan_ref
/// RETURNING …`. The update changes nothing; it is there because a conflicting `DO UPDATE` locks
/// the row as `SELECT … FOR UPDATE` would (PostgreSQL, READ COMMITTED: the latest committed
/// version, waiting for a concurrent writer of the case to finish) and returns it, which `DO
/// NOTHING` does not. A round trip less on every delivery than an insert and a locked read.
async fn lock_or_create(
    txn: &impl ConnectionTrait,
    delivery: &NewDelivery,
) -> Result<case::Model, Error> {
    let lock = lock_statement(delivery, txn.get_database_backend());
    let row = txn
        .query_one(&lock)
        .await?
        .ok_or_else(|| Error::corrupt("the case lock returned no row"))?;
    Ok(case::Model::from_query_result(&row, "")?)
}

/// [`lock_or_create`]'s statement, returning every column of the row.
fn lock_statement(delivery: &NewDelivery, backend: DbBackend) -> InsertStatement {
    let mut lock = case::Entity::insert(placeholder(delivery))
        .on_conflict(
            OnConflict::column(case::Column::ScanRef)
                .update_column(case::Column::ScanRef)
                .to_owned(),
        )
        .into_query();
    lock.returning(Query::returning().exprs(
        case::Column::iter().map(|column| column.select_as(column.into_returning_expr(backend))),
    ));
    lock
}

/// The row that reserves a new case's scanRef: overwritten in the same transaction when a
/// delivery applies, deleted by [`write_changes`] when none does.
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

#[cfg(test)]
mod tests;
