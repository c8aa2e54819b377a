//! The `backchannel` binary as a user and an operator run it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod relay;
