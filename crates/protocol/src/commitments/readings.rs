//! Readings of "unless attacked first by …": the wording may leave open
//! whether the attacker's allies or proxies count, and whether an attack on
//! the issuer's allies or proxies counts as one on the issuer. Every open
//! question doubles the readings; the engine keeps an assurance's state per
//! reading and says, in words, under which readings something happens:
//! "under all readings", or "only if red's proxies count as red".
//!
//! ```
//! use backchannel_protocol::commitments::readings::Readings;
//! use backchannel_protocol::commitments::structured::{Actor, LapseCondition, Scope};
//!
//! let open = LapseCondition {
//!     attacked_first_by: Actor::Member("red".into()),
//!     scope: Scope { attacker_proxies: None, ..Scope::fixed(false) },
//! };
//! let r = Readings::of(&[open]);
//! assert_eq!(r.count(), 2);
//! let blue = Actor::Member("blue".into());
//! assert_eq!(r.words(&[1].into(), &blue), "only if red's proxies count as red");
//! assert_eq!(r.words(&[0, 1].into(), &blue), "under all readings");
//! ```

use std::collections::BTreeSet;

use serde::Serialize;

use super::fold::Declared;
use super::structured::{Action, Actor, Assurance, LapseCondition, RelationKind, Scope};

/// Which reading of one condition's scope an evaluation used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Reading {
    /// The attacker's allies count.
    pub attacker_allies: bool,
    /// The attacker's proxies count.
    pub attacker_proxies: bool,
    /// An attack on the issuer's allies counts.
    pub attacked_allies: bool,
    /// An attack on the issuer's proxies counts.
    pub attacked_proxies: bool,
}

/// One of the four questions a scope answers or leaves open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    /// Do the attacker's allies count?
    AttackerAllies,
    /// Do the attacker's proxies count?
    AttackerProxies,
    /// Does an attack on the issuer's allies count?
    AttackedAllies,
    /// Does an attack on the issuer's proxies count?
    AttackedProxies,
}

impl Dim {
    const ALL: [Dim; 4] = [
        Dim::AttackerAllies,
        Dim::AttackerProxies,
        Dim::AttackedAllies,
        Dim::AttackedProxies,
    ];

    fn of_scope(self, s: &Scope) -> Option<bool> {
        match self {
            Dim::AttackerAllies => s.attacker_allies,
            Dim::AttackerProxies => s.attacker_proxies,
            Dim::AttackedAllies => s.attacked_allies,
            Dim::AttackedProxies => s.attacked_proxies,
        }
    }

    fn set(self, r: &mut Reading, v: bool) {
        match self {
            Dim::AttackerAllies => r.attacker_allies = v,
            Dim::AttackerProxies => r.attacker_proxies = v,
            Dim::AttackedAllies => r.attacked_allies = v,
            Dim::AttackedProxies => r.attacked_proxies = v,
        }
    }

    /// "red's proxies count as red", "attacks on blue's allies do not count".
    fn words(self, value: bool, by: &Actor, issuer: &Actor) -> String {
        let (whose, what) = match self {
            Dim::AttackerAllies => (by, "allies"),
            Dim::AttackerProxies => (by, "proxies"),
            Dim::AttackedAllies => (issuer, "allies"),
            Dim::AttackedProxies => (issuer, "proxies"),
        };
        let attacked = matches!(self, Dim::AttackedAllies | Dim::AttackedProxies);
        match (attacked, value) {
            (false, true) => format!("{whose}'s {what} count as {whose}"),
            (false, false) => format!("{whose}'s {what} do not count as {whose}"),
            (true, true) => format!("attacks on {whose}'s {what} count as attacks on {whose}"),
            (true, false) => format!("attacks on {whose}'s {what} do not count"),
        }
    }
}

impl Scope {
    /// Every question answered `v`.
    pub fn fixed(v: bool) -> Scope {
        Scope {
            attacker_allies: Some(v),
            attacker_proxies: Some(v),
            attacked_allies: Some(v),
            attacked_proxies: Some(v),
        }
    }
}

