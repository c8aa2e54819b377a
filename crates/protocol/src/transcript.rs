//! Epochs, per-sender hash chains and head vectors: the structure that lets
//! every member check that the relay dropped, reordered or swapped nothing.
//!
//! This module only builds and extends chains; classifying what a broken
//! chain means (gap, fork, replay...) is the verifier's job.

use std::collections::BTreeMap;

use thiserror::Error;

use crate::ids::{ChannelId, Digest, EpochNumber, Handle, Seq};

/// Domain string of epoch 0's opening digest.
pub const EPOCH0_DOMAIN: &[u8] = b"backchannel epoch 0";

/// An epoch: a period with one agreed membership and policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Epoch {
    /// 0 for the channel's set-up, then one more per accepted proposal.
    pub number: EpochNumber,
    /// The digest every chain of this epoch starts from.
    pub opening: Digest,
}

impl Epoch {
    /// Epoch 0: opening digest `SHA-256("backchannel epoch 0" ‖ channel id)`.
    pub fn genesis(channel: ChannelId) -> Self {
        Epoch {
            number: EpochNumber(0),
            opening: Digest::of(&[EPOCH0_DOMAIN, &channel.0]),
        }
    }

    /// The epoch opened by the accepted proposal whose message digest is
    /// `proposal`.
    pub fn successor(&self, proposal: Digest) -> Option<Self> {
        Some(Epoch {
            number: EpochNumber(self.number.0.checked_add(1)?),
            opening: proposal,
        })
    }
}

/// A chain position: sequence number and the digest of the message there
/// (the epoch's opening digest at position 0).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Head {
    /// Highest contiguous position.
    pub seq: Seq,
    /// Digest of the message at that position.
    pub digest: Digest,
}

/// For each member of the epoch, the highest contiguous position received
/// from it, and the digest there. Sorted by handle when encoded.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HeadVector(pub BTreeMap<Handle, Head>);

impl HeadVector {
    /// Every member at position 0 of `epoch`.
    pub fn empty<'a>(epoch: &Epoch, members: impl IntoIterator<Item = &'a Handle>) -> Self {
        HeadVector(
            members
                .into_iter()
                .map(|h| {
                    (
                        h.clone(),
                        Head {
                            seq: Seq(0),
                            digest: epoch.opening,
                        },
                    )
                })
                .collect(),
        )
    }
}

/// A chain does not continue where a message says it does.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
#[non_exhaustive]
pub enum ChainError {
    /// The same message at the same position again.
    #[error("position {seq:?} already holds this message")]
    Duplicate {
        /// The position.
        seq: Seq,
    },
    /// Another message at a position already filled: the sender equivocated
    /// (or a member misreported).
    #[error("position {seq:?} holds {have}, not {got}")]
    Equivocation {
        /// The position.
        seq: Seq,
        /// Digest held.
        have: Digest,
        /// Digest of the newcomer.
        got: Digest,
    },
    /// The message is for another epoch.
    #[error("message is in epoch {found:?}, the chain in epoch {expected:?}")]
    Epoch {
        /// The chain's epoch.
        expected: Epoch,
        /// The message's epoch.
        found: Epoch,
    },
    /// The message is not the next position.
    #[error("expected sequence number {expected:?}, found {found:?}")]
    Seq {
        /// The next position.
        expected: Seq,
        /// The message's position.
        found: Seq,
    },
    /// The message's previous digest is not the chain's head.
    #[error("previous digest {found} does not match chain head {expected}")]
    Prev {
        /// The chain's head digest.
        expected: Digest,
        /// The message's previous digest.
        found: Digest,
    },
}

/// One sender's chain in one epoch, as its sender or any receiver tracks it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    epoch: Epoch,
    head: Head,
}

impl Chain {
    /// An empty chain at the start of `epoch`.
    pub fn new(epoch: Epoch) -> Self {
        Chain {
            epoch,
            head: Head {
                seq: Seq(0),
                digest: epoch.opening,
            },
        }
    }

    /// A chain resumed at a stored head.
    pub fn resume(epoch: Epoch, head: Head) -> Self {
        Chain { epoch, head }
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The highest contiguous position and its digest.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The position the next message takes.
    pub fn next_seq(&self) -> Option<Seq> {
        self.head.seq.next()
    }

    /// Extends the chain by a message at (`epoch`, `seq`) claiming `prev`,
    /// whose own digest is `digest`.
    pub fn append(
        &mut self,
        epoch: Epoch,
        seq: Seq,
        prev: Digest,
        digest: Digest,
    ) -> Result<(), ChainError> {
        if epoch != self.epoch {
            return Err(ChainError::Epoch {
                expected: self.epoch,
                found: epoch,
            });
        }
        let expected = self.head.seq.next().unwrap_or(Seq(u64::MAX));
        if seq != expected {
            return Err(ChainError::Seq {
                expected,
                found: seq,
            });
        }
        if prev != self.head.digest {
            return Err(ChainError::Prev {
                expected: self.head.digest,
                found: prev,
            });
        }
        self.head = Head { seq, digest };
        Ok(())
    }
}

/// Where a message landed in its sender's log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Placed {
    /// Right after the highest position held.
    Next,
    /// Below the highest position held: it fills a reported gap.
    Late,
    /// Beyond the next position: these positions are now missing.
    Ahead(Vec<Seq>),
}

/// One sender's messages in one epoch as a receiver holds them: positions
/// may arrive out of order (a relay can delay or drop), and every link is
/// checked as soon as both of its ends are known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderLog {
    epoch: Epoch,
    positions: BTreeMap<u64, Digest>,
    /// The previous digest each message claims, by the message's position.
    prevs: BTreeMap<u64, Digest>,
    contiguous: u64,
}

