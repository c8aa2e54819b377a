//! Base64 as Backchannel writes it: RFC 4648 section 4 (standard alphabet
//! `A-Z a-z 0-9 + /`) without `=` padding, the form vodozemac and libolm use
//! for keys. Decoding refuses padding and non-canonical trailing bits.

use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;

use crate::error::DecodeError;

/// Encodes bytes.
pub fn encode(bytes: impl AsRef<[u8]>) -> String {
    STANDARD_NO_PAD.encode(bytes)
}

/// Decodes text, naming `field` in the error.
pub fn decode(text: &str, field: &'static str) -> Result<Vec<u8>, DecodeError> {
    STANDARD_NO_PAD
        .decode(text)
        .map_err(|_| DecodeError::BadBase64 { field })
}

#[cfg(test)]
mod tests {
    #[test]
    fn refuses_padding_and_other_alphabets() {
        assert_eq!(super::decode("aGk", "t").unwrap(), b"hi");
        assert!(super::decode("aGk=", "t").is_err());
        assert!(super::decode("a-_k", "t").is_err());
        assert!(
            super::decode("aGl", "t").is_err(),
            "non-canonical trailing bits"
        );
    }
}
