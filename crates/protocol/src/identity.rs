//! A principal's identity: its Olm account, its signed one-time keys, and
//! the one place anything is signed.
//!
//! Nothing here signs message content: Olm authenticates messages with MACs
//! from shared secrets, which is what keeps transcripts deniable. Ed25519
//! signs only one-time keys and the relay's login challenge, each behind its
//! own domain-separation prefix so one can never pass for the other.

use std::fmt;

use vodozemac::olm::{Account, AccountPickle, OlmMessage, SessionConfig};
use vodozemac::{Curve25519PublicKey, Curve25519SecretKey, Ed25519PublicKey, Ed25519Signature};

use crate::envelope::OlmType;
use crate::error::CryptoError;
use crate::session::PeerSession;

/// Prefix of every login-challenge signature.
pub const LOGIN_PREFIX: &[u8] = b"backchannel/v1/login-challenge\0";
/// Prefix of every one-time-key signature.
pub const ONE_TIME_KEY_PREFIX: &[u8] = b"backchannel/v1/one-time-key\0";
/// Length of a relay's login challenge, in bytes.
pub const CHALLENGE_LEN: usize = 32;

/// What an Ed25519 signature may be for. There is deliberately no variant
/// for message content.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignPurpose {
    /// A relay-issued login challenge.
    Login,
    /// A published one-time or fallback key.
    OneTimeKey,
}

impl SignPurpose {
    fn prefix(self) -> &'static [u8] {
        match self {
            SignPurpose::Login => LOGIN_PREFIX,
            SignPurpose::OneTimeKey => ONE_TIME_KEY_PREFIX,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SignPurpose::Login => "login challenge",
            SignPurpose::OneTimeKey => "one-time key",
        }
    }
}

/// The bytes signed for `purpose`: `prefix ‖ message`.
pub fn signing_input(purpose: SignPurpose, message: &[u8]) -> Vec<u8> {
    [purpose.prefix(), message].concat()
}

/// The bytes a one-time key signature covers (after its prefix):
/// `u8 fallback ‖ key[32]`.
pub fn one_time_key_message(key: &[u8; 32], fallback: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(33);
    m.push(u8::from(fallback));
    m.extend_from_slice(key);
    m
}

/// Checks an Ed25519 signature made for `purpose`.
pub fn verify(
    purpose: SignPurpose,
    signer: &[u8; 32],
    message: &[u8],
    signature: &[u8],
) -> Result<(), CryptoError> {
    let key = Ed25519PublicKey::from_slice(signer)
        .map_err(|_| CryptoError::BadKey("not an Ed25519 key"))?;
    let sig = Ed25519Signature::from_slice(signature).map_err(|_| CryptoError::BadSignature {
        purpose: purpose.name(),
    })?;
    key.verify(&signing_input(purpose, message), &sig)
        .map_err(|_| CryptoError::BadSignature {
            purpose: purpose.name(),
        })
}

/// Refuses a Curve25519 key that is the identity point or of low order: a
/// Diffie-Hellman exchange with it would give a predictable secret.
pub fn check_curve25519(key: &[u8; 32]) -> Result<(), CryptoError> {
    let public = Curve25519PublicKey::from_bytes(*key);
    // vodozemac reports a non-contributory exchange as `None`.
    match Curve25519SecretKey::new().diffie_hellman(&public) {
        Some(_) => Ok(()),
        None => Err(CryptoError::BadKey(
            "Curve25519 key is the identity point or of low order",
        )),
    }
}

/// The Curve25519 public keys every client and the relay refuse: the
/// points of order 1, 2, 4 and 8 in every 32-byte encoding (u, u + p where
/// that is below 2^255, and each with the ignored top bit set). A
/// Diffie-Hellman exchange with any of them gives a predictable secret.
/// [`check_curve25519`] refuses them by the result of the exchange, so this
/// list is what it is tested against, and what docs/protocol.md lists.
pub const REFUSED_CURVE25519: [&str; 14] = [
    "0000000000000000000000000000000000000000000000000000000000000000",
    "0100000000000000000000000000000000000000000000000000000000000000",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    "0000000000000000000000000000000000000000000000000000000000000080",
    "0100000000000000000000000000000000000000000000000000000000000080",
    "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b880",
    "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f11d7",
    "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
    "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
];

/// The Curve25519 form of an Ed25519 public key (the same key pair on the
/// other curve), if the bytes are an Ed25519 point.
pub fn ed25519_on_curve25519(ed25519: &[u8; 32]) -> Option<[u8; 32]> {
    curve25519_dalek::edwards::CompressedEdwardsY(*ed25519)
        .decompress()
        .map(|p| p.to_montgomery().to_bytes())
}

