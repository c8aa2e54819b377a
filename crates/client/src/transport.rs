//! The relay's HTTP/JSON API and WebSocket push, as a client calls them.

use std::time::Duration;

use backchannel_protocol::api::{
    AckRequest, AckResponse, ChallengeRequest, ChallengeResponse, ChannelResponse, ClaimRequest,
    ClaimResponse, CreateChannelRequest, EnvelopeJson, ErrorBody, KeyJson, LoginRequest,
    LoginResponse, MailboxResponse, PostRequest, PostResponse, PrincipalResponse, PushFrame,
    RegisterRequest, UploadKeysRequest, UploadKeysResponse,
};
use backchannel_protocol::{b64, ChannelId, Handle, Identity, SignedKey};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::error::TransportError;

/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A logged-in (or not yet) connection to one relay.
#[derive(Clone)]
pub struct RelayClient {
    url: String,
    http: reqwest::Client,
    token: Option<String>,
}

impl std::fmt::Debug for RelayClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is a secret: never shown.
        f.debug_struct("RelayClient")
            .field("url", &self.url)
            .field("logged_in", &self.token.is_some())
            .finish()
    }
}

impl RelayClient {
    /// A client for the relay at `url` (e.g. `http://127.0.0.1:8470`).
    pub fn new(url: &str) -> Result<Self, TransportError> {
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|e| TransportError::Unreachable {
                url: url.into(),
                detail: e.to_string(),
            })?;
        Ok(RelayClient {
            url: url.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    /// The relay's base URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, TransportError> {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            let bytes = serde_json::to_vec(b).map_err(|e| TransportError::Decode(e.to_string()))?;
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(bytes);
        }
        let resp = req.send().await.map_err(|e| TransportError::Unreachable {
            url: self.url.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| TransportError::Unreachable {
                url: self.url.clone(),
                detail: e.to_string(),
            })?;
        if !status.is_success() {
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(e) => TransportError::Api {
                    status: status.as_u16(),
                    code: e.error.code,
                    message: e.error.message,
                },
                Err(_) => TransportError::Api {
                    status: status.as_u16(),
                    code: "unexpected".into(),
                    message: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| TransportError::Decode(format!("{path}: {e}")))
    }

    /// Registers a principal.
    pub async fn register(
        &self,
        handle: &Handle,
        identity: &Identity,
    ) -> Result<PrincipalResponse, TransportError> {
        let k = identity.keys();
        let req = RegisterRequest {
            handle: handle.to_string(),
            curve25519: b64::encode(k.curve25519),
            ed25519: b64::encode(k.ed25519),
        };
        self.call(reqwest::Method::POST, "/v1/principals", Some(&req))
            .await
    }

    /// Challenge/response login; keeps the token.
    pub async fn login(
        &mut self,
        handle: &Handle,
        identity: &Identity,
    ) -> Result<(), TransportError> {
        let c: ChallengeResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/login/challenge",
                Some(&ChallengeRequest {
                    handle: handle.to_string(),
                }),
            )
            .await?;
        let challenge = b64::decode(&c.challenge, "challenge")
            .map_err(|e| TransportError::Decode(e.to_string()))?;
        // Signs only a 32-byte challenge, behind the login prefix.
        let signature = identity
            .sign_login_challenge(&challenge)
            .map_err(|e| TransportError::Decode(e.to_string()))?;
        let l: LoginResponse = self
            .call(
                reqwest::Method::POST,
                "/v1/login",
                Some(&LoginRequest {
                    handle: handle.to_string(),
                    challenge: c.challenge,
                    signature: b64::encode(signature),
                }),
            )
            .await?;
        self.token = Some(l.token);
        Ok(())
    }

    /// Publishes keys; with `replace`, the relay forgets the unclaimed
    /// one-time keys it held first.
    pub async fn upload_keys(
        &self,
        one_time: &[SignedKey],
        fallback: Option<&SignedKey>,
        replace: bool,
    ) -> Result<UploadKeysResponse, TransportError> {
        let req = UploadKeysRequest {
            one_time_keys: one_time.iter().map(KeyJson::from_signed).collect(),
            fallback_key: fallback.map(KeyJson::from_signed),
            replace,
        };
        self.call(reqwest::Method::POST, "/v1/keys", Some(&req))
            .await
    }

    /// Claims one of `handle`'s keys.
    pub async fn claim(&self, handle: &Handle) -> Result<ClaimResponse, TransportError> {
        self.call(
            reqwest::Method::POST,
            "/v1/keys/claim",
            Some(&ClaimRequest {
                handle: handle.to_string(),
            }),
        )
        .await
    }

    /// A principal's public record.
    pub async fn principal(&self, handle: &Handle) -> Result<PrincipalResponse, TransportError> {
        self.call::<(), _>(
            reqwest::Method::GET,
            &format!("/v1/principals/{handle}"),
            None,
        )
        .await
    }

    /// Creates a channel's routing record.
    pub async fn create_channel(
        &self,
        id: ChannelId,
        members: &[Handle],
    ) -> Result<ChannelResponse, TransportError> {
        let req = CreateChannelRequest {
            channel_id: id.to_hex(),
            members: members.iter().map(Handle::to_string).collect(),
        };
        self.call(reqwest::Method::POST, "/v1/channels", Some(&req))
            .await
    }

    /// Replaces a channel's routing members (its creator only).
    pub async fn set_members(
        &self,
        id: ChannelId,
        members: &[Handle],
    ) -> Result<ChannelResponse, TransportError> {
        let req = backchannel_protocol::api::SetMembersRequest {
            members: members.iter().map(Handle::to_string).collect(),
        };
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/channels/{id}/members"),
            Some(&req),
        )
        .await
    }

