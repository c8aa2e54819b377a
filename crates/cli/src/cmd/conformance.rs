//! `backchannel conformance`: checks another client against
//! docs/protocol.md by playing a mediator and a party against it.

use std::time::Duration;

use anyhow::Context as _;
use backchannel_conformance::{run as run_script, Config, Event, STEPS};
use backchannel_protocol::member::Rule;
use backchannel_protocol::Handle;
use clap::Args;

/// Check a client under test against the protocol's rules.
///
/// Registers two throwaway principals on the relay, a mediator and a party,
/// and plays the fixed script of docs/protocol.md §12 against the client
/// registered as HANDLE: at each step it acts, prints what the operator of
/// the client under test must do, and checks what arrives. Each step waits
/// up to --step-timeout; a broken rule or a timeout names its rule and ends
/// the run. Exit status: 0 if every rule holds, 1 if one is broken, 2 if
/// the harness could not run.
///
/// Each step line reads `step N/7 (rules): ACTION — words`, where ACTION is
/// machine-readable: `accept channel=ID`, `sync`, `send-text channel=ID` or
/// `acknowledge channel=ID message=ID`.
///
/// Example:
///
///   backchannel conformance --relay http://127.0.0.1:8443 --peer alice
///   backchannel conformance --relay http://127.0.0.1:8443 --peer alice --step-timeout 30s
#[derive(Debug, Args)]
#[command(verbatim_doc_comment)]
pub struct ConformanceArgs {
    /// The relay the client under test uses.
    #[arg(long, value_name = "URL")]
    relay: String,
    /// The client under test's handle (registered, with one-time keys published).
    #[arg(long, value_name = "HANDLE")]
    peer: String,
    /// How long each step waits for the client under test (90s, 5m...).
    #[arg(long, value_name = "DURATION", default_value = "120s", value_parser = crate::time::parse_duration)]
    step_timeout: u32,
}

pub fn run(args: ConformanceArgs) -> anyhow::Result<()> {
    let peer = Handle::new(args.peer.as_str()).context("--peer")?;
    let config = Config {
        relay: args.relay.clone(),
        peer: peer.clone(),
        step_timeout: Duration::from_secs(u64::from(args.step_timeout)),
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let report = runtime
        .block_on(run_script(config, |e| print_event(&peer, e)))
        .with_context(|| format!("the harness could not run against {}", args.relay))?;
    match report.broken {
        None => {
            outln!("conformance: all {} rules hold", Rule::ALL.len());
            Ok(())
        }
        Some((rule, _)) => Err(crate::Found(format!(
            "rule {rule} is broken ({} of {} rules held before it); see docs/protocol.md §12",
            report.held.len(),
            Rule::ALL.len()
        ))
        .into()),
    }
}

fn print_event(peer: &Handle, e: Event) {
    match e {
        Event::Started { mediator, party } => outln!(
            "conformance: playing mediator {mediator} and party {party} against {peer}, {STEPS} steps"
        ),
        Event::Step {
            number,
            of,
            rules,
            action,
        } => {
            let rules: Vec<&str> = rules.iter().map(|r| r.name()).collect();
            outln!(
                "step {number}/{of} ({}): {} — {}",
                rules.join(", "),
                action.code(),
                action.words()
            );
        }
        Event::Held(rule) => outln!("ok {rule}"),
        Event::Broken { rule, why } => outln!("FAILED {rule}: {why}"),
    }
}
