//! Newtypes for every identifier, position and digest, so a sequence number
//! can never be passed where an epoch is expected.

use std::fmt;

use sha2::{Digest as _, Sha256};

use crate::error::DecodeError;

macro_rules! random_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub [u8; 16]);

        impl $name {
            /// A fresh random id (16 bytes from the operating system's CSPRNG).
            pub fn random() -> Self {
                Self(rand::random())
            }

            /// The id as 32 lowercase hex digits, its form in JSON and URLs.
            pub fn to_hex(&self) -> String {
                hex::encode(self.0)
            }

            /// Parses exactly 32 hex digits (either case).
            pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
                let mut out = [0u8; 16];
                hex::decode_to_slice(s, &mut out)
                    .map_err(|_| DecodeError::BadHex { field: stringify!($name), len: s.len() })?;
                Ok(Self(out))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.to_hex())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.to_hex())
            }
        }

        /// As its hex form, in JSON and stores.
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_hex())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::from_hex(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

random_id!(
    /// A channel, chosen at random by the mediator who opens it.
    ChannelId
);
random_id!(
    /// One message: the same id in every recipient's copy of it.
    MessageId
);
random_id!(
    /// An escrowed simultaneous exchange.
    ExchangeId
);

/// A principal's handle on a relay: 1 to 32 bytes of `a-z`, `0-9`, `_`, `-`,
/// starting with a letter or digit. Kept to ASCII so that two handles can
/// never look alike.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(String);

impl Handle {
    /// The longest handle, in bytes.
    pub const LEN_MAX: usize = 32;

    /// Checks the handle's alphabet and length.
    pub fn new(s: impl Into<String>) -> Result<Self, DecodeError> {
        let s = s.into();
        let ok_len = !s.is_empty() && s.len() <= Self::LEN_MAX;
        let ok_first = s
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let ok_chars = s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
        if ok_len && ok_first && ok_chars {
            Ok(Self(s))
        } else {
            Err(DecodeError::BadHandle(s.chars().take(40).collect()))
        }
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({})", self.0)
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// As its string, in JSON and stores (checked when read back).
impl serde::Serialize for Handle {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Handle {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Handle::new(String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// A position in one sender's chain within one epoch. The first message is 1;
/// 0 means "nothing yet" in a head vector.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Seq(pub u64);

impl Seq {
    /// The position of a chain's first message.
    pub const FIRST: Seq = Seq(1);

    /// The next position, or `None` at the (unreachable in practice) end.
    pub fn next(self) -> Option<Seq> {
        self.0.checked_add(1).map(Seq)
    }
}

/// An epoch's number: 0 is the channel's set-up.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct EpochNumber(pub u32);

/// Milliseconds since the Unix epoch, UTC. Always passed in by the caller:
/// the protocol core never reads a clock.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The UTC civil date and time: (year, month, day, hour, minute, second).
    pub fn civil(self) -> (i64, i64, i64, i64, i64, i64) {
        let secs = self.0.div_euclid(1000);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Civil from days since 1970-01-01, proleptic Gregorian (H. Hinnant).
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        (year, month, day, rem / 3600, rem % 3600 / 60, rem % 60)
    }

    /// From a UTC civil date and time; `None` if out of range.
    pub fn from_civil(
        year: i64,
        month: i64,
        day: i64,
        hour: i64,
        minute: i64,
        second: i64,
    ) -> Option<Self> {
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 59
        {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some(Timestamp(
            ((days * 86_400) + hour * 3600 + minute * 60 + second) * 1000,
        ))
    }
}

impl Timestamp {
    /// `2026-12-04 10:00 UTC`, with `:SS` when the seconds are not zero:
    /// how the core writes a time into the words it produces.
    pub fn utc_text(self) -> String {
        let (y, mo, d, h, mi, s) = self.civil();
        let seconds = if s == 0 {
            String::new()
        } else {
            format!(":{s:02}")
        };
        format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}{seconds} UTC")
    }
}

/// A duration in words, every unit exact: `2 days`, `1 hour 30 minutes`,
/// `0 seconds`.
pub fn duration_words(secs: u64) -> String {
    let parts: Vec<String> = [
        (secs / 86_400, "day"),
        (secs % 86_400 / 3600, "hour"),
        (secs % 3600 / 60, "minute"),
        (secs % 60, "second"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n} {unit}{}", if *n == 1 { "" } else { "s" }))
    .collect();
    if parts.is_empty() {
        "0 seconds".into()
    } else {
        parts.join(" ")
    }
}

/// A SHA-256 digest.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// SHA-256 over the concatenation of `parts`.
    pub fn of(parts: &[&[u8]]) -> Self {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Self(h.finalize().into())
    }

    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses exactly 64 hex digits.
    pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::BadHex {
            field: "Digest",
            len: s.len(),
        })?;
        Ok(Self(out))
    }
}

/// As 64 hex digits.
impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::from_hex(&s).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_and_durations_read_as_words() {
        use super::{duration_words, Timestamp};
        assert_eq!(Timestamp(0).utc_text(), "1970-01-01 00:00 UTC");
        assert_eq!(
            Timestamp(1_750_000_000_000).utc_text(),
            "2025-06-15 15:06:40 UTC"
        );
        assert_eq!(duration_words(0), "0 seconds");
        assert_eq!(duration_words(1), "1 second");
        assert_eq!(duration_words(86_400), "1 day");
        assert_eq!(duration_words(172_800), "2 days");
        assert_eq!(duration_words(5400), "1 hour 30 minutes");
        assert_eq!(duration_words(90_061), "1 day 1 hour 1 minute 1 second");
    }

    use super::*;

    #[test]
    fn handles_are_checked() {
        assert!(Handle::new("blue").is_ok());
        assert!(Handle::new("mediator-1_x").is_ok());
        for bad in ["", "Blue", "-x", "a b", "é", &"a".repeat(33)] {
            assert!(Handle::new(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn ids_round_trip_through_hex() {
        let id = ChannelId::random();
        assert_eq!(ChannelId::from_hex(&id.to_hex()).unwrap(), id);
        assert!(ChannelId::from_hex("abc").is_err());
        let d = Digest::of(&[b"x"]);
        assert_eq!(Digest::from_hex(&d.to_hex()).unwrap(), d);
    }
}
