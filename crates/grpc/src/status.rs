//! Domain errors to `tonic::Status`: the gRPC half of the domain's single [`ErrorKind`] table.
//!
//! Every status this crate returns is built here, so a kind always maps to the same code over
//! HTTP and gRPC, and internal causes are logged exactly once before being answered opaquely.

use tonic::{Code, Status};
use tracing::{error, warn};
use verdict_domain::{Error, ErrorKind};

/// A status of the given kind; the code comes from the domain's table, never chosen here.
pub(crate) fn status(kind: ErrorKind, message: impl Into<String>) -> Status {
    Status::new(Code::from_i32(kind.grpc_code()), message)
}

/// The request was malformed; the message tells the caller what to fix.
pub(crate) fn invalid_argument(message: impl Into<String>) -> Status {
    status(ErrorKind::InvalidArgument, message)
}

/// The thing asked for does not exist. The message names the key kind, and the value only when
/// it is not personal data.
pub(crate) fn not_found(message: impl Into<String>) -> Status {
    status(ErrorKind::NotFound, message)
}

/// What an open stream ends with when the server stops, so clients resume on another replica.
pub(crate) fn shutting_down() -> Status {
    status(ErrorKind::Unavailable, "server shutting down")
}

/// The one conversion of a domain error: logs causes once with the full chain, answers the
/// caller with the kind's code and a message that reveals nothing internal.
pub(crate) fn from_domain(e: Error) -> Status {
    let message = match &e {
        Error::InvalidArgument(message) | Error::NotFound(message) | Error::OutOfRange(message) => {
            message.clone()
        }
        Error::Unavailable(_) => {
            warn!(error = ?e, "storage unavailable");
            e.to_string()
        }
        Error::Internal(_) => {
            error!(error = ?e, "internal error");
            e.to_string()
        }
    };
    status(e.kind(), message)
}

/// The lifecycle use case's error: a malformed scanRef is INVALID_ARGUMENT, an unknown case
/// NOT_FOUND naming it (a scanRef is not personal data), a store failure goes through
/// [`from_domain`].
pub(crate) fn from_lifecycle(e: verdict_lifecycle::Error) -> Status {
    match e {
        verdict_lifecycle::Error::InvalidKey(_) => invalid_argument(e.to_string()),
        verdict_lifecycle::Error::UnknownCase(_) => not_found(e.to_string()),
        verdict_lifecycle::Error::Store(e) => from_domain(e),
    }
}

/// The ingest use case's error: a write past its deadline is UNAVAILABLE (try again), a store
/// failure goes through [`from_domain`].
pub(crate) fn from_ingest(e: verdict_ingest::Error) -> Status {
    match e {
        verdict_ingest::Error::WriteTimeout(_) => {
            warn!(error = %e, "storage did not answer in time");
            status(e.kind(), e.to_string())
        }
        verdict_ingest::Error::Store(e) => from_domain(e),
    }
}

/// A failure in the middle of a stream. Whatever broke, the client's remedy is the same: resume
/// from the last revision or cursor it received (perhaps on another replica), so the stream ends
/// UNAVAILABLE; the cause is logged by [`from_domain`].
pub(crate) fn stream_interrupted(e: Error) -> Status {
    match e.kind() {
        ErrorKind::InvalidArgument
        | ErrorKind::NotFound
        | ErrorKind::OutOfRange
        | ErrorKind::Unauthenticated
        | ErrorKind::PermissionDenied
        | ErrorKind::ResourceExhausted => from_domain(e),
        ErrorKind::Unavailable | ErrorKind::Internal => {
            let _logged = from_domain(e);
            interrupted()
        }
    }
}

/// What a stream ends with when something behind it failed (the cause is logged where it
/// happened): resume from the last item received, here or on another replica.
pub(crate) fn interrupted() -> Status {
    status(
        ErrorKind::Unavailable,
        "stream interrupted, resume from the last item received",
    )
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn cause() -> verdict_domain::error::BoxError {
        Box::new(io::Error::other("connection refused by 10.0.0.7"))
    }

    #[test]
    fn every_kind_maps_to_its_canonical_code() {
        let table = [
            (ErrorKind::InvalidArgument, Code::InvalidArgument),
            (ErrorKind::NotFound, Code::NotFound),
            (ErrorKind::OutOfRange, Code::OutOfRange),
            (ErrorKind::Unauthenticated, Code::Unauthenticated),
            (ErrorKind::PermissionDenied, Code::PermissionDenied),
            (ErrorKind::ResourceExhausted, Code::ResourceExhausted),
            (ErrorKind::Unavailable, Code::Unavailable),
            (ErrorKind::Internal, Code::Internal),
        ];
        for (kind, code) in table {
            assert_eq!(status(kind, "x").code(), code, "{kind:?}");
        }
    }

    #[test]
    fn invalid_argument_keeps_its_message() {
        let s = from_domain(Error::InvalidArgument("malformed cursor \"x\"".into()));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "malformed cursor \"x\"");
    }

    #[test]
    fn out_of_range_keeps_its_message() {
        let s = from_domain(Error::OutOfRange(
            "cursor v1.9 is ahead of the feed head".into(),
        ));
        assert_eq!(s.code(), Code::OutOfRange);
        assert_eq!(s.message(), "cursor v1.9 is ahead of the feed head");
    }

    #[test]
    fn internal_causes_are_not_shown_to_callers() {
        let s = from_domain(Error::Internal(cause()));
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("10.0.0.7"), "{}", s.message());

        let s = from_domain(Error::Unavailable(cause()));
        assert_eq!(s.code(), Code::Unavailable);
        assert!(!s.message().contains("10.0.0.7"), "{}", s.message());
    }

    #[test]
    fn storage_failures_mid_stream_end_it_unavailable() {
        for e in [Error::Internal(cause()), Error::Unavailable(cause())] {
            let s = stream_interrupted(e);
            assert_eq!(s.code(), Code::Unavailable);
            assert!(!s.message().contains("10.0.0.7"));
        }
    }

    #[test]
    fn shutdown_is_unavailable_with_a_stable_message() {
        let s = shutting_down();
        assert_eq!(s.code(), Code::Unavailable);
        assert_eq!(s.message(), "server shutting down");
    }
}
