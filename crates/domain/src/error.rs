//! The domain's error type and the one table that maps error kinds to HTTP and gRPC codes.

/// Boxed source errors from adapters, kept for logging and never shown to callers.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What can go wrong behind a port. Adapters convert their own errors into this so the edges
/// (HTTP, gRPC) map every failure through [`ErrorKind`] without knowing SQL or Redis.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database (or another dependency) could not answer in time; retrying later may work.
    #[error("storage unavailable")]
    Unavailable(#[source] BoxError),
    /// The caller sent something malformed (a bad cursor or page token).
    #[error("{0}")]
    InvalidArgument(String),
    /// The thing asked for does not exist (or no longer: a quarantine item already released).
    #[error("{0}")]
    NotFound(String),
    /// The caller's position is outside what this service has (a cursor past the feed's head,
    /// e.g. after a database restore); the message says what to do instead.
    #[error("{0}")]
    OutOfRange(String),
    /// Anything else: a bug or corrupt data. Logged with its cause, shown opaque.
    #[error("internal error")]
    Internal(#[source] BoxError),
}

impl Error {
    /// The kind that decides the status code at the edges.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Unavailable(_) => ErrorKind::Unavailable,
            Self::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::OutOfRange(_) => ErrorKind::OutOfRange,
            Self::Internal(_) => ErrorKind::Internal,
        }
    }
}

/// The few kinds of failure callers can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request was malformed.
    InvalidArgument,
    /// The thing asked for does not exist.
    NotFound,
    /// A well-formed position past what exists (a cursor ahead of the feed): start over.
    OutOfRange,
    /// The webhook signature, or the gRPC caller's credential, was missing or wrong.
    Unauthenticated,
    /// The caller is known but lacks the scope (or the source address) the request needs.
    PermissionDenied,
    /// A limit was reached (open streams); retrying after something closes may work.
    ResourceExhausted,
    /// Try again later (database down, write deadline passed, shutting down).
    Unavailable,
    /// A bug or corrupt data.
    Internal,
}

impl ErrorKind {
    /// The single mapping table: HTTP status and canonical gRPC code (as its number, so this
    /// crate stays free of `http` and `tonic`).
    const fn codes(self) -> (u16, i32) {
        match self {
            Self::InvalidArgument => (400, 3),
            Self::NotFound => (404, 5),
            Self::OutOfRange => (400, 11),
            Self::Unauthenticated => (401, 16),
            Self::PermissionDenied => (403, 7),
            // 429 as google.rpc.Code maps it; a server that is simply overloaded answers
            // Unavailable (503 + Retry-After) instead.
            Self::ResourceExhausted => (429, 8),
            Self::Unavailable => (503, 14),
            Self::Internal => (500, 13),
        }
    }

    /// The HTTP status code for this kind.
    pub const fn http_status(self) -> u16 {
        self.codes().0
    }

    /// The canonical gRPC status code number for this kind.
    pub const fn grpc_code(self) -> i32 {
        self.codes().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_maps_to_one_http_status_and_grpc_code() {
        let table = [
            (ErrorKind::InvalidArgument, 400, 3),
            (ErrorKind::NotFound, 404, 5),
            (ErrorKind::OutOfRange, 400, 11),
            (ErrorKind::Unauthenticated, 401, 16),
            (ErrorKind::PermissionDenied, 403, 7),
            (ErrorKind::ResourceExhausted, 429, 8),
            (ErrorKind::Unavailable, 503, 14),
            (ErrorKind::Internal, 500, 13),
        ];
        for (kind, http, grpc) in table {
            assert_eq!(
                (kind.http_status(), kind.grpc_code()),
                (http, grpc),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn errors_map_to_their_kind() {
        let cause = || -> BoxError { "connection refused".into() };
        assert_eq!(Error::Unavailable(cause()).kind(), ErrorKind::Unavailable);
        assert_eq!(
            Error::InvalidArgument("bad cursor".into()).kind(),
            ErrorKind::InvalidArgument
        );
        assert_eq!(
            Error::OutOfRange("cursor ahead of the feed".into()).kind(),
            ErrorKind::OutOfRange
        );
        assert_eq!(Error::Internal(cause()).kind(), ErrorKind::Internal);
        assert_eq!(
            Error::NotFound("quarantine item 7".into()).kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn internal_causes_stay_out_of_the_message_but_in_the_chain() {
        use std::error::Error as _;
        let err = Error::Internal("password=hunter2 in dsn".into());
        assert_eq!(err.to_string(), "internal error");
        assert_eq!(err.source().unwrap().to_string(), "password=hunter2 in dsn");
        let err = Error::Unavailable("db down".into());
        assert_eq!(err.to_string(), "storage unavailable");
        assert!(err.source().is_some());
        assert_eq!(
            Error::InvalidArgument("malformed cursor".into()).to_string(),
            "malformed cursor"
        );
    }
}
