//! One message as a person reads it: for a commitment, every typed term,
//! its state on the board and what the channel says about it since.

use backchannel_protocol::commitments::fold::{AssuranceView, RedLineView};
use backchannel_protocol::commitments::terms::{terms, Term};
use backchannel_protocol::commitments::Structured;
use backchannel_protocol::payload::{Body, Payload};
use backchannel_protocol::Timestamp;
use serde::Serialize;

use super::{entry_of, Client, IdKind, LogEntry};
use crate::error::ClientError;

/// A message with everything known about it.
#[derive(Clone, Debug, Serialize)]
pub struct MessageView {
    /// The message as a log shows it.
    pub message: LogEntry,
    /// Its typed body, if it is one this member may read.
    pub body: Option<Structured>,
    /// That body's terms in words.
    pub terms: Vec<Term>,
    /// For an assurance: its state and flags on the board.
    pub assurance: Option<AssuranceView>,
    /// For a red line: its place on the board.
    pub red_line: Option<RedLineView>,
    /// Messages of the channel that name it (revocations, suspensions,
    /// allegations, answers, findings, reciprocal assurances...), and the
    /// issuer's revocations and suspensions of all its assurances.
    pub related: Vec<LogEntry>,
}

impl Client {
    /// The message a unique prefix of its id names, in any channel, with
    /// the board evaluated at `at`.
    pub fn message_view(&self, prefix: &str, at: Timestamp) -> Result<MessageView, ClientError> {
        let (channel, id) = self.resolve_message(None, prefix)?;
        let ordered = self.member.ordered(channel);
        let Some(m) = ordered.iter().find(|m| m.payload.header().message_id == id) else {
            return Err(ClientError::NotFound {
                kind: IdKind::Message,
                prefix: prefix.to_string(),
            });
        };
        let body = structured_of(&m.payload);
        let board = self.board(channel, at)?;
        let hex = id.to_hex();
        let issuer = &m.payload.header().sender;
        let related = ordered
            .iter()
            .filter(|x| x.payload.header().message_id != id)
            .filter(|x| match structured_of(&x.payload) {
                Some(s) if s.references().contains(&hex.as_str()) => true,
                Some(Structured::Revoke {
                    assurance: None,
                    red_line: None,
                    ..
                })
                | Some(Structured::Suspend {
                    assurance: None,
                    red_line: None,
                    ..
                }) => {
                    matches!(body, Some(Structured::Assurance(_)))
                        && x.payload.header().sender == *issuer
                }
                _ => false,
            })
            .map(|x| entry_of(x))
            .collect();
        Ok(MessageView {
            message: entry_of(m),
            terms: body.map(terms).unwrap_or_default(),
            body: body.cloned(),
            assurance: board.assurances.into_iter().find(|a| a.id == hex),
            red_line: board.red_lines.into_iter().find(|r| r.id == hex),
            related,
        })
    }
}

fn structured_of(p: &Payload) -> Option<&Structured> {
    match p {
        Payload::Full {
            body: Body::Structured(s),
            ..
        } => Some(s.value()),
        _ => None,
    }
}
