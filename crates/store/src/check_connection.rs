//! A connection of its own for the `GetCase` cache's check ([`crate::feed::changed_cases`]).
//!
//! Every `GetCase` waits for a check of the feed that began after it did, and checks run one
//! at a time, so the check's round trip bounds how many calls a replica answers. Through the
//! pool each check also paid for a checkout and, on its return, for the ping sqlx sends to
//! every connection it takes back (one more round trip to the connection's thread on SQLite, to
//! the server on PostgreSQL), and it landed on whichever of the sixteen connections was idle.
//! Here the check keeps one connection, taken out of the pool (which may open another in its
//! place) the first time a check runs: one round trip per check, always to the same connection
//! with the statement already prepared.
//!
//! A connection that fails is dropped and the check is tried once more on a new one, so a
//! PostgreSQL restart or an idle connection closed by a proxy costs one retry, not an error.
//! An in-memory SQLite database has a single connection, which is the database itself: there
//! the check stays on the pool.

use sea_orm::sqlx::{self, AssertSqlSafe, PgConnection, SqliteConnection};
use sea_orm::{DatabaseConnection, DbBackend, DbErr, RuntimeErr};
use tokio::sync::Mutex;

use crate::Error;
use crate::connect::detached;

/// One row of the check: the feed's head, and a changed case with its revision (`None` when
/// nothing changed in the range).
pub(crate) type CheckRow = (i64, Option<String>, Option<i64>);

/// The check's own connection, taken from the pool when first needed.
#[derive(Debug)]
pub(crate) struct CheckConnection {
    held: Mutex<Option<Held>>,
    /// `false` for an in-memory SQLite database, whose one connection must stay in the pool.
    may_hold: bool,
}

/// A connection out of the pool, of either backend.
#[derive(Debug)]
enum Held {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

impl CheckConnection {
    /// Holds a connection of the store's pool when `may_hold`, else leaves the check to it.
    pub(crate) fn new(may_hold: bool) -> Self {
        Self {
            held: Mutex::new(None),
            may_hold,
        }
    }

    /// The rows of `sql` (one statement, `$1`/`?` bound to `after`) on the held connection,
    /// taken from `db`'s pool first if there is none yet, and once more on a fresh connection
    /// if that fails. `None` when this store may not hold one: the caller reads through the
    /// pool.
    pub(crate) async fn rows(
        &self,
        db: &DatabaseConnection,
        sql: &str,
        after: i64,
    ) -> Option<Result<Vec<CheckRow>, Error>> {
        if !self.may_hold {
            return None;
        }
        let mut held = self.held.lock().await;
        let mut failed = None;
        for _ in 0..2 {
            let connection = match held.as_mut() {
                Some(connection) => connection,
                None => match take(db).await {
                    Ok(connection) => held.insert(connection),
                    Err(error) => return Some(Err(error)),
                },
            };
            match connection.rows(sql, after).await {
                Ok(rows) => return Some(Ok(rows)),
                Err(error) => {
                    // Broken or not, a connection that failed is not trusted again.
                    tracing::warn!(%error, "the GetCase check's connection failed; taking another");
                    *held = None;
                    failed = Some(error);
                }
            }
        }
        failed.map(|error| Err(Error::Db(DbErr::Query(RuntimeErr::SqlxError(error.into())))))
    }
}

impl Held {
    async fn rows(&mut self, sql: &str, after: i64) -> Result<Vec<CheckRow>, sqlx::Error> {
        // The text is the same for every check (its limit is a constant), so it is prepared
        // once; the assertion holds because only numbers are ever written into it.
        let sql = AssertSqlSafe(sql.to_owned());
        match self {
            Self::Sqlite(connection) => {
                query_rows(sqlx::query(sql).bind(after).fetch_all(connection).await?)
            }
            Self::Postgres(connection) => {
                query_rows(sqlx::query(sql).bind(after).fetch_all(connection).await?)
            }
        }
    }
}

fn query_rows<R: sqlx::Row>(rows: Vec<R>) -> Result<Vec<CheckRow>, sqlx::Error>
where
    usize: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect()
}

/// A connection of `db`'s pool, detached from it.
async fn take(db: &DatabaseConnection) -> Result<Held, Error> {
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => Held::Postgres(detached(db.get_postgres_connection_pool()).await?),
        _ => Held::Sqlite(detached(db.get_sqlite_connection_pool()).await?),
    })
}
