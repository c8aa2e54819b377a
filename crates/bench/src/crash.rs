//! The crash harness: messages from several senders through the real
//! client library to one receiver, while the relay process is killed with
//! SIGKILL at random moments and started again on the same database (on
//! PostgreSQL, the database server is killed too); then every message is
//! classified, Jepsen-style.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backchannel_client::{Client, KdfParams};
use backchannel_protocol::payload::Policy;
use backchannel_protocol::{ChannelId, Handle};
use backchannel_testkit::postgres::PgCluster;
use backchannel_testkit::RelayProcess;
use rand::Rng as _;

const PASS: &str = "crash harness";

/// What a crash run is asked to do.
pub struct CrashPlan {
    /// Messages in all, spread over the senders.
    pub messages: usize,
    /// Senders, each in a channel of its own with the receiver.
    pub senders: usize,
    /// Kills at least (more if the messages take longer).
    pub kills: usize,
    /// Longest pause between a restart and the next kill.
    pub max_uptime: Duration,
    /// The backchannel binary.
    pub relay_bin: PathBuf,
    /// A fresh directory for the relay's database and the clients' stores.
    pub work: PathBuf,
    /// How long the receiver waits for what was acknowledged.
    pub patience: Duration,
    /// Where the relay keeps its records.
    pub backend: Backend,
}

/// The relay's database in a crash run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// A SQLite file in the work directory.
    Sqlite,
    /// A throwaway PostgreSQL cluster, killed too.
    Postgres,
}

/// What one kill takes down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Victim {
    Relay,
    Database,
    Both,
}

impl Victim {
    /// The `n`th kill's victim: on PostgreSQL the relay, the database
    /// server and both at once, in turn.
    fn nth(n: usize, database: bool) -> Victim {
        match (database, n % 3) {
            (false, _) | (true, 0) => Victim::Relay,
            (true, 1) => Victim::Database,
            (true, _) => Victim::Both,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Victim::Relay => "relay",
            Victim::Database => "database server",
            Victim::Both => "relay and database server",
        }
    }
}

/// How one message ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Received once, after every earlier message of its sender.
    Ok,
    /// Acknowledged by the relay, never received.
    Lost,
    /// Received more than once.
    Duplicated,
    /// Received after a later message of its sender.
    OutOfOrder,
    /// Received, but not readable (a stub, or other text).
    Undecryptable,
    /// The relay never acknowledged it, and it never arrived.
    NeverAcknowledged,
}

impl Outcome {
    const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::Lost,
        Outcome::Duplicated,
        Outcome::OutOfOrder,
        Outcome::Undecryptable,
        Outcome::NeverAcknowledged,
    ];

    fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Lost => "lost",
            Outcome::Duplicated => "duplicated",
            Outcome::OutOfOrder => "out of order",
            Outcome::Undecryptable => "undecryptable",
            Outcome::NeverAcknowledged => "never acknowledged",
        }
    }

    /// Whether it breaks a promise (a message the relay did not take is
    /// the sender's to retry, not a fault).
    fn is_fault(self) -> bool {
        !matches!(self, Outcome::Ok | Outcome::NeverAcknowledged)
    }
}

/// What the receiver saw of one sender's messages, in arrival order.
#[derive(Default)]
struct Arrivals {
    /// Message numbers, in the order they arrived.
    numbers: Vec<usize>,
    /// Texts that named no message of this sender, and stubs.
    unreadable: usize,
}

/// The text of message `i` of sender `k`.
fn text(k: usize, i: usize) -> String {
    format!("crash harness: sender {k}, message {i}")
}

fn number_in(k: usize, text: &str) -> Option<usize> {
    text.strip_prefix(&format!("crash harness: sender {k}, message "))?
        .parse()
        .ok()
}

/// Classifies every message of one sender: `acked[i]` says whether the
/// relay acknowledged message `i`.
fn classify(acked: &[bool], seen: &Arrivals) -> Vec<Outcome> {
    let mut times = vec![0usize; acked.len()];
    let mut late = vec![false; acked.len()];
    let mut highest = None;
    for &i in &seen.numbers {
        let Some(t) = times.get_mut(i) else { continue };
        *t += 1;
        if highest.is_some_and(|h| i < h) {
            late[i] = true;
        }
        highest = highest.max(Some(i));
    }
    (0..acked.len())
        .map(|i| match (times[i], acked[i]) {
            (0, true) => Outcome::Lost,
            (0, false) => Outcome::NeverAcknowledged,
            (1, _) if late[i] => Outcome::OutOfOrder,
            (1, _) => Outcome::Ok,
            _ => Outcome::Duplicated,
        })
        .collect()
}

