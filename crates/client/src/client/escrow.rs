//! Escrowed simultaneous exchanges, as a participant runs them: each offer
//! is sealed for each other participant in a fresh one-message Olm session
//! (a newly claimed one-time key, outside the channel's chains), with the
//! exchange id, deadline and sealing time inside.

use backchannel_protocol::api::{CreateExchangeRequest, ExchangeStatus, SealedCopy};
use backchannel_protocol::escrow::{check_release, SealedOffer};
use backchannel_protocol::member::{Alert, AlertKind};
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
    /// SHA-256 of the sealed offer's plaintext, hex.
    pub digest: Option<String>,
}

/// An exchange as this member sees it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExchangeView {
    /// What the relay says (before release: nothing about the others).
    pub status: ExchangeStatus,
    /// Offers opened at release.
    pub offers: Vec<ReceivedOffer>,
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
        let id = ExchangeId::random();
        let mut participants: Vec<String> = with.iter().map(Handle::to_string).collect();
        participants.push(self.me().to_string());
        participants.sort();
        participants.dedup();
        let terms_digest = Digest::of(&[terms.as_bytes()]);
        self.relay
            .create_exchange(&CreateExchangeRequest {
                exchange_id: id.to_hex(),
                channel_id: channel.to_hex(),
                participants: participants.clone(),
                terms_digest: terms_digest.to_hex(),
                deadline_ms: deadline.0,
            })
            .await?;
        let note = format!(
            "exchange {id}: {} submit sealed offers by {} ms; terms digest {terms_digest}. Terms: {terms}",
            participants.join(", "),
            deadline.0
        );
        self.send_structured(
            channel,
            backchannel_protocol::commitments::Structured::Note { text: note },
            None,
        )
        .await?;
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
        let sealed = SealedOffer {
            exchange_id: id.to_hex(),
            deadline_ms: status.deadline_ms,
            sealed_at_ms: self.now().0,
            terms_digest: status.terms_digest.clone(),
            offer: offer.to_string(),
        };
        let plaintext = sealed.to_plaintext()?;
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
            let (olm_type, ciphertext) = session.encrypt(&plaintext)?;
            copies.push(SealedCopy {
                participant: p.clone(),
                olm_type: olm_type.number(),
                ciphertext: b64::encode(ciphertext),
            });
        }
        let status = self.relay.submit_offer(id, copies).await?;
        self.exchange_view(id, status).await
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
        if status.state == "released" && local.opened.is_none() {
            let mut opened = Vec::new();
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
                opened.push((
                    copy.participant.clone(),
                    plain.and_then(|p| SealedOffer::from_plaintext(&p).ok()),
                ));
            }
            let expected: Vec<String> = status
                .participants
                .iter()
                .filter(|p| **p != self.me().as_str())
                .cloned()
                .collect();
            let found = check_release(
                &id.to_hex(),
                status.deadline_ms,
                &expected,
                &opened,
                local.saw_open_past_deadline,
            );
            let channel = ChannelId::from_hex(&status.channel_id)?;
            for p in &found {
                let Some(kind) = AlertKind::from_code(&p.kind) else {
                    continue;
                };
                let who = Handle::new(p.participant.as_str()).unwrap_or_else(|_| self.me().clone());
                let mut a = Alert::escrow(kind, Timestamp(now), &who, p.detail.clone());
                a.channel = Some(channel);
                a.member = Some(who);
                self.member.raise(a);
            }
            problems = found
                .iter()
                .map(|p| format!("{}: {}", p.kind, p.detail))
                .collect();
            local.opened = Some(opened.clone());
            self.member.account_changed();
            let changes = self.member.poll_changes();
            let mut tx = self.vault.tx()?;
            tx.apply(&changes)?;
            tx.put_exchange(&id, &local)?;
            tx.commit()?;
            if used > 0 {
                self.replenish_keys(used).await?;
            }
            // Every participant confirms, end to end, what it received.
            let digests: Vec<String> = opened
                .iter()
                .map(|(from, o)| match o {
                    Some(o) => format!("{from}: {}", digest_of(o)),
                    None => format!("{from}: nothing readable"),
                })
                .collect();
            let note = format!("exchange {id} released; received {}", digests.join("; "));
            self.send_structured(
                channel,
                backchannel_protocol::commitments::Structured::Note { text: note },
                None,
            )
            .await?;
        }
        let offers = local
            .opened
            .unwrap_or_default()
            .into_iter()
            .map(|(from, o)| ReceivedOffer {
                from,
                digest: o.as_ref().map(digest_of),
                offer: o.map(|o| o.offer),
            })
            .collect();
        Ok(ExchangeView {
            status,
            offers,
            problems,
        })
    }
}

fn digest_of(o: &SealedOffer) -> String {
    Digest::of(&[&serde_json::to_vec(o).unwrap_or_default()]).to_hex()
}