/// Every check on a principal's identity keys that needs no other record,
/// made by the relay at registration and by a client on every key served:
/// no identity or low-order Curve25519 point, an Ed25519 key that decodes,
/// and not one key pair used as both (the same bytes, or the Curve25519
/// key being the Ed25519 key's image on Curve25519).
pub fn check_identity_keys(keys: &IdentityKeys) -> Result<(), CryptoError> {
    check_curve25519(&keys.curve25519)?;
    check_ed25519(&keys.ed25519)?;
    if keys.curve25519 == keys.ed25519
        || ed25519_on_curve25519(&keys.ed25519) == Some(keys.curve25519)
    {
        return Err(CryptoError::BadKey(
            "the Curve25519 key is the Ed25519 key (one key pair used for both)",
        ));
    }
    Ok(())
}

/// True if two principals' key sets have a key in common (either way
/// round): one principal's key served or registered as another's.
pub fn shares_a_key(a: &IdentityKeys, b: &IdentityKeys) -> bool {
    a.curve25519 == b.curve25519
        || a.ed25519 == b.ed25519
        || a.curve25519 == b.ed25519
        || a.ed25519 == b.curve25519
}

/// Refuses bytes that are not an Ed25519 public key.
pub fn check_ed25519(key: &[u8; 32]) -> Result<(), CryptoError> {
    Ed25519PublicKey::from_slice(key)
        .map(|_| ())
        .map_err(|_| CryptoError::BadKey("not an Ed25519 public key"))
}

/// Every purpose the signing function signed for, in this process (only
/// with the `sign-audit` feature, which tests enable): evidence that nothing
/// but one-time keys and login challenges is ever signed.
#[cfg(feature = "sign-audit")]
pub mod audit {
    use std::sync::Mutex;

    use super::SignPurpose;

    static SIGNED: Mutex<Vec<(SignPurpose, Vec<u8>)>> = Mutex::new(Vec::new());

    pub(super) fn record(purpose: SignPurpose, message: &[u8]) {
        SIGNED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((purpose, message.to_vec()));
    }

    /// Every purpose signed so far, with the message signed (after its prefix).
    pub fn signed() -> Vec<(SignPurpose, Vec<u8>)> {
        SIGNED.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// A principal's two public identity keys. A safety number covers both.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct IdentityKeys {
    /// Curve25519 identity key (Olm's 3DH).
    pub curve25519: [u8; 32],
    /// Ed25519 signing key (one-time keys, login).
    pub ed25519: [u8; 32],
}

impl fmt::Debug for IdentityKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentityKeys {{ curve25519: {}, ed25519: {} }}",
            crate::b64::encode(self.curve25519),
            crate::b64::encode(self.ed25519)
        )
    }
}

/// A one-time (or fallback) Curve25519 key with its owner's signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedKey {
    /// The public key; also its id on the relay.
    pub key: [u8; 32],
    /// True for the fallback key, served when no one-time key is left.
    pub fallback: bool,
    /// Ed25519 signature over `ONE_TIME_KEY_PREFIX ‖ fallback ‖ key`.
    pub signature: [u8; 64],
}

impl SignedKey {
    /// Checks the signature against the owner's Ed25519 key and refuses
    /// low-order keys and the owner's identity keys passed as one-time keys.
    pub fn verify(&self, owner: &IdentityKeys) -> Result<(), CryptoError> {
        check_curve25519(&self.key)?;
        if self.key == owner.curve25519 || self.key == owner.ed25519 {
            return Err(CryptoError::BadKey(
                "an identity key passed as a one-time key",
            ));
        }
        verify(
            SignPurpose::OneTimeKey,
            &owner.ed25519,
            &one_time_key_message(&self.key, self.fallback),
            &self.signature,
        )
    }
}

/// A principal: its Olm account. `Debug` shows public keys only.
pub struct Identity {
    account: Account,
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl Default for Identity {
    fn default() -> Self {
        Self::new()
    }
}

impl Identity {
    /// A new identity with fresh keys (vodozemac draws the randomness).
    pub fn new() -> Self {
        Identity {
            account: Account::new(),
        }
    }

    /// Restores an identity from its pickle (kept sealed by the client).
    pub fn from_pickle(pickle: AccountPickle) -> Self {
        Identity {
            account: Account::from_pickle(pickle),
        }
    }

    /// The pickle to keep at rest; it holds private keys.
    pub fn pickle(&self) -> AccountPickle {
        self.account.pickle()
    }

    /// The public identity keys.
    pub fn keys(&self) -> IdentityKeys {
        IdentityKeys {
            curve25519: self.account.curve25519_key().to_bytes(),
            ed25519: *self.account.ed25519_key().as_bytes(),
        }
    }

    /// The only signing function: `purpose`'s prefix, then `message`.
    fn sign(&self, purpose: SignPurpose, message: &[u8]) -> [u8; 64] {
        #[cfg(feature = "sign-audit")]
        audit::record(purpose, message);
        self.account
            .sign(signing_input(purpose, message))
            .to_bytes()
    }

    /// Signs a relay's login challenge. Refuses anything but exactly
    /// [`CHALLENGE_LEN`] bytes, so a relay cannot steer what is signed.
    pub fn sign_login_challenge(&self, challenge: &[u8]) -> Result<[u8; 64], CryptoError> {
        if challenge.len() != CHALLENGE_LEN {
            return Err(CryptoError::BadKey("login challenge must be 32 bytes"));
        }
        Ok(self.sign(SignPurpose::Login, challenge))
    }

