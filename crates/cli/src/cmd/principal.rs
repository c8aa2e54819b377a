//! `init` and `fingerprint`.

use std::path::Path;

use anyhow::Context as _;
use backchannel_client::{Client, KdfParams, RelayEndpoint, RelayTrust};
use backchannel_protocol::{b64, Handle};
use clap::Args;

use crate::{render, store};

/// Create a store and register on a relay.
///
/// Makes a new identity (Olm account), seals it in the store with a key
/// derived from your passphrase (asked for twice, or the first line of
/// --passphrase-file, or BACKCHANNEL_PASSPHRASE),
/// registers HANDLE with its public keys on the relay and publishes one-time
/// keys. If the relay refuses (a taken handle), no store is left behind. The
/// store is readable by you only (0600).
///
/// Examples:
///
///   backchannel --store blue.store init --relay http://127.0.0.1:8470 --handle blue
///   backchannel --store blue.store --passphrase-file ~/.blue-pass init --relay http://127.0.0.1:8470 --handle blue
///
///   # a relay on the internet, by invitation, with a private CA
///   backchannel --store blue.store init --relay https://relay.example:8470 --handle blue \
///       --invite 3f9c…  --ca-file relay-ca.pem
///
///   # or accept exactly one certificate (its SHA-256, printed by `relay serve`)
///   backchannel --store blue.store init --relay https://relay.example:8470 --handle blue \
///       --pin-sha256 9a0b…
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct InitArgs {
    /// The relay's URL.
    #[arg(long, value_name = "URL")]
    relay: String,
    /// Your handle on the relay: 1-32 of a-z 0-9 _ -.
    #[arg(long, value_name = "HANDLE")]
    handle: String,
    /// The single-use invitation code the relay's operator gave you (a
    /// relay on the internet registers by invitation only).
    #[arg(long, value_name = "CODE")]
    invite: Option<String>,
    /// Trust this CA's certificates (PEM) for the relay, besides the
    /// system's roots; kept in the store for later commands.
    #[arg(long, value_name = "PEM")]
    ca_file: Option<std::path::PathBuf>,
    /// Accept only the relay certificate with this SHA-256 (64 hex digits,
    /// of its DER form), whoever signed it; kept in the store.
    #[arg(long, value_name = "HEX")]
    pin_sha256: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub async fn init(store: &Path, args: InitArgs) -> anyhow::Result<()> {
    let handle = Handle::new(args.handle.as_str())?;
    if store.exists() {
        anyhow::bail!(
            "a store already exists at {}; pass another --store",
            store.display()
        );
    }
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let endpoint = endpoint(&args)?;
    let pass = store::passphrase(true)?;
    let client = Client::create_at(store, &pass, KdfParams::DEFAULT, &endpoint, &handle)
        .await
        .map_err(store::explain)?;
    let k = client.keys();
    if args.json {
        return render::json(&serde_json::json!({
            "store": store,
            "handle": client.me(),
            "relay": client.relay_url(),
            "curve25519": b64::encode(k.curve25519),
            "ed25519": b64::encode(k.ed25519),
        }));
    }
    outln!(
        "created {} for {} on {}",
        store.display(),
        client.me(),
        client.relay_url()
    );
    outln!("  curve25519 {}", b64::encode(k.curve25519));
    outln!("  ed25519    {}", b64::encode(k.ed25519));
    outln!("Compare safety numbers in person with `backchannel fingerprint PEER` once you share a channel.");
    Ok(())
}

/// Show safety numbers to compare in person.
///
/// With PEER: the pairwise safety number of you and PEER, which reads the
/// same on both sides, and how PEER's key was learnt ("introduced by the
/// mediator, unverified" until you compare it over a path the intermediary
/// does not control). Without: your keys and every pinned peer.
///
/// Examples:
///
///   backchannel --store red.store fingerprint mediator
///   backchannel --store red.store fingerprint --json
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct FingerprintArgs {
    /// The other principal.
    peer: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub fn fingerprint(store: &Path, args: FingerprintArgs) -> anyhow::Result<()> {
    let client = store::open_reader(store)?;
    let peers: Vec<Handle> = match &args.peer {
        Some(p) => vec![Handle::new(p.as_str())?],
        None => client.peers(),
    };
    let mut rows = Vec::new();
    for p in peers {
        let (number, trust) = client.safety_number(&p)?;
        rows.push(serde_json::json!({"peer": p.as_str(), "safety_number": number.one_line(), "key": trust.label()}));
        if !args.json {
            outln!(
                "{} and {} ({}):\n{}\n",
                client.me(),
                p,
                trust.label(),
                number
            );
        }
    }
    let k = client.keys();
    if args.json {
        render::json(&serde_json::json!({
            "handle": client.me().as_str(),
            "curve25519": b64::encode(k.curve25519),
            "ed25519": b64::encode(k.ed25519),
            "peers": rows,
        }))?;
    } else if args.peer.is_none() {
        outln!(
            "{}: curve25519 {}  ed25519 {}",
            client.me(),
            b64::encode(k.curve25519),
            b64::encode(k.ed25519)
        );
    }
    Ok(())
}

/// Change the store's passphrase.
#[derive(Debug, Args)]
pub struct PassphraseArgs {
    #[command(subcommand)]
    command: PassphraseCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PassphraseCommand {
    /// Seal the store under a new passphrase; the old one stops working.
    ///
    /// The current passphrase comes from --passphrase-file,
    /// BACKCHANNEL_PASSPHRASE or a prompt; the new one from
    /// --new-passphrase-file or a prompt (twice). The store key is wrapped
    /// anew in one transaction: the store opens with exactly one of the two
    /// at any moment, even after a crash. Stop `watch` on this store first.
    ///
    /// Examples:
    ///
    ///   backchannel --store blue.store passphrase change
    ///   backchannel --store blue.store --passphrase-file old.txt passphrase change --new-passphrase-file new.txt
    #[command(verbatim_doc_comment)]
    Change {
        /// Read the new passphrase from the first line of this file.
        #[arg(long, value_name = "PATH")]
        new_passphrase_file: Option<std::path::PathBuf>,
    },
}

pub fn passphrase(store: &Path, args: PassphraseArgs) -> anyhow::Result<()> {
    let PassphraseCommand::Change {
        new_passphrase_file,
    } = args.command;
    let old = store::passphrase(false)?;
    let mut client = Client::open(store, &old).map_err(|e| match e.code() {
        "store_busy" => anyhow::anyhow!(
            "another backchannel process (`watch`?) is using {}: stop it, then change the passphrase",
            store.display()
        ),
        _ => store::explain(e),
    })?;
    let new = match &new_passphrase_file {
        Some(path) => store::passphrase_from_file(path)?,
        None => store::ask_passphrase("New passphrase", true)?,
    };
    if new == old {
        anyhow::bail!("the new passphrase is the old one; nothing was changed");
    }
    client
        .change_passphrase(&old, &new)
        .map_err(store::explain)?;
    outln!(
        "{} is now sealed under the new passphrase; the old one no longer opens it",
        store.display()
    );
    Ok(())
}

/// The relay as `init` is told of it; refuses plain HTTP to a host other
/// than loopback (the relay's words would cross the network unprotected).
fn endpoint(args: &InitArgs) -> anyhow::Result<RelayEndpoint> {
    let url = args.relay.trim_end_matches('/').to_string();
    backchannel_client::transport::check_relay_url(&url).map_err(|e| match e {
        backchannel_client::TransportError::Unreachable { detail, .. } => {
            anyhow::anyhow!("--relay {url}: {detail}")
        }
        other => other.into(),
    })?;
    let ca_pem = match &args.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("reading the CA file {}", path.display()))?,
        ),
        None => None,
    };
    let pin = match &args.pin_sha256 {
        Some(hex) => Some(
            backchannel_protocol::Digest::from_hex(hex.trim().trim_start_matches("sha256:"))
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--pin-sha256 takes 64 hex digits, as `relay serve` prints them"
                    )
                })?,
        ),
        None => None,
    };
    Ok(RelayEndpoint {
        url,
        trust: RelayTrust { ca_pem, pin },
        invite: args.invite.clone(),
    })
}
