//! One module per command family.

pub mod actors;
pub mod backup;
pub mod channel;
pub mod commit;
pub mod conformance;
pub mod demo;
pub mod exchange;
pub mod message;
pub mod principal;
pub mod relay;
pub mod shell;
pub mod transcript;
pub mod trust;
pub mod ui;
pub mod watch;
