//! TLS for the relay: a certificate chain and key from PEM files, with the
//! `ring` provider, reloaded in place (on SIGHUP) so a renewed certificate
//! needs no restart. A failed reload keeps the one in use.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use backchannel_protocol::Digest;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use thiserror::Error;

/// A certificate or key that cannot be used.
#[derive(Debug, Error)]
pub enum TlsError {
    /// The file cannot be read or holds no PEM of the expected kind.
    #[error("{what} {path}: {detail}")]
    File {
        /// `certificate` or `private key`.
        what: &'static str,
        /// The file.
        path: String,
        /// Why.
        detail: String,
    },
    /// rustls refuses the pair (e.g. the key does not match the certificate).
    #[error("the certificate and key cannot be used together: {0}")]
    Config(String),
}

/// The relay's certificate and key, reloadable.
#[derive(Debug)]
pub struct TlsFiles {
    cert: PathBuf,
    key: PathBuf,
    current: RwLock<(Arc<ServerConfig>, Digest)>,
}

impl TlsFiles {
    /// Loads the PEM certificate chain (leaf first) and private key.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let loaded = build(cert, key)?;
        Ok(TlsFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: RwLock::new(loaded),
        })
    }

    /// Reads both files again; on failure the old pair stays in use.
    pub fn reload(&self) -> Result<Digest, TlsError> {
        let loaded = build(&self.cert, &self.key)?;
        let fingerprint = loaded.1;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = loaded;
        Ok(fingerprint)
    }

    /// The configuration new connections use.
    pub(crate) fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .clone()
    }

    /// SHA-256 of the leaf certificate (DER): what a client pins with
    /// `--pin-sha256`.
    pub fn fingerprint(&self) -> Digest {
        self.current.read().unwrap_or_else(|p| p.into_inner()).1
    }
}

/// A throwaway certificate authority and a certificate it signed for
/// `127.0.0.1`, `::1` and `localhost`, written as PEM files: for the demo
/// and tests, never for a relay people rely on.
#[derive(Debug)]
pub struct LoopbackCa {
    /// The CA's certificate (what a client trusts with `--ca-file`).
    pub ca_pem: String,
    /// The relay's certificate chain file.
    pub cert: PathBuf,
    /// The relay's key file (0600).
    pub key: PathBuf,
    /// The CA's file.
    pub ca: PathBuf,
}

impl LoopbackCa {
    /// Makes the CA and the certificate, and writes `ca.pem`, `cert.pem`
    /// and `key.pem` into `dir`.
    pub fn create(dir: &Path) -> Result<Self, TlsError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
        let fail =
            |e: rcgen::Error| TlsError::Config(format!("making a throwaway certificate: {e}"));
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Backchannel throwaway CA");
        let ca_key = KeyPair::generate().map_err(fail)?;
        let ca_cert = ca_params.self_signed(&ca_key).map_err(fail)?;
        let names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
        let leaf_params = CertificateParams::new(names).map_err(fail)?;
        let leaf_key = KeyPair::generate().map_err(fail)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf = leaf_params.signed_by(&leaf_key, &issuer).map_err(fail)?;
        let write = |name: &str, text: &str| -> Result<PathBuf, TlsError> {
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let path = dir.join(name);
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .map_err(|e| TlsError::File {
                    what: "certificate",
                    path: path.display().to_string(),
                    detail: e.to_string(),
                })?;
            Ok(path)
        };
        let ca_pem = ca_cert.pem();
        Ok(LoopbackCa {
            ca: write("ca.pem", &ca_pem)?,
            cert: write("cert.pem", &leaf.pem())?,
            key: write("key.pem", &leaf_key.serialize_pem())?,
            ca_pem,
        })
    }
}

fn build(cert: &Path, key: &Path) -> Result<(Arc<ServerConfig>, Digest), TlsError> {
    let file_error = |what, path: &Path, detail: String| TlsError::File {
        what,
        path: path.display().to_string(),
        detail,
    };
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| file_error("certificate", cert, e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(file_error(
            "certificate",
            cert,
            "holds no CERTIFICATE block".into(),
        ));
    };
    let fingerprint = Digest::of(&[leaf.as_ref()]);
    let private = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| file_error("private key", key, e.to_string()))?;
    let provider = Arc::new(ring_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(config), fingerprint))
}

/// rustls with the `ring` provider (the project's rule: no aws-lc-rs, a
/// C/cmake build). rustls 0.23.48 marks it deprecated for lacking
/// post-quantum key exchange; it stays the audited, pure-build choice.
#[allow(deprecated)]
pub fn ring_provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
