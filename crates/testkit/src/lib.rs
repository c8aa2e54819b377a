//! Test harness: a real relay on 127.0.0.1 with an ephemeral port and a
//! temporary SQLite database, and principals that talk to it over real HTTP
//! using only the protocol crate. Everything here panics on failure: it is
//! for tests.
#![forbid(unsafe_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use backchannel_protocol::api::{KeyJson, LoginResponse, UploadKeysRequest};
use backchannel_protocol::{b64, Handle, Identity};
use backchannel_relay::store::{RelayStore, RowCounts, SqliteStore};
use backchannel_relay::{serve, Relay, RelayConfig};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod hostile;
pub mod postgres;

/// Makes ring rustls's process default, so `reqwest::Client::new()` works
/// in tests (the workspace builds reqwest without a provider of its own).
#[allow(deprecated)]
pub fn install_ring_default() {
    let _ =
        rustls::crypto::CryptoProvider::install_default(rustls::crypto::ring::default_provider());
}

/// A relay serving on an ephemeral loopback port until stopped or dropped.
pub struct TestRelay {
    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    /// The relay (for its store).
    pub relay: Relay,
    /// The relay turned hostile: drop, hold, replay, alter, inject, lie.
    pub hostile: hostile::Hostile,
    db: PathBuf,
    /// The PostgreSQL cluster and database, when the test runs on it.
    postgres: Option<(std::sync::Arc<postgres::PgCluster>, String)>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
    config: RelayConfig,
    clock: backchannel_relay::Clock,
    _dir: TempDir,
}

