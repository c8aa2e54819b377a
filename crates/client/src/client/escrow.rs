//! Escrowed simultaneous exchanges, as a participant runs them: each offer
//! is sealed for each other participant in a fresh one-message Olm session
//! (a newly claimed one-time key, outside the channel's chains), with the
//! exchange id, deadline and sealing time inside. The exchange is announced
//! end to end (`escrow_exchange`), and every participant confirms end to end
//! the digest of each offer it opened (`escrow_confirmation`), which each
//! submitter checks against what it sealed.

use backchannel_protocol::api::{CreateExchangeRequest, ExchangeStatus, SealedCopy};
use backchannel_protocol::commitments::{ConfirmedOffer, Structured};
use backchannel_protocol::escrow::{
    check_confirmation, check_release, offer_digest, ReleaseProblem, SealedOffer,
};
use backchannel_protocol::member::{Alert, AlertKind};
use backchannel_protocol::payload::{Body, Header, Payload};
use backchannel_protocol::{b64, ChannelId, Digest, ExchangeId, Handle, OlmType, Timestamp};
use serde::{Deserialize, Serialize};

use super::Client;
use crate::error::ClientError;

/// An offer this member received at release.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ReceivedOffer {
    /// Who offered.
    pub from: String,
    /// The offer, if it opened.
    pub offer: Option<String>,
    /// SHA-256 of the exact sealed plaintext, hex (absent for an offer
    /// opened before protocol v1, whose bytes were not kept).
    pub digest: Option<String>,
}

/// What another participant confirmed receiving from this member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// The participant.
    pub by: String,
    /// It names the offer this member last sealed; `None` when this store
    /// keeps no digest of it (sealed before protocol v1).
    pub matches: Option<bool>,
}

impl Confirmation {
    /// What it says, after the participant's name.
    pub fn words(&self) -> &'static str {
        match self.matches {
            Some(true) => "confirmed receiving the offer you sealed",
            Some(false) => "confirmed receiving ANOTHER offer of yours than the one you last sealed",
            None => "confirmed receiving an offer of yours; this store keeps no digest to compare (sealed before protocol v1)",
        }
    }
}

/// An exchange as this member sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExchangeView {
    /// What the relay says (before release: nothing about the others).
    pub status: ExchangeStatus,
    /// Offers opened at release.
    pub offers: Vec<ReceivedOffer>,
    /// What the others confirmed receiving from this member.
    #[serde(default)]
    pub confirmations: Vec<Confirmation>,
    /// Alerts this release raised.
    pub problems: Vec<String>,
}

impl Client {
    /// Creates an exchange among this member and `with`, on the terms whose
    /// text is `terms`, destroyed unless every offer is in by `deadline`;
    /// announces it in the channel.
    pub async fn exchange_create(
        &mut self,
        channel: ChannelId,
        with: &[Handle],
        terms: &str,
        deadline: Timestamp,
    ) -> Result<ExchangeId, ClientError> {
        self.connect().await?;
        let mut id = ExchangeId::random();
        super::test_id_prefix(&mut id.0);
        let mut participants: Vec<Handle> = with.to_vec();
        participants.push(self.me().clone());
        participants.sort();
        participants.dedup();
        let terms_digest = Digest::of(&[terms.as_bytes()]);
        self.relay
            .create_exchange(&CreateExchangeRequest {
                exchange_id: id.to_hex(),
                channel_id: channel.to_hex(),
                participants: participants.iter().map(Handle::to_string).collect(),
                terms_digest: terms_digest.to_hex(),
                deadline_ms: deadline.0,
            })
            .await?;
        let announcement = Structured::EscrowExchange {
            exchange: id,
            participants,
            terms: terms.to_string(),
            terms_digest,
            deadline_ms: deadline.0,
        };
        self.send_structured(channel, announcement, None).await?;
        Ok(id)
    }

    /// Seals `offer` for every other participant and submits it.
    pub async fn exchange_submit(
        &mut self,
        id: ExchangeId,
        offer: &str,
    ) -> Result<ExchangeView, ClientError> {
        self.connect().await?;
        let status = self.relay.exchange(id).await?;
        if self.check_announced(id, &status).is_err() {
            // The announcement may simply not be fetched yet.
            self.sync().await?;
        }
        self.check_announced(id, &status)?;
        let sealed = SealedOffer {
            exchange_id: id,
            deadline: Timestamp(status.deadline_ms),
            sealed_at: self.now(),
            terms_digest: Digest::from_hex(&status.terms_digest)?,
            offer: offer.to_string(),
        };
        let plaintext = sealed.to_plaintext()?;
        self.submit_plaintext(id, &status, &plaintext).await
    }

