//! Commitments in words: every typed term of a payload as labelled lines,
//! so the CLI and any later interface show the same wording.

use serde::Serialize;

use super::fold::{AssuranceView, Scheduled};
use super::provisos::ProvisoState;
use super::structured::{
    relation_words, short, Action, Actor, Combine, Formality, Place, Scope, Structured,
};
use crate::ids::{Handle, Timestamp};

/// One term of a commitment: what it is, and its value in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Term {
    /// What the term is (`commits to`, `condition 1`, `validity`...).
    pub label: String,
    /// Its value in words.
    pub value: String,
}

/// `YYYY-MM-DD HH:MM:SS UTC` from Unix milliseconds.
pub fn utc(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = Timestamp(ms).civil();
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02} UTC")
}

/// The first `n` words of `text` on one line, `...` when cut.
pub fn first_words(text: &str, n: usize) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() > n {
        format!("{} ...", words[..n].join(" "))
    } else {
        words.join(" ")
    }
}

/// What a board or a what-if says of the commitments it cannot see: a
/// member holding only stubs (digests) of `n` messages of a channel.
pub fn stubs_notice(n: usize) -> String {
    let messages = if n == 1 { "message" } else { "messages" };
    format!(
        "this channel holds {n} {messages} you hold only as stubs (digests); their commitments are not on your board"
    )
}

/// A formality in words.
pub fn formality(f: Formality) -> &'static str {
    match f {
        Formality::AideMemoire => "aide-memoire",
        Formality::NonPaper => "non-paper",
        Formality::NoteVerbale => "note verbale",
        Formality::Oral => "oral",
    }
}

/// An actor, marked when outside the channel.
pub fn actor(a: &Actor) -> String {
    match a {
        Actor::Member(n) => n.clone(),
        Actor::Outside(n) => format!("{n} (outside the channel)"),
    }
}

/// `ASSAULT (modes: drone) against red`.
pub fn action(a: &Action) -> String {
    let modes = if a.modes.is_empty() {
        String::new()
    } else {
        format!(" (modes: {})", a.modes.join(", "))
    };
    match &a.target {
        Some(t) => format!("{}{modes} against {}", a.kind, actor(t)),
        None => format!("{}{modes}", a.kind),
    }
}

/// Which actors count under a condition's scope; an open one says so.
pub fn scope(s: &Scope) -> String {
    let says = |o: Option<bool>| match o {
        Some(true) => "count",
        Some(false) => "do not count",
        None => "open (both readings are evaluated)",
    };
    format!(
        "the attacker's allies {}; the attacker's proxies {}; attacks on the issuer's allies {}; attacks on its proxies {}",
        says(s.attacker_allies),
        says(s.attacker_proxies),
        says(s.attacked_allies),
        says(s.attacked_proxies)
    )
}

/// A place in words.
pub fn place(p: &Place) -> String {
    let deg = |e6: i32| f64::from(e6) / 1e6;
    let at = match (p.lat_e6, p.lon_e6, p.geonames_id) {
        (Some(a), Some(o), Some(g)) => format!("{:.6}, {:.6} (GeoNames {g})", deg(a), deg(o)),
        (Some(a), Some(o), None) => format!("{:.6}, {:.6}", deg(a), deg(o)),
        (_, _, Some(g)) => format!("GeoNames {g}"),
        _ => "unplaced".into(),
    };
    format!("{at}, within {} m", p.radius_m)
}

fn yes(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}

fn handles(hs: &[Handle]) -> String {
    hs.iter().map(Handle::as_str).collect::<Vec<_>>().join(", ")
}

fn target(assurance: Option<&str>, red_line: Option<&str>) -> String {
    match (assurance, red_line) {
        (_, Some(r)) => format!("red line {}", short(r)),
        (Some(a), None) => format!("assurance {}", short(a)),
        (None, None) => "every assurance of its issuer in this channel".into(),
    }
}

