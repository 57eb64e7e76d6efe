//! `VERDICT_GRPC_TOKENS_FILE`: named tokens and mTLS clients with their scopes (DESIGN §10).
//!
//! ```toml
//! [[token]]
//! name = "onboarding-ui"
//! scopes = ["cases:read"]
//! sha256 = "9f86d081884c7d65…"   # or: token = "plain"
//! [[client]]
//! san = "spiffe://prod/ns/accounts/sa/accounts"
//! scopes = ["cases:read", "pii:read"]
//! ```
//!
//! Unknown keys and scopes are refused rather than ignored: a typo must not silently grant less
//! (or, worse, be read as "no authentication").

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::Scope;

/// A parsed file, checked: every token has a name and a 32-byte digest, every client a SAN.
#[derive(Default)]
pub(super) struct TokensFile {
    pub(super) tokens: Vec<TokenEntry>,
    pub(super) clients: Vec<ClientEntry>,
}

/// A `[[token]]`, reduced to what authentication needs: never the token itself.
pub(super) struct TokenEntry {
    pub(super) name: String,
    pub(super) digest: [u8; 32],
    pub(super) scopes: Vec<Scope>,
}

/// A `[[client]]`: a client certificate's subject alternative name.
pub(super) struct ClientEntry {
    pub(super) san: String,
    pub(super) name: Option<String>,
    pub(super) scopes: Vec<Scope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    token: Vec<RawToken>,
    #[serde(default)]
    client: Vec<RawClient>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    name: String,
    scopes: Vec<Scope>,
    token: Option<String>,
    sha256: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClient {
    san: String,
    name: Option<String>,
    scopes: Vec<Scope>,
}

impl TokensFile {
    /// Parses and checks the file's text. The error says what is wrong and where, and never
    /// quotes the file (it may hold plain tokens).
    pub(super) fn parse(text: &str) -> Result<Self, String> {
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start].lines().count().max(1));
            match line {
                Some(line) => format!("line {line}: {}", e.message()),
                None => e.message().to_owned(),
            }
        })?;
        let mut tokens = Vec::with_capacity(raw.token.len());
        for (n, entry) in raw.token.into_iter().enumerate() {
            let which = format!("[[token]] #{} ({:?})", n + 1, entry.name);
            if entry.name.trim().is_empty() {
                return Err(format!("[[token]] #{} has an empty name", n + 1));
            }
            let digest = match (entry.token, entry.sha256) {
                (Some(token), None) if token.trim().is_empty() => {
                    return Err(format!("{which} has an empty token"));
                }
                (Some(token), None) => Sha256::digest(token.trim().as_bytes()).into(),
                (None, Some(sha256)) => parse_digest(&sha256)
                    .ok_or_else(|| format!("{which}: sha256 must be 64 hex digits"))?,
                (Some(_), Some(_)) => return Err(format!("{which} has both token and sha256")),
                (None, None) => return Err(format!("{which} needs token or sha256")),
            };
            if tokens.iter().any(|t: &TokenEntry| t.digest == digest) {
                return Err(format!("{which} repeats the token of an earlier entry"));
            }
            tokens.push(TokenEntry {
                name: entry.name,
                digest,
                scopes: entry.scopes,
            });
        }
        let mut clients = Vec::with_capacity(raw.client.len());
        for (n, entry) in raw.client.into_iter().enumerate() {
            if entry.san.trim().is_empty() {
                return Err(format!("[[client]] #{} has an empty san", n + 1));
            }
            clients.push(ClientEntry {
                san: entry.san,
                name: entry.name,
                scopes: entry.scopes,
            });
        }
        Ok(Self { tokens, clients })
    }
}

fn parse_digest(hex_digest: &str) -> Option<[u8; 32]> {
    let mut digest = [0; 32];
    hex::decode_to_slice(hex_digest.trim(), &mut digest).ok()?;
    Some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA256_OF_TEST: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    #[test]
    fn plain_and_hashed_tokens_and_clients_are_read() {
        let file = TokensFile::parse(&format!(
            r#"
            [[token]]
            name = "onboarding-ui"
            scopes = ["cases:read"]
            sha256 = "{SHA256_OF_TEST}"

            [[token]]
            name = "accounts"
            scopes = ["cases:read", "pii:read"]
            token = "plain-secret"

            [[client]]
            san = "spiffe://prod/ns/accounts/sa/accounts"
            scopes = ["cases:read", "pii:read"]
            "#
        ))
        .unwrap();
        assert_eq!(file.tokens.len(), 2);
        assert_eq!(
            file.tokens[0].digest,
            <[u8; 32]>::from(Sha256::digest(b"test"))
        );
        assert_eq!(
            file.tokens[1].digest,
            <[u8; 32]>::from(Sha256::digest(b"plain-secret"))
        );
        assert_eq!(file.tokens[1].scopes, [Scope::CasesRead, Scope::PiiRead]);
        assert_eq!(file.clients[0].san, "spiffe://prod/ns/accounts/sa/accounts");
    }

    #[test]
    fn a_file_of_clients_only_is_valid() {
        let file = TokensFile::parse("[[client]]\nsan = \"a.example\"\nscopes = []\n").unwrap();
        assert!(file.tokens.is_empty());
        assert_eq!(file.clients.len(), 1);
    }

    #[test]
    fn mistakes_are_refused_with_a_reason_and_without_the_secret() {
        let cases = [
            (
                "[[token]]\nname = \"a\"\nscopes = []\ntoken = \"  \"\n",
                "empty token",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = []\n",
                "needs token or sha256",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = []\ntoken = \"s3cret\"\nsha256 = \"00\"\n",
                "both token and sha256",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = []\nsha256 = \"xyz\"\n",
                "64 hex digits",
            ),
            (
                "[[token]]\nname = \"\"\nscopes = []\ntoken = \"s3cret\"\n",
                "empty name",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = [\"pii-read\"]\ntoken = \"s3cret\"\n",
                "unknown variant",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = []\ntokn = \"s3cret\"\n",
                "unknown field",
            ),
            (
                "[[token]]\nname = \"a\"\nscopes = []\ntoken = \"s3cret\"\n\
                 [[token]]\nname = \"b\"\nscopes = []\ntoken = \"s3cret\"\n",
                "repeats the token",
            ),
            ("[[client]]\nsan = \"\"\nscopes = []\n", "empty san"),
            ("[[token]\n", "line 1"),
        ];
        for (text, reason) in cases {
            let Err(error) = TokensFile::parse(text) else {
                panic!("accepted: {text}");
            };
            assert!(error.contains(reason), "{error:?} should say {reason:?}");
            assert!(!error.contains("s3cret"), "{error:?} quotes the token");
        }
    }
}
