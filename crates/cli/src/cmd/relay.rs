//! `backchannel relay serve`: the intermediary's server.

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use backchannel_relay::store::SqliteStore;
use backchannel_relay::{serve, Relay};
use clap::{Args, Subcommand};

/// Run the intermediary's relay.
#[derive(Debug, Args)]
pub struct RelayArgs {
    #[command(subcommand)]
    command: RelayCommand,
}

#[derive(Debug, Subcommand)]
enum RelayCommand {
    /// Serve the HTTP/JSON API (under /v1) and WebSocket push.
    ///
    /// The relay stores envelopes it cannot read in one SQLite file (WAL,
    /// synchronous=FULL: a message is on disk before the relay answers for
    /// it) and forwards them to their recipients' mailboxes. Plain HTTP: put
    /// it behind TLS for anything but loopback.
    ///
    /// Examples:
    ///
    ///   backchannel relay serve --db relay.db --listen 127.0.0.1:8470
    ///
    ///   # pick a free port; the bound address is printed on stdout
    ///   backchannel relay serve --db /tmp/relay.db --listen 127.0.0.1:0
    #[command(verbatim_doc_comment)]
    Serve {
        /// The SQLite database file (created if missing).
        #[arg(long, value_name = "PATH", default_value = "backchannel-relay.db")]
        db: PathBuf,
        /// Address to listen on; port 0 picks a free port.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8470")]
        listen: SocketAddr,
    },
    /// Release a handle whose device was lost, so that it can register again
    /// with new keys (the operator's part of a reinstall).
    ///
    /// Deletes the handle's published keys, logins and undelivered envelopes
    /// (sealed to the old keys); channels keep routing to it, and the record
    /// of its last posts stays (the new device raises `stale_store` from it
    /// and resumes its chains beyond them). The principal then runs `backchannel init` with
    /// the same handle on its new device, and the mediator re-introduces the
    /// new keys in a rekey epoch (`channel amend --rekey` after accepting the
    /// new key); every other member sees `key_changed` for it and must
    /// compare safety numbers again. Works while the relay is serving.
    ///
    /// Example:
    ///
    ///   backchannel relay release --db relay.db --handle blue
    #[command(verbatim_doc_comment)]
    Release {
        /// The relay's SQLite database file.
        #[arg(long, value_name = "PATH", default_value = "backchannel-relay.db")]
        db: PathBuf,
        /// The handle to release.
        #[arg(long)]
        handle: String,
    },
}

/// Runs `relay` subcommands.
pub fn run(args: RelayArgs) -> anyhow::Result<()> {
    match args.command {
        RelayCommand::Serve { db, listen } => serve_relay(db, listen),
        RelayCommand::Release { db, handle } => release(db, &handle),
    }
}

fn release(db: PathBuf, handle: &str) -> anyhow::Result<()> {
    use backchannel_relay::store::RelayStore as _;
    let handle = backchannel_protocol::Handle::new(handle)?;
    if !db.exists() {
        anyhow::bail!("no relay database at {}", db.display());
    }
    let store = SqliteStore::open(&db)
        .with_context(|| format!("opening the relay database {}", db.display()))?;
    if !store.release_principal(&handle)? {
        anyhow::bail!("no principal {handle} is registered at this relay");
    }
    outln!("released {handle}: it may now register again with new keys (`backchannel init --handle {handle}` on its new device)");
    Ok(())
}

fn serve_relay(db: PathBuf, listen: SocketAddr) -> anyhow::Result<()> {
    let store = SqliteStore::open(&db)
        .with_context(|| format!("opening the relay database {}", db.display()))?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("binding {listen}: is another relay already listening there?")
            })?;
        let addr = listener.local_addr().context("reading the bound address")?;
        // Scripts and tests read this line to learn the port.
        outln!(
            "backchannel relay listening on http://{addr} (database {})",
            db.display()
        );
        std::io::stdout().flush().context("writing to stdout")?;
        serve(listener, Relay::new(store), shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("relay stopped");
        Ok(())
    })
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
