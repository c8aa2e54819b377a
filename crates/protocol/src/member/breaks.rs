//! Rules of docs/protocol.md this member can be told to break, one at a
//! time, so that `backchannel conformance` can be shown to catch each one.
//! Never set in honest use: the client sets one only in debug builds, from
//! `BACKCHANNEL_TEST_BREAK`.

use std::fmt;
use std::str::FromStr;

/// One rule of the conformance script (docs/protocol.md §12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Acceptances are written in version 2 and announce what the sender reads.
    Versions,
    /// Every head vector's own entry is where the sender's chain stands.
    OwnHead,
    /// Content starts in epoch 1.
    Epoch1Content,
    /// The mediator gets stubs of content unless the policy lets it read.
    Stubs,
    /// A member receipts what it receives.
    Receipts,
    /// Structured bodies are written in their canonical JSON.
    Canonical,
    /// An authentic body the receiver cannot read still counts in its chain.
    UnreadCounts,
    /// A payload whose header names another sender than the Olm peer is refused.
    SenderIsPeer,
    /// A joiner's first head vector lists the proposal's members as held.
    JoinerHeads,
}

impl Rule {
    /// Every rule, in the order the script checks them.
    pub const ALL: [Rule; 9] = [
        Rule::Versions,
        Rule::OwnHead,
        Rule::Epoch1Content,
        Rule::Stubs,
        Rule::Receipts,
        Rule::Canonical,
        Rule::UnreadCounts,
        Rule::SenderIsPeer,
        Rule::JoinerHeads,
    ];

    /// Its name in the script and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::Versions => "versions",
            Rule::OwnHead => "own-head",
            Rule::Epoch1Content => "epoch-1-content",
            Rule::Stubs => "stubs",
            Rule::Receipts => "receipts",
            Rule::Canonical => "canonical",
            Rule::UnreadCounts => "unread-counts",
            Rule::SenderIsPeer => "sender-is-peer",
            Rule::JoinerHeads => "joiner-heads",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Rule::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| format!("no rule {s:?}"))
    }
}

impl super::Member {
    /// Makes this member break `rule` from now on. For conformance tests of
    /// the harness only: it exists in debug builds only.
    #[cfg(debug_assertions)]
    pub fn dangerous_break(&mut self, rule: Rule) {
        self.breaks.insert(rule);
    }

    /// Never true in a release build.
    pub(crate) fn breaks(&self, rule: Rule) -> bool {
        cfg!(debug_assertions) && self.breaks.contains(&rule)
    }
}
