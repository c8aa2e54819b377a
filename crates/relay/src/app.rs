//! The relay's state, router and request extractors.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use backchannel_protocol::{Digest, Handle, Timestamp};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch, Notify};

use crate::api;
use crate::config::RelayConfig;
use crate::error::ApiError;
use crate::metrics::{Gauges, Metrics};
use crate::server::Gate;
use crate::store::{Posting, PostingWork, RelayStore, StoreError};

/// Where the relay reads the time: the system clock, or a test's clock.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The system clock in milliseconds.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Timestamp(ms)
    })
}

/// The relay: storage, configuration, clock and push fan-out. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn RelayStore>,
    config: RelayConfig,
    metrics: Metrics,
    /// Open connections, once a listener serves (for `/metrics`).
    gate: std::sync::OnceLock<Arc<Gate>>,
    /// Rate windows known to be full, so a flood is refused without a write.
    blocked: crate::rate::Blocked,
    /// Proxies whose `X-Forwarded-For` is believed.
    trusted: std::sync::OnceLock<Vec<std::net::IpAddr>>,
    /// Whether each request is logged (a served relay; not the embedded demo's).
    log_requests: std::sync::atomic::AtomicBool,
    /// Whether posts are refused for lack of disk, and when that was judged.
    full: std::sync::Mutex<(bool, Option<std::time::Instant>, Option<u64>)>,
    clock: Clock,
    /// Recipients with new envelopes; WebSocket tasks filter for their own.
    push: broadcast::Sender<Handle>,
    /// Wakes the maintenance task after deletes, so they reach the files soon.
    maintenance: Notify,
    shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay on `store` with the default configuration and the system clock.
    pub fn new(store: impl RelayStore) -> Self {
        Self::with(Arc::new(store), RelayConfig::default(), system_clock())
    }

    /// A relay with every part chosen.
    pub fn with(store: Arc<dyn RelayStore>, config: RelayConfig, clock: Clock) -> Self {
        let (push, _) = broadcast::channel(1024);
        let hint = push.clone();
        // Posts stored by other instances on a shared database are pushed
        // here too (no subscriber: nobody here to tell).
        store.follow_other_instances(Box::new(move |recipient| {
            let _ = hint.send(recipient);
        }));
        let (shutdown, _) = watch::channel(false);
        Relay {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                metrics: Metrics::default(),
                gate: std::sync::OnceLock::new(),
                blocked: crate::rate::Blocked::default(),
                trusted: std::sync::OnceLock::new(),
                full: std::sync::Mutex::new((false, None, None)),
                log_requests: std::sync::atomic::AtomicBool::new(false),
                push,
                maintenance: Notify::new(),
                shutdown,
            }),
        }
    }

    /// The HTTP/JSON and WebSocket API under `/v1`.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/v1/health", get(api::health))
            .route("/v1/ready", get(api::ready))
            .route("/v1/openapi.json", get(api::openapi))
            .route("/v1/principals", post(api::accounts::register))
            .route("/v1/principals/{handle}", get(api::accounts::principal))
            .route("/v1/login/challenge", post(api::accounts::challenge))
            .route("/v1/login", post(api::accounts::login))
            .route("/v1/keys", post(api::keys::upload))
            .route("/v1/keys/claim", post(api::keys::claim))
            .route("/v1/channels", post(api::channels::create))
            .route("/v1/channels/{channel_id}", get(api::channels::show))
            .route(
                "/v1/channels/{channel_id}/members",
                put(api::channels::set_members),
            )
            .route(
                "/v1/channels/{channel_id}/messages",
                post(api::channels::post_message),
            )
            .route("/v1/exchanges", post(api::escrow::create))
            .route("/v1/exchanges/{exchange_id}", get(api::escrow::show))
            .route(
                "/v1/exchanges/{exchange_id}/offer",
                put(api::escrow::submit).delete(api::escrow::withdraw),
            )
            .route("/v1/mailbox", get(api::mailbox::fetch))
            .route("/v1/mailbox/ack", post(api::mailbox::ack))
            .route("/v1/me", get(api::mailbox::me))
            .route("/v1/ws", get(api::mailbox::ws))
            .fallback(api::not_found)
            .method_not_allowed_fallback(api::method_not_allowed)
            .layer(axum::extract::DefaultBodyLimit::max(
                self.config().body_max_bytes,
            ))
            .layer(axum::middleware::from_fn_with_state(
                self.clone(),
                crate::observe::observe,
            ))
            .with_state(self.clone())
    }

    /// The store (for tools and tests that inspect it).
    pub fn store(&self) -> &Arc<dyn RelayStore> {
        &self.inner.store
    }

    /// The settings in force.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// The operator's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn blocked(&self) -> &crate::rate::Blocked {
        &self.inner.blocked
    }

    pub(crate) fn set_gate(&self, gate: Arc<Gate>, trusted: Vec<std::net::IpAddr>) {
        let _ = self.inner.gate.set(gate);
        let _ = self.inner.trusted.set(trusted);
    }

    /// Logs one line per request (method, route, status, latency,
    /// principal) at the `info` level.
    pub fn log_requests(&self, on: bool) {
        self.inner
            .log_requests
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn logs_requests(&self) -> bool {
        self.inner
            .log_requests
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        self.inner.trusted.get().map_or(&[], Vec::as_slice)
    }

    /// Whether free space is under the reserve: judged at most every
    /// 100 ms while space is plentiful, at every call once it is within
    /// twice the reserve; an actual full disk counts at once.
    pub async fn storage_full(&self) -> bool {
        const RECHECK: std::time::Duration = std::time::Duration::from_millis(100);
        let reserve = self.config().disk_reserve_bytes;
        {
            let full = self.inner.full.lock().unwrap_or_else(|p| p.into_inner());
            let roomy = full.2.is_some_and(|f| f / 2 > reserve);
            if roomy && full.1.is_some_and(|t| t.elapsed() < RECHECK) {
                return full.0;
            }
        }
        let free = self.run(|s| s.free_space()).await.ok().flatten();
        let now_full = free.is_some_and(|f| f < reserve);
        let mut full = self.inner.full.lock().unwrap_or_else(|p| p.into_inner());
        if now_full && !full.0 {
            tracing::error!(
                free_bytes = free.unwrap_or(0),
                reserve_bytes = reserve,
                "storage is below the reserve: new posts are refused until space is freed"
            );
        }
        *full = (now_full, Some(std::time::Instant::now()), free);
        now_full
    }

    /// Refuses new data while storage is below the reserve.
    pub(crate) async fn need_space(&self) -> Result<(), ApiError> {
        if self.storage_full().await {
            self.metrics().rejected("storage_full");
            return Err(ApiError::storage_full());
        }
        Ok(())
    }

    /// Notes that a write failed for lack of space, so the next ones are
    /// refused before they reach the database.
    pub(crate) fn note_full(&self) {
        let mut full = self.inner.full.lock().unwrap_or_else(|p| p.into_inner());
        *full = (true, Some(std::time::Instant::now()), Some(0));
    }

    /// The Prometheus exposition, with gauges read now.
    pub async fn render_metrics(&self) -> String {
        let usage = self.run(|s| s.usage()).await.unwrap_or_default();
        let full = self.storage_full().await;
        let writes = self.inner.store.write_counts();
        self.metrics().render(Gauges {
            connections: self.inner.gate.get().map_or(0, |g| g.open()),
            mailbox_envelopes: usage.envelopes,
            mailbox_depth_max: usage.deepest_mailbox,
            storage_full: full,
            writes,
        })
    }

    pub(crate) fn now(&self) -> Timestamp {
        (self.inner.clock)()
    }

    /// Runs `f` on the blocking pool: SQLite calls fsync and must not stall
    /// the async workers.
    pub(crate) async fn run<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn RelayStore) -> Result<T, StoreError> + Send + 'static,
    {
        let store = self.inner.store.clone();
        let result = tokio::task::spawn_blocking(move || f(&*store))
            .await
            .map_err(|e| ApiError::internal("blocking task", e))?;
        self.settle(result)
    }

    /// Runs `f` where the store makes its writes when it has such a place
    /// (SQLite's writer thread: no blocking thread waits on it), else on
    /// the blocking pool; answered once what `f` wrote is durable.
    pub(crate) async fn posting<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Posting) -> Result<T, StoreError> + Send + 'static,
    {
        let work: PostingWork =
            Box::new(move |p| f(p).map(|t| Box::new(t) as Box<dyn std::any::Any + Send>));
        let boxed = match self.inner.store.on_writer(work) {
            Ok(answer) => self.settle(
                answer
                    .await
                    .unwrap_or_else(|_| Err(StoreError::writer_stopped())),
            )?,
            Err(work) => self.run(move |s| work(s)).await?,
        };
        boxed
            .downcast::<T>()
            .map(|t| *t)
            .map_err(|_| ApiError::internal("store", "a post's answer came back of another type"))
    }

    /// A store's answer as the API's: a full disk and a full rate window
    /// are noted, so later requests are refused before the store.
    fn settle<T>(&self, result: Result<T, StoreError>) -> Result<T, ApiError> {
        match result {
            Err(StoreError::Full) => {
                self.note_full();
                Err(ApiError::storage_full())
            }
            Err(StoreError::RateLimited { bucket, until }) => {
                let now = self.now();
                self.blocked().note(bucket.clone(), until, now);
                Err(self.limited(&bucket, until, now))
            }
            other => other.map_err(ApiError::from),
        }
    }

    pub(crate) fn notify_recipient(&self, recipient: Handle) {
        // No subscriber is fine: nobody is connected to be told.
        let _ = self.inner.push.send(recipient);
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Handle> {
        self.inner.push.subscribe()
    }

    pub(crate) fn wake_maintenance(&self) {
        self.inner.maintenance.notify_one();
    }

    pub(crate) fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.inner.shutdown.subscribe()
    }

    /// Tells WebSocket tasks and the maintenance task to stop.
    pub fn begin_shutdown(&self) {
        let _ = self.inner.shutdown.send(true);
    }

    /// Purges expired credentials and checkpoints the database, every
    /// `MAINTENANCE_INTERVAL` or sooner after deletes, until shutdown.
    pub(crate) async fn maintain(self) {
        let mut stop = self.shutdown_signal();
        loop {
            tokio::select! {
                _ = tokio::time::sleep(crate::MAINTENANCE_INTERVAL) => {}
                _ = self.inner.maintenance.notified() => {}
                _ = stop.changed() => return,
            }
            let now = self.now();
            let unfetched_before =
                Timestamp(now.0.saturating_sub(self.config().unfetched_retention_ms));
            // Expired exchanges lose their sealed offers; the checkpoint then
            // removes them (and acked envelopes) from the WAL too.
            // Each step on its own: a purge failing on a full disk must not
            // keep offers from being destroyed or the WAL from shrinking.
            let purged = self
                .run(move |s| s.purge_expired(now, unfetched_before))
                .await;
            let destroyed = self.run(move |s| s.destroy_expired(now)).await;
            let checkpointed = self.run(|s| s.checkpoint()).await;
            for (step, e) in [
                ("purge", purged.err()),
                ("escrow destruction", destroyed.err()),
                ("checkpoint", checkpointed.err()),
            ] {
                if let Some(e) = e {
                    tracing::warn!("maintenance ({step}): {} ({})", e.message, e.code);
                }
            }
        }
    }
}

