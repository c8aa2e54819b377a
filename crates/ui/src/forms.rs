//! The typed acts as forms: each kind's fields, read into the payload the
//! CLI's command of the same name builds, with the same checks (actors
//! resolved in the channel's namespace, times as the CLI reads them, the
//! protocol's validation, the authority rules).
//!
//! A form is data ([`FORMS`]): the page, the preview and the probe that
//! decides whether a member is offered a form at all are written once.

use backchannel_client::Client;
use backchannel_protocol::commitments::actors::{check_modes, Namespace};
use backchannel_protocol::commitments::plover::EventType;
use backchannel_protocol::commitments::structured::{
    Action, Actor, Assurance, Combine, Commitment, Formality, LapseCondition, Place, Proviso,
    RedLine, RelationKind, Scope, Structured,
};
use backchannel_protocol::{ChannelId, MessageId, Timestamp};

/// How a field is typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Input {
    /// One line of text.
    Line,
    /// Several lines (wording, reasons).
    Area,
    /// An actor: a member's handle, a known outside actor, or
    /// `outside:NAME`.
    Actor,
    /// Actors separated by commas.
    Actors,
    /// A PLOVER event type.
    Type,
    /// PLOVER modes separated by commas.
    Modes,
    /// A time as the CLI reads it (`now`, `+48h`, `2026-12-03T10:00Z`).
    Time,
    /// Yes, no, or left open (both readings are evaluated).
    Tri,
    /// A box to tick.
    Check,
    /// One of fixed choices: (value, words).
    Choice(&'static [(&'static str, &'static str)]),
    /// A message of the channel the act names.
    Ref(Refs),
    /// A number.
    Number,
}

/// Which messages a reference field offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refs {
    /// Assurances.
    Assurance,
    /// Assurances and red lines, or every assurance at once (`all`):
    /// what a revocation or suspension names.
    Commitment,
    /// Allegations of breach.
    Allegation,
    /// Event reports.
    Report,
    /// Any message with content.
    Message,
}

/// One field of a form.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// Its form name.
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// Its type.
    pub input: Input,
    /// Must it be filled in?
    pub required: bool,
    /// Its value when the form opens.
    pub default: &'static str,
    /// A hint shown under it.
    pub help: &'static str,
}

impl Field {
    const fn new(name: &'static str, label: &'static str, input: Input) -> Field {
        Field {
            name,
            label,
            input,
            required: false,
            default: "",
            help: "",
        }
    }

    const fn req(mut self) -> Field {
        self.required = true;
        self
    }

    const fn def(mut self, default: &'static str) -> Field {
        self.default = default;
        self
    }

    const fn help(mut self, help: &'static str) -> Field {
        self.help = help;
        self
    }
}

/// One kind of act.
#[derive(Debug)]
pub struct Form {
    /// In the address, and the CLI command of the same act.
    pub slug: &'static str,
    /// Its title.
    pub title: &'static str,
    /// What it does, in one sentence.
    pub intro: &'static str,
    /// Its fields.
    pub fields: &'static [Field],
    /// Why it cannot be undone, for those that cannot.
    pub irreversible: Option<&'static str>,
}

impl Form {
    /// The field naming the message this act is about, if it must name one.
    pub fn target(&self) -> Option<(&'static Field, Refs)> {
        self.fields.iter().find_map(|f| match f.input {
            Input::Ref(r) if f.required => Some((f, r)),
            _ => None,
        })
    }
}

const FORMALITY: &[(&str, &str)] = &[
    ("non_paper", "non-paper (no letterhead, disownable)"),
    ("aide_memoire", "aide-mémoire"),
    ("note_verbale", "note verbale"),
    ("oral", "oral"),
];
const REFRAIN: &[(&str, &str)] = &[
    ("refrain", "refrains from the action"),
    ("undertake", "undertakes the action"),
];
const RELATION: &[(&str, &str)] = &[("ally-of", "is an ally of"), ("proxy-of", "is a proxy of")];

const WORDING: Field = Field::new("wording", "Wording (the authoritative text)", Input::Area).req();
const TIME_HELP: &str = "now, +2h, +3d, 2026-12-03T10:00Z or with an offset";
const ACTOR_HELP: &str = "a member's handle, a known outside actor, or outside:NAME";

