//! Lenient parsing of the iDenfy webhook body.
//!
//! Only the fields Verdict keeps are read; everything else (AML, LID, file URLs, ...) stays in
//! the stored raw body. Any field may be missing or `null`, enum-like values are kept as the
//! strings iDenfy sent, and a value of an unexpected JSON type is treated as absent rather than
//! failing the delivery: a vendor schema drift must not lose a final decision.
//!
//! Text Verdict keeps never holds a NUL character: PostgreSQL cannot store one in a text column,
//! and no vendor value means anything by it, so it is dropped here, once, for both databases.
//! Only `scanRef` is different: it is a key, so a NUL there makes it invalid (see [`ScanRef`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::error::Category;

use crate::Person;
use crate::scan_ref::{ScanRef, ScanRefError};

mod status_answer;

pub use status_answer::{AnswerError, StatusAnswer};

/// Why a signed body could not be used; such deliveries are quarantined.
///
/// The message is stored, logged, printed by `verdict quarantine` and answered to the sender,
/// so it never quotes a value from the body (which carries personal data).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or not a JSON object.
    #[error("body is not a JSON object: {0}")]
    NotJson(NotJson),
    /// `scanRef` missing or null: the delivery cannot be tied to a case.
    #[error("body has no scanRef")]
    MissingScanRef,
    /// `scanRef` present but not one iDenfy could have issued.
    #[error(transparent)]
    InvalidScanRef(#[from] ScanRefError),
}

/// What was wrong with a body that is not a JSON object: where, and what kind of problem.
/// serde_json's own message is kept only where it names a position and never the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotJson(String);

impl fmt::Display for NotJson {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<serde_json::Error> for PayloadError {
    fn from(err: serde_json::Error) -> Self {
        Self::NotJson(err.into())
    }
}

impl From<serde_json::Error> for NotJson {
    fn from(err: serde_json::Error) -> Self {
        let detail = match err.classify() {
            // "expected value at line 1 column 2", "EOF while parsing ...": positions only.
            Category::Syntax | Category::Eof => err.to_string(),
            // A valid JSON value of another shape: serde_json would quote it
            // (`invalid type: string "Jane Doe", expected ...`).
            Category::Data => format!(
                "another JSON value at line {} column {}",
                err.line(),
                err.column()
            ),
            Category::Io => "it could not be read".to_owned(),
        };
        Self(detail)
    }
}

/// The parts of an iDenfy identification webhook that Verdict keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// The case the delivery belongs to, validated.
    pub scan_ref: ScanRef,
    pub client_id: Option<String>,
    pub external_ref: Option<String>,
    /// Absent in payloads from before 2021; see [`crate::machine::is_final`].
    pub is_final: Option<bool>,
    pub status: Status,
    pub data: Data,
}

/// The body as read off the wire, before `scanRef` is validated.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Wire {
    #[serde(deserialize_with = "raw_string")]
    scan_ref: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    client_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    external_ref: Option<String>,
    #[serde(rename = "final", deserialize_with = "lenient_bool")]
    is_final: Option<bool>,
    #[serde(deserialize_with = "lenient_object")]
    status: Status,
    #[serde(deserialize_with = "lenient_object")]
    data: Data,
}

/// `status` of the webhook body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Status {
    #[serde(deserialize_with = "lenient_string")]
    pub overall: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub auto_document: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub auto_face: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub manual_document: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub manual_face: Option<String>,
    #[serde(deserialize_with = "lenient_strings")]
    pub fraud_tags: Vec<String>,
    #[serde(deserialize_with = "lenient_strings")]
    pub mismatch_tags: Vec<String>,
    #[serde(deserialize_with = "lenient_strings")]
    pub suspicion_reasons: Vec<String>,
}

/// `data` of the webhook body: the identity read from the document.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Data {
    #[serde(deserialize_with = "lenient_string")]
    pub doc_first_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_last_name: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_dob: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_nationality: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_sex: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_type: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_number: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_expiry: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub doc_issuing_country: Option<String>,
}

