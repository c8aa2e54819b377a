//! A released offer is outside bytes (decrypted from another participant):
//! opening it must never panic, and what opens must seal back to an offer
//! that opens to the same value.
#![no_main]

use backchannel_protocol::escrow::SealedOffer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(o) = SealedOffer::from_plaintext(data) {
        if let Ok(again) = o.to_plaintext() {
            assert_eq!(SealedOffer::from_plaintext(&again).ok(), Some(o));
        }
    }
});
