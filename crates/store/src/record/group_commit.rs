//! Group commit: the deliveries waiting for the write gate are written by whoever gets the
//! turn, in one transaction, so they share its `BEGIN`, its feed counter update and its
//! `COMMIT` (with its WAL sync, on either backend).
//!
//! SQLite has one writer at a time, and with `synchronous=FULL` every commit syncs the WAL to
//! disk: one transaction per webhook made concurrent webhooks queue at the gate, each paying for
//! its own sync. On PostgreSQL every applied change holds the feed counter's row lock from
//! taking its position to its commit: sixteen webhooks in flight were sixteen transactions
//! queued on that lock, each paying a commit while the others waited (and fewer were written
//! per second at c=16 than at c=4). Now a writer puts its delivery in the queue and waits for
//! either its answer or a turn (per replica, one batch at a time on SQLite and two on
//! PostgreSQL: `write_gate`); whoever gets a turn takes everything queued (up to
//! [`MAX_BATCH`]) and writes it, in arrival order, in one transaction (`record_in`): each
//! delivery is judged against the state the ones before it left, so rule 1 and revisions work
//! across the batch, and the feed counter is taken once, last. A delivery is answered only
//! after the commit that holds it, as before.
//!
//! If any delivery of a batch fails, or the commit does, the whole transaction is rolled back
//! and each delivery is written again in a transaction of its own: one delivery's failure (a
//! reprocess whose item another reprocess released, say) is its own answer only, and nothing is
//! half-written. A batch of one is that transaction of its own from the start.
//!
//! The batch is written on a task of its own, so a caller that goes away while it writes (its
//! client hung up) abandons no one else's delivery; and the turn is given back only after every
//! answer was sent. A waiter that gets a turn and finds nothing queued has its delivery in a
//! batch already (on PostgreSQL a second batch may be written while one commits: see
//! `write_gate`), and waits for its answer.
//! A caller that stops waiting while its delivery is still queued (its write deadline passed)
//! leaves it there: it may still be written, with nobody to answer or to publish it. Its client
//! was answered 503, so iDenfy's retry comes back as a duplicate, and the periodic resync tells
//! the watchers, as after a crash between commit and publish.

use sea_orm::{DatabaseConnection, DbErr};
use tokio::sync::oneshot;
use tracing::{Instrument as _, Span};
use verdict_domain::{NewDelivery, Recorded};

use super::{alone, locks_quarantine, on_sqlite, record_in};
use crate::Error;
use crate::write_gate::{Turn, WriteGate};

/// At most this many deliveries in one transaction, so the first of a long queue is not held
/// for the whole queue's writes.
const MAX_BATCH: usize = 64;

/// The deliveries waiting for the write gate.
#[derive(Debug, Default)]
pub(crate) struct Waiting(std::sync::Mutex<Vec<Pending>>);

#[derive(Debug)]
struct Pending {
    delivery: NewDelivery,
    /// The delivery's own `INSERT deliveries` span, where its statements run.
    span: Span,
    answer: oneshot::Sender<Result<Recorded, Error>>,
}

impl Waiting {
    fn push(&self, pending: Pending) {
        self.lock().push(pending);
    }

    /// The oldest waiting deliveries, at most [`MAX_BATCH`], in arrival order; a delivery that
    /// locks quarantine items only by itself (see [`locks_quarantine`]).
    fn take(&self) -> Vec<Pending> {
        let mut queue = self.lock();
        let n = match queue.first() {
            None => 0,
            Some(first) if locks_quarantine(&first.delivery) => 1,
            Some(_) => queue
                .iter()
                .take(MAX_BATCH)
                .position(|pending| locks_quarantine(&pending.delivery))
                .unwrap_or(queue.len().min(MAX_BATCH)),
        };
        queue.drain(..n).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // A Vec pushed to and drained stays consistent even if a holder panicked.
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Records `delivery` (its statements in `span`) with the others waiting at `gate`; see the
/// module docs.
pub(super) async fn record(
    db: &DatabaseConnection,
    gate: &WriteGate,
    delivery: NewDelivery,
    span: Span,
) -> Result<Recorded, Error> {
    let waiting = gate.waiting();
    let (answer, mut answered) = oneshot::channel();
    waiting.push(Pending {
        delivery,
        span,
        answer,
    });
    loop {
        tokio::select! {
            biased;
            outcome = &mut answered => return outcome_of(outcome),
            turn = gate.batch_turn() => {
                let batch = waiting.take();
                if batch.is_empty() {
                    // Ours is in a batch already, written or being written under another turn.
                    break;
                }
                // A panic in the batch drops its answers: each waiter then answers an error.
                // Boxed: the write's future is 11 KB, and tokio moves a task's future and its
                // output by value several times (into the task, out of it at the end); each move
                // was a copy of the whole. Boxed, each moves a pointer: 8 % fewer instructions
                // per webhook (callgrind, 200 sequential webhooks on SQLite).
                let _ = tokio::spawn(Box::pin(write(db.clone(), turn, batch))).await;
            }
        }
    }
    outcome_of(answered.await)
}

fn outcome_of(
    outcome: Result<Result<Recorded, Error>, oneshot::error::RecvError>,
) -> Result<Recorded, Error> {
    outcome.unwrap_or_else(|_| {
        Err(Error::Db(DbErr::Custom(
            "the batch writing this delivery ended without an answer".to_owned(),
        )))
    })
}

/// Writes `batch` during `turn` and answers every delivery in it; the turn is given back after.
async fn write(db: DatabaseConnection, mut turn: Turn, batch: Vec<Pending>) {
    if batch.len() > 1
        && let Ok(recorded) = together(&db, &mut turn, &batch).await
    {
        for (pending, recorded) in batch.into_iter().zip(recorded) {
            let _ = pending.answer.send(Ok(recorded));
        }
        return;
    }
    for pending in batch {
        let outcome = alone(&db, &mut turn, pending.delivery)
            .instrument(pending.span)
            .await;
        let _ = pending.answer.send(outcome);
    }
}

/// Every delivery of `batch` in one transaction, or none of them: on SQLite's connection for
/// deliveries (which is dropped, rolling back, unless the transaction commits), else on the
/// turn's connection in `db`. The COMMIT is a statement of its own here, so that an error
/// anywhere in the batch leaves nothing committed and its deliveries are written one by one.
async fn together(
    db: &DatabaseConnection,
    turn: &mut Turn,
    batch: &[Pending],
) -> Result<Vec<Recorded>, Error> {
    let deliveries = batch
        .iter()
        .map(|pending| (pending.delivery.clone(), pending.span.clone()))
        .collect();
    if let Some(connection) = turn.take_deliveries().await {
        return on_sqlite(turn, connection?, deliveries, false).await;
    }
    let txn = crate::begin_immediate(turn.connection(db)).await?;
    match record_in(&txn, deliveries).await {
        Ok(recorded) => {
            txn.commit().await?;
            Ok(recorded)
        }
        Err(error) => {
            txn.rollback().await?;
            Err(error)
        }
    }
}