impl Payload {
    /// Parses a (verified) body. Fails only when the body is not a JSON object or names no valid
    /// case.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        // `deserialize_map`, not `from_slice`: a derived struct also accepts a JSON array and
        // reads it positionally, which would take `["x"]` for a delivery about case "x".
        let mut de = serde_json::Deserializer::from_slice(body);
        let wire = de.deserialize_map(ObjectOf::<Wire>(PhantomData))?;
        de.end()?;
        let scan_ref = ScanRef::new(wire.scan_ref.ok_or(PayloadError::MissingScanRef)?)?;
        Ok(Self {
            scan_ref,
            client_id: wire.client_id,
            external_ref: wire.external_ref,
            is_final: wire.is_final,
            status: wire.status,
            data: wire.data,
        })
    }

    /// The person as read from the document.
    pub fn person(&self) -> Person {
        let d = &self.data;
        Person {
            first_name: d.doc_first_name.clone(),
            last_name: d.doc_last_name.clone(),
            date_of_birth: d.doc_dob.clone(),
            nationality: d.doc_nationality.clone(),
            sex: d.doc_sex.clone(),
            document_type: d.doc_type.clone(),
            document_number: d.doc_number.clone(),
            document_expiry: d.doc_expiry.clone(),
            issuing_country: d.doc_issuing_country.clone(),
        }
    }
}

/// The case a body names: its top-level `scanRef`, read alone (the first, if repeated) and as
/// leniently as [`Payload::parse`] reads it, when it is one iDenfy could have issued.
///
/// For deliveries that cannot be used otherwise: a quarantined body that names a case is erased
/// with that case (DESIGN.md section 11) even when the rest of it does not parse. Every body
/// [`Payload::parse`] accepts names its payload's case. The migration that filled
/// `quarantine.scan_ref` for older rows holds a frozen copy of this reading.
pub fn named_scan_ref(body: &[u8]) -> Option<ScanRef> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let raw = de.deserialize_map(NamedScanRef).ok()??;
    ScanRef::new(raw).ok()
}

/// Reads a JSON object's first `scanRef` member, skipping every other value unread.
struct NamedScanRef;

impl<'de> Visitor<'de> for NamedScanRef {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<String>()? {
            if name == "scanRef" && found.is_none() {
                found = Some(map.next_value_seed(RawString)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found.flatten())
    }
}

/// [`raw_string`] as a seed, for a member read by hand.
struct RawString;

impl<'de> DeserializeSeed<'de> for RawString {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Option<String>, D::Error> {
        raw_string(de)
    }
}

/// Strings stay strings; numbers and booleans are rendered (iDenfy's `clientId` is sometimes
/// numeric in integrations); null, empty, objects and arrays count as absent. NUL characters
/// are dropped (see the module docs).
fn lenient_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(raw_string(de)?.map(storable).filter(|s| !s.is_empty()))
}

/// Like [`lenient_string`], but verbatim: for `scanRef`, which is validated rather than cleaned.
fn raw_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

/// The text without NUL characters, which no database column of ours can hold.
fn storable(text: String) -> String {
    if text.contains('\0') {
        text.replace('\0', "")
    } else {
        text
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(de: D) -> Result<Option<bool>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Bool(b) => Some(b),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        serde_json::Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    })
}

fn lenient_strings<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                serde_json::Value::String(s) => Some(storable(s)),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    })
}

/// A nested object that is null or of the wrong type counts as empty.
///
/// Streamed rather than buffered through `serde_json::Value`: a `Value` must hold valid UTF-8,
/// so one lone UTF-16 surrogate escape in a field we do not even read (`orgBirthPlace`, where
/// iDenfy warns of UTF-16 symbols) would otherwise fail the whole delivery.
fn lenient_object<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    de.deserialize_any(LenientObject::<T>(PhantomData))
}

/// Reads a JSON object as `T` and rejects anything else.
struct ObjectOf<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectOf<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// Reads a JSON object as `T`; any other value is skipped and counts as `T::default()`.
struct LenientObject<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Default> Visitor<'de> for LenientObject<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
        T::deserialize(MapAccessDeserializer::new(map))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<T, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(T::default())
    }

    fn visit_unit<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_bool<E>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_i64<E>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_u64<E>(self, _: u64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_str<E>(self, _: &str) -> Result<T, E> {
        Ok(T::default())
    }
}

#[cfg(test)]
mod tests;
