//! TLS termination: the certificate and key come from files named in the
//! config, are checked when the config is compiled, and are swapped in on
//! reload (a resolver holds the current pair, so open connections keep
//! theirs and new handshakes get the new one). HTTP/2 is offered by ALPN.

use std::path::Path;
use std::sync::Arc;

use arc_swap::ArcSwap;
use pingora::tls::sign::CertifiedKey;
use pingora::tls::{ClientHello, CryptoProvider, ResolvesServerCert};

/// Reads and checks a certificate chain and its private key (PEM).
pub fn load(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, String> {
    pingora::tls::install_default_crypto_provider();
    let (certs, private) =
        pingora::tls::load_certs_and_key_files(&cert.to_string_lossy(), &key.to_string_lossy())
            .map_err(|e| format!("cannot read: {e}"))?
            .ok_or_else(|| {
                "no certificate in the chain file, or no private key in the key file".to_owned()
            })?;
    let provider = CryptoProvider::get_default().ok_or("no TLS crypto provider")?;
    let pair = CertifiedKey::from_der(certs, private, provider)
        .map_err(|e| format!("the key does not fit the certificate: {e}"))?;
    Ok(Arc::new(pair))
}

/// The certificate in force, swapped on reload.
pub struct CertStore {
    current: ArcSwap<CertifiedKey>,
}

impl std::fmt::Debug for CertStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CertStore")
    }
}

impl CertStore {
    pub fn new(pair: Arc<CertifiedKey>) -> Self {
        Self {
            current: ArcSwap::new(pair),
        }
    }

    pub fn swap(&self, pair: Arc<CertifiedKey>) {
        self.current.store(pair);
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}
