//! The systems under test, each started fresh for every run on a
//! directory of its own, and what the kernel says about their processes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backchannel_protocol::ChannelId;
use backchannel_testkit::postgres::PgCluster;
use backchannel_testkit::{Principal, RelayProcess};

use crate::load::{NatsSender, RelaySender, Sender};

/// The settings the relay runs with in the benchmark: its defaults, with
/// the per-address limits raised (every sender is 127.0.0.1) and the
/// limits a closed loop of one principal would hit in a second raised
/// too; each is named in the report.
pub const RELAY_RAISED: &[(&str, &str, &str)] = &[
    ("max_connections_per_ip", "4096", "every sender connects from 127.0.0.1"),
    ("challenges_per_ip", "\"100000/min\"", "every sender logs in from 127.0.0.1"),
    ("logins_per_ip", "\"100000/min\"", "every sender logs in from 127.0.0.1"),
    ("registrations_per_ip", "\"100000/h\"", "every sender registers from 127.0.0.1"),
    ("channels_per_ip", "\"100000/h\"", "every sender opens its channel from 127.0.0.1"),
    ("posts_per_ip", "\"100000000/min\"", "every sender posts from 127.0.0.1"),
    (
        "posts_per_principal",
        "\"100000000/min\"",
        "the default (1,200/min) is a person's pace; a closed-loop sender posts thousands a second (the window is still counted at every post)",
    ),
    (
        "mailbox_max_envelopes",
        "100000000",
        "nobody fetches during a run (as no consumer reads the JetStream stream); the quota is still checked at every post",
    ),
    ("mailbox_max_bytes", "1000000000000", "as above"),
    ("sender_share_percent", "100", "one sink receives from every sender"),
    ("principal_storage_bytes", "1000000000000", "as above"),
];

/// A process of a system under test.
pub struct Running {
    /// Its process id (the relay, or nats-server).
    pub pid: u32,
    /// The relay's database server, whose processes count as the system's.
    pub database: Option<Arc<PgCluster>>,
    /// Keeps the process alive; killed when dropped.
    guard: Guard,
}

impl Running {
    /// The relay's process, for a system that is a relay.
    pub fn relay(&mut self) -> Option<&mut RelayProcess> {
        match &mut self.guard {
            Guard::Relay(r) => Some(r),
            Guard::Nats(_) => None,
        }
    }

    /// Every process of the system now: its own, and its database server's.
    pub fn pids(&self) -> Vec<u32> {
        let mut pids = vec![self.pid];
        if let Some(db) = &self.database {
            pids.extend(db.server_pids());
        }
        pids
    }
}

