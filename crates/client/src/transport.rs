//! The relay's HTTP/JSON API and WebSocket push, as a client calls them.

use std::sync::Arc;
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
use crate::tls::RelayTrust;

/// How long one HTTP request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A logged-in (or not yet) connection to one relay.
#[derive(Clone)]
pub struct RelayClient {
    url: String,
    http: reqwest::Client,
    /// For wss: the same trust as the HTTP client's.
    tls: Option<Arc<rustls::ClientConfig>>,
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
    /// A client for the relay at `url` (e.g. `http://127.0.0.1:8470`),
    /// trusting the platform's roots for https.
    pub fn new(url: &str) -> Result<Self, TransportError> {
        Self::with_trust(url, &RelayTrust::default())
    }

    /// A client for the relay at `url` (`http://` or `https://`) with the
    /// given certificate trust for https and wss.
    pub fn with_trust(url: &str, trust: &RelayTrust) -> Result<Self, TransportError> {
        let url = url.trim_end_matches('/').to_string();
        check_relay_url(&url)?;
        crate::tls::install_ring_default();
        let mut builder = reqwest::Client::builder().timeout(REQUEST_TIMEOUT);
        let mut tls = None;
        if url.starts_with("https://") {
            let config = trust.client_config().map_err(|e| match e {
                TransportError::Tls { detail, .. } => TransportError::Tls {
                    url: url.clone(),
                    detail,
                },
                other => other,
            })?;
            builder = builder.tls_backend_preconfigured(config.clone());
            tls = Some(Arc::new(config));
        }
        let http = builder
            .build()
            .map_err(|e| crate::tls::describe(&url, &e))?;
        Ok(RelayClient {
            url,
            http,
            tls,
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
        let resp = req
            .send()
            .await
            .map_err(|e| crate::tls::describe(&self.url, &e))?;
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

    /// Registers a principal (with the operator's invitation code if the
    /// relay takes registrations by invitation).
    pub async fn register(
        &self,
        handle: &Handle,
        identity: &Identity,
        invite: Option<&str>,
    ) -> Result<PrincipalResponse, TransportError> {
        let k = identity.keys();
        let req = RegisterRequest {
            handle: handle.to_string(),
            curve25519: b64::encode(k.curve25519),
            ed25519: b64::encode(k.ed25519),
            invite: invite.map(str::to_string),
        };
        self.call(reqwest::Method::POST, "/v1/principals", Some(&req))
            .await
    }

    /// Challenge/response login; keeps the token and returns its lifetime
    /// if the relay says it.
    pub async fn login(
        &mut self,
        handle: &Handle,
        identity: &Identity,
    ) -> Result<Option<Duration>, TransportError> {
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
        Ok(l.expires_in_ms
            .map(|ms| Duration::from_millis(ms.max(0) as u64)))
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
        let ws = self.connect_ws(&ws_url, req).await?;
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

impl RelayClient {
    /// Opens the WebSocket: TCP, then TLS with the client's trust for wss.
    async fn connect_ws(
        &self,
        ws_url: &str,
        req: tokio_tungstenite::tungstenite::handshake::client::Request,
    ) -> Result<WebSocket, TransportError> {
        let unreachable = |detail: String| TransportError::Unreachable {
            url: ws_url.to_string(),
            detail,
        };
        let uri = req.uri().clone();
        let host = uri
            .host()
            .ok_or_else(|| unreachable("the URL has no host".into()))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let secure = uri.scheme_str() == Some("wss");
        let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
        let tcp = tokio::time::timeout(
            REQUEST_TIMEOUT,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        .map_err(|_| unreachable("connecting timed out".into()))?
        .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let stream = match (&self.tls, secure) {
            (Some(config), true) => {
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| unreachable(e.to_string()))?;
                let tls = tokio_rustls::TlsConnector::from(config.clone())
                    .connect(name, tcp)
                    .await
                    .map_err(|e| crate::tls::describe(ws_url, &e))?;
                MaybeTls::Tls(Box::new(tls))
            }
            (None, false) => MaybeTls::Plain(tcp),
            _ => {
                return Err(unreachable(
                    "the WebSocket scheme does not match the relay URL's".into(),
                ))
            }
        };
        let (ws, _) = tokio_tungstenite::client_async(req, stream)
            .await
            .map_err(|e| match e {
                tokio_tungstenite::tungstenite::Error::Http(resp) => {
                    let body = resp.body().as_deref().unwrap_or_default();
                    match serde_json::from_slice::<ErrorBody>(body) {
                        Ok(b) => TransportError::Api {
                            status: resp.status().as_u16(),
                            code: b.error.code,
                            message: b.error.message,
                        },
                        Err(_) => {
                            unreachable(format!("the upgrade was answered {}", resp.status()))
                        }
                    }
                }
                other => crate::tls::describe(ws_url, &other),
            })?;
        Ok(ws)
    }
}

type WebSocket = tokio_tungstenite::WebSocketStream<MaybeTls>;

/// A plain or TLS byte stream under the WebSocket.
enum MaybeTls {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for MaybeTls {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for MaybeTls {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            MaybeTls::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            MaybeTls::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Refuses a relay URL that is not https, or plain http to a host other
/// than loopback (tokens and metadata would cross the network in clear),
/// or one with credentials in it.
pub fn check_relay_url(url: &str) -> Result<(), TransportError> {
    let refuse = |detail: &str| {
        Err(TransportError::Unreachable {
            url: url.to_string(),
            detail: detail.to_string(),
        })
    };
    let Ok(parsed) = reqwest::Url::parse(url) else {
        return refuse("not a URL: write it as https://HOST:PORT");
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return refuse("a relay URL carries no user name or password");
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => refuse(
            "plain http to another machine would send tokens and metadata in clear: use https://",
        ),
        _ => refuse("the relay URL must start with https:// (or http:// on loopback)"),
    }
}

/// Push frames from the relay's WebSocket.
pub type PushStream =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<PushFrame, TransportError>> + Send>>;
