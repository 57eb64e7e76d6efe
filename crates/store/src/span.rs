//! Where the database is, for the OpenTelemetry CLIENT spans of the write path.
//!
//! Only the backend, database name, host and port: never the URL (it may hold a password) and
//! never a statement's values (they are personal data).

use std::str::FromStr as _;

use sea_orm::sqlx::postgres::PgConnectOptions;

use crate::{Backend, Error};

/// The semconv `db.*` and `server.*` attributes every span of this store carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DbTarget {
    /// `db.system.name`: `postgresql` or `sqlite`.
    pub(crate) system: &'static str,
    /// `db.namespace`: the PostgreSQL database name, `main` (SQLite's name for the opened file).
    pub(crate) namespace: Option<String>,
    /// `server.address` (PostgreSQL only).
    pub(crate) server_address: Option<String>,
    /// `server.port` (PostgreSQL only), as the i64 the exporter keeps numeric.
    pub(crate) server_port: Option<i64>,
}

impl DbTarget {
    /// The attributes of the database `url` names.
    pub(crate) fn from_url(backend: Backend, url: &str) -> Self {
        match backend {
            Backend::Sqlite => Self {
                system: "sqlite",
                namespace: Some("main".to_owned()),
                server_address: None,
                server_port: None,
            },
            Backend::Postgres => {
                let options = PgConnectOptions::from_str(url).ok();
                Self {
                    system: "postgresql",
                    namespace: options
                        .as_ref()
                        .and_then(|o| o.get_database().map(str::to_owned)),
                    server_address: options.as_ref().map(|o| o.get_host().to_owned()),
                    server_port: options.as_ref().map(|o| i64::from(o.get_port())),
                }
            }
        }
    }
}

/// Marks `span` failed with a low-cardinality `error.type` (never the error's text, which can
/// quote the database's detail message).
pub(crate) fn record_error(span: &tracing::Span, error: &Error) {
    let kind = match error {
        Error::Db(_) if error.is_unavailable() => "unavailable",
        Error::Db(_) => "database_error",
        Error::UnsupportedUrl(_) => "unsupported_url",
        Error::SqliteFile(_) => "sqlite_file",
        Error::Corrupt(_) => "corrupt_data",
        Error::NotQuarantined(_) => "not_quarantined",
    };
    span.record("error.type", kind);
    span.record("otel.status_code", "error");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_target_names_host_port_and_database_but_no_credentials() {
        let target = DbTarget::from_url(
            Backend::Postgres,
            "postgres://verdict:s3cret@db.internal:6543/verdict_prod",
        );
        assert_eq!(
            target,
            DbTarget {
                system: "postgresql",
                namespace: Some("verdict_prod".to_owned()),
                server_address: Some("db.internal".to_owned()),
                server_port: Some(6543),
            }
        );
        assert!(!format!("{target:?}").contains("s3cret"));
    }

    #[test]
    fn sqlite_target_has_no_server_or_path() {
        let target = DbTarget::from_url(Backend::Sqlite, "sqlite:///home/jane/verdict.db");
        assert_eq!(target.system, "sqlite");
        assert_eq!(target.namespace.as_deref(), Some("main"));
        assert_eq!(target.server_address, None);
    }
}
