//! TLS and mutual TLS on the gRPC listener (tonic over rustls with ring).

use std::path::Path;
use std::time::Duration;
use std::{fmt, fs};

use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};

use crate::Error;

/// A client that opens a connection and stalls the handshake is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The listener's certificate and key, and the CA client certificates must chain to, loaded and
/// checked when the server is built, so a bad file stops the start rather than the first call.
#[derive(Clone)]
pub struct ServerTls {
    config: ServerTlsConfig,
    verifies_clients: bool,
}

impl fmt::Debug for ServerTls {
    // The key stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("verifies_clients", &self.verifies_clients)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Reads the PEM certificate chain and key, and with `client_ca` requires every client to
    /// present a certificate signed by it (mutual TLS).
    pub fn load(cert: &Path, key: &Path, client_ca: Option<&Path>) -> Result<Self, Error> {
        let identity = Identity::from_pem(
            read("VERDICT_GRPC_TLS_CERT", cert)?,
            read("VERDICT_GRPC_TLS_KEY", key)?,
        );
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(HANDSHAKE_TIMEOUT);
        if let Some(ca) = client_ca {
            config =
                config.client_ca_root(Certificate::from_pem(read("VERDICT_GRPC_CLIENT_CA", ca)?));
        }
        // tonic parses the PEM only when a server is built: do it now.
        Server::builder()
            .tls_config(config.clone())
            .map_err(|e| Error::Tls(chain(&e)))?;
        Ok(Self {
            config,
            verifies_clients: client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate (mutual TLS).
    pub fn verifies_clients(&self) -> bool {
        self.verifies_clients
    }

    pub(crate) fn config(&self) -> ServerTlsConfig {
        self.config.clone()
    }
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    fs::read(path).map_err(|source| Error::ReadFile {
        what: setting,
        path: path.to_owned(),
        source,
    })
}

/// `outer: inner: root`: tonic's own message ("transport error") says nothing by itself.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pem_pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    #[test]
    fn good_files_load_and_bad_ones_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pem_pair();
        let (other_cert, _) = pem_pair();
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            fs::write(&path, text).unwrap();
            path
        };
        let cert = write("cert.pem", &cert);
        let key = write("key.pem", &key);
        let ca = write("ca.pem", &other_cert);
        let garbage = write("garbage.pem", "not pem");

        assert!(
            !ServerTls::load(&cert, &key, None)
                .unwrap()
                .verifies_clients()
        );
        assert!(
            ServerTls::load(&cert, &key, Some(&ca))
                .unwrap()
                .verifies_clients()
        );

        let missing = ServerTls::load(&cert, &dir.path().join("nope.pem"), None).unwrap_err();
        assert!(
            missing.to_string().contains("VERDICT_GRPC_TLS_KEY"),
            "{missing}"
        );
        assert!(matches!(
            ServerTls::load(&garbage, &key, None),
            Err(Error::Tls(_))
        ));
        assert!(matches!(
            ServerTls::load(&cert, &garbage, None),
            Err(Error::Tls(_))
        ));
    }
}
