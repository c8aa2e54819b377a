//! `backchannel-sim`: runs seeds of the deterministic simulation and
//! prints one closing line. `scripts/simulate` wraps it.
#![forbid(unsafe_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use anyhow::bail;
use backchannel_sim::{attack_for, run, Attack, Outcome};
use clap::Parser;

/// Run seeded simulations of members around an honest or hostile relay.
///
/// Each seed runs a mediator and two or three parties (and a possible
/// joiner) on a virtual clock: sends, delays, redeliveries, crashes and
/// restarts, offline spells, amendments; in a share of the seeds (half by
/// default) one attack of ATTACKS.md, chosen by the seed, at a random
/// moment. A failing seed prints itself with its trace; run it again with
/// --seed to replay exactly.
///
/// Examples:
///
///   backchannel-sim --seeds 2000 --jobs 2
///   backchannel-sim --seed 1234 --verbose
///   backchannel-sim --seeds 200 --attack reorder
#[derive(Debug, Parser)]
#[command(verbatim_doc_comment)]
struct Args {
    /// How many seeds (from --first).
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 0)]
    first: u64,
    /// Run only this seed (replay).
    #[arg(long)]
    seed: Option<u64>,
    /// Only this attack (name or ATTACKS.md row), on every attacked seed.
    #[arg(long)]
    attack: Option<String>,
    /// Share of seeds attacked (0 to 1).
    #[arg(long, default_value_t = 0.5)]
    attack_share: f64,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Print each seed's result.
    #[arg(long)]
    verbose: bool,
}

#[derive(Default)]
struct Tally {
    seeds: u64,
    honest_with_alerts: u64,
    attacked: u64,
    detected: u64,
    skipped: u64,
    per_attack: std::collections::BTreeMap<&'static str, (u64, u64)>,
    failed: Vec<u64>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let only = match &args.attack {
        Some(name) => match Attack::parse(name) {
            Some(a) => Some(a),
            None => bail!(
                "unknown attack {name}: one of {}",
                Attack::ALL
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => None,
    };
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first..args.first + args.seeds).collect(),
    };
    let share = if only.is_some() && args.attack_share == 0.5 {
        1.0
    } else {
        args.attack_share
    };
    let started = Instant::now();
    let next = AtomicU64::new(0);
    let tally = Mutex::new(Tally::default());
    let total = seeds.len() as u64;
    std::thread::scope(|s| {
        for _ in 0..args.jobs.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(seed) = seeds.get(i as usize).copied() else {
                    break;
                };
                let attack = if args.seed.is_some() && only.is_some() {
                    only
                } else {
                    attack_for(seed, share, only)
                };
                let outcome = run(seed, attack);
                report(&outcome, args.verbose || args.seed.is_some());
                if let Ok(mut t) = tally.lock() {
                    count(&mut t, &outcome);
                    if t.seeds % 500 == 0 && total > 500 {
                        eprintln!(
                            "  {} of {total} seeds, {:.0} s",
                            t.seeds,
                            started.elapsed().as_secs_f64()
                        );
                    }
                }
            });
        }
    });
    let t = tally.into_inner().unwrap_or_default();
    let secs = started.elapsed().as_secs_f64();
    for (name, (d, n)) in &t.per_attack {
        eprintln!("  {name:<17} detected {d} of {n}");
    }
    if t.skipped > 0 {
        eprintln!(
            "  attacks that found no moment to mount (not counted): {}",
            t.skipped
        );
    }
    eprintln!(
        "  {:.1} s, {:.1} seeds/s",
        secs,
        t.seeds as f64 / secs.max(1e-9)
    );
    if !t.failed.is_empty() {
        let mut f = t.failed.clone();
        f.sort();
        eprintln!("  failing seeds (replay with --seed S): {f:?}");
    }
    println!(
        "seeds: {}, honest runs with alerts: {}, attacks detected: {} of {}, missed: {}",
        t.seeds,
        t.honest_with_alerts,
        t.detected,
        t.attacked,
        t.attacked - t.detected
    );
    if t.failed.is_empty() {
        Ok(())
    } else {
        std::process::exit(1)
    }
}

fn count(t: &mut Tally, o: &Outcome) {
    t.seeds += 1;
    if !o.honest_alerts.is_empty() {
        t.honest_with_alerts += 1;
    }
    if o.skipped.is_some() {
        t.skipped += 1;
    }
    if let (Some(a), Some(d)) = (o.attack, &o.detected) {
        t.attacked += 1;
        let e = t.per_attack.entry(a.name()).or_default();
        e.1 += 1;
        if d.is_ok() {
            t.detected += 1;
            e.0 += 1;
        }
    }
    if !o.passed() {
        t.failed.push(o.seed);
    }
}

fn report(o: &Outcome, verbose: bool) {
    let name = o.attack.map_or("honest", |a| a.name());
    if o.passed() {
        if verbose {
            eprintln!(
                "seed {} ({name}): ok, {} envelopes{}",
                o.seed,
                o.messages,
                o.skipped
                    .as_ref()
                    .map_or(String::new(), |s| format!(" (attack not mounted: {s})"))
            );
        }
        return;
    }
    eprintln!("seed {} ({name}) FAILED:", o.seed);
    for a in &o.honest_alerts {
        eprintln!("    false alarm: {a}");
    }
    if let Some(Err(why)) = &o.detected {
        eprintln!("    missed: {why}");
    }
    for line in o.trace.iter().take(if verbose { 400 } else { 30 }) {
        eprintln!("    {line}");
    }
}
