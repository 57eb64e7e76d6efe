//! Who is calling, and what they may see.
//!
//! Authentication happens once per call, in the interceptor in front of `CaseService`: the
//! caller's bearer token or verified client certificate becomes a [`Caller`] (a name for the
//! audit trail and a set of [`Scope`]s) in the request's extensions, or the call ends
//! UNAUTHENTICATED. Authorisation happens in each handler, which alone knows the view it is about
//! to serve: [`Caller::require`] answers PERMISSION_DENIED. Health and reflection stay open:
//! Kubernetes probes and `buf curl --list-methods` carry no credentials.

mod caller;
mod credentials;
mod san;
mod scope;
mod tokens_file;

pub use caller::Caller;
pub use credentials::Credentials;
pub use scope::Scope;
pub(crate) use scope::Scopes;
