//! `backchannel relay serve`: the intermediary's server.

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

mod database;

use anyhow::Context as _;
use backchannel_relay::{serve_with, Registration, Relay, RelayConfig, ServeOptions, TlsFiles};
use clap::{Args, Subcommand};
pub use database::Database;

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
    /// it), or, for several relay instances behind one address, in a
    /// PostgreSQL database (--db postgres://...), and forwards them to
    /// their recipients' mailboxes. On any address
    /// but loopback it serves TLS (--tls-cert, --tls-key; reloaded on
    /// SIGHUP) and takes registrations by invitation (`relay invite`).
    /// Every limit has a default; each is a flag below, an environment
    /// variable and a key of --config FILE (`relay config-example`).
    ///
    /// Examples:
    ///
    ///   backchannel relay serve --db relay.db --listen 127.0.0.1:8470
    ///
    ///   # pick a free port; the bound address is printed on stdout
    ///   backchannel relay serve --db /tmp/relay.db --listen 127.0.0.1:0
    ///
    ///   # one of several instances on one PostgreSQL database
    ///   backchannel relay serve --db postgres://relay@db.internal/backchannel --listen 127.0.0.1:8471
    ///
    ///   # on the internet: TLS, settings from a file, metrics on loopback
    ///   backchannel relay serve --db /var/lib/backchannel/relay.db --listen 0.0.0.0:8470 \
    ///       --tls-cert /etc/backchannel/cert.pem --tls-key /etc/backchannel/key.pem \
    ///       --config /etc/backchannel/relay.toml --metrics-listen 127.0.0.1:9470 --log-format json
    #[command(verbatim_doc_comment)]
    Serve(Box<ServeArgs>),
    /// Issue single-use invitation codes for registration.
    ///
    /// Each code lets one principal register (`init --invite CODE`); the
    /// relay keeps only its hash. Give each code to one person over a path
    /// you trust. Works while the relay is serving.
    ///
    /// Example:
    ///
    ///   backchannel relay invite --db relay.db --count 3 --valid-days 7
    #[command(verbatim_doc_comment)]
    Invite {
        /// The relay's database: a SQLite file, or postgres://...
        #[arg(long, value_name = "PATH|URL", default_value = "backchannel-relay.db")]
        db: Database,
        /// How many codes.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1000))]
        count: u16,
        /// Days until an unused code expires.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u16).range(1..=365))]
        valid_days: u16,
    },
    /// Print a configuration file with every setting at its default.
    ///
    /// Example:
    ///
    ///   backchannel relay config-example > relay.toml
    #[command(verbatim_doc_comment)]
    ConfigExample,
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
        /// The relay's database: a SQLite file, or postgres://...
        #[arg(long, value_name = "PATH|URL", default_value = "backchannel-relay.db")]
        db: Database,
        /// The handle to release.
        #[arg(long)]
        handle: String,
    },
}

/// Runs `relay` subcommands.
pub fn run(args: RelayArgs) -> anyhow::Result<()> {
    match args.command {
        RelayCommand::Serve(args) => serve_relay(*args),
        RelayCommand::Release { db, handle } => release(db, &handle),
        RelayCommand::Invite {
            db,
            count,
            valid_days,
        } => invite(db, count, valid_days),
        RelayCommand::ConfigExample => {
            out!("{}", RelayConfig::example());
            Ok(())
        }
    }
}

fn release(db: Database, handle: &str) -> anyhow::Result<()> {
    let handle = backchannel_protocol::Handle::new(handle)?;
    let store = db.open_existing()?;
    if !store.release_principal(&handle)? {
        anyhow::bail!("no principal {handle} is registered at this relay");
    }
    outln!("released {handle}: it may now register again with new keys (`backchannel init --handle {handle}` on its new device)");
    Ok(())
}

