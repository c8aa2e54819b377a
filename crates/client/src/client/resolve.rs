//! Ids a person can type: any unique prefix of at least
//! [`MIN_PREFIX_DIGITS`] hex digits names a channel, a message (a
//! commitment is a message) or an exchange. An ambiguous prefix lists its
//! candidates; a shorter one is refused, so that a prefix typed today cannot
//! quietly name another message tomorrow.

use backchannel_protocol::commitments::terms::first_words;
use backchannel_protocol::commitments::Structured;
use backchannel_protocol::member::StoredMessage;
use backchannel_protocol::payload::{Body, Payload};
use backchannel_protocol::{ChannelId, ExchangeId, Handle, MessageId};
use serde::Serialize;

use super::Client;
use crate::error::ClientError;

/// The fewest hex digits a typed id may have.
pub const MIN_PREFIX_DIGITS: usize = 6;

/// Words of a message shown beside its id among the candidates.
const DESCRIPTION_WORDS: usize = 8;

/// What kind of thing an id names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdKind {
    /// A channel.
    Channel,
    /// An escrowed exchange.
    Exchange,
    /// A message (a commitment is a message).
    Message,
}

impl std::fmt::Display for IdKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IdKind::Channel => "channel",
            IdKind::Exchange => "exchange",
            IdKind::Message => "message",
        })
    }
}

/// One of the ids an ambiguous prefix matches.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The whole id, hex.
    pub id: String,
    /// What it is: kind, sender and first words for a message.
    pub description: String,
}

/// An exchange's state as this store last saw it (the relay knows better).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExchangeState {
    /// Before its deadline, not released.
    Open,
    /// Past its deadline and not released here: destroyed unless released.
    PastDeadline,
    /// Released: the offers were opened in this store.
    Released,
}

/// An exchange this member knows from its announcement in a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExchangeSummary {
    /// The exchange.
    pub exchange_id: ExchangeId,
    /// Its channel.
    pub channel_id: ChannelId,
    /// Every participant, the creator included.
    pub participants: Vec<Handle>,
    /// The terms, in words.
    pub terms: String,
    /// Offers are destroyed unless all are in by then (ms).
    pub deadline_ms: i64,
    /// As this store last saw it.
    pub state: ExchangeState,
}

/// The one item of `items` (hex id, item, its description) whose id
/// starts with `prefix`: at least [`MIN_PREFIX_DIGITS`] hex digits, any
/// case.
pub fn unique_prefix<T>(
    kind: IdKind,
    prefix: &str,
    items: impl IntoIterator<Item = (String, T)>,
    describe: impl Fn(&T) -> String,
) -> Result<T, ClientError> {
    let wanted = prefix.trim().to_ascii_lowercase();
    if wanted.len() < MIN_PREFIX_DIGITS || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ClientError::BadId {
            kind,
            given: prefix.chars().take(40).collect(),
        });
    }
    let mut found: Vec<(String, T)> = items
        .into_iter()
        .filter(|(id, _)| id.starts_with(&wanted))
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found.dedup_by(|a, b| a.0 == b.0);
    match found.len() {
        0 => Err(ClientError::NotFound {
            kind,
            prefix: wanted,
        }),
        1 => Ok(found.remove(0).1),
        _ => Err(ClientError::Ambiguous {
            kind,
            prefix: wanted,
            candidates: found
                .iter()
                .map(|(id, t)| Candidate {
                    id: id.clone(),
                    description: describe(t),
                })
                .collect(),
        }),
    }
}

/// `assurance by blue: "We will not ..."`, or `text stub by red`.
pub(crate) fn describe_message(m: &StoredMessage) -> String {
    let h = m.payload.header();
    match &m.payload {
        Payload::Full {
            body: Body::Structured(s),
            ..
        } => format!(
            "{} by {}: \"{}\"",
            s.value().kind(),
            h.sender,
            first_words(&s.summary(), DESCRIPTION_WORDS)
        ),
        Payload::Full {
            body: Body::Text(t),
            ..
        } => format!(
            "text by {}: \"{}\"",
            h.sender,
            first_words(t, DESCRIPTION_WORDS)
        ),
        Payload::Full { .. } => format!("{} by {}", h.body_kind.name(), h.sender),
        Payload::Stub { .. } => format!("{} stub by {}", h.body_kind.name(), h.sender),
    }
}

impl Client {
    /// Finds a channel by a unique prefix of its id.
    pub fn resolve_channel(&self, prefix: &str) -> Result<ChannelId, ClientError> {
        let channels = self.member.channels();
        unique_prefix(
            IdKind::Channel,
            prefix,
            channels.keys().map(|id| (id.to_hex(), *id)),
            |id| {
                let v = channels.get(id).map(|s| self.view(s));
                v.map_or(String::new(), |v| {
                    format!("channel \"{}\", {}", v.title, v.status)
                })
            },
        )
        .map_err(|e| match e {
            ClientError::NotFound { prefix, .. } => ClientError::UnknownChannel(prefix),
            e => e,
        })
    }

