//! Opening a principal's store from the CLI: the passphrase, and the one
//! writer per store. A command that changes state takes the store's lock;
//! if `watch` holds it, the command hands its work to the running `watch`
//! over a Unix socket beside the store instead, so no two processes ever
//! advance the same Olm session.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use backchannel_client::{lock, Client, ClientError, IdKind};
use backchannel_protocol::commitments::actors::{ActorError, Namespace};
use backchannel_protocol::commitments::{Actor, Structured};
use backchannel_protocol::{ChannelId, MessageId};
use serde::{Deserialize, Serialize};

/// Where the passphrase comes from when not prompted.
pub const PASSPHRASE_ENV: &str = "BACKCHANNEL_PASSPHRASE";

/// `--passphrase-file`, when given (set once, by `main`).
pub static PASSPHRASE_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// The first line of `path` (without its line ending), for a passphrase.
pub fn passphrase_from_file(path: &Path) -> anyhow::Result<String> {
    use std::os::unix::fs::PermissionsExt as _;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the passphrase file {}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        bail!(
            "the passphrase file {} is empty: write the passphrase on its first line",
            path.display()
        );
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            eprintln!(
                "warning: others may read the passphrase file {}: `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(line.to_string())
}

/// The store path given, or the default under the user's data directory.
pub fn store_path(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return Ok(p);
    }
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .context("no --store given and neither XDG_DATA_HOME nor HOME is set")?;
    Ok(base.join("backchannel").join("store"))
}

/// The passphrase typed once in this process (a command that reads, then
/// writes, asks only once).
static TYPED: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The passphrase from `--passphrase-file`, else `BACKCHANNEL_PASSPHRASE`,
/// else asked for on the terminal (twice when `confirm`).
pub fn passphrase(confirm: bool) -> anyhow::Result<String> {
    if let Some(path) = PASSPHRASE_FILE.get() {
        return passphrase_from_file(path);
    }
    if let (false, Some(p)) = (confirm, TYPED.get()) {
        return Ok(p.clone());
    }
    if let Ok(p) = std::env::var(PASSPHRASE_ENV) {
        if p.is_empty() {
            bail!("{PASSPHRASE_ENV} is set but empty");
        }
        return Ok(p);
    }
    let typed = ask_passphrase("Passphrase for the store", confirm)?;
    let _ = TYPED.set(typed.clone());
    Ok(typed)
}

/// Asks on the terminal (twice when `confirm`).
pub fn ask_passphrase(what: &str, confirm: bool) -> anyhow::Result<String> {
    let first = rpassword::prompt_password(format!("{what}: ")).with_context(|| {
        format!("cannot read a passphrase: run in a terminal, or pass --passphrase-file FILE (or set {PASSPHRASE_ENV})")
    })?;
    if first.is_empty() {
        bail!("the passphrase is empty");
    }
    if confirm {
        let again = rpassword::prompt_password(format!("{what}, again: "))
            .context("reading the passphrase")?;
        if again != first {
            bail!("the two passphrases differ; nothing was changed");
        }
    }
    Ok(first)
}

/// Opens the store for reading only (no lock, no network).
pub fn open_reader(store: &Path) -> anyhow::Result<Client> {
    Client::open_read_only(store, &passphrase(false)?).map_err(explain)
}

