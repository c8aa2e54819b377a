//! Channels (routing records) and posting messages into them.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use backchannel_protocol::api::{ChannelResponse, CreateChannelRequest, PostRequest, PostResponse};
use backchannel_protocol::payload::MEMBERS_MAX;
use backchannel_protocol::{ChannelId, Envelope, Handle};

use crate::app::{ApiJson, ApiPath, Bearer, Caller, Relay};
use crate::error::ApiError;
use crate::rate::ClientIp;
use crate::store::{ChannelRecord, Quota, RateDecision, StoreError};

/// Most envelopes in one post: one per other member.
pub const ENVELOPES_PER_POST_MAX: usize = MEMBERS_MAX;

fn channel_json(c: &ChannelRecord) -> ChannelResponse {
    ChannelResponse {
        channel_id: c.id.to_hex(),
        members: c.members.iter().map(Handle::to_string).collect(),
        created_by: c.created_by.to_string(),
        created_at_ms: c.created_at.0,
    }
}

pub(crate) async fn create(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<CreateChannelRequest>,
) -> Result<(StatusCode, Json<ChannelResponse>), ApiError> {
    let id = ChannelId::from_hex(&req.channel_id)?;
    let c = relay.config();
    relay
        .limit(&[
            (
                format!("channels/principal:{caller}"),
                c.channels_per_principal,
            ),
            (format!("channels/ip:{ip}"), c.channels_per_ip),
        ])
        .await?;
    relay.need_space().await?;
    let members = routing_members(&relay, &req.members, &caller).await?;
    let record = ChannelRecord {
        id,
        members: members.into_iter().collect(),
        created_by: caller,
        created_at: relay.now(),
    };
    let r = record.clone();
    relay.run(move |s| s.create_channel(&r)).await?;
    Ok((StatusCode::CREATED, Json(channel_json(&record))))
}

/// A channel's routing members, checked: distinct handles, 2 to 64 of
/// them, the caller among them, every one registered.
async fn routing_members(
    relay: &Relay,
    given: &[String],
    caller: &Handle,
) -> Result<BTreeSet<Handle>, ApiError> {
    let members = given
        .iter()
        .map(|m| Handle::new(m.as_str()))
        .collect::<Result<BTreeSet<_>, _>>()?;
    if members.len() != given.len() {
        return Err(ApiError::invalid_field("a member is listed twice"));
    }
    let max = relay.config().members_per_channel.min(MEMBERS_MAX);
    if !(2..=max).contains(&members.len()) {
        return Err(ApiError::limit(format!(
            "a channel on this relay has 2 to {max} members, not {}",
            members.len()
        )));
    }
    if !members.contains(caller) {
        return Err(ApiError::invalid_field(format!(
            "the creator ({caller}) must be one of the members"
        )));
    }
    for m in &members {
        let h = m.clone();
        if relay.run(move |s| s.principal(&h)).await?.is_none() {
            return Err(ApiError::unknown_principal(m.as_str()));
        }
    }
    Ok(members)
}

/// The channel, if the caller is a member.
async fn member_channel(
    relay: &Relay,
    caller: &Handle,
    id: &str,
) -> Result<ChannelRecord, ApiError> {
    let cid = ChannelId::from_hex(id)?;
    let Some(channel) = relay.run(move |s| s.channel(&cid)).await? else {
        return Err(ApiError::unknown_channel(id));
    };
    if !channel.members.contains(caller) {
        return Err(ApiError::not_a_member(format!(
            "{caller} is not a member of channel {id}"
        )));
    }
    Ok(channel)
}

