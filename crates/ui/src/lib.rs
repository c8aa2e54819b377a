//! The local web interface: a server on a loopback address over the
//! principal's own client, so plaintext never leaves the machine.
//!
//! ```text
//!  browser ──HTTP on 127.0.0.1──→ guard (Host, cookie, Origin, headers)
//!                                   ├─→ views   (server-rendered HTML)
//!                                   ├─→ actions (forms: send, consent, dismiss, verify)
//!                                   └─→ live    (server-sent events: "something changed")
//!                                          │
//!                                   Shared (the one Client, behind a lock)
//! ```
//!
//! Who may use it: one single-use launch code, valid 60 s, printed on the
//! terminal; the page exchanges it for an HttpOnly, SameSite=Strict cookie
//! ([`access`]). Every request must name the server as its Host (against
//! DNS rebinding); every state-changing request must come from the
//! server's own Origin. Responses forbid inline script, framing and
//! caching, and carry no CORS headers.
//!
//! ```no_run
//! # async fn f(client: backchannel_client::Client) -> Result<(), backchannel_ui::UiError> {
//! use backchannel_ui::{Shared, Ui, UiConfig};
//! let shared = Shared::new(client);
//! let ui = Ui::bind("127.0.0.1:0".parse().unwrap(), shared, UiConfig::default()).await?;
//! println!("open {}", ui.launch_url());
//! ui.serve(std::future::pending()).await
//! # }
//! ```

pub mod access;
mod actions;
mod acts;
mod board;
mod escrow;
pub mod forms;
mod guard;
mod html;
mod live;
mod views;
mod whatif;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use axum::Router;
use backchannel_client::Client;
use tokio::sync::{broadcast, Mutex, MutexGuard};

use access::{Access, Refusal};

/// Where the server reads the time (the system's, or a test's).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How long a launch code may wait for its browser.
pub const LAUNCH_VALID: Duration = Duration::from_secs(60);
/// How long a browser session may stay idle by default.
pub const IDLE_DEFAULT: Duration = Duration::from_secs(30 * 60);

/// The server's settings.
#[derive(Clone)]
pub struct UiConfig {
    /// How long a launch code is valid.
    pub launch_valid: Duration,
    /// Idle time after which the browser session ends.
    pub idle: Duration,
    /// The clock.
    pub clock: Clock,
}

impl Default for UiConfig {
    fn default() -> Self {
        UiConfig {
            launch_valid: LAUNCH_VALID,
            idle: IDLE_DEFAULT,
            clock: Arc::new(Instant::now),
        }
    }
}

/// Why the interface could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum UiError {
    /// Only this machine may reach the interface.
    #[error(
        "{0} is not a loopback address: the interface serves this machine only (use 127.0.0.1)"
    )]
    NotLoopback(IpAddr),
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another `backchannel ui` running? try --port 0)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Serving failed.
    #[error("the interface stopped: {0}")]
    Serve(std::io::Error),
}

/// What the person at the terminal should know about the browser side.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A browser redeemed the launch code.
    Redeemed,
    /// A redemption was refused (a second use of the code may be another
    /// local user who read the browser's command line).
    Refused(Refusal),
    /// The browser session ended after being idle.
    SessionEnded(Duration),
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Redeemed => f.write_str("a browser opened the interface; the launch link cannot be used again"),
            Notice::Refused(Refusal::Used) => f.write_str("REFUSED: someone tried the launch link again after a browser had used it. Another user of this machine may have read it, and may be the one who used it first: that browser session has been ended. Press Enter for a new link"),
            Notice::Refused(Refusal::Expired) => f.write_str("refused an expired launch link; press Enter for a new one"),
            Notice::Refused(Refusal::Unknown) => f.write_str("REFUSED: a launch attempt with a code this run never issued"),
            Notice::SessionEnded(idle) => write!(f, "the browser session ended after {} minutes idle; press Enter for a new launch link", idle.as_secs() / 60),
        }
    }
}

/// The principal's client, shared by the interface and the loop that
/// syncs it: the one writer of its store.
pub struct Shared {
    client: Mutex<Client>,
    changes: broadcast::Sender<()>,
}

impl Shared {
    /// Wraps the open client.
    pub fn new(client: Client) -> Arc<Shared> {
        Arc::new(Shared {
            client: Mutex::new(client),
            changes: broadcast::channel(64).0,
        })
    }

    /// The client, for one piece of work.
    pub async fn lock(&self) -> MutexGuard<'_, Client> {
        self.client.lock().await
    }

    /// Tells open pages that something changed (a sync brought messages,
    /// receipts or alerts; a deadline passed), so they refresh.
    pub fn changed(&self) {
        // No page open is fine.
        let _ = self.changes.send(());
    }

    /// Told of every change (the loop that syncs recomputes its next
    /// timeout: work done from a page may have moved it).
    pub fn subscribe(&self) -> broadcast::Receiver<()> {
        self.changes.subscribe()
    }
}