impl Reading {
    /// Every reading the scope leaves open (one if it is fully specified).
    pub fn all(scope: &Scope) -> Vec<Reading> {
        let r = Readings::of(&[LapseCondition {
            attacked_first_by: Actor::Outside(String::new()),
            scope: *scope,
        }]);
        (0..r.count()).map(|m| r.reading(m)[0]).collect()
    }

    /// How the reading reads, every question answered.
    pub fn describe(&self) -> String {
        let yes = |b: bool| if b { "count" } else { "do not count" };
        format!(
            "attacker's allies {}, attacker's proxies {}, attacks on the issuer's allies {}, on its proxies {}",
            yes(self.attacker_allies),
            yes(self.attacker_proxies),
            yes(self.attacked_allies),
            yes(self.attacked_proxies)
        )
    }
}

/// At most this many open questions are enumerated per assurance (4,096
/// readings); questions beyond are read "do not count", and said so.
pub const MAX_OPEN_QUESTIONS: usize = 12;

/// At most this many questions are named in the words for a set of
/// readings (the search for the shortest words grows as 3^n x 2^n).
const MAX_NAMED_QUESTIONS: usize = 8;

/// At most this many alternatives ("…; or if …") are spelled out.
const MAX_ALTERNATIVES: usize = 4;

/// The readings of one assurance: every answer to the questions its
/// conditions leave open. A reading is a bit mask over those questions.
#[derive(Clone, Debug)]
pub struct Readings {
    conditions: Vec<LapseCondition>,
    /// (condition, question) for each bit of a reading's mask.
    open: Vec<(usize, Dim)>,
    /// Open questions past [`MAX_OPEN_QUESTIONS`], read "do not count".
    pub truncated: usize,
}

impl Readings {
    /// The readings of an assurance with these conditions.
    pub fn of(conditions: &[LapseCondition]) -> Readings {
        let mut open = Vec::new();
        let mut truncated = 0;
        for (i, c) in conditions.iter().enumerate() {
            for d in Dim::ALL {
                if d.of_scope(&c.scope).is_none() {
                    if open.len() < MAX_OPEN_QUESTIONS {
                        open.push((i, d));
                    } else {
                        truncated += 1;
                    }
                }
            }
        }
        Readings {
            conditions: conditions.to_vec(),
            open,
            truncated,
        }
    }

    /// How many readings there are.
    pub fn count(&self) -> u32 {
        1 << self.open.len()
    }

    /// Every reading, as masks.
    pub fn masks(&self) -> impl Iterator<Item = u32> {
        0..self.count()
    }