/// `relay serve`'s arguments.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The database: a SQLite file (created if missing), or a PostgreSQL
    /// database as postgres://user[:password]@host[:port]/name (several
    /// relay instances may share it).
    #[arg(
        long,
        value_name = "PATH|URL",
        default_value = "backchannel-relay.db",
        env = "BACKCHANNEL_RELAY_DB"
    )]
    db: Database,
    /// Address to listen on; port 0 picks a free port.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "127.0.0.1:8470",
        env = "BACKCHANNEL_RELAY_LISTEN"
    )]
    listen: SocketAddr,
    /// The certificate chain (PEM, leaf first); with --tls-key, serves TLS.
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_key",
        env = "BACKCHANNEL_RELAY_TLS_CERT"
    )]
    tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(
        long,
        value_name = "PEM",
        requires = "tls_cert",
        env = "BACKCHANNEL_RELAY_TLS_KEY"
    )]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (only behind a
    /// TLS-terminating proxy on the same host or a private network).
    #[arg(long, env = "BACKCHANNEL_RELAY_INSECURE_PLAIN_HTTP")]
    insecure_plain_http: bool,
    /// A proxy whose X-Forwarded-For is believed (repeat for several); it
    /// is exempt from the per-address connection limit.
    #[arg(
        long,
        value_name = "IP",
        env = "BACKCHANNEL_RELAY_TRUSTED_PROXY",
        value_delimiter = ','
    )]
    trusted_proxy: Vec<IpAddr>,
    /// Serve Prometheus metrics at http://ADDR/metrics (keep it private).
    #[arg(long, value_name = "ADDR", env = "BACKCHANNEL_RELAY_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Log lines as `text` or `json` (one object a line).
    #[arg(long, value_name = "FORMAT", default_value = "text", value_parser = ["text", "json"], env = "BACKCHANNEL_RELAY_LOG_FORMAT")]
    pub log_format: String,
    /// A TOML file of settings (`relay config-example` prints one); flags
    /// and environment variables win over it.
    #[arg(long, value_name = "FILE", env = "BACKCHANNEL_RELAY_CONFIG")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: SettingFlags,
}

impl RelayArgs {
    /// Whether `relay serve --log-format json` was asked for.
    pub fn json_logs(&self) -> bool {
        matches!(&self.command, RelayCommand::Serve(a) if a.log_format == "json")
    }
}

