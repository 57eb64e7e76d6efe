//! The crate's one error type and how it becomes an HTTP answer.

use std::fmt;
use std::time::Duration;

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use verdict_domain::{ErrorKind, SignatureError};

use crate::access_log::Refusal;
use crate::response::ErrorBody;

/// Seconds iDenfy (or any client) is asked to wait before retrying a 503.
pub(crate) const RETRY_AFTER_SECS: u64 = 5;

/// Boxed causes kept for the log, never shown to the caller.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Why a request was not answered 200.
///
/// The `Display` text is what the caller sees in `{"error": "..."}`: it says what was wrong and
/// never carries the body, a signature, a secret or an internal cause (those go to the log).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The declared or the actual body size is above the configured limit.
    #[error("body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The configured `max_body_bytes`.
        limit: usize,
    },
    /// The content type is missing or not JSON.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The body could not be read to its end (the client went away mid-request).
    #[error("could not read the request body")]
    BodyUnreadable(#[source] BoxError),
    /// The body did not arrive within the body read timeout: a slow client is not waited for.
    #[error("body not received within {0:?}")]
    BodyTimeout(Duration),
    /// The source address is not in `VERDICT_WEBHOOK_ALLOW_CIDRS`.
    #[error("source address not allowed")]
    SourceNotAllowed,
    /// More webhooks are in flight than the store can take; iDenfy retries after Retry-After.
    #[error("too many webhooks in flight (limit {limit}), retry later")]
    Overloaded {
        /// The configured bound.
        limit: usize,
    },
    /// The `Idenfy-Signature` header is missing, malformed or made with none of our keys.
    #[error(transparent)]
    Signature(#[from] SignatureError),
    /// The store did not commit within the write deadline; iDenfy retries, and a retry of a
    /// delivery that did commit late is recorded as a duplicate.
    #[error("storage did not answer within {0:?}")]
    WriteTimeout(Duration),
    /// The store refused or failed the write.
    #[error(transparent)]
    Store(#[from] verdict_domain::Error),
}

impl Error {
    /// The HTTP status this error is answered with: through the domain's [`ErrorKind`] table
    /// wherever it has a row. Size, media-type and body-timeout refusals are HTTP framing
    /// concerns with no gRPC counterpart, so that table has no row for them and they are mapped
    /// here.
    pub fn status(&self) -> StatusCode {
        let kind = match self {
            Self::PayloadTooLarge { .. } => return StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => return StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::BodyTimeout(_) => return StatusCode::REQUEST_TIMEOUT,
            Self::BodyUnreadable(_) => ErrorKind::InvalidArgument,
            Self::SourceNotAllowed => ErrorKind::PermissionDenied,
            Self::Overloaded { .. } => ErrorKind::Unavailable,
            Self::Signature(_) => ErrorKind::Unauthenticated,
            Self::WriteTimeout(_) => ErrorKind::Unavailable,
            Self::Store(err) => err.kind(),
        };
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let status = self.status();
        // Internal causes are logged here with their full chain; a refusal is logged once, by
        // the access line, with what the caller is told.
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), error = %ErrorChain(&self), "request failed");
        }
        let reason = self.to_string();
        let refusal = (!status.is_server_error()).then(|| Refusal {
            reason: reason.clone(),
            signature: matches!(self, Self::Signature(_)),
        });
        let mut response = (status, Json(ErrorBody { error: reason })).into_response();
        if let Some(refusal) = refusal {
            response.extensions_mut().insert(refusal);
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}

impl From<verdict_ingest::Error> for Error {
    fn from(err: verdict_ingest::Error) -> Self {
        match err {
            verdict_ingest::Error::WriteTimeout(timeout) => Self::WriteTimeout(timeout),
            verdict_ingest::Error::Store(err) => Self::Store(err),
        }
    }
}

/// Displays an error followed by each of its sources, `outer: inner: root`, for the log.
pub(crate) struct ErrorChain<'a>(pub(crate) &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;

    fn io_cause() -> BoxError {
        Box::new(io::Error::other("connection refused to db.internal:5432"))
    }

    #[test]
    fn each_error_maps_to_its_status() {
        let cases = [
            (
                Error::PayloadTooLarge { limit: 4 },
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (
                Error::UnsupportedMediaType,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ),
            (Error::BodyUnreadable(io_cause()), StatusCode::BAD_REQUEST),
            (
                Error::BodyTimeout(Duration::from_secs(10)),
                StatusCode::REQUEST_TIMEOUT,
            ),
            (Error::SourceNotAllowed, StatusCode::FORBIDDEN),
            (
                Error::Overloaded { limit: 256 },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::Signature(SignatureError::Missing),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Error::Signature(SignatureError::Malformed),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Error::Signature(SignatureError::Mismatch),
                StatusCode::UNAUTHORIZED,
            ),
            (
                Error::WriteTimeout(Duration::from_secs(5)),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::Store(verdict_domain::Error::Unavailable(io_cause())),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                Error::Store(verdict_domain::Error::Internal(io_cause())),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                Error::Store(verdict_domain::Error::InvalidArgument("bad".into())),
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(error.status(), status, "{error:?}");
        }
    }

    #[test]
    fn messages_say_what_was_wrong() {
        assert_eq!(
            Error::PayloadTooLarge { limit: 4194304 }.to_string(),
            "body exceeds 4194304 bytes"
        );
        assert_eq!(
            Error::UnsupportedMediaType.to_string(),
            "content type must be application/json"
        );
        assert_eq!(
            Error::Signature(SignatureError::Missing).to_string(),
            "missing Idenfy-Signature header"
        );
        assert_eq!(
            Error::WriteTimeout(Duration::from_secs(5)).to_string(),
            "storage did not answer within 5s"
        );
    }

    #[test]
    fn store_causes_stay_out_of_the_message() {
        let unavailable = Error::Store(verdict_domain::Error::Unavailable(io_cause()));
        let internal = Error::Store(verdict_domain::Error::Internal(io_cause()));
        assert_eq!(unavailable.to_string(), "storage unavailable");
        assert_eq!(internal.to_string(), "internal error");
    }

    #[test]
    fn chain_shows_every_cause_for_the_log() {
        let error = Error::Store(verdict_domain::Error::Internal(io_cause()));
        assert_eq!(
            ErrorChain(&error).to_string(),
            "internal error: connection refused to db.internal:5432"
        );
    }

    #[tokio::test]
    async fn unavailable_answers_503_with_retry_after_and_json() {
        let response = Error::WriteTimeout(Duration::from_secs(5)).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"error": "storage did not answer within 5s"})
        );
    }

    #[tokio::test]
    async fn internal_answers_500_opaque_without_retry_after() {
        let response = Error::Store(verdict_domain::Error::Internal(io_cause())).into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.headers().get(header::RETRY_AFTER).is_none());
        let body = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        assert_eq!(&body[..], br#"{"error":"internal error"}"#);
    }
}
