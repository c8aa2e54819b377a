//! The payload: what travels inside the Olm ciphertext.
//!
//! ```text
//! plaintext = u32 len ‖ form ‖ … ‖ zero padding up to a size bucket
//! form 1 (full) = header ‖ salt[16] ‖ u32 body_len ‖ body
//! form 2 (stub) = header ‖ body_hash[32]
//! body_hash     = SHA-256(salt ‖ body)
//! digest        = SHA-256(header ‖ body_hash)
//! ```
//!
//! A stub carries the same header and body hash as the full copy, so it has
//! the same digest and fits the same chain; it is padded to the full copy's
//! bucket so the relay cannot tell them apart by size.

mod body;
mod version;

pub use body::{
    Body, BodyKind, Member, Policy, Proposal, Role, MEMBERS_MAX, REASON_MAX_BYTES, TEXT_MAX_BYTES,
    TITLE_MAX_BYTES, VERSIONS_MAX,
};
pub use version::BodyVersion;

use crate::error::DecodeError;
use crate::ids::{ChannelId, Digest, EpochNumber, Handle, MessageId, Seq, Timestamp};
use crate::transcript::{Epoch, Head, HeadVector};
use crate::wire::{Reader, Writer};

/// Padded plaintext sizes, in bytes. Every plaintext is exactly one of these.
pub const PAD_BUCKETS_BYTES: [usize; 5] = [512, 2048, 8192, 32 * 1024, 128 * 1024];

/// The largest payload that fits the largest bucket (4 bytes go to the length).
pub const PAYLOAD_MAX_BYTES: usize = 128 * 1024 - 4;

const FORM_FULL: u8 = 1;
const FORM_STUB: u8 = 2;

/// Everything about a message except its body: what the chain and the head
/// vectors are built from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// By which rules the body is written; the rest of the header has the
    /// same layout in every version.
    pub version: BodyVersion,
    /// Must equal the envelope's channel id.
    pub channel_id: ChannelId,
    /// Must equal the envelope's message id.
    pub message_id: MessageId,
    /// The epoch the message belongs to.
    pub epoch: Epoch,
    /// The sender (whose chain this extends).
    pub sender: Handle,
    /// Position in the sender's chain for this channel and epoch, from 1.
    pub seq: Seq,
    /// Digest of the sender's previous message (the epoch's opening digest
    /// for the first).
    pub prev: Digest,
    /// The sender's clock when it sent.
    pub sent_at: Timestamp,
    /// The message this one answers, if any.
    pub in_reply_to: Option<MessageId>,
    /// The kind of the body (known even from a stub).
    pub body_kind: BodyKind,
    /// The sender's head vector: what it has received from every member.
    pub heads: HeadVector,
}

impl Header {
    /// The exact header bytes the digest covers.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        self.write(&mut w);
        w.buf
    }

    /// Decodes exact header bytes (as a transcript export carries them).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let h = Header::read(&mut r)?;
        r.finish()?;
        Ok(h)
    }

    fn write(&self, w: &mut Writer) {
        w.u8(self.version.0)
            .raw(&self.channel_id.0)
            .raw(&self.message_id.0)
            .u32(self.epoch.number.0)
            .digest(&self.epoch.opening)
            .handle(&self.sender)
            .u64(self.seq.0)
            .digest(&self.prev)
            .i64(self.sent_at.0);
        match &self.in_reply_to {
            None => w.u8(0),
            Some(id) => w.u8(1).raw(&id.0),
        };
        w.u8(self.body_kind.tag());
        // At most MEMBERS_MAX entries when built by a client; enforced on decode.
        w.u16(self.heads.0.len().min(u16::MAX as usize) as u16);
        for (member, head) in &self.heads.0 {
            w.handle(member).u64(head.seq.0).digest(&head.digest);
        }
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        // Any version reads here: the layout is frozen, only the body's
        // rules change (checked where the body is decoded).
        let version = BodyVersion(r.u8("version")?);
        if version.0 == 0 {
            return Err(DecodeError::Invalid {
                field: "version",
                reason: "versions start at 1",
            });
        }
        let channel_id = r.channel_id()?;
        let message_id = r.message_id("message_id")?;
        let epoch = Epoch {
            number: EpochNumber(r.u32("epoch")?),
            opening: r.digest("epoch_opening")?,
        };
        let sender = r.handle("sender")?;
        let seq = Seq(r.u64("seq")?);
        if seq.0 == 0 {
            return Err(DecodeError::Invalid {
                field: "seq",
                reason: "sequence numbers start at 1",
            });
        }
        let prev = r.digest("prev")?;
        let sent_at = Timestamp(r.i64("sent_at")?);
        let in_reply_to = match r.u8("in_reply_to")? {
            0 => None,
            1 => Some(r.message_id("in_reply_to")?),
            tag => {
                return Err(DecodeError::UnknownTag {
                    field: "in_reply_to",
                    tag,
                })
            }
        };
        let body_kind = BodyKind::from_tag(r.u8("body_kind")?)?;
        let n = r.u16("heads")? as usize;
        if n > MEMBERS_MAX {
            return Err(DecodeError::TooLong {
                field: "heads",
                len: n,
                max: MEMBERS_MAX,
            });
        }
        let mut heads = HeadVector::default();
        let mut last: Option<Handle> = None;
        for _ in 0..n {
            let member = r.handle("heads.member")?;
            if last.as_ref().is_some_and(|l| *l >= member) {
                return Err(DecodeError::Invalid {
                    field: "heads",
                    reason: "not sorted by handle, or a duplicate",
                });
            }
            let head = Head {
                seq: Seq(r.u64("heads.seq")?),
                digest: r.digest("heads.digest")?,
            };
            last = Some(member.clone());
            heads.0.insert(member, head);
        }
        Ok(Header {
            version,
            channel_id,
            message_id,
            epoch,
            sender,
            seq,
            prev,
            sent_at,
            in_reply_to,
            body_kind,
            heads,
        })
    }

    /// The message digest given the body hash.
    pub fn digest_with(&self, body_hash: &Digest) -> Digest {
        Digest::of(&[&self.encode(), &body_hash.0])
    }
}

