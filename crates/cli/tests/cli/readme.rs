//! The README is executable: every line of its ```sh blocks, read from
//! README.md itself at test time, runs in order against a real relay child
//! process, and any failing line fails the test. And every relative link in
//! the docs resolves.
//!
//! The conventions the README follows, and this test enforces:
//!
//! - **Terminals.** Each block's first line names the terminal it is typed
//!   in: `# as relay operator`, `# as mediator`, `# as blue`, `# as red`,
//!   `# as green`. Every terminal has its own environment (no variable of
//!   the test's own environment but `PATH`; `HOME` and `XDG_DATA_HOME` in a
//!   directory of its own), and all of them work in one directory, as a
//!   person's terminals in the clone's top directory do. `./target/release`
//!   there holds a link to the already-built debug binary.
//! - **Lines.** Each line (`\` continuations joined) runs as
//!   `bash -c` with `set -euo pipefail` and `set -a`, in its terminal's
//!   environment; what the line exports or assigns (`export X=...`,
//!   `CHANNEL=$(...)`) is carried to that terminal's next lines. A line that
//!   exits non-zero, or runs longer than [`LINE_TIMEOUT`], fails the test.
//! - **Variables.** A placeholder is a shell variable set by an earlier line
//!   of the same terminal: `NAME=$(command)` (usually `--json | jq -r`), or
//!   `read`. After `NAME=...` the variable must be neither empty nor `null`.
//!   `read -rs BACKCHANNEL_PASSPHRASE` reads the terminal's passphrase (the
//!   test types a passphrase of that terminal's own); `read -r NAME   # told
//!   by TERMINAL` reads what another person says in person (the test types
//!   the value `NAME` has in that terminal). Any other `read` fails.
//!   Placeholders that are not shell (`<channel>`, `"..."`, `…`, `[--flag]`)
//!   fail.
//! - **Background.** A line ending `&   # background` keeps running: the test
//!   starts it as a child process, waits for its first line of output (as a
//!   person waits for the prompt), checks at the end that it is still
//!   running, and kills it. One substitution: the `relay serve` line's
//!   `127.0.0.1:8470` becomes `127.0.0.1:0`, and the address the relay prints
//!   replaces `127.0.0.1:8470` in every later line, so tests never collide
//!   on a port.
//! - **Skipped.** `cargo build --release` (the test uses the debug binary
//!   cargo built for it). A block whose first line is `# as anyone, not run
//!   by the README test: REASON` is not run, and may hold only the commands
//!   of [`EXEMPT`] (this test's own command, the demo, benchmarks and the
//!   simulation, each run elsewhere).
//! - Anything else (an unknown terminal, a `# as` or `# background` marker
//!   anywhere else, a `&` without the marker) fails the test.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::bin;