/// Runs the harness; false if any message was lost, duplicated, out of
/// order or unreadable, or the receiver raised an alert.
pub async fn run(plan: CrashPlan) -> anyhow::Result<bool> {
    if plan.senders == 0 || plan.messages < plan.senders {
        bail!("--messages must be at least --senders, and --senders at least 1");
    }
    if plan.work.exists() {
        std::fs::remove_dir_all(&plan.work)
            .with_context(|| format!("clear {}", plan.work.display()))?;
    }
    std::fs::create_dir_all(&plan.work)
        .with_context(|| format!("create {}", plan.work.display()))?;
    let cluster = match plan.backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Arc::new(PgCluster::start().ok_or_else(|| {
            anyhow::anyhow!("--backend postgres needs the Debian PostgreSQL binaries (apt-get install postgresql)")
        })?)),
    };
    let db = match &cluster {
        None => plan.work.join("relay.db"),
        Some(c) => PathBuf::from(c.database()),
    };
    let relay = crate::systems::spawn_relay(&plan.relay_bin, &plan.work, &db)?;
    let url = relay.url.clone();
    let (mut receiver, mut senders) = cast(&plan.work, &url, plan.senders).await?;
    eprintln!(
        "crash harness: {} messages from {} senders through {url} on {}, killed with SIGKILL at least {} times",
        plan.messages,
        plan.senders,
        if cluster.is_some() { "PostgreSQL (relay, database server, both)" } else { "SQLite" },
        plan.kills
    );
    let started = Instant::now();
    let sending = Arc::new(AtomicBool::new(true));
    let kills = Arc::new(AtomicUsize::new(0));
    let killer = {
        let (sending, kills) = (sending.clone(), kills.clone());
        let (least, max_uptime) = (plan.kills, plan.max_uptime);
        let cluster = cluster.clone();
        std::thread::spawn(move || {
            kill_repeatedly(
                relay,
                cluster.as_deref(),
                &sending,
                &kills,
                least,
                max_uptime,
            )
        })
    };
    let per_sender = split(plan.messages, plan.senders);
    let channels: Vec<ChannelId> = senders.iter().map(|(_, id)| *id).collect();
    let receiving = receive(
        &mut receiver,
        &channels,
        &sending,
        plan.messages,
        plan.patience,
    );
    let sends = futures_util::future::join_all(
        senders
            .iter_mut()
            .enumerate()
            .map(|(k, (client, channel))| send_all(client, *channel, k, per_sender[k])),
    );
    let sent = async {
        let acked = sends.await;
        sending.store(false, Ordering::SeqCst);
        acked
    };
    let (acked, received) = tokio::join!(sent, receiving);
    let (mut arrivals, mut alerts) = received?;
    alerts.extend(receiver.open_alerts().iter().map(described));
    alerts.sort();
    alerts.dedup();
    let relay_runs = killer
        .join()
        .map_err(|_| anyhow::anyhow!("the killer thread panicked"))??;
    let acked = acked.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let mut totals: BTreeMap<Outcome, usize> = BTreeMap::new();
    let mut unreadable = 0;
    for (k, acked) in acked.iter().enumerate() {
        let seen = arrivals.remove(&k).unwrap_or_default();
        unreadable += seen.unreadable;
        for o in classify(acked, &seen) {
            *totals.entry(o).or_default() += 1;
        }
    }
    *totals.entry(Outcome::Undecryptable).or_default() += unreadable;
    println!(
        "crash harness: {} messages, {} senders, {} kills (SIGKILL) on {} in {:.1} s; restarts took {}",
        plan.messages,
        plan.senders,
        kills.load(Ordering::SeqCst),
        if cluster.is_some() { "PostgreSQL" } else { "SQLite" },
        started.elapsed().as_secs_f64(),
        relay_runs
    );
    for o in Outcome::ALL {
        println!(
            "  {:<19} {}",
            o.name(),
            totals.get(&o).copied().unwrap_or(0)
        );
    }
    println!("  alerts raised       {}", alerts.len());
    for a in &alerts {
        println!("    {a}");
    }
    let faults: usize = totals
        .iter()
        .filter(|(o, _)| o.is_fault())
        .map(|(_, n)| n)
        .sum();
    if faults == 0 && alerts.is_empty() {
        println!("crash harness: PASS (nothing acknowledged was lost, duplicated, reordered or unreadable)");
        Ok(true)
    } else {
        println!(
            "crash harness: FAIL ({faults} faulty messages, {} alerts)",
            alerts.len()
        );
        Ok(false)
    }
}