/// Work a command can hand to a running `watch`.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Work {
    /// `channel accept`: exactly the proposal the user was shown.
    Accept {
        /// Channel id prefix.
        channel: String,
        /// The proposal's digest.
        proposal: backchannel_protocol::Digest,
    },
    /// `channel create`.
    Create {
        /// Title.
        title: String,
        /// Parties.
        parties: Vec<String>,
        /// Observers.
        observers: Vec<String>,
        /// Policy.
        mediator_reads: bool,
        /// Seconds.
        receipt_deadline_s: u32,
        /// Seconds.
        heartbeat_interval_s: u32,
    },
    /// `channel amend`.
    Amend {
        /// Channel id prefix.
        channel: String,
        /// Parties to add.
        add: Vec<String>,
        /// Observers to add.
        observers: Vec<String>,
        /// Members to remove.
        remove: Vec<String>,
        /// New `mediator_reads`, if changed.
        mediator_reads: Option<bool>,
        /// New deadline, if changed.
        receipt_deadline_s: Option<u32>,
        /// New heartbeat interval, if changed.
        heartbeat_interval_s: Option<u32>,
    },
    /// `channel leave`.
    Leave {
        /// Channel id prefix.
        channel: String,
    },
    /// `channel decline`.
    Decline {
        /// Channel id prefix.
        channel: String,
        /// Reason.
        reason: String,
    },
    /// `send`.
    Send {
        /// Channel id prefix.
        channel: String,
        /// Text.
        text: String,
        /// Message id answered.
        reply_to: Option<String>,
    },
    /// `sync`.
    Sync,
    /// `exchange create`.
    ExchangeCreate {
        /// Channel id prefix.
        channel: String,
        /// The other participants.
        with: Vec<String>,
        /// The terms.
        terms: String,
        /// Deadline, ms.
        deadline_ms: i64,
    },
    /// `exchange submit`.
    ExchangeSubmit {
        /// Exchange id.
        exchange: String,
        /// The offer.
        offer: String,
    },
    /// `exchange withdraw`.
    ExchangeWithdraw {
        /// Exchange id.
        exchange: String,
    },
    /// `exchange status`.
    ExchangeStatus {
        /// Exchange id.
        exchange: String,
    },
    /// `assure`, `redline`, `report`... (a typed payload as JSON; a plain
    /// actor name must be a member or a known outside actor, message ids
    /// may be unique prefixes).
    Structured {
        /// Channel id prefix.
        channel: String,
        /// The payload.
        body: serde_json::Value,
    },
    /// `actors same`.
    ActorSame {
        /// Channel id prefix.
        channel: String,
        /// The outside actor's name.
        name: String,
    },
    /// `actors forget`.
    ActorForget {
        /// Channel id prefix.
        channel: String,
        /// The outside actor's name.
        name: String,
    },
    /// `verify --dismiss`.
    Dismiss {
        /// Alert id.
        id: backchannel_protocol::member::AlertId,
    },
    /// `trust verify`.
    TrustVerify {
        /// The peer.
        peer: String,
        /// The safety number the user compared.
        number: String,
    },
    /// `trust dangerous-accept-new-key`.
    AcceptNewKey {
        /// The peer.
        peer: String,
    },
}

/// The answer to handed-over work: the command's JSON result or its error.
#[derive(Debug, Serialize, Deserialize)]
pub struct WorkResult {
    /// The result on success.
    pub ok: Option<serde_json::Value>,
    /// The error, with its context, on failure.
    pub error: Option<String>,
}

/// Runs `work` on an open client; the JSON shape is the command's `--json`.
pub async fn perform(client: &mut Client, work: Work) -> anyhow::Result<serde_json::Value> {
    perform_unexplained(client, work).await.map_err(with_hint)
}

