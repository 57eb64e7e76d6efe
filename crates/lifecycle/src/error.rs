//! The crate's one error type.

use verdict_domain::ErrorKind;

/// Why a purge did not happen. Nothing was changed: a failed batch rolls back whole.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The scanRef cannot name a case (empty, too long, a NUL byte); the message says why.
    #[error("{0}")]
    InvalidKey(String),
    /// No case has this scanRef (it may be quoted: scanRefs are iDenfy's ids, not personal data).
    #[error("no case with scan_ref {0:?}")]
    UnknownCase(String),
    /// The store refused or failed the purge.
    #[error(transparent)]
    Store(#[from] verdict_domain::Error),
}

impl Error {
    /// The kind that decides the status code at the edges.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidKey(_) => ErrorKind::InvalidArgument,
            Self::UnknownCase(_) => ErrorKind::NotFound,
            Self::Store(err) => err.kind(),
        }
    }
}