enum Guard {
    Relay(RelayProcess),
    Nats(Child),
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Guard::Nats(child) = &mut self.guard {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `bin relay serve` on `db` (a SQLite file or a PostgreSQL
/// address) with [`RELAY_RAISED`], its settings file in `dir`.
pub fn spawn_relay(bin: &Path, dir: &Path, db: &Path) -> anyhow::Result<RelayProcess> {
    let config = dir.join("bench.toml");
    let mut file = std::fs::File::create(&config).context("write the relay's settings")?;
    for (key, value, _) in RELAY_RAISED {
        writeln!(file, "{key} = {value}")?;
    }
    let config = config.to_string_lossy().into_owned();
    Ok(RelayProcess::spawn_with(bin, db, &["--config", &config]))
}

/// Starts a relay in `dir`, on SQLite there or on a fresh database of
/// `postgres`, and prepares `senders` principals, each with a channel to
/// one sink.
pub async fn start_relay(
    bin: &Path,
    dir: &Path,
    postgres: Option<&Arc<PgCluster>>,
    senders: usize,
    size: usize,
) -> anyhow::Result<(Running, Vec<Sender>)> {
    let db = match postgres {
        Some(cluster) => PathBuf::from(cluster.database()),
        None => dir.join("relay.db"),
    };
    let relay = spawn_relay(bin, dir, &db)?;
    let url = relay.url.clone();
    let sink = Principal::join(&url, "sink", 0).await;
    let ciphertext = crate::load::ciphertext(size);
    let mut out = Vec::with_capacity(senders);
    for k in 0..senders {
        let p = Principal::join(&url, &format!("sender-{k}"), 0).await;
        let channel = ChannelId::random();
        let made = p
            .call(
                "POST",
                "/v1/channels",
                Some(&serde_json::json!({
                    "channel_id": channel.to_hex(),
                    "members": [p.handle.as_str(), sink.handle.as_str()],
                })),
            )
            .await;
        if made.status != 201 {
            bail!("the relay refused a channel: {} {}", made.status, made.text);
        }
        out.push(Sender::Relay(RelaySender {
            http: p.http.clone(),
            post_url: format!("{url}/v1/channels/{}/messages", channel.to_hex()),
            token: p.token.clone(),
            sender: p.handle.to_string(),
            recipient: sink.handle.to_string(),
            channel,
            ciphertext: ciphertext.clone(),
            seq: 0,
        }));
    }
    let pid = relay.pid();
    Ok((
        Running {
            pid,
            database: postgres.cloned(),
            guard: Guard::Relay(relay),
        },
        out,
    ))
}

/// Starts nats-server with JetStream on file storage in `dir`, syncing
/// every write before it acknowledges (`sync_interval: always`), one
/// replica, and connects `senders` publishers.
pub async fn start_nats(
    bin: &Path,
    dir: &Path,
    senders: usize,
    size: usize,
) -> anyhow::Result<(Running, Vec<Sender>)> {
    let port = free_port()?;
    let store = dir.join("jetstream");
    let config = dir.join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{\n  store_dir: {store:?}\n  sync_interval: always\n}}\n"
        ),
    )
    .context("write nats.conf")?;
    let child = Command::new(bin)
        .arg("-c")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("start {}", bin.display()))?;
    let running = Running {
        pid: child.id(),
        database: None,
        guard: Guard::Nats(child),
    };
    let url = format!("nats://127.0.0.1:{port}");
    let first = connect(&url).await?;
    let js = async_nats::jetstream::new(first);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: "BENCH".into(),
        subjects: vec!["bench.>".into()],
        storage: async_nats::jetstream::stream::StorageType::File,
        num_replicas: 1,
        ..Default::default()
    })
    .await
    .context("create the JetStream stream")?;
    let payload = bytes::Bytes::from(
        (0..size)
            .map(|i| (i as u8).wrapping_mul(31))
            .collect::<Vec<u8>>(),
    );
    let mut out = Vec::with_capacity(senders);
    for k in 0..senders {
        let client = connect(&url).await?;
        out.push(Sender::Nats(NatsSender {
            js: async_nats::jetstream::new(client),
            subject: format!("bench.{k}"),
            payload: payload.clone(),
        }));
    }
    Ok((running, out))
}

async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match async_nats::connect(url).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => {
                bail!("nats-server did not accept connections at {url}: {e}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("find a free port")?;
    Ok(l.local_addr()?.port())
}

/// CPU time (user and system) a process has used, from /proc.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("read /proc/{pid}/stat"))?;
    // The command name may hold spaces: fields are counted after its ')'.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("unexpected /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    let ticks: u64 = fields
        .get(11..13)
        .context("short /proc stat")?
        .iter()
        .map(|f| f.parse::<u64>().unwrap_or(0))
        .sum();
    let hz = rustix::param::clock_ticks_per_second().max(1);
    Ok(Duration::from_micros(ticks * 1_000_000 / hz))
}

/// CPU time of each of `pids` that runs now.
pub fn cpu_times(pids: &[u32]) -> BTreeMap<u32, Duration> {
    pids.iter()
        .filter_map(|&p| Some((p, cpu_time(p).ok()?)))
        .collect()
}

/// CPU used between two readings: a process that started between them
/// counts from zero, one that ended is left out (its last figures are gone).
pub fn cpu_used(before: &BTreeMap<u32, Duration>, after: &BTreeMap<u32, Duration>) -> Duration {
    after
        .iter()
        .map(|(p, t)| t.saturating_sub(before.get(p).copied().unwrap_or_default()))
        .sum()
}

/// The peak resident set of a process (VmHWM), in KiB.
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The disk's own fsync latency where the systems keep their data: an
/// appended record of `size` bytes and `fdatasync`, `count` times, in
/// microseconds.
pub fn fsync_probe(dir: &Path, size: usize, count: usize) -> anyhow::Result<Vec<u32>> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .context("open the fsync probe")?;
    let record = vec![0x5a; size];
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let t = Instant::now();
        file.write_all(&record)?;
        file.sync_data().context("fdatasync")?;
        out.push(u32::try_from(t.elapsed().as_micros()).unwrap_or(u32::MAX));
    }
    drop(file);
    let _ = std::fs::remove_file(&path);
    Ok(out)
}
