//! One module per command.

pub mod relay;
