//! A connection URL that may carry a password, shown everywhere with the password masked.

use std::fmt;
use std::str::FromStr;

use secrecy::{ExposeSecret, SecretString};

/// A database or Redis URL. `Debug` and `Display` mask the password (`user:***@host`, and a
/// `password=` query parameter), so the URL can be logged, put in spans and printed in errors;
/// only [`SecretUrl::expose`] gives the real one, to the driver.
#[derive(Clone)]
pub struct SecretUrl(SecretString);

impl SecretUrl {
    /// The URL as the driver needs it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    /// The URL with its password masked.
    pub fn redacted(&self) -> String {
        redact(self.expose())
    }
}

impl From<String> for SecretUrl {
    fn from(url: String) -> Self {
        Self(SecretString::from(url))
    }
}

impl From<&str> for SecretUrl {
    fn from(url: &str) -> Self {
        Self::from(url.to_owned())
    }
}

impl FromStr for SecretUrl {
    type Err = std::convert::Infallible;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        Ok(Self::from(url))
    }
}

impl fmt::Debug for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.redacted())
    }
}

impl fmt::Display for SecretUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

const MASK: &str = "***";

/// `scheme://user:secret@host/db?password=secret&x=1` → `scheme://user:***@host/db?password=***&x=1`.
fn redact(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let rest = match url.split_once("://") {
        Some((scheme, rest)) => {
            out.push_str(scheme);
            out.push_str("://");
            rest
        }
        None => url,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            match userinfo.split_once(':') {
                Some((user, _password)) => {
                    out.push_str(user);
                    out.push(':');
                    out.push_str(MASK);
                }
                None => out.push_str(userinfo),
            }
            out.push('@');
            out.push_str(host);
        }
        None => out.push_str(authority),
    }
    match tail.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            for (n, pair) in query.split('&').enumerate() {
                if n > 0 {
                    out.push('&');
                }
                match pair.split_once('=') {
                    Some((key, _)) if key.eq_ignore_ascii_case("password") => {
                        out.push_str(key);
                        out.push('=');
                        out.push_str(MASK);
                    }
                    _ => out.push_str(pair),
                }
            }
        }
        None => out.push_str(tail),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_wherever_urls_carry_them() {
        for (url, shown) in [
            (
                "postgres://verdict:s3cret@db.internal:5432/verdict",
                "postgres://verdict:***@db.internal:5432/verdict",
            ),
            ("redis://:s3cret@redis:6379/0", "redis://:***@redis:6379/0"),
            (
                "rediss://default:s3cret@cache.example:6380",
                "rediss://default:***@cache.example:6380",
            ),
            (
                "postgres://db/verdict?user=v&password=s3cret&sslmode=require",
                "postgres://db/verdict?user=v&password=***&sslmode=require",
            ),
            (
                "postgres://p%40ss:s3c@ret@db/v",
                "postgres://p%40ss:***@db/v",
            ),
            (
                "sqlite://verdict.db?mode=rwc",
                "sqlite://verdict.db?mode=rwc",
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1:6379"),
        ] {
            let secret = SecretUrl::from(url);
            assert_eq!(secret.to_string(), shown);
            assert_eq!(format!("{secret:?}"), format!("{shown:?}"));
            assert!(!format!("{secret:?}").contains("s3c"), "{secret:?}");
            assert_eq!(secret.expose(), url);
        }
    }
}
