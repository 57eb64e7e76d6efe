//! The crate's error: what can stop the gRPC server, or keep it from starting (request failures
//! are `Status`es).

use std::path::PathBuf;

/// Why the gRPC side could not start, or why [`serve`](crate::serve) stopped without being asked
/// to. Messages name the file or setting to fix, never a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed (accepting or serving connections).
    #[error("grpc transport failed")]
    Transport(#[from] tonic::transport::Error),
    /// The embedded descriptor sets could not be loaded into the reflection service: a build bug.
    #[error("grpc reflection could not be built")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// A credentials or TLS file could not be read.
    #[error("could not read {what} {path:?}")]
    ReadFile {
        /// Which setting the file belongs to.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        #[source]
        source: std::io::Error,
    },
    /// The tokens file was read but is not valid.
    #[error("invalid gRPC tokens file {path:?}: {reason}")]
    TokensFile {
        /// The file.
        path: PathBuf,
        /// What is wrong, and where.
        reason: String,
    },
    /// The TLS certificate, key or client CA cannot be used.
    #[error("unusable gRPC TLS files: {0}")]
    Tls(String),
}