    /// The reading `mask`: one [`Reading`] per condition.
    pub fn reading(&self, mask: u32) -> Vec<Reading> {
        self.conditions
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut r = Reading {
                    attacker_allies: false,
                    attacker_proxies: false,
                    attacked_allies: false,
                    attacked_proxies: false,
                };
                for d in Dim::ALL {
                    if let Some(v) = d.of_scope(&c.scope) {
                        d.set(&mut r, v);
                    }
                }
                for (bit, (ci, d)) in self.open.iter().enumerate() {
                    if *ci == i {
                        d.set(&mut r, mask & (1 << bit) != 0);
                    }
                }
                r
            })
            .collect()
    }

    /// The readings of `set` in words: "under all readings", or
    /// "only if …" with the fewest conditions that say exactly which.
    /// Only the questions the wording leaves open are named.
    pub fn words(&self, set: &BTreeSet<u32>, issuer: &Actor) -> String {
        if set.len() as u32 >= self.count() {
            return if self.truncated > 0 {
                format!(
                    "under all readings ({} further open questions are read as \"do not count\")",
                    self.truncated
                )
            } else {
                "under all readings".into()
            };
        }
        if set.is_empty() {
            return "under no reading".into();
        }
        // Only the questions whose answer changes the outcome are named.
        let n = self.open.len();
        let relevant: Vec<usize> = (0..n)
            .filter(|b| set.iter().any(|m| !set.contains(&(m ^ (1 << b)))))
            .collect();
        if relevant.len() > MAX_NAMED_QUESTIONS {
            return format!(
                "under {} of its {} readings (too many open questions to name)",
                set.len(),
                self.count()
            );
        }
        let reduced: BTreeSet<u32> = set
            .iter()
            .map(|m| {
                relevant
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| m & (1 << **b) != 0)
                    .fold(0, |acc, (i, _)| acc | (1 << i))
            })
            .collect();
        let terms: Vec<Vec<(usize, bool)>> = cover(relevant.len(), &reduced)
            .into_iter()
            .map(|t| t.into_iter().map(|(i, v)| (relevant[i], v)).collect())
            .collect();
        // Past a few alternatives the words stop helping a reader.
        if terms.len() > MAX_ALTERNATIVES {
            return format!(
                "under {} of its {} readings (too many alternatives to name)",
                set.len(),
                self.count()
            );
        }
        let several = self.conditions.len() > 1;
        let said: Vec<String> = terms
            .iter()
            .map(|term| {
                term.iter()
                    .map(|(bit, v)| {
                        let (ci, d) = self.open[*bit];
                        let by = &self.conditions[ci].attacked_first_by;
                        let w = d.words(*v, by, issuer);
                        if several {
                            format!("{w} (condition \"unless attacked first by {by}\")")
                        } else {
                            w
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" and ")
            })
            .collect();
        let mut words = format!("only if {}", said.join("; or if "));
        if self.truncated > 0 {
            words.push_str(&format!(
                " ({} further open questions are read as \"do not count\")",
                self.truncated
            ));
        }
        words
    }
}

/// A small sum of products covering exactly `set` of the masks over `n`
/// bits: each term a list of (bit, value). Greedy over terms with the
/// fewest literals first, so the words stay short and deterministic.
fn cover(n: usize, set: &BTreeSet<u32>) -> Vec<Vec<(usize, bool)>> {
    // Every term: for each bit, absent (0), true (1) or false (2).
    let total = 3u32.pow(n as u32);
    let mut terms: Vec<Vec<(usize, bool)>> = (0..total)
        .map(|mut t| {
            let mut lits = Vec::new();
            for bit in 0..n {
                match t % 3 {
                    1 => lits.push((bit, true)),
                    2 => lits.push((bit, false)),
                    _ => {}
                }
                t /= 3;
            }
            lits
        })
        .collect();
    terms.sort_by_key(Vec::len);
    let matches =
        |term: &[(usize, bool)], m: u32| term.iter().all(|(b, v)| (m & (1 << b) != 0) == *v);
    let mut left: BTreeSet<u32> = set.clone();
    let mut chosen = Vec::new();
    for term in terms {
        if left.is_empty() {
            break;
        }
        let covered: Vec<u32> = (0..1u32 << n).filter(|m| matches(&term, *m)).collect();
        if covered.iter().all(|m| set.contains(m)) && covered.iter().any(|m| left.contains(m)) {
            for m in covered {
                left.remove(&m);
            }
            chosen.push(term);
        }
    }
    chosen
}

/// How an act meets a condition: the declared relations it went through.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Via {
    /// The relation that made the actor count as the attacker, if not itself.
    pub attacker: Option<Declared>,
    /// The relation that made the target count as the issuer, if not itself.
    pub attacked: Option<Declared>,
}

/// The declared relation by which `x` counts as `y` (`x` an ally or proxy
/// of `y`; alliances read both ways).
pub fn related<'r>(
    relations: &'r [Declared],
    x: &Actor,
    kind: RelationKind,
    y: &Actor,
) -> Option<&'r Declared> {
    relations.iter().find(|r| {
        r.relation == kind
            && ((r.subject == *x && r.object == *y)
                || (kind == RelationKind::AllyOf && r.subject == *y && r.object == *x))
    })
}

