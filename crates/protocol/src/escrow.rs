//! What a sealed offer carries inside its one-message Olm session, and the
//! checks a participant makes when offers are released. Fairness rests on
//! the intermediary; confidentiality and integrity do not: an offer sealed
//! for another exchange, a release of only some offers, or one sealed (or
//! released) after the deadline is an alert.

use serde::{Deserialize, Serialize};

use crate::error::DecodeError;
use crate::payload::{bucket_for, pad, unpad};

/// The plaintext of a sealed offer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedOffer {
    /// The exchange it is for, hex.
    pub exchange_id: String,
    /// The exchange's deadline as the submitter knew it.
    pub deadline_ms: i64,
    /// The submitter's clock when it sealed the offer.
    pub sealed_at_ms: i64,
    /// Digest of the terms, hex.
    pub terms_digest: String,
    /// The offer, in words.
    pub offer: String,
}

impl SealedOffer {
    /// JSON, padded to a size bucket.
    pub fn to_plaintext(&self) -> Result<Vec<u8>, DecodeError> {
        let json = serde_json::to_vec(self).map_err(|_| DecodeError::Invalid {
            field: "offer",
            reason: "does not encode",
        })?;
        pad(&json, bucket_for(json.len())?)
    }

    /// From a decrypted, padded plaintext.
    pub fn from_plaintext(padded: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(unpad(padded)?).map_err(|_| DecodeError::Invalid {
            field: "offer",
            reason: "not a sealed offer",
        })
    }
}

/// Something wrong with a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseProblem {
    /// `escrow_partial_release`, `escrow_late_release` or `escrow_foreign_offer`.
    pub kind: String,
    /// The participant concerned.
    pub participant: String,
    /// What was seen.
    pub detail: String,
}

/// Checks a release of exchange `exchange_id` (deadline `deadline_ms`) as
/// seen by one participant: `expected` are the other participants, `opened`
/// what each released copy decrypted to (`None` if it did not), and
/// `saw_open_past_deadline` whether this participant itself saw the exchange
/// still unreleased after its deadline (arrival time alone proves nothing).
pub fn check_release(
    exchange_id: &str,
    deadline_ms: i64,
    expected: &[String],
    opened: &[(String, Option<SealedOffer>)],
    saw_open_past_deadline: bool,
) -> Vec<ReleaseProblem> {
    let mut problems = Vec::new();
    let problem = |kind: &str, participant: &str, detail: String| ReleaseProblem {
        kind: kind.into(),
        participant: participant.into(),
        detail,
    };
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
        } else if o.sealed_at_ms > deadline_ms {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(id: &str, sealed: i64) -> SealedOffer {
        SealedOffer {
            exchange_id: id.into(),
            deadline_ms: 100,
            sealed_at_ms: sealed,
            terms_digest: "00".into(),
            offer: "o".into(),
        }
    }

    #[test]
    fn a_release_is_whole_timely_and_for_this_exchange() {
        let p = offer("e1", 50).to_plaintext().unwrap();
        assert_eq!(SealedOffer::from_plaintext(&p).unwrap(), offer("e1", 50));
        let red = vec!["red".to_string()];
        assert!(check_release(
            "e1",
            100,
            &red,
            &[("red".into(), Some(offer("e1", 50)))],
            false
        )
        .is_empty());
        let kinds = |v: Vec<ReleaseProblem>| v.into_iter().map(|p| p.kind).collect::<Vec<_>>();
        assert_eq!(
            kinds(check_release("e1", 100, &red, &[], false)),
            ["escrow_partial_release"]
        );
        assert_eq!(
            kinds(check_release(
                "e1",
                100,
                &red,
                &[("red".into(), Some(offer("e2", 50)))],
                false
            )),
            ["escrow_foreign_offer"]
        );
        assert_eq!(
            kinds(check_release(
                "e1",
                100,
                &red,
                &[("red".into(), Some(offer("e1", 101)))],
                false
            )),
            ["escrow_late_release"]
        );
        assert_eq!(
            kinds(check_release(
                "e1",
                100,
                &red,
                &[("red".into(), Some(offer("e1", 50)))],
                true
            )),
            ["escrow_late_release"]
        );
    }
}
