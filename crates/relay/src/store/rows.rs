//! What every backend does with a row the same way: decoding stored
//! values (a damaged value is `Corrupt`, never a panic) and judging a
//! post against its quota from the usage the backend read.

use backchannel_protocol::{Digest, Envelope, Handle, Timestamp};

use super::{ExchangeRecord, ExchangeState, OfferCopy, Quota, StoreError};

pub(super) fn handle(s: String) -> Result<Handle, StoreError> {
    Handle::new(s).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(super) fn key32(v: Vec<u8>) -> Result<[u8; 32], StoreError> {
    <[u8; 32]>::try_from(v.as_slice())
        .map_err(|_| StoreError::Corrupt("key is not 32 bytes".into()))
}

pub(super) fn sig64(v: Vec<u8>) -> Result<[u8; 64], StoreError> {
    <[u8; 64]>::try_from(v.as_slice())
        .map_err(|_| StoreError::Corrupt("signature is not 64 bytes".into()))
}

pub(super) fn id16(v: Vec<u8>) -> Result<[u8; 16], StoreError> {
    <[u8; 16]>::try_from(v.as_slice()).map_err(|_| StoreError::Corrupt("id is not 16 bytes".into()))
}

pub(super) fn exchange_state(state: &str) -> Result<ExchangeState, StoreError> {
    match state {
        "open" => Ok(ExchangeState::Open),
        "released" => Ok(ExchangeState::Released),
        "destroyed" => Ok(ExchangeState::Destroyed),
        _ => Err(StoreError::Corrupt(format!("exchange state {state}"))),
    }
}

/// What a recipient's mailbox holds, in all and from one sender.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct MailboxUse {
    pub envelopes: u64,
    pub bytes: u64,
    pub own_envelopes: u64,
    pub own_bytes: u64,
}

/// Refuses a copy that would pass its recipient's mailbox limits, or the
/// sender's share of them.
pub(super) fn judge_mailbox(
    e: &Envelope,
    held: MailboxUse,
    quota: &Quota,
) -> Result<(), StoreError> {
    let size = e.ciphertext.len() as u64;
    let full = |what: &str| {
        Err(StoreError::Quota(format!(
            "{}'s mailbox {what}: they must fetch and acknowledge before more can be stored",
            e.recipient
        )))
    };
    if held.envelopes + 1 > quota.mailbox_envelopes || held.bytes + size > quota.mailbox_bytes {
        return full("is full");
    }
    if held.own_envelopes + 1 > quota.share(quota.mailbox_envelopes)
        || held.own_bytes + size > quota.share(quota.mailbox_bytes)
    {
        return full(&format!(
            "holds {} envelopes from {}, its share of the mailbox",
            held.own_envelopes, e.sender
        ));
    }
    Ok(())
}

/// Refuses a post whose new bytes would pass the sender's storage limit.
/// Only what the post adds counts: a retry of a stored post is a duplicate
/// to answer, not bytes to refuse.
pub(super) fn judge_sender(
    sender: &Handle,
    held: u64,
    adding: u64,
    quota: &Quota,
) -> Result<(), StoreError> {
    if held.saturating_add(adding) > quota.sender_storage_bytes {
        return Err(StoreError::Quota(format!(
            "{sender} has {held} bytes stored at the relay; this post would pass its limit of {}",
            quota.sender_storage_bytes
        )));
    }
    Ok(())
}

/// Whether a copy of a post is new: the same bytes stored before are a
/// repeat to skip, other bytes under its message id a conflict.
pub(super) fn is_fresh(
    e: &Envelope,
    stored_hash: Option<Vec<u8>>,
    hash: &Digest,
) -> Result<bool, StoreError> {
    match stored_hash {
        None => Ok(true),
        Some(h) if h == hash.0 => Ok(false),
        Some(_) => Err(StoreError::Conflict {
            message_id: e.message_id.to_hex(),
            recipient: e.recipient.clone(),
        }),
    }
}

/// Who submits `copies` to `e`, if it still takes offers at `now`.
pub(super) fn judge_submission(
    e: &ExchangeRecord,
    copies: &[OfferCopy],
    now: Timestamp,
) -> Result<Handle, StoreError> {
    if e.state != ExchangeState::Open {
        return Err(StoreError::ExchangeClosed("is no longer open"));
    }
    if now >= e.deadline {
        return Err(StoreError::ExchangeClosed("is past its deadline"));
    }
    copies
        .first()
        .map(|c| c.submitter.clone())
        .ok_or(StoreError::ExchangeClosed(
            "needs one sealed copy per other participant",
        ))
}