/// The assurance's fields, shared by a reciprocation.
macro_rules! assurance_fields {
    ($($first:expr),*) => {
        &[
            $($first,)*
            WORDING,
            Field::new("to", "Beneficiaries", Input::Actors).req().help("separated by commas"),
            Field::new("commitment", "The issuer", Input::Choice(REFRAIN)),
            Field::new("action", "Action (PLOVER type)", Input::Type).req(),
            Field::new("modes", "Modes", Input::Modes).help("separated by commas; any mode if none"),
            Field::new("against", "Against", Input::Actor).help("default: the first beneficiary"),
            Field::new("unless_attacked_by", "Lapses if attacked first by", Input::Actors).help("separated by commas: any one lapses it"),
            Field::new("unless_all", "Only once every one of them has attacked", Input::Check),
            Field::new("attacker_allies", "Do the attacker's allies count?", Input::Tri),
            Field::new("attacker_proxies", "Do the attacker's proxies count?", Input::Tri),
            Field::new("attacked_allies", "Does an attack on the issuer's allies count?", Input::Tri),
            Field::new("attacked_proxies", "Does an attack on the issuer's proxies count?", Input::Tri),
            Field::new("provided_actor", "Provided that (who)", Input::Actor).help("a proviso: another side does something by a time"),
            Field::new("provided_action", "does (PLOVER type)", Input::Type),
            Field::new("provided_target", "against", Input::Actor),
            Field::new("provided_by", "by", Input::Time),
            Field::new("from", "Valid from", Input::Time).def("now").help(TIME_HELP),
            Field::new("until", "Valid until", Input::Time).help("leave empty and tick below for until revoked"),
            Field::new("until_revoked", "Valid until revoked", Input::Check),
            Field::new("formality", "Formality", Input::Choice(FORMALITY)),
            Field::new("authorized_by", "Authorized by", Input::Line).req(),
            Field::new("language", "Authoritative language (BCP 47)", Input::Line).def("en"),
            Field::new("reservation", "Reservation clause", Input::Line),
        ]
    };
}

const RED_LINE: &[Field] = &[
    WORDING,
    Field::new("trigger", "If (PLOVER type)", Input::Type).req(),
    Field::new("trigger_modes", "in the modes", Input::Modes),
    Field::new("by", "by", Input::Actor).help("any actor if empty"),
    Field::new("against", "against", Input::Actors).help("separated by commas: any of them"),
    Field::new(
        "by_allies",
        "Do the acting side's allies count?",
        Input::Tri,
    ),
    Field::new(
        "by_proxies",
        "Do the acting side's proxies count?",
        Input::Tri,
    ),
    Field::new(
        "against_allies",
        "Does an act against a target's allies count?",
        Input::Tri,
    ),
    Field::new(
        "against_proxies",
        "Does an act against a target's proxies count?",
        Input::Tri,
    ),
    Field::new("from", "Holds from", Input::Time).help("default: when sent"),
    Field::new("until", "Holds until", Input::Time).help("default: until revoked"),
    Field::new("lat", "Only at latitude", Input::Number),
    Field::new("lon", "longitude", Input::Number),
    Field::new("geonames", "or GeoNames id", Input::Number),
    Field::new("radius_m", "within metres", Input::Number).def("1000"),
    Field::new("response", "Then (PLOVER type)", Input::Type).req(),
    Field::new("response_modes", "in the modes", Input::Modes),
    Field::new("response_target", "against", Input::Actor),
];

