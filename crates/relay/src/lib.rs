//! Backchannel's relay: the intermediary's server. It stores and forwards
//! envelopes it cannot read, hands out one-time keys, and keeps the minimum:
//! an acked envelope is deleted, leaving a 32-byte hash to answer a repeated
//! post.
//!
//! ```text
//!  client ──HTTP/JSON /v1──→ router ──spawn_blocking──→ RelayStore (SQLite, WAL, synchronous=FULL)
//!  client ←──WebSocket push── broadcast wake-up ←───────┘
//! ```
//!
//! # Example: serve on an ephemeral port
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use backchannel_relay::{serve, store::SqliteStore, Relay};
//!
//! let store = SqliteStore::open("relay.db".as_ref()).expect("open database");
//! let relay = Relay::new(store);
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! println!("listening on {}", listener.local_addr()?);
//! serve(listener, relay, std::future::pending()).await
//! # }
//! ```
#![forbid(unsafe_code)]

use std::future::Future;
use std::time::Duration;

mod api;
mod app;
mod error;
pub mod store;

pub use api::OPENAPI_JSON;
pub use app::{system_clock, ApiJson, ApiPath, Caller, Clock, Relay, RelayConfig};
pub use error::ApiError;

/// Largest request body, in bytes: one message's copies for 64 members at the
/// largest ciphertext, in base64, fit.
pub const BODY_MAX_BYTES: usize = 12 * 1024 * 1024;

/// How often expired credentials are purged and the WAL checkpointed.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);

/// Serves `relay` on `listener` until `shutdown` completes, then stops
/// WebSocket pushes and the maintenance task and lets open requests finish.
pub async fn serve(
    listener: tokio::net::TcpListener,
    relay: Relay,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let maintenance = tokio::spawn(relay.clone().maintain());
    let stopper = relay.clone();
    let result = axum::serve(listener, relay.router())
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopper.begin_shutdown();
        })
        .await;
    relay.begin_shutdown();
    let _ = maintenance.await;
    result
}