/// The terminals a block may be typed in.
const TERMINALS: &[&str] = &["relay operator", "mediator", "blue", "red", "green"];
/// The first line of a block the test does not run.
const EXEMPT_MARK: &str = "# as anyone, not run by the README test: ";
/// The only commands an exempt block may hold, and where each is checked.
const EXEMPT: &[(&str, &str)] = &[
    ("scripts/test", "this test's own command"),
    (
        "cargo run -- demo",
        "flows.rs: the_demo_exits_zero_with_every_step_verified",
    ),
    ("cargo bench -p backchannel-client", "a benchmark, no check"),
    ("scripts/simulate ", ".ci/run runs the simulation"),
    (
        "scripts/bench",
        ".ci/run runs scripts/bench --quick; a benchmark, no check",
    ),
    (
        "scripts/crash",
        ".ci/run runs scripts/crash --messages 400; the long run is by hand",
    ),
];
/// The README's relay address, replaced by the test's own.
const README_RELAY: &str = "127.0.0.1:8470";
/// Longest a line may run.
const LINE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest a background command may take to print its first line.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Variables bash sets itself, never carried between lines.
const BASH_OWN: &[&str] = &["_", "SHLVL", "OLDPWD", "PWD", ENV_OUT];
/// Where the line's script writes its environment at the end.
const ENV_OUT: &str = "README_TEST_ENV_OUT";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One ```sh block: its first line's number and its lines, with
/// continuations joined, each with the number of its first line.
#[derive(Debug)]
struct Block {
    line: usize,
    lines: Vec<(usize, String)>,
}

/// Every ```sh block of a markdown text.
fn sh_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let n = i + 1;
        match &mut current {
            None => {
                if raw.trim_start().starts_with("```sh") {
                    current = Some(Block {
                        line: n,
                        lines: Vec::new(),
                    });
                }
            }
            Some(b) => {
                if raw.trim_start().starts_with("```") {
                    if let Some(p) = pending.take() {
                        b.lines.push(p);
                    }
                    blocks.push(current.take().unwrap());
                    continue;
                }
                let (start, mut joined) = pending.take().unwrap_or((n, String::new()));
                if let Some(head) = raw.strip_suffix('\\') {
                    joined.push_str(head);
                    pending = Some((start, joined));
                } else {
                    joined.push_str(raw);
                    b.lines.push((start, joined));
                }
            }
        }
    }
    assert!(current.is_none(), "a ```sh block is not closed");
    blocks
}

/// What one line of a run block is.
#[derive(Debug, PartialEq)]
enum Line {
    /// Blank or a comment.
    Nothing,
    /// `cargo build --release`.
    Skipped,
    /// Runs to its end.
    Run(String),
    /// Starts and keeps running: the command without `&` and the marker.
    Background(String),
}

/// Where a `read` line's input comes from.
#[derive(Debug, PartialEq)]
enum Input {
    /// No input.
    None,
    /// The terminal's passphrase.
    Passphrase,
    /// The value `var` has in `terminal`.
    Told { var: String, terminal: String },
}

/// What a block is: a terminal's, or exempt.
#[derive(Debug, PartialEq)]
enum Kind {
    Terminal(String),
    Exempt,
}

/// Reads a block's first line.
fn block_kind(b: &Block) -> Result<Kind, String> {
    let first = b
        .lines
        .first()
        .map(|l| l.1.trim())
        .ok_or_else(|| format!("README.md:{}: an empty block", b.line))?;
    if let Some(reason) = first.strip_prefix(EXEMPT_MARK) {
        if reason.trim().is_empty() {
            return Err(format!("README.md:{}: an exempt block says why", b.line));
        }
        for (n, l) in &b.lines[1..] {
            let cmd = l.trim();
            if cmd.is_empty() || cmd.starts_with('#') {
                continue;
            }
            if !EXEMPT.iter().any(|(prefix, _)| cmd.starts_with(prefix)) {
                return Err(format!(
                    "README.md:{n}: {cmd:?} is in an exempt block, which may hold only {:?}",
                    EXEMPT.iter().map(|e| e.0).collect::<Vec<_>>()
                ));
            }
        }
        return Ok(Kind::Exempt);
    }
    match first.strip_prefix("# as ") {
        Some(who) if TERMINALS.contains(&who) => Ok(Kind::Terminal(who.to_string())),
        Some(who) => Err(format!(
            "README.md:{}: unknown terminal {who:?} (known: {TERMINALS:?})",
            b.line + 1
        )),
        None => Err(format!(
            "README.md:{}: a block must open with `# as TERMINAL`, not {first:?}",
            b.line + 1
        )),
    }
}

