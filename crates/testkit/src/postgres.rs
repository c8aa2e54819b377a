//! A throwaway PostgreSQL cluster from the Debian binaries
//! (`/usr/lib/postgresql/<version>/bin`, not on PATH), on a temporary
//! directory and a free loopback port, stopped when dropped.
//!
//! As root (CI containers), the server runs as the `postgres` user the
//! Debian package creates, on directories that user owns. One `initdb`
//! per machine makes a template that each cluster copies. Without the
//! binaries, [`PgCluster::start`] returns `None` after printing that the
//! test is skipped, except in CI (`CI` set), where it panics: there the
//! PostgreSQL tests must run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The user a root process runs the server as.
const SERVER_USER: &str = "postgres";

/// A running cluster; the superuser `backchannel` logs in without a password
/// from 127.0.0.1 (trust: the port is loopback and the cluster a test's).
pub struct PgCluster {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    databases: std::sync::atomic::AtomicU32,
}

impl std::fmt::Debug for PgCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgCluster")
            .field("port", &self.port)
            .finish()
    }
}

/// The newest Debian PostgreSQL binaries directory with `initdb` and
/// `pg_ctl`, or `BACKCHANNEL_PG_BIN`.
pub fn binaries() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BACKCHANNEL_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").exists() && bin.join("pg_ctl").exists()).then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    uid() == 0
}

fn uid() -> u32 {
    // `id -u` rather than a libc binding: the testkit stays free of unsafe.
    Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(u32::MAX)
}

/// Runs a PostgreSQL binary, as the server's user when we are root.
fn run(bin: &Path, tool: &str, args: &[&str]) -> Output {
    let exe = bin.join(tool);
    let mut cmd = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", SERVER_USER, "--"]).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()))
}

fn check(out: Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Gives a directory to the server's user (root only).
fn give(path: &Path) {
    if is_root() {
        let out = Command::new("chown")
            .args(["-R", SERVER_USER])
            .arg(path)
            .output()
            .expect("chown");
        check(out, "chown to postgres");
    }
}

/// The machine's template cluster, made once (by whichever test gets there
/// first: made aside, then renamed into place).
fn template(bin: &Path) -> PathBuf {
    let version = bin
        .parent()
        .and_then(|p| p.file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("pg")
        .to_owned();
    let root = std::env::temp_dir().join(format!("backchannel-pg-template-{version}-{}", uid()));
    let data = root.join("data");
    // One initdb per process; other processes race by rename below.
    static MAKING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _making = MAKING.lock().unwrap_or_else(|p| p.into_inner());
    if data.join("PG_VERSION").exists() {
        return data;
    }
    let aside = std::env::temp_dir().join(format!(
        "backchannel-pg-template-{version}-{}.{}",
        uid(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&aside);
    std::fs::create_dir_all(&aside).unwrap();
    give(&aside);
    let target = aside.join("data");
    let target_str = target.to_str().unwrap();
    let out = run(
        bin,
        "initdb",
        &[
            "-D",
            target_str,
            "-A",
            "trust",
            "-U",
            "backchannel",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ],
    );
    check(out, "initdb");
    // Another process may have won the race: its template is as good.
    if std::fs::rename(&aside, &root).is_err() {
        let _ = std::fs::remove_dir_all(&aside);
    }
    data
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl PgCluster {
    /// Starts a cluster, or `None` (with a line saying the test is
    /// skipped) when the binaries are missing outside CI.
    pub fn start() -> Option<PgCluster> {
        let Some(bin) = binaries() else {
            if std::env::var_os("CI").is_some() {
                panic!("PostgreSQL binaries not found under /usr/lib/postgresql/*/bin: CI must run the PostgreSQL tests (apt-get install postgresql)");
            }
            eprintln!("skipped: PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); `apt-get install postgresql` runs this test");
            return None;
        };
        let template = template(&bin);
        let dir = tempfile::Builder::new().prefix("bcpg").tempdir().unwrap();
        let out = Command::new("cp")
            .args(["-a"])
            .arg(&template)
            .arg(dir.path().join("data"))
            .output()
            .unwrap();
        check(out, "copying the template cluster");
        give(dir.path());
        let cluster = PgCluster {
            bin,
            dir,
            port: 0,
            databases: Default::default(),
        };
        Some(cluster.run_on_free_port())
    }

    fn run_on_free_port(mut self) -> Self {
        for _ in 0..5 {
            self.port = free_port();
            if self.pg_ctl_start() {
                return self;
            }
        }
        panic!("PostgreSQL did not start: {}", self.log());
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl_start(&self) -> bool {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let data = self.data();
        let log = self.dir.path().join("server.log");
        let out = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        out.status.success()
    }

    /// The bytes of every file of the cluster (data files, WAL, logs),
    /// concatenated: what an operator holding its disk holds.
    pub fn file_bytes(&self) -> Vec<u8> {
        fn walk(dir: &Path, out: &mut Vec<u8>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            for e in entries.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if let Ok(bytes) = std::fs::read(&path) {
                    out.extend_from_slice(&bytes);
                }
            }
        }
        let mut out = Vec::new();
        walk(self.dir.path(), &mut out);
        out
    }

    /// The server's log so far (for a failing test's message).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The address of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://backchannel@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and answers its address.
    pub fn database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let name = format!("relay_{n}");
        let out = run(
            &self.bin,
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "backchannel",
                &name,
            ],
        );
        check(out, "createdb");
        self.url(&name)
    }

    /// The postmaster and every process it started (backends, WAL
    /// writer, checkpointer...), for measuring what the server uses.
    pub fn server_pids(&self) -> Vec<u32> {
        let Some(pid) = self.postmaster() else {
            return Vec::new();
        };
        let mut pids = children_of(pid);
        pids.push(pid);
        pids
    }

    fn postmaster(&self) -> Option<u32> {
        std::fs::read_to_string(self.data().join("postmaster.pid"))
            .ok()
            .and_then(|s| s.lines().next().and_then(|l| l.trim().parse::<u32>().ok()))
    }

    /// Kills the server as a power cut would: SIGKILL to the postmaster
    /// and every backend at once; then waits until all are gone.
    pub fn kill(&self) {
        let doomed = self.server_pids();
        let pids: Vec<String> = doomed.iter().map(u32::to_string).collect();
        let _ = Command::new("kill").arg("-KILL").args(&pids).output();
        let deadline = Instant::now() + Duration::from_secs(10);
        while doomed.iter().any(|p| alive(*p)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts the server again on the same port and data (crash recovery).
    pub fn restart(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.pg_ctl_start() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not restart: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Whether process `pid` runs (a zombie, killed and not yet reaped, does not).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(") ")
                .map(|(_, rest)| !rest.starts_with('Z'))
        })
        .unwrap_or(false)
}

/// The processes whose parent is `pid` (a postmaster's backends, a
/// tracer's tracee).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|child| {
            // stat is "pid (comm) state ppid ...": comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{child}/stat"))
                .ok()
                .and_then(|stat| {
                    let (_, rest) = stat.rsplit_once(") ")?;
                    rest.split_whitespace().nth(1)?.parse::<u32>().ok()
                })
                == Some(pid)
        })
        .collect()
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data();
        let _ = run(
            &self.bin,
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ],
        );
    }
}
