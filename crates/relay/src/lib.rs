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

mod api;
mod app;
pub mod config;
mod error;
pub mod metrics;
mod observe;
mod rate;
pub mod server;
pub mod store;

use std::time::Duration;

pub use api::accounts::invite_hash;
pub use api::OPENAPI_JSON;
pub use app::{system_clock, ApiJson, ApiPath, Caller, Clock, Relay, Session};
pub use config::{Registration, RelayConfig};
pub use error::ApiError;
pub use rate::ClientIp;
pub use server::{serve, serve_with, ServeOptions, TlsFiles};

/// How often expired credentials are purged and the WAL checkpointed.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(5);
