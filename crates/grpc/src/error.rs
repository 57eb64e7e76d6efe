//! The crate's error: what can stop the gRPC server itself (request failures are `Status`es).

/// Why [`serve`](crate::serve) stopped without being asked to.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The transport failed (accepting or serving connections).
    #[error("grpc transport failed")]
    Transport(#[from] tonic::transport::Error),
    /// The embedded descriptor sets could not be loaded into the reflection service: a build bug.
    #[error("grpc reflection could not be built")]
    Reflection(#[from] tonic_reflection::server::Error),
}
