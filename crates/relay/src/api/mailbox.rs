//! Mailboxes: fetch from a cursor, ack (delete), and WebSocket push.

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use backchannel_protocol::api::{
    AckRequest, AckResponse, Delivery, EnvelopeJson, KeyStockJson, LastPost, MailboxResponse,
    MeResponse, PushFrame,
};
use backchannel_protocol::Digest;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::error::RecvError;

use crate::app::{ApiJson, Caller, Relay, Session};
use crate::error::ApiError;
use crate::store::StoredEnvelope;

/// Default mailbox page.
pub const PAGE_DEFAULT: usize = 100;
/// Largest mailbox page.
pub const PAGE_MAX: usize = 500;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MailboxQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

/// Cursors are stored as SQLite integers: one past `i64::MAX` names no
/// position, and echoing it back as `next_cursor` would be a lie.
fn cursor(after: u64) -> Result<u64, ApiError> {
    if after > i64::MAX as u64 {
        return Err(ApiError::invalid_field(format!(
            "after must be a cursor from 0 to {}, not {after}",
            i64::MAX
        )));
    }
    Ok(after)
}

fn delivery(s: StoredEnvelope) -> Delivery {
    Delivery {
        cursor: s.cursor,
        received_at_ms: s.received_at.0,
        envelope: EnvelopeJson::from(&s.envelope),
    }
}

pub(crate) async fn fetch(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    query: Result<Query<MailboxQuery>, QueryRejection>,
) -> Result<Json<MailboxResponse>, ApiError> {
    let Query(q) = query.map_err(ApiError::from_query)?;
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if limit == 0 || limit > PAGE_MAX {
        return Err(ApiError::limit(format!(
            "limit must be 1 to {PAGE_MAX}, not {limit}"
        )));
    }
    let after = cursor(q.after)?;
    let (mut page, stock) = relay
        .run(move |s| Ok((s.mailbox(&caller, after, limit + 1)?, s.key_stock(&caller)?)))
        .await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next_cursor = page.last().map_or(after, |d| d.cursor);
    Ok(Json(MailboxResponse {
        deliveries: page.into_iter().map(delivery).collect(),
        next_cursor,
        more,
        key_stock: Some(KeyStockJson {
            one_time_keys: stock.one_time_keys,
            has_fallback_key: stock.has_fallback,
            fallback_claimed: stock.fallback_claimed,
        }),
    }))
}

pub(crate) async fn ack(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<AckRequest>,
) -> Result<Json<AckResponse>, ApiError> {
    let through = req.through;
    let deleted = relay.run(move |s| s.ack(&caller, through)).await?;
    if deleted > 0 {
        // Deleted ciphertext leaves the WAL at the next checkpoint; ask for it now.
        relay.wake_maintenance();
    }
    Ok(Json(AckResponse { deleted }))
}

/// What the relay records of the caller (its acks and its last posts).
pub(crate) async fn me(
    State(relay): State<Relay>,
    Caller(caller): Caller,
) -> Result<Json<MeResponse>, ApiError> {
    let who = caller.clone();
    let record = relay.run(move |s| s.own_record(&who)).await?;
    Ok(Json(MeResponse {
        handle: caller.to_string(),
        acked_through: record.acked_through,
        last_posts: record
            .last_posts
            .into_iter()
            .map(|(c, m, seq_hint)| LastPost {
                channel_id: c.to_hex(),
                message_id: m.to_hex(),
                seq_hint,
            })
            .collect(),
    }))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WsQuery {
    #[serde(default)]
    after: u64,
}

pub(crate) async fn ws(
    State(relay): State<Relay>,
    session: Session,
    query: Result<Query<WsQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(ApiError::from_query)?;
    let after = cursor(q.after)?;
    let upgrade = upgrade
        .map_err(|e| ApiError::bad_request(format!("{e}: connect with a WebSocket client")))?;
    // The client sends nothing but control frames: anything larger is an
    // attack on memory, and closes the socket.
    let max = relay.config().ws_message_max_bytes;
    Ok(upgrade
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| push(relay, session, after, socket))
        .into_response())
}

