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

/// PLOVER-style JSON records of event reports (one per line in a JSONL
/// file), so reports can be joined with political event data.
pub mod records {
    use serde_json::{json, Value};

    use super::EventType;
    use crate::commitments::structured::{Action, Actor, Place, Structured};
    use crate::Timestamp;

    fn date_time(ms: i64) -> (String, String) {
        let (y, mo, d, h, mi, s) = Timestamp(ms).civil();
        (
            format!("{y:04}-{mo:02}-{d:02}"),
            format!("{h:02}:{mi:02}:{s:02}"),
        )
    }

    fn entity(a: &Actor) -> Value {
        json!({"entity_text": a.name()})
    }

    /// The record of an event report (`id` is its message id).
    pub fn to_record(id: &str, reported_by: &str, event: &Structured) -> Option<Value> {
        let Structured::Event {
            actor,
            action,
            from_ms,
            until_ms,
            place,
            text,
        } = event
        else {
            return None;
        };
        let (date, time) = date_time(*from_ms);
        let (enddate, endtime) = date_time(*until_ms);
        let mut r = json!({
            "id": id,
            "date": date,
            "time": time,
            "enddate": enddate,
            "endtime": endtime,
            "actor": [entity(actor)],
            "event": [action.kind.name()],
            "quad_code": match action.kind.quad() {
                super::Quad::VerbalCooperation => 1,
                super::Quad::MaterialCooperation => 2,
                super::Quad::VerbalConflict => 3,
                super::Quad::MaterialConflict => 4,
            },
            "event_text": text,
            "coder": reported_by,
        });
        if let Some(t) = &action.target {
            r["recipient"] = json!([entity(t)]);
        }
        if !action.modes.is_empty() {
            r["mode"] = json!(action.modes);
        }
        if let Some(p) = place {
            r["event_loc"] = json!({
                "lat": p.lat_e6.map(|v| f64::from(v) / 1e6),
                "lon": p.lon_e6.map(|v| f64::from(v) / 1e6),
                "geonameid": p.geonames_id,
                "radius_m": p.radius_m,
            });
        }
        Some(r)
    }

    fn name(v: &Value) -> Option<String> {
        let e = v.as_array()?.first()?;
        e.get("entity_text")
            .or_else(|| e.get("code"))
            .and_then(Value::as_str)
            .map(str::to_string)
    }

    fn time(date: Option<&Value>, time: Option<&Value>) -> Option<i64> {
        let d: Vec<i64> = date?
            .as_str()?
            .split('-')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let t: Vec<i64> = match time.and_then(Value::as_str) {
            Some(t) => t
                .trim_end_matches('Z')
                .split(':')
                .map(|x| x.parse().ok())
                .collect::<Option<_>>()?,
            None => vec![0, 0, 0],
        };
        Timestamp::from_civil(
            *d.first()?,
            *d.get(1)?,
            *d.get(2)?,
            *t.first()?,
            *t.get(1).unwrap_or(&0),
            *t.get(2).unwrap_or(&0),
        )
        .map(|t| t.0)
    }

    /// An event report from a record (actors are members by name; a caller
    /// that knows the channel turns non-members into outside actors).
    pub fn from_record(r: &Value) -> Result<Structured, String> {
        let actor = name(&r["actor"]).ok_or("a record needs an actor")?;
        let kind = r["event"]
            .as_array()
            .and_then(|e| e.first())
            .and_then(Value::as_str)
            .and_then(EventType::parse)
            .ok_or("a record needs an event of the 16 PLOVER types")?;
        let from_ms =
            time(r.get("date"), r.get("time")).ok_or("a record needs a date (YYYY-MM-DD)")?;
        let until_ms = match r.get("enddate") {
            Some(_) => {
                time(r.get("enddate"), r.get("endtime")).ok_or("enddate is not YYYY-MM-DD")?
            }
            None => from_ms + 86_399_000,
        };
        let modes = r["mode"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let place = r.get("event_loc").map(|l| Place {
            lat_e6: l["lat"].as_f64().map(|v| (v * 1e6).round() as i32),
            lon_e6: l["lon"].as_f64().map(|v| (v * 1e6).round() as i32),
            geonames_id: l["geonameid"].as_u64(),
            radius_m: l["radius_m"].as_u64().unwrap_or(1000) as u32,
        });
        let event = Structured::Event {
            actor: Actor::Member(actor),
            action: Action {
                kind,
                modes,
                target: name(&r["recipient"]).map(Actor::Member),
            },
            from_ms,
            until_ms,
            place,
            text: r["event_text"].as_str().unwrap_or_default().to_string(),
        };
        event.validate().map_err(|e| e.to_string())?;
        Ok(event)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn records_round_trip_and_take_the_manuals_minimal_example() {
            let minimal = json!({"id":"PHOXv1-20160724-0042","date":"2016-07-24","actor":[{"code":"USA"}],"recipient":[{"code":"CAN"}],"event":["CONSULT"]});
            let e = from_record(&minimal).unwrap();
            let Structured::Event {
                actor,
                action,
                from_ms,
                ..
            } = &e
            else {
                panic!()
            };
            assert_eq!((actor.name(), action.kind), ("USA", EventType::Consult));
            assert_eq!(Timestamp(*from_ms).civil(), (2016, 7, 24, 0, 0, 0));
            let back = to_record("x", "blue", &e).unwrap();
            assert_eq!(from_record(&back).unwrap(), e);
            assert!(from_record(
                &json!({"date":"2016-07-24","actor":[{"code":"USA"}],"event":["FIGHT"]})
            )
            .is_err());
        }
    }
}