/// An alert in one line: its kind and what it says.
fn described(a: &backchannel_protocol::member::Alert) -> String {
    format!("{:?}: {}", a.kind, a.detail)
}

/// `messages` split as evenly as possible over `senders`.
fn split(messages: usize, senders: usize) -> Vec<usize> {
    (0..senders)
        .map(|k| messages / senders + usize::from(k < messages % senders))
        .collect()
}

/// The receiver (a mediator who reads) and one channel per sender, each
/// accepted by its sender.
pub(crate) async fn cast(
    work: &Path,
    url: &str,
    senders: usize,
) -> anyhow::Result<(Client, Vec<(Client, ChannelId)>)> {
    let make = |name: String| async move {
        let handle = Handle::new(&name).context("a handle")?;
        let path = work.join(format!("{name}.store"));
        Client::create(&path, PASS, KdfParams::INSECURE_FOR_TESTS, url, &handle)
            .await
            .with_context(|| format!("create {name}"))
    };
    let mut receiver = make("receiver".into()).await?;
    let policy = Policy {
        mediator_reads: true,
        receipt_deadline_s: 86_400,
        heartbeat_interval_s: 86_400,
    };
    let mut out = Vec::with_capacity(senders);
    for k in 0..senders {
        let mut client = make(format!("sender-{k}")).await?;
        let id = receiver
            .create_channel("crash", &[client.me().clone()], &[], policy)
            .await
            .context("open a channel")?;
        client.sync().await.context("sync a sender")?;
        let digest = client
            .consent(id)?
            .context("the sender was shown no proposal")?
            .digest;
        client.accept(id, digest).await.context("accept")?;
        out.push((client, id));
    }
    receiver.sync().await.context("sync the receiver")?;
    Ok((receiver, out))
}

/// Sends `count` numbered messages, each retried until the relay
/// acknowledged it (or for 30 s); answers which were acknowledged.
async fn send_all(
    client: &mut Client,
    channel: ChannelId,
    k: usize,
    count: usize,
) -> anyhow::Result<Vec<bool>> {
    let mut acked = Vec::with_capacity(count);
    for i in 0..count {
        // Committed to the outbox once it returns: from then on only the
        // outbox may send it (a second send would be another message).
        let queued = loop {
            match client.send_text(channel, &text(k, i), None).await {
                Ok(_) => break true,
                Err(e) if is_transient(&e) => tokio::time::sleep(Duration::from_millis(20)).await,
                Err(e) => return Err(e).context("send"),
            }
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut done = queued && client.flush_outbox().await.is_ok();
        while !done && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            done = client.flush_outbox().await.is_ok();
        }
        acked.push(done);
    }
    Ok(acked)
}

/// A failure the relay's absence (or its database's) explains: nothing
/// was committed, so the message is prepared again.
fn is_transient(e: &backchannel_client::ClientError) -> bool {
    e.code() == "relay_unreachable" || e.leaves_queued()
}

type Received = (BTreeMap<usize, Arrivals>, Vec<String>);

