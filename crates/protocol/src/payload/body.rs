//! The typed bodies a payload can carry. Only content (`Text`, and later
//! assurances and the like) is ever stubbed; control bodies go in full to
//! every member of the epoch.

use crate::commitments::StructuredBody;
use crate::error::DecodeError;
use crate::ids::{Digest, Handle};
use crate::wire::{Reader, Writer};

use super::BodyVersion;

/// Longest text body, in bytes of UTF-8.
pub const TEXT_MAX_BYTES: usize = 64 * 1024;
/// Most members a channel can have.
pub const MEMBERS_MAX: usize = 64;
/// Longest channel title, in bytes.
pub const TITLE_MAX_BYTES: usize = 256;
/// Longest decline reason, in bytes.
pub const REASON_MAX_BYTES: usize = 2048;

/// Most versions an acceptance or proposal may announce.
pub const VERSIONS_MAX: usize = 16;

/// The kind of a body, carried in the header so that a stub says what it
/// stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BodyKind {
    /// A member accepts a proposal.
    Acceptance,
    /// A proposal to open a new epoch (membership or policy change).
    Amendment,
    /// The mediator's creation proposal (epoch 0).
    Creation,
    /// A member declines a proposal.
    Decline,
    /// A periodic liveness proof carrying the head vector.
    Heartbeat,
    /// An explicit receipt: the head vector says what was received.
    Receipt,
    /// A typed commitment, event or answer (JSON of [`Structured`]).
    Structured,
    /// Free text from a principal.
    Text,
    /// A kind this implementation does not know (a newer client's): the
    /// message still verifies and counts in its sender's chain, unread.
    Other(u8),
}

impl BodyKind {
    /// The tag byte.
    pub fn tag(self) -> u8 {
        match self {
            BodyKind::Text => 1,
            BodyKind::Receipt => 2,
            BodyKind::Heartbeat => 3,
            BodyKind::Creation => 4,
            BodyKind::Acceptance => 5,
            BodyKind::Decline => 6,
            BodyKind::Amendment => 7,
            BodyKind::Structured => 8,
            BodyKind::Other(tag) => tag,
        }
    }

    /// From the tag byte (0 is never a kind).
    pub fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        Ok(match tag {
            0 => {
                return Err(DecodeError::UnknownTag {
                    field: "body_kind",
                    tag,
                })
            }
            1 => BodyKind::Text,
            2 => BodyKind::Receipt,
            3 => BodyKind::Heartbeat,
            4 => BodyKind::Creation,
            5 => BodyKind::Acceptance,
            6 => BodyKind::Decline,
            7 => BodyKind::Amendment,
            8 => BodyKind::Structured,
            tag => BodyKind::Other(tag),
        })
    }

    /// Content may be stubbed for a member who may not read it; control
    /// bodies never are. An unknown kind may be either, so its stub is kept.
    pub fn is_content(self) -> bool {
        matches!(
            self,
            BodyKind::Text | BodyKind::Structured | BodyKind::Other(_)
        )
    }

    /// Its name in listings and vectors.
    pub fn name(self) -> String {
        match self {
            BodyKind::Text => "text".into(),
            BodyKind::Receipt => "receipt".into(),
            BodyKind::Heartbeat => "heartbeat".into(),
            BodyKind::Creation => "creation".into(),
            BodyKind::Acceptance => "acceptance".into(),
            BodyKind::Decline => "decline".into(),
            BodyKind::Amendment => "amendment".into(),
            BodyKind::Structured => "structured".into(),
            BodyKind::Other(tag) => format!("kind {tag}"),
        }
    }
}

/// A member's role in a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The intermediary's envoy.
    Mediator,
    /// An outside party admitted with every party's consent.
    Observer,
    /// A side of the dispute.
    Party,
}

impl Role {
    fn tag(self) -> u8 {
        match self {
            Role::Party => 1,
            Role::Mediator => 2,
            Role::Observer => 3,
        }
    }
    fn from_tag(tag: u8) -> Result<Self, DecodeError> {
        match tag {
            1 => Ok(Role::Party),
            2 => Ok(Role::Mediator),
            3 => Ok(Role::Observer),
            tag => Err(DecodeError::UnknownTag { field: "role", tag }),
        }
    }
}

/// A member as the proposer knows it: the keys it introduces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's handle on the relay.
    pub handle: Handle,
    /// Its role.
    pub role: Role,
    /// Its Curve25519 identity key.
    pub curve25519: [u8; 32],
    /// Its Ed25519 identity key.
    pub ed25519: [u8; 32],
}

/// What every party agrees to before a channel (or epoch) takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Whether senders encrypt content to the mediator in full.
    pub mediator_reads: bool,
    /// How long, in seconds, every member has to receipt a message.
    pub receipt_deadline_s: u32,
    /// How often, in seconds, each member sends a heartbeat.
    pub heartbeat_interval_s: u32,
}

