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
//! assert!(typo.contains("in this channel: did you mean militia?"), "{typo}");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use super::plover::EventType;
use super::structured::{Action, Actor, Structured};
use crate::ids::{ChannelId, Handle, MessageId, Timestamp};

/// An actor name the channel does not know, or one used the wrong way.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActorError {
    /// A plain name that is neither a member nor a known outside actor.
    #[error("unknown actor {name:?} {}{}; to name a new actor outside the channel, write outside:{name}", if *.across { "in any of your channels" } else { "in this channel" }, listing(.near, .members, .outside))]
    Unknown {
        /// The name.
        name: String,
        /// Looked up across every channel (`--all-channels`), not one.
        across: bool,
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

/// ": did you mean …? (members: …; outside actors: …)": what was probably
/// meant first, then every name that would have been understood.
fn listing(near: &[String], members: &[String], outside: &[String]) -> String {
    let or_none = |v: &[String], none: &str| {
        if v.is_empty() {
            none.to_string()
        } else {
            v.join(", ")
        }
    };
    let meant = match near {
        [] => String::new(),
        [one] => format!(": did you mean {one}?"),
        many => format!(": did you mean one of {}?", many.join(", ")),
    };
    format!(
        "{meant} (members: {}; outside actors: {})",
        or_none(members, "none"),
        or_none(outside, "none named yet")
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

/// Where an outside actor was first named: the typed message, its sender
/// and when it was sent. `actors list` shows it, so that a reader can tell
/// who introduced a name (and so what it was meant to stand for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirstNamed {
    /// The message.
    pub message: MessageId,
    /// Who sent it.
    pub sender: Handle,
    /// The sender's clock when it sent.
    pub sent_at: Timestamp,
}

/// One outside actor of a namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Outside {
    /// How many typed messages name it.
    named: usize,
    /// The first of them, where known.
    first: Option<FirstNamed>,
}

/// The actors of a channel (or, for `--all-channels`, of several).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Namespace {
    members: BTreeSet<String>,
    outside: BTreeMap<String, Outside>,
    /// The union of several channels' namespaces: errors say "in any of
    /// your channels", not "in this channel".
    across: bool,
}

