//! The answer of iDenfy's status API (`POST /api/v2/status`), read into the same [`Payload`] a
//! webhook body becomes, so that a reconciliation is judged by the same state machine.
//!
//! The answer is flatter than a webhook: `status` is the overall status as a plain string (the
//! webhook nests it in an object), the result fields (`autoDocument`, `fraudTags`, ...) sit at
//! the top level, and there is neither `final` nor `data`: what the answer says about finality
//! is its status alone ([`crate::machine`]), and it names no person, so a reconciled case keeps
//! the person its webhooks brought. Parsing is as lenient as the webhook's: a field of an
//! unexpected type counts as absent, vendor values are kept verbatim.

use std::fmt;
use std::marker::PhantomData;

use bytes::Bytes;
use serde::{Deserialize, Deserializer as _};

use super::{
    Data, NotJson, ObjectOf, Payload, Status, lenient_string, lenient_strings, raw_string,
};
use crate::ScanRef;

/// Why a status answer cannot be recorded. The lookup failed: the case stays as it is and is
/// looked up again later. The message never quotes the answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnswerError {
    /// Not JSON, or not a JSON object (an HTML error page from a proxy, say).
    #[error("answer is not a JSON object: {0}")]
    NotJson(NotJson),
    /// No `scanRef`: the answer cannot be tied to the case that was asked about.
    #[error("answer has no scanRef")]
    MissingScanRef,
    /// An answer about another verification than the one asked about.
    #[error("answer is about another scanRef than the one asked about")]
    OtherScanRef,
}

impl From<serde_json::Error> for AnswerError {
    fn from(err: serde_json::Error) -> Self {
        Self::NotJson(err.into())
    }
}

/// The answer as sent.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Wire {
    #[serde(deserialize_with = "raw_string")]
    scan_ref: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    client_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    status: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    auto_document: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    auto_face: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    manual_document: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    manual_face: Option<String>,
    #[serde(deserialize_with = "lenient_strings")]
    fraud_tags: Vec<String>,
    #[serde(deserialize_with = "lenient_strings")]
    mismatch_tags: Vec<String>,
}

/// iDenfy's answer about the case that was asked about: the raw bytes, stored as the delivery's
/// body (so an identical answer later is a duplicate, rule 1a), and what they say.
#[derive(Clone)]
pub struct StatusAnswer {
    body: Bytes,
    payload: Payload,
}

impl StatusAnswer {
    /// Reads the answer to a lookup of `asked`. Fails when it is not a JSON object or is not
    /// about `asked`: an answer is only ever recorded on the case it was asked for.
    pub fn parse(body: Bytes, asked: &ScanRef) -> Result<Self, AnswerError> {
        let mut de = serde_json::Deserializer::from_slice(&body);
        let wire = de.deserialize_map(ObjectOf::<Wire>(PhantomData))?;
        de.end()?;
        let scan_ref = wire.scan_ref.ok_or(AnswerError::MissingScanRef)?;
        if scan_ref != asked.as_str() {
            return Err(AnswerError::OtherScanRef);
        }
        let payload = Payload {
            scan_ref: asked.clone(),
            client_id: wire.client_id,
            external_ref: None,
            is_final: None,
            status: Status {
                overall: wire.status,
                auto_document: wire.auto_document,
                auto_face: wire.auto_face,
                manual_document: wire.manual_document,
                manual_face: wire.manual_face,
                fraud_tags: wire.fraud_tags,
                mismatch_tags: wire.mismatch_tags,
                suspicion_reasons: Vec::new(),
            },
            data: Data::default(),
        };
        Ok(Self { body, payload })
    }

    /// The raw answer.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// What it says, as a delivery's payload.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The raw answer and what it says.
    pub fn into_parts(self) -> (Bytes, Payload) {
        (self.body, self.payload)
    }
}