/// Classifies a line of a terminal's block (after its first line).
fn classify(n: usize, line: &str) -> Result<(Line, Input), String> {
    let t = line.trim();
    let at = |what: String| Err(format!("README.md:{n}: {what}: {t:?}"));
    if t.is_empty() {
        return Ok((Line::Nothing, Input::None));
    }
    if t.starts_with('#') {
        if t.starts_with("# as ") {
            return at("a terminal marker opens its block, never inside it".into());
        }
        if t.contains("background") {
            return at("`# background` marks a command line ending with `&`".into());
        }
        return Ok((Line::Nothing, Input::None));
    }
    for bad in ["\"...\"", "…", " [--"] {
        if t.contains(bad) {
            return at(format!("a placeholder ({bad}) left in"));
        }
    }
    if let Some(open) = t.find('<') {
        let rest = &t[open + 1..];
        if let Some(close) = rest.find('>') {
            let inner = &rest[..close];
            if !inner.is_empty()
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || " _-".contains(c))
            {
                return at(format!("a placeholder <{inner}> left in"));
            }
        }
    }
    if t == "cargo build --release" {
        return Ok((Line::Skipped, Input::None));
    }
    if let Some(pos) = t.find("# background") {
        let cmd = t[..pos].trim_end();
        let Some(cmd) = cmd.strip_suffix('&') else {
            return at("a `# background` line ends its command with `&`".into());
        };
        return Ok((Line::Background(cmd.trim().to_string()), Input::None));
    }
    if t.ends_with('&') || t.contains("& #") {
        return at("a command left running is marked `&   # background`".into());
    }
    let input = if let Some(rest) = t.strip_prefix("read ") {
        let words: Vec<&str> = rest.split_whitespace().collect();
        match words.as_slice() {
            ["-rs", "BACKCHANNEL_PASSPHRASE", "#", ..] | ["-rs", "BACKCHANNEL_PASSPHRASE"] => {
                Input::Passphrase
            }
            ["-r", var, "#", "told", "by", terminal @ ..] if !terminal.is_empty() => {
                Input::Told {
                    var: var.to_string(),
                    terminal: terminal.join(" "),
                }
            }
            _ => {
                return at(
                    "a `read` is `read -rs BACKCHANNEL_PASSPHRASE` or `read -r NAME   # told by TERMINAL`"
                        .into(),
                )
            }
        }
    } else {
        Input::None
    };
    Ok((Line::Run(t.to_string()), input))
}

/// The variable a line sets, if it is `NAME=...` or `read ... NAME`.
fn sets(line: &str, input: &Input) -> Option<String> {
    match input {
        Input::Passphrase => return Some("BACKCHANNEL_PASSPHRASE".into()),
        Input::Told { var, .. } => return Some(var.clone()),
        Input::None => {}
    }
    let name: String = line
        .chars()
        .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
        .collect();
    (!name.is_empty() && line[name.len()..].starts_with('=')).then_some(name)
}

/// Every block checked against the conventions, without running anything:
/// the blocks of terminals, with their classified lines.
type Plan = Vec<(String, Vec<(usize, Line, Input)>)>;

fn plan(text: &str) -> Result<Plan, String> {
    let mut out = Vec::new();
    for b in sh_blocks(text) {
        match block_kind(&b)? {
            Kind::Exempt => {}
            Kind::Terminal(who) => {
                let mut lines = Vec::new();
                for (n, l) in &b.lines[1..] {
                    let (line, input) = classify(*n, l)?;
                    lines.push((*n, line, input));
                }
                out.push((who, lines));
            }
        }
    }
    Ok(out)
}

/// A command left running; killed when dropped.
struct Background {
    what: String,
    child: Child,
    output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One person's terminal.
struct Terminal {
    env: BTreeMap<String, String>,
    cwd: PathBuf,
    passphrase: String,
}

/// Runs the plan in `dir`.
struct Run {
    dir: PathBuf,
    terminals: BTreeMap<String, Terminal>,
    background: Vec<Background>,
    relay: Option<String>,
    ran: usize,
}

impl Run {
    fn new(dir: &Path) -> Self {
        let release = dir.join("target/release");
        std::fs::create_dir_all(&release).unwrap();
        std::os::unix::fs::symlink(bin(), release.join("backchannel")).unwrap();
        Run {
            dir: dir.to_path_buf(),
            terminals: BTreeMap::new(),
            background: Vec::new(),
            relay: None,
            ran: 0,
        }
    }

