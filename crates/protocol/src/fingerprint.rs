//! Safety numbers: what two principals read to each other over a path the
//! intermediary does not control, to be sure no one sits in the middle.
//!
//! A safety number covers both identity keys (Curve25519 and Ed25519) of
//! both principals, with their handles, sorted so it reads the same on both
//! sides: SHA-512 over a domain string and the sorted entries, shown as 12
//! groups of 5 digits (each group is 5 bytes of the hash, big-endian, modulo
//! 100,000).

use sha2::{Digest as _, Sha512};

use crate::identity::IdentityKeys;
use crate::ids::Handle;

/// Domain string of pairwise safety numbers.
pub const SAFETY_NUMBER_DOMAIN: &[u8] = b"backchannel safety number v1";

/// A pairwise safety number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SafetyNumber(pub [u32; 12]);

impl std::fmt::Display for SafetyNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, g) in self.0.iter().enumerate() {
            let sep = match i {
                0 => "",
                4 | 8 => "\n",
                _ => " ",
            };
            write!(f, "{sep}{g:05}")?;
        }
        Ok(())
    }
}

impl SafetyNumber {
    /// The safety number of `a` and `b`; the same whichever is first.
    pub fn of(a: (&Handle, &IdentityKeys), b: (&Handle, &IdentityKeys)) -> Self {
        let (first, second) = if a.0 <= b.0 { (a, b) } else { (b, a) };
        let mut h = Sha512::new();
        h.update(SAFETY_NUMBER_DOMAIN);
        for (handle, keys) in [first, second] {
            h.update([handle.as_str().len() as u8]);
            h.update(handle.as_str().as_bytes());
            h.update(keys.curve25519);
            h.update(keys.ed25519);
        }
        let hash: [u8; 64] = h.finalize().into();
        let mut groups = [0u32; 12];
        for (i, g) in groups.iter_mut().enumerate() {
            let chunk = &hash[i * 5..i * 5 + 5];
            let n = chunk.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            *g = (n % 100_000) as u32;
        }
        SafetyNumber(groups)
    }

    /// One line, groups separated by spaces.
    pub fn one_line(&self) -> String {
        self.0
            .iter()
            .map(|g| format!("{g:05}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Identity;

    #[test]
    fn same_on_both_sides_and_covers_both_keys() {
        let (a, b) = (Identity::new().keys(), Identity::new().keys());
        let (ha, hb) = (
            Handle::new("blue").unwrap(),
            Handle::new("mediator").unwrap(),
        );
        let n = SafetyNumber::of((&ha, &a), (&hb, &b));
        assert_eq!(n, SafetyNumber::of((&hb, &b), (&ha, &a)));
        let mut other = b;
        other.ed25519[0] ^= 1;
        assert_ne!(
            n,
            SafetyNumber::of((&ha, &a), (&hb, &other)),
            "the Ed25519 key counts"
        );
        other = b;
        other.curve25519[0] ^= 1;
        assert_ne!(
            n,
            SafetyNumber::of((&ha, &a), (&hb, &other)),
            "the Curve25519 key counts"
        );
        assert_eq!(n.one_line().len(), 12 * 5 + 11);
        assert_eq!(n.to_string().lines().count(), 3);
    }
}
