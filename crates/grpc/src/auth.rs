//! Bearer-token authentication of `CaseService` callers.
//!
//! Cases carry personal data, so a deployment can require internal callers to present one of a
//! set of tokens (several, so they can be rotated without downtime). Health and reflection stay
//! open: Kubernetes probes and `buf curl --list-methods` carry no credentials.

use std::{fmt, sync::Arc};

use sha2::{Digest, Sha256};
use tonic::{Request, Status};
use verdict_domain::ErrorKind;

use crate::status;

/// The accepted tokens, kept only as SHA-256 digests. Empty means no authentication.
#[derive(Clone, Default)]
pub struct Tokens {
    digests: Arc<[[u8; 32]]>,
}

impl fmt::Debug for Tokens {
    // Never print the tokens, not even hashed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("count", &self.digests.len())
            .finish()
    }
}

impl Tokens {
    /// Accepts any of `tokens`; blank ones are ignored.
    pub fn new<T: AsRef<[u8]>>(tokens: impl IntoIterator<Item = T>) -> Self {
        let digests: Vec<[u8; 32]> = tokens
            .into_iter()
            .filter(|t| !t.as_ref().is_empty())
            .map(|t| Sha256::digest(t.as_ref()).into())
            .collect();
        Self {
            digests: digests.into(),
        }
    }

    /// Whether callers must authenticate at all.
    pub fn is_required(&self) -> bool {
        !self.digests.is_empty()
    }

    /// The interceptor body: lets the request through, or answers UNAUTHENTICATED.
    pub(crate) fn check(&self, request: Request<()>) -> Result<Request<()>, Status> {
        if !self.is_required() {
            return Ok(request);
        }
        let presented = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .ok_or_else(|| {
                status::status(
                    ErrorKind::Unauthenticated,
                    "missing bearer token: send `authorization: Bearer <token>` metadata",
                )
            })?;
        // Comparing digests keeps the comparison's timing independent of the secret tokens;
        // every token is compared, without stopping at the first match.
        let digest: [u8; 32] = Sha256::digest(presented.trim().as_bytes()).into();
        let matched = self.digests.iter().fold(false, |found, known| {
            let differs = known
                .iter()
                .zip(&digest)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b));
            found | (differs == 0)
        });
        if matched {
            Ok(request)
        } else {
            Err(status::status(
                ErrorKind::Unauthenticated,
                "invalid bearer token",
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn request(authorization: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(value) = authorization {
            request
                .metadata_mut()
                .insert("authorization", value.parse().unwrap());
        }
        request
    }

    #[test]
    fn no_tokens_means_no_authentication() {
        let tokens = Tokens::new(Vec::<String>::new());
        assert!(!tokens.is_required());
        assert!(tokens.check(request(None)).is_ok());
    }

    #[test]
    fn any_configured_token_is_accepted_for_rotation() {
        let tokens = Tokens::new(["old", "new"]);
        assert!(tokens.check(request(Some("Bearer old"))).is_ok());
        assert!(tokens.check(request(Some("Bearer new"))).is_ok());
        assert!(tokens.check(request(Some("bearer new"))).is_ok());
    }

    #[test]
    fn missing_or_wrong_tokens_are_unauthenticated() {
        let tokens = Tokens::new(["secret"]);
        for header in [
            None,
            Some("secret"),
            Some("Bearer wrong"),
            Some("Basic c2VjcmV0"),
            Some("Bearer "),
        ] {
            let status = tokens.check(request(header)).unwrap_err();
            assert_eq!(status.code(), Code::Unauthenticated, "{header:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_tokens() {
        let tokens = Tokens::new(["super-secret-token"]);
        assert!(!format!("{tokens:?}").contains("super-secret"));
    }
}