    /// Seals exactly `plaintext` (a padded sealed offer) for every other
    /// participant and submits it, keeping its digest to check the others'
    /// confirmations.
    async fn submit_plaintext(
        &mut self,
        id: ExchangeId,
        status: &ExchangeStatus,
        plaintext: &[u8],
    ) -> Result<ExchangeView, ClientError> {
        let mut copies = Vec::new();
        let me = self.me().to_string();
        let others: Vec<String> = status
            .participants
            .iter()
            .filter(|p| **p != me)
            .cloned()
            .collect();
        for p in &others {
            let peer = Handle::new(p.as_str())?;
            let pinned = match self.member.peer(&peer) {
                Some(r) => r.keys,
                None => self.pin_from_relay(&peer).await?,
            };
            // A fresh one-time key for a one-message session: never a channel session.
            let claim = self.relay.claim(&peer).await?;
            let (keys, one_time) = claim.decode()?;
            if keys != pinned {
                return Err(ClientError::KeyChanged(peer));
            }
            let mut session = self.member.identity().outbound_session(&keys, &one_time)?;
            let (olm_type, ciphertext) = session.encrypt(plaintext)?;
            copies.push(SealedCopy {
                participant: p.clone(),
                olm_type: olm_type.number(),
                ciphertext: b64::encode(ciphertext),
            });
        }
        // Kept as pending before the submission (its answer may be lost),
        // and as sealed once the relay took it; dropped if it refused.
        let mut local = self.vault.exchange(&id)?.unwrap_or_default();
        local.pending = Some(offer_digest(plaintext));
        local.channel = Some(ChannelId::from_hex(&status.channel_id)?);
        local.participants = status
            .participants
            .iter()
            .map(|p| Handle::new(p.as_str()))
            .collect::<Result<_, _>>()?;
        self.put_local(&id, &local)?;
        let submitted = self.relay.submit_offer(id, copies).await;
        match &submitted {
            Ok(_) => local.sealed.extend(local.pending.take()),
            Err(e) if e.api_code().is_some() => local.pending = None,
            Err(_) => {}
        }
        self.put_local(&id, &local)?;
        self.exchange_view(id, submitted?).await
    }

    /// Seals raw `plaintext` as this member's offer: what another client
    /// (or an older one, in JSON) would seal. For tests of the confirmation
    /// rule only.
    #[cfg(feature = "adversarial")]
    pub async fn dangerous_submit_plaintext(
        &mut self,
        id: ExchangeId,
        plaintext: &[u8],
    ) -> Result<ExchangeView, ClientError> {
        self.connect().await?;
        let status = self.relay.exchange(id).await?;
        self.submit_plaintext(id, &status, plaintext).await
    }

    /// The exchange's end-to-end announcement: an `escrow_exchange` body
    /// for `id` from one of the participants it names, whose terms digest is
    /// the digest of its terms. Refuses to seal without one, or when the
    /// relay's record (channel, participants, terms, deadline) differs from
    /// it: the relay would be changing what is exchanged.
    fn check_announced(&self, id: ExchangeId, status: &ExchangeStatus) -> Result<(), ClientError> {
        let announced: Vec<(ChannelId, &Structured)> = self
            .structured()
            .filter(|(h, s)| {
                matches!(s, Structured::EscrowExchange { exchange, participants, .. }
                    if *exchange == id && participants.contains(&h.sender))
                    && s.validate().is_ok()
            })
            .map(|(h, s)| (h.channel_id, s))
            .collect();
        let [(
            channel,
            Structured::EscrowExchange {
                participants,
                terms_digest,
                deadline_ms,
                ..
            },
        )] = announced.as_slice()
        else {
            return Err(ClientError::Input(format!(
                "exchange {id} was not announced end to end exactly once in its channel (an exchange created before protocol v1 cannot be joined): nothing was sealed"
            )));
        };
        let named: Vec<String> = participants.iter().map(Handle::to_string).collect();
        if channel.to_hex() != status.channel_id
            || named != status.participants
            || terms_digest.to_hex() != status.terms_digest
            || *deadline_ms != status.deadline_ms
        {
            return Err(ClientError::Input(format!(
                "the relay's record of exchange {id} differs from what its creator announced in the channel (participants, terms or deadline): nothing was sealed; tell the mediator"
            )));
        }
        Ok(())
    }

