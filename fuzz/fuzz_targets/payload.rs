//! Decrypted plaintext is outside bytes: decoding it must never panic, and
//! whatever decodes must re-encode to the same bytes (one encoding per value).
#![no_main]

use backchannel_protocol::payload::{unpad, Payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = Payload::decode(data) {
        assert_eq!(p.encode(), data);
    }
    let _ = unpad(data).map(Payload::decode);
});