/// Every act, in the order the CLI's help lists them.
pub const FORMS: &[Form] = &[
    Form {
        slug: "assure",
        title: "Give an assurance",
        intro: "A conditional assurance: what you will not do (or will do), to whom, until when, and what lapses it.",
        fields: assurance_fields!(),
        irreversible: None,
    },
    Form {
        slug: "reciprocate",
        title: "Reciprocate an assurance",
        intro: "An assurance given in return for another, linked to it.",
        fields: assurance_fields!(Field::new("of", "In return for", Input::Ref(Refs::Assurance)).req()),
        irreversible: None,
    },
    Form {
        slug: "redline",
        title: "Declare a red line",
        intro: "If someone does this, you will respond so.",
        fields: RED_LINE,
        irreversible: None,
    },
    Form {
        slug: "revoke",
        title: "Revoke",
        intro: "Withdraw one of your assurances, all of them, or a red line.",
        fields: &[
            Field::new("which", "What", Input::Ref(Refs::Commitment)).req(),
            Field::new("text", "Why", Input::Area).req(),
            Field::new("effective", "Effective", Input::Time).def("now").help(TIME_HELP),
        ],
        irreversible: Some("A revocation cannot be taken back: every member's board shows it."),
    },
    Form {
        slug: "suspend",
        title: "Suspend",
        intro: "Suspend one of your assurances, all of them, or a red line, for a time.",
        fields: &[
            Field::new("which", "What", Input::Ref(Refs::Commitment)).req(),
            Field::new("text", "Why", Input::Area).req(),
            Field::new("from", "From", Input::Time).def("now").help(TIME_HELP),
            Field::new("until", "Until", Input::Time).help("open if empty"),
        ],
        irreversible: None,
    },
    Form {
        slug: "report",
        title: "Report an event",
        intro: "What was seen: who did what to whom, when and where. A report is a claim, not a finding.",
        fields: &[
            Field::new("text", "What was seen", Input::Area).req(),
            Field::new("actor", "Who acted", Input::Actor).req().help(ACTOR_HELP),
            Field::new("action", "Action (PLOVER type)", Input::Type).req(),
            Field::new("modes", "Modes", Input::Modes),
            Field::new("target", "Against", Input::Actor),
            Field::new("from", "From", Input::Time).req().help(TIME_HELP),
            Field::new("until", "Until", Input::Time).req(),
            Field::new("lat", "Latitude", Input::Number),
            Field::new("lon", "Longitude", Input::Number),
            Field::new("geonames", "GeoNames id", Input::Number),
            Field::new("radius_m", "Radius, metres", Input::Number).def("1000"),
        ],
        irreversible: None,
    },
    Form {
        slug: "confirm-lapse",
        title: "Confirm a lapse",
        intro: "Confirm that one of your assurances lapsed.",
        fields: &[
            Field::new("assurance", "Your assurance", Input::Ref(Refs::Assurance)).req(),
            Field::new("event", "The event report that lapsed it", Input::Ref(Refs::Report)),
            Field::new("text", "Why", Input::Area).req(),
        ],
        irreversible: Some("A lapse you confirm ends the assurance for good."),
    },
    Form {
        slug: "allege",
        title: "Allege a breach",
        intro: "Allege that an assurance was breached, with the evidence and a time to reply by.",
        fields: &[
            Field::new("assurance", "The assurance", Input::Ref(Refs::Assurance)).req(),
            Field::new("evidence", "Evidence", Input::Area).req(),
            Field::new("reply_by", "Reply due by", Input::Time).req().def("+48h").help(TIME_HELP),
        ],
        irreversible: None,
    },
    Form {
        slug: "reply",
        title: "Answer an allegation",
        intro: "Answer an allegation against your assurance.",
        fields: &[
            Field::new("allegation", "The allegation", Input::Ref(Refs::Allegation)).req(),
            Field::new("text", "Your answer", Input::Area).req(),
        ],
        irreversible: None,
    },
    Form {
        slug: "find",
        title: "Record a finding",
        intro: "The mediator's finding on an assurance: breached, lapsed, or neither.",
        fields: &[
            Field::new("assurance", "The assurance", Input::Ref(Refs::Assurance)).req(),
            Field::new("allegation", "On the allegation", Input::Ref(Refs::Allegation)),
            Field::new("breached", "It was breached", Input::Check),
            Field::new("lapsed", "It lapsed", Input::Check),
            Field::new("text", "Reasons", Input::Area).req(),
        ],
        irreversible: Some("A finding rules on every member's board and cannot be withdrawn."),
    },
    Form {
        slug: "ask",
        title: "Request an explanation",
        intro: "Ask for an explanation, with a time to reply by.",
        fields: &[
            Field::new("question", "The question", Input::Area).req(),
            Field::new("about", "About the message", Input::Ref(Refs::Message)),
            Field::new("reply_by", "Reply due by", Input::Time).req().def("+48h").help(TIME_HELP),
        ],
        irreversible: None,
    },
    Form {
        slug: "acknowledge",
        title: "Acknowledge",
        intro: "A deliberate \"received and understood\" of one message.",
        fields: &[
            Field::new("message", "The message", Input::Ref(Refs::Message)).req(),
            Field::new("text", "Words", Input::Line).def("Received and understood."),
        ],
        irreversible: None,
    },
    Form {
        slug: "convey",
        title: "Convey in your own words",
        intro: "The mediator's paraphrase of a principal's message, marked as the mediator's words and linked to the original, which it never replaces.",
        fields: &[
            Field::new("original", "The original message", Input::Ref(Refs::Message)).req(),
            Field::new("text", "The paraphrase", Input::Area).req(),
        ],
        irreversible: None,
    },
    Form {
        slug: "relate",
        title: "Declare a relation",
        intro: "Declare that one actor is an ally or a proxy of another (attributed to you).",
        fields: &[
            Field::new("subject", "Actor", Input::Actor).req().help(ACTOR_HELP),
            Field::new("relation", "", Input::Choice(RELATION)),
            Field::new("object", "of", Input::Actor).req(),
        ],
        irreversible: None,
    },
];

