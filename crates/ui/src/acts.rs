//! The pages of the typed acts: which acts this member may make here, each
//! act's form, its preview (the terms and the payload exactly as sent),
//! and the send, with an explicit confirmation for acts that cannot be
//! undone. An act the member may not make is not offered, and a request
//! for it anyway is refused by the same rules (403).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form as Posted;
use backchannel_client::Client;
use backchannel_protocol::commitments::fold::{Board, State as Standing};
use backchannel_protocol::commitments::plover::EventType;
use backchannel_protocol::commitments::terms;
use backchannel_protocol::{ChannelId, Timestamp};
use serde::Deserialize;

use crate::forms::{self, Field, Form, Input, Invalid, Refs, Values, FORMS};
use crate::html::{esc, id, page, Frame, Refused};
use crate::views::{channel_id, channel_nav, recipients, view_of};
use crate::AppState;

/// A message a reference field offers.
#[derive(Clone)]
pub(crate) struct Candidate {
    pub value: String,
    pub label: String,
}

/// The messages of `cid` a field of type `refs` may name.
pub(crate) fn candidates(
    c: &Client,
    cid: ChannelId,
    board: &Board,
    refs: Refs,
) -> Result<Vec<Candidate>, Refused> {
    let short = |h: &str| h.get(..8).unwrap_or(h).to_string();
    let assurance =
        |a: &backchannel_protocol::commitments::fold::AssuranceView, value: String| Candidate {
            value,
            label: format!(
                "assurance {} by {} ({}): {}",
                short(&a.id),
                a.issuer,
                a.state.words(),
                terms::first_words(&a.wording, 10)
            ),
        };
    Ok(match refs {
        Refs::Assurance => board
            .assurances
            .iter()
            .map(|a| assurance(a, a.id.clone()))
            .collect(),
        Refs::Commitment => {
            let me = c.me().as_str();
            let mut out: Vec<Candidate> = board
                .assurances
                .iter()
                .map(|a| assurance(a, format!("assurance:{}", a.id)))
                .collect();
            out.extend(board.red_lines.iter().map(|r| Candidate {
                value: format!("red_line:{}", r.id),
                label: format!(
                    "red line {} by {} ({}): {}",
                    short(&r.id),
                    r.issuer,
                    r.state.words(),
                    terms::first_words(&r.red_line.wording, 10)
                ),
            }));
            if board
                .assurances
                .iter()
                .any(|a| a.issuer == me && !a.state.is_over())
            {
                out.push(Candidate {
                    value: "all".into(),
                    label: "every assurance of yours in force here".into(),
                });
            }
            out
        }
        Refs::Allegation => board
            .assurances
            .iter()
            .flat_map(|a| {
                a.allegations.iter().map(move |x| Candidate {
                    value: x.clone(),
                    label: format!(
                        "allegation {} against {}'s assurance {}",
                        short(x),
                        a.issuer,
                        short(&a.id)
                    ),
                })
            })
            .collect(),
        Refs::Report => c
            .event_records(cid)?
            .iter()
            .filter_map(|r| {
                let hex = r["id"].as_str()?;
                Some(Candidate {
                    value: hex.to_string(),
                    label: format!(
                        "report {} by {}: {}",
                        short(hex),
                        r["coder"].as_str().unwrap_or(""),
                        terms::first_words(r["event_text"].as_str().unwrap_or(""), 10)
                    ),
                })
            })
            .collect(),
        Refs::Message => c
            .log(Some(cid))?
            .iter()
            .rev()
            .filter(|e| !e.stub && !e.is_bookkeeping() && e.text.is_some())
            .map(|e| Candidate {
                value: e.message_id.clone(),
                label: format!(
                    "{} {}: {}",
                    short(&e.message_id),
                    e.sender,
                    terms::first_words(e.text.as_deref().unwrap_or(""), 10)
                ),
            })
            .collect(),
    })
}