async fn perform_unexplained(client: &mut Client, work: Work) -> anyhow::Result<serde_json::Value> {
    use backchannel_protocol::payload::Policy;
    use backchannel_protocol::Handle;
    let handles = |v: &[String]| -> anyhow::Result<Vec<Handle>> {
        v.iter()
            .map(|h| Handle::new(h.as_str()).map_err(anyhow::Error::from))
            .collect()
    };
    Ok(match work {
        Work::Accept { channel, proposal } => {
            let id = client.resolve_channel(&channel)?;
            let m = client.accept(id, proposal).await?;
            {
                let mut v = sent(client, id, m);
                v["proposal"] = serde_json::to_value(proposal)?;
                v
            }
        }
        Work::Create {
            title,
            parties,
            observers,
            mediator_reads,
            receipt_deadline_s,
            heartbeat_interval_s,
        } => {
            let policy = Policy {
                mediator_reads,
                receipt_deadline_s,
                heartbeat_interval_s,
            };
            let id = client
                .create_channel(&title, &handles(&parties)?, &handles(&observers)?, policy)
                .await?;
            serde_json::json!({"channel_id": id.to_hex()})
        }
        Work::Amend {
            channel,
            add,
            observers,
            remove,
            mediator_reads,
            receipt_deadline_s,
            heartbeat_interval_s,
        } => {
            let id = client.resolve_channel(&channel)?;
            let view = client
                .channels()?
                .into_iter()
                .find(|c| c.channel_id == id.to_hex())
                .ok_or_else(|| anyhow::anyhow!("unknown channel {channel}"))?;
            let policy = Policy {
                mediator_reads: mediator_reads.unwrap_or(view.mediator_reads),
                receipt_deadline_s: receipt_deadline_s.unwrap_or(view.receipt_deadline_s),
                heartbeat_interval_s: heartbeat_interval_s.unwrap_or(view.heartbeat_interval_s),
            };
            let m = client
                .amend(
                    id,
                    &handles(&add)?,
                    &handles(&observers)?,
                    &handles(&remove)?,
                    policy,
                )
                .await?;
            sent(client, id, m)
        }
        Work::Leave { channel } => {
            let id = client.resolve_channel(&channel)?;
            let m = client.leave(id).await?;
            sent(client, id, m)
        }
        Work::Decline { channel, reason } => {
            let id = client.resolve_channel(&channel)?;
            let m = client.decline(id, &reason).await?;
            sent(client, id, m)
        }
        Work::Send {
            channel,
            text,
            reply_to,
        } => {
            let id = client.resolve_channel(&channel)?;
            let reply = reply_to.map(|r| reply_id(client, id, &r)).transpose()?;
            let m = client.send_text(id, &text, reply).await?;
            sent(client, id, m)
        }
        Work::Sync => {
            let report = client.sync().await?;
            let mut out = serde_json::to_value(&report)?;
            // A proposal that arrived is shown in full, never as one line.
            let mut awaiting = Vec::new();
            for id in client
                .member()
                .channels()
                .keys()
                .copied()
                .collect::<Vec<_>>()
            {
                let arrived = report.received.iter().any(|e| {
                    e.channel_id == id.to_hex()
                        && matches!(e.kind.as_str(), "creation" | "amendment")
                });
                if let Some(s) = client.consent(id)?.filter(|s| arrived && s.awaits_you) {
                    awaiting.push(s);
                }
            }
            out["awaiting_your_consent"] = serde_json::to_value(awaiting)?;
            out
        }
        Work::ExchangeCreate {
            channel,
            with,
            terms,
            deadline_ms,
        } => {
            let id = client.resolve_channel(&channel)?;
            let x = client
                .exchange_create(
                    id,
                    &handles(&with)?,
                    &terms,
                    backchannel_protocol::Timestamp(deadline_ms),
                )
                .await?;
            serde_json::json!({"exchange_id": x.to_hex()})
        }
        Work::ExchangeSubmit { exchange, offer } => {
            let x = client.resolve_exchange(&exchange)?;
            serde_json::to_value(client.exchange_submit(x, &offer).await?)?
        }
        Work::ExchangeWithdraw { exchange } => {
            let x = client.resolve_exchange(&exchange)?;
            serde_json::to_value(client.exchange_withdraw(x).await?)?
        }
        Work::ExchangeStatus { exchange } => {
            let x = client.resolve_exchange(&exchange)?;
            serde_json::to_value(client.exchange_status(x).await?)?
        }
        Work::Structured { channel, body } => {
            let (id, structured) = structured(client, &channel, body)?;
            let m = client.send_structured(id, structured, None).await?;
            sent(client, id, m)
        }
        Work::ActorSame { channel, name } => {
            let id = client.resolve_channel(&channel)?;
            let named_here = client.namespace(id)?.is_outside(&name);
            let member_in = client.add_actor_alias(id, &name)?;
            serde_json::json!({
                "channel_id": id,
                "name": name,
                "member_in": member_in,
                "named_here": named_here,
            })
        }
        Work::ActorForget { channel, name } => {
            let id = client.resolve_channel(&channel)?;
            serde_json::json!({"forgotten": client.forget_actor_alias(id, &name)?})
        }
        Work::Dismiss { id } => {
            if !client.dismiss_alert(id)? {
                bail!("no alert {id}: `backchannel verify --all` lists them with their ids");
            }
            serde_json::json!({"dismissed": id})
        }
        Work::TrustVerify { peer, number } => {
            let peer = Handle::new(peer.as_str())?;
            let (expected, _) = client.safety_number(&peer)?;
            let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
            if digits(&number) != digits(&expected.one_line()) {
                bail!("that is not the safety number of you and {peer}; nothing was marked verified. Compare again: `backchannel fingerprint {peer}`");
            }
            client.mark_verified(&peer)?;
            serde_json::json!({"peer": peer.as_str(), "verified": true})
        }
        Work::AcceptNewKey { peer } => {
            let peer = Handle::new(peer.as_str())?;
            let number = client.dangerous_accept_new_key(&peer).await?;
            serde_json::json!({"peer": peer.as_str(), "safety_number": number.one_line(), "key": "first seen from the relay, unverified"})
        }
    })
}