/// The logged-in principal behind `Authorization: Bearer <token>`, and
/// when its token expires (an open WebSocket is closed then).
#[derive(Debug, Clone)]
pub struct Session {
    /// Who.
    pub handle: Handle,
    /// When the token expires.
    pub expires: Timestamp,
    /// The token's hash, to see later whether it still stands (a release
    /// deletes it).
    pub token: Digest,
}

impl FromRequestParts<Relay> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, ApiError> {
        let bearer = Bearer::from_request_parts(parts, relay).await?;
        let now = relay.now();
        relay.run(move |s| bearer.session(s, now)).await?
    }
}

/// The token of `Authorization: Bearer <token>`, hashed and not yet
/// looked up: a handler that goes to the store anyway looks it up on the
/// same trip (one hop to a blocking thread fewer).
#[derive(Debug, Clone)]
pub struct Bearer {
    hash: Digest,
    /// Where the request's log line learns who made it.
    seen: Option<crate::observe::Principal>,
}

impl Bearer {
    /// The session this token opens, read from `s`: `Ok(Err(_))` when the
    /// token is unknown or expired at `now`.
    pub(crate) fn session(
        &self,
        s: &dyn Posting,
        now: Timestamp,
    ) -> Result<Result<Session, ApiError>, StoreError> {
        Ok(match s.token(&self.hash)? {
            None => Err(ApiError::unauthorized("unknown token: log in again")),
            Some((_, expires)) if expires <= now => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "token_expired",
                "the token has expired: log in again",
            )),
            Some((handle, expires)) => {
                if let Some(seen) = &self.seen {
                    seen.set(&handle);
                }
                Ok(Session {
                    handle,
                    expires,
                    token: self.hash,
                })
            }
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Bearer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(value) = parts.headers.get(AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "missing `Authorization: Bearer <token>`: log in with POST /v1/login first",
            ));
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::unauthorized("the Authorization header must be `Bearer <token>`")
            })?;
        Ok(Bearer {
            hash: Digest::of(&[token.trim().as_bytes()]),
            seen: parts.extensions.get::<crate::observe::Principal>().cloned(),
        })
    }
}

/// The authenticated principal behind `Authorization: Bearer <token>`.
#[derive(Debug, Clone)]
pub struct Caller(pub Handle);

impl FromRequestParts<Relay> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, relay: &Relay) -> Result<Self, ApiError> {
        Session::from_request_parts(parts, relay)
            .await
            .map(|s| Caller(s.handle))
    }
}

/// `Json<T>` whose rejections are the API's own JSON errors.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.split(';')
                    .next()
                    .is_some_and(|m| m.trim() == "application/json")
            });
        if !json {
            return Err(ApiError::unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|r| match r.status() {
                StatusCode::PAYLOAD_TOO_LARGE => ApiError::too_large(),
                _ => ApiError::bad_request(r.body_text()),
            })?;
        // Every request body is one object: serde would also take a
        // struct as an array of its fields.
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                "the body must be one JSON object",
            ));
        }
        match Json::<T>::from_bytes(&bytes) {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(ApiError::from_json(rejection)),
        }
    }
}

/// `Path<T>` whose rejections are the API's own JSON errors.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(rejection) => Err(ApiError::invalid_field(rejection.body_text())),
        }
    }
}