/// Every typed term of `s`, in words, in a fixed order.
pub fn terms(s: &Structured) -> Vec<Term> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut put = |label: &str, value: String| out.push((label.to_string(), value));
    match s {
        Structured::Acknowledgement { of, text } => {
            put("acknowledges", format!("message {}", short(of)));
            put("words", text.clone());
        }
        Structured::Allegation {
            assurance,
            evidence,
            reply_by_ms,
        } => {
            put(
                "alleges a breach of",
                format!("assurance {}", short(assurance)),
            );
            put("evidence", evidence.clone());
            put("reply due by", utc(*reply_by_ms));
        }
        Structured::Assurance(a) => {
            let verb = if a.commitment.refrain {
                "to refrain from"
            } else {
                "to undertake"
            };
            put(
                "commits",
                format!("{verb} {}", action(&a.commitment.action)),
            );
            put(
                "beneficiaries",
                a.beneficiaries
                    .iter()
                    .map(actor)
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            if a.unless.is_empty() {
                put("conditions", "none: it lapses under no condition".into());
            }
            for (i, c) in a.unless.iter().enumerate() {
                put(
                    &format!("condition {i}"),
                    format!(
                        "lapses if attacked first by {}; {}",
                        actor(&c.attacked_first_by),
                        scope(&c.scope)
                    ),
                );
            }
            if a.unless.len() > 1 {
                put(
                    "conditions combine",
                    match a.unless_combine {
                        Some(Combine::All) => "all: it lapses only once every condition is met",
                        _ => "any: one met condition lapses it",
                    }
                    .into(),
                );
            }
            for (i, p) in a.provided.iter().flatten().enumerate() {
                put(
                    &format!("proviso {}", i + 1),
                    format!(
                        "provided {} does {} by {} (decided by the mediator's finding or the issuer's confirmation)",
                        actor(&p.actor),
                        action(&p.action),
                        utc(p.by_ms)
                    ),
                );
            }
            if a.provided.as_ref().is_some_and(|p| p.len() > 1) {
                put(
                    "provisos combine",
                    match a.provided_combine {
                        Some(Combine::Any) => "any: one fulfilled proviso suffices",
                        _ => "all: every proviso must be fulfilled",
                    }
                    .into(),
                );
            }
            if !a.reservation.is_empty() {
                put("reservation", a.reservation.clone());
            }
            let until = match (a.valid_until_ms, a.until_revoked) {
                (Some(u), _) => format!("until {} (exclusive)", utc(u)),
                (None, true) => "until revoked".into(),
                (None, false) => "with no end stated".into(),
            };
            put("validity", format!("from {} {until}", utc(a.valid_from_ms)));
            put("formality", formality(a.formality).into());
            put("authorized by", a.authorized_by.clone());
            put(
                "language",
                match &a.translation_of {
                    Some(d) => format!(
                        "{}: a TRANSLATION of the authoritative text in message digest {}",
                        a.language,
                        short(d)
                    ),
                    None => format!("{} (authoritative)", a.language),
                },
            );
            if let Some(r) = &a.reciprocates {
                put("reciprocates", format!("assurance {}", short(r)));
            }
            put("wording", a.wording.clone());
        }
        Structured::ConfirmLapse {
            assurance,
            event,
            text,
        } => {
            put(
                "confirms the lapse of",
                format!("assurance {}", short(assurance)),
            );
            if let Some(e) = event {
                put("because of", format!("event report {}", short(e)));
            }
            put("words", text.clone());
        }
        Structured::Conveyed { original, text } => {
            put("conveys", format!("message {}", short(original)));
            put("the mediator's words", text.clone());
        }
        Structured::EscrowConfirmation { exchange, offers } => {
            put("exchange", exchange.to_hex());
            for o in offers {
                put(
                    &format!("received from {}", o.from),
                    o.digest.map_or("nothing readable".into(), |d| {
                        format!("an offer with digest {}", short(&d.to_hex()))
                    }),
                );
            }
        }
        Structured::EscrowExchange {
            exchange,
            participants,
            terms,
            deadline_ms,
            ..
        } => {
            put("exchange", exchange.to_hex());
            put("participants", handles(participants));
            put("terms", terms.clone());
            put("offers due by", utc(*deadline_ms));
        }
        Structured::Event {
            actor: who,
            action: what,
            from_ms,
            until_ms,
            place: at,
            text,
        } => {
            put("event", format!("{} {}", actor(who), action(what)));
            put("window", format!("{} to {}", utc(*from_ms), utc(*until_ms)));
            if let Some(p) = at {
                put("place", place(p));
            }
            put("words", text.clone());
        }
        Structured::Finding {
            assurance,
            allegation,
            breached,
            lapsed,
            text,
        } => {
            put("finding on", format!("assurance {}", short(assurance)));
            if let Some(a) = allegation {
                put("answers", format!("allegation {}", short(a)));
            }
            put("breached", yes(*breached));
            put("lapsed", yes(*lapsed));
            put("reasons", text.clone());
        }
        Structured::Note { text } => put("note", text.clone()),
        Structured::RedLine(r) => {
            put(
                "if",
                format!(
                    "{} does {}",
                    r.trigger_actor.as_ref().map_or("anyone".into(), actor),
                    action(&r.trigger)
                ),
            );
            if let Some(t) = &r.targets {
                put(
                    "against any of",
                    t.iter().map(actor).collect::<Vec<_>>().join(", "),
                );
            }
            if let Some(sc) = &r.scope {
                put("who counts", scope(sc));
            }
            if let Some(p) = &r.place {
                put("where", place(p));
            }
            if r.valid_from_ms.is_some() || r.valid_until_ms.is_some() {
                put(
                    "validity",
                    format!(
                        "from {} until {}",
                        r.valid_from_ms.map_or("when sent".into(), utc),
                        r.valid_until_ms
                            .map_or("revoked".into(), |u| format!("{} (exclusive)", utc(u)))
                    ),
                );
            }
            put("then the issuer responds with", action(&r.response));
            put("wording", r.wording.clone());
        }
        Structured::Dispute {
            subject,
            relation,
            object,
            text,
        } => {
            put(
                "disputes that",
                format!(
                    "{} {} {}",
                    actor(subject),
                    relation_words(*relation),
                    actor(object)
                ),
            );
            put("why", text.clone());
        }
        Structured::Fulfilment {
            assurance,
            proviso,
            fulfilled,
            event,
            text,
        } => {
            put(
                "decides",
                format!(
                    "proviso {} of assurance {}",
                    u64::from(*proviso) + 1,
                    short(assurance)
                ),
            );
            put(
                "fulfilled",
                if *fulfilled {
                    "yes"
                } else {
                    "no: the assurance lapses if its provisos, combined, now fail"
                }
                .into(),
            );
            if let Some(e) = event {
                put("because of", format!("event report {}", short(e)));
            }
            put("reasons", text.clone());
        }
        Structured::Guarantee {
            assurance,
            response,
            wording,
        } => {
            put("guarantees", format!("assurance {}", short(assurance)));
            put("if it is breached, the guarantor will", action(response));
            put("wording", wording.clone());
        }
        Structured::Relate {
            subject,
            relation,
            object,
        } => put(
            "declares",
            format!(
                "{} {} {}",
                actor(subject),
                relation_words(*relation),
                actor(object)
            ),
        ),
        Structured::Reply { allegation, text } => {
            put("answers", format!("allegation {}", short(allegation)));
            put("answer", text.clone());
        }
        Structured::Request {
            about,
            question,
            reply_by_ms,
        } => {
            if let Some(a) = about {
                put("about", format!("message {}", short(a)));
            }
            put("question", question.clone());
            put("reply due by", utc(*reply_by_ms));
        }
        Structured::Revoke {
            assurance,
            red_line,
            effective_ms,
            text,
        } => {
            put("revokes", target(assurance.as_deref(), red_line.as_deref()));
            put("effective", utc(*effective_ms));
            put("reason", text.clone());
        }
        Structured::Suspend {
            assurance,
            red_line,
            from_ms,
            until_ms,
            text,
        } => {
            put(
                "suspends",
                target(assurance.as_deref(), red_line.as_deref()),
            );
            put("from", utc(*from_ms));
            put(
                "until",
                until_ms.map_or("further notice (no end given)".into(), utc),
            );
            put("reason", text.clone());
        }
    }
    out.into_iter()
        .map(|(label, value)| Term { label, value })
        .collect()
}