    /// Every readable structured body this member holds, with its header.
    fn structured(&self) -> impl Iterator<Item = (&Header, &Structured)> {
        self.member
            .messages()
            .iter()
            .filter_map(|m| match &m.payload {
                Payload::Full {
                    header,
                    body: Body::Structured(s),
                    ..
                } => Some((header, s.value())),
                _ => None,
            })
    }

    /// Every readable structured body of `channel`, with its sender.
    fn structured_in(&self, channel: ChannelId) -> impl Iterator<Item = (&Handle, &Structured)> {
        self.structured()
            .filter(move |(h, _)| h.channel_id == channel)
            .map(|(h, s)| (&h.sender, s))
    }

    /// Judges every confirmation received of this member's sealed offers
    /// (once each): one naming another offer than the last sealed is
    /// `escrow_replaced_offer`, one naming nothing readable
    /// `escrow_partial_release`.
    pub(crate) fn judge_confirmations(&mut self) -> Result<(), ClientError> {
        let me = self.me().clone();
        let said: Vec<(ChannelId, ExchangeId, Handle, Option<Digest>)> = self
            .structured()
            .filter(|(h, _)| h.sender != me)
            .filter_map(|(h, s)| match s {
                Structured::EscrowConfirmation { exchange, offers } => offers
                    .iter()
                    .find(|o| o.from == me)
                    .map(|o| (h.channel_id, *exchange, h.sender.clone(), o.digest)),
                _ => None,
            })
            .collect();
        for (channel, exchange, by, digest) in said {
            // One unreadable record must not stop every sync.
            let local = match self.vault.exchange(&exchange) {
                Ok(Some(l)) => l,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!("exchange {exchange}: its local record does not open: {e}");
                    continue;
                }
            };
            // Only the exchange's own participants, in its own channel.
            if local.judged.contains(&by)
                || local.channel != Some(channel)
                || !local.participants.contains(&by)
            {
                continue;
            }
            let mut local = local;
            if let Some(p) = check_confirmation(&by, digest, &local.candidates()) {
                self.raise_escrow(channel, &p);
            }
            local.judged.push(by);
            self.member.account_changed();
            let changes = self.member.poll_changes();
            let mut tx = self.vault.tx()?;
            tx.apply(&changes)?;
            tx.put_exchange(&exchange, &local)?;
            tx.commit()?;
        }
        Ok(())
    }

    fn raise_escrow(&mut self, channel: ChannelId, p: &ReleaseProblem) {
        let Some(kind) = AlertKind::from_code(&p.kind) else {
            return;
        };
        let who = Handle::new(p.participant.as_str()).unwrap_or_else(|_| self.me().clone());
        let mut a = Alert::escrow(kind, self.now(), &who, p.detail.clone());
        a.channel = Some(channel);
        a.member = Some(who);
        self.member.raise(a);
    }

    fn put_local(
        &mut self,
        id: &ExchangeId,
        local: &crate::vault::records::ExchangeLocal,
    ) -> Result<(), ClientError> {
        let mut tx = self.vault.tx()?;
        tx.put_exchange(id, local)?;
        tx.commit()?;
        Ok(())
    }

    /// Withdraws this member's offer (before release).
    pub async fn exchange_withdraw(&mut self, id: ExchangeId) -> Result<ExchangeView, ClientError> {
        self.connect().await?;
        let status = self.relay.withdraw_offer(id).await?;
        self.exchange_view(id, status).await
    }

    /// The exchange's status; at release, opens the offers, checks the
    /// release and confirms in the channel the digests of what arrived.
    pub async fn exchange_status(&mut self, id: ExchangeId) -> Result<ExchangeView, ClientError> {
        self.connect().await?;
        let status = self.relay.exchange(id).await?;
        self.exchange_view(id, status).await
    }

    /// The raw bytes of the relay's status answer (to compare answers).
    pub async fn exchange_status_bytes(&mut self, id: ExchangeId) -> Result<Vec<u8>, ClientError> {
        self.connect().await?;
        Ok(self.relay.exchange_bytes(id).await?)
    }

    async fn exchange_view(
        &mut self,
        id: ExchangeId,
        status: ExchangeStatus,
    ) -> Result<ExchangeView, ClientError> {
        let mut local = self.vault.exchange(&id)?.unwrap_or_default();
        let now = self.now().0;
        let mut problems = Vec::new();
        if status.state == "open" && now >= status.deadline_ms && !local.saw_open_past_deadline {
            local.saw_open_past_deadline = true;
            let mut tx = self.vault.tx()?;
            tx.put_exchange(&id, &local)?;
            tx.commit()?;
        }
        let channel = ChannelId::from_hex(&status.channel_id)?;
        if status.state == "released" && local.opened.is_none() {
            let mut opened = Vec::new();
            let mut digests = Vec::new();
            let mut used = 0;
            for copy in &status.offers {
                let from = Handle::new(copy.participant.as_str())?;
                let keys = match self.member.peer(&from) {
                    Some(r) => Some(r.keys),
                    None => self.pin_from_relay(&from).await.ok(),
                };
                let plain = match (
                    keys,
                    b64::decode(&copy.ciphertext, "ciphertext"),
                    OlmType::from_number(copy.olm_type),
                ) {
                    (Some(k), Ok(ct), Ok(t)) => self
                        .member
                        .identity_mut()
                        .inbound_session(&k, t, &ct)
                        .ok()
                        .map(|(_, p)| p),
                    _ => None,
                };
                used += usize::from(plain.is_some());
                let offer = plain
                    .as_deref()
                    .and_then(|p| SealedOffer::from_plaintext(p).ok());
                digests.push(offer.as_ref().and(plain.as_deref()).map(offer_digest));
                opened.push((copy.participant.clone(), offer));
            }
            let expected: Vec<String> = status
                .participants
                .iter()
                .filter(|p| **p != self.me().as_str())
                .cloned()
                .collect();
            let found = check_release(
                id,
                Timestamp(status.deadline_ms),
                &expected,
                &opened,
                local.saw_open_past_deadline,
            );
            for p in &found {
                self.raise_escrow(channel, p);
            }
            problems = found
                .iter()
                .map(|p| format!("{}: {}", p.kind, p.detail))
                .collect();
            local.opened = Some(opened.clone());
            local.opened_digests = digests.clone();
            self.member.account_changed();
            let changes = self.member.poll_changes();
            // In a block of its own: a transaction alive across the awaits
            // below would make this future not `Send` (the web interface
            // runs it on a multi-threaded runtime).
            {
                let mut tx = self.vault.tx()?;
                tx.apply(&changes)?;
                tx.put_exchange(&id, &local)?;
                tx.commit()?;
            }
            if used > 0 {
                self.replenish_keys(used).await?;
            }
            // Every participant confirms, end to end, what it received.
            let mut offers = Vec::new();
            for p in &expected {
                let from = Handle::new(p.as_str())?;
                let digest = opened
                    .iter()
                    .zip(&digests)
                    .find(|((f, _), _)| f == p)
                    .and_then(|(_, d)| *d);
                offers.push(ConfirmedOffer { from, digest });
            }
            let confirmation = Structured::EscrowConfirmation {
                exchange: id,
                offers,
            };
            self.send_structured(channel, confirmation, None).await?;
        }
        let digests = local.opened_digests.clone();
        let candidates = local.candidates();
        let participants = local.participants.clone();
        let offers = local
            .opened
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(i, (from, o))| ReceivedOffer {
                from,
                digest: digests.get(i).copied().flatten().map(|d| d.to_hex()),
                offer: o.map(|o| o.offer),
            })
            .collect();
        Ok(ExchangeView {
            status,
            offers,
            confirmations: self.confirmations_of(channel, id, &candidates, &participants),
            problems,
        })
    }

    /// What the other participants confirmed receiving from this member in
    /// exchange `id`.
    fn confirmations_of(
        &self,
        channel: ChannelId,
        id: ExchangeId,
        sealed: &[Digest],
        participants: &[Handle],
    ) -> Vec<Confirmation> {
        let me = self.me();
        self.structured_in(channel)
            .filter(|(by, _)| *by != me && participants.contains(by))
            .filter_map(|(by, s)| match s {
                Structured::EscrowConfirmation { exchange, offers } if *exchange == id => {
                    let said = offers.iter().find(|o| o.from == *me)?;
                    Some(Confirmation {
                        by: by.to_string(),
                        matches: (!sealed.is_empty())
                            .then(|| check_confirmation(by, said.digest, sealed).is_none()),
                    })
                }
                _ => None,
            })
            .collect()
    }
}
