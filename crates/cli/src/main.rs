//! `backchannel`: one binary for the relay and (next) the principals' commands.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Backchannel: messages and assurances between parties with no direct
/// relations, through an intermediary that relays but cannot read, alter or
/// silently drop them.
#[derive(Debug, Parser)]
#[command(name = "backchannel", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the intermediary's relay.
    Relay(cmd::relay::RelayArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Relay(args) => cmd::relay::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
