//! The actors of a principal's channels: one namespace per channel, and the
//! local aliases that join an outside actor of one channel to a member of
//! another for `whatif --all-channels` (kept in the store, never sent).

use std::collections::BTreeMap;

use backchannel_protocol::commitments::actors::{self, Aliases, Collision, FirstNamed, Namespace};
use backchannel_protocol::payload::{Body, Payload};
use backchannel_protocol::ChannelId;

use super::Client;
use crate::error::ClientError;

impl Client {
    /// The actors of `channel`: its members, and the outside actors its
    /// typed messages name, each with where it was first named (in
    /// transcript order). Messages held only as stubs name nobody here.
    pub fn namespace(&self, channel: ChannelId) -> Result<Namespace, ClientError> {
        let state = self.channel_state(&channel)?;
        let handles: Vec<String> = state
            .members()
            .iter()
            .map(|m| m.handle.to_string())
            .collect();
        let mut ns = Namespace::new(handles.iter().map(String::as_str), []);
        for m in self.member.ordered(channel) {
            if let Payload::Full {
                header,
                body: Body::Structured(s),
                ..
            } = &m.payload
            {
                let origin = FirstNamed {
                    message: header.message_id,
                    sender: header.sender.clone(),
                    sent_at: header.sent_at,
                };
                ns.learn_from(s.value(), &origin);
            }
        }
        Ok(ns)
    }

    /// The namespace of every channel this store knows.
    pub fn namespaces(&self) -> Result<BTreeMap<ChannelId, Namespace>, ClientError> {
        self.member
            .channels()
            .keys()
            .map(|c| Ok((*c, self.namespace(*c)?)))
            .collect()
    }

    /// The actors of every channel at once (`--all-channels`): a name that
    /// is a member anywhere is that member.
    pub fn namespace_all(&self) -> Result<Namespace, ClientError> {
        Ok(self
            .namespaces()?
            .values()
            .fold(Namespace::default(), |all, ns| all.union(ns)))
    }

    /// The local aliases (sealed in the store, never sent).
    pub fn actor_aliases(&self) -> Result<Aliases, ClientError> {
        Ok(Aliases(self.vault.actor_aliases()?.into_iter().collect()))
    }

    /// Declares, in this store only, that the outside actor `name` of
    /// `channel` is the member `name` of another channel; returns the
    /// channels where `name` is a member. Nothing is sent.
    pub fn add_actor_alias(
        &mut self,
        channel: ChannelId,
        name: &str,
    ) -> Result<Vec<ChannelId>, ClientError> {
        if self.lock.is_none() {
            return Err(ClientError::ReadOnly);
        }
        let mut aliases = self.actor_aliases()?;
        let member_in = aliases.declare(&self.namespaces()?, channel, name)?;
        self.save_aliases(&aliases)?;
        Ok(member_in)
    }

    /// Forgets an alias; false if there was none.
    pub fn forget_actor_alias(
        &mut self,
        channel: ChannelId,
        name: &str,
    ) -> Result<bool, ClientError> {
        if self.lock.is_none() {
            return Err(ClientError::ReadOnly);
        }
        let mut aliases = self.actor_aliases()?;
        let forgotten = aliases.forget(channel, name);
        if forgotten {
            self.save_aliases(&aliases)?;
        }
        Ok(forgotten)
    }

    fn save_aliases(&mut self, aliases: &Aliases) -> Result<(), ClientError> {
        let all: Vec<(ChannelId, String)> = aliases.0.iter().cloned().collect();
        Ok(self.vault.set_actor_aliases(&all)?)
    }

    /// Outside actors named like a member of another channel, with no alias.
    pub fn actor_collisions(&self) -> Result<Vec<Collision>, ClientError> {
        Ok(actors::collisions(
            &self.namespaces()?,
            &self.actor_aliases()?,
        ))
    }

    /// [`Client::actor_collisions`] in words, with what joins each pair:
    /// what the cross-channel what-if and `actors list` warn.
    pub fn actor_collision_notes(&self) -> Result<Vec<String>, ClientError> {
        Ok(self
            .actor_collisions()?
            .iter()
            .map(|c| {
                format!(
                    "{c}; `backchannel actors same {} {}` makes them one (in this store only)",
                    &c.channel.to_hex()[..8],
                    c.name
                )
            })
            .collect())
    }
}
