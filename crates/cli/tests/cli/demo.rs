//! `backchannel demo` explains itself: every term in one line at its first
//! use, and the command behind every act.

use std::collections::BTreeSet;

use crate::bin;

/// The terms the demo uses, with the words that use them (a word counts
/// where it starts a word, in any case). Each must be explained once.
const TERMS: &[(&str, &[&str])] = &[
    ("epoch", &["epoch"]),
    ("stub", &["stub"]),
    ("digest", &["digest"]),
    ("receipt", &["receipt"]),
    ("safety number", &["safety number"]),
    ("head vector", &["head vector"]),
    ("red line", &["red line"]),
    ("what-if", &["what if", "what-if", "whatif"]),
    ("escrow", &["escrow"]),
    ("sealed offer", &["sealed offer"]),
    ("mediator_reads", &["mediator_reads", "mediator-reads"]),
    ("heartbeat", &["heartbeat"]),
    ("chain", &["chain"]),
    ("alert", &["alert"]),
    ("gap", &["gap"]),
    ("ack_overdue", &["ack_overdue"]),
    ("assurance", &["assurance"]),
    ("non-paper", &["non-paper"]),
    ("assault", &["assault"]),
    ("board", &["board"]),
    ("olm", &["olm"]),
    ("ed25519", &["ed25519"]),
];

fn uses(line: &str, words: &[&str]) -> bool {
    let lower = line.to_lowercase();
    words.iter().any(|w| {
        lower.match_indices(w).any(|(at, _)| {
            !lower[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_alphanumeric() || c == '_')
        })
    })
}

/// The term a line explains, if it is an explanation: `(term: meaning)`.
fn explains(line: &str) -> Option<&str> {
    let t = line.trim();
    let inner = t.strip_prefix('(')?.strip_suffix(')')?;
    let (term, meaning) = inner.split_once(": ")?;
    (!meaning.is_empty() && term.len() < 20).then_some(term)
}

#[test]
fn the_demo_explains_each_term_once_at_first_use_and_shows_the_command_of_each_act() {
    let out = std::process::Command::new(bin())
        .arg("demo")
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();

    // Every explanation is of a known term, and no term is explained twice.
    let mut seen = BTreeSet::new();
    for l in &lines {
        if let Some(term) = explains(l) {
            assert!(
                TERMS.iter().any(|t| t.0 == term),
                "explains {term:?}, which the test does not know: add it to TERMS"
            );
            assert!(seen.insert(term), "{term:?} is explained twice");
        }
    }
    for (term, words) in TERMS {
        let first = lines
            .iter()
            .position(|l| uses(l, words))
            .unwrap_or_else(|| panic!("the demo never uses {term:?}"));
        let at = lines
            .iter()
            .position(|l| explains(l) == Some(term))
            .unwrap_or_else(|| panic!("{term:?} is never explained:\n{stdout}"));
        assert!(
            first <= at && lines[first + 1..at].iter().all(|l| explains(l).is_some()),
            "{term:?} is used first at line {} ({:?}) but explained at line {} ({:?})",
            first + 1,
            lines[first],
            at + 1,
            lines[at]
        );
    }

    // Each numbered act shows at least one command, and every `backchannel`
    // command shown names a real subcommand.
    let mut acts: Vec<(String, usize)> = Vec::new();
    let mut commands = BTreeSet::new();
    for l in &lines {
        let t = l.trim();
        let numbered = t
            .split_once(". ")
            .is_some_and(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if numbered && !l.starts_with(' ') {
            acts.push((t.to_string(), 0));
        } else if let Some(cmd) = t.strip_prefix("$ ") {
            let act = acts
                .last_mut()
                .unwrap_or_else(|| panic!("a command before the first act: {t}"));
            act.1 += 1;
            if let Some(args) = cmd.strip_prefix("backchannel ") {
                let words: Vec<&str> = args.split_whitespace().collect();
                let words = match words.as_slice() {
                    ["--store", _, rest @ ..] => rest,
                    rest => rest,
                };
                let n = match words[0] {
                    "channel" | "trust" | "exchange" | "relay" | "transcript" | "events" => 2,
                    _ => 1,
                };
                commands.insert(words[..n].join(" "));
            }
        }
    }
    assert!(acts.len() >= 15, "{} acts", acts.len());
    for (act, n) in &acts {
        assert!(*n > 0, "no command shown for {act:?}");
    }
    for c in &commands {
        let help = std::process::Command::new(bin())
            .args(c.split(' '))
            .arg("--help")
            .output()
            .unwrap();
        assert!(
            help.status.success(),
            "the demo shows `backchannel {c}`, which does not exist"
        );
    }
    assert!(commands.len() >= 15, "{commands:?}");
}
