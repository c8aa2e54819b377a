//! `backchannel`: the relay, the principals' commands, and the narrated demo.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[macro_use]
mod out;
mod cmd;
mod render;
mod store;

/// Backchannel: messages and assurances between parties with no direct
/// relations, through an intermediary that relays but cannot read, alter or
/// silently drop them.
///
/// Start with `backchannel demo` to see the whole story on an embedded relay.
#[derive(Debug, Parser)]
#[command(name = "backchannel", version, propagate_version = true)]
struct Cli {
    /// The principal's store (one encrypted file). Default:
    /// $XDG_DATA_HOME/backchannel/store.
    #[arg(long, global = true, env = "BACKCHANNEL_STORE", value_name = "PATH")]
    store: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Channel(cmd::channel::ChannelArgs),
    #[command(flatten)]
    Commit(cmd::commit::CommitCommand),
    Conformance(cmd::conformance::ConformanceArgs),
    Demo(cmd::demo::DemoArgs),
    Events(cmd::exchange::EventsArgs),
    Exchange(cmd::exchange::ExchangeArgs),
    Fingerprint(cmd::principal::FingerprintArgs),
    Inbox(cmd::message::InboxArgs),
    Init(cmd::principal::InitArgs),
    Log(cmd::message::LogArgs),
    Relay(cmd::relay::RelayArgs),
    Send(cmd::message::SendArgs),
    Sync(cmd::message::SyncArgs),
    Transcript(cmd::transcript::TranscriptArgs),
    Trust(cmd::trust::TrustArgs),
    Verify(cmd::trust::VerifyArgs),
    Watch(cmd::watch::WatchArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Relay(args) => cmd::relay::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        command => store::store_path(cli.store).and_then(|store| {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                match command {
                    Command::Channel(a) => cmd::channel::run(&store, a).await,
                    Command::Commit(c) => cmd::commit::run(&store, c).await,
                    Command::Events(a) => cmd::exchange::events(&store, a).await,
                    Command::Exchange(a) => cmd::exchange::run(&store, a).await,
                    Command::Fingerprint(a) => cmd::principal::fingerprint(&store, a),
                    Command::Inbox(a) => cmd::message::inbox(&store, a),
                    Command::Init(a) => cmd::principal::init(&store, a).await,
                    Command::Log(a) => cmd::message::log(&store, a),
                    Command::Send(a) => cmd::message::send(&store, a).await,
                    Command::Sync(a) => cmd::message::sync(&store, a).await,
                    Command::Transcript(a) => cmd::transcript::run(&store, a).await,
                    Command::Trust(a) => cmd::trust::trust(&store, a).await,
                    Command::Verify(a) => cmd::trust::verify(&store, a).await,
                    Command::Watch(a) => cmd::watch::run(&store, a).await,
                    Command::Relay(_) | Command::Demo(_) | Command::Conformance(_) => {
                        unreachable!("handled above")
                    }
                }
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