/// The form at `slug`.
pub fn form(slug: &str) -> Option<&'static Form> {
    FORMS.iter().find(|f| f.slug == slug)
}

/// A submitted form: its fields as sent (a name may repeat).
#[derive(Clone, Debug, Default)]
pub struct Values(pub Vec<(String, String)>);

impl Values {
    /// The first value of `name`, trimmed; empty if absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// The first value of `name` as sent; empty if absent.
    pub fn raw(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The value the form shows for `f`: what was sent, else its default.
    pub fn shown<'a>(&'a self, f: &'a Field) -> &'a str {
        match self.0.iter().find(|(n, _)| n == f.name) {
            Some((_, v)) => v,
            None => f.default,
        }
    }

    /// Sets `name`.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_string(), value.to_string()));
    }
}

/// A field that does not read: which, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The field's name (empty for the whole act).
    pub field: &'static str,
    /// Why, in words.
    pub words: String,
    /// The act is not this member's to make (the authority rules).
    pub refused: bool,
}

type Read<T> = Result<T, Invalid>;

/// Reads a form's fields as the CLI reads the same arguments.
struct Reader<'a> {
    form: &'static Form,
    values: &'a Values,
    ns: &'a Namespace,
    now: Timestamp,
}

impl Reader<'_> {
    fn field(&self, name: &str) -> Option<&'static Field> {
        self.form.fields.iter().find(|f| f.name == name)
    }

    fn required(&self, name: &str) -> bool {
        self.field(name).is_some_and(|f| f.required)
    }

    fn bad(&self, name: &str, words: String) -> Invalid {
        match self.field(name) {
            Some(f) => Invalid {
                field: f.name,
                words: format!("{}: {words}", f.label.trim_end_matches(':')),
                refused: false,
            },
            None => Invalid {
                field: "",
                words,
                refused: false,
            },
        }
    }

    /// Text as typed (the CLI sends its argument verbatim), with the line
    /// endings the CLI sends (browsers send CR LF).
    fn text(&self, name: &str) -> Read<String> {
        let v = self.values.raw(name).replace("\r\n", "\n");
        if v.trim().is_empty() && self.required(name) {
            return Err(self.bad(name, "say it: this field is needed".into()));
        }
        Ok(v)
    }

    fn opt_text(&self, name: &str) -> Option<String> {
        Some(self.values.get(name).to_string()).filter(|v| !v.is_empty())
    }

    fn actor(&self, name: &str) -> Read<Option<Actor>> {
        match self.values.get(name) {
            "" if self.required(name) => {
                Err(self.bad(name, format!("name the actor ({ACTOR_HELP})")))
            }
            "" => Ok(None),
            v => self
                .ns
                .resolve(v)
                .map(Some)
                .map_err(|e| self.bad(name, e.to_string())),
        }
    }

    fn actors(&self, name: &str) -> Read<Vec<Actor>> {
        let list: Vec<Actor> = split(self.values.get(name))
            .map(|v| {
                self.ns
                    .resolve(v)
                    .map_err(|e| self.bad(name, e.to_string()))
            })
            .collect::<Read<_>>()?;
        if list.is_empty() && self.required(name) {
            return Err(self.bad(name, "name at least one actor".into()));
        }
        Ok(list)
    }

    fn kind(&self, name: &str) -> Read<Option<EventType>> {
        match self.values.get(name) {
            "" if self.required(name) => Err(self.bad(name, "choose a type".into())),
            "" => Ok(None),
            v => EventType::parse(v)
                .map(Some)
                .ok_or_else(|| self.bad(name, format!("{v:?} is not a PLOVER event type"))),
        }
    }

    /// An action of `kind` in the modes of `modes`, against `target`.
    fn action(&self, kind: &str, modes_field: &str, target: Option<Actor>) -> Read<Option<Action>> {
        let Some(kind) = self.kind(kind)? else {
            return Ok(None);
        };
        let modes: Vec<String> = split(self.values.get(modes_field))
            .map(String::from)
            .collect();
        check_modes(kind, &modes).map_err(|e| self.bad(modes_field, e.to_string()))?;
        Ok(Some(Action {
            kind,
            modes,
            target,
        }))
    }

    fn time(&self, name: &str) -> Read<Option<i64>> {
        match self.values.get(name) {
            "" if self.required(name) => Err(self.bad(name, format!("give a time ({TIME_HELP})"))),
            "" => Ok(None),
            v => backchannel_client::time::parse_time(v, self.now)
                .map(Some)
                .map_err(|e| self.bad(name, e)),
        }
    }

    fn needed_time(&self, name: &str) -> Read<i64> {
        self.time(name)?
            .ok_or_else(|| self.bad(name, format!("give a time ({TIME_HELP})")))
    }

    fn tri(&self, name: &str) -> Option<bool> {
        match self.values.get(name) {
            "yes" => Some(true),
            "no" => Some(false),
            _ => None,
        }
    }

    fn check(&self, name: &str) -> bool {
        self.values.get(name) == "yes"
    }

    fn reference(&self, name: &str) -> Read<Option<String>> {
        match self.values.get(name) {
            "" if self.required(name) => Err(self.bad(name, "choose the message".into())),
            "" => Ok(None),
            v => MessageId::from_hex(v)
                .map(|m| Some(m.to_hex()))
                .map_err(|_| self.bad(name, format!("{v:?} is not a message id"))),
        }
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Read<Option<T>> {
        match self.values.get(name) {
            "" => Ok(None),
            v => v
                .parse()
                .map(Some)
                .map_err(|_| self.bad(name, format!("{v:?} is not a number"))),
        }
    }

    fn place(&self) -> Read<Option<Place>> {
        Place::from_degrees(
            self.number("lat")?,
            self.number("lon")?,
            self.number("geonames")?,
            self.number("radius_m")?.unwrap_or(1000),
        )
        .map_err(|e| self.bad("lat", e))
    }

    fn scope(&self, names: [&str; 4]) -> Scope {
        Scope {
            attacker_allies: self.tri(names[0]),
            attacker_proxies: self.tri(names[1]),
            attacked_allies: self.tri(names[2]),
            attacked_proxies: self.tri(names[3]),
        }
    }
}