/// The messages a form's target may name for this member: `None` when
/// the form names none.
pub(crate) fn targets(
    c: &Client,
    cid: ChannelId,
    board: &Board,
    form: &'static Form,
) -> Result<Option<Vec<Candidate>>, Refused> {
    let Some((_, refs)) = form.target() else {
        return Ok(None);
    };
    let all = candidates(c, cid, board, refs)?;
    // Who may acknowledge or convey does not depend on the message: one
    // probe decides for all (the transcript may be long).
    if refs == Refs::Message {
        let ok = all
            .first()
            .is_some_and(|x| forms::allowed(c, cid, form, &x.value));
        return Ok(Some(if ok { all } else { Vec::new() }));
    }
    Ok(Some(
        all.into_iter()
            .filter(|x| forms::allowed(c, cid, form, &x.value))
            .collect(),
    ))
}

/// Is `form` offered to this member here: it names nothing, or something
/// it may name exists.
fn offered(
    c: &Client,
    cid: ChannelId,
    board: &Board,
    form: &'static Form,
) -> Result<bool, Refused> {
    let Some((_, refs)) = form.target() else {
        return Ok(true);
    };
    Ok(candidates(c, cid, board, refs)?
        .iter()
        .any(|x| forms::allowed(c, cid, form, &x.value)))
}

/// The channel's actors, offered as a person types one.
pub(crate) fn actors_datalist(c: &Client, cid: ChannelId) -> String {
    let mut out = String::from("<datalist id=\"actors\">");
    if let Ok(ns) = c.namespace(cid) {
        for name in ns.members().chain(ns.outside().map(|(o, _)| o)) {
            out.push_str(&format!("<option value=\"{}\">", esc(name)));
        }
    }
    out.push_str("</datalist>\n");
    out
}

/// Can this member write in `cid` at all? The words why not.
fn closed(c: &Client, cid: ChannelId) -> Result<Option<&'static str>, Refused> {
    let v = view_of(c, cid)?;
    if v.status != "active" {
        return Ok(Some("Acts can be made once every party has accepted."));
    }
    if c.blocking_alert(&cid).is_some() {
        return Ok(Some(
            "Sending is blocked here until the channel's alert is dealt with.",
        ));
    }
    Ok(None)
}

/// `/channels/{id}/act`: every act this member may make here.
pub async fn list(
    State(s): State<AppState>,
    Path(hex): Path<String>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let mut main = format!(
        "<h1>Act in <bdi>{}</bdi></h1>\n{}",
        esc(&v.title),
        channel_nav(cid, "act")
    );
    if let Some(why) = closed(&c, cid)? {
        main.push_str(&format!("<p>{why}</p>\n"));
        return Ok(page("Act", &Frame::of(&c), &main));
    }
    let board = c.board(cid, c.now())?;
    main.push_str("<ul class=\"acts\">\n");
    let mut not_offered = Vec::new();
    for form in FORMS {
        match offered(&c, cid, &board, form)? {
            false => not_offered.push(form.title),
            true => main.push_str(&format!(
                "<li><a href=\"/channels/{}/act/{}\">{}</a>: {}</li>\n",
                cid.to_hex(),
                form.slug,
                form.title,
                esc(form.intro)
            )),
        }
    }
    main.push_str("</ul>\n");
    if !not_offered.is_empty() {
        main.push_str(&format!(
            "<p class=\"hint\">Not offered here, as nothing in this channel is yours to act on that way: {}.</p>\n",
            not_offered.join(", ").to_lowercase()
        ));
    }
    Ok(page("Act", &Frame::of(&c), &main))
}

fn known_form(slug: &str) -> Result<&'static Form, Refused> {
    forms::form(slug).ok_or_else(|| {
        Refused::new(
            StatusCode::NOT_FOUND,
            "unknown_act",
            "No such act",
            "The acts this interface offers are listed under Act in each channel.",
        )
    })
}

/// Which message to preselect: `?about=ID`.
#[derive(Debug, Deserialize)]
pub struct About {
    about: Option<String>,
}

/// `GET /channels/{id}/act/{kind}`: the empty form.
pub async fn blank(
    State(s): State<AppState>,
    Path((hex, slug)): Path<(String, String)>,
    Query(q): Query<About>,
) -> Result<Response, Refused> {
    let form = known_form(&slug)?;
    let mut values = Values::default();
    if let (Some(about), Some((field, _))) = (q.about, form.target()) {
        values.set(field.name, &about);
    }
    form_page(&s, &hex, form, &values, None).await
}

