//! The authenticated caller of one request, and the scope check handlers make.

use std::sync::{Arc, LazyLock};

use tonic::{Request, Status};
use verdict_domain::ErrorKind;

use super::{Scope, Scopes};
use crate::status;

/// Who made a call, as the interceptor established it; in every `CaseService` request's
/// extensions.
#[derive(Debug, Clone)]
pub struct Caller {
    name: Arc<str>,
    scopes: Scopes,
}

impl Caller {
    pub(crate) fn new(name: Arc<str>, scopes: Scopes) -> Self {
        Self { name, scopes }
    }

    /// The caller of a server without authentication: may do everything, audited as such.
    pub(crate) fn anonymous() -> Self {
        // Every call of an open server gets this caller: one name, no allocation per call.
        static NAME: LazyLock<Arc<str>> = LazyLock::new(|| Arc::from("anonymous"));
        Self::new(Arc::clone(&NAME), Scopes::ALL)
    }

    /// The name audit events show: the tokens file's `name`, a client certificate's SAN, or
    /// `anonymous` while authentication is off.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The caller of `request`. Missing only if the interceptor was not installed: a bug, so
    /// INTERNAL rather than an open door.
    pub(crate) fn of<T>(request: &Request<T>) -> Result<Self, Status> {
        request.extensions().get::<Self>().cloned().ok_or_else(|| {
            tracing::error!("request reached a handler without an authenticated caller");
            status::status(ErrorKind::Internal, "internal error")
        })
    }

    /// PERMISSION_DENIED unless the caller holds `scope`: the one-line check every handler
    /// makes for what it is about to serve.
    pub fn require(&self, scope: Scope) -> Result<(), Status> {
        if self.scopes.contains(scope) {
            return Ok(());
        }
        Err(status::status(
            ErrorKind::PermissionDenied,
            format!("caller {:?} lacks the scope {scope}", &*self.name),
        ))
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    #[test]
    fn require_denies_what_was_not_granted() {
        let caller = Caller::new(Arc::from("ui"), [Scope::CasesRead].into_iter().collect());
        assert!(caller.require(Scope::CasesRead).is_ok());
        let denied = caller.require(Scope::PiiRead).unwrap_err();
        assert_eq!(denied.code(), Code::PermissionDenied);
        assert_eq!(denied.message(), r#"caller "ui" lacks the scope pii:read"#);
        assert!(Caller::anonymous().require(Scope::Admin).is_ok());
    }

    #[test]
    fn a_request_without_a_caller_is_refused_not_served() {
        let status = Caller::of(&Request::new(())).unwrap_err();
        assert_eq!(status.code(), Code::Internal);
    }
}