/// A sending command's result: the ids, and whether the relay took the
/// message or it waits in the outbox (and why).
fn sent(
    client: &Client,
    channel: backchannel_protocol::ChannelId,
    m: backchannel_protocol::MessageId,
) -> serde_json::Value {
    let mut v = serde_json::json!({"channel_id": channel.to_hex(), "message_id": m.to_hex()});
    if let (Some(o), Ok(serde_json::Value::Object(d))) =
        (v.as_object_mut(), serde_json::to_value(client.delivery(m)))
    {
        o.extend(d);
    }
    v
}

/// `--dry-run`, flattened into every command that sends.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct DryRun {
    /// Print exactly what would be sent (its kind, channel and payload) and
    /// send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a command would send, as `--dry-run` shows it.
#[derive(Debug, Serialize)]
pub struct Preview {
    /// Always true: nothing was sent.
    pub dry_run: bool,
    /// The kind of message (`text`, `assurance`, `acceptance`...).
    pub kind: String,
    /// The channel it would go to (none for a new channel).
    pub channel_id: Option<ChannelId>,
    /// The payload: the typed body, the text, or what the proposal changes.
    pub payload: serde_json::Value,
    /// A typed body's terms in words.
    pub terms: Vec<backchannel_protocol::commitments::terms::Term>,
}

/// Hands `work` to [`run_work`], or with `--dry-run` prints what it would
/// send (JSON with `json`), sends nothing and returns `None`.
pub async fn run_or_preview(
    store: &Path,
    work: Work,
    dry: DryRun,
    json: bool,
) -> anyhow::Result<Option<serde_json::Value>> {
    if !dry.dry_run {
        return run_work(store, work).await.map(Some);
    }
    let client = open_reader(store)?;
    let preview = preview(&client, work).map_err(with_hint)?;
    if json {
        crate::render::json(&preview)?;
    } else {
        out!("{}", crate::render::preview(&preview));
    }
    Ok(None)
}

