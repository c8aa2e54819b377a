//! The event vocabulary of the PLOVER political event ontology
//! (github.com/openeventdata/PLOVER, `PLOVER_MANUAL.tex`, draft 2.0,
//! CC BY-SA 4.0): the 16 event types and their modes, reused by name so that
//! reports can be joined with political event data. The definitions in the
//! docs are ours.
//!
//! PLOVER's own quad table puts SANCTION in verbal conflict while its
//! section calls it material; we follow the section: material conflict.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A PLOVER event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum EventType {
    /// Accuse, disapprove, allege, investigate.
    Accuse,
    /// Agree to, or sign, an arrangement.
    Agree,
    /// Give aid.
    Aid,
    /// Use violence.
    Assault,
    /// Coerce: seize, restrict, arrest...
    Coerce,
    /// Concede.
    Concede,
    /// Consult.
    Consult,
    /// Cooperate materially.
    Cooperate,
    /// Mobilize forces.
    Mobilize,
    /// Protest.
    Protest,
    /// Reject a request.
    Reject,
    /// Request.
    Request,
    /// Retreat: withdraw, cease fire, grant access...
    Retreat,
    /// Sanction.
    Sanction,
    /// Support verbally.
    Support,
    /// Threaten.
    Threaten,
}

/// PLOVER's four quads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quad {
    /// 1.
    VerbalCooperation,
    /// 2.
    MaterialCooperation,
    /// 3.
    VerbalConflict,
    /// 4.
    MaterialConflict,
}

impl EventType {
    /// Every type, alphabetically.
    pub const ALL: [EventType; 16] = [
        EventType::Accuse,
        EventType::Agree,
        EventType::Aid,
        EventType::Assault,
        EventType::Coerce,
        EventType::Concede,
        EventType::Consult,
        EventType::Cooperate,
        EventType::Mobilize,
        EventType::Protest,
        EventType::Reject,
        EventType::Request,
        EventType::Retreat,
        EventType::Sanction,
        EventType::Support,
        EventType::Threaten,
    ];

    /// The PLOVER name, e.g. `ASSAULT`.
    pub fn name(self) -> &'static str {
        match self {
            EventType::Accuse => "ACCUSE",
            EventType::Agree => "AGREE",
            EventType::Aid => "AID",
            EventType::Assault => "ASSAULT",
            EventType::Coerce => "COERCE",
            EventType::Concede => "CONCEDE",
            EventType::Consult => "CONSULT",
            EventType::Cooperate => "COOPERATE",
            EventType::Mobilize => "MOBILIZE",
            EventType::Protest => "PROTEST",
            EventType::Reject => "REJECT",
            EventType::Request => "REQUEST",
            EventType::Retreat => "RETREAT",
            EventType::Sanction => "SANCTION",
            EventType::Support => "SUPPORT",
            EventType::Threaten => "THREATEN",
        }
    }

    /// From a PLOVER name (either case); `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        EventType::ALL
            .into_iter()
            .find(|t| t.name().eq_ignore_ascii_case(s))
    }

    /// Its quad (SANCTION: material conflict, see the module docs).
    pub fn quad(self) -> Quad {
        match self {
            EventType::Agree | EventType::Consult | EventType::Support | EventType::Concede => {
                Quad::VerbalCooperation
            }
            EventType::Cooperate | EventType::Aid | EventType::Retreat => Quad::MaterialCooperation,
            EventType::Request | EventType::Accuse | EventType::Reject | EventType::Threaten => {
                Quad::VerbalConflict
            }
            EventType::Sanction
            | EventType::Protest
            | EventType::Mobilize
            | EventType::Coerce
            | EventType::Assault => Quad::MaterialConflict,
        }
    }

    /// The modes PLOVER defines for this type (the "how").
    pub fn modes(self) -> &'static [&'static str] {
        match self {
            EventType::Consult => &["visit", "third-party", "multilateral", "phone"],
            EventType::Retreat => &[
                "withdraw",
                "release",
                "disarm",
                "ceasefire",
                "access",
                "resign",
            ],
            EventType::Request | EventType::Reject => &["assist", "change", "yield", "meet"],
            EventType::Accuse => &["disapprove", "investigate", "allege"],
            EventType::Threaten => &[
                "restrict",
                "arrest",
                "relations",
                "expel",
                "territory",
                "violence",
            ],
            EventType::Protest => &[
                "demo",
                "riot",
                "strike",
                "hunger",
                "boycott",
                "obstruct",
                "vandalize",
            ],
            EventType::Sanction => &["convict", "expel", "withdraw", "discontinue"],
            EventType::Mobilize => &["troops", "weapons", "police", "militia"],
            EventType::Coerce => &[
                "seize",
                "restrict",
                "censor",
                "curfew",
                "martial-law",
                "arrest",
                "deport",
                "withhold",
                "misinformation",
                "cyber",
            ],
            EventType::Assault => &[
                "abduct",
                "beat",
                "torture",
                "sexual",
                "targeted",
                "destroy",
                "primitive",
                "firearms",
                "explosives",
                "suicide-attack",
                "aerial",
                "drone",
                "heavy-weapons",
                "crowd-control",
                "unconventional",
            ],
            EventType::Agree
            | EventType::Support
            | EventType::Concede
            | EventType::Cooperate
            | EventType::Aid => &[],
        }
    }

    /// True for a use of force against someone: what "attacked" means in a
    /// lapse condition.
    pub fn is_attack(self) -> bool {
        self == EventType::Assault
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// PLOVER's 37 contexts (the "why").
pub const CONTEXTS: [&str; 37] = [
    "military",
    "intelligence",
    "executive",
    "legislative",
    "election",
    "political_institutions",
    "pro_democracy",
    "pro_autocracy",
    "economic",
    "legal",
    "reparations",
    "human_rights",
    "rights_freedoms",
    "repression",
    "human_security",
    "gender",
    "lgbt",
    "religion_ethnicity",
    "inequality",
    "diplomatic",
    "territory",
    "peacekeeping",
    "health",
    "asylum",
    "migration",
    "disasters",
    "natural_resource",
    "environment",
    "technology",
    "terrorism",
    "cbrn",
    "cyber",
    "misinformation",
    "crime",
    "corruption",
    "illegal_drugs",
    "trafficking",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sixteen_types_with_their_quads_and_modes() {
        assert_eq!(EventType::ALL.len(), 16);
        assert_eq!(EventType::parse("assault"), Some(EventType::Assault));
        assert_eq!(
            EventType::parse("FIGHT"),
            None,
            "FIGHT was removed from PLOVER"
        );
        assert_eq!(EventType::Sanction.quad(), Quad::MaterialConflict);
        assert!(EventType::Assault.modes().contains(&"drone"));
        assert!(EventType::Agree.modes().is_empty());
        let json = serde_json::to_string(&EventType::Mobilize).unwrap();
        assert_eq!(json, "\"MOBILIZE\"");
        assert_eq!(CONTEXTS.len(), 37);
    }
}