/// What happened to an assurance: reciprocation, provisos, guarantees,
/// lapse claims, allegations, findings.
pub fn history(a: &AssuranceView, show: &dyn Fn(i64) -> String) -> Vec<String> {
    let mut out = Vec::new();
    for p in &a.provisos {
        let state = match (p.state, &p.decision) {
            (ProvisoState::Open, _) if p.overdue => {
                "its time passed UNDECIDED: the mediator's finding or the issuer's confirmation is awaited".to_string()
            }
            (ProvisoState::Open, _) => "not yet decided".to_string(),
            (s, Some((id, by))) => format!(
                "{} ({} by {by})",
                if s == ProvisoState::Fulfilled {
                    "FULFILLED"
                } else {
                    "NOT FULFILLED"
                },
                &id[..8.min(id.len())]
            ),
            (_, None) => "decided".to_string(),
        };
        out.push(format!("proviso {}: {state}", p.index + 1));
        for (event, by) in &p.claims {
            out.push(format!(
                "  claimed done by {by}'s report {} (a claim: only a finding or the issuer's confirmation decides)",
                &event[..8.min(event.len())]
            ));
        }
    }
    for g in &a.guarantees {
        out.push(format!(
            "guaranteed by {} ({}): on a breach it will {}: \"{}\"",
            g.guarantor,
            &g.id[..8.min(g.id.len())],
            action(&g.response),
            first_words(&g.wording, 16)
        ));
    }
    for r in &a.reciprocated_by {
        out.push(format!("reciprocal: {}", &r[..8.min(r.len())]));
    }
    for c in &a.lapse_claims {
        let cond = a
            .assurance
            .unless
            .get(c.condition)
            .map_or(String::new(), |x| {
                format!(
                    " its condition \"unless attacked first by {}\"",
                    x.attacked_first_by
                )
            });
        out.push(format!(
            "LAPSE CLAIMED by {}'s report {} under{cond}{} (a claim: only the issuer's confirmation or the mediator's finding lapses it)",
            c.reported_by,
            &c.event[..8],
            if c.readings_diverge {
                ", only under some readings of its wording"
            } else {
                ""
            }
        ));
    }
    for b in &a.breach_reports {
        out.push(format!(
            "BREACH REPORTED by {}'s report {}: the issuer did what it undertook not to (a claim until the mediator finds)",
            b.reported_by,
            &b.event[..8],
        ));
    }
    for x in &a.allegations {
        let answered = if a.ruled.contains(x) {
            "answered by the mediator's finding"
        } else if a.answered.contains(x) {
            "answered by the issuer"
        } else {
            "unanswered"
        };
        out.push(format!("breach alleged: {} ({answered})", &x[..8]));
    }
    for f in &a.rulings {
        let what = match (f.breached, f.lapsed) {
            (true, true) => "breached, and lapsed",
            (true, false) => "breached",
            (false, true) => "lapsed",
            (false, false) => "neither breached nor lapsed",
        };
        out.push(format!(
            "FINDING {} by the mediator {}, {}: {what}{}: \"{}\"",
            &f.id[..8],
            f.by,
            show(f.sent_at_ms),
            f.allegation.as_deref().map_or(String::new(), |al| format!(
                " (on allegation {})",
                &al[..8.min(al.len())]
            )),
            first_words(&f.text, 30)
        ));
    }
    for x in &a.schedule {
        out.push(scheduled(x, show));
    }
    out
}