impl Namespace {
    /// From member handles and outside actor names.
    pub fn new<'a>(
        members: impl IntoIterator<Item = &'a str>,
        outside: impl IntoIterator<Item = &'a str>,
    ) -> Namespace {
        let members: BTreeSet<String> = members.into_iter().map(str::to_string).collect();
        let mut ns = Namespace {
            members,
            ..Namespace::default()
        };
        for o in outside {
            ns.name(&Actor::Outside(o.to_string()), None);
        }
        ns
    }

    /// Learns every outside actor `body` names (an outside actor named
    /// like a member is that member: one namespace).
    pub fn learn(&mut self, body: &Structured) {
        self.learn_body(body, None);
    }

    /// As [`Namespace::learn`], remembering `origin` as where each actor
    /// not named before was first named. Feed messages in transcript order.
    pub fn learn_from(&mut self, body: &Structured, origin: &FirstNamed) {
        self.learn_body(body, Some(origin));
    }

    /// Counts each actor once per message, however many of its fields
    /// name it: "named 2 times" means two messages.
    fn learn_body(&mut self, body: &Structured, origin: Option<&FirstNamed>) {
        let once: BTreeSet<&Actor> = named(body).into_iter().collect();
        for a in once {
            self.name(a, origin);
        }
    }

    fn name(&mut self, a: &Actor, origin: Option<&FirstNamed>) {
        if let Actor::Outside(n) = a {
            if !self.members.contains(n) {
                let o = self.outside.entry(n.clone()).or_default();
                o.named += 1;
                if o.first.is_none() {
                    o.first = origin.cloned();
                }
            }
        }
    }

    /// Both namespaces at once (`--all-channels`): a name that is a member
    /// anywhere is that member.
    pub fn union(mut self, other: &Namespace) -> Namespace {
        self.members.extend(other.members.iter().cloned());
        for (n, o) in &other.outside {
            let mine = self.outside.entry(n.clone()).or_default();
            mine.named += o.named;
            // The earlier naming, by the senders' clocks.
            let earlier = match (&mine.first, &o.first) {
                (None, theirs) => theirs.clone(),
                (Some(m), Some(t)) if t.sent_at < m.sent_at => Some(t.clone()),
                (kept, _) => kept.clone(),
            };
            mine.first = earlier;
        }
        // Across channels an outside actor of one channel may share its
        // name with a member of another: both stay, `outside:NAME` names
        // the outside one.
        self.across = true;
        self
    }

    /// The members' handles.
    pub fn members(&self) -> impl Iterator<Item = &str> {
        self.members.iter().map(String::as_str)
    }

    /// The outside actors named so far, with how many messages name each.
    pub fn outside(&self) -> impl Iterator<Item = (&str, usize)> {
        self.outside.iter().map(|(n, o)| (n.as_str(), o.named))
    }

    /// Where the outside actor `name` was first named, if learnt with
    /// [`Namespace::learn_from`].
    pub fn first_named(&self, name: &str) -> Option<&FirstNamed> {
        self.outside.get(name).and_then(|o| o.first.as_ref())
    }

    /// Is `name` an outside actor named here?
    pub fn is_outside(&self, name: &str) -> bool {
        self.outside.contains_key(name)
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
        let known: BTreeSet<&str> = self
            .members
            .iter()
            .chain(self.outside.keys())
            .map(String::as_str)
            .collect();
        Err(ActorError::Unknown {
            name: name.to_string(),
            across: self.across,
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
        if self.members.contains(name) && !(self.across && self.outside.contains_key(name)) {
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
/// channel must not learn which other channels a principal is in. An
/// alias joins names that are equal (`outside:usa` of one channel is the
/// member `usa`): handles are one principal on a relay, so a member's
/// handle is the one name it has across channels.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aliases(pub BTreeSet<(ChannelId, String)>);

impl Aliases {
    /// The actor `a` of `channel` stands for across channels.
    pub fn canonical(&self, channel: ChannelId, a: &Actor) -> Actor {
        match a {
            Actor::Outside(n) if self.contains(channel, n) => Actor::Member(n.clone()),
            other => other.clone(),
        }
    }

    /// Is the outside actor `name` of `channel` declared a member?
    pub fn contains(&self, channel: ChannelId, name: &str) -> bool {
        self.0.contains(&(channel, name.to_string()))
    }

    /// The names declared members in `channel`.
    pub fn of(&self, channel: ChannelId) -> impl Iterator<Item = &str> {
        self.0
            .iter()
            .filter(move |(c, _)| *c == channel)
            .map(|(_, n)| n.as_str())
    }

    /// Declares the outside actor `name` of `channel` the member `name` of
    /// another channel in `channels` (every channel the store knows).
    /// Returns the channels where `name` is a member; refused where `name`
    /// is a member of `channel` itself, or of no other channel, since then
    /// the alias would join nothing.
    pub fn declare(
        &mut self,
        channels: &BTreeMap<ChannelId, Namespace>,
        channel: ChannelId,
        name: &str,
    ) -> Result<Vec<ChannelId>, AliasError> {
        if channels.get(&channel).is_some_and(|ns| ns.is_member(name)) {
            return Err(AliasError::MemberHere(name.to_string()));
        }
        let elsewhere = member_in(channels, channel, name);
        if elsewhere.is_empty() {
            return Err(AliasError::NoMemberElsewhere(name.to_string()));
        }
        self.0.insert((channel, name.to_string()));
        Ok(elsewhere)
    }

    /// Forgets a declaration; false if there was none.
    pub fn forget(&mut self, channel: ChannelId, name: &str) -> bool {
        self.0.remove(&(channel, name.to_string()))
    }
}

/// Why an alias cannot be declared.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AliasError {
    /// The name is a member of the channel itself.
    #[error("{0} is a member of this channel already: an alias joins an outside actor of one channel to a member of another")]
    MemberHere(String),
    /// No other channel has a member of that name.
    #[error("no other channel of yours has a member {0}: an alias joins an outside actor of one channel to a member of another")]
    NoMemberElsewhere(String),
}

/// An outside actor of one channel named like a member of other channels,
/// with no alias: a cross-channel what-if treats them as two actors, so a
/// cascade may stop at the channel boundary, and the reader should know.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Collision {
    /// The channel naming the outside actor.
    pub channel: ChannelId,
    /// The name.
    pub name: String,
    /// The channels where a member has that handle.
    pub member_in: Vec<ChannelId>,
}

impl std::fmt::Display for Collision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short = |c: &ChannelId| c.to_hex()[..8].to_string();
        let others: Vec<String> = self.member_in.iter().map(short).collect();
        write!(
            f,
            "outside:{n} in channel {} has the name of member {n} of channel {}: treated as different actors",
            short(&self.channel),
            others.join(", "),
            n = self.name
        )
    }
}

