//! `backchannel`: the relay, the principals' commands, and the narrated demo.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory as _, FromArgMatches as _, Parser, Subcommand};

#[macro_use]
mod out;
mod cmd;
mod help;
mod render;
mod store;
mod time;

/// Backchannel: messages and assurances between parties with no direct
/// relations, through an intermediary that relays but cannot read, alter or
/// silently drop them.
///
/// Start with `backchannel demo` to see the whole story on an embedded relay.
#[derive(Debug, Parser)]
#[command(
    name = "backchannel",
    version,
    propagate_version = true,
    after_help = AFTER_HELP
)]
struct Cli {
    /// The principal's store (one encrypted file). Default:
    /// $XDG_DATA_HOME/backchannel/store.
    #[arg(long, global = true, env = "BACKCHANNEL_STORE", value_name = "PATH")]
    store: Option<PathBuf>,

    /// Read the store's passphrase from the first line of this file (keep
    /// it 0600) instead of BACKCHANNEL_PASSPHRASE or a prompt.
    #[arg(
        long,
        global = true,
        env = "BACKCHANNEL_PASSPHRASE_FILE",
        value_name = "PATH"
    )]
    passphrase_file: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

// Parsed once per run: the size of the largest command does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
enum Command {
    Actors(cmd::actors::ActorsArgs),
    Channel(cmd::channel::ChannelArgs),
    #[command(flatten)]
    Commit(cmd::commit::CommitCommand),
    Completions(cmd::shell::CompletionsArgs),
    Conformance(cmd::conformance::ConformanceArgs),
    Demo(cmd::demo::DemoArgs),
    Events(cmd::exchange::EventsArgs),
    Exchange(cmd::exchange::ExchangeArgs),
    Fingerprint(cmd::principal::FingerprintArgs),
    Inbox(cmd::message::InboxArgs),
    Init(cmd::principal::InitArgs),
    Log(cmd::message::LogArgs),
    Outbox(cmd::message::OutboxArgs),
    Man(cmd::shell::ManArgs),
    Passphrase(cmd::principal::PassphraseArgs),
    Backup(cmd::backup::BackupArgs),
    Restore(cmd::backup::RestoreArgs),
    Relay(cmd::relay::RelayArgs),
    Send(cmd::message::SendArgs),
    Sync(cmd::message::SyncArgs),
    Transcript(cmd::transcript::TranscriptArgs),
    Trust(cmd::trust::TrustArgs),
    Ui(cmd::ui::UiArgs),
    Verify(cmd::trust::VerifyArgs),
    Watch(cmd::watch::WatchArgs),
}

/// What `--help` ends with: how to write times, and the exit statuses.
const AFTER_HELP: &str = "\
Times (--until, --deadline, --reply-by...): now; +90s, -30m, +1h30m, \"in 2
days\", \"3 hours ago\"; 2026-12-03 (00:00 UTC); 2026-12-03T10:00Z or with an
offset, 2026-12-03T10:00+02:00; or Unix milliseconds. Each is echoed back in
UTC and your local time (TZ) on standard error. Durations: 90s, 30m, 24h, 2d,
1w, \"1 hour 30 minutes\".

Exit status:
  0  done; for `verify`, no alert is open
  1  the command ran and found a problem: `verify` (alerts are open),
     `transcript verify` (inconsistencies), `conformance` (a broken rule),
     `demo` (a failed check)
  2  the command could not do its work: wrong usage, wrong passphrase, no
     store, the relay unreachable or refusing; for `verify`, nothing was checked
A closed pipe (`backchannel log ... | head`) is not an error: status 0.";

/// What a check found wrong: exit status 1, where any other error (the
/// check could not run) is 2.
#[derive(Debug)]
pub struct Found(pub String);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Found {}

/// The command line, its help grouped by role.
fn command() -> clap::Command {
    help::with_roles(Cli::command())
}

fn main() -> ExitCode {
    let cli = Cli::from_arg_matches(&command().get_matches()).unwrap_or_else(|e| e.exit());
    if let Some(path) = cli.passphrase_file.clone() {
        let _ = store::PASSPHRASE_FILE.set(path);
    }
    let json_logs = matches!(&cli.command, Command::Relay(a) if a.json_logs());
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    if json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let result = match cli.command {
        Command::Relay(args) => cmd::relay::run(args),
        Command::Demo(args) => cmd::demo::run(args),
        Command::Conformance(args) => cmd::conformance::run(args),
        Command::Completions(args) => cmd::shell::completions(args, command()),
        Command::Man(args) => cmd::shell::man(args, command()),
        command => store::store_path(cli.store).and_then(|store| {
            let runtime = tokio::runtime::Runtime::new()?;
            runtime.block_on(async move {
                match command {
                    Command::Actors(a) => cmd::actors::run(&store, a).await,
                    Command::Channel(a) => cmd::channel::run(&store, a).await,
                    Command::Commit(c) => cmd::commit::run(&store, c).await,
                    Command::Events(a) => cmd::exchange::events(&store, a).await,
                    Command::Exchange(a) => cmd::exchange::run(&store, a).await,
                    Command::Fingerprint(a) => cmd::principal::fingerprint(&store, a),
                    Command::Inbox(a) => cmd::message::inbox(&store, a),
                    Command::Init(a) => cmd::principal::init(&store, a).await,
                    Command::Log(a) => cmd::message::log(&store, a),
                    Command::Outbox(a) => cmd::message::outbox(&store, a).await,
                    Command::Passphrase(a) => cmd::principal::passphrase(&store, a),
                    Command::Backup(a) => cmd::backup::backup(&store, a),
                    Command::Restore(a) => cmd::backup::restore(&store, a).await,
                    Command::Send(a) => cmd::message::send(&store, a).await,
                    Command::Sync(a) => cmd::message::sync(&store, a).await,
                    Command::Transcript(a) => cmd::transcript::run(&store, a).await,
                    Command::Trust(a) => cmd::trust::trust(&store, a).await,
                    Command::Verify(a) => cmd::trust::verify(&store, a).await,
                    Command::Ui(a) => cmd::ui::run(&store, a).await,
                    Command::Watch(a) => cmd::watch::run(&store, a).await,
                    Command::Relay(_)
                    | Command::Demo(_)
                    | Command::Conformance(_)
                    | Command::Completions(_)
                    | Command::Man(_) => unreachable!("handled above"),
                }
            })
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(if e.is::<Found>() { 1 } else { 2 })
        }
    }
}
