//! One error type per operation, holding what was expected and what came.

use thiserror::Error;

/// Bytes from outside (a payload, an envelope, an id) that do not decode.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a field.
    #[error("input ended early: {field} needs {needed} more bytes")]
    Truncated {
        /// The field being read.
        field: &'static str,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes remain after a complete value.
    #[error("{count} unexpected trailing bytes")]
    TrailingBytes {
        /// How many bytes were left over.
        count: usize,
    },
    /// A format version this implementation does not speak.
    #[error("unsupported format version {found} (expected {expected})")]
    Version {
        /// The version we speak.
        expected: u8,
        /// The version found.
        found: u8,
    },
    /// A value in another encoding than its one canonical form.
    #[error("{field} is not in its canonical encoding")]
    NonCanonical {
        /// The field.
        field: &'static str,
    },
    /// An enum tag with no meaning.
    #[error("unknown {field} tag {tag}")]
    UnknownTag {
        /// The field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A length above the field's limit.
    #[error("{field} is {len} bytes, over the limit of {max}")]
    TooLong {
        /// The field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Text that is not UTF-8.
    #[error("{field} is not UTF-8")]
    Utf8 {
        /// The field.
        field: &'static str,
    },
    /// A handle outside the allowed alphabet or length.
    #[error(
        "invalid handle {0:?}: 1-32 characters of a-z 0-9 _ -, starting with a letter or digit"
    )]
    BadHandle(String),
    /// Hex of the wrong length or alphabet.
    #[error("{field}: expected hex digits, got {len} characters")]
    BadHex {
        /// The field.
        field: &'static str,
        /// Length of what came.
        len: usize,
    },
    /// Base64 outside RFC 4648 standard alphabet without padding.
    #[error("{field}: not base64 (standard alphabet, no padding)")]
    BadBase64 {
        /// The field.
        field: &'static str,
    },
    /// A value that breaks a rule of the format (a zero sequence number,
    /// an unsorted head vector, non-zero padding...).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What rule it broke.
        reason: &'static str,
    },
}

/// Failures of key handling and Olm session set-up or use.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CryptoError {
    /// A Curve25519 key that is the identity point or of low order (it would
    /// make the Diffie-Hellman output predictable), or bytes that are no key.
    #[error("bad key: {0}")]
    BadKey(&'static str),
    /// A one-time-key or login signature that does not verify.
    #[error("signature does not verify for {purpose}")]
    BadSignature {
        /// What the signature was for.
        purpose: &'static str,
    },
    /// Olm could not create a session.
    #[error("olm session set-up failed: {0}")]
    SessionCreation(#[from] vodozemac::olm::SessionCreationError),
    /// Olm could not decrypt (bad MAC, missing key, gap too big, bad message).
    #[error("olm decryption failed: {0}")]
    Decryption(#[from] vodozemac::olm::DecryptionError),
    /// Olm could not encrypt.
    #[error("olm encryption failed: {0}")]
    Encryption(#[from] vodozemac::olm::EncryptionError),
    /// The ciphertext is not an Olm message of the stated type.
    #[error("not an olm message: {0}")]
    Message(#[from] vodozemac::DecodeError),
    /// The plaintext is not a padded Backchannel payload.
    #[error("plaintext does not decode: {0}")]
    Payload(#[from] DecodeError),
}
