//! The actors of a principal's channels: one namespace per channel, and the
//! local aliases that join an outside actor of one channel to a member of
//! another for `whatif --all-channels` (kept in the store, never sent).

use backchannel_protocol::commitments::actors::{Aliases, Namespace};
use backchannel_protocol::payload::{Body, Payload};
use backchannel_protocol::ChannelId;
use serde::Serialize;

use super::Client;
use crate::error::ClientError;

/// An outside actor of one channel named like a member of others, with no
/// alias: the what-if treats them as two actors.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Collision {
    /// The channel naming the outside actor.
    pub channel: ChannelId,
    /// The name.
    pub name: String,
    /// The channels where a member has that handle.
    pub member_in: Vec<ChannelId>,
}

impl Collision {
    /// What the what-if says of it.
    pub fn words(&self) -> String {
        let c = self.channel.to_hex();
        let others: Vec<String> = self
            .member_in
            .iter()
            .map(|m| m.to_hex()[..8].to_string())
            .collect();
        format!(
            "outside:{n} in channel {} has the name of a member of channel {}: they are treated as different actors; `backchannel actors same {} {n}` makes them one (in this store only)",
            &c[..8],
            others.join(", "),
            &c[..8],
            n = self.name
        )
    }
}

impl Client {
    /// The actors of `channel`: its members, and the outside actors its
    /// typed messages name.
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
                body: Body::Structured(s),
                ..
            } = &m.payload
            {
                ns.learn(s.value());
            }
        }
        Ok(ns)
    }

    /// The actors of every channel at once (`--all-channels`).
    pub fn namespace_all(&self) -> Result<Namespace, ClientError> {
        let mut all = Namespace::default();
        for c in self.member.channels().keys() {
            all = all.union(&self.namespace(*c)?);
        }
        Ok(all)
    }

    /// The local aliases.
    pub fn actor_aliases(&self) -> Result<Aliases, ClientError> {
        Ok(Aliases(self.vault.actor_aliases()?.into_iter().collect()))
    }

    /// Declares, in this store only, that the outside actor `name` of
    /// `channel` is the member `name` of another channel.
    pub fn add_actor_alias(&mut self, channel: ChannelId, name: &str) -> Result<(), ClientError> {
        if self.lock.is_none() {
            return Err(ClientError::ReadOnly);
        }
        if self.namespace(channel)?.is_member(name) {
            return Err(ClientError::Input(format!(
                "{name} is a member of this channel already: nothing to join"
            )));
        }
        let elsewhere = self.member_in(channel, name)?;
        if elsewhere.is_empty() {
            return Err(ClientError::Input(format!(
                "no other channel of yours has a member {name}: an alias joins an outside actor to a member of another channel"
            )));
        }
        let mut all = self.vault.actor_aliases()?;
        if !all.iter().any(|(c, n)| *c == channel && n == name) {
            all.push((channel, name.to_string()));
            all.sort();
            self.vault.set_actor_aliases(&all)?;
        }
        Ok(())
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
        let mut all = self.vault.actor_aliases()?;
        let before = all.len();
        all.retain(|(c, n)| !(*c == channel && n == name));
        self.vault.set_actor_aliases(&all)?;
        Ok(all.len() != before)
    }

    /// Outside actors named like a member of another channel, with no alias.
    pub fn actor_collisions(&self) -> Result<Vec<Collision>, ClientError> {
        let aliases = self.actor_aliases()?;
        let mut out = Vec::new();
        for c in self.member.channels().keys() {
            for (name, _) in self.namespace(*c)?.outside() {
                if aliases.0.contains(&(*c, name.to_string())) {
                    continue;
                }
                let member_in = self.member_in(*c, name)?;
                if !member_in.is_empty() {
                    out.push(Collision {
                        channel: *c,
                        name: name.to_string(),
                        member_in,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The other channels where `name` is a member.
    fn member_in(&self, channel: ChannelId, name: &str) -> Result<Vec<ChannelId>, ClientError> {
        let mut out = Vec::new();
        for (c, state) in self.member.channels() {
            if *c != channel && state.members().iter().any(|m| m.handle.as_str() == name) {
                out.push(*c);
            }
        }
        Ok(out)
    }
}
