//! The crate's one error type.

use std::time::Duration;

use verdict_domain::ErrorKind;

/// Why a delivery was not ingested. Nothing was acknowledged: the sender (or the operator) may
/// try again, and a retry of something that did commit is recorded as a duplicate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store did not commit within the write deadline.
    #[error("storage did not answer within {0:?}")]
    WriteTimeout(Duration),
    /// The store refused or failed the write.
    #[error(transparent)]
    Store(#[from] verdict_domain::Error),
}

impl Error {
    /// The kind that decides the status code at the edges.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::WriteTimeout(_) => ErrorKind::Unavailable,
            Self::Store(err) => err.kind(),
        }
    }
}