pub(crate) async fn show(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ChannelResponse>, ApiError> {
    Ok(Json(channel_json(
        &member_channel(&relay, &caller, &id).await?,
    )))
}

pub(crate) async fn post_message(
    State(relay): State<Relay>,
    bearer: Bearer,
    ClientIp(ip): ClientIp,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PostRequest>,
) -> Result<(StatusCode, Json<PostResponse>), ApiError> {
    let c = relay.config();
    let by_ip = (format!("posts/ip:{ip}"), c.posts_per_ip);
    let now = relay.now();
    relay.refuse_known_full(std::slice::from_ref(&by_ip), now)?;
    relay.need_space().await?;
    let quota = Quota {
        mailbox_envelopes: c.mailbox_max_envelopes,
        mailbox_bytes: c.mailbox_max_bytes,
        sender_share_percent: c.sender_share_percent,
        sender_storage_bytes: c.principal_storage_bytes,
    };
    let per_principal = c.posts_per_principal;
    let cid = ChannelId::from_hex(&id)?;
    let envelopes = decoded(&req);
    let gate = relay.clone();
    // One trip to the store: the caller's token, the channel's routing,
    // then the post and its rate counts in one write. A refused post is
    // still counted.
    let outcome = relay
        .posting(move |s| {
            let sender = match bearer.session(s, now)? {
                Ok(session) => session.handle,
                Err(unknown) => return Ok(Err(unknown)),
            };
            let counts = [(format!("posts/principal:{sender}"), per_principal), by_ip];
            if let Err(limited) = gate.refuse_known_full(&counts, now) {
                return Ok(Err(limited));
            }
            let routed = s
                .channel(&cid)?
                .ok_or_else(|| ApiError::unknown_channel(&id))
                .and_then(|channel| routed_envelopes(&channel, &sender, envelopes));
            match routed {
                Ok((envelopes, recipients)) => s
                    .post_counted(&envelopes, now, &quota, &counts)
                    .map(|stored| Ok((envelopes[0].message_id, recipients, stored))),
                Err(refused) => {
                    for (bucket, rate) in &counts {
                        if let RateDecision::Limited { until } = s.hit(bucket, *rate, now)? {
                            return Err(StoreError::RateLimited {
                                bucket: bucket.clone(),
                                until,
                            });
                        }
                    }
                    Ok(Err(refused))
                }
            }
        })
        .await?;
    let (message_id, recipients, stored) = outcome?;
    for s in stored {
        relay.notify_recipient(s.envelope.recipient);
    }
    Ok((
        StatusCode::CREATED,
        Json(PostResponse {
            message_id: message_id.to_hex(),
            recipients: recipients.iter().map(Handle::to_string).collect(),
        }),
    ))
}

/// A post's envelopes decoded (off the store's writer, which then only
/// checks them against the routing): at least one, at most one per other
/// member.
fn decoded(req: &PostRequest) -> Result<Vec<Envelope>, ApiError> {
    if req.envelopes.is_empty() {
        return Err(ApiError::invalid_field(
            "a post carries at least one envelope",
        ));
    }
    if req.envelopes.len() > ENVELOPES_PER_POST_MAX {
        return Err(ApiError::limit(format!(
            "{} envelopes in one post; at most {ENVELOPES_PER_POST_MAX}",
            req.envelopes.len()
        )));
    }
    req.envelopes
        .iter()
        .map(Envelope::try_from)
        .collect::<Result<Vec<_>, _>>()
        .map_err(ApiError::from)
}

/// The envelopes of a post by `caller` in `channel`, checked against its
/// routing: one message id, this channel, the caller as sender, each
/// other member at most once. Also the recipients, sorted.
fn routed_envelopes(
    channel: &ChannelRecord,
    caller: &Handle,
    decoded: Result<Vec<Envelope>, ApiError>,
) -> Result<(Vec<Envelope>, BTreeSet<Handle>), ApiError> {
    let id = channel.id.to_hex();
    if !channel.members.contains(caller) {
        return Err(ApiError::not_a_member(format!(
            "{caller} is not a member of channel {id}"
        )));
    }
    let envelopes = decoded?;
    let message_id = envelopes[0].message_id;
    let mut recipients = BTreeSet::new();
    for e in &envelopes {
        if e.message_id != message_id {
            return Err(ApiError::invalid_field(
                "one post carries the copies of one message id",
            ));
        }
        if e.channel_id != channel.id {
            return Err(ApiError::invalid_field(
                "an envelope's channel_id differs from the path's",
            ));
        }
        if e.sender != *caller {
            return Err(ApiError::invalid_field(format!(
                "an envelope's sender is {}, but you are logged in as {caller}",
                e.sender
            )));
        }
        if e.recipient == *caller {
            return Err(ApiError::invalid_field("a sender does not post to itself"));
        }
        if !channel.members.contains(&e.recipient) {
            return Err(ApiError::not_a_member(format!(
                "recipient {} is not a member of channel {id}",
                e.recipient
            )));
        }
        if !recipients.insert(e.recipient.clone()) {
            return Err(ApiError::invalid_field(format!(
                "recipient {} appears twice",
                e.recipient
            )));
        }
    }
    Ok((envelopes, recipients))
}

/// `PUT /v1/channels/{channel_id}/members`: the creator replaces the
/// routing members (after proposing an amendment end to end).
pub(crate) async fn set_members(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<backchannel_protocol::api::SetMembersRequest>,
) -> Result<Json<ChannelResponse>, ApiError> {
    let channel = member_channel(&relay, &caller, &id).await?;
    if channel.created_by != caller {
        return Err(ApiError::not_a_member(format!(
            "only the channel's creator ({}) changes its routing members",
            channel.created_by
        )));
    }
    let members = routing_members(&relay, &req.members, &caller).await?;
    let list: Vec<Handle> = members.into_iter().collect();
    let cid = channel.id;
    let l = list.clone();
    relay.run(move |s| s.set_channel_members(&cid, &l)).await?;
    Ok(Json(channel_json(&ChannelRecord {
        members: list,
        ..channel
    })))
}
