//! The credentials a server accepts, and the authentication of one request against them.

use std::path::Path;
use std::sync::Arc;
use std::{fmt, fs};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;
use tonic::metadata::MetadataMap;
use tonic::transport::CertificateDer;
use tonic::{Request, Status};
use verdict_domain::ErrorKind;

use super::tokens_file::TokensFile;
use super::{Caller, Scope, Scopes, san};
use crate::{Error, status};

/// What `VERDICT_GRPC_TOKEN` grants: reading cases without personal data (DESIGN §10).
const ENV_TOKEN_SCOPES: [Scope; 1] = [Scope::CasesRead];

/// The accepted tokens (as SHA-256 digests only) and client certificates. Cheap to clone.
///
/// Empty, and without a client CA, means no authentication: every call is allowed, as DESIGN
/// §10 permits on loopback or with `--grpc-insecure`.
#[derive(Clone, Default)]
pub struct Credentials {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    tokens: Vec<Token>,
    clients: Vec<Client>,
    /// The TLS layer verifies client certificates against a CA (mutual TLS).
    client_certificates: bool,
}

struct Token {
    name: Arc<str>,
    digest: [u8; 32],
    scopes: Scopes,
}

struct Client {
    san: String,
    name: Arc<str>,
    scopes: Scopes,
}

impl fmt::Debug for Credentials {
    // Never the tokens, not even hashed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("tokens", &self.inner.tokens.len())
            .field("clients", &self.inner.clients.len())
            .field("client_certificates", &self.inner.client_certificates)
            .finish()
    }
}

impl Credentials {
    /// The credentials of a server: `env_tokens` (`VERDICT_GRPC_TOKEN`, each granting
    /// `cases:read`, named `VERDICT_GRPC_TOKEN#1`, `#2`… in audit events), the tokens file's
    /// entries, and whether TLS verifies client certificates.
    ///
    /// Refused: a tokens file that cannot be read or is invalid, `[[client]]` entries without
    /// client certificates to match them against, and the same token twice.
    pub fn load(
        env_tokens: &[impl AsRef<[u8]>],
        tokens_file: Option<&Path>,
        client_certificates: bool,
    ) -> Result<Self, Error> {
        let mut inner = Inner {
            client_certificates,
            ..Inner::default()
        };
        for (n, token) in env_tokens.iter().enumerate() {
            inner.tokens.push(Token {
                name: Arc::from(format!("VERDICT_GRPC_TOKEN#{}", n + 1)),
                digest: Sha256::digest(token.as_ref()).into(),
                scopes: ENV_TOKEN_SCOPES.into_iter().collect(),
            });
        }
        if let Some(path) = tokens_file {
            let invalid = |reason: String| Error::TokensFile {
                path: path.to_owned(),
                reason,
            };
            let text = fs::read_to_string(path).map_err(|source| Error::ReadFile {
                what: "the gRPC tokens file",
                path: path.to_owned(),
                source,
            })?;
            let file = TokensFile::parse(&text).map_err(invalid)?;
            if file.tokens.is_empty() && file.clients.is_empty() {
                return Err(invalid(
                    "it lists no [[token]] and no [[client]]: it would grant nothing".into(),
                ));
            }
            if !file.clients.is_empty() && !client_certificates {
                return Err(invalid(
                    "[[client]] entries need client certificates: set VERDICT_GRPC_CLIENT_CA \
                     (with VERDICT_GRPC_TLS_CERT and VERDICT_GRPC_TLS_KEY)"
                        .into(),
                ));
            }
            for token in file.tokens {
                if inner.tokens.iter().any(|t| t.digest == token.digest) {
                    return Err(invalid(format!(
                        "the token of {:?} is also in VERDICT_GRPC_TOKEN",
                        token.name
                    )));
                }
                inner.tokens.push(Token {
                    name: Arc::from(token.name),
                    digest: token.digest,
                    scopes: token.scopes.into_iter().collect(),
                });
            }
            inner.clients = file
                .clients
                .into_iter()
                .map(|client| Client {
                    name: Arc::from(client.name.unwrap_or_else(|| client.san.clone())),
                    san: client.san,
                    scopes: client.scopes.into_iter().collect(),
                })
                .collect();
        }
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// Whether callers must authenticate at all.
    pub fn is_required(&self) -> bool {
        !self.inner.tokens.is_empty() || self.inner.client_certificates
    }

    /// The interceptor body: puts the [`Caller`] into the request, or answers UNAUTHENTICATED.
    pub(crate) fn authenticate(&self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let peer_certs = request.peer_certs();
        let caller = self.caller(
            request.metadata(),
            peer_certs.as_ref().map(|certs| certs.as_slice()),
        )?;
        request.extensions_mut().insert(caller);
        Ok(request)
    }

    /// A bearer token, when sent, says who the caller is (an unknown one is refused even if a
    /// certificate would do); without one, a verified client certificate listed by SAN does.
    /// A certificate that is not listed authenticates the connection but grants nothing, so the
    /// call still needs a token. With client certificates and neither tokens nor `[[client]]`
    /// entries, the CA is the only gate: every certificate it signed may read cases.
    fn caller(
        &self,
        metadata: &MetadataMap,
        peer_certs: Option<&[CertificateDer<'static>]>,
    ) -> Result<Caller, Status> {
        if !self.is_required() {
            return Ok(Caller::anonymous());
        }
        if let Some(token) = bearer(metadata)? {
            return self
                .token(token)
                .ok_or_else(|| unauthenticated("unknown bearer token"));
        }
        let names = peer_certs
            .and_then(<[_]>::first)
            .map(|leaf| san::names(leaf))
            .unwrap_or_default();
        if let Some(caller) = self.client(&names) {
            return Ok(caller);
        }
        Err(unauthenticated(if names.is_empty() {
            "no credential: send `authorization: Bearer <token>` metadata"
        } else {
            "client certificate not listed in the tokens file: send `authorization: Bearer \
             <token>` metadata"
        }))
    }

    /// The token whose digest matches. Digests of equal length are compared in constant time,
    /// with every entry compared, so timing tells nothing about the tokens.
    fn token(&self, presented: &str) -> Option<Caller> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for token in &self.inner.tokens {
            if bool::from(token.digest.ct_eq(&digest)) {
                found = Some(Caller::new(Arc::clone(&token.name), token.scopes));
            }
        }
        found
    }

    fn client(&self, names: &[String]) -> Option<Caller> {
        if names.is_empty() || !self.inner.client_certificates {
            return None;
        }
        if self.inner.clients.is_empty() && self.inner.tokens.is_empty() {
            return Some(Caller::new(
                Arc::from(names[0].as_str()),
                [Scope::CasesRead].into_iter().collect(),
            ));
        }
        self.inner
            .clients
            .iter()
            .find(|client| names.contains(&client.san))
            .map(|client| Caller::new(Arc::clone(&client.name), client.scopes))
    }
}

/// The bearer token of the `authorization` metadata: `None` when absent, UNAUTHENTICATED when
/// it is there but not `Bearer <token>`.
fn bearer(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    let Some(value) = metadata.get("authorization") else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty());
    match token {
        Some(token) => Ok(Some(token)),
        None => Err(unauthenticated(
            "malformed authorization metadata: send `Bearer <token>`",
        )),
    }
}

fn unauthenticated(message: &str) -> Status {
    status::status(ErrorKind::Unauthenticated, message)
}

#[cfg(test)]
mod tests;