/// The channels other than `channel` where `name` is a member.
pub fn member_in(
    channels: &BTreeMap<ChannelId, Namespace>,
    channel: ChannelId,
    name: &str,
) -> Vec<ChannelId> {
    channels
        .iter()
        .filter(|(c, ns)| **c != channel && ns.is_member(name))
        .map(|(c, _)| *c)
        .collect()
}

/// Every outside actor of one channel that has the name of a member of
/// another, with no alias in `aliases`, by channel then name.
pub fn collisions(channels: &BTreeMap<ChannelId, Namespace>, aliases: &Aliases) -> Vec<Collision> {
    let mut out = Vec::new();
    for (c, ns) in channels {
        for (name, _) in ns.outside() {
            if aliases.contains(*c, name) {
                continue;
            }
            let member_in = member_in(channels, *c, name);
            if !member_in.is_empty() {
                out.push(Collision {
                    channel: *c,
                    name: name.to_string(),
                    member_in,
                });
            }
        }
    }
    out
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
        assert_eq!(
            e,
            "unknown actor \"gren\" in this channel: did you mean green? \
             (members: blue, red; outside actors: green); \
             to name a new actor outside the channel, write outside:gren"
        );
        let far = ns.resolve("hezbollah").unwrap_err().to_string();
        assert!(!far.contains("did you mean"), "{far}");
        assert!(
            far.starts_with("unknown actor \"hezbollah\" in this channel (members:"),
            "{far}"
        );
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

    fn origin(byte: u8, sender: &str, sent_ms: i64) -> FirstNamed {
        FirstNamed {
            message: MessageId([byte; 16]),
            sender: Handle::new(sender).unwrap(),
            sent_at: Timestamp(sent_ms),
        }
    }

    fn relate(subject: Actor, object: Actor) -> Structured {
        Structured::Relate {
            subject,
            relation: super::super::structured::RelationKind::ProxyOf,
            object,
        }
    }

    #[test]
    fn an_outside_actor_keeps_where_it_was_first_named() {
        let mut ns = Namespace::new(["blue", "red"], []);
        let militia = || Actor::Outside("militia".into());
        let blue = || Actor::Member("blue".into());
        ns.learn_from(&relate(militia(), blue()), &origin(1, "red", 10));
        ns.learn_from(&relate(militia(), blue()), &origin(2, "blue", 20));
        assert_eq!(ns.outside().collect::<Vec<_>>(), vec![("militia", 2)]);
        assert_eq!(ns.first_named("militia"), Some(&origin(1, "red", 10)));
        assert_eq!(
            ns.first_named("blue"),
            None,
            "a member is not an outside actor"
        );

        // Across channels, the earlier naming wins, whichever side it is on.
        let mut other = Namespace::new(["blue"], []);
        other.learn_from(&relate(militia(), blue()), &origin(3, "blue", 5));
        let all = ns.clone().union(&other);
        assert_eq!(all.first_named("militia"), Some(&origin(3, "blue", 5)));
        assert_eq!(all.outside().collect::<Vec<_>>(), vec![("militia", 3)]);
    }

    #[test]
    fn an_actor_is_counted_once_per_message() {
        let mut ns = Namespace::new(["blue"], []);
        let militia = || Actor::Outside("militia".into());
        ns.learn(&relate(militia(), militia()));
        assert_eq!(ns.outside().collect::<Vec<_>>(), vec![("militia", 1)]);
    }

    #[test]
    fn across_channels_a_member_anywhere_is_that_member() {
        let mut side = Namespace::new(["blue", "mediator"], []);
        side.learn(&relate(
            Actor::Outside("red".into()),
            Actor::Member("blue".into()),
        ));
        assert!(side.is_outside("red"));
        let talks = Namespace::new(["blue", "red"], []);
        let all = Namespace::default().union(&side).union(&talks);
        assert_eq!(all.resolve("red").unwrap(), Actor::Member("red".into()));
        assert!(
            all.is_outside("red"),
            "side's outside red stays reachable as outside:red"
        );
        let e = all.resolve("rde").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown actor \"rde\" in any of your channels: did you mean red?"),
            "{e}"
        );
    }

    #[test]
    fn collisions_name_an_outside_actor_that_is_a_member_elsewhere() {
        let (talks, side) = (ChannelId([1; 16]), ChannelId([2; 16]));
        let mut s = Namespace::new(["blue"], []);
        s.learn(&relate(
            Actor::Outside("red".into()),
            Actor::Outside("militia".into()),
        ));
        let channels = BTreeMap::from([(talks, Namespace::new(["blue", "red"], [])), (side, s)]);
        let mut aliases = Aliases::default();
        let found = collisions(&channels, &aliases);
        assert_eq!(
            found,
            vec![Collision {
                channel: side,
                name: "red".into(),
                member_in: vec![talks],
            }]
        );
        assert_eq!(
            found[0].to_string(),
            "outside:red in channel 02020202 has the name of member red of channel 01010101: \
             treated as different actors"
        );
        assert_eq!(aliases.declare(&channels, side, "red"), Ok(vec![talks]));
        assert!(collisions(&channels, &aliases).is_empty());
        assert_eq!(aliases.of(side).collect::<Vec<_>>(), vec!["red"]);
        assert!(aliases.forget(side, "red"));
        assert!(!aliases.forget(side, "red"), "forgotten already");
        assert_eq!(collisions(&channels, &aliases).len(), 1);
    }

    #[test]
    fn an_alias_must_join_something() {
        let (talks, side) = (ChannelId([1; 16]), ChannelId([2; 16]));
        let channels = BTreeMap::from([
            (talks, Namespace::new(["blue", "red"], [])),
            (side, Namespace::new(["blue"], ["militia"])),
        ]);
        let mut aliases = Aliases::default();
        assert_eq!(
            aliases.declare(&channels, side, "blue"),
            Err(AliasError::MemberHere("blue".into()))
        );
        assert_eq!(
            aliases.declare(&channels, side, "militia"),
            Err(AliasError::NoMemberElsewhere("militia".into()))
        );
        assert_eq!(aliases, Aliases::default(), "nothing declared");
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

    #[test]
    fn across_channels_an_outside_actor_may_share_a_members_name() {
        let a = Namespace::new(["blue", "mediator"], ["usa"]);
        let b = Namespace::new(["usa", "mediator"], []);
        let all = a.union(&b);
        assert_eq!(all.resolve("usa").unwrap(), Actor::Member("usa".into()));
        assert_eq!(
            all.resolve("outside:usa").unwrap(),
            Actor::Outside("usa".into()),
            "channel A's outside actor stays reachable"
        );
        assert!(
            all.resolve("outside:blue").is_err(),
            "no channel names an outside blue"
        );
    }
}
