//! What waits in the outbox, and why: a message is committed there before
//! it is posted, so once a send returns, it is either delivered or queued,
//! never lost and never sent twice.

use backchannel_protocol::member::{AlertKind, Direction};
use backchannel_protocol::{ChannelId, Handle, MessageId, Timestamp};
use serde::{Deserialize, Serialize};

use super::Client;
use crate::error::{ClientError, TransportError};

/// Where one sent message stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "delivery", rename_all = "snake_case")]
pub enum Delivery {
    /// The relay took it.
    Sent,
    /// Committed to the outbox, not yet taken by the relay: `sync` or a
    /// running `watch` posts it (the same bytes, exactly once).
    Queued {
        /// Why it waits.
        reason: String,
    },
    /// Committed to the outbox, but the relay refused to take it (not a
    /// passing outage): it stays queued and every `sync` tries again, yet
    /// it goes only if the relay changes its answer.
    Refused {
        /// The relay's answer.
        reason: String,
    },
}

/// Why the last post of this process did not go.
#[derive(Clone, Debug)]
pub(crate) struct PostFailure {
    /// In words.
    words: String,
    /// The relay refused it, rather than being out of reach or busy.
    refused: bool,
}

impl PostFailure {
    pub(crate) fn of(e: &ClientError) -> PostFailure {
        PostFailure {
            words: e.to_string(),
            refused: !e.leaves_queued(),
        }
    }
}

/// A post waiting in the outbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedPost {
    /// The message.
    pub message_id: MessageId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Its body kind (`text`, `structured`, `acceptance`...).
    pub kind: String,
    /// Who it goes to.
    pub recipients: Vec<Handle>,
    /// When it was committed (this member's clock).
    pub queued_at: Timestamp,
    /// Why it waits.
    pub reason: String,
}

impl Client {
    /// Where `message` stands: still in the outbox, or taken by the relay.
    pub fn delivery(&self, message: MessageId) -> Delivery {
        let refused = self.last_post_error.as_ref().is_some_and(|f| f.refused);
        match self.queued().into_iter().find(|q| q.message_id == message) {
            Some(q) if refused => Delivery::Refused { reason: q.reason },
            Some(q) => Delivery::Queued { reason: q.reason },
            None => Delivery::Sent,
        }
    }

    /// Every post waiting in the outbox, oldest first, each with why.
    pub fn queued(&self) -> Vec<QueuedPost> {
        let stored = |id: MessageId| {
            self.member
                .messages()
                .iter()
                .find(|m| m.direction == Direction::Out && m.payload.header().message_id == id)
        };
        self.member
            .outbox()
            .filter_map(|t| {
                let first = t.envelopes.first()?;
                let m = stored(first.message_id);
                let stale = self.member.open_alerts().iter().any(|a| {
                    a.kind == AlertKind::StaleStore && a.channel == Some(t.channel) && !t.resumed
                });
                let reason = if stale {
                    "held: this store was restored from an older copy (`stale_store`); it goes only after a rekey, see `backchannel verify`".to_string()
                } else {
                    match &self.last_post_error {
                        Some(f) if f.refused => format!("the relay refused it: {}; each `backchannel sync` tries again, but it goes only if the relay changes its answer", f.words),
                        Some(f) => format!("not yet taken by the relay: {}; `backchannel sync` or a running `watch` retries", f.words),
                        None => "not yet posted: `backchannel sync` or a running `watch` posts it".into(),
                    }
                };
                Some(QueuedPost {
                    message_id: first.message_id,
                    channel_id: t.channel,
                    kind: m.map_or_else(|| "?".into(), |m| m.payload.header().body_kind.name()),
                    recipients: t.envelopes.iter().map(|e| e.recipient.clone()).collect(),
                    queued_at: m.map_or(Timestamp(0), |m| m.stored_at),
                    reason,
                })
            })
            .collect()
    }

    /// Asks the relay whether it can be reached (no login), so that
    /// [`Client::queued`] can say why posts wait.
    pub async fn probe_relay(&mut self) {
        if let Err(e @ TransportError::Unreachable { .. }) = self.relay.principal(self.me()).await {
            self.last_post_error = Some(PostFailure::of(&e.into()));
        }
    }

    /// Posts what the outbox holds; a relay that cannot be reached (or
    /// refuses for now) leaves the rest queued, with the reason kept for
    /// [`Client::queued`]. Errors only if nothing could be checked.
    pub(crate) async fn flush_keeping_queue(&mut self) -> Result<(), ClientError> {
        match self.flush_outbox().await {
            Ok(_) => {
                self.last_post_error = None;
                Ok(())
            }
            Err(e) if e.leaves_queued() => {
                self.last_post_error = Some(PostFailure::of(&e));
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

impl ClientError {
    /// True for failures after which a committed post simply waits: the
    /// relay unreachable, or refusing for now (rate limits, a full disk,
    /// an outage), never a refusal of this post as such.
    pub fn leaves_queued(&self) -> bool {
        match self {
            ClientError::Transport(TransportError::Unreachable { .. }) => true,
            ClientError::Transport(TransportError::Api { status, .. }) => {
                matches!(status, 429 | 500..=599)
            }
            _ => false,
        }
    }
}
