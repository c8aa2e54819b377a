//! Deniable transcripts: a member's plaintext history of one channel with
//! its digests and head vectors, to check consistency among the members.
//! It proves nothing to an outsider: nothing in it is signed, and anyone
//! can write a file that passes `verify` (a test does so without any key).
//! Only a member's own store can tell a real transcript from a fabricated
//! one.

use std::collections::BTreeMap;

use backchannel_protocol::payload::{body_hash, Body, Header, Payload};
use backchannel_protocol::{ChannelId, Digest};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::error::ClientError;

/// The format tag of an export.
pub const FORMAT: &str = "backchannel transcript v1";

/// What an export says about itself.
pub const NOTICE: &str = "This is one member's record of a Backchannel channel. The digests and head \
vectors let the members check that they hold the same history. It is not evidence for anyone else: \
nothing in it is signed, Olm authenticates messages with keys both ends share, and anyone can write \
a file like this one that passes `backchannel transcript verify`. Only a member's own store \
(`--against-store`) tells whether these messages were really exchanged.";

/// An exported transcript.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TranscriptFile {
    /// [`FORMAT`].
    pub format: String,
    /// [`NOTICE`]: what the file proves and what it does not.
    pub notice: String,
    /// Channel id, hex.
    pub channel_id: String,
    /// Who exported it.
    pub exported_by: String,
    /// When (the exporter's clock).
    pub exported_at_ms: i64,
    /// Every message the exporter holds, in its order.
    pub messages: Vec<TranscriptMessage>,
}

/// One message: readable fields and the exact bytes its digest covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TranscriptMessage {
    /// Message id, hex.
    pub message_id: String,
    /// Epoch number.
    pub epoch: u32,
    /// Sender.
    pub sender: String,
    /// Position in the sender's chain.
    pub seq: u64,
    /// Sender's clock.
    pub sent_at_ms: i64,
    /// Body kind.
    pub kind: String,
    /// The text, when the exporter could read it.
    pub text: Option<String>,
    /// The message answered, hex.
    pub in_reply_to: Option<String>,
    /// Head vector: member → (position, digest hex).
    pub heads: BTreeMap<String, (u64, String)>,
    /// Exact header bytes, hex.
    pub header: String,
    /// Salt, hex (absent for a stub).
    pub salt: Option<String>,
    /// Exact body bytes, hex (absent for a stub).
    pub body: Option<String>,
    /// `SHA-256(salt ‖ body)`, hex.
    pub body_hash: String,
    /// `SHA-256(header ‖ body_hash)`, hex.
    pub digest: String,
}

impl TranscriptMessage {
    fn of(payload: &Payload) -> Self {
        let h = payload.header();
        let (text, salt, body) = match payload {
            Payload::Full { salt, body, .. } => (
                match body {
                    Body::Text(t) => Some(t.clone()),
                    _ => None,
                },
                Some(hex::encode(salt)),
                Some(hex::encode(body.encode(h.version))),
            ),
            Payload::Stub { .. } => (None, None, None),
        };
        TranscriptMessage {
            message_id: h.message_id.to_hex(),
            epoch: h.epoch.number.0,
            sender: h.sender.to_string(),
            seq: h.seq.0,
            sent_at_ms: h.sent_at.0,
            kind: h.body_kind.name(),
            text,
            in_reply_to: h.in_reply_to.map(|m| m.to_hex()),
            heads: h
                .heads
                .0
                .iter()
                .map(|(m, hd)| (m.to_string(), (hd.seq.0, hd.digest.to_hex())))
                .collect(),
            header: hex::encode(h.encode()),
            salt,
            body,
            body_hash: payload.body_hash().to_hex(),
            digest: payload.digest().to_hex(),
        }
    }
}