/// What `work` would send, checked as sending would check it.
fn preview(client: &Client, work: Work) -> anyhow::Result<Preview> {
    use serde_json::json;
    let (kind, channel, payload) = match work {
        Work::Accept { channel, proposal } => (
            "acceptance".to_string(),
            Some(client.resolve_channel(&channel)?),
            json!({ "proposal": proposal }),
        ),
        Work::Leave { channel } => (
            "leave (an amendment removing you)".to_string(),
            Some(client.resolve_channel(&channel)?),
            json!({}),
        ),
        Work::Create {
            title,
            parties,
            observers,
            mediator_reads,
            receipt_deadline_s,
            heartbeat_interval_s,
        } => (
            "creation".into(),
            None,
            json!({"title": title, "parties": parties, "observers": observers,
                "policy": {"mediator_reads": mediator_reads, "receipt_deadline_s": receipt_deadline_s,
                "heartbeat_interval_s": heartbeat_interval_s}}),
        ),
        Work::Amend {
            channel,
            add,
            observers,
            remove,
            mediator_reads,
            receipt_deadline_s,
            heartbeat_interval_s,
        } => (
            "amendment".into(),
            Some(client.resolve_channel(&channel)?),
            json!({"add_parties": add, "add_observers": observers, "remove": remove,
                "mediator_reads": mediator_reads, "receipt_deadline_s": receipt_deadline_s,
                "heartbeat_interval_s": heartbeat_interval_s}),
        ),
        Work::Decline { channel, reason } => (
            "decline".into(),
            Some(client.resolve_channel(&channel)?),
            json!({ "reason": reason }),
        ),
        Work::Send {
            channel,
            text,
            reply_to,
        } => {
            let id = client.resolve_channel(&channel)?;
            let reply = reply_to.map(|r| reply_id(client, id, &r)).transpose()?;
            if text.trim().is_empty() {
                bail!("the message is empty");
            }
            (
                "text".into(),
                Some(id),
                json!({"text": text, "in_reply_to": reply}),
            )
        }
        Work::ExchangeCreate {
            channel,
            with,
            terms,
            deadline_ms,
        } => (
            "exchange creation (announced as escrow_exchange)".into(),
            Some(client.resolve_channel(&channel)?),
            json!({"with": with, "terms": terms, "deadline_ms": deadline_ms}),
        ),
        Work::ExchangeSubmit { exchange, offer } => {
            let x = client.resolve_exchange(&exchange)?;
            (
                "sealed offer".into(),
                exchange_channel(client, x),
                json!({"exchange": x, "offer": offer}),
            )
        }
        Work::ExchangeWithdraw { exchange } => {
            let x = client.resolve_exchange(&exchange)?;
            (
                "offer withdrawal".into(),
                exchange_channel(client, x),
                json!({ "exchange": x }),
            )
        }
        Work::Structured { channel, body } => {
            let (id, body) = structured(client, &channel, body)?;
            body.validate()?;
            client.check_act(id, &body)?;
            return Ok(Preview {
                dry_run: true,
                kind: body.kind().into(),
                channel_id: Some(id),
                payload: serde_json::to_value(&body)?,
                terms: backchannel_protocol::commitments::terms::terms(&body),
            });
        }
        _ => bail!("this command sends nothing: there is nothing to preview"),
    };
    Ok(Preview {
        dry_run: true,
        kind,
        channel_id: channel,
        payload,
        terms: Vec::new(),
    })
}

/// The channel an exchange was announced in, if this store holds it.
fn exchange_channel(client: &Client, x: backchannel_protocol::ExchangeId) -> Option<ChannelId> {
    client
        .exchanges()
        .into_iter()
        .find(|e| e.exchange_id == x)
        .map(|e| e.channel_id)
}

/// The message `prefix` names in `channel`, for `--reply-to`.
fn reply_id(client: &Client, channel: ChannelId, prefix: &str) -> Result<MessageId, ClientError> {
    client
        .resolve_message(Some(channel), prefix)
        .map(|(_, m)| m)
}

