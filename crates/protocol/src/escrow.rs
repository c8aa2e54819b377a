//! What a sealed offer carries inside its one-message Olm session, and the
//! checks a participant makes when offers are released. Fairness rests on
//! the intermediary; confidentiality and integrity do not: an offer sealed
//! for another exchange, a release of only some offers, one sealed (or
//! released) after the deadline, or a release of another offer than the one
//! its submitter last sealed is an alert.
//!
//! ```text
//! sealed offer = u8 version (2) ‖ exchange_id[16] ‖ i64 deadline_ms
//!              ‖ i64 sealed_at_ms ‖ terms_digest[32] ‖ str offer
//! plaintext    = padded like a payload (the same size buckets)
//! offer digest = SHA-256(plaintext), over the exact bytes Olm sealed
//! ```

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::ids::{Digest, ExchangeId, Handle, Timestamp};
use crate::payload::{bucket_for, pad, unpad, TEXT_MAX_BYTES};
use crate::wire::{Reader, Writer};

/// The first byte of a sealed offer (before protocol v1 it was JSON, whose
/// first byte is `{`; such offers still open).
pub const SEALED_OFFER_VERSION: u8 = 2;

/// The plaintext of a sealed offer. Its serde form is the pre-v1 JSON one
/// (still read from old offers and stores).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedOffer {
    /// The exchange it is for.
    pub exchange_id: ExchangeId,
    /// The exchange's deadline as the submitter knew it.
    #[serde(rename = "deadline_ms")]
    pub deadline: Timestamp,
    /// The submitter's clock when it sealed the offer.
    #[serde(rename = "sealed_at_ms")]
    pub sealed_at: Timestamp,
    /// SHA-256 of the UTF-8 terms.
    pub terms_digest: Digest,
    /// The offer, in words.
    pub offer: String,
}

impl SealedOffer {
    /// The padded plaintext to seal.
    pub fn to_plaintext(&self) -> Result<Vec<u8>, DecodeError> {
        if self.offer.len() > TEXT_MAX_BYTES {
            return Err(DecodeError::TooLong {
                field: "offer",
                len: self.offer.len(),
                max: TEXT_MAX_BYTES,
            });
        }
        let mut w = Writer::default();
        w.u8(SEALED_OFFER_VERSION)
            .raw(&self.exchange_id.0)
            .i64(self.deadline.0)
            .i64(self.sealed_at.0)
            .digest(&self.terms_digest)
            .bytes32(self.offer.as_bytes());
        pad(&w.buf, bucket_for(w.buf.len())?)
    }

    /// From a decrypted, padded plaintext: version 2, or the JSON of an
    /// offer sealed before protocol v1.
    pub fn from_plaintext(padded: &[u8]) -> Result<Self, DecodeError> {
        let bytes = unpad(padded)?;
        match bytes.first() {
            Some(&SEALED_OFFER_VERSION) => {
                let mut r = Reader::new(&bytes[1..]);
                let offer = SealedOffer {
                    exchange_id: ExchangeId(r.array("exchange_id")?),
                    deadline: Timestamp(r.i64("deadline_ms")?),
                    sealed_at: Timestamp(r.i64("sealed_at_ms")?),
                    terms_digest: r.digest("terms_digest")?,
                    offer: r.string("offer", TEXT_MAX_BYTES)?,
                };
                r.finish()?;
                Ok(offer)
            }
            Some(b'{') => serde_json::from_slice(bytes).map_err(|_| DecodeError::Invalid {
                field: "offer",
                reason: "not a sealed offer",
            }),
            Some(&found) => Err(DecodeError::Version {
                expected: SEALED_OFFER_VERSION,
                found,
            }),
            None => Err(DecodeError::Truncated {
                field: "offer",
                needed: 1,
            }),
        }
    }
}

/// The digest a participant confirms for an offer it opened, and its
/// submitter compares with what it sealed: SHA-256 of the exact padded
/// plaintext (never of a re-encoding).
pub fn offer_digest(plaintext: &[u8]) -> Digest {
    Digest::of(&[plaintext])
}

/// Something wrong with a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseProblem {
    /// `escrow_partial_release`, `escrow_late_release`,
    /// `escrow_foreign_offer` or `escrow_replaced_offer`.
    pub kind: String,
    /// The participant concerned.
    pub participant: String,
    /// What was seen.
    pub detail: String,
}

fn problem(kind: &str, participant: &str, detail: String) -> ReleaseProblem {
    ReleaseProblem {
        kind: kind.into(),
        participant: participant.into(),
        detail,
    }
}

