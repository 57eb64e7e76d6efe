//! The W3C `traceparent` stored with a delivery and carried in its notification.
//!
//! It is the request span's own context (which continues the caller's trace when it sent one),
//! so a watcher's delivery span becomes a child of the webhook's server span. Without OTLP
//! export there is no span context; the caller's well-formed header is kept then, so the trace
//! still continues in whichever replica does export.

use http::{HeaderMap, HeaderName};
use verdict_telemetry::propagation;

static TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// The traceparent to store with a delivery arriving with these headers; call it inside the
/// request span.
pub(crate) fn delivery_traceparent(headers: &HeaderMap) -> Option<String> {
    propagation::current_traceparent().or_else(|| caller_traceparent(headers))
}

/// The caller's `traceparent` header when it is well formed.
fn caller_traceparent(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(&TRACEPARENT)?.to_str().ok()?.trim();
    is_valid_traceparent(value).then(|| value.to_owned())
}

/// Version `00` as in W3C Trace Context: `00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`,
/// lowercase, ids not all zero. Other versions are dropped rather than guessed at.
fn is_valid_traceparent(value: &str) -> bool {
    let mut parts = value.split('-');
    let (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return false;
    };
    version == "00"
        && is_lower_hex(trace_id, 32)
        && is_lower_hex(parent_id, 16)
        && is_lower_hex(flags, 2)
        && trace_id.bytes().any(|b| b != b'0')
        && parent_id.bytes().any(|b| b != b'0')
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers_with(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert("traceparent", HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn well_formed_traceparent_is_kept() {
        assert_eq!(
            caller_traceparent(&headers_with(VALID)).as_deref(),
            Some(VALID)
        );
    }

    #[test]
    fn missing_traceparent_gives_none() {
        assert_eq!(caller_traceparent(&HeaderMap::new()), None);
    }

    #[test]
    fn malformed_traceparents_are_dropped() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(caller_traceparent(&headers_with(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn without_a_span_context_the_callers_traceparent_is_kept() {
        assert_eq!(
            delivery_traceparent(&headers_with(VALID)).as_deref(),
            Some(VALID)
        );
    }

    #[test]
    fn inside_a_traced_span_the_spans_own_context_is_stored() {
        let capture = verdict_telemetry::testing::SpanCapture::install();
        let span = tracing::info_span!("request");
        propagation::set_parent(&span, propagation::extract(&headers_with(VALID)));
        let stored = span
            .in_scope(|| delivery_traceparent(&headers_with(VALID)))
            .expect("a traceparent");
        drop(span);
        let spans = capture.finished_spans();
        let request = spans.iter().find(|s| s.name == "request").expect("span");
        assert_eq!(
            stored,
            format!(
                "00-{}-{}-01",
                request.span_context.trace_id(),
                request.span_context.span_id()
            )
        );
        assert!(
            stored.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
            "continues the caller's trace"
        );
    }
}