/// `POST /channels/{id}/act/{kind}`: the form again, filled (from the
/// preview's "Change").
pub async fn refill(
    State(s): State<AppState>,
    Path((hex, slug)): Path<(String, String)>,
    Posted(values): Posted<Vec<(String, String)>>,
) -> Result<Response, Refused> {
    form_page(&s, &hex, known_form(&slug)?, &Values(values), None).await
}

async fn form_page(
    s: &AppState,
    hex: &str,
    form: &'static Form,
    values: &Values,
    invalid: Option<&Invalid>,
) -> Result<Response, Refused> {
    let cid = channel_id(hex)?;
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    if let Some(why) = closed(&c, cid)? {
        return Err(Refused::new(
            StatusCode::CONFLICT,
            "channel_closed",
            "Not now",
            why,
        ));
    }
    let board = c.board(cid, c.now())?;
    let target = targets(&c, cid, &board, form)?;
    if target.as_ref().is_some_and(Vec::is_empty) {
        return Err(not_offered(form));
    }
    let mut fields = String::new();
    for f in form.fields {
        let options = match f.input {
            Input::Ref(_) if f.required => target.clone().unwrap_or_default(),
            Input::Ref(refs) => candidates(&c, cid, &board, refs)?,
            _ => Vec::new(),
        };
        fields.push_str(&field_html(f, values, &options, invalid));
    }
    let error = invalid.map_or(String::new(), |i| {
        format!("<p class=\"error\" role=\"alert\">{}</p>\n", esc(&i.words))
    });
    let main = format!(
        r#"<h1>{title}</h1>
{nav}<p>{intro} In <bdi>{channel}</bdi>.</p>
{error}<form method="post" action="/channels/{hex}/act/{slug}/preview" class="act">
{fields}{actors}<button type="submit">Preview</button>
<a href="/channels/{hex}/act">Cancel</a>
</form>
"#,
        title = form.title,
        nav = channel_nav(cid, "act"),
        intro = esc(form.intro),
        channel = esc(&v.title),
        hex = cid.to_hex(),
        slug = form.slug,
        actors = actors_datalist(&c, cid),
    );
    let status = if invalid.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok((status, page(form.title, &Frame::of(&c), &main)).into_response())
}

fn not_offered(form: &Form) -> Refused {
    Refused::new(
        StatusCode::FORBIDDEN,
        "not_offered",
        "Not yours to make",
        &format!(
            "{}: nothing in this channel is yours to act on that way (the rules of who may make which act are in docs/ui.md).",
            form.title
        ),
    )
}