/// Every relay setting as a flag and an environment variable, from the
/// relay's one table of settings.
#[derive(Debug, Clone, Default)]
struct SettingFlags(Vec<(&'static str, String)>);

impl clap::FromArgMatches for SettingFlags {
    fn from_arg_matches(m: &clap::ArgMatches) -> Result<Self, clap::Error> {
        let given = RelayConfig::SETTINGS
            .iter()
            .filter_map(|s| m.get_one::<String>(s.key).map(|v| (s.key, v.clone())))
            .collect();
        Ok(SettingFlags(given))
    }

    fn update_from_arg_matches(&mut self, m: &clap::ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(m)?;
        Ok(())
    }
}

impl clap::Args for SettingFlags {
    fn augment_args(cmd: clap::Command) -> clap::Command {
        let defaults = RelayConfig::default();
        let mut cmd = cmd.next_help_heading("Settings (also keys of --config FILE)");
        for s in RelayConfig::SETTINGS {
            let help = format!(
                "{} [default: {}]",
                s.doc.trim_end().replace('\n', " "),
                defaults.get(s.key).unwrap_or_default()
            );
            cmd = cmd.arg(
                clap::Arg::new(s.key)
                    .long(s.flag())
                    .env(s.env())
                    .value_name("VALUE")
                    .action(clap::ArgAction::Set)
                    .help(help),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// The settings in force: defaults, then the file, then flags and
/// variables; registration is `invite` off loopback unless set.
fn settings(args: &ServeArgs) -> anyhow::Result<RelayConfig> {
    let mut config = RelayConfig::default();
    let mut registration_set = false;
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        config
            .merge_toml(&text)
            .with_context(|| format!("in {}", path.display()))?;
        registration_set |= text
            .lines()
            .any(|l| l.trim_start().starts_with("registration"));
    }
    for (key, value) in &args.settings.0 {
        config.set(key, value)?;
        registration_set |= *key == "registration";
    }
    // Off loopback, or behind a proxy (its clients come from anywhere).
    let exposed = !args.listen.ip().is_loopback() || !args.trusted_proxy.is_empty();
    if !registration_set && exposed {
        config.registration = Registration::Invite;
    }
    config.check()?;
    Ok(config)
}

fn serve_relay(args: ServeArgs) -> anyhow::Result<()> {
    let config = settings(&args)?;
    let listen = args.listen;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(std::sync::Arc::new(
            TlsFiles::load(cert, key).context("loading the TLS certificate")?,
        )),
        _ => None,
    };
    if tls.is_none() && !listen.ip().is_loopback() {
        if !args.insecure_plain_http {
            anyhow::bail!(
                "refusing to serve plain HTTP on {listen}: tokens, handles and who writes to whom would cross the network unprotected. \
                 Give --tls-cert and --tls-key, or listen on 127.0.0.1 behind a TLS proxy; --insecure-plain-http overrides this"
            );
        }
        tracing::warn!(
            "serving plain HTTP on {listen} (--insecure-plain-http): put TLS in front of it"
        );
    }
    let db = args.db.clone();
    let store = db.open(config.db_max_bytes)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| {
                format!("binding {listen}: is another relay already listening there?")
            })?;
        let addr = listener.local_addr().context("reading the bound address")?;
        let registration = config.registration;
        let relay = Relay::with(
            store,
            config,
            backchannel_relay::system_clock(),
        );
        relay.log_requests(true);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let certificate = tls
            .as_ref()
            .map(|t| format!("; certificate sha256 {}", t.fingerprint().to_hex()))
            .unwrap_or_default();
        // Scripts and tests read this line to learn the port.
        outln!(
            "backchannel relay listening on {scheme}://{addr} (database {db}; registration {registration}{certificate})"
        );
        if let Some(m) = args.metrics_listen {
            serve_metrics(m, relay.clone()).await?;
        }
        std::io::stdout().flush().context("writing to stdout")?;
        if let Some(files) = tls.clone() {
            tokio::spawn(reload_on_hangup(files));
        }
        let options = ServeOptions {
            tls,
            trusted_proxies: args.trusted_proxy.iter().map(|a| a.to_canonical()).collect(),
        };
        serve_with(listener, relay, options, shutdown_signal())
            .await
            .context("serving HTTP")?;
        tracing::info!("relay stopped");
        Ok(())
    })
}

/// Serves `/metrics` on its own listener.
async fn serve_metrics(addr: SocketAddr, relay: Relay) -> anyhow::Result<()> {
    if !addr.ip().is_loopback() {
        tracing::warn!(
            "metrics on {addr}: keep this port off the internet (it shows traffic volumes)"
        );
    }
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the metrics address {addr}"))?;
    let bound = listener.local_addr()?;
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let relay = relay.clone();
            async move { relay.render_metrics().await }
        }),
    );
    outln!("metrics on http://{bound}/metrics");
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!("metrics listener stopped: {e}");
        }
    });
    Ok(())
}

/// Reloads the certificate and key on every SIGHUP.
async fn reload_on_hangup(files: std::sync::Arc<TlsFiles>) {
    let Ok(mut hup) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match files.reload() {
            Ok(f) => tracing::info!("TLS certificate reloaded (sha256 {})", f.to_hex()),
            Err(e) => tracing::error!("TLS reload failed, the old certificate stays in use: {e}"),
        }
    }
}

fn invite(db: Database, count: u16, valid_days: u16) -> anyhow::Result<()> {
    let store = db.open(0)?;
    let expires = backchannel_protocol::Timestamp(
        backchannel_client::now().0 + i64::from(valid_days) * 86_400_000,
    );
    for _ in 0..count {
        let code = hex::encode(rand::random::<[u8; 16]>());
        store.create_invite(&backchannel_relay::invite_hash(&code), expires)?;
        outln!("{code}");
    }
    eprintln!(
        "{count} invitation code(s), each for one registration (`init --invite CODE`), valid {valid_days} days"
    );
    Ok(())
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
