//! Sealing at rest: a random 32-byte store key encrypts every sealed column
//! (XChaCha20-Poly1305, random nonce, the table name as associated data);
//! the store key itself is wrapped under a key derived from the passphrase
//! by Argon2id. Changing the passphrase only rewraps the store key.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

use crate::error::VaultError;

const NONCE_LEN: usize = 24;
const WRAP_AAD: &[u8] = b"backchannel vault store key v1";

/// Argon2id cost parameters, kept in the store so a store opens with the
/// parameters it was made with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// RFC 9106's second recommended option: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };

    /// Cheap parameters for tests only: they protect nothing.
    pub const INSECURE_FOR_TESTS: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    pub(crate) fn encode(&self) -> Vec<u8> {
        [self.memory_kib, self.iterations, self.parallelism]
            .iter()
            .flat_map(|v| v.to_be_bytes())
            .collect()
    }

    pub(crate) fn decode(b: &[u8]) -> Result<Self, VaultError> {
        if b.len() != 12 {
            return Err(VaultError::Corrupt("kdf parameters"));
        }
        let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Ok(KdfParams {
            memory_kib: word(0),
            iterations: word(4),
            parallelism: word(8),
        })
    }
}

/// Derives the key-encryption key from the passphrase.
pub(crate) fn derive(
    passphrase: &str,
    salt: &[u8],
    p: KdfParams,
) -> Result<Zeroizing<[u8; 32]>, VaultError> {
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|_| VaultError::Corrupt("kdf parameters out of range"))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut *out)
        .map_err(|_| VaultError::Corrupt("kdf failed"))?;
    Ok(out)
}

/// Encrypts and decrypts sealed columns under one key.
pub(crate) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer { .. }")
    }
}

impl Sealer {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Sealer {
            cipher: XChaCha20Poly1305::new(&(*key).into()),
        }
    }

    /// `nonce ‖ ciphertext ‖ tag`.
    pub(crate) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let nonce: [u8; NONCE_LEN] = rand::random();
        let ct = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| VaultError::Corrupt("encryption failed"))?;
        Ok([&nonce[..], &ct].concat())
    }

    pub(crate) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Corrupt("sealed value too short"));
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let nonce = XNonce::try_from(nonce).map_err(|_| VaultError::Corrupt("nonce"))?;
        self.cipher
            .decrypt(&nonce, Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| VaultError::Corrupt("a sealed value does not open with the store key"))
    }

    /// Wraps the store key under this (passphrase-derived) key.
    pub(crate) fn wrap(&self, store_key: &[u8; 32]) -> Result<Vec<u8>, VaultError> {
        self.seal(WRAP_AAD, store_key)
    }

    /// Unwraps the store key; a failure means a wrong passphrase.
    pub(crate) fn unwrap_key(&self, wrapped: &[u8]) -> Result<Zeroizing<[u8; 32]>, VaultError> {
        let opened = self
            .open(WRAP_AAD, wrapped)
            .map_err(|_| VaultError::WrongPassphrase)?;
        let mut key = Zeroizing::new([0u8; 32]);
        if opened.len() != 32 {
            return Err(VaultError::Corrupt("store key length"));
        }
        key.copy_from_slice(&opened);
        Ok(key)
    }
}
