//! `backchannel demo`: the whole story on an embedded relay, narrated, with
//! every step verified. Exits non-zero if any check fails.

use std::path::PathBuf;

use anyhow::Context as _;
use backchannel_client::{Client, KdfParams, LogEntry, RelayEndpoint, RelayTrust};
use backchannel_protocol::commitments::fold::State;
use backchannel_protocol::commitments::plover::EventType;
use backchannel_protocol::commitments::structured::{
    Action, Actor, Assurance, Commitment, Formality, LapseCondition, RedLine, RelationKind, Scope,
    Structured,
};
use backchannel_protocol::commitments::whatif::{Effect, Hypothesis};
use backchannel_protocol::member::AlertKind;
use backchannel_protocol::payload::Policy;
use backchannel_protocol::{b64, ChannelId, Envelope, Handle, MessageId, Timestamp};
use backchannel_relay::server::LoopbackCa;
use backchannel_relay::store::{RelayStore, SqliteStore};
use backchannel_relay::{serve_with, Relay, ServeOptions, TlsFiles};
use clap::Args;

use crate::render;

const BLUE_SAYS: &str =
    "Blue will refrain from military action against Red, as long as it is not attacked first.";
const RED_SAYS: &str = "Red received this through the same channel. Red will not launch a preemptive attack against Blue either.";
const DEMO_PASSPHRASE: &str = "demo only: not a real passphrase";

/// Run the whole story on an embedded relay, narrated.
///
/// Starts a relay on 127.0.0.1 (a free port, a temporary SQLite database),
/// creates a mediator and two parties with no direct relations (blue, red),
/// opens a channel the mediator cannot read, carries blue's assurance to red
/// and red's answer back through the same channel, then shows what the relay
/// stored (ciphertext and routing only) and what the mediator holds (stubs).
/// Each act shows the command a principal would type for it, and each term
/// is explained in one line the first time it is used.
/// Every step is checked; the exit status is 0 only if all checks pass (1
/// if one fails, 2 if the demo could not run).
///
/// Example:
///
///   backchannel demo
///   backchannel demo --keep /tmp/bc-demo    # keep the databases to inspect
///   backchannel demo --tls                  # over https and wss, with a throwaway CA
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct DemoArgs {
    /// Keep the relay database and the three stores in this directory.
    #[arg(long, value_name = "DIR")]
    keep: Option<PathBuf>,
    /// Serve the relay over TLS with a throwaway CA made for the run; the
    /// principals trust it as `init --ca-file` would.
    #[arg(long)]
    tls: bool,
}

/// The demo's terms, each explained in one line the first time any printed
/// line uses it: (term, the words that use it, what it means). A word
/// counts where it starts a word, in any case (`stub` in "stubs").
const GLOSSARY: &[(&str, &[&str], &str)] = &[
    ("ed25519", &["ed25519"], "the public signing half of a principal's identity keys; it signs only one-time keys and logins, never a message"),
    ("safety number", &["safety number"], "60 digits computed from two principals' identity keys; the same digits on both screens mean nobody sits in between"),
    ("mediator_reads", &["mediator_reads", "mediator-reads"], "the channel policy that lets the mediator read content; every party has to accept it"),
    ("receipt", &["receipt"], "a member's end-to-end acknowledgement of what it has received, due within the channel's deadline"),
    ("heartbeat", &["heartbeat"], "a small message each member sends at an interval, so that silence can be told from loss"),
    ("epoch", &["epoch"], "a numbered stretch of a channel with one membership and policy; every accepted change starts the next"),
    ("stub", &["stub"], "what a member holds of a message it may not read: the header and a salted digest, no words"),
    ("digest", &["digest"], "a hash fixing a message's exact bytes: two members with the same digest hold the same message"),
    ("olm", &["olm"], "the end-to-end encryption (a double ratchet, as in Matrix), one ciphertext per member"),
    ("chain", &["chain"], "each sender's messages in order, each naming the digest of the one before, so a dropped or swapped one shows"),
    ("head vector", &["head vector"], "the last position and digest a member has seen from each sender, carried in every message, so members can compare histories"),
    ("alert", &["alert"], "evidence of tampering or loss, kept until dismissed; `backchannel verify` lists what is open"),
    ("gap", &["gap"], "an alert: a sender's later message arrived while an earlier position is missing"),
    ("ack_overdue", &["ack_overdue"], "an alert: a member's receipts do not cover a message past the deadline"),
    ("assurance", &["assurance"], "a typed commitment: who refrains from what towards whom, unless what happens first"),
    ("non-paper", &["non-paper"], "an informal text without official standing, a diplomatic form"),
    ("assault", &["assault"], "an event type from PLOVER, a vocabulary of political events: physical violence against a target"),
    ("red line", &["red line"], "a stated trigger and response: if this happens, we will do that"),
    ("board", &["board"], "the state of every commitment in a channel, folded from its transcript"),
    ("what-if", &["what if", "what-if", "whatif"], "the cascade the board predicts if an actor acts: which red lines fire, which assurances lapse"),
    ("escrow", &["escrow"], "the relay holds sealed offers until every participant's is in, then releases them together; a partial or late release raises an alert"),
    ("sealed offer", &["sealed offer"], "an offer encrypted for the other participants, unreadable by the relay"),
];