    fn terminal(&mut self, who: &str) -> &mut Terminal {
        let dir = self.dir.clone();
        self.terminals.entry(who.to_string()).or_insert_with(|| {
            let home = dir.join("home").join(who.replace(' ', "-"));
            std::fs::create_dir_all(home.join("data")).unwrap();
            let mut env = BTreeMap::new();
            env.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
            env.insert("HOME".into(), home.display().to_string());
            env.insert(
                "XDG_DATA_HOME".into(),
                home.join("data").display().to_string(),
            );
            Terminal {
                env,
                cwd: dir.clone(),
                passphrase: format!("README test passphrase of {who}"),
            }
        })
    }

    fn substitute(&self, line: &str) -> String {
        match &self.relay {
            Some(addr) => line.replace(README_RELAY, addr),
            None => line.to_string(),
        }
    }

    fn line(&mut self, who: &str, n: usize, line: &str, input: &Input) {
        let stdin = match input {
            Input::None => String::new(),
            Input::Passphrase => format!("{}\n", self.terminal(who).passphrase),
            Input::Told { var, terminal } => {
                let told = self
                    .terminals
                    .get(terminal.as_str())
                    .and_then(|t| t.env.get(var))
                    .unwrap_or_else(|| {
                        panic!("README.md:{n}: {terminal} has no {var} to tell {who}")
                    });
                format!("{told}\n")
            }
        };
        let line = self.substitute(line);
        let env_out = self.dir.join(format!("env-{n}"));
        let script =
            format!("set -euo pipefail\nset -a\n{line}\nset +a\nenv -0 > \"${ENV_OUT}\"\n");
        let t = self.terminal(who);
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .env_clear()
            .envs(&t.env)
            .env(ENV_OUT, &env_out)
            .current_dir(&t.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = wait_with_timeout(child, LINE_TIMEOUT);
        let shown = format!(
            "README.md:{n}, as {who}: {line}\n--- stdout\n{}--- stderr\n{}",
            String::from_utf8_lossy(&out.1),
            String::from_utf8_lossy(&out.2)
        );
        println!("{shown}");
        match out.0 {
            Some(0) => {}
            Some(code) => panic!("exit status {code}: {shown}"),
            None => panic!(
                "still running after {LINE_TIMEOUT:?} (mark it `&   # background`?): {shown}"
            ),
        }
        let raw = std::fs::read(&env_out).unwrap();
        let mut env = BTreeMap::new();
        let mut cwd = None;
        for pair in raw.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let pair = String::from_utf8_lossy(pair);
            let (k, v) = pair.split_once('=').unwrap();
            if k == "PWD" {
                cwd = Some(PathBuf::from(v));
            }
            if !BASH_OWN.contains(&k) {
                env.insert(k.to_string(), v.to_string());
            }
        }
        let t = self.terminal(who);
        t.env = env;
        if let Some(c) = cwd {
            t.cwd = c;
        }
        if let Some(var) = sets(&line, input) {
            let value = t.env.get(&var).map(String::as_str).unwrap_or("");
            assert!(
                !value.trim().is_empty() && value.trim() != "null",
                "README.md:{n}: {var} is {value:?} after {line:?}"
            );
        }
        self.ran += 1;
    }

