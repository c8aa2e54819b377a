//! Backchannel's client library: what a party's or mediator's machine runs.
//!
//! - a sealed local store in one file ([`vault`]): key material, Olm
//!   sessions, pinned keys, processed message ids, the outbox, every payload;
//! - Olm sessions kept in memory, committed with the message they decrypted
//!   or encrypted;
//! - [`Client::sync`]: the mailbox read in order, identical redeliveries
//!   dropped before decrypting, every payload verified against its channel;
//! - sending through an outbox, so a crash re-posts the same bytes.
//!
//! # Example
//!
//! ```no_run
//! # async fn run() -> Result<(), backchannel_client::ClientError> {
//! use backchannel_client::{Client, KdfParams};
//! use backchannel_protocol::Handle;
//!
//! let mut blue = Client::create(
//!     "blue.store".as_ref(),
//!     "correct horse battery staple",
//!     KdfParams::DEFAULT,
//!     "http://127.0.0.1:8470",
//!     &Handle::new("blue").unwrap(),
//! )
//! .await?;
//! let report = blue.sync().await?;
//! for m in report.received {
//!     println!("{}: {:?}", m.sender, m.text);
//! }
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

pub mod advice;
pub(crate) mod client;
pub mod error;
pub mod time;
pub mod tls;
pub mod transcript;
pub mod transport;
pub mod vault;

pub use advice::advice;
pub use client::lock;
pub use client::{
    now, unique_prefix, Candidate, ChannelView, Client, Clock, Collision, Confirmation, Delivery,
    ExchangeState, ExchangeSummary, ExchangeView, IdKind, LogEntry, MemberView, MessageView,
    QueuedPost, ReceiptView, ReceivedOffer, RelayEndpoint, RestoreReport, SyncReport,
    MIN_PREFIX_DIGITS, ONE_TIME_KEYS_TARGET, ONE_TIME_KEYS_UPLOAD_PER_HOUR,
};
pub use client::{
    Answer, AnswerState, ConsentStatement, KeyState, PolicyView, ProposalKind, ProposedMember,
    RoleChange, MEDIATOR_READS_GRANTED, MEDIATOR_READS_WITHDRAWN,
};
pub use error::{ClientError, TransportError, VaultError};
pub use tls::RelayTrust;
pub use vault::KdfParams;
