//! [`Tls`]: how a client checks a node's TLS certificate (the CA that issued it) and, for a door
//! that requires one, the client certificate it shows.

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// TLS settings for connections to nodes' TLS ports; cheap to clone.
#[derive(Clone)]
pub struct Tls {
    config: Arc<ClientConfig>,
}

fn invalid(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what)
}

impl Tls {
    /// Trusts the CA certificates in `ca` (PEM); shows the certificate chain and key in
    /// `client` (PEM files) to a door that asks for one.
    pub fn from_pem_files(ca: &Path, client: Option<(&Path, &Path)>) -> io::Result<Tls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = RootCertStore::empty();
        let certs = |path: &Path| {
            CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| invalid(format!("certificates in {}: {e}", path.display())))
        };
        for cert in certs(ca)? {
            roots.add(cert).map_err(|e| invalid(format!("CA in {}: {e}", ca.display())))?;
        }
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid(e.to_string()))?
            .with_root_certificates(roots);
        let config = match client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| invalid(format!("private key in {}: {e}", key.display())))?;
                builder
                    .with_client_auth_cert(certs(cert)?, key)
                    .map_err(|e| invalid(format!("client certificate: {e}")))?
            }
        };
        Ok(Tls { config: Arc::new(config) })
    }

    /// Runs the handshake over `stream` to the node at `address` (`host:port`), whose
    /// certificate must name `host`.
    pub async fn connect(
        &self,
        address: &str,
        stream: TcpStream,
    ) -> io::Result<TlsStream<TcpStream>> {
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|_| invalid(format!("{address}: not a host name or address")))?;
        TlsConnector::from(self.config.clone()).connect(name, stream).await
    }
}
