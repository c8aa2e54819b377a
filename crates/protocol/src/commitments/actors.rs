//! One actor namespace per channel: a name is the member with that handle,
//! or an outside actor the channel's commitments already name; a new
//! outside actor is introduced explicitly (`outside:NAME`), and never with
//! a member's name. Typos are refused with what was probably meant, since
//! a name that matches nothing makes a what-if silently empty.
//!
//! ```
//! use backchannel_protocol::commitments::actors::Namespace;
//! use backchannel_protocol::commitments::Actor;
//!
//! let ns = Namespace::new(["blue", "red"], ["militia"]);
//! assert_eq!(ns.resolve("blue").unwrap(), Actor::Member("blue".into()));
//! assert_eq!(ns.resolve("militia").unwrap(), Actor::Outside("militia".into()));
//! assert!(ns.resolve("outside:blue").is_err(), "blue is a member");
//! let typo = ns.resolve("militai").unwrap_err().to_string();
//! assert!(typo.contains("did you mean militia?"), "{typo}");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::plover::EventType;
use super::structured::{Action, Actor, Structured};
use crate::ids::ChannelId;

/// An actor name the channel does not know, or one used the wrong way.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorError {
    /// A plain name that is neither a member nor a known outside actor.
    #[error("unknown actor {name:?}{}: {}; to name a new actor outside the channel, write outside:{name}", suggest(.near), listing(.members, .outside))]
    Unknown {
        /// The name.
        name: String,
        /// The closest known names.
        near: Vec<String>,
        /// The members.
        members: Vec<String>,
        /// The outside actors named so far.
        outside: Vec<String>,
    },
    /// `outside:NAME` where NAME is a member.
    #[error("{0} is a member of this channel: write {0}, not outside:{0} (members and outside actors share one namespace)")]
    MemberAsOutside(String),
    /// An empty name.
    #[error("an actor needs a name")]
    Empty,
    /// A mode not defined for the action's type.
    #[error("{mode:?} is not a mode of {kind}{}: its modes are {}", suggest(.near), if .allowed.is_empty() { "none".to_string() } else { .allowed.join(", ") })]
    Mode {
        /// The type.
        kind: EventType,
        /// The mode given.
        mode: String,
        /// The closest modes.
        near: Vec<String>,
        /// Every mode of the type.
        allowed: Vec<String>,
    },
}

/// " (did you mean …?)", or nothing.
pub(crate) fn suggest(near: &[String]) -> String {
    match near {
        [] => String::new(),
        [one] => format!(" (did you mean {one}?)"),
        many => format!(" (did you mean one of {}?)", many.join(", ")),
    }
}

fn listing(members: &[String], outside: &[String]) -> String {
    let or_none = |v: &[String]| {
        if v.is_empty() {
            "none".to_string()
        } else {
            v.join(", ")
        }
    };
    format!(
        "the members are {}, the outside actors named so far {}",
        or_none(members),
        or_none(outside)
    )
}

/// Edit distance (Levenshtein), for did-you-mean.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The known names closest to `name` (within a third of its length, at
/// least 2 edits), closest first.
pub fn near<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let limit = (name.chars().count() / 3).max(2);
    let mut scored: Vec<(usize, &str)> = known
        .into_iter()
        .map(|k| (distance(&name.to_lowercase(), &k.to_lowercase()), k))
        .filter(|(d, _)| *d <= limit)
        .collect();
    scored.sort();
    let best = scored.first().map(|(d, _)| *d);
    scored
        .into_iter()
        .filter(|(d, _)| Some(*d) == best)
        .map(|(_, k)| k.to_string())
        .collect()
}

/// Refuses modes not defined for `kind`, with the closest one.
pub fn check_modes(kind: EventType, modes: &[String]) -> Result<(), ActorError> {
    for m in modes {
        if !kind.modes().contains(&m.as_str()) {
            return Err(ActorError::Mode {
                kind,
                mode: m.clone(),
                near: near(m, kind.modes().iter().copied()),
                allowed: kind.modes().iter().map(|s| s.to_string()).collect(),
            });
        }
    }
    Ok(())
}

