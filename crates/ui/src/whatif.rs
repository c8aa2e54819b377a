//! What if: hypothetical events (or a reported one, then more) run
//! through the commitments, the cascade shown step by step with its
//! explanations and as the decision-support graph, inline.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use backchannel_client::Client;
use backchannel_protocol::commitments::actors::check_modes;
use backchannel_protocol::commitments::plover::EventType;
use backchannel_protocol::commitments::structured::{Action, Place};
use backchannel_protocol::commitments::whatif::{Cascade, Hypothesis, Options};
use backchannel_protocol::{ChannelId, Timestamp};

use crate::acts::{actors_datalist, candidates};
use crate::forms::{Refs, Values};
use crate::html::{esc, page, Frame, Refused};
use crate::views::{channel_id, channel_nav, view_of};
use crate::AppState;

/// Events a person can chain in the form.
const EVENTS: usize = 3;

/// `GET /channels/{id}/whatif[?...]`: the form, and the cascade of what
/// it names.
pub async fn whatif(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let values = Values(pairs);
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let result = if values.0.is_empty() {
        String::new()
    } else {
        match run(&c, cid, &values) {
            Ok(cascade) => cascade_html(&cascade),
            Err(words) => format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(&words)),
        }
    };
    let main = format!(
        r#"<h1>What if, in <bdi>{title}</bdi></h1>
{nav}{form}{result}"#,
        title = esc(&v.title),
        nav = channel_nav(cid, "whatif"),
        form = form_html(&c, cid, &values)?,
    );
    Ok(page("What if", &Frame::of(&c), &main))
}

fn form_html(c: &Client, cid: ChannelId, values: &Values) -> Result<String, Refused> {
    let board = c.board(cid, c.now())?;
    let mut reports =
        String::from("<option value=\"\">none: start from the events below</option>\n");
    for r in candidates(c, cid, &board, Refs::Report)? {
        let sel = if values.get("report") == r.value {
            " selected"
        } else {
            ""
        };
        reports.push_str(&format!(
            "<option value=\"{}\"{sel}>{}</option>\n",
            esc(&r.value),
            esc(&r.label)
        ));
    }
    let mut events = String::new();
    for n in 1..=EVENTS {
        let field = |name: &str| values.get(&format!("e{n}_{name}")).to_string();
        let mut types = String::from("<option value=\"\">(choose a type)</option>\n");
        for t in EventType::ALL {
            let sel = if field("action") == t.name() {
                " selected"
            } else {
                ""
            };
            types.push_str(&format!("<option{sel}>{}</option>\n", t.name()));
        }
        let legend = if n == 1 {
            "An event".to_string()
        } else {
            format!("Then, once that cascade ends (event {n})")
        };
        if n == 2 {
            let open = if field("actor").is_empty() && values.get("e3_actor").is_empty() {
                ""
            } else {
                " open"
            };
            events.push_str(&format!(
                "<details id=\"more-events\"{open}><summary>Then more events, in sequence</summary>\n"
            ));
        }
        events.push_str(&format!(
            r#"<fieldset><legend>{legend}</legend>
<div class="field"><label for="e{n}_actor">Who acts</label><input id="e{n}_actor" name="e{n}_actor" list="actors" dir="auto" value="{actor}"></div>
<div class="field"><label for="e{n}_action">does</label><select id="e{n}_action" name="e{n}_action">{types}</select></div>
<div class="field"><label for="e{n}_modes">modes</label><input id="e{n}_modes" name="e{n}_modes" value="{modes}"></div>
<div class="field"><label for="e{n}_target">against</label><input id="e{n}_target" name="e{n}_target" list="actors" dir="auto" value="{target}"></div>
<div class="field"><label for="e{n}_at">when</label><input id="e{n}_at" name="e{n}_at" value="{at}" placeholder="untimed; or now, +2h, 2026-12-03T10:00Z"></div>
{place}</fieldset>
"#,
            actor = esc(&field("actor")),
            modes = esc(&field("modes")),
            target = esc(&field("target")),
            at = esc(&field("at")),
            place = if n == 1 {
                format!(
                    r#"<div class="field"><label for="lat">where: latitude</label><input id="lat" name="lat" inputmode="decimal" value="{}"></div>
<div class="field"><label for="lon">longitude</label><input id="lon" name="lon" inputmode="decimal" value="{}"></div>
<div class="field"><label for="radius_m">within metres</label><input id="radius_m" name="radius_m" inputmode="decimal" value="{}"><small>a red line limited to a place fires only on an event there</small></div>
"#,
                    esc(values.get("lat")),
                    esc(values.get("lon")),
                    esc(values.get("radius_m")),
                )
            } else {
                String::new()
            },
        ));
    }
    events.push_str("</details>\n");
    let actors = actors_datalist(c, cid);
    let checked = |name: &str| {
        if values.get(name) == "yes" {
            " checked"
        } else {
            ""
        }
    };
    Ok(format!(
        r#"<form method="get" class="whatif">
<div class="field"><label for="report">Start from a reported event</label><select id="report" name="report">{reports}</select></div>
{events}{actors}
<div class="field"><label for="at">Evaluate at</label><input id="at" name="at" value="{at}" placeholder="now"></div>
<label class="check"><input type="checkbox" name="all_channels" value="yes"{all}> Through every channel I am in (a red line in one may lapse an assurance in another)</label>
<label class="check"><input type="checkbox" name="undisputed_only" value="yes"{undisputed}> Use only relations no member disputes</label>
<button type="submit" class="primary">Show the cascade</button>
</form>
"#,
        at = esc(values.get("at")),
        all = checked("all_channels"),
        undisputed = checked("undisputed_only"),
    ))
}