/// `SHA-256(salt ‖ body bytes)`: binds the body without revealing it (the
/// random salt stops a stub holder from confirming a guessed body).
pub fn body_hash(salt: &[u8; 16], body: &[u8]) -> Digest {
    Digest::of(&[salt, body])
}

/// A decrypted payload: the full message or a stub of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Header, salt and body.
    Full {
        /// The header.
        header: Header,
        /// The body's salt.
        salt: [u8; 16],
        /// The body.
        body: Body,
    },
    /// Header and body hash only.
    Stub {
        /// The header.
        header: Header,
        /// `SHA-256(salt ‖ body)` of the full copy.
        body_hash: Digest,
    },
}

impl Payload {
    /// The header.
    pub fn header(&self) -> &Header {
        match self {
            Payload::Full { header, .. } | Payload::Stub { header, .. } => header,
        }
    }

    /// The body hash (computed for a full payload).
    pub fn body_hash(&self) -> Digest {
        match self {
            Payload::Full { header, salt, body } => body_hash(salt, &body.encode(header.version)),
            Payload::Stub { body_hash, .. } => *body_hash,
        }
    }

    /// The message digest `SHA-256(header ‖ body_hash)`, the same for the
    /// full copy and its stub.
    pub fn digest(&self) -> Digest {
        self.header().digest_with(&self.body_hash())
    }

    /// The unpadded encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        match self {
            Payload::Full { header, salt, body } => {
                w.u8(FORM_FULL);
                header.write(&mut w);
                w.raw(salt).bytes32(&body.encode(header.version));
            }
            Payload::Stub { header, body_hash } => {
                w.u8(FORM_STUB);
                header.write(&mut w);
                w.digest(body_hash);
            }
        }
        w.buf
    }

    /// Decodes an unpadded payload; never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let form = r.u8("form")?;
        let header = Header::read(&mut r)?;
        let payload = match form {
            FORM_FULL => {
                let salt = r.array("salt")?;
                let body = Body::decode(r.bytes32("body", PAYLOAD_MAX_BYTES)?, header.version)?;
                if body.kind() != header.body_kind {
                    return Err(DecodeError::Invalid {
                        field: "body_kind",
                        reason: "header and body disagree",
                    });
                }
                Payload::Full { header, salt, body }
            }
            FORM_STUB => {
                if !header.body_kind.is_content() {
                    return Err(DecodeError::Invalid {
                        field: "form",
                        reason: "control bodies are never stubbed",
                    });
                }
                Payload::Stub {
                    header,
                    body_hash: r.digest("body_hash")?,
                }
            }
            tag => return Err(DecodeError::UnknownTag { field: "form", tag }),
        };
        r.finish()?;
        Ok(payload)
    }

    /// The padded plaintext of a full payload with raw `body` bytes (kind
    /// tag first), as a newer version would write a body this one cannot
    /// parse; with its digest. For tests and the conformance harness.
    #[cfg(any(feature = "adversarial", feature = "conformance"))]
    pub fn dangerous_raw_full(
        header: &Header,
        salt: [u8; 16],
        body: &[u8],
    ) -> Result<(Vec<u8>, Digest), DecodeError> {
        let mut w = Writer::default();
        w.u8(FORM_FULL);
        header.write(&mut w);
        w.raw(&salt).bytes32(body);
        let digest = header.digest_with(&body_hash(&salt, body));
        Ok((pad(&w.buf, bucket_for(w.buf.len())?)?, digest))
    }

    /// For an authentic plaintext whose body this version cannot read (a
    /// newer version or kind, or a non-canonical body): the header and body
    /// hash, so the message keeps its place in the sender's chain as a
    /// stub. `None` if even the frozen header layout does not decode.
    pub fn decode_unreadable(bytes: &[u8]) -> Option<Payload> {
        let mut r = Reader::new(bytes);
        if r.u8("form").ok()? != FORM_FULL {
            return None;
        }
        let header = Header::read(&mut r).ok()?;
        let salt: [u8; 16] = r.array("salt").ok()?;
        let body_hash = body_hash(&salt, r.bytes32("body", PAYLOAD_MAX_BYTES).ok()?);
        r.finish().ok()?;
        Some(Payload::Stub { header, body_hash })
    }

    /// Decodes a padded plaintext (what Olm decrypted).
    pub fn from_plaintext(padded: &[u8]) -> Result<Self, DecodeError> {
        Payload::decode(unpad(padded)?)
    }
}