impl TestRelay {
    /// Starts a relay with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(RelayConfig::default(), backchannel_relay::system_clock()).await
    }

    /// Starts a relay with the given configuration and clock.
    /// With `BACKCHANNEL_TEST_BACKEND=postgres` the relay stores in a
    /// throwaway PostgreSQL cluster instead of SQLite (what the hostile
    /// relay does needs SQLite).
    pub async fn start_with(config: RelayConfig, clock: backchannel_relay::Clock) -> Self {
        install_ring_default();
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("relay.db");
        let postgres = on_postgres().then(|| {
            let cluster = postgres::PgCluster::start()
                .expect("BACKCHANNEL_TEST_BACKEND=postgres needs PostgreSQL installed");
            let url = cluster.database();
            (std::sync::Arc::new(cluster), url)
        });
        let stale = std::sync::Arc::<hostile::Tricks>::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let store = open_store(&db, postgres.as_ref());
        let mut relay = TestRelay {
            url: format!("http://{addr}"),
            addr,
            relay: Relay::with(
                std::sync::Arc::new(hostile::TamperStore::new(
                    store,
                    stale.clone(),
                    postgres.is_some(),
                )),
                config.clone(),
                clock.clone(),
            ),
            hostile: hostile::Hostile::new(hostile_db(&db, postgres.as_ref()), stale),
            db,
            postgres,
            stop: None,
            task: None,
            config,
            clock,
            _dir: dir,
        };
        relay.serve_on(listener);
        relay
    }

    fn serve_on(&mut self, listener: tokio::net::TcpListener) {
        let (stop, stopped) = oneshot::channel::<()>();
        self.task = Some(tokio::spawn(serve(
            listener,
            self.relay.clone(),
            async move {
                let _ = stopped.await;
            },
        )));
        self.stop = Some(stop);
    }

    /// Stops the relay and starts it again on the same database and port,
    /// as an operator's restart would.
    pub async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let stale = std::sync::Arc::<hostile::Tricks>::default();
        let store = hostile::TamperStore::new(
            open_store(&self.db, self.postgres.as_ref()),
            stale.clone(),
            self.postgres.is_some(),
        );
        self.relay = Relay::with(
            std::sync::Arc::new(store),
            self.config.clone(),
            self.clock.clone(),
        );
        self.hostile = hostile::Hostile::new(hostile_db(&self.db, self.postgres.as_ref()), stale);
        let mut tries = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if tries < 100 => {
                    tries += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot listen on {} again: {e}", self.addr),
            }
        };
        self.serve_on(listener);
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// Row counts of every table.
    pub fn row_counts(&self) -> RowCounts {
        self.store().row_counts().unwrap()
    }

    /// The store.
    pub fn store(&self) -> &dyn RelayStore {
        &**self.relay.store()
    }

    /// The bytes of the database file and its WAL, concatenated (on
    /// PostgreSQL, of every file of the cluster).
    pub fn file_bytes(&self) -> Vec<u8> {
        match &self.postgres {
            Some((cluster, _)) => cluster.file_bytes(),
            None => file_bytes(&self.db),
        }
    }

    /// Plays a lying relay: adds `member` to a channel's routing record
    /// behind the members' backs.
    pub fn add_routing_member(&self, channel: backchannel_protocol::ChannelId, member: &Handle) {
        self.hostile.add_routing_member(channel, member.as_str());
    }

    /// How many envelopes were ever posted to `recipient` (acked or not).
    pub fn posted_to(&self, recipient: &Handle) -> u64 {
        self.hostile.posted_to(recipient.as_str())
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestRelay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Whether test relays store in PostgreSQL (`BACKCHANNEL_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("BACKCHANNEL_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

/// The database the hostile relay edits.
fn hostile_db(
    db: &Path,
    postgres: Option<&(std::sync::Arc<postgres::PgCluster>, String)>,
) -> hostile::Db {
    match postgres {
        Some((_, url)) => hostile::Db::Postgres(url.clone()),
        None => hostile::Db::Sqlite(db.to_path_buf()),
    }
}

/// A test relay's store: SQLite at `db`, or the PostgreSQL database.
fn open_store(
    db: &Path,
    postgres: Option<&(std::sync::Arc<postgres::PgCluster>, String)>,
) -> Box<dyn RelayStore> {
    match postgres {
        Some((_, url)) => Box::new(backchannel_relay::store::PostgresStore::open(url).unwrap()),
        None => Box::new(SqliteStore::open(db).unwrap()),
    }
}

/// The bytes of a SQLite database and its WAL (if any), concatenated.
pub fn file_bytes(db: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(db).unwrap_or_default();
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    bytes.extend(std::fs::read(PathBuf::from(wal)).unwrap_or_default());
    bytes
}

/// True if `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A raw JSON answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Parsed body (`Value::Null` if empty or not JSON).
    pub body: Value,
    /// The raw body text.
    pub text: String,
}

impl Answer {
    /// The error code of a JSON error answer.
    pub fn code(&self) -> &str {
        self.body["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("not a JSON error: {} {}", self.status, self.text))
    }
}

/// Sends one request and reads the answer.
pub async fn request(
    http: &reqwest::Client,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> Answer {
    let mut req = http.request(method.parse().unwrap(), url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(b).unwrap());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, body, text }
}

/// A principal talking to a relay over HTTP.
pub struct Principal {
    /// Its handle.
    pub handle: Handle,
    /// Its Olm account.
    pub identity: Identity,
    /// Its bearer token, once logged in.
    pub token: String,
    /// The relay's base URL.
    pub url: String,
    /// The HTTP client.
    pub http: reqwest::Client,
}

impl Principal {
    /// Registers `handle`, logs in, and (if `keys` > 0) publishes `keys`
    /// one-time keys and a fallback key.
    pub async fn join(url: &str, handle: &str, keys: usize) -> Self {
        install_ring_default();
        let http = reqwest::Client::new();
        let identity = Identity::new();
        let k = identity.keys();
        let a = request(
            &http,
            "POST",
            &format!("{url}/v1/principals"),
            None,
            Some(&json!({"handle": handle, "curve25519": b64::encode(k.curve25519), "ed25519": b64::encode(k.ed25519)})),
        )
        .await;
        assert_eq!(a.status, 201, "register {handle}: {}", a.text);
        let mut p = Principal {
            handle: Handle::new(handle).unwrap(),
            identity,
            token: String::new(),
            url: url.to_string(),
            http,
        };
        p.token = p.login().await.token;
        if keys > 0 {
            p.publish_keys(keys).await;
        }
        p
    }

    /// Runs the challenge/response login.
    pub async fn login(&self) -> LoginResponse {
        let c = self
            .call(
                "POST",
                "/v1/login/challenge",
                Some(&json!({"handle": self.handle.as_str()})),
            )
            .await;
        assert_eq!(c.status, 200, "challenge: {}", c.text);
        let challenge = c.body["challenge"].as_str().unwrap().to_string();
        let sig = self
            .identity
            .sign_login_challenge(&b64::decode(&challenge, "challenge").unwrap())
            .unwrap();
        let l = self
            .call(
                "POST",
                "/v1/login",
                Some(&json!({"handle": self.handle.as_str(), "challenge": challenge, "signature": b64::encode(sig)})),
            )
            .await;
        assert_eq!(l.status, 200, "login: {}", l.text);
        serde_json::from_value(l.body).unwrap()
    }

    /// Points at a relay's new address (after a restart) and logs in again.
    pub async fn reconnect(&mut self, url: &str) {
        self.url = url.to_string();
        self.token = self.login().await.token;
    }

    /// Publishes `n` new one-time keys and a new fallback key.
    pub async fn publish_keys(&mut self, n: usize) -> Answer {
        let otks = self.identity.generate_one_time_keys(n);
        let fb = self.identity.generate_fallback_key();
        let req = UploadKeysRequest {
            one_time_keys: otks.iter().map(KeyJson::from_signed).collect(),
            fallback_key: fb.as_ref().map(KeyJson::from_signed),
            replace: false,
        };
        let a = self
            .call(
                "POST",
                "/v1/keys",
                Some(&serde_json::to_value(req).unwrap()),
            )
            .await;
        assert_eq!(a.status, 200, "upload keys: {}", a.text);
        a
    }

    /// An authenticated request to `path` on the relay.
    pub async fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Answer {
        let token = (!self.token.is_empty()).then_some(self.token.as_str());
        request(
            &self.http,
            method,
            &format!("{}{path}", self.url),
            token,
            body,
        )
        .await
    }
}

/// A `backchannel relay serve` child process on an ephemeral port.
pub struct RelayProcess {
    /// Base URL it printed.
    pub url: String,
    /// The certificate fingerprint it printed, when serving TLS.
    pub fingerprint: Option<String>,
    /// What it printed on stdout before the address line (and that line).
    pub banner: String,
    child: std::process::Child,
    bin: std::path::PathBuf,
    db: std::path::PathBuf,
    args: Vec<String>,
    ulimit: Option<String>,
}

impl RelayProcess {
    /// Starts `bin relay serve --db db --listen 127.0.0.1:0` and reads the
    /// address it prints.
    pub fn spawn(bin: &Path, db: &Path) -> Self {
        Self::spawn_with(bin, db, &[])
    }

    /// Like [`RelayProcess::spawn`], with more `relay serve` arguments.
    pub fn spawn_with(bin: &Path, db: &Path, args: &[&str]) -> Self {
        Self::spawn_on(bin, db, "127.0.0.1:0", args, None)
    }

    /// Like [`RelayProcess::spawn_with`], under shell `ulimit` options
    /// (e.g. `-n 64` for few descriptors, `-v 400000` for a memory cap).
    pub fn spawn_limited(bin: &Path, db: &Path, args: &[&str], ulimit: &str) -> Self {
        Self::spawn_on(bin, db, "127.0.0.1:0", args, Some(ulimit))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the relay (SIGKILL): clients then find it unreachable.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Asks the relay to stop gracefully (SIGTERM, as systemd does).
    pub fn terminate(&self) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `within`; `None` if it did not.
    pub fn wait_exit(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let end = std::time::Instant::now() + within;
        while std::time::Instant::now() < end {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Starts it again on the same address, database and arguments.
    pub fn start_again(&mut self) {
        self.stop();
        let listen = self
            .url
            .trim_start_matches("http://")
            .trim_start_matches("https://")
            .to_string();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let again = Self::spawn_on(
            &self.bin.clone(),
            &self.db.clone(),
            &listen,
            &args,
            self.ulimit.clone().as_deref(),
        );
        *self = again;
    }

    fn spawn_on(bin: &Path, db: &Path, listen: &str, args: &[&str], ulimit: Option<&str>) -> Self {
        use std::io::BufRead as _;
        let mut command = match ulimit {
            None => std::process::Command::new(bin),
            Some(limits) => {
                let mut c = std::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit {limits} && exec \"$0\" \"$@\""))
                    .arg(bin);
                c
            }
        };
        let mut child = command
            .args(["relay", "serve", "--listen", listen, "--db"])
            .arg(db)
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(
                if std::env::var_os("BACKCHANNEL_TEST_RELAY_LOG").is_some() {
                    std::process::Stdio::inherit()
                } else {
                    std::process::Stdio::null()
                },
            )
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut reader = std::io::BufReader::new(stdout);
        let mut banner = String::new();
        let line = loop {
            let mut line = String::new();
            let n = reader.read_line(&mut line).unwrap();
            banner.push_str(&line);
            if n == 0 || line.contains("listening on") {
                break line;
            }
        };
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            .unwrap_or_else(|| panic!("relay printed no address: {banner:?}"))
            .to_string();
        let fingerprint = line
            .split("certificate sha256 ")
            .nth(1)
            .map(|f| f.trim_end_matches([')', '\n']).to_string());
        // Keep reading (and dropping) stdout so the relay never blocks on it.
        std::thread::spawn(move || {
            let mut sink = String::new();
            while reader.read_line(&mut sink).is_ok_and(|n| n > 0) {
                sink.clear();
            }
        });
        RelayProcess {
            url,
            fingerprint,
            banner,
            child,
            bin: bin.to_path_buf(),
            db: db.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            ulimit: ulimit.map(str::to_string),
        }
    }

    /// Kills the process with SIGKILL (no chance to flush or clean up) and
    /// reaps it.
    pub fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for RelayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