/// The actors of a channel (or, for `--all-channels`, of several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    members: BTreeSet<String>,
    /// Outside actor -> how many commitments name it.
    outside: BTreeMap<String, usize>,
}

impl Namespace {
    /// From member handles and outside actor names.
    pub fn new<'a>(
        members: impl IntoIterator<Item = &'a str>,
        outside: impl IntoIterator<Item = &'a str>,
    ) -> Namespace {
        let members: BTreeSet<String> = members.into_iter().map(str::to_string).collect();
        let mut ns = Namespace {
            outside: BTreeMap::new(),
            members,
        };
        for o in outside {
            ns.name(&Actor::Outside(o.to_string()));
        }
        ns
    }

    /// Learns every outside actor `body` names (an outside actor named
    /// like a member is that member: one namespace).
    pub fn learn(&mut self, body: &Structured) {
        for a in named(body) {
            self.name(a);
        }
    }

    fn name(&mut self, a: &Actor) {
        if let Actor::Outside(n) = a {
            if !self.members.contains(n) {
                *self.outside.entry(n.clone()).or_default() += 1;
            }
        }
    }

    /// Both namespaces at once (`--all-channels`).
    pub fn union(mut self, other: &Namespace) -> Namespace {
        self.members.extend(other.members.iter().cloned());
        for (n, c) in &other.outside {
            *self.outside.entry(n.clone()).or_default() += c;
        }
        let members = self.members.clone();
        self.outside.retain(|n, _| !members.contains(n));
        self
    }

    /// The members' handles.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }

    /// The outside actors named so far, with how often.
    pub fn outside(&self) -> impl Iterator<Item = (&str, usize)> {
        self.outside.iter().map(|(n, c)| (n.as_str(), *c))
    }

    /// Is `name` a member here?
    pub fn is_member(&self, name: &str) -> bool {
        self.members.contains(name)
    }

    /// The actor a name given by a person stands for: a member, a known
    /// outside actor, or (`outside:NAME`) a new outside actor.
    pub fn resolve(&self, given: &str) -> Result<Actor, ActorError> {
        if let Some(n) = given.strip_prefix("outside:") {
            return self.outside_named(n);
        }
        self.plain(given)
    }

    /// A plain name: a member, else a known outside actor.
    pub fn plain(&self, name: &str) -> Result<Actor, ActorError> {
        if name.trim().is_empty() {
            return Err(ActorError::Empty);
        }
        if self.members.contains(name) {
            return Ok(Actor::Member(name.to_string()));
        }
        if self.outside.contains_key(name) {
            return Ok(Actor::Outside(name.to_string()));
        }
        let known = self
            .members
            .iter()
            .chain(self.outside.keys())
            .map(String::as_str);
        Err(ActorError::Unknown {
            name: name.to_string(),
            near: near(name, known),
            members: self.members.iter().cloned().collect(),
            outside: self.outside.keys().cloned().collect(),
        })
    }

    /// An explicit outside actor: refused if a member has the name.
    pub fn outside_named(&self, name: &str) -> Result<Actor, ActorError> {
        if name.trim().is_empty() {
            return Err(ActorError::Empty);
        }
        if self.members.contains(name) {
            return Err(ActorError::MemberAsOutside(name.to_string()));
        }
        Ok(Actor::Outside(name.to_string()))
    }

    /// Checks an actor already typed (from JSON): a plain name must be
    /// known here, an outside one must not be a member's.
    pub fn check(&self, a: &Actor) -> Result<(), ActorError> {
        match a {
            Actor::Member(n) => self.plain(n).map(drop),
            Actor::Outside(n) => self.outside_named(n).map(drop),
        }
    }
}

