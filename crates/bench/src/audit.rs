//! The fsync audit: the relay runs under strace while closed-loop senders
//! post, and the trace must show at least one fsync of the WAL per commit
//! the relay counted, and no post answered `201` before an fsync of the
//! WAL that completed after its request arrived (the answer waits for the
//! commit that holds the post). Apart from the timed runs: tracing slows
//! every system call.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};

/// What an audit is asked to do.
pub struct AuditPlan {
    /// Posts in all.
    pub messages: usize,
    /// Closed-loop senders.
    pub senders: usize,
    /// The backchannel binary.
    pub relay_bin: PathBuf,
    /// strace.
    pub strace: PathBuf,
    /// A fresh directory for the database and the trace.
    pub work: PathBuf,
}

/// What the trace shows.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Findings {
    /// Posts answered `201`.
    pub answered: usize,
    /// fsync or fdatasync calls on the WAL that returned 0.
    pub wal_syncs: usize,
    /// WAL syncs that completed between the first post and the last answer.
    pub syncs_while_posting: usize,
    /// Answers with no WAL sync completed between their request and them.
    pub early: usize,
}

/// One system call of interest, in trace order.
#[derive(Debug, PartialEq)]
enum Call {
    /// A post's request read from socket `fd`.
    Request { fd: String, at: f64 },
    /// A `201` written to socket `fd`.
    Created { fd: String, at: f64 },
    /// A sync of the WAL that completed at `done`.
    Synced { done: f64 },
}

/// Seconds since midnight of an `HH:MM:SS.ffffff` stamp.
fn seconds(stamp: &str) -> Option<f64> {
    let mut parts = stamp.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// The `<0.000123>` duration at the end of a finished call.
fn duration(line: &str) -> f64 {
    line.rsplit_once('<')
        .and_then(|(_, d)| d.strip_suffix('>'))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0)
}

/// The first `<...>` of the arguments: the descriptor's path or socket.
fn descriptor(args: &str) -> String {
    args.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default()
}

/// Reads the calls of interest from `strace -f -tt -T -y` output. A call
/// that another thread interrupted (`<unfinished ...>`) is taken from its
/// `resumed` line, with the descriptor its first line named.
fn calls(trace: &str) -> Vec<Call> {
    // An interrupted call's first line: its name, descriptor, arguments
    // (a write's data) and start.
    let mut pending: HashMap<&str, (String, String, String, f64)> = HashMap::new();
    let mut out = Vec::new();
    for line in trace.lines() {
        // "PID  HH:MM:SS.ffffff call": strace pads the pid with spaces.
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let Some((stamp, rest)) = rest.trim_start().split_once(' ') else {
            continue;
        };
        let Some(at) = seconds(stamp) else { continue };
        // `started` is when the call began, `at` when it returned.
        let (name, fd, body, started, finished) = if let Some(resumed) = rest.strip_prefix("<... ")
        {
            let Some((_, tail)) = resumed.split_once(" resumed>") else {
                continue;
            };
            let Some((name, fd, head, started)) = pending.remove(pid) else {
                continue;
            };
            (name, fd, format!("{head}{tail}"), started, at)
        } else {
            let Some((name, args)) = rest.split_once('(') else {
                continue;
            };
            let fd = descriptor(args);
            if let Some(head) = args.strip_suffix("<unfinished ...>") {
                pending.insert(pid, (name.to_owned(), fd, head.to_owned(), at));
                continue;
            }
            (
                name.to_owned(),
                fd,
                args.to_owned(),
                at,
                at + duration(line),
            )
        };
        let ok = !body.contains(" = -1 ");
        match name.as_str() {
            "fsync" | "fdatasync" if ok && fd.ends_with("-wal") => {
                out.push(Call::Synced { done: finished })
            }
            // A request is in once read; an answer goes out when its write begins.
            "recvfrom" | "read"
                if fd.starts_with("socket:") && body.contains("\"POST /v1/channels/") =>
            {
                out.push(Call::Request { fd, at: finished })
            }
            "sendto" | "write" | "writev"
                if fd.starts_with("socket:") && body.contains("HTTP/1.1 201") =>
            {
                out.push(Call::Created { fd, at: started })
            }
            _ => {}
        }
    }
    out
}

