//! `Idenfy-Signature`: hex HMAC-SHA256 of the raw body, checked before anything parses it.
//!
//! The typestate makes the order impossible to get wrong: the ingress can only build an
//! [`UnverifiedWebhook`], and the only way to a [`VerifiedWebhook`] — the only thing the rest of
//! the pipeline accepts — is [`SignatureVerifier::verify`].

use std::fmt;

use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a delivery was not accepted as signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Idenfy-Signature` header.
    #[error("missing Idenfy-Signature header")]
    Missing,
    /// The header is not 64 hex digits.
    #[error("Idenfy-Signature is not a hex HMAC-SHA256")]
    Malformed,
    /// Well-formed, but no configured key produced it.
    #[error("Idenfy-Signature does not match the body")]
    Mismatch,
}

/// A webhook as it arrived: raw bytes and headers, not yet trusted.
#[derive(Clone)]
pub struct UnverifiedWebhook {
    /// The raw body, exactly as received.
    pub body: Bytes,
    /// The `Idenfy-Signature` header, if any.
    pub signature: Option<String>,
    /// The `Idenfy-Event-Type` header, if any.
    pub event_type: Option<String>,
}

impl fmt::Debug for UnverifiedWebhook {
    // The body carries personal data: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UnverifiedWebhook")
            .field("body_len", &self.body.len())
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

/// A webhook whose signature checked out (or whose signature check was explicitly disabled).
#[derive(Clone)]
pub struct VerifiedWebhook {
    body: Bytes,
    event_type: Option<String>,
}

impl VerifiedWebhook {
    /// A delivery Verdict verified when it arrived and kept (a quarantine item): its signature
    /// is not stored, so it cannot be checked again. Only for bytes read back from Verdict's own
    /// database; anything from outside goes through [`SignatureVerifier::verify`].
    pub fn previously_verified(body: Bytes, event_type: Option<String>) -> Self {
        Self { body, event_type }
    }

    /// The raw body.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The `Idenfy-Event-Type` header, if any.
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }
}

impl fmt::Debug for VerifiedWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifiedWebhook")
            .field("body_len", &self.body.len())
            .field("event_type", &self.event_type)
            .finish_non_exhaustive()
    }
}

/// Checks signatures against every configured key, so keys can be rotated without downtime.
#[derive(Clone)]
pub struct SignatureVerifier {
    keys: Vec<HmacSha256>,
    unsigned: bool,
}

impl fmt::Debug for SignatureVerifier {
    // Keys are secrets: show only how many there are.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("keys", &self.keys.len())
            .field("unsigned", &self.unsigned)
            .finish()
    }
}

impl SignatureVerifier {
    /// A verifier accepting a signature made with any of `keys`. Empty keys are ignored.
    pub fn new<K: AsRef<[u8]>>(keys: impl IntoIterator<Item = K>) -> Self {
        let keys = keys
            .into_iter()
            .filter(|k| !k.as_ref().is_empty())
            .map(|k| {
                HmacSha256::new_from_slice(k.as_ref()).expect("HMAC accepts keys of any length")
            })
            .collect();
        Self {
            keys,
            unsigned: false,
        }
    }

    /// A verifier that accepts everything: only for `--allow-unsigned` development setups.
    pub fn allow_unsigned() -> Self {
        Self {
            keys: Vec::new(),
            unsigned: true,
        }
    }

    /// Whether this verifier has at least one key.
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }

    /// Checks the signature over the raw body in constant time against every key.
    pub fn verify(&self, webhook: UnverifiedWebhook) -> Result<VerifiedWebhook, SignatureError> {
        if !self.unsigned {
            let header = webhook
                .signature
                .as_deref()
                .ok_or(SignatureError::Missing)?;
            let tag = hex::decode(header.trim()).map_err(|_| SignatureError::Malformed)?;
            if tag.len() != 32 {
                return Err(SignatureError::Malformed);
            }
            // Try every key without stopping early, so timing does not reveal which key matched.
            let matched = self.keys.iter().fold(false, |found, key| {
                let mut mac = key.clone();
                mac.update(&webhook.body);
                mac.verify_slice(&tag).is_ok() | found
            });
            if !matched {
                return Err(SignatureError::Mismatch);
            }
        }
        Ok(VerifiedWebhook {
            body: webhook.body,
            event_type: webhook.event_type,
        })
    }
}

/// The lowercase hex `Idenfy-Signature` of `body` under `key`, as iDenfy computes it.
pub fn sign(key: &[u8], body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests;