impl SenderLog {
    /// The epoch this log belongs to.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// An empty log at the start of `epoch`.
    pub fn new(epoch: Epoch) -> Self {
        SenderLog {
            epoch,
            positions: BTreeMap::new(),
            prevs: BTreeMap::new(),
            contiguous: 0,
        }
    }

    /// The highest contiguous position and its digest (what a receipt
    /// reports).
    pub fn head(&self) -> Head {
        Head {
            seq: Seq(self.contiguous),
            digest: self
                .digest_at(self.contiguous)
                .unwrap_or(self.epoch.opening),
        }
    }

    /// The highest position held.
    pub fn max(&self) -> u64 {
        self.positions.keys().next_back().copied().unwrap_or(0)
    }

    /// The digest at `seq` (the opening digest at 0), if held.
    pub fn digest_at(&self, seq: u64) -> Option<Digest> {
        if seq == 0 {
            Some(self.epoch.opening)
        } else {
            self.positions.get(&seq).copied()
        }
    }

    /// True if `seq` is below the highest position held and missing.
    pub fn is_gap(&self, seq: u64) -> bool {
        seq > 0 && seq < self.max() && !self.positions.contains_key(&seq)
    }

    /// Every missing position below the highest held.
    pub fn missing(&self) -> Vec<Seq> {
        (self.contiguous + 1..self.max())
            .filter(|s| !self.positions.contains_key(s))
            .map(Seq)
            .collect()
    }

    /// Places a message at (`epoch`, `seq`) claiming `prev`, with its own
    /// `digest`. On error nothing changes.
    pub fn place(
        &mut self,
        epoch: Epoch,
        seq: Seq,
        prev: Digest,
        digest: Digest,
    ) -> Result<Placed, ChainError> {
        if epoch != self.epoch {
            return Err(ChainError::Epoch {
                expected: self.epoch,
                found: epoch,
            });
        }
        let k = seq.0;
        if let Some(have) = self.positions.get(&k) {
            return Err(if *have == digest {
                ChainError::Duplicate { seq }
            } else {
                ChainError::Equivocation {
                    seq,
                    have: *have,
                    got: digest,
                }
            });
        }
        if let Some(before) = self.digest_at(k - 1) {
            if before != prev {
                return Err(ChainError::Prev {
                    expected: before,
                    found: prev,
                });
            }
        }
        if let Some(claimed) = self.prevs.get(&(k + 1)) {
            if *claimed != digest {
                return Err(ChainError::Prev {
                    expected: *claimed,
                    found: digest,
                });
            }
        }
        let max = self.max();
        let placed = if k == max + 1 {
            Placed::Next
        } else if k < max {
            Placed::Late
        } else {
            Placed::Ahead((max + 1..k).map(Seq).collect())
        };
        self.positions.insert(k, digest);
        self.prevs.insert(k, prev);
        while self.positions.contains_key(&(self.contiguous + 1)) {
            self.contiguous += 1;
        }
        Ok(placed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_log_places_out_of_order_and_checks_every_link() {
        let epoch = Epoch::genesis(ChannelId([7; 16]));
        let d: Vec<Digest> = (0..5u8).map(|i| Digest::of(&[&[i]])).collect();
        let mut log = SenderLog::new(epoch);
        assert_eq!(
            log.place(epoch, Seq(1), epoch.opening, d[1]),
            Ok(Placed::Next)
        );
        assert_eq!(
            log.place(epoch, Seq(4), d[3], d[4]),
            Ok(Placed::Ahead(vec![Seq(2), Seq(3)]))
        );
        assert_eq!(log.missing(), vec![Seq(2), Seq(3)]);
        assert!(log.is_gap(2) && !log.is_gap(5));
        assert_eq!(
            log.head(),
            Head {
                seq: Seq(1),
                digest: d[1]
            }
        );
        // Position 3 must be what 4 says precedes it.
        assert!(matches!(
            log.place(epoch, Seq(3), d[2], d[0]),
            Err(ChainError::Prev { .. })
        ));
        assert_eq!(log.place(epoch, Seq(3), d[2], d[3]), Ok(Placed::Late));
        assert_eq!(log.place(epoch, Seq(2), d[1], d[2]), Ok(Placed::Late));
        assert_eq!(
            log.head(),
            Head {
                seq: Seq(4),
                digest: d[4]
            }
        );
        assert!(matches!(
            log.place(epoch, Seq(2), d[1], d[2]),
            Err(ChainError::Duplicate { .. })
        ));
        assert!(matches!(
            log.place(epoch, Seq(2), d[1], d[0]),
            Err(ChainError::Equivocation { .. })
        ));
    }

    #[test]
    fn chain_accepts_only_the_next_link() {
        let epoch = Epoch::genesis(ChannelId([7; 16]));
        let mut c = Chain::new(epoch);
        let d1 = Digest::of(&[b"one"]);
        assert!(c.append(epoch, Seq(2), epoch.opening, d1).is_err());
        assert!(c.append(epoch, Seq(1), d1, d1).is_err());
        c.append(epoch, Seq(1), epoch.opening, d1).unwrap();
        assert_eq!(
            c.head(),
            Head {
                seq: Seq(1),
                digest: d1
            }
        );
        let other = epoch.successor(d1).unwrap();
        assert!(matches!(
            c.append(other, Seq(2), d1, d1),
            Err(ChainError::Epoch { .. })
        ));
    }
}
