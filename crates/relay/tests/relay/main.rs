//! The relay's integration tests, in one binary: a real relay on an
//! ephemeral loopback port, driven over HTTP by the protocol crate.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api;
mod bad_input;
mod conformance;
mod instances;
mod keys;
mod upgrade;