/// Judges a trace.
pub fn findings(trace: &str) -> Findings {
    let calls = calls(trace);
    let syncs: Vec<f64> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Synced { done } => Some(*done),
            _ => None,
        })
        .collect();
    let mut last_request: HashMap<&str, f64> = HashMap::new();
    let mut found = Findings {
        wal_syncs: syncs.len(),
        ..Findings::default()
    };
    let (mut first, mut last) = (f64::MAX, f64::MIN);
    for c in &calls {
        match c {
            Call::Request { fd, at } => {
                last_request.insert(fd, *at);
                first = first.min(*at);
            }
            Call::Created { fd, at } => {
                // A 201 to another request (a channel made) is not a post's.
                let Some(since) = last_request.remove(fd.as_str()) else {
                    continue;
                };
                found.answered += 1;
                last = last.max(*at);
                if !syncs.iter().any(|done| *done >= since && *done <= *at) {
                    found.early += 1;
                }
            }
            Call::Synced { .. } => {}
        }
    }
    found.syncs_while_posting = syncs.iter().filter(|d| **d >= first && **d <= last).count();
    found
}

/// The relay's commit counter, from its metrics.
async fn commits(metrics: &str) -> anyhow::Result<u64> {
    let text = reqwest::get(metrics)
        .await
        .and_then(|r| r.error_for_status())
        .context("read the relay's metrics")?
        .text()
        .await?;
    text.lines()
        .find_map(|l| l.strip_prefix("backchannel_store_commits_total "))
        .and_then(|v| v.trim().parse().ok())
        .context("no backchannel_store_commits_total in the metrics")
}

