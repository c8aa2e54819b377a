//! How the client trusts its relay over TLS: the platform's roots, plus a
//! private CA (`--ca-file`), or only one certificate (`--pin-sha256`, the
//! SHA-256 of its DER form, which `relay serve` prints). rustls with the
//! `ring` provider; the handshake's signatures are checked in every case.

use std::sync::Arc;

use backchannel_protocol::Digest;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

use crate::error::TransportError;

/// What the client accepts as its relay's certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RelayTrust {
    /// A private CA's certificates (PEM), trusted besides the platform's roots.
    pub ca_pem: Option<Vec<u8>>,
    /// If set, only the certificate with this SHA-256 (of its DER) is
    /// accepted, whoever signed it.
    pub pin: Option<Digest>,
}

#[allow(deprecated)]
fn ring() -> Arc<CryptoProvider> {
    // Deprecated in rustls 0.23.48 for lacking post-quantum key exchange;
    // the project keeps ring (no C/cmake build).
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default rustls provider (for HTTP clients built
/// without a configuration of ours); a provider already installed stays.
pub fn install_ring_default() {
    let _ = CryptoProvider::install_default(Arc::unwrap_or_clone(ring()));
}

impl RelayTrust {
    /// The rustls configuration for this trust.
    pub fn client_config(&self) -> Result<ClientConfig, TransportError> {
        let provider = ring();
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_setup(e.to_string()))?;
        let verifier: Arc<dyn ServerCertVerifier> = match (&self.pin, &self.ca_pem) {
            (Some(pin), _) => Arc::new(Pinned {
                pin: *pin,
                algorithms: provider.signature_verification_algorithms,
            }),
            (None, ca) => {
                let extra = match ca {
                    Some(pem) => CertificateDer::pem_slice_iter(pem)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            tls_setup(format!("the CA file is not PEM certificates: {e}"))
                        })?,
                    None => Vec::new(),
                };
                if ca.is_some() && extra.is_empty() {
                    return Err(tls_setup("the CA file holds no CERTIFICATE block".into()));
                }
                Arc::new(
                    rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider)
                        .map_err(|e| tls_setup(e.to_string()))?,
                )
            }
        };
        let mut config = builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }
}

fn tls_setup(detail: String) -> TransportError {
    TransportError::Tls {
        url: String::new(),
        detail,
    }
}

/// Accepts exactly one certificate, by its SHA-256.
#[derive(Debug)]
struct Pinned {
    pin: Digest,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let seen = Digest::of(&[end_entity.as_ref()]);
        if seen == self.pin {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the relay's certificate has SHA-256 {}, not the pinned {}",
                seen.to_hex(),
                self.pin.to_hex()
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Describes a failed request, naming a TLS failure as one (with what to
/// do) instead of "unreachable".
pub(crate) fn describe(url: &str, e: &(dyn std::error::Error + 'static)) -> TransportError {
    let mut chain = Vec::new();
    let mut tls = false;
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        tls |= err.downcast_ref::<rustls::Error>().is_some();
        let text = err.to_string();
        if !chain.iter().any(|c: &String| c.contains(&text)) {
            chain.push(text);
        }
        cur = err.source();
    }
    let detail = chain.join(": ");
    if tls || detail.contains("certificate") {
        TransportError::Tls {
            url: url.to_string(),
            detail,
        }
    } else {
        TransportError::Unreachable {
            url: url.to_string(),
            detail,
        }
    }
}