fn field_html(
    f: &Field,
    values: &Values,
    options: &[Candidate],
    invalid: Option<&Invalid>,
) -> String {
    let shown = values.shown(f);
    let name = f.name;
    let req = if f.required { " required" } else { "" };
    let bad = if invalid.is_some_and(|i| i.field == name) {
        " aria-invalid=\"true\""
    } else {
        ""
    };
    let select = |opts: Vec<(String, String)>| {
        let mut out = format!("<select id=\"f-{name}\" name=\"{name}\"{req}{bad}>\n");
        for (value, words) in opts {
            // `?about=ID` preselects `assurance:ID` or `red_line:ID` too.
            let named = value == shown || value.split_once(':').is_some_and(|(_, h)| h == shown);
            let sel = if named { " selected" } else { "" };
            out.push_str(&format!(
                "<option value=\"{}\"{sel}>{}</option>\n",
                esc(&value),
                esc(&words)
            ));
        }
        out.push_str("</select>\n");
        out
    };
    let control = match f.input {
        Input::Area => format!(
            "<textarea id=\"f-{name}\" name=\"{name}\" rows=\"3\" dir=\"auto\"{req}{bad}>{}</textarea>\n",
            esc(shown)
        ),
        Input::Check => {
            let checked = if shown == "yes" { " checked" } else { "" };
            return format!(
                "<label class=\"check\"><input type=\"checkbox\" id=\"f-{name}\" name=\"{name}\" value=\"yes\"{checked}> {}</label>\n",
                esc(f.label)
            );
        }
        Input::Type => {
            let mut opts = vec![(String::new(), "(choose a type)".to_string())];
            opts.extend(EventType::ALL.iter().map(|t| (t.name().to_string(), t.name().to_string())));
            select(opts)
        }
        Input::Tri => select(vec![
            (String::new(), "left open: both readings are evaluated".into()),
            ("yes".into(), "yes".into()),
            ("no".into(), "no".into()),
        ]),
        Input::Choice(choices) => select(
            choices
                .iter()
                .map(|(v, w)| (v.to_string(), w.to_string()))
                .collect(),
        ),
        Input::Ref(_) => {
            let mut opts = Vec::new();
            if !f.required {
                opts.push((String::new(), "none".to_string()));
            } else if options.len() > 1 {
                opts.push((String::new(), "(choose)".to_string()));
            }
            opts.extend(options.iter().map(|o| (o.value.clone(), o.label.clone())));
            select(opts)
        }
        Input::Actor | Input::Actors => format!(
            "<input id=\"f-{name}\" name=\"{name}\" list=\"actors\" autocomplete=\"off\" dir=\"auto\" value=\"{}\"{req}{bad}>\n",
            esc(shown)
        ),
        Input::Number => format!(
            "<input id=\"f-{name}\" name=\"{name}\" inputmode=\"decimal\" value=\"{}\"{bad}>\n",
            esc(shown)
        ),
        Input::Line | Input::Modes | Input::Time => format!(
            "<input id=\"f-{name}\" name=\"{name}\" dir=\"auto\" value=\"{}\"{req}{bad}>\n",
            esc(shown)
        ),
    };
    let help = if f.help.is_empty() {
        String::new()
    } else {
        format!("<small>{}</small>\n", esc(f.help))
    };
    format!(
        "<div class=\"field\"><label for=\"f-{name}\">{}</label>\n{control}{help}</div>\n",
        esc(f.label)
    )
}