/// Refuses to start without strace, or where ptrace is not permitted
/// (containers often forbid it), saying which.
fn check_strace(strace: &Path) -> anyhow::Result<()> {
    let out = std::process::Command::new(strace)
        .args(["-f", "-o", "/dev/null", "true"])
        .output()
        .with_context(|| {
            format!(
                "cannot run {}: install strace (apt-get install strace; scripts/bench does) or pass --strace",
                strace.display()
            )
        })?;
    if !out.status.success() {
        bail!(
            "strace cannot trace here, so the fsync audit cannot run: ptrace is not permitted ({}); allow it (e.g. docker --cap-add SYS_PTRACE, or kernel.yama.ptrace_scope=0)",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Runs the audit; true if the trace shows every post answered after its
/// fsync and at least one fsync per commit.
pub async fn run(plan: AuditPlan) -> anyhow::Result<bool> {
    check_strace(&plan.strace)?;
    if plan.work.exists() {
        std::fs::remove_dir_all(&plan.work)
            .with_context(|| format!("clear {}", plan.work.display()))?;
    }
    std::fs::create_dir_all(&plan.work)?;
    let work = std::fs::canonicalize(&plan.work)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let trace = work.join("relay.strace");
    let wrapper = work.join("traced-relay");
    let mut file = std::fs::File::create(&wrapper)?;
    writeln!(
        file,
        "#!/bin/sh\nexport BACKCHANNEL_RELAY_METRICS_LISTEN=127.0.0.1:{port}\nexec {} -f -tt -T -y -s 64 -e trace=recvfrom,read,sendto,write,writev,fsync,fdatasync -o {} {} \"$@\"",
        plan.strace.display(),
        trace.display(),
        std::fs::canonicalize(&plan.relay_bin)?.display()
    )?;
    drop(file);
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&wrapper)
        .status()?;
    let (mut running, senders) =
        crate::systems::start_relay(&wrapper, &work, None, plan.senders, 1024).await?;
    let metrics = format!("http://127.0.0.1:{port}/metrics");
    let before = commits(&metrics).await?;
    let per = plan.messages / plan.senders.max(1);
    let posts = senders.into_iter().map(|mut s| async move {
        for _ in 0..per {
            s.send().await?;
        }
        anyhow::Ok(())
    });
    for done in futures_util::future::join_all(posts).await {
        done?;
    }
    let after = commits(&metrics).await?;
    // Stop the relay itself: strace then ends and flushes its trace (a
    // killed strace would leave the relay running, untraced).
    let relay = backchannel_testkit::postgres::children_of(running.pid);
    let signal = |sig: &str| {
        for pid in &relay {
            let _ = std::process::Command::new("kill")
                .args([sig, &pid.to_string()])
                .status();
        }
    };
    signal("-TERM");
    let stopped = running
        .relay()
        .and_then(|r| r.wait_exit(Duration::from_secs(30)))
        .is_some();
    if !stopped {
        signal("-KILL");
    }
    drop(running);
    let text =
        std::fs::read_to_string(&trace).with_context(|| format!("read {}", trace.display()))?;
    let f = findings(&text);
    let commits = after - before;
    println!(
        "fsync audit: {} posts from {} senders to the relay under strace ({})",
        per * plan.senders,
        plan.senders,
        trace.display()
    );
    println!("  answered 201                          {}", f.answered);
    println!("  commits while posting (the relay's)   {commits}");
    println!(
        "  WAL fsyncs while posting              {}",
        f.syncs_while_posting
    );
    println!(
        "  answered before an fsync after their request: {}",
        f.early
    );
    let ok =
        f.answered == per * plan.senders && f.syncs_while_posting as u64 >= commits && f.early == 0;
    println!(
        "fsync audit: {}",
        if ok {
            "PASS (at least one WAL fsync per commit; no post answered before one)"
        } else {
            "FAIL"
        }
    );
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACE: &str = r#"11  10:00:00.000100 recvfrom(16<socket:[1]>, "POST /v1/channels/ab/messages HTTP/1.1\r\n"..., 8192, 0, NULL, NULL) = 300 <0.000010>
12 10:00:00.000200 fdatasync(7</w/relay.db-wal> <unfinished ...>
11 10:00:00.000150 recvfrom(17<socket:[2]>, "POST /v1/channels/cd/messages HTTP/1.1\r\n"..., 8192, 0, NULL, NULL) = 300 <0.000010>
12 10:00:00.000900 <... fdatasync resumed>) = 0 <0.000700>
11 10:00:00.001000 sendto(16<socket:[1]>, "HTTP/1.1 201 Created\r\n"..., 200, MSG_NOSIGNAL, NULL, 0) = 200 <0.000010>
11 10:00:00.001100 sendto(17<socket:[2]>, "HTTP/1.1 201 Created\r\n"..., 200, MSG_NOSIGNAL, NULL, 0) = 200 <0.000010>
11 10:00:00.002000 recvfrom(16<socket:[1]>, "POST /v1/channels/ab/messages HTTP/1.1\r\n"..., 8192, 0, NULL, NULL) = 300 <0.000010>
11 10:00:00.002100 sendto(16<socket:[1]>, "HTTP/1.1 201 Created\r\n"..., 200, MSG_NOSIGNAL, NULL, 0) = 200 <0.000010>
12 10:00:00.002500 fdatasync(7</w/relay.db-wal>) = 0 <0.000400>
"#;

    #[test]
    fn an_answer_before_its_fsync_is_found() {
        let f = findings(TRACE);
        // Two answers wait for the shared fsync (group commit); the third
        // is written before the fsync that follows its request.
        assert_eq!(
            f,
            Findings {
                answered: 3,
                wal_syncs: 2,
                syncs_while_posting: 1,
                early: 1
            }
        );
    }

    #[test]
    fn stamps_and_durations_are_read() {
        assert_eq!(seconds("01:02:03.5"), Some(3723.5));
        assert_eq!(duration("x = 0 <0.000700>"), 0.0007);
        assert_eq!(descriptor("7</w/relay.db-wal>) = 0"), "/w/relay.db-wal");
    }
}