/// Syncs the receiver until every message arrived, or sending ended and
/// nothing more came for `patience`; then reads what it holds from its
/// transcript (a sync cut short by a kill may have stored messages its
/// report never returned).
async fn receive(
    receiver: &mut Client,
    channels: &[ChannelId],
    sending: &AtomicBool,
    expected: usize,
    patience: Duration,
) -> anyhow::Result<Received> {
    let mut alerts = Vec::new();
    let mut held = 0;
    let mut quiet_since = Instant::now();
    loop {
        match receiver.sync().await {
            Ok(report) => alerts.extend(report.alerts.iter().map(described)),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
        if sending.load(Ordering::SeqCst) {
            quiet_since = Instant::now();
        } else {
            // Counted from the transcript only once sending ended: while it
            // runs, the loop cannot end anyway.
            let now_held = held_count(&arrivals(receiver, channels)?);
            if now_held > held {
                held = now_held;
                quiet_since = Instant::now();
            } else if held >= expected || quiet_since.elapsed() > patience {
                return Ok((arrivals(receiver, channels)?, alerts));
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Texts held, readable or not.
fn held_count(arrivals: &BTreeMap<usize, Arrivals>) -> usize {
    arrivals
        .values()
        .map(|a| a.numbers.len() + a.unreadable)
        .sum()
}

/// The texts the receiver holds from each sender, in transcript order.
fn arrivals(
    receiver: &Client,
    channels: &[ChannelId],
) -> anyhow::Result<BTreeMap<usize, Arrivals>> {
    let mut out = BTreeMap::new();
    for (k, id) in channels.iter().enumerate() {
        let slot: &mut Arrivals = out.entry(k).or_default();
        for e in receiver.log(Some(*id))?.iter().filter(|e| e.kind == "text") {
            match e.text.as_deref().and_then(|t| number_in(k, t)) {
                Some(i) if !e.stub => slot.numbers.push(i),
                _ => slot.unreadable += 1,
            }
        }
    }
    Ok(out)
}

/// Kills the relay with SIGKILL at random moments and starts it again on
/// the same address and database, until sending ended and at least `least`
/// kills were made; answers how long restarts took (median and worst).
fn kill_repeatedly(
    mut relay: RelayProcess,
    cluster: Option<&PgCluster>,
    sending: &AtomicBool,
    kills: &AtomicUsize,
    least: usize,
    max_uptime: Duration,
) -> anyhow::Result<String> {
    let mut rng = rand::thread_rng();
    let mut restarts = Vec::new();
    while sending.load(Ordering::SeqCst) || kills.load(Ordering::SeqCst) < least {
        let up = rng.gen_range(max_uptime / 10..=max_uptime);
        std::thread::sleep(up);
        let n = kills.load(Ordering::SeqCst);
        let victim = Victim::nth(n, cluster.is_some());
        let t = Instant::now();
        match (victim, cluster) {
            // start_again kills (SIGKILL, reaped) then starts it on its address.
            (Victim::Relay, _) | (_, None) => relay.start_again(),
            (Victim::Database, Some(db)) => {
                db.kill();
                db.restart();
            }
            (Victim::Both, Some(db)) => {
                relay.stop();
                db.kill();
                db.restart();
                relay.start_again();
            }
        }
        restarts.push(t.elapsed());
        kills.fetch_add(1, Ordering::SeqCst);
        eprintln!(
            "crash harness: kill {} ({}) after {} ms up",
            n + 1,
            victim.name(),
            up.as_millis()
        );
    }
    drop(relay);
    restarts.sort();
    let ms = |d: Option<&Duration>| d.map_or(0, |d| d.as_millis());
    Ok(format!(
        "median {} ms, worst {} ms",
        ms(restarts.get(restarts.len() / 2)),
        ms(restarts.last())
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(numbers: &[usize]) -> Arrivals {
        Arrivals {
            numbers: numbers.to_vec(),
            unreadable: 0,
        }
    }

    #[test]
    fn every_message_is_classified() {
        let acked = [true, true, true, true, false, false];
        let got = classify(&acked, &seen(&[0, 2, 1, 3, 3, 5]));
        assert_eq!(
            got,
            [
                Outcome::Ok,
                Outcome::OutOfOrder,
                Outcome::Ok,
                Outcome::Duplicated,
                Outcome::NeverAcknowledged,
                Outcome::Ok,
            ]
        );
        assert_eq!(classify(&[true], &seen(&[])), [Outcome::Lost]);
    }

    #[test]
    fn texts_name_their_sender_and_number() {
        assert_eq!(number_in(3, &text(3, 17)), Some(17));
        assert_eq!(number_in(2, &text(3, 17)), None);
    }

    #[test]
    fn messages_are_split_evenly() {
        assert_eq!(split(10, 4), [3, 3, 2, 2]);
        assert_eq!(split(8, 1), [8]);
    }
}
