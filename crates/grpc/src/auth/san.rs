//! The subject alternative names of a verified client certificate.

use x509_cert::Certificate;
use x509_cert::der::Decode;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::ext::pkix::name::GeneralName;

/// The URI (SPIFFE ids) and DNS names of a DER certificate, in the certificate's order. The
/// certificate was verified by the TLS handshake already; one that cannot be parsed here simply
/// names nobody.
pub(super) fn names(der: &[u8]) -> Vec<String> {
    let Ok(certificate) = Certificate::from_der(der) else {
        return Vec::new();
    };
    let Ok(Some((_critical, SubjectAltName(names)))) = certificate
        .tbs_certificate()
        .get_extension::<SubjectAltName>()
    else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|name| match name {
            GeneralName::UniformResourceIdentifier(name) | GeneralName::DnsName(name) => {
                Some(name.to_string())
            }
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_and_dns_names_are_read() {
        let mut params = rcgen::CertificateParams::new(vec!["accounts.internal".to_owned()])
            .expect("valid names");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://prod/ns/accounts/sa/accounts".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let certificate = params.self_signed(&key).unwrap();
        assert_eq!(
            names(certificate.der()),
            ["accounts.internal", "spiffe://prod/ns/accounts/sa/accounts"]
        );
    }

    #[test]
    fn garbage_names_nobody() {
        assert!(names(b"not a certificate").is_empty());
    }
}
