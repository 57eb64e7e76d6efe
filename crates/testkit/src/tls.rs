//! A throwaway certificate authority made at test time: a server certificate for 127.0.0.1 and
//! client certificates with the SANs a test needs, as PEM files and as tonic client settings.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// A CA and the files it issued, in a directory that lives as long as this value.
#[derive(Debug)]
pub struct TestPki {
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
    ca_path: PathBuf,
}

/// A certificate and its key, as PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Issued {
    /// The pair as a tonic client identity (mutual TLS).
    pub fn identity(&self) -> Identity {
        Identity::from_pem(read(&self.cert), read(&self.key))
    }
}

impl TestPki {
    /// A new CA named `name`.
    pub fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
            .distinguished_name
            .push(DnType::CommonName, format!("{name} test CA"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a key"))
            .expect("a CA certificate");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let ca_path = dir.path().join("ca.pem");
        std::fs::write(&ca_path, ca.pem()).expect("write the CA");
        Self { dir, ca, ca_path }
    }

    /// The CA certificate's PEM file (`VERDICT_GRPC_CLIENT_CA`, `--ca`).
    pub fn ca_path(&self) -> &Path {
        &self.ca_path
    }

    /// A server certificate for `127.0.0.1` and `localhost`.
    pub fn server(&self) -> Issued {
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).expect("valid names");
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue("server", params)
    }

    /// A client certificate whose SAN is the URI `san` (a SPIFFE id, say).
    pub fn client(&self, san: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("no names");
        params
            .subject_alt_names
            .push(SanType::URI(san.try_into().expect("an IA5 URI")));
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let file = san.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        self.issue(&file, params)
    }

    /// tonic client settings trusting this CA, for `https://127.0.0.1:<port>`.
    pub fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read(&self.ca_path)))
    }

    fn issue(&self, name: &str, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("a key");
        let cert = params
            .signed_by(&key, &self.ca)
            .expect("a signed certificate");
        let issued = Issued {
            cert: self.dir.path().join(format!("{name}.pem")),
            key: self.dir.path().join(format!("{name}.key")),
        };
        std::fs::write(&issued.cert, cert.pem()).expect("write the certificate");
        std::fs::write(&issued.key, key.serialize_pem()).expect("write the key");
        issued
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read a PEM file")
}