/// Every actor a typed payload names.
pub fn named(body: &Structured) -> Vec<&Actor> {
    fn of_action(x: &Action) -> Vec<&Actor> {
        x.target.iter().collect()
    }
    match body {
        Structured::Assurance(a) => {
            let mut v: Vec<&Actor> = a.beneficiaries.iter().collect();
            v.extend(of_action(&a.commitment.action));
            v.extend(a.unless.iter().map(|c| &c.attacked_first_by));
            v
        }
        Structured::RedLine(r) => {
            let mut v: Vec<&Actor> = r.trigger_actor.iter().collect();
            v.extend(of_action(&r.trigger));
            v.extend(of_action(&r.response));
            v
        }
        Structured::Event { actor, action, .. } => {
            let mut v = vec![actor];
            v.extend(of_action(action));
            v
        }
        Structured::Relate {
            subject, object, ..
        } => vec![subject, object],
        _ => Vec::new(),
    }
}

/// Outside actors of one channel declared, in the local store only, to be
/// members of another channel: never sent, since the members of one
/// channel must not learn which other channels a principal is in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aliases(pub BTreeSet<(ChannelId, String)>);

impl Aliases {
    /// The actor `a` of `channel` stands for across channels.
    pub fn canonical(&self, channel: ChannelId, a: &Actor) -> Actor {
        match a {
            Actor::Outside(n) if self.0.contains(&(channel, n.clone())) => Actor::Member(n.clone()),
            other => other.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("militia", "militia"), 0);
        assert_eq!(distance("militai", "militia"), 2);
        assert_eq!(distance("gren", "green"), 1);
        assert_eq!(distance("", "abc"), 3);
    }

    #[test]
    fn a_typo_says_what_was_meant_and_how_to_name_a_new_actor() {
        let ns = Namespace::new(["blue", "red"], ["green"]);
        let e = ns.resolve("gren").unwrap_err().to_string();
        assert!(e.contains("did you mean green?"), "{e}");
        assert!(e.contains("write outside:gren"), "{e}");
        assert!(e.contains("the members are blue, red"), "{e}");
        let far = ns.resolve("hezbollah").unwrap_err().to_string();
        assert!(!far.contains("did you mean"), "{far}");
        assert_eq!(
            ns.resolve("outside:hezbollah").unwrap(),
            Actor::Outside("hezbollah".into())
        );
    }

    #[test]
    fn a_member_is_never_an_outside_actor() {
        let mut ns = Namespace::new(["blue", "red"], []);
        assert_eq!(
            ns.resolve("outside:blue"),
            Err(ActorError::MemberAsOutside("blue".into()))
        );
        ns.learn(&Structured::Relate {
            subject: Actor::Outside("blue".into()),
            relation: super::super::structured::RelationKind::AllyOf,
            object: Actor::Member("red".into()),
        });
        assert_eq!(
            ns.outside().count(),
            0,
            "an old transcript's outside:blue is blue"
        );
    }

    #[test]
    fn modes_are_checked_with_the_nearest() {
        let e = check_modes(EventType::Assault, &["aeriel".into()]).unwrap_err();
        assert!(e.to_string().contains("did you mean aerial?"), "{e}");
        assert!(check_modes(EventType::Assault, &["aerial".into()]).is_ok());
        let none = check_modes(EventType::Agree, &["x".into()]).unwrap_err();
        assert!(none.to_string().contains("its modes are none"), "{none}");
    }

    #[test]
    fn aliases_join_an_outside_actor_to_a_member_of_another_channel() {
        let c = ChannelId([7; 16]);
        let mut a = Aliases::default();
        a.0.insert((c, "usa".into()));
        assert_eq!(
            a.canonical(c, &Actor::Outside("usa".into())),
            Actor::Member("usa".into())
        );
        let other = ChannelId([8; 16]);
        assert_eq!(
            a.canonical(other, &Actor::Outside("usa".into())),
            Actor::Outside("usa".into())
        );
    }
}
