//! The relay of the web interface's browser tests (`crates/ui/browser`):
//! the test relay in this process, which the test turns hostile through
//! standard input. Prints `relay URL` once it listens, then answers each
//! command with `ok` (or `error: …`); stops at end of input.
//!
//! ```text
//! ui-scene
//! relay http://127.0.0.1:40123
//! drop-next blue        (the next envelope posted to blue is dropped)
//! ok
//! ```

use std::io::Write as _;

use backchannel_testkit::TestRelay;

const USAGE: &str = "usage: ui-scene\n\
    Starts a test relay on 127.0.0.1 and prints `relay URL`; then reads\n\
    commands on standard input, one a line:\n\
      drop-next HANDLE   drop the next envelope posted to HANDLE, answering the sender as if stored\n\
    and stops at end of input.";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::args().len() > 1 {
        eprintln!("{USAGE}");
        std::process::exit(2);
    }
    let relay = TestRelay::start().await;
    println!("relay {}", relay.url);
    let _ = std::io::stdout().flush();
    let hostile = relay.hostile.clone();
    let done = tokio::task::spawn_blocking(move || {
        for line in std::io::stdin().lines().map_while(Result::ok) {
            let answer = match line.split_whitespace().collect::<Vec<_>>()[..] {
                ["drop-next", handle] => {
                    hostile.drop_next(handle);
                    "ok".to_string()
                }
                [] => continue,
                _ => format!("error: unknown command {line:?}\n{USAGE}"),
            };
            println!("{answer}");
            let _ = std::io::stdout().flush();
        }
    });
    let _ = done.await;
    relay.stop().await;
}