    /// Makes `count` new one-time keys, signed, and marks them published.
    pub fn generate_one_time_keys(&mut self, count: usize) -> Vec<SignedKey> {
        let created = self.account.generate_one_time_keys(count).created;
        self.account.mark_keys_as_published();
        created
            .iter()
            .map(|k| self.signed_key(k.to_bytes(), false))
            .collect()
    }

    /// Makes a new fallback key, signed.
    pub fn generate_fallback_key(&mut self) -> Option<SignedKey> {
        // vodozemac returns the key it replaced; the new one is the
        // unpublished fallback key.
        let _replaced = self.account.generate_fallback_key();
        let key = self.account.fallback_key().values().next().copied()?;
        self.account.mark_keys_as_published();
        Some(self.signed_key(key.to_bytes(), true))
    }

    fn signed_key(&self, key: [u8; 32], fallback: bool) -> SignedKey {
        SignedKey {
            key,
            fallback,
            signature: self.sign(
                SignPurpose::OneTimeKey,
                &one_time_key_message(&key, fallback),
            ),
        }
    }

    /// Opens an Olm session to `peer` with one of its signed one-time keys,
    /// after checking the signature and both keys.
    pub fn outbound_session(
        &self,
        peer: &IdentityKeys,
        one_time_key: &SignedKey,
    ) -> Result<PeerSession, CryptoError> {
        check_curve25519(&peer.curve25519)?;
        one_time_key.verify(peer)?;
        let session = self.account.create_outbound_session(
            SessionConfig::version_1(),
            Curve25519PublicKey::from_bytes(peer.curve25519),
            Curve25519PublicKey::from_bytes(one_time_key.key),
        )?;
        Ok(PeerSession::new(session))
    }

    /// Accepts a pre-key message from `peer`, returning the new session and
    /// the padded plaintext.
    pub fn inbound_session(
        &mut self,
        peer: &IdentityKeys,
        olm_type: OlmType,
        ciphertext: &[u8],
    ) -> Result<(PeerSession, Vec<u8>), CryptoError> {
        check_curve25519(&peer.curve25519)?;
        let message = OlmMessage::from_parts(olm_type.number().into(), ciphertext)?;
        let OlmMessage::PreKey(pre_key) = message else {
            return Err(CryptoError::BadKey(
                "a normal message cannot open a session",
            ));
        };
        let created = self.account.create_inbound_session(
            SessionConfig::version_1(),
            Curve25519PublicKey::from_bytes(peer.curve25519),
            &pre_key,
        )?;
        Ok((PeerSession::new(created.session), created.plaintext))
    }
}

/// The Curve25519 identity key a pre-key message was made under, if the
/// bytes are a pre-key message (unauthenticated until it decrypts).
pub fn pre_key_identity(ciphertext: &[u8]) -> Option<[u8; 32]> {
    let message = OlmMessage::from_parts(0, ciphertext).ok()?;
    match message {
        OlmMessage::PreKey(m) => Some(m.identity_key().to_bytes()),
        OlmMessage::Normal(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::check_curve25519;

    #[test]
    fn every_listed_point_is_refused() {
        for hex_key in super::REFUSED_CURVE25519 {
            let mut key = [0u8; 32];
            hex::decode_to_slice(hex_key, &mut key).unwrap();
            assert!(check_curve25519(&key).is_err(), "{hex_key} accepted");
        }
    }

    #[test]
    fn one_key_pair_used_as_both_is_refused() {
        let real = crate::Identity::new().keys();
        assert!(super::check_identity_keys(&real).is_ok());
        let same = crate::IdentityKeys {
            curve25519: real.ed25519,
            ed25519: real.ed25519,
        };
        let image = crate::IdentityKeys {
            curve25519: super::ed25519_on_curve25519(&real.ed25519).unwrap(),
            ed25519: real.ed25519,
        };
        for bad in [same, image] {
            assert!(super::check_identity_keys(&bad).is_err());
        }
    }

    #[test]
    fn identity_and_low_order_points_are_refused() {
        let mut one = [0u8; 32];
        one[0] = 1;
        // A point of order 8 (from the list of small-order points in Bernstein's Curve25519 page).
        let order8 = [
            0xe0, 0xeb, 0x7a, 0x7c, 0x3b, 0x41, 0xb8, 0xae, 0x16, 0x56, 0xe3, 0xfa, 0xf1, 0x9f,
            0xc4, 0x6a, 0xda, 0x09, 0x8d, 0xeb, 0x9c, 0x32, 0xb1, 0xfd, 0x86, 0x62, 0x05, 0x16,
            0x5f, 0x49, 0xb8, 0x00,
        ];
        for key in [[0u8; 32], one, order8] {
            assert!(check_curve25519(&key).is_err(), "{key:?} accepted");
        }
        assert!(check_curve25519(&crate::Identity::new().keys().curve25519).is_ok());
    }
}
