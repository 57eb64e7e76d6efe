//! The store's error type and its mapping onto the domain's.

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// What can go wrong in the store. Messages never carry personal data or credentials.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database refused, failed or could not be reached.
    #[error("database error")]
    Db(#[from] DbErr),
    /// The database URL names a backend the store does not support (only the scheme is kept,
    /// the URL may hold a password).
    #[error("unsupported database url scheme {0:?}, expected sqlite: or postgres:")]
    UnsupportedUrl(String),
    /// The SQLite file could not be created (with owner-only permissions).
    #[error("could not create the SQLite database file")]
    SqliteFile(#[source] std::io::Error),
    /// A stored value could not be read back (a bug, or a row written by something else).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// A reprocess named a quarantine item that does not exist or was already released (by a
    /// concurrent reprocess, say).
    #[error("quarantine item {0} is unknown or already released")]
    NotQuarantined(i64),
}

impl Error {
    pub(crate) fn corrupt(what: impl Into<String>) -> Self {
        Self::Corrupt(what.into())
    }

    /// Whether retrying later may succeed: the pool is exhausted, the connection broke, the
    /// database is busy or shutting down, or the transaction lost a lock race.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Db(e) => db_unavailable(e),
            Self::UnsupportedUrl(_)
            | Self::Corrupt(_)
            | Self::NotQuarantined(_)
            | Self::SqliteFile(_) => false,
        }
    }
}

impl From<Error> for verdict_domain::Error {
    fn from(e: Error) -> Self {
        if let Error::NotQuarantined(_) = e {
            return Self::NotFound(e.to_string());
        }
        if e.is_unavailable() {
            Self::Unavailable(Box::new(e))
        } else {
            Self::Internal(Box::new(e))
        }
    }
}

fn db_unavailable(e: &DbErr) -> bool {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

fn sqlx_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let Some(code) = db.code() else {
                return false;
            };
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_retryable(&code)
            } else {
                postgres_retryable(&code)
            }
        }
        // sqlx::Error is non-exhaustive; anything else is a bug or bad data, not an outage.
        _ => false,
    }
}

/// SQLite reports its (extended) result code as a number.
fn sqlite_retryable(code: &str) -> bool {
    // SQLITE_BUSY (5) and SQLITE_LOCKED (6), with any extended code in the upper bits.
    code.parse::<i32>()
        .is_ok_and(|code| matches!(code & 0xff, 5 | 6))
}

/// PostgreSQL reports a five-character SQLSTATE.
fn postgres_retryable(code: &str) -> bool {
    // 08: connection exception, 53: insufficient resources, 57: operator intervention
    // (shutdown, statement timeout); serialization failure, deadlock, lock not available.
    ["08", "53", "57"]
        .iter()
        .any(|class| code.starts_with(class))
        || matches!(code, "40001" | "40P01" | "55P03")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_and_locked_sqlite_codes_are_retryable() {
        for code in ["5", "6", "261", "517", "773", "262"] {
            assert!(sqlite_retryable(code), "{code}");
        }
        for code in ["1", "19", "2067", "787"] {
            assert!(!sqlite_retryable(code), "{code}");
        }
    }

    #[test]
    fn postgres_outage_codes_are_retryable() {
        for code in [
            "08006", "53300", "57P01", "57014", "40001", "40P01", "55P03",
        ] {
            assert!(postgres_retryable(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!postgres_retryable(code), "{code}");
        }
    }

    #[test]
    fn pool_timeout_maps_to_unavailable() {
        let e = Error::Db(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout));
        assert!(matches!(
            verdict_domain::Error::from(e),
            verdict_domain::Error::Unavailable(_)
        ));
        let e = Error::corrupt("cases.decision");
        assert!(matches!(
            verdict_domain::Error::from(e),
            verdict_domain::Error::Internal(_)
        ));
        let e = verdict_domain::Error::from(Error::NotQuarantined(7));
        assert_eq!(e.kind(), verdict_domain::ErrorKind::NotFound);
        assert_eq!(
            e.to_string(),
            "quarantine item 7 is unknown or already released"
        );
    }
}