/// The answers of `cond`'s wording that exclude an act going through
/// `via` (read with every ally and proxy counting), in words: "red's
/// proxies do not count as red".
pub fn excluded(via: &Via, cond: &LapseCondition, issuer: &Actor) -> Vec<String> {
    let by = &cond.attacked_first_by;
    let dim = |d: &Declared, allies: Dim, proxies: Dim| match d.relation {
        RelationKind::AllyOf => allies,
        RelationKind::ProxyOf => proxies,
    };
    let mut out = Vec::new();
    if let Some(d) = &via.attacker {
        out.push(dim(d, Dim::AttackerAllies, Dim::AttackerProxies));
    }
    if let Some(d) = &via.attacked {
        out.push(dim(d, Dim::AttackedAllies, Dim::AttackedProxies));
    }
    out.into_iter()
        .filter(|d| d.of_scope(&cond.scope) == Some(false))
        .map(|d| d.words(false, by, issuer))
        .collect()
}

/// Does `x` count as `who` under `reading`'s attacker questions? `Some`
/// with the relation used (none when `x` is `who`).
pub fn counts_as_attacker(
    relations: &[Declared],
    x: &Actor,
    who: &Actor,
    reading: &Reading,
) -> Option<Option<Declared>> {
    if x == who {
        return Some(None);
    }
    let ally = reading
        .attacker_allies
        .then(|| related(relations, x, RelationKind::AllyOf, who))
        .flatten();
    let proxy = reading
        .attacker_proxies
        .then(|| related(relations, x, RelationKind::ProxyOf, who))
        .flatten();
    ally.or(proxy).map(|d| Some(d.clone()))
}

/// Does `actor` doing `action` meet `cond` of an assurance by `issuer`,
/// under `reading`, given the declared `relations`? `Some` says through
/// which relations. Whether it came *first* is the caller's question.
pub fn meets(
    issuer: &Actor,
    cond: &LapseCondition,
    actor: &Actor,
    action: &Action,
    reading: &Reading,
    relations: &[Declared],
) -> Option<Via> {
    if !action.kind.is_attack() {
        return None;
    }
    let target = action.target.as_ref()?;
    let attacker = counts_as_attacker(relations, actor, &cond.attacked_first_by, reading)?;
    let attacked = if target == issuer {
        None
    } else {
        let ally = reading
            .attacked_allies
            .then(|| related(relations, target, RelationKind::AllyOf, issuer))
            .flatten();
        let proxy = reading
            .attacked_proxies
            .then(|| related(relations, target, RelationKind::ProxyOf, issuer))
            .flatten();
        Some(ally.or(proxy)?.clone())
    };
    Some(Via { attacker, attacked })
}

/// Did `issuer` strike first, in `earlier` (in the order things happened)?
/// It did if it attacked someone counting as `cond`'s attacker (under
/// `reading`) before that side attacked it: then a later attack from that
/// side is an answer, not a first attack, and releases nothing. Returns
/// the index of the issuer's strike; none if the other side struck first
/// (its later attacks still count) or nobody struck.
pub fn struck_first<'e>(
    issuer: &Actor,
    cond: &LapseCondition,
    reading: &Reading,
    relations: &[Declared],
    earlier: impl IntoIterator<Item = (&'e Actor, &'e Action)>,
) -> Option<usize> {
    for (i, (actor, action)) in earlier.into_iter().enumerate() {
        if meets(issuer, cond, actor, action, reading, relations).is_some() {
            return None;
        }
        if actor == issuer
            && action.kind.is_attack()
            && action.target.as_ref().is_some_and(|t| {
                counts_as_attacker(relations, t, &cond.attacked_first_by, reading).is_some()
            })
        {
            return Some(i);
        }
    }
    None
}

/// Does `actor` doing `action` contradict what `issuer` committed to in
/// `a`: the issuer itself doing what it undertook to refrain from (same
/// type; one of its modes, if it names any; against its target, if it
/// names one)? Whether the assurance still held is the caller's question.
pub fn contradicts(a: &Assurance, issuer: &Actor, actor: &Actor, action: &Action) -> bool {
    let c = &a.commitment;
    c.refrain && actor == issuer && c.action.covers(action)
}