/// A revocation or suspension still to take effect or to end.
pub fn scheduled(x: &Scheduled, show: &dyn Fn(i64) -> String) -> String {
    let until = x
        .until_ms
        .map_or(String::new(), |u| format!(" until {}", show(u)));
    format!(
        "scheduled: {} {} from {}{until}{}",
        x.act,
        &x.id[..8],
        show(x.from_ms),
        if x.text.is_empty() {
            String::new()
        } else {
            format!(": \"{}\"", first_words(&x.text, 20))
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commitments::plover::EventType;
    use crate::commitments::structured::{Assurance, Commitment, LapseCondition};

    #[test]
    fn an_assurance_shows_every_term() {
        let a = Structured::Assurance(Assurance {
            beneficiaries: vec![Actor::Member("red".into())],
            commitment: Commitment {
                refrain: true,
                action: Action {
                    kind: EventType::Assault,
                    modes: vec!["drone".into()],
                    target: Some(Actor::Member("red".into())),
                },
            },
            unless: vec![LapseCondition {
                attacked_first_by: Actor::Outside("militia".into()),
                scope: Scope {
                    attacker_proxies: Some(true),
                    ..Scope::default()
                },
            }],
            unless_combine: None,
            provided: None,
            provided_combine: None,
            reservation: "subject to review".into(),
            valid_from_ms: 0,
            valid_until_ms: None,
            until_revoked: true,
            formality: Formality::NoteVerbale,
            authorized_by: "the cabinet".into(),
            language: "en".into(),
            translation_of: None,
            reciprocates: Some("ab".repeat(16)),
            wording: "We will not.".into(),
        });
        let text: Vec<String> = terms(&a)
            .into_iter()
            .map(|t| format!("{}: {}", t.label, t.value))
            .collect();
        assert_eq!(
            text,
            [
                "commits: to refrain from ASSAULT (modes: drone) against red",
                "beneficiaries: red",
                "condition 0: lapses if attacked first by militia (outside the channel); the attacker's allies open (both readings are evaluated); the attacker's proxies count; attacks on the issuer's allies open (both readings are evaluated); attacks on its proxies open (both readings are evaluated)",
                "reservation: subject to review",
                "validity: from 1970-01-01 00:00:00 UTC until revoked",
                "formality: note verbale",
                "authorized by: the cabinet",
                "language: en (authoritative)",
                "reciprocates: assurance abababab",
                "wording: We will not.",
            ]
        );
    }

    #[test]
    fn words_are_cut_and_stubs_counted() {
        assert_eq!(first_words("one two  three", 2), "one two ...");
        assert_eq!(first_words("one two", 2), "one two");
        assert!(stubs_notice(1).starts_with("this channel holds 1 message you"));
        assert!(stubs_notice(3).contains("3 messages you hold only as stubs (digests)"));
    }
}