impl fmt::Debug for StatusAnswer {
    // The answer names no person, but print no more of it than a log needs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusAnswer")
            .field("scan_ref", &self.payload.scan_ref.as_str())
            .field("status", &self.payload.status.overall)
            .field("body_len", &self.body.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn asked() -> ScanRef {
        ScanRef::new("scan-1").unwrap()
    }

    fn parse(value: serde_json::Value) -> Result<StatusAnswer, AnswerError> {
        StatusAnswer::parse(Bytes::from(serde_json::to_vec(&value).unwrap()), &asked())
    }

    #[test]
    fn the_documented_answer_becomes_a_payload() {
        let answer = parse(json!({
            "status": "APPROVED",
            "autoDocument": "DOC_VALIDATED",
            "autoFace": "FACE_MATCH",
            "manualDocument": "DOC_VALIDATED",
            "manualFace": "FACE_MATCH",
            "fraudTags": ["VIRTUAL_CAMERA"],
            "mismatchTags": ["NAME"],
            "scanRef": "scan-1",
            "clientId": "client-7"
        }))
        .unwrap();
        let payload = answer.payload();
        assert_eq!(payload.scan_ref.as_str(), "scan-1");
        assert_eq!(payload.client_id.as_deref(), Some("client-7"));
        assert_eq!(payload.is_final, None, "the answer has no final flag");
        assert_eq!(
            payload.status,
            Status {
                overall: Some("APPROVED".into()),
                auto_document: Some("DOC_VALIDATED".into()),
                auto_face: Some("FACE_MATCH".into()),
                manual_document: Some("DOC_VALIDATED".into()),
                manual_face: Some("FACE_MATCH".into()),
                fraud_tags: vec!["VIRTUAL_CAMERA".into()],
                mismatch_tags: vec!["NAME".into()],
                suspicion_reasons: vec![],
            }
        );
        assert!(payload.person().is_empty(), "an answer names no person");
    }

    #[test]
    fn the_raw_bytes_are_kept_as_the_body() {
        let raw = br#"{"scanRef": "scan-1",  "status": "REVIEWING"}"#;
        let answer = StatusAnswer::parse(Bytes::from_static(raw), &asked()).unwrap();
        assert_eq!(answer.body().as_ref(), raw);
    }

    #[test]
    fn fields_of_unexpected_types_count_as_absent() {
        let answer = parse(json!({
            "scanRef": "scan-1",
            "status": {"overall": "APPROVED"},
            "autoFace": 3,
            "fraudTags": "VIRTUAL_CAMERA",
            "manualFace": null
        }))
        .unwrap();
        let status = &answer.payload().status;
        assert_eq!(status.overall, None);
        assert_eq!(status.auto_face, Some("3".into()));
        assert!(status.fraud_tags.is_empty());
        assert_eq!(status.manual_face, None);
    }

    #[test]
    fn an_answer_is_only_recorded_on_the_case_asked_about() {
        assert_eq!(
            parse(json!({"status": "APPROVED"})).unwrap_err(),
            AnswerError::MissingScanRef
        );
        assert_eq!(
            parse(json!({"scanRef": null, "status": "APPROVED"})).unwrap_err(),
            AnswerError::MissingScanRef
        );
        assert_eq!(
            parse(json!({"scanRef": "scan-2", "status": "APPROVED"})).unwrap_err(),
            AnswerError::OtherScanRef
        );
    }

    #[test]
    fn junk_is_refused_without_quoting_it() {
        for junk in [
            &b"<html>502 Bad Gateway</html>"[..],
            b"",
            b"[\"scan-1\"]",
            b"\"Jane Doe\"",
            b"{\"scanRef\": \"scan-1\"} trailing",
        ] {
            let err = StatusAnswer::parse(Bytes::copy_from_slice(junk), &asked()).unwrap_err();
            assert!(matches!(err, AnswerError::NotJson(_)), "{err:?}");
            assert!(!err.to_string().contains("Jane"), "{err}");
            assert!(!err.to_string().contains("Bad Gateway"), "{err}");
        }
    }
}