    fn background(&mut self, who: &str, n: usize, cmd: &str) {
        let is_relay = cmd.contains("relay serve");
        let cmd = if is_relay {
            cmd.replace(README_RELAY, "127.0.0.1:0")
        } else {
            self.substitute(cmd)
        };
        let t = self.terminal(who);
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(format!("set -euo pipefail\nexec {cmd}"))
            .env_clear()
            .envs(&t.env)
            .current_dir(&t.cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let (tx, output) = (tx.clone(), output.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let started = Instant::now();
        loop {
            let left = START_TIMEOUT.saturating_sub(started.elapsed());
            let line = rx.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "README.md:{n}, as {who}: {cmd} printed nothing in {START_TIMEOUT:?}: {}",
                    output.lock().unwrap()
                )
            });
            if !is_relay {
                break;
            }
            if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
                self.relay = Some(url.trim_start_matches("http://").to_string());
                break;
            }
        }
        println!("README.md:{n}, as {who}, in the background: {cmd}");
        self.background.push(Background {
            what: format!("README.md:{n}, as {who}: {cmd}"),
            child,
            output,
        });
        self.ran += 1;
    }

    /// Every background command must still be running.
    fn check_background(&mut self) {
        for b in &mut self.background {
            if let Some(status) = b.child.try_wait().unwrap() {
                panic!(
                    "{} ended ({status}) before the walkthrough did: {}",
                    b.what,
                    b.output.lock().unwrap()
                );
            }
        }
    }
}

/// Waits for a child, reading its output; `None` status if it timed out
/// (then it is killed).
fn wait_with_timeout(mut child: Child, timeout: Duration) -> (Option<i32>, Vec<u8>, Vec<u8>) {
    let read = |s: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut s) = s {
                let _ = s.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = read(child.stdout.take().map(|s| Box::new(s) as _));
    let err = read(child.stderr.take().map(|s| Box::new(s) as _));
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s.code().unwrap_or(-1));
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status, out.join().unwrap(), err.join().unwrap())
}

#[test]
fn the_readme_walkthrough_runs_line_by_line_against_a_real_relay() {
    let bash = Command::new("bash").arg("--version").output();
    let jq = Command::new("jq").arg("--version").output();
    assert!(
        bash.is_ok_and(|o| o.status.success()) && jq.is_ok_and(|o| o.status.success()),
        "the README's walkthrough needs bash and jq on PATH"
    );
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let steps = plan(&text).unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap();
    let mut run = Run::new(dir.path());
    for (who, lines) in &steps {
        for (n, line, input) in lines {
            match line {
                Line::Nothing | Line::Skipped => {}
                Line::Run(l) => run.line(who, *n, l, input),
                Line::Background(c) => run.background(who, *n, c),
            }
        }
        run.check_background();
    }
    assert!(
        run.relay.is_some(),
        "the README never starts `relay serve` in the background"
    );
    assert!(run.ran > 40, "only {} lines ran", run.ran);
}

#[test]
fn the_readme_blocks_follow_the_conventions_and_the_checker_refuses_breaks() {
    let text = std::fs::read_to_string(repo().join("README.md")).unwrap();
    let readme = plan(&text).unwrap_or_else(|e| panic!("{e}"));
    let who: std::collections::BTreeSet<&str> = readme.iter().map(|p| p.0.as_str()).collect();
    assert_eq!(
        who,
        TERMINALS.iter().copied().collect(),
        "every terminal has a block"
    );
    assert!(
        text.contains(&format!(
            "```sh\n{EXEMPT_MARK}it is this test's own command\ncargo run -- demo"
        )),
        "the set-up block is marked exempt"
    );
    // Each break of a convention is refused.
    for (block, why) in [
        ("```sh\nbackchannel sync\n```\n", "must open with"),
        (
            "```sh\n# as purple\nbackchannel sync\n```\n",
            "unknown terminal",
        ),
        (
            "```sh\n# as blue\nbackchannel send <channel> hi\n```\n",
            "placeholder <channel>",
        ),
        (
            "```sh\n# as blue\nbackchannel exchange create $C --terms \"...\"\n```\n",
            "placeholder",
        ),
        ("```sh\n# as blue\nbackchannel watch &\n```\n", "marked"),
        (
            "```sh\n# as blue\nbackchannel watch   # background\n```\n",
            "ends its command with `&`",
        ),
        (
            "```sh\n# as blue\nbackchannel sync\n# as red\nbackchannel sync\n```\n",
            "opens its block",
        ),
        ("```sh\n# as blue\nread X\n```\n", "a `read` is"),
        (
            "```sh\n# as anyone, not run by the README test: why\nbackchannel sync\n```\n",
            "exempt block",
        ),
    ] {
        let err = plan(block).expect_err(block);
        assert!(err.contains(why), "{block}: {err}");
    }
    let ok = plan(
        "```sh\n# as blue\nbackchannel watch &   # background\nread -r N   # told by mediator\nX=$(a \\\n b)\n```\n",
    )
    .unwrap();
    assert_eq!(ok[0].1[0].1, Line::Background("backchannel watch".into()));
    assert_eq!(
        ok[0].1[1].2,
        Input::Told {
            var: "N".into(),
            terminal: "mediator".into()
        }
    );
    assert_eq!(ok[0].1[2].1, Line::Run("X=$(a  b)".into()));
    assert_eq!(sets("X=$(a  b)", &Input::None), Some("X".into()));
}