/// A creation or amendment proposal: members and policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// A human title for the channel.
    pub title: String,
    /// Every member, sorted by handle, no duplicates.
    pub members: Vec<Member>,
    /// The policy.
    pub policy: Policy,
    /// The body versions the proposer reads (announced from version 2 on).
    pub reads: Vec<BodyVersion>,
}

/// The typed body of a payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// A member accepts the proposal with this digest.
    Acceptance {
        /// Digest of the proposal's message.
        proposal: Digest,
        /// The body versions the accepter reads (announced from version 2 on).
        reads: Vec<BodyVersion>,
    },
    /// A proposed new epoch.
    Amendment(Proposal),
    /// The mediator's creation proposal.
    Creation(Proposal),
    /// A member declines the proposal with this digest.
    Decline {
        /// Digest of the proposal's message.
        proposal: Digest,
        /// Why, in the member's words (may be empty).
        reason: String,
    },
    /// Liveness proof; its header carries the head vector.
    Heartbeat,
    /// Explicit receipt; its header carries the head vector.
    Receipt,
    /// A typed commitment, event or answer, with its exact JSON.
    Structured(Box<StructuredBody>),
    /// Free text.
    Text(String),
}

impl Body {
    /// A structured body in its canonical encoding.
    pub fn structured(value: crate::commitments::Structured) -> Result<Body, DecodeError> {
        Ok(Body::Structured(Box::new(StructuredBody::new(value)?)))
    }

    /// An acceptance of `proposal` announcing every version this
    /// implementation reads.
    pub fn accept(proposal: Digest) -> Body {
        Body::Acceptance {
            proposal,
            reads: BodyVersion::SUPPORTED.to_vec(),
        }
    }

    /// The body's kind.
    pub fn kind(&self) -> BodyKind {
        match self {
            Body::Acceptance { .. } => BodyKind::Acceptance,
            Body::Amendment(_) => BodyKind::Amendment,
            Body::Creation(_) => BodyKind::Creation,
            Body::Decline { .. } => BodyKind::Decline,
            Body::Heartbeat => BodyKind::Heartbeat,
            Body::Receipt => BodyKind::Receipt,
            Body::Structured(_) => BodyKind::Structured,
            Body::Text(_) => BodyKind::Text,
        }
    }

    /// The exact bytes the body hash covers, under the rules of `version`
    /// (the header's). Version 1 carries no announced versions.
    pub fn encode(&self, version: BodyVersion) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.kind().tag());
        let announce = version >= BodyVersion::V2;
        match self {
            Body::Acceptance { proposal, reads } => {
                w.digest(proposal);
                if announce {
                    encode_versions(&mut w, reads);
                }
            }
            Body::Amendment(p) | Body::Creation(p) => encode_proposal(&mut w, p, announce),
            Body::Decline { proposal, reason } => {
                w.digest(proposal).bytes32(reason.as_bytes());
            }
            Body::Heartbeat | Body::Receipt => {}
            Body::Structured(s) => {
                w.bytes32(s.json());
            }
            Body::Text(t) => {
                w.bytes32(t.as_bytes());
            }
        }
        w.buf
    }

    /// Decodes body bytes written under `version`; never panics. A version
    /// or kind this implementation does not read is an error here (the
    /// receiver keeps such a message as an unread stub).
    pub fn decode(bytes: &[u8], version: BodyVersion) -> Result<Self, DecodeError> {
        if !version.is_supported() {
            return Err(DecodeError::Version {
                expected: BodyVersion::BASELINE.0,
                found: version.0,
            });
        }
        let announce = version >= BodyVersion::V2;
        let mut r = Reader::new(bytes);
        let body = match BodyKind::from_tag(r.u8("body_kind")?)? {
            BodyKind::Acceptance => Body::Acceptance {
                proposal: r.digest("proposal")?,
                reads: if announce {
                    decode_versions(&mut r)?
                } else {
                    vec![BodyVersion::V1]
                },
            },
            BodyKind::Amendment => Body::Amendment(decode_proposal(&mut r, announce)?),
            BodyKind::Creation => Body::Creation(decode_proposal(&mut r, announce)?),
            BodyKind::Decline => Body::Decline {
                proposal: r.digest("proposal")?,
                reason: r.string("reason", REASON_MAX_BYTES)?,
            },
            BodyKind::Heartbeat => Body::Heartbeat,
            BodyKind::Receipt => Body::Receipt,
            BodyKind::Structured => {
                let json = r.bytes32("structured", TEXT_MAX_BYTES)?;
                Body::Structured(Box::new(StructuredBody::decode(json, version)?))
            }
            BodyKind::Text => Body::Text(r.string("text", TEXT_MAX_BYTES)?),
            BodyKind::Other(tag) => {
                return Err(DecodeError::UnknownTag {
                    field: "body_kind",
                    tag,
                })
            }
        };
        r.finish()?;
        Ok(body)
    }

    /// Refuses to write a body its receivers would not decode the same:
    /// an announced-versions list out of form (from version 2).
    pub fn check(&self, version: BodyVersion) -> Result<(), DecodeError> {
        if version < BodyVersion::V2 {
            return Ok(());
        }
        match self {
            Body::Acceptance { reads, .. } => check_versions(reads),
            Body::Amendment(p) | Body::Creation(p) => check_versions(&p.reads),
            _ => Ok(()),
        }
    }

    /// This body as a sender writes it under `version`: a version 1
    /// acceptance or proposal has no list and announces version 1 only, so
    /// the sender's own copy says what the others will read.
    pub fn for_version(mut self, version: BodyVersion) -> Body {
        if version < BodyVersion::V2 {
            match &mut self {
                Body::Acceptance { reads, .. } => *reads = vec![BodyVersion::V1],
                Body::Amendment(p) | Body::Creation(p) => p.reads = vec![BodyVersion::V1],
                _ => {}
            }
        }
        self
    }
}

