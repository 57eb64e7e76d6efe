//! The `verdict.v1` gRPC contract as Rust types, generated at build time from `proto/` so the
//! code can never drift from the `.proto` files that clients and `buf breaking` see.
//!
//! Conversions to and from the domain live in `verdict-grpc`, not here: this crate stays a pure
//! mirror of the wire format.

#![forbid(unsafe_code)]

pub mod codec;

/// The `verdict` protobuf package.
pub mod verdict {
    /// Version 1 of the API: messages, `case_service_server`/`_client` and
    /// `admin_service_server`/`_client`.
    pub mod v1 {
        tonic::include_proto!("verdict.v1");
    }
}

/// The encoded `FileDescriptorSet` of every `verdict` proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("verdict_descriptor");

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    #[test]
    fn descriptor_set_describes_the_case_service() {
        let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let file = set
            .file
            .iter()
            .find(|f| f.package() == "verdict.v1")
            .expect("verdict.v1 file in the descriptor set");
        assert!(file.service.iter().any(|s| s.name() == "CaseService"));
        let services: Vec<&str> = set
            .file
            .iter()
            .filter(|f| f.package() == "verdict.v1")
            .flat_map(|f| f.service.iter().map(|s| s.name()))
            .collect();
        assert!(services.contains(&"AdminService"), "{services:?}");
    }

    #[test]
    fn service_name_matches_the_proto_package() {
        assert_eq!(
            verdict::v1::case_service_server::SERVICE_NAME,
            "verdict.v1.CaseService"
        );
        assert_eq!(
            verdict::v1::admin_service_server::SERVICE_NAME,
            "verdict.v1.AdminService"
        );
    }
}
