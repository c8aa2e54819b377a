//! Escrowed simultaneous exchanges: sealed offers held until every
//! participant has submitted, then released together; destroyed if the
//! deadline passes first. Before release a participant learns nothing about
//! the others, not even whether they submitted.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use backchannel_protocol::api::{
    CreateExchangeRequest, ExchangeStatus, SealedCopy, SubmitOfferRequest,
};
use backchannel_protocol::{b64, ChannelId, Digest, ExchangeId, Handle, OlmType, Timestamp};

use crate::app::{ApiJson, ApiPath, Caller, Relay};
use crate::error::ApiError;
use crate::store::{ExchangeRecord, ExchangeState, OfferCopy};

fn not_participant(caller: &Handle, id: &ExchangeId) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "not_a_participant",
        format!("{caller} is not a participant of exchange {id}"),
    )
}

async fn status(
    relay: &Relay,
    caller: &Handle,
    e: ExchangeRecord,
) -> Result<ExchangeStatus, ApiError> {
    let (id, who) = (e.id, caller.clone());
    let you_submitted = relay.run(move |s| s.has_offer(&id, &who)).await?;
    let offers = if e.state == ExchangeState::Released {
        let who = caller.clone();
        relay
            .run(move |s| s.offers_for(&id, &who))
            .await?
            .into_iter()
            .map(|c| SealedCopy {
                participant: c.submitter.to_string(),
                olm_type: c.olm_type.number(),
                ciphertext: b64::encode(&c.ciphertext),
            })
            .collect()
    } else {
        Vec::new()
    };
    Ok(ExchangeStatus {
        exchange_id: e.id.to_hex(),
        channel_id: e.channel_id.to_hex(),
        participants: e.participants.iter().map(Handle::to_string).collect(),
        terms_digest: e.terms_digest.to_hex(),
        deadline_ms: e.deadline.0,
        state: e.state.name().into(),
        you_submitted,
        released_at_ms: e.released_at.map(|t| t.0),
        offers,
    })
}

/// The exchange, if the caller takes part; past its deadline it is destroyed first.
async fn participant_exchange(
    relay: &Relay,
    caller: &Handle,
    id: &str,
) -> Result<ExchangeRecord, ApiError> {
    let eid = ExchangeId::from_hex(id)?;
    let now = relay.now();
    if relay.run(move |s| s.destroy_expired(now)).await? > 0 {
        // Out of the WAL too, soon.
        relay.wake_maintenance();
    }
    let Some(e) = relay.run(move |s| s.exchange(&eid)).await? else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_exchange",
            format!("no exchange {id}"),
        ));
    };
    if !e.participants.contains(caller) {
        return Err(not_participant(caller, &eid));
    }
    Ok(e)
}

pub(crate) async fn create(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<CreateExchangeRequest>,
) -> Result<(StatusCode, Json<ExchangeStatus>), ApiError> {
    let id = ExchangeId::from_hex(&req.exchange_id)?;
    let channel_id = ChannelId::from_hex(&req.channel_id)?;
    let participants = req
        .participants
        .iter()
        .map(|p| Handle::new(p.as_str()))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if participants.len() < 2 || participants.len() != req.participants.len() {
        return Err(ApiError::invalid_field(
            "an exchange has two or more distinct participants",
        ));
    }
    if !participants.contains(&caller) {
        return Err(ApiError::invalid_field("the creator must be a participant"));
    }
    if req.deadline_ms <= relay.now().0 {
        return Err(ApiError::invalid_field("the deadline is in the past"));
    }
    let longest = relay.config().exchange_deadline_max_ms;
    if req.deadline_ms.saturating_sub(relay.now().0) > longest {
        return Err(ApiError::limit(format!(
            "the deadline is more than {} days away, this relay's longest ({longest} ms)",
            longest / 86_400_000
        )));
    }
    relay.need_space().await?;
    let cid = channel_id;
    let Some(channel) = relay.run(move |s| s.channel(&cid)).await? else {
        return Err(ApiError::unknown_channel(&req.channel_id));
    };
    for p in participants.iter().chain(std::iter::once(&caller)) {
        if !channel.members.contains(p) {
            return Err(ApiError::not_a_member(format!(
                "{p} is not a member of channel {channel_id}"
            )));
        }
    }
    let record = ExchangeRecord {
        id,
        channel_id,
        created_by: caller.clone(),
        participants: participants.into_iter().collect(),
        terms_digest: Digest::from_hex(&req.terms_digest)?,
        deadline: Timestamp(req.deadline_ms),
        state: ExchangeState::Open,
        released_at: None,
    };
    let (r, now) = (record.clone(), relay.now());
    relay.run(move |s| s.create_exchange(&r, now)).await?;
    Ok((
        StatusCode::CREATED,
        Json(status(&relay, &caller, record).await?),
    ))
}

pub(crate) async fn show(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExchangeStatus>, ApiError> {
    let e = participant_exchange(&relay, &caller, &id).await?;
    Ok(Json(status(&relay, &caller, e).await?))
}

pub(crate) async fn submit(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<SubmitOfferRequest>,
) -> Result<Json<ExchangeStatus>, ApiError> {
    let e = participant_exchange(&relay, &caller, &id).await?;
    let others: BTreeSet<&Handle> = e.participants.iter().filter(|p| **p != caller).collect();
    let mut copies = Vec::new();
    for c in &req.copies {
        let recipient = Handle::new(c.participant.as_str())?;
        if !others.contains(&recipient) {
            return Err(ApiError::invalid_field(format!(
                "{recipient} is not another participant"
            )));
        }
        copies.push(OfferCopy {
            submitter: caller.clone(),
            recipient,
            olm_type: OlmType::from_number(c.olm_type)?,
            ciphertext: b64::decode(&c.ciphertext, "ciphertext")?,
        });
    }
    let named: BTreeSet<&Handle> = copies.iter().map(|c| &c.recipient).collect();
    if named != others || copies.len() != others.len() {
        return Err(ApiError::invalid_field(
            "one sealed copy for each other participant, and only those",
        ));
    }
    let size: u64 = copies.iter().map(|c| c.ciphertext.len() as u64).sum();
    let c = relay.config();
    if size > c.offer_max_bytes {
        return Err(ApiError::limit(format!(
            "the offer's sealed copies are {size} bytes; this relay takes at most {}",
            c.offer_max_bytes
        )));
    }
    relay.need_space().await?;
    let who = caller.clone();
    let held = relay.run(move |s| s.stored_bytes(&who)).await?;
    if held.saturating_add(size) > c.principal_storage_bytes {
        return Err(ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "quota_exceeded",
            format!("{caller} has {held} bytes stored at the relay; this offer would pass its limit of {}", c.principal_storage_bytes),
        ));
    }
    let (eid, now) = (e.id, relay.now());
    let updated = relay
        .run(move |s| s.submit_offer(&eid, &copies, now))
        .await?;
    Ok(Json(status(&relay, &caller, updated).await?))
}

pub(crate) async fn withdraw(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExchangeStatus>, ApiError> {
    let e = participant_exchange(&relay, &caller, &id).await?;
    let (eid, who) = (e.id, caller.clone());
    let updated = relay.run(move |s| s.withdraw_offer(&eid, &who)).await?;
    relay.wake_maintenance();
    Ok(Json(status(&relay, &caller, updated).await?))
}