/// Checks a release of exchange `exchange_id` (deadline `deadline`) as
/// seen by one participant: `expected` are the other participants, `opened`
/// what each released copy decrypted to (`None` if it did not), and
/// `saw_open_past_deadline` whether this participant itself saw the exchange
/// still unreleased after its deadline (arrival time alone proves nothing).
pub fn check_release(
    exchange_id: ExchangeId,
    deadline: Timestamp,
    expected: &[String],
    opened: &[(String, Option<SealedOffer>)],
    saw_open_past_deadline: bool,
) -> Vec<ReleaseProblem> {
    let mut problems = Vec::new();
    for p in expected {
        if !opened.iter().any(|(from, o)| from == p && o.is_some()) {
            problems.push(problem(
                "escrow_partial_release",
                p,
                format!("the release holds no readable offer from {p}"),
            ));
        }
    }
    for (from, o) in opened {
        let Some(o) = o else { continue };
        if o.exchange_id != exchange_id {
            problems.push(problem(
                "escrow_foreign_offer",
                from,
                format!(
                    "{from}'s offer was sealed for exchange {}, not this one",
                    o.exchange_id
                ),
            ));
        } else if o.sealed_at > deadline {
            problems.push(problem(
                "escrow_late_release",
                from,
                format!("{from}'s offer was sealed after the deadline"),
            ));
        }
    }
    if saw_open_past_deadline {
        problems.push(problem(
            "escrow_late_release",
            "",
            "you saw this exchange unreleased after its deadline; it was released later".into(),
        ));
    }
    problems
}

/// Judges what participant `by` confirmed receiving from this member
/// (`said`: the digest, or `None` for nothing readable) against the offers
/// this member sealed in the exchange, oldest first: only the last may
/// have been released.
pub fn check_confirmation(
    by: &Handle,
    said: Option<Digest>,
    sealed: &[Digest],
) -> Option<ReleaseProblem> {
    let latest = sealed.last()?;
    match said {
        Some(d) if d == *latest => None,
        Some(d) if sealed.contains(&d) => Some(problem(
            "escrow_replaced_offer",
            by.as_str(),
            format!("{by} received an offer you had replaced, not your last one"),
        )),
        Some(_) => Some(problem(
            "escrow_replaced_offer",
            by.as_str(),
            format!("{by} received an offer in your name that is not the one you sealed"),
        )),
        None => Some(problem(
            "escrow_partial_release",
            by.as_str(),
            format!("{by} found nothing readable from you in the release"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: u8, sealed: i64) -> SealedOffer {
        SealedOffer {
            exchange_id: ExchangeId([id; 16]),
            deadline: Timestamp(100),
            sealed_at: Timestamp(sealed),
            terms_digest: Digest::of(&[b"terms"]),
            offer: "o".into(),
        }
    }

    #[test]
    fn a_sealed_offer_round_trips_and_old_json_offers_still_open() {
        let p = offer(1, 50).to_plaintext().unwrap();
        assert_eq!(p.len(), 512);
        assert_eq!(SealedOffer::from_plaintext(&p).unwrap(), offer(1, 50));
        let json = format!(
            r#"{{ "offer": "o", "terms_digest": "{}", "exchange_id": "{}", "deadline_ms": 100, "sealed_at_ms": 50 }}"#,
            Digest::of(&[b"terms"]),
            ExchangeId([1; 16])
        );
        let old = pad(json.as_bytes(), 512).unwrap();
        assert_eq!(SealedOffer::from_plaintext(&old).unwrap(), offer(1, 50));
        let mut future = p.clone();
        future[4] = 3;
        assert!(matches!(
            SealedOffer::from_plaintext(&future),
            Err(DecodeError::Version { found: 3, .. })
        ));
    }

    #[test]
    fn a_release_is_whole_timely_and_for_this_exchange() {
        let e1 = ExchangeId([1; 16]);
        let at = Timestamp(100);
        let red = vec!["red".to_string()];
        let kinds = |v: Vec<ReleaseProblem>| v.into_iter().map(|p| p.kind).collect::<Vec<_>>();
        let one = |o: SealedOffer| vec![("red".to_string(), Some(o))];
        assert!(check_release(e1, at, &red, &one(offer(1, 50)), false).is_empty());
        assert_eq!(
            kinds(check_release(e1, at, &red, &[], false)),
            ["escrow_partial_release"]
        );
        assert_eq!(
            kinds(check_release(e1, at, &red, &one(offer(2, 50)), false)),
            ["escrow_foreign_offer"]
        );
        assert_eq!(
            kinds(check_release(e1, at, &red, &one(offer(1, 101)), false)),
            ["escrow_late_release"]
        );
        assert_eq!(
            kinds(check_release(e1, at, &red, &one(offer(1, 50)), true)),
            ["escrow_late_release"]
        );
    }

    #[test]
    fn a_confirmation_must_name_the_last_offer_sealed() {
        let red = Handle::new("red").unwrap();
        let (a, b) = (Digest([1; 32]), Digest([2; 32]));
        let kind = |p: Option<ReleaseProblem>| p.map(|p| p.kind);
        assert_eq!(kind(check_confirmation(&red, Some(b), &[a, b])), None);
        assert_eq!(
            kind(check_confirmation(&red, Some(a), &[a, b])).as_deref(),
            Some("escrow_replaced_offer")
        );
        assert_eq!(
            kind(check_confirmation(&red, Some(Digest([3; 32])), &[a, b])).as_deref(),
            Some("escrow_replaced_offer")
        );
        assert_eq!(
            kind(check_confirmation(&red, None, &[b])).as_deref(),
            Some("escrow_partial_release")
        );
        assert_eq!(
            kind(check_confirmation(&red, Some(a), &[])),
            None,
            "nothing sealed here"
        );
    }
}