/// The cascade the form's values name, or why it cannot run.
fn run(c: &Client, cid: ChannelId, values: &Values) -> Result<Cascade, String> {
    // Across every channel, names are read as the CLI reads them there:
    // in the union of the channels' namespaces.
    let all = values.get("all_channels") == "yes";
    let ns = if all {
        c.namespace_all()
    } else {
        c.namespace(cid)
    }
    .map_err(|e| e.to_string())?;
    let now = c.now();
    let mut events = Vec::new();
    if !values.get("report").is_empty() {
        events.push(
            c.reported_event((!all).then_some(cid), values.get("report"))
                .map_err(|e| e.to_string())?,
        );
    }
    for n in 1..=EVENTS {
        let field = |name: &str| values.get(&format!("e{n}_{name}")).to_string();
        let (actor, kind) = (field("actor"), field("action"));
        if actor.is_empty() && kind.is_empty() {
            continue;
        }
        let at = |what: &str| format!("event {n}: {what}");
        let kind = EventType::parse(&kind).ok_or_else(|| at("choose what the actor does"))?;
        let actor = ns.resolve(&actor).map_err(|e| at(&e.to_string()))?;
        let modes: Vec<String> = field("modes")
            .split(',')
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(String::from)
            .collect();
        check_modes(kind, &modes).map_err(|e| at(&e.to_string()))?;
        let target = match field("target").as_str() {
            "" => None,
            t => Some(ns.resolve(t).map_err(|e| at(&e.to_string()))?),
        };
        let mut h = Hypothesis::new(
            actor,
            Action {
                kind,
                modes,
                target,
            },
        );
        h.at_ms = match field("at").as_str() {
            "" => None,
            t => Some(backchannel_client::time::parse_time(t, now).map_err(|e| at(&e))?),
        };
        if n == 1 {
            let number = |name: &str| -> Result<Option<f64>, String> {
                match values.get(name) {
                    "" => Ok(None),
                    v => v
                        .parse()
                        .map(Some)
                        .map_err(|_| at(&format!("{v:?} is not a number"))),
                }
            };
            let radius = number("radius_m")?.map_or(1000, |r| r as u32);
            h.place = Place::from_degrees(number("lat")?, number("lon")?, None, radius)
                .map_err(|e| at(&e))?;
        }
        events.push(h);
    }
    if events.is_empty() {
        return Err(
            "say what happens: an event (who acts, doing what), or a reported event".into(),
        );
    }
    let at = match values.get("at") {
        "" => now,
        t => Timestamp(backchannel_client::time::parse_time(t, now)?),
    };
    let options = Options {
        undisputed_only: values.get("undisputed_only") == "yes",
    };
    let cascade = if all {
        c.what_if_all(at, &events, options)
    } else {
        c.what_if(cid, at, &events, options)
    };
    cascade.map_err(|e| e.to_string())
}

fn cascade_html(cascade: &Cascade) -> String {
    let svg = cascade.to_svg();
    // The graph goes inline: an XML declaration has no place in HTML.
    let svg = svg.find("<svg").map_or("", |i| &svg[i..]);
    let steps = cascade.steps.len();
    format!(
        r#"<section id="cascade" aria-labelledby="cascade-h">
<h2 id="cascade-h">The cascade: {steps} step{s}</h2>
<pre class="cascade" dir="ltr">{text}</pre>
<figure class="graph" role="group" aria-label="The cascade as a graph">{svg}</figure>
</section>
"#,
        s = if steps == 1 { "" } else { "s" },
        text = esc(&cascade.to_text()),
    )
}
