//! `ui`: the local web interface over this principal's own client, with
//! `watch`'s loop beside it (the store's one writer).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};
use backchannel_client::Client;
use backchannel_ui::{Shared, Ui, UiConfig};
use clap::Args;

use super::watch::{watch_loop, Output};
use crate::store;

/// Open the web interface in your browser, served from this machine.
///
/// Serves the interface on 127.0.0.1 from your own client: plaintext never
/// leaves this machine. The passphrase is asked here, never in the page.
/// Prints a link with a launch code that works once, within 60 seconds;
/// the page trades it for a cookie. Press Enter for a new link (after the
/// browser session ended, or to move to another browser). Like `watch`, it
/// stays connected, and other commands on this store are handed to it.
/// Ctrl-C stops.
///
/// Examples:
///
///   backchannel --store blue.store ui
///   backchannel --store blue.store ui --port 8470 --no-open
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct UiArgs {
    /// The address to serve on: a loopback address only.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    bind: IpAddr,
    /// The port (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the link without starting a browser.
    #[arg(long)]
    no_open: bool,
    /// End the browser session after this long without a click or a form:
    /// 30m, 1h, 90s.
    #[arg(long, value_name = "DURATION", default_value = "30m", value_parser = crate::time::parse_duration)]
    idle_timeout: u32,
}

pub async fn run(store_path: &Path, args: UiArgs) -> anyhow::Result<()> {
    // Refused before the passphrase is asked.
    if !args.bind.is_loopback() {
        bail!(
            "--bind {} is not a loopback address: the interface shows your decrypted messages, so it serves this machine only (use 127.0.0.1)",
            args.bind
        );
    }
    let client = Client::open(store_path, &store::passphrase(false)?).map_err(store::explain)?;
    let listener = store::listen(store_path)?;
    let result = serve(client, &listener, &args).await;
    store::unlisten(store_path);
    result
}

async fn serve(
    client: Client,
    listener: &tokio::net::UnixListener,
    args: &UiArgs,
) -> anyhow::Result<()> {
    let me = client.me().clone();
    let shared = Shared::new(client);
    let config = UiConfig {
        idle: Duration::from_secs(args.idle_timeout.into()),
        ..UiConfig::default()
    };
    let ui = Ui::bind(
        SocketAddr::new(args.bind, args.port),
        shared.clone(),
        config,
    )
    .await
    .context("cannot start the web interface")?;
    let handle = ui.handle();
    let url = ui.launch_url();
    eprintln!(
        "web interface for {me} on http://{}/ (only this machine can reach it)\n\n  open: {url}\n\nThe link works once, within 60 seconds. Press Enter for a new one; Ctrl-C stops.",
        ui.local_addr()
    );
    if !args.no_open {
        open_browser(&url);
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ui.serve(async {
        let _ = stopped.await;
    }));
    let mut notices = handle.notices();
    tokio::spawn(async move {
        while let Ok(n) = notices.recv().await {
            eprintln!("ui: {n}");
        }
    });
    let links = handle.clone();
    // A thread of its own: reading the terminal blocks. With no terminal
    // (stdin closed) there are no new links, and the rest goes on.
    std::thread::spawn(move || {
        for line in std::io::stdin().lines() {
            if line.is_err() {
                break;
            }
            eprintln!(
                "  open: {}\n  (valid once, within 60 seconds)",
                links.new_launch_url()
            );
        }
    });
    let out = Output {
        json: false,
        on_alert: None,
    };
    let result = watch_loop(&shared, listener, &out).await;
    let _ = stop.send(());
    match server.await {
        Ok(Err(e)) => eprintln!("{e}"),
        Err(e) => eprintln!("the web interface failed: {e}"),
        Ok(Ok(())) => {}
    }
    result
}

/// Starts the desktop's browser on `url`, if there is one.
fn open_browser(url: &str) {
    let opened = std::process::Command::new("xdg-open")
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match opened {
        // Reaped aside, so it never holds the interface.
        Ok(mut child) => drop(std::thread::spawn(move || child.wait())),
        Err(_) => eprintln!(
            "(no browser could be started here: open the link yourself, or pass --no-open)"
        ),
    }
}
