//! Prepares a running relay for the API fuzzer (`scripts/api-fuzz`): three
//! real principals with published keys, a channel and an open exchange, so
//! that generated requests reach real resources and not only 401 and 404.
//!
//! Writes `KEY=value` lines (the fuzzing principal's bearer token among
//! them) to the file named by `--out`, created with mode 0600; nothing
//! secret goes to the terminal.
//!
//! ```text
//! api-fuzz-setup --relay http://127.0.0.1:PORT --out /tmp/fuzz.env
//! ```

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;

use backchannel_protocol::{ChannelId, ExchangeId};
use backchannel_testkit::Principal;
use serde_json::json;

const USAGE: &str = "usage: api-fuzz-setup --relay URL --out FILE\n\
    Registers fuzz-a, fuzz-b and fuzz-c on the relay, publishes their keys,\n\
    opens a channel and an exchange, and writes the ids and fuzz-a's token\n\
    as KEY=value lines to FILE (mode 0600).";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (relay, out) = match args() {
        Some(a) => a,
        None => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    let a = Principal::join(&relay, "fuzz-a", 20).await;
    let b = Principal::join(&relay, "fuzz-b", 20).await;
    let c = Principal::join(&relay, "fuzz-c", 20).await;
    let channel = ChannelId::random();
    let members = [&a, &b, &c].map(|p| p.handle.as_str().to_string());
    let made = a
        .call(
            "POST",
            "/v1/channels",
            Some(&json!({"channel_id": channel.to_hex(), "members": members})),
        )
        .await;
    assert_eq!(made.status, 201, "create channel: {}", made.text);
    let exchange = ExchangeId::random();
    let day = 86_400_000;
    let deadline = now_ms() + day;
    let opened = a
        .call(
            "POST",
            "/v1/exchanges",
            Some(&json!({
                "exchange_id": exchange.to_hex(),
                "channel_id": channel.to_hex(),
                "participants": [a.handle.as_str(), b.handle.as_str()],
                "terms_digest": "00".repeat(32),
                "deadline_ms": deadline,
            })),
        )
        .await;
    assert_eq!(opened.status, 201, "create exchange: {}", opened.text);

    let lines = format!(
        "FUZZ_TOKEN={}\nFUZZ_HANDLE={}\nFUZZ_PEER={}\nFUZZ_CHANNEL={}\nFUZZ_EXCHANGE={}\n",
        a.token,
        a.handle,
        b.handle,
        channel.to_hex(),
        exchange.to_hex()
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&out)
        .unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    file.write_all(lines.as_bytes())
        .unwrap_or_else(|e| panic!("cannot write {out}: {e}"));
    eprintln!("api-fuzz-setup: fuzz-a, fuzz-b, fuzz-c registered; channel {channel}, exchange {exchange}; settings in {out}");
}

fn args() -> Option<(String, String)> {
    let mut relay = None;
    let mut out = None;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--relay" => relay = it.next(),
            "--out" => out = it.next(),
            _ => return None,
        }
    }
    Some((relay?, out?))
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}
