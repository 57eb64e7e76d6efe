//! Lenient parsing of the iDenfy webhook body.
//!
//! Only the fields Verdict keeps are read; everything else (AML, LID, file URLs, ...) stays in
//! the stored raw body. Any field may be missing or `null`, enum-like values are kept as the
//! strings iDenfy sent, and a value of an unexpected JSON type is treated as absent rather than
//! failing the delivery: a vendor schema drift must not lose a final decision.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::Person;

/// Why a signed body could not be used; such deliveries are quarantined.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON, or not a JSON object.
    #[error("body is not a JSON object: {0}")]
    NotJson(#[from] serde_json::Error),
    /// `scanRef` missing, null or empty: the delivery cannot be tied to a case.
    #[error("body has no scanRef")]
    MissingScanRef,
}

/// The parts of an iDenfy identification webhook that Verdict keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Payload {
    #[serde(deserialize_with = "lenient_string")]
    pub scan_ref: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub client_id: Option<String>,
    #[serde(deserialize_with = "lenient_string")]
    pub external_ref: Option<String>,
    /// Absent in payloads from before 2021; see [`crate::machine::is_final`].
    #[serde(rename = "final", deserialize_with = "lenient_bool")]
    pub is_final: Option<bool>,
    #[serde(deserialize_with = "lenient_object")]
    pub status: Status,
    #[serde(deserialize_with = "lenient_object")]
    pub data: Data,
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
    /// Parses a (verified) body. Fails only when the body is not a JSON object or names no case.
    pub fn parse(body: &[u8]) -> Result<Self, PayloadError> {
        // `deserialize_map`, not `from_slice`: a derived struct also accepts a JSON array and
        // reads it positionally, which would take `["x"]` for a delivery about case "x".
        let mut de = serde_json::Deserializer::from_slice(body);
        let payload = de.deserialize_map(ObjectOf::<Payload>(PhantomData))?;
        de.end()?;
        match payload.scan_ref.as_deref() {
            Some(s) if !s.trim().is_empty() => Ok(payload),
            _ => Err(PayloadError::MissingScanRef),
        }
    }

    /// The case this delivery belongs to. Only valid on a payload from [`Payload::parse`].
    pub fn scan_ref(&self) -> &str {
        self.scan_ref.as_deref().unwrap_or_default()
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

/// Strings stay strings; numbers and booleans are rendered (iDenfy's `clientId` is sometimes
/// numeric in integrations); null, empty, objects and arrays count as absent.
fn lenient_string<'de, D: Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    Ok(match serde_json::Value::deserialize(de)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
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
                serde_json::Value::String(s) => Some(s),
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
