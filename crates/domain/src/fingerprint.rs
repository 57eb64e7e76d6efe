//! The two hashes that make a delivery recognisable again (DESIGN.md section 3, rule 1).
//!
//! They are computed from the raw body when it arrives and kept forever, so duplicate detection
//! never needs the body itself and keeps working after personal data is purged.

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserializer, de::IgnoredAny};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

/// Top-level members that iDenfy's dashboard "Resend" re-signs without changing what the
/// delivery says: pre-signed S3 links to the document images and the additional-step PDFs,
/// which expire after an hour and are minted anew on every resend.
pub const RESIGNED_MEMBERS: [&str; 2] = ["fileUrls", "additionalStepPdfUrls"];

/// The hashes of one body, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// SHA-256 of the raw body: the same bytes, whatever header they came with (rule 1a).
    pub body_sha256: String,
    /// SHA-256 of what the body says apart from [`RESIGNED_MEMBERS`] (rule 1b): a resend of an
    /// old notification with fresh file links has the same content hash.
    pub content_sha256: String,
}

impl Fingerprint {
    /// Fingerprints a raw body.
    ///
    /// The content hash covers each top-level member except [`RESIGNED_MEMBERS`], in order, as
    /// its decoded name and its value's raw JSON text (length-prefixed, so no two different
    /// member lists hash alike). It is computed without building a `serde_json::Value`: values
    /// are taken as raw text, so a lone UTF-16 surrogate escape in a field Verdict never reads
    /// cannot fail it. A body that is not a JSON object (never recorded, only quarantined) gets
    /// its raw hash as content hash.
    pub fn of(body: &[u8]) -> Self {
        let body_sha256 = Sha256::digest(body);
        let content_sha256 = content_sha256(body).unwrap_or(body_sha256);
        Self {
            body_sha256: hex::encode(body_sha256),
            content_sha256: hex::encode(content_sha256),
        }
    }
}

type Digest256 = sha2::digest::Output<Sha256>;

fn content_sha256(body: &[u8]) -> Option<Digest256> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let digest = de.deserialize_map(ContentHasher).ok()?;
    de.end().ok()?;
    Some(digest)
}

/// Hashes the members of a JSON object, leaving out the re-signed ones.
struct ContentHasher;

impl<'de> Visitor<'de> for ContentHasher {
    type Value = Digest256;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Digest256, A::Error> {
        let mut hasher = Sha256::new();
        while let Some(name) = map.next_key::<String>()? {
            if RESIGNED_MEMBERS.contains(&name.as_str()) {
                map.next_value::<IgnoredAny>()?;
                continue;
            }
            let value: &RawValue = map.next_value()?;
            for part in [name.as_bytes(), value.get().as_bytes()] {
                hasher.update((part.len() as u64).to_be_bytes());
                hasher.update(part);
            }
        }
        Ok(hasher.finalize())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const GO_IDENFY: &[u8] = include_bytes!("../tests/fixtures/go-idenfy-webhook.json");
    const LEGACY: &[u8] = include_bytes!("../tests/fixtures/idenfy-legacy-example.json");

    fn of(value: &serde_json::Value) -> Fingerprint {
        Fingerprint::of(&serde_json::to_vec(value).unwrap())
    }

    /// The fixture with its `fileUrls` signatures replaced, byte for byte otherwise.
    fn resent(signature: &str) -> Vec<u8> {
        String::from_utf8(GO_IDENFY.to_vec())
            .unwrap()
            .replace("Signature=<SIG>", &format!("Signature={signature}"))
            .replace(
                r#""additionalStepPdfUrls": {}"#,
                r#""additionalStepPdfUrls": {"X": "y"}"#,
            )
            .into_bytes()
    }

    #[test]
    fn new_file_links_keep_the_content_hash_but_not_the_body_hash() {
        let original = Fingerprint::of(GO_IDENFY);
        let resent = Fingerprint::of(&resent("fresh"));
        assert_ne!(resent.body_sha256, original.body_sha256);
        assert_eq!(resent.content_sha256, original.content_sha256);
        assert_ne!(original.content_sha256, original.body_sha256);
    }

    #[test]
    fn whitespace_between_members_does_not_count() {
        let compact = Fingerprint::of(br#"{"scanRef":"s","final":true,"fileUrls":{"A":"1"}}"#);
        let spaced =
            Fingerprint::of(b"{ \"scanRef\" : \"s\",\n \"final\": true, \"fileUrls\": {} }");
        assert_eq!(compact.content_sha256, spaced.content_sha256);
    }

    #[test]
    fn any_other_change_changes_the_content_hash() {
        let base = json!({"scanRef": "s", "final": false, "status": {"overall": "REVIEWING"}, "fileUrls": {}});
        let hash = of(&base).content_sha256;
        for (path, value) in [
            ("final", json!(true)),
            ("scanRef", json!("t")),
            ("status", json!({"overall": "APPROVED"})),
            ("newField", json!(null)),
        ] {
            let mut changed = base.clone();
            changed[path] = value;
            assert_ne!(of(&changed).content_sha256, hash, "{path}");
        }
    }

    #[test]
    fn member_boundaries_cannot_be_shifted() {
        // Same concatenated text, different members.
        let a = Fingerprint::of(br#"{"ab":"c","d":1}"#);
        let b = Fingerprint::of(br#"{"a":"bc","d":1}"#);
        assert_ne!(a.content_sha256, b.content_sha256);
    }

    #[test]
    fn body_hash_is_the_sha256_of_the_raw_bytes() {
        assert_eq!(
            Fingerprint::of(b"").body_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            Fingerprint::of(LEGACY).body_sha256,
            hex::encode(Sha256::digest(LEGACY))
        );
    }

    #[test]
    fn lone_surrogates_in_unread_values_do_not_matter() {
        let body =
            br#"{"scanRef":"s","data":{"orgBirthPlace":"\ud83d"},"fileUrls":{"FACE":"\udc00"}}"#;
        let resent =
            br#"{"scanRef":"s","data":{"orgBirthPlace":"\ud83d"},"fileUrls":{"FACE":"x"}}"#;
        let (a, b) = (Fingerprint::of(body), Fingerprint::of(resent));
        assert_ne!(
            a.content_sha256, a.body_sha256,
            "computed, not the fallback"
        );
        assert_eq!(a.content_sha256, b.content_sha256);
    }

    #[test]
    fn a_body_that_is_not_an_object_falls_back_to_its_raw_hash() {
        for body in [&b"[1,2]"[..], b"not json", b"{\"a\":1} trailing"] {
            let f = Fingerprint::of(body);
            assert_eq!(f.content_sha256, f.body_sha256);
        }
    }
}