/// The typed payload `body` stands for, in the channel `channel` names:
/// actors resolved in the channel's namespace, and message ids given as
/// prefixes become whole ids.
fn structured(
    client: &Client,
    channel: &str,
    mut body: serde_json::Value,
) -> anyhow::Result<(ChannelId, Structured)> {
    let id = client.resolve_channel(channel)?;
    resolve_actors(&mut body, &client.namespace(id)?)
        .map_err(|e| explain_actor(e, Some(channel), true))?;
    if let Some(obj) = body.as_object_mut() {
        for field in Structured::REFERENCE_FIELDS {
            if let Some(serde_json::Value::String(prefix)) = obj.get(field).cloned() {
                let (_, m) = client
                    .resolve_message(Some(id), &prefix)
                    .map_err(|e| explain_in(e, channel))?;
                obj.insert(field.to_string(), serde_json::Value::String(m.to_hex()));
            }
        }
    }
    let structured = serde_json::from_value(body).context("building the payload")?;
    Ok((id, structured))
}

/// Actors in data from outside (imported event records): a name is the
/// member with that handle, else an outside actor.
pub fn imported_actors(v: &mut serde_json::Value, ns: &Namespace) {
    walk_actors(v, &mut |a| {
        *a = match std::mem::replace(a, Actor::Outside(String::new())) {
            Actor::Member(n) if !ns.is_member(&n) => Actor::Outside(n),
            other => other,
        };
        Ok(())
    })
    .unwrap_or_default();
}

/// Actors a person typed: a plain name (`{"member": name}` as the
/// commands write it) must be a member or an outside actor the channel
/// already names; `outside:NAME` must not be a member's name. Unknown
/// names are refused with what was probably meant.
fn resolve_actors(v: &mut serde_json::Value, ns: &Namespace) -> Result<(), ActorError> {
    walk_actors(v, &mut |a| {
        *a = match a {
            Actor::Member(n) => ns.plain(n)?,
            Actor::Outside(n) => ns.outside_named(n)?,
        };
        Ok(())
    })
}

/// Calls `f` on every actor (`{"member": n}` or `{"outside": n}`) in `v`.
fn walk_actors(
    v: &mut serde_json::Value,
    f: &mut dyn FnMut(&mut Actor) -> Result<(), ActorError>,
) -> Result<(), ActorError> {
    match v {
        serde_json::Value::Object(o) => {
            if o.len() == 1 && (o.contains_key("member") || o.contains_key("outside")) {
                if let Ok(mut a) =
                    serde_json::from_value::<Actor>(serde_json::Value::Object(o.clone()))
                {
                    f(&mut a)?;
                    if let Ok(serde_json::Value::Object(back)) = serde_json::to_value(&a) {
                        *o = back;
                    }
                    return Ok(());
                }
            }
            o.values_mut().try_for_each(|x| walk_actors(x, f))
        }
        serde_json::Value::Array(a) => a.iter_mut().try_for_each(|x| walk_actors(x, f)),
        _ => Ok(()),
    }
}