    /// Creates an escrowed exchange.
    pub async fn create_exchange(
        &self,
        req: &backchannel_protocol::api::CreateExchangeRequest,
    ) -> Result<backchannel_protocol::api::ExchangeStatus, TransportError> {
        self.call(reqwest::Method::POST, "/v1/exchanges", Some(req))
            .await
    }

    /// An exchange's status.
    pub async fn exchange(
        &self,
        id: backchannel_protocol::ExchangeId,
    ) -> Result<backchannel_protocol::api::ExchangeStatus, TransportError> {
        self.call::<(), _>(reqwest::Method::GET, &format!("/v1/exchanges/{id}"), None)
            .await
    }

    /// An exchange's status, as the bytes the relay answered.
    pub async fn exchange_bytes(
        &self,
        id: backchannel_protocol::ExchangeId,
    ) -> Result<Vec<u8>, TransportError> {
        let v: serde_json::Value = self
            .call::<(), _>(reqwest::Method::GET, &format!("/v1/exchanges/{id}"), None)
            .await?;
        serde_json::to_vec(&v).map_err(|e| TransportError::Decode(e.to_string()))
    }

    /// Submits this member's sealed copies.
    pub async fn submit_offer(
        &self,
        id: backchannel_protocol::ExchangeId,
        copies: Vec<backchannel_protocol::api::SealedCopy>,
    ) -> Result<backchannel_protocol::api::ExchangeStatus, TransportError> {
        let req = backchannel_protocol::api::SubmitOfferRequest { copies };
        self.call(
            reqwest::Method::PUT,
            &format!("/v1/exchanges/{id}/offer"),
            Some(&req),
        )
        .await
    }

    /// Withdraws this member's offer.
    pub async fn withdraw_offer(
        &self,
        id: backchannel_protocol::ExchangeId,
    ) -> Result<backchannel_protocol::api::ExchangeStatus, TransportError> {
        self.call::<(), _>(
            reqwest::Method::DELETE,
            &format!("/v1/exchanges/{id}/offer"),
            None,
        )
        .await
    }

    /// What the relay records of this principal (its acks, its last posts).
    pub async fn me(&self) -> Result<backchannel_protocol::api::MeResponse, TransportError> {
        self.call::<(), _>(reqwest::Method::GET, "/v1/me", None)
            .await
    }

    /// A channel's routing record.
    pub async fn channel(&self, id: ChannelId) -> Result<ChannelResponse, TransportError> {
        self.call::<(), _>(reqwest::Method::GET, &format!("/v1/channels/{id}"), None)
            .await
    }

    /// Posts the copies of one message.
    pub async fn post(
        &self,
        channel: &str,
        envelopes: Vec<EnvelopeJson>,
    ) -> Result<PostResponse, TransportError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/channels/{channel}/messages"),
            Some(&PostRequest { envelopes }),
        )
        .await
    }

    /// A page of the mailbox after `after`.
    pub async fn mailbox(
        &self,
        after: u64,
        limit: usize,
    ) -> Result<MailboxResponse, TransportError> {
        self.call::<(), _>(
            reqwest::Method::GET,
            &format!("/v1/mailbox?after={after}&limit={limit}"),
            None,
        )
        .await
    }

    /// Deletes mailbox envelopes up to `through`.
    pub async fn ack(&self, through: u64) -> Result<AckResponse, TransportError> {
        self.call(
            reqwest::Method::POST,
            "/v1/mailbox/ack",
            Some(&AckRequest { through }),
        )
        .await
    }

    /// Opens the push stream after `after`. Each item is a wake-up: the
    /// mailbox, read in order, stays the record.
    pub async fn push_stream(&self, after: u64) -> Result<PushStream, TransportError> {
        let ws_url = format!("{}/v1/ws?after={after}", self.url.replacen("http", "ws", 1));
        let mut req = ws_url
            .as_str()
            .into_client_request()
            .map_err(|e| TransportError::Decode(e.to_string()))?;
        if let Some(t) = &self.token {
            let value = format!("Bearer {t}")
                .parse()
                .map_err(|_| TransportError::Decode("token is not a header value".into()))?;
            req.headers_mut().insert("authorization", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(req).await.map_err(|e| {
            TransportError::Unreachable {
                url: ws_url.clone(),
                detail: e.to_string(),
            }
        })?;
        Ok(Box::pin(ws.filter_map(|m| async move {
            match m {
                Ok(tokio_tungstenite::tungstenite::Message::Text(t)) => Some(
                    serde_json::from_str::<PushFrame>(&t)
                        .map_err(|e| TransportError::Decode(e.to_string())),
                ),
                Ok(_) => None,
                Err(e) => Some(Err(TransportError::Unreachable {
                    url: "websocket".into(),
                    detail: e.to_string(),
                })),
            }
        })))
    }
}

/// Push frames from the relay's WebSocket.
pub type PushStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<PushFrame, TransportError>> + Send>>;
