//! Reading a webhook off the wire: size limit and read timeout first, then content type, and
//! nothing parsed.
//!
//! What comes out is the domain's [`UnverifiedWebhook`]; only the signature check turns it into
//! something the rest of the pipeline accepts.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, Request};
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use verdict_domain::UnverifiedWebhook;

use crate::Error;
use crate::routes::Shared;
use crate::trace_context::delivery_traceparent;

// Names, not strings: a lookup by `&str` parses and hashes the name again on every request.
static SIGNATURE_HEADER: HeaderName = HeaderName::from_static("idenfy-signature");
static EVENT_TYPE_HEADER: HeaderName = HeaderName::from_static("idenfy-event-type");

/// A webhook read under the size limit with a JSON content type; not yet trusted.
#[derive(Debug)]
pub(crate) struct IncomingWebhook {
    pub(crate) webhook: UnverifiedWebhook,
    /// The trace context to store with the delivery.
    pub(crate) traceparent: Option<String>,
}

impl FromRequest<Arc<Shared>> for IncomingWebhook {
    type Rejection = Error;

    async fn from_request(request: Request, shared: &Arc<Shared>) -> Result<Self, Error> {
        let limit = shared.state.max_body_bytes;
        let (parts, body) = request.into_parts();
        // An honest oversized Content-Length is refused before a byte is read; a lying or
        // absent one (chunked) is caught by the limited read.
        if declared_length(&parts.headers).is_some_and(|length| length > limit as u64) {
            return Err(Error::PayloadTooLarge { limit });
        }
        // Reading before the content-type check keeps the documented order (size, then media
        // type) for chunked bodies too; the read is bounded by the limit either way, and in
        // time: a client trickling its body does not hold the connection.
        let timeout = shared.state.body_timeout;
        let body = tokio::time::timeout(timeout, read_limited(body, limit))
            .await
            .map_err(|_| Error::BodyTimeout(timeout))??;
        if !is_json_content_type(parts.headers.get(header::CONTENT_TYPE)) {
            return Err(Error::UnsupportedMediaType);
        }
        Ok(Self {
            webhook: UnverifiedWebhook {
                body,
                signature: header_text(&parts.headers, &SIGNATURE_HEADER),
                event_type: header_text(&parts.headers, &EVENT_TYPE_HEADER),
            },
            traceparent: delivery_traceparent(&parts.headers),
        })
    }
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

async fn read_limited(body: Body, limit: usize) -> Result<Bytes, Error> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<LengthLimitError>() => Err(Error::PayloadTooLarge { limit }),
        Err(err) => Err(Error::BodyUnreadable(err)),
    }
}

/// A header as text. Bytes that are not UTF-8 are kept (lossily) rather than dropped, so a
/// garbled signature is reported as malformed, not as missing.
fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
}

/// `application/json` or any `application/*+json`, parameters (`; charset=utf-8`) allowed,
/// case-insensitive as media types are.
pub(crate) fn is_json_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(Ok(value)) = value.map(HeaderValue::to_str) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or_default().trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    let subtype = subtype.as_bytes();
    let structured_json = subtype.len() > "+json".len()
        && subtype[subtype.len() - "+json".len()..].eq_ignore_ascii_case(b"+json");
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case(b"json") || structured_json)
        && !subtype.iter().any(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(value: &str) -> bool {
        is_json_content_type(Some(&HeaderValue::from_str(value).unwrap()))
    }

    #[test]
    fn plain_json_is_accepted() {
        assert!(accepts("application/json"));
    }

    #[test]
    fn json_with_parameters_is_accepted() {
        assert!(accepts("application/json; charset=utf-8"));
        assert!(accepts("application/json;charset=UTF-8"));
        assert!(accepts("  application/json ; charset=utf-8"));
    }

    #[test]
    fn media_type_case_does_not_matter() {
        assert!(accepts("Application/JSON"));
        assert!(accepts("APPLICATION/VND.IDENFY+JSON"));
    }

    #[test]
    fn structured_json_suffix_is_accepted() {
        assert!(accepts("application/vnd.api+json"));
        assert!(accepts("application/problem+json; charset=utf-8"));
    }

    #[test]
    fn missing_content_type_is_refused() {
        assert!(!is_json_content_type(None));
    }

    #[test]
    fn other_media_types_are_refused() {
        for value in [
            "",
            "json",
            "text/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/+json",
            "application/jsonp",
            "application/json x",
            "application/xml; note=json",
            "application/json-seq",
        ] {
            assert!(!accepts(value), "{value:?}");
        }
    }

    #[test]
    fn garbled_signature_is_kept_not_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            SIGNATURE_HEADER.clone(),
            HeaderValue::from_bytes(b"ab\xffcd").unwrap(),
        );
        assert!(header_text(&headers, &SIGNATURE_HEADER).is_some());
    }

    #[test]
    fn declared_length_reads_content_length() {
        let mut headers = HeaderMap::new();
        assert_eq!(declared_length(&headers), None);
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from_static("42"));
        assert_eq!(declared_length(&headers), Some(42));
    }
}