/// Whether `line` uses one of `words` (at the start of a word, any case).
fn uses(line: &str, words: &[&str]) -> bool {
    let lower = line.to_lowercase();
    words.iter().any(|w| {
        lower.match_indices(w).any(|(at, _)| {
            !lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// Prints the story: each line, then a one-line explanation of every term
/// it uses for the first time; and the checks as they pass or fail.
#[derive(Default)]
struct Narrator {
    explained: Vec<&'static str>,
    failed: Vec<String>,
}

impl Narrator {
    fn say(&mut self, text: &str) {
        for line in text.lines() {
            outln!("{line}");
            self.explain(line);
        }
    }

    /// Explains, below `line`, the terms it is the first to use.
    fn explain(&mut self, line: &str) {
        let indent = line.len() - line.trim_start().len();
        let indent = " ".repeat(indent.max(3));
        for (term, words, meaning) in GLOSSARY {
            if !self.explained.contains(term) && uses(line, words) {
                self.explained.push(term);
                let e = format!("{indent}({term}: {meaning})");
                outln!("{e}");
                self.explain(&e);
            }
        }
    }

    /// The command a principal would type for the act that follows.
    fn command(&mut self, command: &str) {
        self.say(&format!("   $ backchannel {command}"));
    }

    fn check(&mut self, ok: bool, what: &str) {
        self.say(&format!("  [{}] {what}", if ok { "ok" } else { "FAILED" }));
        if !ok {
            self.failed.push(what.to_string());
        }
    }
}

macro_rules! say {
    ($n:expr, $($arg:tt)*) => {
        $n.say(&format!($($arg)*))
    };
}

fn h(s: &str) -> anyhow::Result<Handle> {
    Ok(Handle::new(s)?)
}

fn texts(log: &[LogEntry]) -> Vec<(String, Option<String>, bool, String)> {
    log.iter()
        .filter(|e| e.kind == "text")
        .map(|e| (e.sender.clone(), e.text.clone(), e.stub, e.digest.clone()))
        .collect()
}

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let failed = runtime.block_on(story(args))?;
    if failed.is_empty() {
        outln!("\nEvery step verified.");
        Ok(())
    } else {
        Err(crate::Found(format!(
            "{} check(s) failed: {}",
            failed.len(),
            failed.join("; ")
        ))
        .into())
    }
}

async fn story(args: DemoArgs) -> anyhow::Result<Vec<String>> {
    let temp = tempfile::tempdir().context("creating a temporary directory")?;
    let dir = match &args.keep {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
            d.clone()
        }
        None => temp.path().to_path_buf(),
    };
    for name in ["relay.db", "mediator.store", "blue.store", "red.store"] {
        let _ = std::fs::remove_file(dir.join(name));
    }
    let db = dir.join("relay.db");
    let store = std::sync::Arc::new(SqliteStore::open(&db).context("opening the relay database")?);
    let relay = Relay::with(
        store.clone(),
        Default::default(),
        backchannel_relay::system_clock(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1")?;
    let (options, trust, scheme) = if args.tls {
        let ca = LoopbackCa::create(&dir).context("making the demo's throwaway CA")?;
        let files = TlsFiles::load(&ca.cert, &ca.key).context("loading the demo's certificate")?;
        let options = ServeOptions {
            tls: Some(std::sync::Arc::new(files)),
            ..ServeOptions::default()
        };
        let trust = RelayTrust {
            ca_pem: Some(ca.ca_pem.into_bytes()),
            pin: None,
        };
        (options, trust, "https")
    } else {
        (ServeOptions::default(), RelayTrust::default(), "http")
    };
    let url = format!("{scheme}://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with(listener, relay, options, async move {
        let _ = stopped.await;
    }));
    let mut n = Narrator::default();

    say!(
        n,
        "Backchannel demo: a relay on {url}, database {}\n",
        db.display()
    );
    say!(
        n,
        "1. Three principals make their keys and register with the relay:"
    );
    say!(n, "   the mediator (the intermediary's envoy), and blue and red, two states with no direct relations.");
    say!(
        n,
        "   Each keeps its store (one encrypted file) in {}; the commands a principal would type are shown with `$`.",
        dir.display()
    );
    let ca_flag = if args.tls { " --ca-file ca.pem" } else { "" };
    for name in ["mediator", "blue", "red"] {
        n.command(&format!(
            "--store {name}.store init --relay {url} --handle {name}{ca_flag}"
        ));
    }
    // The clients' clock: the real one, plus however far the story moves it.
    let skew = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let clock: backchannel_client::Clock = {
        let skew = skew.clone();
        std::sync::Arc::new(move || {
            backchannel_protocol::Timestamp(
                backchannel_client::now().0 + skew.load(std::sync::atomic::Ordering::SeqCst),
            )
        })
    };
    let make = |name: &'static str| {
        let clock = clock.clone();
        let path = dir.join(format!("{name}.store"));
        let endpoint = RelayEndpoint {
            url: url.clone(),
            trust: trust.clone(),
            invite: None,
        };
        async move {
            Client::create_at(
                &path,
                DEMO_PASSPHRASE,
                KdfParams::DEFAULT,
                &endpoint,
                &Handle::new(name)?,
            )
            .await
            .map(|mut c| {
                c.set_clock(clock.clone());
                c
            })
            .map_err(anyhow::Error::from)
        }
    };
    let mut mediator = make("mediator").await?;
    let mut blue = make("blue").await?;
    let mut red = make("red").await?;
    for c in [&mediator, &blue, &red] {
        say!(
            n,
            "   {:<9} ed25519 {}…",
            c.me().to_string(),
            &b64::encode(c.keys().ed25519)[..16]
        );
    }

    say!(
        n,
        "\n2. Blue and red cannot meet each other, but each meets the mediator's envoy in person"
    );
    say!(
        n,
        "   and compares a safety number covering both identity keys:"
    );
    for party in [&mut blue, &mut red] {
        party.pin_from_relay(&h("mediator")?).await?;
        let who = party.me().clone();
        mediator.pin_from_relay(&who).await?;
        let (theirs, _) = party.safety_number(&h("mediator")?)?;
        let (ours, _) = mediator.safety_number(&who)?;
        n.command(&format!("--store {who}.store fingerprint mediator"));
        say!(n, "   {who} and mediator: {}", theirs.one_line());
        n.check(
            theirs == ours,
            &format!("{who}'s screen and the mediator's show the same safety number"),
        );
        if theirs == ours {
            let number = theirs.one_line();
            n.command(&format!(
                "--store {who}.store trust verify mediator --number \"{number}\""
            ));
            n.command(&format!(
                "--store mediator.store trust verify {who} --number \"{number}\""
            ));
            party.mark_verified(&h("mediator")?)?;
            mediator.mark_verified(&who)?;
        }
    }

    say!(n, "\n3. The mediator proposes a channel it cannot read (no mediator_reads), receipts due within 1 h:");
    n.command("--store mediator.store channel create --title \"Assurances through the intermediary\" --party blue --party red --receipt-deadline 1h --heartbeat 10m");
    let policy = Policy {
        mediator_reads: false,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    let channel = mediator
        .create_channel(
            "Assurances through the intermediary",
            &[h("blue")?, h("red")?],
            &[],
            policy,
        )
        .await?;
    say!(n, "   channel {channel}");
    let c8 = channel.to_string()[..8].to_string();

    say!(n, "\n4. Blue and red fetch the proposal (members, their keys as the mediator introduces them, policy) and accept:");
    for party in [&mut blue, &mut red] {
        let who = party.me().to_string();
        n.command(&format!("--store {who}.store sync"));
        party.sync().await?;
        accept_shown(&mut n, party, channel).await?;
    }
    for c in [&mut mediator, &mut blue, &mut red] {
        c.sync().await?;
    }
    n.command("--store red.store channel list");
    let view = red
        .channels()?
        .into_iter()
        .next()
        .context("red has the channel")?;
    say!(
        n,
        "{}",
        render::channel(&view)
            .lines()
            .map(|l| format!("   {l}\n"))
            .collect::<String>()
    );
    n.check(
        [&mediator, &blue, &red].iter().all(|c| {
            c.channels()
                .is_ok_and(|v| v.first().is_some_and(|v| v.status == "active"))
        }),
        "the channel is active for all three: every party accepted",
    );
    n.check(
        view.members.iter().any(|m| {
            m.handle == "blue" && m.key.contains("introduced") && m.key.contains("unverified")
        }),
        "red sees blue's key as introduced by the mediator, unverified",
    );

    say!(n, "\n5. Blue sends its assurance:");
    n.command(&format!("--store blue.store send {c8} \"{BLUE_SAYS}\""));
    let m1 = blue.send_text(channel, BLUE_SAYS, None).await?;
    let relay_view = relay_holds(&*store, m1)?;
    say!(
        n,
        "   What the relay stores for it, one copy per member (routing and ciphertext only):"
    );
    for e in &relay_view {
        say!(
            n,
            "     {} -> {:<8} olm type {} {:>5} bytes  {}…",
            e.sender,
            e.recipient.to_string(),
            e.olm_type.number(),
            e.ciphertext.len(),
            &b64::encode(&e.ciphertext)[..40]
        );
    }
    let mut captured = relay_view;

    say!(n, "\n6. Red syncs, decrypts and verifies it (epoch, position in blue's chain, previous digest, blue's head vector):");
    n.command("--store red.store sync");
    let got = red.sync().await?;
    for e in got.received.iter().filter(|e| e.kind == "text") {
        say!(n, "   {}", render::entry(e).replace('\n', "\n   "));
    }
    n.check(
        got.received
            .iter()
            .any(|e| e.text.as_deref() == Some(BLUE_SAYS)),
        "red reads exactly what blue sent",
    );

    say!(n, "\n7. Red answers through the same channel:");
    n.command(&format!(
        "--store red.store send {c8} \"{RED_SAYS}\" --reply-to {}",
        m1.to_hex()
    ));
    let m2 = red.send_text(channel, RED_SAYS, Some(m1)).await?;
    captured.extend(relay_holds(&*store, m2)?);
    n.command("--store blue.store sync");
    let back = blue.sync().await?;
    n.check(
        back.received
            .iter()
            .any(|e| e.text.as_deref() == Some(RED_SAYS) && e.in_reply_to == Some(m1.to_hex())),
        "blue reads red's answer, marked as a reply to its message",
    );

    for c in [&mut mediator, &mut blue, &mut red] {
        c.sync().await?;
    }
    say!(n, "\n8. The transcript as blue sees it:");
    n.command(&format!("--store blue.store log {c8} --quiet"));
    for e in blue
        .log(Some(channel))?
        .iter()
        .filter(|e| !e.is_bookkeeping())
    {
        say!(n, "   {}", render::entry(e).replace('\n', "\n   "));
    }

    say!(
        n,
        "\n9. What the mediator's client holds of the two messages: stubs, no words:"
    );
    n.command(&format!("--store mediator.store log {c8} --quiet"));
    let med_log = mediator.log(Some(channel))?;
    for e in med_log.iter().filter(|e| e.kind == "text") {
        say!(n, "   {}", render::entry(e).replace('\n', "\n   "));
    }
    let (bt, rt, mt) = (
        texts(&blue.log(Some(channel))?),
        texts(&red.log(Some(channel))?),
        texts(&med_log),
    );
    n.check(
        mt.len() == 2 && mt.iter().all(|(_, text, stub, _)| text.is_none() && *stub),
        "the mediator holds two stubs and no text",
    );
    let digests = |v: &[(String, Option<String>, bool, String)]| {
        v.iter().map(|t| t.3.clone()).collect::<Vec<_>>()
    };
    n.check(
        digests(&mt) == digests(&bt) && digests(&bt) == digests(&rt),
        "all three hold the same digests: nothing was dropped or swapped",
    );
    let readable = captured
        .iter()
        .filter_map(|e| mediator.try_decrypt_copy(e))
        .filter(|p| contains(p, BLUE_SAYS.as_bytes()) || contains(p, RED_SAYS.as_bytes()))
        .count();
    n.check(
        readable == 0,
        &format!(
            "none of the {} ciphertexts the relay stored decrypts to words for the mediator",
            captured.len()
        ),
    );

    say!(n, "\n10. Final checks:");
    for name in ["mediator", "blue", "red"] {
        n.command(&format!("--store {name}.store verify"));
    }
    let files = [db.clone(), wal(&db)]
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .flatten()
        .collect::<Vec<u8>>();
    n.check(
        !contains(&files, BLUE_SAYS.as_bytes()) && !contains(&files, RED_SAYS.as_bytes()),
        "the relay's database files hold no plaintext",
    );
    let alerts: usize = [&mediator, &blue, &red]
        .iter()
        .map(|c| c.alerts().map_or(1, |a| a.len()))
        .sum();
    n.check(alerts == 0, "no client raised an alert");
    for c in [&mediator, &blue, &red] {
        let bytes = std::fs::read(c.store_path()).unwrap_or_default();
        n.check(
            !contains(&bytes, BLUE_SAYS.as_bytes()) && !contains(&bytes, RED_SAYS.as_bytes()),
            &format!(
                "{}'s store file is sealed: no plaintext in its bytes",
                c.me()
            ),
        );
    }

    say!(
        n,
        "\n11. And if the relay cheats? Playing a dishonest operator, the demo deletes red's copy"
    );
    say!(
        n,
        "    of blue's next message from the relay's database before red fetches it:"
    );
    const THIRD: &str = "A third message, which the relay will drop.";
    const FOURTH: &str = "A fourth message, delivered.";
    n.command(&format!("--store blue.store send {c8} \"{THIRD}\""));
    let dropped = blue.send_text(channel, THIRD, None).await?;
    say!(
        n,
        "   $ sqlite3 relay.db \"DELETE FROM envelopes WHERE message_id = x'{}' AND recipient = 'red'\"",
        dropped.to_hex()
    );
    relay_drops(&db, dropped, "red")?;
    n.command(&format!("--store blue.store send {c8} \"{FOURTH}\""));
    let next = blue.send_text(channel, FOURTH, None).await?;
    n.command("--store red.store sync");
    let red_saw = red.sync().await?;
    for a in &red_saw.alerts {
        say!(n, "    red:  ALERT {}: {}", a.kind, a.detail);
    }
    n.check(
        red_saw.alerts.iter().any(|a| {
            a.kind == AlertKind::Gap
                && a.principal.as_ref().is_some_and(|p| p.as_str() == "blue")
                && a.message_ids == vec![next]
        }),
        "red sees the gap at blue's next message, naming the missing position",
    );
    mediator.sync().await?;
    say!(
        n,
        "    An hour passes on the clients' clocks (the receipt deadline)."
    );
    skew.fetch_add(3601 * 1000, std::sync::atomic::Ordering::SeqCst);
    n.command("--store blue.store sync");
    let blue_saw = blue.sync().await?;
    for a in &blue_saw.alerts {
        say!(n, "    blue: ALERT {}: {}", a.kind, a.detail);
    }
    n.check(
        blue_saw.alerts.iter().any(|a| {
            a.kind == AlertKind::AckOverdue
                && a.member.as_ref().is_some_and(|m| m.as_str() == "red")
                && a.message_ids.contains(&dropped)
        }),
        "blue sees ack_overdue for red: red never confirmed the dropped message",
    );

    say!(
        n,
        "\n12. The assurances themselves. In the reports the intermediary carried the messages"
    );
    say!(
        n,
        "    itself, so the mediator opens a second channel in which both parties let it read:"
    );
    let reads = Policy {
        mediator_reads: true,
        receipt_deadline_s: 3600,
        heartbeat_interval_s: 600,
    };
    n.command("--store mediator.store channel create --title \"Assurances (mediator reads)\" --party blue --party red --mediator-reads --receipt-deadline 1h --heartbeat 10m");
    let talks = mediator
        .create_channel(
            "Assurances (mediator reads)",
            &[h("blue")?, h("red")?],
            &[],
            reads,
        )
        .await?;
    let t8 = talks.to_string()[..8].to_string();
    for party in [&mut blue, &mut red] {
        let who = party.me().to_string();
        n.command(&format!("--store {who}.store sync"));
        party.sync().await?;
        accept_shown(&mut n, party, talks).await?;
    }
    for c in [&mut mediator, &mut blue, &mut red] {
        c.sync().await?;
    }
    let assurance = |to: &str, wording: &str, authorized: &str, reciprocates: Option<String>| {
        Structured::Assurance(Assurance {
            beneficiaries: vec![Actor::Member(to.into())],
            commitment: Commitment {
                refrain: true,
                action: Action {
                    kind: EventType::Assault,
                    modes: vec![],
                    target: Some(Actor::Member(to.into())),
                },
            },
            unless: vec![LapseCondition {
                attacked_first_by: Actor::Member(to.into()),
                scope: Scope::default(),
            }],
            unless_combine: None,
            provided: None,
            provided_combine: None,
            reservation: String::new(),
            valid_from_ms: 0,
            valid_until_ms: None,
            until_revoked: true,
            formality: Formality::NonPaper,
            authorized_by: authorized.into(),
            language: "en".into(),
            translation_of: None,
            reciprocates,
            wording: wording.into(),
        })
    };
    n.command(&format!("--store blue.store assure {t8} \"{BLUE_SAYS}\" --to red --refrain-from ASSAULT --unless-attacked-by red --until-revoked --formality non-paper --authorized-by \"Blue's head of government\""));
    let a1 = blue
        .send_structured(
            talks,
            assurance("red", BLUE_SAYS, "Blue's head of government", None),
            None,
        )
        .await?;
    mediator.sync().await?;
    let paraphrase =
        "Blue has asked me to tell you that it will not strike first, provided Red does not.";
    let a1_8 = a1.to_hex()[..8].to_string();
    n.command("--store mediator.store sync");
    n.command(&format!(
        "--store mediator.store convey {t8} {a1_8} \"{paraphrase}\""
    ));
    mediator
        .send_structured(
            talks,
            Structured::Conveyed {
                original: a1.to_hex(),
                text: paraphrase.into(),
            },
            None,
        )
        .await?;
    red.sync().await?;
    say!(n, "    blue's original (a non-paper):  \"{BLUE_SAYS}\"");
    say!(n, "    the mediator's words beside it: \"{paraphrase}\"");
    const RED_ASSURES: &str = "Red will not launch a preemptive attack against Blue.";
    const RED_LINE: &str =
        "If Red is attacked, the bases of green, Blue's ally, will not be secure.";
    n.command(&format!("--store red.store reciprocate {t8} --of {a1_8} \"{RED_ASSURES}\" --to blue --refrain-from ASSAULT --unless-attacked-by blue --until-revoked --authorized-by \"Red's leadership\""));
    let a2 = red
        .send_structured(
            talks,
            assurance("blue", RED_ASSURES, "Red's leadership", Some(a1.to_hex())),
            Some(a1),
        )
        .await?;
    n.command(&format!(
        "--store red.store relate {t8} outside:green ally-of blue"
    ));
    red.send_structured(
        talks,
        Structured::Relate {
            subject: Actor::Outside("green".into()),
            relation: RelationKind::AllyOf,
            object: Actor::Member("blue".into()),
        },
        None,
    )
    .await?;
    n.command(&format!("--store red.store redline {t8} \"{RED_LINE}\" --if ASSAULT --if-against red --then ASSAULT --then-against outside:green"));
    red.send_structured(
        talks,
        Structured::RedLine(RedLine {
            trigger_actor: None,
            trigger: Action {
                kind: EventType::Assault,
                modes: vec![],
                target: Some(Actor::Member("red".into())),
            },
            response: Action {
                kind: EventType::Assault,
                modes: vec![],
                target: Some(Actor::Outside("green".into())),
            },
            wording: RED_LINE.into(),
            targets: None,
            scope: None,
            valid_from_ms: None,
            valid_until_ms: None,
            place: None,
        }),
        None,
    )
    .await?;
    for _ in 0..2 {
        for c in [&mut mediator, &mut blue, &mut red] {
            c.sync().await?;
        }
    }
    let board = mediator.board(talks, mediator.now())?;
    say!(
        n,
        "\n13. The board, as the mediator's client folds it from the transcript:"
    );
    n.command(&format!("--store mediator.store status {t8}"));
    say!(
        n,
        "{}",
        render::board(&board)
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    n.check(
        board.assurances.len() == 2 && board.assurances.iter().all(|a| a.state == State::Active),
        "both assurances are active: each beneficiary's receipt covers it",
    );
    n.check(
        board
            .assurances
            .iter()
            .any(|a| a.id == a1.to_hex() && a.reciprocated_by.contains(&a2.to_hex())),
        "red's assurance is linked as reciprocating blue's",
    );

    say!(n, "\n14. What if green, a third actor, strikes red?");
    n.command(&format!(
        "--store mediator.store whatif {t8} --actor outside:green --action ASSAULT --target red"
    ));
    let cascade = mediator.what_if(
        talks,
        mediator.now(),
        &[Hypothesis::new(
            Actor::Outside("green".into()),
            Action {
                kind: EventType::Assault,
                modes: vec![],
                target: Some(Actor::Member("red".into())),
            },
        )],
        Default::default(),
    )?;
    say!(
        n,
        "{}",
        cascade
            .to_text()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect::<String>()
    );
    n.check(
        cascade.steps.len() == 2
            && cascade.steps[0].effects.iter().any(|e| matches!(e, Effect::Fires { .. }))
            && cascade.steps[1].effects.iter().any(|e| matches!(e, Effect::Lapses { readings_diverge: true, .. })),
        "red's red line fires, and blue's assurance lapses only under some readings of \"attacked first\"",
    );

    say!(
        n,
        "\n15. Neither side wants to move first: an escrowed exchange of sealed offers."
    );
    const TERMS: &str = "Simultaneous gestures of good faith.";
    const BLUE_OFFERS: &str = "Blue withdraws two brigades from the border zone.";
    const RED_OFFERS: &str = "Red releases the detained crew.";
    n.command(&format!(
        "--store blue.store exchange create {t8} --with red --terms \"{TERMS}\" --deadline +1h"
    ));
    let x = blue
        .exchange_create(
            talks,
            &[h("red")?],
            TERMS,
            Timestamp(blue.now().0 + 3_600_000),
        )
        .await?;
    n.command(&format!(
        "--store blue.store exchange submit {x} \"{BLUE_OFFERS}\""
    ));
    blue.exchange_submit(x, BLUE_OFFERS).await?;
    n.command(&format!("--store red.store exchange status {x}"));
    let before = red.exchange_status(x).await?;
    say!(
        n,
        "    red's view while blue's offer is in: {} (it cannot tell whether blue submitted)",
        before.status.state
    );
    n.command(&format!(
        "--store red.store exchange submit {x} \"{RED_OFFERS}\""
    ));
    let red_view = red.exchange_submit(x, RED_OFFERS).await?;
    n.command(&format!("--store blue.store exchange status {x}"));
    let blue_view = blue.exchange_status(x).await?;
    for (who, v) in [("red", &red_view), ("blue", &blue_view)] {
        for o in &v.offers {
            say!(
                n,
                "    {who} receives from {}: {}",
                o.from,
                o.offer.as_deref().unwrap_or("?")
            );
        }
    }
    n.check(
        before.offers.is_empty()
            && red_view.status.state == "released"
            && red_view.status.released_at_ms == blue_view.status.released_at_ms
            && red_view.offers.len() == 1
            && blue_view.offers.len() == 1
            && red_view.problems.is_empty()
            && blue_view.problems.is_empty(),
        "both sealed offers were released together, and each side read the other's",
    );

    let _ = stop.send(());
    let _ = server.await;
    if args.keep.is_some() {
        say!(n, "\nKept in {}: relay.db, mediator.store, blue.store, red.store (passphrase: {DEMO_PASSPHRASE:?})", dir.display());
    }
    Ok(n.failed)
}

/// Plays a dishonest operator: deletes `recipient`'s copy of `message` from
/// the relay's database, behind the API.
fn relay_drops(db: &std::path::Path, message: MessageId, recipient: &str) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(db).context("opening the relay database")?;
    let n = conn
        .execute(
            "DELETE FROM envelopes WHERE message_id = ?1 AND recipient = ?2",
            rusqlite::params![&message.0[..], recipient],
        )
        .context("deleting the envelope")?;
    anyhow::ensure!(n == 1, "expected one envelope to drop, found {n}");
    Ok(())
}

/// The envelopes the relay holds for one message, from its database.
fn relay_holds(store: &dyn RelayStore, message: MessageId) -> anyhow::Result<Vec<Envelope>> {
    let mut out = Vec::new();
    for m in ["mediator", "blue", "red"] {
        for s in store.mailbox(&h(m)?, 0, 10_000)? {
            if s.envelope.message_id == message {
                out.push(s.envelope);
            }
        }
    }
    Ok(out)
}

fn wal(db: &std::path::Path) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push("-wal");
    PathBuf::from(s)
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A party reads the statement of what it is asked to accept, then
/// accepts exactly that proposal (by its digest).
async fn accept_shown(
    n: &mut Narrator,
    party: &mut Client,
    channel: ChannelId,
) -> anyhow::Result<()> {
    let statement = party
        .consent(channel)?
        .context("the proposal did not arrive")?;
    let (who, c8) = (party.me().to_string(), &channel.to_hex()[..8]);
    n.command(&format!("--store {who}.store channel show {c8}"));
    say!(n, "   {who} is shown, before it accepts:");
    for line in &statement.lines {
        say!(n, "     {line}");
    }
    n.command(&format!(
        "--store {who}.store channel accept {c8} --yes {}",
        statement.short_digest()
    ));
    party.accept(channel, statement.digest).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use backchannel_protocol::identity::{audit, SignPurpose, CHALLENGE_LEN};

    /// The whole demo, in process, with the signing function's record on:
    /// only login challenges and one-time keys were signed, never content.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_demo_signs_login_challenges_and_one_time_keys_only() {
        let failed = super::story(super::DemoArgs {
            keep: None,
            tls: false,
        })
        .await
        .unwrap();
        assert!(failed.is_empty(), "{failed:?}");
        let signed = audit::signed();
        let logins = signed
            .iter()
            .filter(|(p, _)| *p == SignPurpose::Login)
            .count();
        let keys = signed
            .iter()
            .filter(|(p, _)| *p == SignPurpose::OneTimeKey)
            .count();
        assert!(
            logins >= 3 && keys >= 3 * backchannel_client::ONE_TIME_KEYS_TARGET,
            "{logins} logins, {keys} keys"
        );
        for (purpose, message) in &signed {
            match purpose {
                SignPurpose::Login => assert_eq!(message.len(), CHALLENGE_LEN),
                SignPurpose::OneTimeKey => assert_eq!(message.len(), 33),
            }
            for text in [super::BLUE_SAYS, super::RED_SAYS] {
                assert!(
                    !message
                        .windows(8)
                        .any(|w| text.as_bytes().windows(8).any(|t| t == w)),
                    "content was signed"
                );
            }
        }
    }
}