    /// Finds a message (a commitment is a message) by a unique prefix of
    /// its id, in `channel` or, for `None`, in every channel.
    pub fn resolve_message(
        &self,
        channel: Option<ChannelId>,
        prefix: &str,
    ) -> Result<(ChannelId, MessageId), ClientError> {
        let m = unique_prefix(
            IdKind::Message,
            prefix,
            self.member
                .messages()
                .iter()
                .filter(|m| channel.is_none_or(|c| c == m.channel()))
                .map(|m| (m.payload.header().message_id.to_hex(), m)),
            |m| describe_message(m),
        )?;
        Ok((m.channel(), m.payload.header().message_id))
    }

    /// Finds an exchange by a unique prefix of its id, among those announced
    /// in this member's channels; a whole id is taken as it is (the relay
    /// then says whether it knows it).
    pub fn resolve_exchange(&self, prefix: &str) -> Result<ExchangeId, ClientError> {
        let known = self.exchanges();
        match unique_prefix(
            IdKind::Exchange,
            prefix,
            known.iter().map(|x| (x.exchange_id.to_hex(), x)),
            |x| {
                format!(
                    "exchange among {}: \"{}\"",
                    x.participants
                        .iter()
                        .map(Handle::as_str)
                        .collect::<Vec<_>>()
                        .join(", "),
                    first_words(&x.terms, DESCRIPTION_WORDS)
                )
            },
        ) {
            Ok(x) => Ok(x.exchange_id),
            Err(ClientError::NotFound { .. }) if prefix.trim().len() == 32 => {
                Ok(ExchangeId::from_hex(&prefix.trim().to_ascii_lowercase())?)
            }
            Err(e) => Err(e),
        }
    }

    /// Every exchange announced end to end in this member's channels by one
    /// of its participants, oldest first, with its state as this store
    /// last saw it (`exchange_status` asks the relay).
    pub fn exchanges(&self) -> Vec<ExchangeSummary> {
        let now = self.now().0;
        let mut out: Vec<ExchangeSummary> = Vec::new();
        for m in self.member.messages() {
            let Payload::Full {
                header,
                body: Body::Structured(s),
                ..
            } = &m.payload
            else {
                continue;
            };
            let Structured::EscrowExchange {
                exchange,
                participants,
                terms,
                deadline_ms,
                ..
            } = s.value()
            else {
                continue;
            };
            if !participants.contains(&header.sender)
                || s.value().validate().is_err()
                || out.iter().any(|x| x.exchange_id == *exchange)
            {
                continue;
            }
            let local = self.vault.exchange(exchange).ok().flatten();
            let released = local.is_some_and(|l| l.opened.is_some());
            out.push(ExchangeSummary {
                exchange_id: *exchange,
                channel_id: header.channel_id,
                participants: participants.clone(),
                terms: terms.clone(),
                deadline_ms: *deadline_ms,
                state: if released {
                    ExchangeState::Released
                } else if now >= *deadline_ms {
                    ExchangeState::PastDeadline
                } else {
                    ExchangeState::Open
                },
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> Vec<(String, u8)> {
        vec![
            ("3f2a9c01aa".into(), 1),
            ("3f2a9c77bb".into(), 2),
            ("77ab01c2cc".into(), 3),
        ]
    }

    fn pick(prefix: &str) -> Result<u8, ClientError> {
        unique_prefix(IdKind::Message, prefix, ids(), |n| format!("item {n}"))
    }

    #[test]
    fn a_unique_prefix_of_six_digits_or_more_finds_its_item() {
        assert_eq!(pick("77ab01").ok(), Some(3));
        assert_eq!(pick("3F2A9C01").ok(), Some(1), "any case");
        assert_eq!(pick(" 3f2a9c77bb ").ok(), Some(2), "the whole id");
    }

    #[test]
    fn an_ambiguous_prefix_lists_every_candidate() {
        match pick("3f2a9c") {
            Err(ClientError::Ambiguous {
                kind,
                prefix,
                candidates,
            }) => {
                assert_eq!((kind, prefix.as_str()), (IdKind::Message, "3f2a9c"));
                assert_eq!(
                    candidates,
                    [
                        Candidate {
                            id: "3f2a9c01aa".into(),
                            description: "item 1".into()
                        },
                        Candidate {
                            id: "3f2a9c77bb".into(),
                            description: "item 2".into()
                        }
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        let said = pick("3f2a9c")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            said.contains("3f2a9c01aa (item 1)") && said.contains("3f2a9c77bb (item 2)"),
            "{said}"
        );
    }

    #[test]
    fn short_foreign_and_unknown_prefixes_are_refused() {
        assert!(matches!(pick("3f2a9"), Err(ClientError::BadId { .. })));
        assert!(matches!(pick("3f2a9z"), Err(ClientError::BadId { .. })));
        assert!(matches!(pick(""), Err(ClientError::BadId { .. })));
        assert!(matches!(pick("ffffff"), Err(ClientError::NotFound { .. })));
        assert!(matches!(
            pick("3f2a9c01aa00"),
            Err(ClientError::NotFound { .. })
        ));
    }

    #[test]
    fn the_same_id_twice_is_one_match() {
        let twice = vec![("abcdef01".to_string(), 1), ("abcdef01".to_string(), 1)];
        let got = unique_prefix(IdKind::Exchange, "abcdef", twice, |_| String::new());
        assert_eq!(got.ok(), Some(1));
    }
}
