//! `backchannel --help` lists the commands by who runs them. clap lists
//! subcommands under one heading only, so the top-level help template
//! carries the groups, built here from the command definitions (each
//! command's own one-line description); a unit test keeps every command in
//! a group.

/// Who runs which command: `(heading, command paths)`.
const ROLES: &[(&str, &[&str])] = &[
    (
        "Everyone",
        &[
            "init",
            "sync",
            "send",
            "inbox",
            "log",
            "outbox",
            "watch",
            "ui",
            "verify",
            "fingerprint",
            "trust",
            "channel",
            "actors",
            "transcript",
            "passphrase",
            "backup",
            "restore",
            "demo",
            "completions",
            "man",
        ],
    ),
    (
        "Mediator",
        &["channel create", "channel amend", "convey", "find"],
    ),
    (
        "Commitments (parties and the mediator)",
        &[
            "assure",
            "reciprocate",
            "redline",
            "revoke",
            "suspend",
            "report",
            "confirm-lapse",
            "allege",
            "reply",
            "ask",
            "acknowledge",
            "relate",
            "dispute",
            "guarantee",
            "proviso",
            "show",
            "status",
            "whatif",
            "exchange",
            "events",
        ],
    ),
    ("Relay operator", &["relay", "conformance"]),
];

/// The command at `path` (`channel create`) under `root`.
fn find<'a>(root: &'a clap::Command, path: &str) -> Option<&'a clap::Command> {
    path.split(' ')
        .try_fold(root, |c, name| c.find_subcommand(name))
}

/// The commands grouped by role, as the top-level help shows them.
fn grouped(root: &clap::Command) -> String {
    let mut out = String::new();
    for (heading, paths) in ROLES {
        out.push_str(&format!("{heading}:\n"));
        for path in *paths {
            let about = find(root, path)
                .and_then(|c| c.get_about())
                .map(|a| a.to_string())
                .unwrap_or_default();
            let about = about.split_whitespace().collect::<Vec<_>>().join(" ");
            let about = about.trim_end_matches('.');
            out.push_str(&format!("  {path:<16} {about}\n"));
        }
        out.push('\n');
    }
    out
}

/// `root` with the grouped command list in its help.
pub fn with_roles(root: clap::Command) -> clap::Command {
    let groups = grouped(&root);
    root.help_template(format!(
        "{{before-help}}{{about-with-newline}}\n{{usage-heading}} {{usage}}\n\n{groups}Options:\n{{options}}{{after-help}}"
    ))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    #[test]
    fn every_command_has_a_role_and_every_role_names_a_command() {
        let root = crate::Cli::command();
        let named: Vec<&str> = super::ROLES
            .iter()
            .flat_map(|(_, paths)| paths.iter().copied())
            .collect();
        for c in root.get_subcommands() {
            assert!(
                named.contains(&c.get_name()),
                "{} is in no group of crate::help::ROLES",
                c.get_name()
            );
        }
        for path in named {
            assert!(super::find(&root, path).is_some(), "no command {path}");
        }
    }
}