/// `POST /channels/{id}/act/{kind}/preview`: exactly what will be sent.
pub async fn preview(
    State(s): State<AppState>,
    Path((hex, slug)): Path<(String, String)>,
    Posted(pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, Refused> {
    let form = known_form(&slug)?;
    let cid = channel_id(&hex)?;
    let values = Values(pairs);
    let (built, now) = {
        let c = s.shared.lock().await;
        let now = c.now();
        (forms::build(&c, cid, form, &values, now), now)
    };
    let body = match built {
        Ok(b) => b,
        Err(invalid) => return form_page(&s, &hex, form, &values, Some(&invalid)).await,
    };
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let rows = crate::html::terms(&body);
    let hidden: String = values
        .0
        .iter()
        .filter(|(n, _)| n != "confirm" && n != PREVIEWED_AT)
        .map(|(n, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                esc(n),
                esc(v)
            )
        })
        .collect();
    // Relative times (`now`, `+48h`) are sent as the preview read them.
    let at = format!(
        "<input type=\"hidden\" name=\"{PREVIEWED_AT}\" value=\"{}\">\n",
        now.0
    );
    let confirm = form.irreversible.map_or(String::new(), |why| {
        format!(
            "<p class=\"warning\">{}</p>\n<label class=\"check\"><input type=\"checkbox\" name=\"confirm\" value=\"yes\" required> I understand that this cannot be undone</label>\n",
            esc(why)
        )
    });
    let payload = serde_json::to_string_pretty(&body).unwrap_or_default();
    let main = format!(
        r#"<h1>Preview: {title}</h1>
<p>In <bdi>{channel}</bdi>, encrypted to each member separately. Once sent it cannot be recalled.</p>
<ul>{to}</ul>
{touched}{rows}
<details><summary>The payload exactly as sent</summary><pre class="payload" dir="ltr">{payload}</pre></details>
<form method="post" action="/channels/{hex}/act/{slug}/send">
{hidden}{at}{confirm}<button type="submit" class="primary">Send</button>
</form>
<form method="post" action="/channels/{hex}/act/{slug}">
{hidden}<button type="submit">Change</button>
</form>
"#,
        title = form.title,
        channel = esc(&v.title),
        to = recipients(&c, &v),
        touched = touched(&c, cid, &body)?,
        payload = esc(&payload),
        hex = cid.to_hex(),
        slug = form.slug,
    );
    Ok(page("Preview", &Frame::of(&c), &main).into_response())
}

/// What a revocation or suspension will touch, listed before it is sent.
fn touched(
    c: &Client,
    cid: ChannelId,
    body: &backchannel_protocol::commitments::Structured,
) -> Result<String, Refused> {
    use backchannel_protocol::commitments::Structured;
    let (verb, assurance, red_line) = match body {
        Structured::Revoke {
            assurance,
            red_line,
            ..
        } => ("revoke", assurance, red_line),
        Structured::Suspend {
            assurance,
            red_line,
            ..
        } => ("suspend", assurance, red_line),
        _ => return Ok(String::new()),
    };
    let board = c.board(cid, c.now())?;
    let mut items: Vec<String> = board
        .touched(c.me().as_str(), assurance.as_deref(), red_line.as_deref())
        .into_iter()
        .map(item)
        .collect();
    items.sort();
    Ok(format!(
        "<p>This will {verb} {}:</p>\n<ul class=\"touched\">{}</ul>\n",
        if items.len() == 1 {
            "1 commitment".to_string()
        } else {
            format!("{} commitments", items.len())
        },
        items.join("")
    ))
}

fn item((hex, state, wording): (&str, Standing, &str)) -> String {
    format!(
        "<li>{} ({}) <q dir=\"auto\">{}</q></li>",
        id(hex, 8),
        state.words(),
        esc(&terms::first_words(wording, 12))
    )
}

/// The hidden field holding when the preview was made.
const PREVIEWED_AT: &str = "previewed_at";

/// How long a preview stays good to send.
const PREVIEW_VALID_MS: i64 = 30 * 60 * 1000;

/// The time the preview read relative times from (now, without one).
fn previewed_at(values: &Values, now: Timestamp) -> Result<Timestamp, Refused> {
    match values.get(PREVIEWED_AT) {
        "" => Ok(now),
        v => {
            let at = v
                .parse::<i64>()
                .map_err(|_| Refused::input("the preview's time is not a time"))?;
            if now.0.saturating_sub(at) > PREVIEW_VALID_MS || at > now.0 {
                return Err(Refused::new(
                    StatusCode::CONFLICT,
                    "preview_stale",
                    "Preview again",
                    "This preview is more than 30 minutes old: the times it showed may no longer be meant. Go back, press Change, then Preview again.",
                ));
            }
            Ok(Timestamp(at))
        }
    }
}

/// `POST /channels/{id}/act/{kind}/send`: the previewed act, sent.
pub async fn send(
    State(s): State<AppState>,
    Path((hex, slug)): Path<(String, String)>,
    Posted(pairs): Posted<Vec<(String, String)>>,
) -> Result<Response, Refused> {
    let form = known_form(&slug)?;
    let cid = channel_id(&hex)?;
    let values = Values(pairs);
    if form.irreversible.is_some() && values.get("confirm") != "yes" {
        return Err(Refused::input(
            "this act cannot be undone: tick \"I understand\" on the preview to send it",
        ));
    }
    let sent = {
        let mut c = s.shared.lock().await;
        let board = c.board(cid, c.now())?;
        if !offered(&c, cid, &board, form)? {
            return Err(not_offered(form));
        }
        let now = previewed_at(&values, c.now())?;
        match forms::build(&c, cid, form, &values, now) {
            Ok(body) => c.send_structured(cid, body, None).await,
            Err(i) if i.refused => {
                return Err(Refused::new(
                    StatusCode::FORBIDDEN,
                    "unauthorized",
                    "Not yours to make",
                    &i.words,
                ))
            }
            Err(i) => {
                drop(c);
                return form_page(&s, &hex, form, &values, Some(&i)).await;
            }
        }
    };
    let id = sent?;
    s.shared.changed();
    Ok(Redirect::to(&format!(
        "/channels/{}/board#c-{}",
        cid.to_hex(),
        id.to_hex()
    ))
    .into_response())
}
