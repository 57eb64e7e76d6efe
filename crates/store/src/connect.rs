//! Opening the database and applying migrations.

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DbErr, RuntimeErr, sqlx};
use verdict_migration::{Migrator, MigratorTrait};

use crate::write_gate::WriteGate;
use crate::{Backend, Error, SeaStore};

/// How long a SQLite writer waits for the write lock before giving up with "database is locked".
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pooled connection idle this long is pinged before it is handed out; busier ones are not.
/// HikariCP's equivalent (`aliveBypassWindowMs`) is half a second.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);

/// Connection pool settings.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Upper bound of pooled connections.
    pub max_connections: u32,
    /// How long a caller waits for a pooled connection (and for a new connection to open)
    /// before the store reports itself unavailable.
    pub acquire_timeout: Duration,
}

/// Connections in the pool unless configured (`VERDICT_DB_MAX_CONNECTIONS`).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 16;

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            acquire_timeout: Duration::from_secs(5),
        }
    }
}

/// A connection of `pool`, taken out of it for good (the pool may open another in its place):
/// for a user that keeps a connection of its own, which sqlx would ping on every return to
/// the pool.
pub(crate) async fn detached<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
) -> Result<DB::Connection, Error> {
    let connection = pool
        .acquire()
        .await
        .map_err(|error| Error::Db(DbErr::Conn(RuntimeErr::SqlxError(error.into()))))?;
    Ok(connection.detach())
}

impl Backend {
    /// The backend a database URL names, from its scheme alone.
    pub fn from_url(url: &str) -> Result<Self, Error> {
        let scheme = url.split(':').next().unwrap_or_default();
        match scheme {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(Error::UnsupportedUrl(other.to_owned())),
        }
    }
}

impl SeaStore {
    /// Opens a pool on `sqlite://path?mode=rwc` or `postgres://…`.
    ///
    /// SQLite connections use WAL (readers never block the writer), `busy_timeout` 5 s (writers
    /// queue for the single write lock instead of failing at once), `synchronous=FULL` and
    /// foreign keys on. FULL because a webhook is acknowledged right after its commit and iDenfy
    /// will not send it again: with NORMAL, WAL mode may lose the last commits on power loss
    /// (it never corrupts, but an acknowledged final decision would be gone). FULL syncs the WAL
    /// on every commit. On SQLite, writes have one connection of their own besides the pool
    /// (see `write_gate`).
    pub async fn connect(url: &str, options: StoreOptions) -> Result<Self, Error> {
        let backend = Backend::from_url(url)?;
        let mut connect = ConnectOptions::new(url);
        connect
            .max_connections(options.max_connections.max(1))
            .acquire_timeout(options.acquire_timeout)
            .connect_timeout(options.acquire_timeout)
            // sqlx pings every connection it hands out, a round trip before each statement or
            // transaction; only one that sat idle (and may have been dropped by the server or a
            // proxy meanwhile) needs it.
            .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
            // Statement logs would be noise at INFO; traces cover the write path.
            .sqlx_logging(false);
        // Every connection to `:memory:` is its own empty database: there the one pooled
        // connection is also the writer's, and the check's.
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let (db, writes) = match backend {
            Backend::Sqlite => {
                crate::sqlite_file::create_private(url).map_err(Error::SqliteFile)?;
                connect.map_sqlx_sqlite_opts(|o| {
                    o.journal_mode(SqliteJournalMode::Wal)
                        .busy_timeout(SQLITE_BUSY_TIMEOUT)
                        .synchronous(SqliteSynchronous::Full)
                        .foreign_keys(true)
                });
                if in_memory {
                    connect.max_connections(1);
                    let db = Database::connect(connect).await?;
                    let writer = db.clone();
                    (db, WriteGate::sqlite(writer, true))
                } else {
                    let db = Database::connect(connect.clone()).await?;
                    let writer = Database::connect(connect.max_connections(1).to_owned()).await?;
                    (db, WriteGate::sqlite(writer, false))
                }
            }
            Backend::Postgres => (Database::connect(connect).await?, WriteGate::postgres()),
        };
        let target = crate::span::DbTarget::from_url(backend, url);
        Ok(Self {
            db,
            backend,
            writes,
            target,
            checks: std::sync::Arc::new(crate::check_connection::CheckConnection::new(!in_memory)),
        })
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), Error> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_comes_from_the_scheme() {
        assert_eq!(
            Backend::from_url("sqlite://v.db?mode=rwc").unwrap(),
            Backend::Sqlite
        );
        assert_eq!(
            Backend::from_url("postgres://u:secret@h/db").unwrap(),
            Backend::Postgres
        );
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        let err = Backend::from_url("mysql://u:secret@h/db").unwrap_err();
        assert!(!err.to_string().contains("secret"));
    }
}