/// The smallest bucket that holds `payload_len` bytes plus the length prefix.
pub fn bucket_for(payload_len: usize) -> Result<usize, DecodeError> {
    PAD_BUCKETS_BYTES
        .iter()
        .copied()
        .find(|b| payload_len + 4 <= *b)
        .ok_or(DecodeError::TooLong {
            field: "payload",
            len: payload_len,
            max: PAYLOAD_MAX_BYTES,
        })
}

/// `u32 len ‖ payload ‖ zeros`, `bucket` bytes in all.
pub fn pad(payload: &[u8], bucket: usize) -> Result<Vec<u8>, DecodeError> {
    if !PAD_BUCKETS_BYTES.contains(&bucket) || payload.len() + 4 > bucket {
        return Err(DecodeError::Invalid {
            field: "padding",
            reason: "payload does not fit the bucket",
        });
    }
    let mut out = Vec::with_capacity(bucket);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out.resize(bucket, 0);
    Ok(out)
}

/// Strips the padding, checking that the size is a bucket and the padding
/// is all zeros (so padding cannot become a covert channel).
pub fn unpad(padded: &[u8]) -> Result<&[u8], DecodeError> {
    if !PAD_BUCKETS_BYTES.contains(&padded.len()) {
        return Err(DecodeError::Invalid {
            field: "padding",
            reason: "plaintext length is not a bucket size",
        });
    }
    let mut r = Reader::new(padded);
    let len = r.u32("length")? as usize;
    if len > r.remaining() {
        return Err(DecodeError::Truncated {
            field: "payload",
            needed: len - r.remaining(),
        });
    }
    let payload = r.take(len, "payload")?;
    let rest = r.take(r.remaining(), "padding")?;
    if rest.iter().any(|b| *b != 0) {
        return Err(DecodeError::Invalid {
            field: "padding",
            reason: "padding bytes are not zero",
        });
    }
    Ok(payload)
}

/// A message ready to encrypt: the padded full copy, the padded stub (for
/// content only), and the digest both share.
#[derive(Clone, Debug)]
pub struct Sealed {
    /// The message digest.
    pub digest: Digest,
    /// Padded full plaintext.
    pub full: Vec<u8>,
    /// Padded stub plaintext, same size as `full`; `None` for control bodies.
    pub stub: Option<Vec<u8>>,
}

/// Builds the padded full copy and (for content) the stub of a message.
/// The `salt` must be fresh random bytes from the caller.
pub fn seal(header: Header, salt: [u8; 16], body: Body) -> Result<Sealed, DecodeError> {
    if header.body_kind != body.kind() {
        return Err(DecodeError::Invalid {
            field: "body_kind",
            reason: "header and body disagree",
        });
    }
    body.check(header.version)?;
    let body_bytes = body.encode(header.version);
    let hash = body_hash(&salt, &body_bytes);
    let digest = header.digest_with(&hash);
    let stub = body.kind().is_content().then(|| Payload::Stub {
        header: header.clone(),
        body_hash: hash,
    });
    let full_bytes = Payload::Full { header, salt, body }.encode();
    let bucket = bucket_for(full_bytes.len())?;
    Ok(Sealed {
        digest,
        full: pad(&full_bytes, bucket)?,
        stub: stub.map(|s| pad(&s.encode(), bucket)).transpose()?,
    })
}

#[cfg(test)]
mod tests;