/// Does `work` as the store's one writer: directly (the client library
/// takes the store's lock), or handed to the running `watch`, or after
/// waiting for the lock.
pub async fn run_work(store: &Path, work: Work) -> anyhow::Result<serde_json::Value> {
    if !store.exists() {
        bail!(
            "no store at {}: run `backchannel init` first",
            store.display()
        );
    }
    let pass = passphrase(false)?;
    let mut client = match Client::open(store, &pass) {
        Ok(c) => c,
        Err(ClientError::Busy(_)) => {
            let json = serde_json::to_value(&work)?;
            // A writer that has just started may not listen yet: ask again
            // for a few seconds before waiting for its lock.
            let mut answered = None;
            for _ in 0..30 {
                answered = lock::hand_over(store, &json).await.map_err(|e| {
                    anyhow::anyhow!("{e}\n  hint: `watch` may have done it before failing: check `backchannel outbox` and `backchannel log` before you try again")
                })?;
                if answered.is_some() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            if let Some(answer) = answered {
                let result: WorkResult = serde_json::from_value(answer)
                    .context("`watch` answered something unreadable; it may have done the work: check `backchannel outbox` and `backchannel log` before you try again")?;
                return match (result.ok, result.error) {
                    (Some(v), _) => Ok(v),
                    (None, e) => Err(anyhow::anyhow!(e.unwrap_or_else(|| "`watch` failed".into()))),
                };
            }
            eprintln!(
                "waiting for the other backchannel process using {} ...",
                store.display()
            );
            let held = lock::StoreLock::wait(store).map_err(explain)?;
            Client::open_locked(store, &pass, held).map_err(explain)?
        }
        Err(e) => return Err(explain(e)),
    };
    perform(&mut client, work).await
}

/// Serves handed-over work for `watch`, one request per connection.
pub fn listen(store: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    lock::listen(store).map_err(explain)
}

/// Removes the socket when `watch` ends.
pub fn unlisten(store: &Path) {
    lock::unlisten(store);
}

/// What to do next, for a client error.
fn hint(e: &ClientError) -> Option<&'static str> {
    Some(match e.code() {
        "not_found" if matches!(e, ClientError::NotFound { kind: IdKind::Exchange, .. }) => {
            "`backchannel exchange list` lists the exchanges announced in your channels; `backchannel sync` fetches new ones"
        }
        "not_found" => "`backchannel log CHANNEL` lists a channel's messages with their ids; `backchannel sync` fetches new ones",
        "wrong_passphrase" => "check what you typed, the --passphrase-file or BACKCHANNEL_PASSPHRASE",
        "no_store" => "create one with `backchannel init --relay URL --handle NAME`, or pass --store",
        "relay_unreachable" => "nothing was sent or queued; is the relay running? (`backchannel relay serve` starts one)",
        "unauthorized" => "nothing was sent. Only the mediator finds (and only in a channel whose policy lets it read); only an assurance's issuer confirms its lapse, revokes or suspends it, or answers an allegation against it; `backchannel show ID` says whose a message is, and docs/commitments.md, \"Who may do what\", lists every rule",
        "channel_refused" => "`backchannel sync` fetches what the others sent; `backchannel channel show ID` shows where the channel stands",
        _ => return None,
    })
}

/// Adds what to do to a client error met in `channel` (as typed).
fn explain_in(e: ClientError, channel: &str) -> anyhow::Error {
    match e {
        ClientError::NotFound {
            kind: IdKind::Message,
            ..
        } => anyhow::anyhow!(
            "{e}\n  hint: `backchannel log {channel}` lists the channel's messages with their ids; `backchannel sync` fetches new ones"
        ),
        e => explain(e),
    }
}

/// Adds what to do to a refused actor name (met in `channel` as typed, or
/// across every channel): where to read the names that would be
/// understood. `sends`: the command would have sent, and did not.
pub fn explain_actor(e: ActorError, channel: Option<&str>, sends: bool) -> anyhow::Error {
    let nothing = if sends { "nothing was sent; " } else { "" };
    match e {
        ActorError::Mode { .. } => anyhow::anyhow!("{e}"),
        e => {
            let list = match channel {
                Some(c) => format!("`backchannel actors list {c}` lists the channel's members and the outside actors its commitments name"),
                None => "`backchannel actors list` lists each channel's members and outside actors".to_string(),
            };
            anyhow::anyhow!("{e}\n  hint: {nothing}{list}")
        }
    }
}

/// Adds what to do to client errors.
pub fn explain(e: ClientError) -> anyhow::Error {
    match hint(&e) {
        Some(h) => anyhow::anyhow!("{e}\n  hint: {h}"),
        None => anyhow::Error::new(e),
    }
}

/// Adds what to do to an error that is a client error.
pub fn with_hint(e: anyhow::Error) -> anyhow::Error {
    match e.downcast::<ClientError>() {
        Ok(ce) => explain(ce),
        Err(other) => other,
    }
}