/// One namespace per channel: an outside actor named like a member of the
/// channel is that member (the client refuses to send such a name; old
/// transcripts may hold one).
pub fn canonical(a: &Actor, is_member: impl Fn(&str) -> bool) -> Actor {
    match a {
        Actor::Outside(n) if is_member(n) => Actor::Member(n.clone()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(by: &str, scope: Scope) -> LapseCondition {
        LapseCondition {
            attacked_first_by: Actor::Member(by.into()),
            scope,
        }
    }

    #[test]
    fn a_fixed_scope_has_one_reading_and_an_open_one_doubles() {
        assert_eq!(Readings::of(&[cond("red", Scope::fixed(false))]).count(), 1);
        assert_eq!(Readings::of(&[cond("red", Scope::default())]).count(), 16);
        let two = Readings::of(&[
            cond("red", Scope::default()),
            cond("green", Scope::default()),
        ]);
        assert_eq!(two.count(), 256);
        assert_eq!(Reading::all(&Scope::default()).len(), 16);
    }

    #[test]
    fn words_name_only_the_open_questions_and_say_or_plainly() {
        let scope = Scope {
            attacker_allies: None,
            attacker_proxies: None,
            ..Scope::fixed(false)
        };
        let r = Readings::of(&[cond("red", scope)]);
        let blue = Actor::Member("blue".into());
        // bit 0: allies, bit 1: proxies. Allies or proxies count: masks 1, 2, 3.
        assert_eq!(
            r.words(&[1, 2, 3].into(), &blue),
            "only if red's allies count as red; or if red's proxies count as red"
        );
        assert_eq!(
            r.words(&[0].into(), &blue),
            "only if red's allies do not count as red and red's proxies do not count as red"
        );
        assert_eq!(r.words(&[0, 1, 2, 3].into(), &blue), "under all readings");
        assert!(
            !r.words(&[2].into(), &blue).contains("attacks on"),
            "fixed questions are not named"
        );
    }

    #[test]
    fn words_stay_fast_and_short_with_every_question_open() {
        let open = |by: &str| cond(by, Scope::default());
        let r = Readings::of(&[open("red"), open("green"), open("gray")]);
        assert_eq!(r.count(), 4096, "12 open questions");
        let blue = Actor::Member("blue".into());
        // Lapsed wherever red's proxies count: one question decides.
        let set: BTreeSet<u32> = r.masks().filter(|m| m & 0b10 != 0).collect();
        assert_eq!(
            r.words(&set, &blue),
            "only if red's proxies count as red (condition \"unless attacked first by red\")"
        );
        // Every question matters: the words say how many, quickly.
        let parity: BTreeSet<u32> = r.masks().filter(|m| m.count_ones() % 2 == 0).collect();
        assert!(r
            .words(&parity, &blue)
            .starts_with("under 2048 of its 4096 readings"));
    }

    #[test]
    fn too_many_alternatives_are_counted_not_spelled_out() {
        let r = Readings::of(&[cond("red", Scope::default())]);
        let blue = Actor::Member("blue".into());
        // Parity over four questions needs eight alternatives.
        let parity: BTreeSet<u32> = r.masks().filter(|m| m.count_ones() % 2 == 0).collect();
        assert_eq!(
            r.words(&parity, &blue),
            "under 8 of its 16 readings (too many alternatives to name)"
        );
    }

    #[test]
    fn the_cover_is_exact() {
        for n in 0..4usize {
            for bits in 1u32..(1 << (1 << n)) {
                let set: BTreeSet<u32> = (0..1u32 << n).filter(|m| bits & (1 << m) != 0).collect();
                let terms = cover(n, &set);
                let got: BTreeSet<u32> = (0..1u32 << n)
                    .filter(|m| {
                        terms
                            .iter()
                            .any(|t| t.iter().all(|(b, v)| (m & (1 << b) != 0) == *v))
                    })
                    .collect();
                assert_eq!(got, set, "n={n} bits={bits:b}");
            }
        }
    }
}