/// Sends every envelope after `cursor`, then each new one as it is stored.
/// The broadcast is only a wake-up: the mailbox table is the record, so a
/// lagging subscriber rereads it and loses nothing.
async fn push(relay: Relay, session: Session, mut cursor: u64, socket: WebSocket) {
    let who = session.handle;
    let (mut tx, mut rx) = socket.split();
    let mut wake = relay.subscribe();
    let mut stop = relay.shutdown_signal();
    // Closed when the token expires: the client logs in again and resumes
    // from its cursor.
    let lifetime = session.expires.0.saturating_sub(relay.now().0).max(0) as u64;
    let expiry = tokio::time::sleep(std::time::Duration::from_millis(lifetime));
    tokio::pin!(expiry);
    // Pings keep the socket's peer honest: one that stops reading is cut
    // off when a send cannot complete.
    let idle = std::time::Duration::from_millis(relay.config().idle_timeout_ms);
    let mut ping = tokio::time::interval(idle / 2);
    ping.reset();
    loop {
        // A released principal's token is deleted: its lost device must not
        // keep receiving what is sent to the handle's next registration.
        if !still_logged_in(&relay, &session.token).await {
            let close = axum::extract::ws::CloseFrame {
                code: TOKEN_REVOKED_CLOSE,
                reason: "token revoked: log in again".into(),
            };
            let _ = send(&mut tx, Message::Close(Some(close)), idle).await;
            return;
        }
        loop {
            let h = who.clone();
            let page = match relay
                .run(move |s| s.mailbox(&h, cursor, PAGE_DEFAULT))
                .await
            {
                Ok(page) => page,
                Err(e) => {
                    tracing::warn!("push to {who}: {}", e.message);
                    return;
                }
            };
            if page.is_empty() {
                break;
            }
            for d in page {
                cursor = d.cursor;
                let frame = PushFrame::Delivery(delivery(d));
                let Ok(text) = serde_json::to_string(&frame) else {
                    return;
                };
                if !send(&mut tx, Message::Text(text.into()), idle).await {
                    return;
                }
            }
        }
        let woken = async {
            loop {
                match wake.recv().await {
                    Ok(h) if h == who => return true,
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_)) => return true,
                    Err(RecvError::Closed) => return false,
                }
            }
        };
        tokio::select! {
            alive = woken => if !alive { return },
            incoming = rx.next() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            },
            _ = stop.changed() => {
                let _ = send(&mut tx, Message::Close(None), idle).await;
                return;
            }
            _ = &mut expiry => {
                let close = axum::extract::ws::CloseFrame {
                    code: TOKEN_EXPIRED_CLOSE,
                    reason: "token expired: log in again and reconnect".into(),
                };
                let _ = send(&mut tx, Message::Close(Some(close)), idle).await;
                return;
            }
            _ = ping.tick() => {
                if !send(&mut tx, Message::Ping(Vec::new().into()), idle).await {
                    return;
                }
                // Back to the top: the token is checked again.
            }
        }
    }
}

/// The WebSocket close code sent when the token expires (4000–4999 are
/// the application's own).
pub const TOKEN_EXPIRED_CLOSE: u16 = 4001;

/// The WebSocket close code sent when the token no longer stands (the
/// principal was released).
pub const TOKEN_REVOKED_CLOSE: u16 = 4003;

/// Whether the token that opened a socket is still stored (a store error
/// counts as yes: the socket then ends on its own failing read).
async fn still_logged_in(relay: &Relay, token: &Digest) -> bool {
    let token = *token;
    !matches!(relay.run(move |s| s.token(&token)).await, Ok(None))
}

/// Sends one frame; false if the peer is gone or does not read it in time.
async fn send(
    tx: &mut futures_util::stream::SplitSink<WebSocket, Message>,
    m: Message,
    within: std::time::Duration,
) -> bool {
    matches!(tokio::time::timeout(within, tx.send(m)).await, Ok(Ok(())))
}
