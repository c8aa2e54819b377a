//! Envelopes come from the relay: decoding must never panic and must be
//! canonical.
#![no_main]

use backchannel_protocol::Envelope;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = Envelope::decode(data) {
        assert_eq!(e.encode(), data);
    }
});