/// GitHub's anchor of a heading: lower case, punctuation but `-` and `_`
/// dropped, spaces made `-`; a repeated one gets `-1`, `-2`...
fn anchors(markdown: &str) -> Vec<String> {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut out = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let text = line.trim_start_matches('#').trim();
        let slug: String = text
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                _ => None,
            })
            .collect();
        let n = seen.entry(slug.clone()).or_insert(0);
        out.push(if *n == 0 {
            slug.clone()
        } else {
            format!("{slug}-{n}")
        });
        *n += 1;
    }
    out
}

/// The targets of inline links `[text](target)` outside code.
fn links(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        // Inline code spans are not links.
        let plain: String = line
            .split('`')
            .enumerate()
            .filter(|(k, _)| k % 2 == 0)
            .map(|(_, s)| s)
            .collect::<Vec<_>>()
            .join(" ");
        let mut rest = plain.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            out.push((i + 1, after[..end].trim().to_string()));
            rest = &after[end..];
        }
    }
    out
}

fn markdown_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "md") {
                out.push(p);
            }
        }
    }
    let mut out = vec![repo().join("README.md"), repo().join("SECURITY.md")];
    walk(&repo().join("docs"), &mut out);
    out
}

/// Every relative link's problem, if any, as `file:line: why`.
fn broken_links(file: &Path, text: &str) -> Vec<String> {
    let mut broken = Vec::new();
    for (n, target) in links(text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((p, a)) => (p, Some(a)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            file.parent().unwrap().join(path)
        };
        let at = format!("{}:{n}: ({target})", file.display());
        if !resolved.exists() {
            broken.push(format!("{at}: no such file"));
            continue;
        }
        if let Some(anchor) = anchor {
            let Ok(md) = std::fs::read_to_string(&resolved) else {
                broken.push(format!("{at}: an anchor into something unreadable"));
                continue;
            };
            if !anchors(&md).iter().any(|a| a == anchor) {
                broken.push(format!("{at}: no heading #{anchor}"));
            }
        }
    }
    broken
}

#[test]
fn every_link_in_the_docs_resolves() {
    let files = markdown_files();
    assert!(files.iter().any(|f| f.ends_with("docs/ATTACKS.md")));
    let mut broken = Vec::new();
    let mut checked = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        checked += links(&text).len();
        broken.extend(broken_links(f, &text));
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    assert!(checked > 20, "only {checked} links found");
    // The checker itself: a missing file and a missing heading are caught,
    // and GitHub's slugs are what protocol.md's contents use.
    let readme = repo().join("README.md");
    let bad = broken_links(
        &readme,
        "[a](docs/nope.md) [b](docs/protocol.md#no-such-heading) [c](docs/protocol.md#2-identities-keys-and-signatures) [d](#tests)",
    );
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(
        anchors("# A `b`, c!\n## A b c\n"),
        vec!["a-b-c".to_string(), "a-b-c-1".to_string()]
    );
}