/// What every handler shares.
#[derive(Clone)]
struct AppState {
    shared: Arc<Shared>,
    access: Arc<std::sync::Mutex<Access>>,
    /// The Host every request must name: `127.0.0.1:PORT`.
    host: String,
    /// The Origin every state-changing request must come from.
    origin: String,
    /// The port served (the cookie is named after it).
    port: u16,
    /// Set once the server is stopping: live streams end.
    stopping: tokio::sync::watch::Sender<bool>,
    clock: Clock,
    notices: broadcast::Sender<Notice>,
}

impl AppState {
    fn access(&self) -> std::sync::MutexGuard<'_, Access> {
        self.access.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn notice(&self, n: Notice) {
        let _ = self.notices.send(n);
    }

    fn launch_url(&self, code: &access::Secret) -> String {
        format!("{}/launch?code={}", self.origin, code.to_hex())
    }
}

/// The interface, bound and ready to serve.
pub struct Ui {
    listener: tokio::net::TcpListener,
    state: AppState,
}

/// A handle on a serving interface: new launch links, and notices.
#[derive(Clone)]
pub struct UiHandle {
    state: AppState,
}

impl UiHandle {
    /// A new launch link; the old one stops working, and redeeming this
    /// one replaces the browser session.
    pub fn new_launch_url(&self) -> String {
        let now = (self.state.clock)();
        let code = self.state.access().reissue(now);
        self.state.launch_url(&code)
    }

    /// Notices for the terminal.
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.state.notices.subscribe()
    }
}

impl Ui {
    /// Binds `addr`, which must be a loopback address.
    pub async fn bind(
        addr: SocketAddr,
        shared: Arc<Shared>,
        config: UiConfig,
    ) -> Result<Ui, UiError> {
        if !addr.ip().is_loopback() {
            return Err(UiError::NotLoopback(addr.ip()));
        }
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| UiError::Bind { addr, source })?;
        let bound = listener
            .local_addr()
            .map_err(|source| UiError::Bind { addr, source })?;
        let access = Access::new((config.clock)(), config.launch_valid, config.idle);
        let state = AppState {
            shared,
            access: Arc::new(std::sync::Mutex::new(access)),
            host: bound.to_string(),
            origin: format!("http://{bound}"),
            port: bound.port(),
            stopping: tokio::sync::watch::channel(false).0,
            clock: config.clock,
            notices: broadcast::channel(16).0,
        };
        Ok(Ui { listener, state })
    }

    /// The address served.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The link with the current launch code.
    pub fn launch_url(&self) -> String {
        let code = self.state.access().code().clone();
        self.state.launch_url(&code)
    }

    /// A handle for new links and notices.
    pub fn handle(&self) -> UiHandle {
        UiHandle {
            state: self.state.clone(),
        }
    }

    /// Serves until `shutdown` completes.
    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), UiError> {
        let stopping = self.state.stopping.clone();
        let app = router(self.state);
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.await;
                // Open live streams would hold the shutdown forever.
                let _ = stopping.send(true);
            })
            .await
            .map_err(UiError::Serve)
    }
}

fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(views::channels))
        .route("/launch", get(actions::launch))
        .route("/channels/{id}", get(views::channel))
        .route("/channels/{id}/preview", post(views::preview))
        .route("/channels/{id}/send", post(actions::send))
        .route("/channels/{id}/accept", post(actions::accept))
        .route("/channels/{id}/decline", post(actions::decline))
        .route("/channels/{id}/board", get(board::board))
        .route("/channels/{id}/act", get(acts::list))
        .route(
            "/channels/{id}/act/{kind}",
            get(acts::blank).post(acts::refill),
        )
        .route("/channels/{id}/act/{kind}/preview", post(acts::preview))
        .route("/channels/{id}/act/{kind}/send", post(acts::send))
        .route("/channels/{id}/whatif", get(whatif::whatif))
        .route(
            "/channels/{id}/exchanges",
            get(escrow::exchanges).post(escrow::create),
        )
        .route("/channels/{id}/exchanges/{x}/submit", post(escrow::submit))
        .route(
            "/channels/{id}/exchanges/{x}/withdraw",
            post(escrow::withdraw),
        )
        .route("/channels/{id}/exchanges/{x}/status", post(escrow::status))
        .route("/alerts", get(views::alerts))
        .route("/alerts/{id}/dismiss", post(actions::dismiss))
        .route("/safety", get(views::safety))
        .route("/safety/verify", post(actions::verify))
        .route("/outbox", get(views::outbox))
        .route("/events", get(live::events))
        .route("/assets/app.js", get(html::script))
        .route("/assets/style.css", get(html::style))
        .route("/favicon.ico", get(html::icon))
        .fallback(views::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
