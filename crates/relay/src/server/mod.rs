//! The listener: admission by connection counts, TLS, hyper's HTTP/1.1 with
//! a header-read timeout and a bounded head, an idle timeout, and a
//! graceful stop that lets requests in flight finish.
//!
//! ```text
//! accept ─→ Gate (total, per address) ─→ [TLS, under the header timeout]
//!        ─→ ConnIo (slot, activity, JSON for hyper's own errors) ─→ hyper ─→ router
//! ```

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::app::Relay;

mod gate;
mod io;
mod tls;

pub(crate) use gate::Gate;
pub use tls::{ring_provider, LoopbackCa, TlsError, TlsFiles};

/// The TCP peer of a request (before any `X-Forwarded-For`).
#[derive(Clone, Copy, Debug)]
pub struct Peer(pub SocketAddr);

/// How the listener serves: TLS or plain, and which proxies are trusted.
#[derive(Clone, Debug, Default)]
pub struct ServeOptions {
    /// Serve TLS with these files; `None` serves plain HTTP.
    pub tls: Option<Arc<TlsFiles>>,
    /// Addresses whose `X-Forwarded-For` is believed, and which are exempt
    /// from the per-address connection limit.
    pub trusted_proxies: Vec<IpAddr>,
}

/// How long a graceful stop waits for requests in flight.
const DRAIN_MAX: Duration = Duration::from_secs(30);

/// Serves `relay` in plain HTTP on `listener` until `shutdown` completes
/// (see [`serve_with`]).
pub async fn serve(
    listener: TcpListener,
    relay: Relay,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve_with(listener, relay, ServeOptions::default(), shutdown).await
}

/// Serves `relay` on `listener` until `shutdown` completes; then stops
/// accepting, closes WebSockets, lets requests in flight finish (at most
/// 30 s), and stops the maintenance task.
pub async fn serve_with(
    listener: TcpListener,
    relay: Relay,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = relay.config().clone();
    let gate = Gate::new(
        config.max_connections,
        config.max_connections_per_ip,
        options.trusted_proxies.clone(),
    );
    relay.set_gate(gate.clone(), options.trusted_proxies.clone());
    let maintenance = tokio::spawn(relay.clone().maintain());
    let ctx = Arc::new(Ctx {
        router: relay.router(),
        relay: relay.clone(),
        tls: options.tls,
        header_timeout: Duration::from_millis(config.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(config.idle_timeout_ms),
        head_max: config.header_max_bytes.max(8192),
    });
    let (stop_conns, conns_stopped) = watch::channel(false);
    let mut conns = JoinSet::new();
    let mut refusal_log = RateLimitedLog::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match gate.admit(crate::rate::address_key(peer.ip())) {
                    Ok(slot) => {
                        let ctx = ctx.clone();
                        let stop = conns_stopped.clone();
                        conns.spawn(async move {
                            let activity = io::Activity::new();
                            ctx.connection(stream, peer, slot, activity, stop).await;
                        });
                    }
                    Err(refusal) => {
                        relay.metrics().rejected(refusal.code());
                        if refusal_log.due() {
                            tracing::warn!(peer = %peer.ip(), limit = refusal.code(), "connection refused: {} open", gate.open());
                        }
                        if ctx.tls.is_none() {
                            conns.spawn(refuse_plain(stream, refusal.code()));
                        }
                    }
                },
                Err(e) => {
                    // Out of descriptors (EMFILE) or the like: say so, and
                    // give open connections time to close instead of spinning.
                    if refusal_log.due() {
                        tracing::error!("accepting a connection failed: {e}; is the file-descriptor limit (ulimit -n) above max_connections?");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    drop(listener);
    relay.begin_shutdown();
    let _ = stop_conns.send(true);
    let drained = tokio::time::timeout(DRAIN_MAX, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("stopping with connections still open after {DRAIN_MAX:?}");
    }
    let _ = maintenance.await;
    Ok(())
}

struct Ctx {
    router: axum::Router,
    relay: Relay,
    tls: Option<Arc<TlsFiles>>,
    header_timeout: Duration,
    idle_timeout: Duration,
    head_max: usize,
}

impl Ctx {
    async fn connection(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        slot: gate::Slot,
        activity: io::Activity,
        stop: watch::Receiver<bool>,
    ) {
        let _ = stream.set_nodelay(true);
        match &self.tls {
            None => {
                let io = io::ConnIo::new(stream, slot, activity.clone());
                self.http(io, peer, activity, stop).await;
            }
            Some(files) => {
                let acceptor = tokio_rustls::TlsAcceptor::from(files.config());
                let tls = match tokio::time::timeout(self.header_timeout, acceptor.accept(stream))
                    .await
                {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(peer = %peer.ip(), "TLS handshake failed: {e}");
                        return;
                    }
                    Err(_) => {
                        self.relay.metrics().rejected("tls_handshake_timeout");
                        return;
                    }
                };
                let io = io::ConnIo::new(tls, slot, activity.clone());
                self.http(io, peer, activity, stop).await;
            }
        }
    }

    async fn http<S>(
        &self,
        io: io::ConnIo<S>,
        peer: SocketAddr,
        activity: io::Activity,
        mut stop: watch::Receiver<bool>,
    ) where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(Peer(peer));
            router.clone().oneshot(req)
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_timeout)
            .max_buf_size(self.head_max)
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        tokio::pin!(conn);
        let tick = (self.idle_timeout / 4).max(Duration::from_millis(50));
        let mut stopping = *stop.borrow();
        if stopping {
            conn.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(peer = %peer.ip(), "connection ended: {e}");
                    }
                    return;
                }
                _ = tokio::time::sleep(tick) => {
                    if activity.idle() >= self.idle_timeout {
                        self.relay.metrics().rejected("idle_timeout");
                        return;
                    }
                }
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Answers a connection over the limit with the JSON error, then closes it.
async fn refuse_plain(mut stream: TcpStream, code: &'static str) {
    let body = serde_json::json!({"error": {
        "code": code,
        "message": "the relay has too many open connections; try again shortly",
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// At most one line a second for events an attacker can repeat at will.
#[derive(Default)]
struct RateLimitedLog {
    last: Option<std::time::Instant>,
}

impl RateLimitedLog {
    fn due(&mut self) -> bool {
        let now = std::time::Instant::now();
        if self
            .last
            .is_some_and(|t| now.duration_since(t) < Duration::from_secs(1))
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}