/// Builds a transcript file from payloads (an export, or a fabrication).
pub fn transcript_of(
    channel: ChannelId,
    exported_by: &str,
    at_ms: i64,
    payloads: &[Payload],
) -> TranscriptFile {
    TranscriptFile {
        format: FORMAT.into(),
        notice: NOTICE.into(),
        channel_id: channel.to_hex(),
        exported_by: exported_by.into(),
        exported_at_ms: at_ms,
        messages: payloads.iter().map(TranscriptMessage::of).collect(),
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TranscriptCheck {
    /// Messages checked.
    pub messages: usize,
    /// Inconsistencies: the file contradicts itself.
    pub problems: Vec<String>,
    /// Remarks that are not contradictions (positions the file lacks).
    pub remarks: Vec<String>,
}

/// Checks a transcript's internal consistency: every digest recomputed from
/// the exact bytes, the readable fields equal to the bytes, every chain link
/// and every head-vector report that the file can check.
pub fn verify(file: &TranscriptFile) -> TranscriptCheck {
    let mut check = TranscriptCheck {
        messages: file.messages.len(),
        ..TranscriptCheck::default()
    };
    if file.format != FORMAT {
        check
            .problems
            .push(format!("unknown format {:?}", file.format));
        return check;
    }
    let mut at: BTreeMap<(u32, String, u64), (Digest, Digest)> = BTreeMap::new(); // → (digest, prev)
    let mut openings: BTreeMap<u32, Digest> = BTreeMap::new();
    for (i, m) in file.messages.iter().enumerate() {
        let which = format!(
            "message {} ({} #{}, epoch {})",
            i + 1,
            m.sender,
            m.seq,
            m.epoch
        );
        let Ok(header_bytes) = hex::decode(&m.header) else {
            check.problems.push(format!("{which}: header is not hex"));
            continue;
        };
        let Ok(h) = Header::decode(&header_bytes) else {
            check
                .problems
                .push(format!("{which}: header bytes do not decode"));
            continue;
        };
        if h.channel_id.to_hex() != file.channel_id
            || h.message_id.to_hex() != m.message_id
            || h.sender.as_str() != m.sender
            || h.seq.0 != m.seq
            || h.epoch.number.0 != m.epoch
            || h.sent_at.0 != m.sent_at_ms
            || h.in_reply_to.map(|x| x.to_hex()) != m.in_reply_to
        {
            check.problems.push(format!(
                "{which}: the readable fields differ from the header bytes"
            ));
        }
        let Ok(claimed_hash) = Digest::from_hex(&m.body_hash) else {
            check
                .problems
                .push(format!("{which}: body_hash is not a digest"));
            continue;
        };
        if let (Some(salt), Some(body)) = (&m.salt, &m.body) {
            match (hex::decode(salt), hex::decode(body)) {
                (Ok(salt), Ok(body)) if salt.len() == 16 => {
                    let mut s = [0u8; 16];
                    s.copy_from_slice(&salt);
                    if body_hash(&s, &body) != claimed_hash {
                        check
                            .problems
                            .push(format!("{which}: the body does not hash to body_hash"));
                    }
                    match Body::decode(&body, h.version) {
                        Ok(Body::Text(t)) if m.text.as_deref() != Some(t.as_str()) => {
                            check.problems.push(format!(
                                "{which}: the readable text differs from the body bytes"
                            ));
                        }
                        Ok(_) => {}
                        Err(_) => check
                            .problems
                            .push(format!("{which}: the body bytes do not decode")),
                    }
                }
                _ => check
                    .problems
                    .push(format!("{which}: salt or body is not hex")),
            }
        }
        let digest = h.digest_with(&claimed_hash);
        if digest.to_hex() != m.digest {
            check.problems.push(format!(
                "{which}: the digest is not SHA-256(header ‖ body_hash)"
            ));
        }
        openings.insert(h.epoch.number.0, h.epoch.opening);
        if at
            .insert((m.epoch, m.sender.clone(), m.seq), (digest, h.prev))
            .is_some()
        {
            check
                .problems
                .push(format!("{which}: two messages at one position"));
        }
    }
    // Chain links and head-vector reports.
    for ((epoch, sender, seq), (_, prev)) in &at {
        let expected = if *seq == 1 {
            openings.get(epoch).copied()
        } else {
            at.get(&(*epoch, sender.clone(), seq - 1)).map(|(d, _)| *d)
        };
        match expected {
            Some(d) if d != *prev => check.problems.push(format!(
                "{sender} #{seq} (epoch {epoch}) does not follow the message before it"
            )),
            None if *seq > 1 => check.remarks.push(format!(
                "{sender} #{} (epoch {epoch}) is not in the file",
                seq - 1
            )),
            _ => {}
        }
    }
    for m in &file.messages {
        for (member, (seq, digest)) in &m.heads {
            if let Some((d, _)) = at.get(&(m.epoch, member.clone(), *seq)) {
                if d.to_hex() != *digest {
                    check.problems.push(format!(
                        "{} #{} reports {member} #{seq} with another digest than the file holds",
                        m.sender, m.seq
                    ));
                }
            }
        }
    }
    check
}

/// A transcript compared with a member's store.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StoreComparison {
    /// Messages the store does not hold, or holds differently.
    pub problems: Vec<String>,
    /// Messages the store holds that the file lacks.
    pub omitted: usize,
}

impl Client {
    /// The transcript of `channel` as this member holds it.
    pub fn export_transcript(&self, channel: ChannelId) -> Result<TranscriptFile, ClientError> {
        let payloads: Vec<Payload> = self
            .member()
            .ordered(channel)
            .into_iter()
            .map(|m| m.payload.clone())
            .collect();
        Ok(transcript_of(
            channel,
            self.me().as_str(),
            self.now().0,
            &payloads,
        ))
    }

    /// Compares a transcript with this member's store: every message must be
    /// one this member holds, with the same digest. Messages in the store
    /// but not in the file are only counted (an export can be older than
    /// the store).
    pub fn check_transcript_against_store(
        &self,
        file: &TranscriptFile,
    ) -> Result<StoreComparison, ClientError> {
        let channel = ChannelId::from_hex(&file.channel_id)?;
        let held: BTreeMap<String, String> = self
            .member()
            .ordered(channel)
            .into_iter()
            .map(|m| (m.payload.header().message_id.to_hex(), m.digest.to_hex()))
            .collect();
        let mut problems = Vec::new();
        for m in &file.messages {
            match held.get(&m.message_id) {
                None => problems.push(format!(
                    "{} #{} ({}) is not in your store: you never received it",
                    m.sender, m.seq, m.message_id
                )),
                Some(d) if *d != m.digest => problems.push(format!(
                    "{} #{} differs from the copy in your store",
                    m.sender, m.seq
                )),
                Some(_) => {}
            }
        }
        let listed: std::collections::BTreeSet<&str> = file
            .messages
            .iter()
            .map(|m| m.message_id.as_str())
            .collect();
        let omitted = held.keys().filter(|k| !listed.contains(k.as_str())).count();
        Ok(StoreComparison { problems, omitted })
    }
}
