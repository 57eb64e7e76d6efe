//! The scopes a credential grants (DESIGN §10).

use std::fmt;

use serde::Deserialize;

/// One permission. Spelled in the tokens file as in DESIGN §10.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Scope {
    /// Every `CaseService` call with the BASIC view: no personal data.
    #[serde(rename = "cases:read")]
    CasesRead,
    /// The FULL view anywhere, i.e. the `person` of a case.
    #[serde(rename = "pii:read")]
    PiiRead,
    /// The operator's `AdminService`.
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    /// The spelling used in tokens files and error messages.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::CasesRead => "cases:read",
            Self::PiiRead => "pii:read",
            Self::Admin => "admin",
        }
    }

    const fn bit(self) -> u8 {
        match self {
            Self::CasesRead => 1,
            Self::PiiRead => 2,
            Self::Admin => 4,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of scopes: a bit each, so a caller is cheap to copy into every request.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Scopes(u8);

impl Scopes {
    /// Every scope: what a caller gets while authentication is off.
    pub(crate) const ALL: Self = Self(1 | 2 | 4);

    pub(crate) fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(scopes: I) -> Self {
        Self(scopes.into_iter().fold(0, |bits, scope| bits | scope.bit()))
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let granted = [Scope::CasesRead, Scope::PiiRead, Scope::Admin]
            .into_iter()
            .filter(|scope| self.contains(*scope));
        f.debug_set().entries(granted.map(Scope::as_str)).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_holds_exactly_what_it_was_given() {
        let scopes: Scopes = [Scope::CasesRead, Scope::Admin].into_iter().collect();
        assert!(scopes.contains(Scope::CasesRead));
        assert!(!scopes.contains(Scope::PiiRead));
        assert!(scopes.contains(Scope::Admin));
        assert_eq!(format!("{scopes:?}"), r#"{"cases:read", "admin"}"#);
        assert!(!Scopes::default().contains(Scope::CasesRead));
        assert!(Scopes::ALL.contains(Scope::PiiRead));
    }
}