fn split(v: &str) -> impl Iterator<Item = &str> {
    v.split([',', '\n'])
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The payload `values` of `form` stand for in `channel`: read, validated
/// by the protocol and checked against the authority rules.
pub fn build(
    c: &Client,
    channel: ChannelId,
    form: &'static Form,
    values: &Values,
    now: Timestamp,
) -> Result<Structured, Invalid> {
    let whole = |words: String| Invalid {
        field: "",
        words,
        refused: false,
    };
    let ns = c.namespace(channel).map_err(|e| whole(e.to_string()))?;
    let r = Reader {
        form,
        values,
        ns: &ns,
        now,
    };
    let body = read(&r)?;
    body.validate().map_err(|e| whole(e.to_string()))?;
    // Every message an act names must be one of this channel's, as the
    // CLI resolves each reference in the channel.
    let json = serde_json::to_value(&body).map_err(|e| whole(e.to_string()))?;
    for field in Structured::REFERENCE_FIELDS {
        if let Some(hex) = json.get(field).and_then(|v| v.as_str()) {
            c.resolve_message(Some(channel), hex)
                .map_err(|e| whole(format!("{field}: {e}")))?;
        }
    }
    let refused = |words: String| Invalid {
        refused: true,
        ..whole(words)
    };
    c.check_act(channel, &body)
        .map_err(|e| refused(e.to_string()))?;
    if reciprocates_own(c, channel, &body) {
        return Err(refused(
            "an assurance reciprocates another member's, not one of your own".into(),
        ));
    }
    Ok(body)
}

/// Does `body` name one of its sender's own assurances as the one it
/// reciprocates? The authority rules let it; nobody means to.
fn reciprocates_own(c: &Client, channel: ChannelId, body: &Structured) -> bool {
    let Structured::Assurance(a) = body else {
        return false;
    };
    let Some(of) = &a.reciprocates else {
        return false;
    };
    c.board(channel, c.now()).is_ok_and(|b| {
        b.assurances
            .iter()
            .any(|x| x.id == *of && x.issuer == c.me().as_str())
    })
}

fn read(r: &Reader<'_>) -> Read<Structured> {
    Ok(match r.form.slug {
        "assure" => assurance(r, None)?,
        "reciprocate" => assurance(r, r.reference("of")?)?,
        "redline" => red_line(r)?,
        "revoke" | "suspend" => {
            let (assurance, red_line) = match r.values.get("which") {
                "all" => (None, None),
                v => match v.split_once(':') {
                    Some(("assurance", id)) => (Some(id.to_string()), None),
                    Some(("red_line", id)) => (None, Some(id.to_string())),
                    _ => return Err(r.bad("which", "choose what it names".into())),
                },
            };
            let text = r.text("text")?;
            if r.form.slug == "revoke" {
                Structured::Revoke {
                    assurance,
                    red_line,
                    effective_ms: r.needed_time("effective")?,
                    text,
                }
            } else {
                Structured::Suspend {
                    assurance,
                    red_line,
                    from_ms: r.needed_time("from")?,
                    until_ms: r.time("until")?,
                    text,
                }
            }
        }
        "report" => {
            let target = r.actor("target")?;
            Structured::Event {
                actor: r.actor("actor")?.unwrap_or(Actor::Member(String::new())),
                action: r
                    .action("action", "modes", target)?
                    .ok_or_else(|| r.bad("action", "choose a type".into()))?,
                from_ms: r.needed_time("from")?,
                until_ms: r.needed_time("until")?,
                place: r.place()?,
                text: r.text("text")?,
            }
        }
        "confirm-lapse" => Structured::ConfirmLapse {
            assurance: needed(r, "assurance")?,
            event: r.reference("event")?,
            text: r.text("text")?,
        },
        "allege" => Structured::Allegation {
            assurance: needed(r, "assurance")?,
            evidence: r.text("evidence")?,
            reply_by_ms: r.needed_time("reply_by")?,
        },
        "reply" => Structured::Reply {
            allegation: needed(r, "allegation")?,
            text: r.text("text")?,
        },
        "find" => Structured::Finding {
            assurance: needed(r, "assurance")?,
            allegation: r.reference("allegation")?,
            breached: r.check("breached"),
            lapsed: r.check("lapsed"),
            text: r.text("text")?,
        },
        "ask" => Structured::Request {
            about: r.reference("about")?,
            question: r.text("question")?,
            reply_by_ms: r.needed_time("reply_by")?,
        },
        "acknowledge" => Structured::Acknowledgement {
            of: needed(r, "message")?,
            text: r.text("text")?,
        },
        "convey" => Structured::Conveyed {
            original: needed(r, "original")?,
            text: r.text("text")?,
        },
        "relate" => Structured::Relate {
            subject: r.actor("subject")?.unwrap_or(Actor::Member(String::new())),
            relation: match r.values.get("relation") {
                "proxy-of" => RelationKind::ProxyOf,
                _ => RelationKind::AllyOf,
            },
            object: r.actor("object")?.unwrap_or(Actor::Member(String::new())),
        },
        other => {
            return Err(Invalid {
                field: "",
                words: format!("{other} is not an act"),
                refused: false,
            })
        }
    })
}

fn needed(r: &Reader<'_>, name: &str) -> Read<String> {
    r.reference(name)?
        .ok_or_else(|| r.bad(name, "choose the message".into()))
}

fn assurance(r: &Reader<'_>, reciprocates: Option<String>) -> Read<Structured> {
    let beneficiaries = r.actors("to")?;
    let target = r
        .actor("against")?
        .or_else(|| beneficiaries.first().cloned());
    let action = r
        .action("action", "modes", target)?
        .ok_or_else(|| r.bad("action", "choose a type".into()))?;
    let scope = r.scope([
        "attacker_allies",
        "attacker_proxies",
        "attacked_allies",
        "attacked_proxies",
    ]);
    let unless = r
        .actors("unless_attacked_by")?
        .into_iter()
        .map(|by| LapseCondition {
            attacked_first_by: by,
            scope,
        })
        .collect::<Vec<_>>();
    let provided = match r.actor("provided_actor")? {
        None if ["provided_action", "provided_target", "provided_by"]
            .iter()
            .any(|f| !r.values.get(f).is_empty()) =>
        {
            return Err(r.bad(
                "provided_actor",
                "a proviso needs who is to act (or clear its other fields)".into(),
            ))
        }
        None => None,
        Some(actor) => {
            let target = r.actor("provided_target")?;
            Some(vec![Proviso {
                actor,
                action: r.action("provided_action", "", target)?.ok_or_else(|| {
                    r.bad(
                        "provided_action",
                        "a proviso needs what is to be done".into(),
                    )
                })?,
                by_ms: r.needed_time("provided_by")?,
            }])
        }
    };
    let until = r.time("until")?;
    let until_revoked = r.check("until_revoked");
    if until.is_none() && !until_revoked {
        return Err(r.bad(
            "until",
            "give a time, or tick \"valid until revoked\" (no silent forever)".into(),
        ));
    }
    Ok(Structured::Assurance(Assurance {
        beneficiaries,
        commitment: Commitment {
            refrain: r.values.get("commitment") != "undertake",
            action,
        },
        unless_combine: (r.check("unless_all") && !unless.is_empty()).then_some(Combine::All),
        unless,
        provided,
        provided_combine: None,
        reservation: r.values.get("reservation").to_string(),
        valid_from_ms: r.needed_time("from")?,
        valid_until_ms: until,
        until_revoked,
        formality: match r.values.get("formality") {
            "aide_memoire" => Formality::AideMemoire,
            "note_verbale" => Formality::NoteVerbale,
            "oral" => Formality::Oral,
            _ => Formality::NonPaper,
        },
        authorized_by: r.text("authorized_by")?,
        language: r.opt_text("language").unwrap_or_else(|| "en".into()),
        translation_of: None,
        reciprocates,
        wording: r.text("wording")?,
    }))
}

fn red_line(r: &Reader<'_>) -> Read<Structured> {
    let against = r.actors("against")?;
    let several = against.len() > 1;
    let trigger = r
        .action(
            "trigger",
            "trigger_modes",
            against.first().filter(|_| !several).cloned(),
        )?
        .ok_or_else(|| r.bad("trigger", "choose a type".into()))?;
    let response_target = r.actor("response_target")?;
    let response = r
        .action("response", "response_modes", response_target)?
        .ok_or_else(|| r.bad("response", "choose a type".into()))?;
    let mut line = RedLine::new(r.actor("by")?, trigger, response, r.text("wording")?);
    let scope = r.scope([
        "by_allies",
        "by_proxies",
        "against_allies",
        "against_proxies",
    ]);
    line.targets = several.then_some(against);
    line.scope = (scope != Scope::default()).then_some(scope);
    line.valid_from_ms = r.time("from")?;
    line.valid_until_ms = r.time("until")?;
    line.place = r.place()?;
    Ok(Structured::RedLine(line))
}

/// Would `c` be allowed `form`'s act naming `candidate`? The form is
/// filled with harmless values around it and put to the authority rules
/// (only those: the member has not written anything yet).
pub fn allowed(c: &Client, channel: ChannelId, form: &'static Form, candidate: &str) -> bool {
    let me = c.me().to_string();
    let mut v = Values::default();
    for f in form.fields {
        let value = match f.input {
            Input::Line | Input::Area => "-".to_string(),
            Input::Actor | Input::Actors => me.clone(),
            Input::Type => EventType::ALL[0].name().to_string(),
            Input::Time => "now".into(),
            Input::Choice(c) => c[0].0.to_string(),
            Input::Check => "yes".into(),
            Input::Ref(_) if f.required => candidate.to_string(),
            _ => String::new(),
        };
        v.set(f.name, &value);
    }
    let Ok(ns) = c.namespace(channel) else {
        return false;
    };
    let r = Reader {
        form,
        values: &v,
        ns: &ns,
        now: Timestamp(0),
    };
    match read(&r) {
        Ok(body) => c.check_act(channel, &body).is_ok() && !reciprocates_own(c, channel, &body),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_796_292_000_000); // 2026-12-03 10:00 UTC

    fn read_form(slug: &str, pairs: &[(&str, &str)]) -> Read<Structured> {
        let ns = Namespace::new(["blue", "red", "mediator"], ["militia"]);
        let values = Values(
            pairs
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
        );
        read(&Reader {
            form: form(slug).unwrap(),
            values: &values,
            ns: &ns,
            now: NOW,
        })
    }

    #[test]
    fn every_form_has_a_unique_address_and_at_most_one_target() {
        for (i, f) in FORMS.iter().enumerate() {
            assert!(
                FORMS[i + 1..].iter().all(|g| g.slug != f.slug),
                "{}",
                f.slug
            );
            let targets = f
                .fields
                .iter()
                .filter(|x| matches!(x.input, Input::Ref(_)) && x.required)
                .count();
            assert!(targets <= 1, "{}", f.slug);
            let names: Vec<&str> = f.fields.iter().map(|x| x.name).collect();
            for (j, n) in names.iter().enumerate() {
                assert!(!names[j + 1..].contains(n), "{}: {n} twice", f.slug);
            }
        }
    }

    #[test]
    fn a_report_reads_its_actors_times_and_place_as_the_cli_does() {
        let body = read_form(
            "report",
            &[
                ("text", "Two drones\r\nover the depot."),
                ("actor", "outside:militia"),
                ("action", "ASSAULT"),
                ("target", "blue"),
                ("from", "2026-12-03T02:10Z"),
                ("until", "+1h"),
                ("lat", "33.312"),
                ("lon", "44.361"),
            ],
        )
        .unwrap();
        let Structured::Event {
            actor,
            action,
            from_ms,
            until_ms,
            place,
            text,
        } = body
        else {
            panic!("not an event report");
        };
        assert_eq!(actor, Actor::Outside("militia".into()));
        assert_eq!(action.target, Some(Actor::Member("blue".into())));
        assert_eq!(from_ms, NOW.0 - (7 * 60 + 50) * 60_000);
        assert_eq!(until_ms, NOW.0 + 3_600_000);
        assert_eq!(place.unwrap().lat_e6, Some(33_312_000));
        assert_eq!(
            text, "Two drones\nover the depot.",
            "lines end as the CLI sends them"
        );
    }

    #[test]
    fn a_field_that_does_not_read_is_named_with_why() {
        let bad = |pairs: &[(&str, &str)]| read_form("report", pairs).unwrap_err();
        let base = [
            ("text", "x"),
            ("actor", "blue"),
            ("action", "ASSAULT"),
            ("from", "now"),
        ];
        let mut p = base.to_vec();
        p.push(("until", "2026-12-03T10:00"));
        let e = bad(&p);
        assert_eq!(e.field, "until");
        assert!(e.words.contains("no time zone"), "{}", e.words);
        let mut p = base.to_vec();
        p.extend([("until", "+1h"), ("lat", "33")]);
        assert_eq!(bad(&p).field, "lat", "a latitude needs its longitude");
        let mut p = base.to_vec();
        p.extend([("until", "+1h"), ("target", "rde")]);
        let e = bad(&p);
        assert_eq!(e.field, "target");
        assert!(e.words.contains("red"), "the near name: {}", e.words);
        let e = read_form(
            "allege",
            &[("assurance", "zz"), ("evidence", "x"), ("reply_by", "+1h")],
        )
        .unwrap_err();
        assert_eq!(e.field, "assurance");
    }

    #[test]
    fn an_assurance_says_until_when_and_a_red_line_keeps_its_open_readings() {
        let e = read_form(
            "assure",
            &[
                ("wording", "w"),
                ("to", "red"),
                ("action", "ASSAULT"),
                ("authorized_by", "x"),
                ("from", "now"),
            ],
        )
        .unwrap_err();
        assert!(e.words.contains("no silent forever"), "{}", e.words);
        let line = read_form(
            "redline",
            &[
                ("wording", "w"),
                ("trigger", "ASSAULT"),
                ("against", "red, outside:ally"),
                ("by_proxies", "yes"),
                ("response", "ASSAULT"),
                ("response_target", "blue"),
            ],
        )
        .unwrap();
        let Structured::RedLine(r) = line else {
            panic!("not a red line")
        };
        assert_eq!(r.targets.as_ref().map(Vec::len), Some(2));
        assert_eq!(
            r.trigger.target, None,
            "several targets are listed, not one"
        );
        let scope = r.scope.unwrap();
        assert_eq!(scope.attacker_proxies, Some(true));
        assert_eq!(scope.attacker_allies, None, "left open: both readings");
    }
}