/// `u8 count ‖ count × u8`, strictly ascending, at least one.
fn encode_versions(w: &mut Writer, reads: &[BodyVersion]) {
    w.u8(reads.len().min(VERSIONS_MAX) as u8);
    for v in reads.iter().take(VERSIONS_MAX) {
        w.u8(v.0);
    }
}

/// A list of announced versions must be 1 to 16 versions, strictly
/// ascending, none 0: the one form its decoder takes.
fn check_versions(reads: &[BodyVersion]) -> Result<(), DecodeError> {
    let ascending = reads.windows(2).all(|w| w[0] < w[1]);
    if reads.is_empty() || reads.len() > VERSIONS_MAX || !ascending || reads[0].0 == 0 {
        return Err(DecodeError::Invalid {
            field: "reads",
            reason: "announces 1 to 16 versions, strictly ascending from 1",
        });
    }
    Ok(())
}

fn decode_versions(r: &mut Reader<'_>) -> Result<Vec<BodyVersion>, DecodeError> {
    let n = r.u8("reads")? as usize;
    let reads = (0..n)
        .map(|_| r.u8("reads.version").map(BodyVersion))
        .collect::<Result<Vec<_>, _>>()?;
    check_versions(&reads)?;
    Ok(reads)
}

fn encode_proposal(w: &mut Writer, p: &Proposal, announce: bool) {
    w.bytes32(p.title.as_bytes());
    // Bounded by MEMBERS_MAX when built through the client; the decoder
    // enforces it on the way in.
    w.u16(p.members.len().min(u16::MAX as usize) as u16);
    for m in &p.members {
        w.handle(&m.handle)
            .u8(m.role.tag())
            .raw(&m.curve25519)
            .raw(&m.ed25519);
    }
    w.u8(u8::from(p.policy.mediator_reads))
        .u32(p.policy.receipt_deadline_s)
        .u32(p.policy.heartbeat_interval_s);
    if announce {
        encode_versions(w, &p.reads);
    }
}

fn decode_proposal(r: &mut Reader<'_>, announce: bool) -> Result<Proposal, DecodeError> {
    let title = r.string("title", TITLE_MAX_BYTES)?;
    let n = r.u16("members")? as usize;
    if n > MEMBERS_MAX {
        return Err(DecodeError::TooLong {
            field: "members",
            len: n,
            max: MEMBERS_MAX,
        });
    }
    let mut members: Vec<Member> = Vec::with_capacity(n);
    for _ in 0..n {
        let m = Member {
            handle: r.handle("member")?,
            role: Role::from_tag(r.u8("role")?)?,
            curve25519: r.array("curve25519")?,
            ed25519: r.array("ed25519")?,
        };
        if members.last().is_some_and(|prev| prev.handle >= m.handle) {
            return Err(DecodeError::Invalid {
                field: "members",
                reason: "not sorted by handle, or a duplicate",
            });
        }
        members.push(m);
    }
    let mediator_reads = match r.u8("mediator_reads")? {
        0 => false,
        1 => true,
        tag => {
            return Err(DecodeError::UnknownTag {
                field: "mediator_reads",
                tag,
            })
        }
    };
    let policy = Policy {
        mediator_reads,
        receipt_deadline_s: r.u32("receipt_deadline_s")?,
        heartbeat_interval_s: r.u32("heartbeat_interval_s")?,
    };
    Ok(Proposal {
        title,
        members,
        policy,
        reads: if announce {
            decode_versions(r)?
        } else {
            vec![BodyVersion::V1]
        },
    })
}
