//! The board of a channel: every assurance and red line with its state at
//! a time, its typed terms and what has happened to it; relations, what
//! awaits an answer, acts ignored because their senders could not make
//! them, and how many messages this member holds only as stubs. Beside
//! each commitment, the acts this member may make on it.

use axum::extract::{Path, Query, State};
use axum::response::Html;
use backchannel_client::Client;
use backchannel_protocol::commitments::fold::Board;
use backchannel_protocol::commitments::structured::relation_words;
use backchannel_protocol::commitments::{terms, Structured};
use backchannel_protocol::{ChannelId, Timestamp};
use serde::Deserialize;

use crate::forms::{self, Refs, FORMS};
use crate::html::{bdi, esc, id, page, time, Frame, Refused};
use crate::views::{channel_id, channel_nav, view_of};
use crate::AppState;

/// `?at=TIME`: evaluate the board then (the CLI's `status --at`).
#[derive(Debug, Deserialize)]
pub struct At {
    #[serde(default)]
    at: String,
}

/// `/channels/{id}/board`.
pub async fn board(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<At>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let at = match q.at.trim() {
        "" | "now" => c.now(),
        t => Timestamp(
            backchannel_client::time::parse_time(t, c.now()).map_err(|e| Refused::input(&e))?,
        ),
    };
    let b = c.board(cid, at)?;
    let main = format!(
        r#"<h1>Board of <bdi>{title}</bdi></h1>
{nav}<form method="get" class="at"><label for="at">Evaluate at</label>
<input id="at" name="at" value="{shown}" placeholder="now, +7d, 2026-12-10T00:00Z">
<button type="submit">Show</button></form>
<section id="live-board" data-live aria-label="Board">
{body}</section>
"#,
        title = esc(&v.title),
        nav = channel_nav(cid, "board"),
        shown = esc(&q.at),
        body = board_html(&c, cid, &b)?,
    );
    Ok(page("Board", &Frame::of(&c), &main))
}

fn board_html(c: &Client, cid: ChannelId, b: &Board) -> Result<String, Refused> {
    let mut out = format!("<p>The board at {}.</p>\n", time(Timestamp(b.at_ms)));
    if b.stubs > 0 {
        out.push_str(&format!(
            "<p class=\"stubs\">{}</p>\n",
            esc(&terms::stubs_notice(b.stubs))
        ));
    }
    let show = |ms: i64| terms::utc(ms);
    out.push_str(&format!("<h2>Assurances ({})</h2>\n", b.assurances.len()));
    if b.assurances.is_empty() {
        out.push_str("<p>None yet.</p>\n");
    }
    for a in &b.assurances {
        let to: Vec<String> = a
            .beneficiaries
            .iter()
            .map(|x| bdi(&terms::actor(x)))
            .collect();
        let lines = terms::history(a, &show);
        out.push_str(&commitment(
            c,
            cid,
            Head {
                kind: "Assurance",
                hex: &a.id,
                issuer: &a.issuer,
                to: &to.join(", "),
                state: a.state.words(),
                since: a.since_ms,
                until: a.valid_until_ms,
                wording: &a.wording,
            },
            &Structured::Assurance(a.assurance.clone()),
            &lines,
            Refs::Assurance,
        ));
    }
    out.push_str(&format!("<h2>Red lines ({})</h2>\n", b.red_lines.len()));
    if b.red_lines.is_empty() {
        out.push_str("<p>None yet.</p>\n");
    }
    for r in &b.red_lines {
        let lines: Vec<String> = r
            .schedule
            .iter()
            .map(|x| terms::scheduled(x, &show))
            .collect();
        out.push_str(&commitment(
            c,
            cid,
            Head {
                kind: "Red line",
                hex: &r.id,
                issuer: &r.issuer,
                to: "",
                state: r.state.words(),
                since: r.since_ms,
                until: r.red_line.valid_until_ms,
                wording: &r.red_line.wording,
            },
            &Structured::RedLine(r.red_line.clone()),
            &lines,
            Refs::Commitment,
        ));
    }
    if !b.awaiting.is_empty() {
        out.push_str("<h2>Awaiting an answer</h2>\n<ul class=\"awaiting\">\n");
        for w in &b.awaiting {
            let answer = match w.kind {
                _ if w.from != c.me().as_str() => String::new(),
                "allegation" => format!(
                    " <a href=\"/channels/{}/act/reply?about={}\">Answer it</a>",
                    cid.to_hex(),
                    esc(&w.id)
                ),
                "request" => format!(
                    " <a href=\"/channels/{}?reply={}#compose\">Reply</a>",
                    cid.to_hex(),
                    esc(&w.id)
                ),
                _ => String::new(),
            };
            out.push_str(&format!(
                "<li{cls}>{kind} from {from}: {id} due {due}{over}{answer}</li>\n",
                cls = if w.overdue { " class=\"overdue\"" } else { "" },
                kind = esc(w.kind),
                from = bdi(&w.from),
                id = id(&w.id, 8),
                due = time(Timestamp(w.due_ms)),
                over = if w.overdue {
                    " <strong>OVERDUE</strong>"
                } else {
                    ""
                },
            ));
        }
        out.push_str("</ul>\n");
    }
    if !b.relations.is_empty() {
        out.push_str("<h2>Relations</h2>\n<ul class=\"relations\">\n");
        for r in &b.relations {
            let disputed = if r.disputed_by.is_empty() {
                String::new()
            } else {
                format!(
                    "; <strong>disputed</strong> by {}",
                    r.disputed_by
                        .iter()
                        .map(|d| bdi(d))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            out.push_str(&format!(
                "<li>{} {} {} (declared by {}{disputed})</li>\n",
                bdi(&terms::actor(&r.subject)),
                relation_words(r.relation),
                bdi(&terms::actor(&r.object)),
                bdi(&r.by)
            ));
        }
        out.push_str("</ul>\n");
    }
    if !b.unauthorized.is_empty() {
        out.push_str("<h2>Ignored acts</h2>\n<ul class=\"ignored\">\n");
        for u in &b.unauthorized {
            out.push_str(&format!(
                "<li>{} ({}): {}</li>\n",
                id(&u.message, 8),
                time(Timestamp(u.sent_at_ms)),
                esc(&u.words)
            ));
        }
        out.push_str("</ul>\n");
    }
    Ok(out)
}

/// A commitment's heading.
struct Head<'a> {
    kind: &'a str,
    hex: &'a str,
    issuer: &'a str,
    /// Beneficiaries, already HTML.
    to: &'a str,
    state: &'static str,
    since: Option<i64>,
    /// Valid until (none: until revoked).
    until: Option<i64>,
    wording: &'a str,
}

fn commitment(
    c: &Client,
    cid: ChannelId,
    h: Head<'_>,
    body: &Structured,
    lines: &[String],
    refs: Refs,
) -> String {
    let rows = crate::html::terms(body);
    let history: String = lines
        .iter()
        .map(|l| format!("<li>{}</li>\n", esc(l)))
        .collect();
    let to = if h.to.is_empty() {
        String::new()
    } else {
        format!(" to {}", h.to)
    };
    let since = h
        .since
        .map_or(String::new(), |t| format!(" since {}", time(Timestamp(t))));
    let until = match h.until {
        Some(t) => format!("; valid until {}", time(Timestamp(t))),
        None => "; until revoked".to_string(),
    };
    format!(
        r#"<article class="commitment" id="c-{hex}">
<h3>{kind} {short} by {issuer}{to}: <span class="state state-{state}">{state}</span>{since}{until}</h3>
<blockquote dir="auto">{wording}</blockquote>
<details id="terms-{hex}" open><summary>Terms</summary>{rows}</details>
{history}{acts}</article>
"#,
        hex = esc(h.hex),
        kind = h.kind,
        short = id(h.hex, 8),
        issuer = bdi(h.issuer),
        state = h.state,
        wording = esc(h.wording),
        history = if history.is_empty() {
            String::new()
        } else {
            format!("<ul class=\"history\">\n{history}</ul>\n")
        },
        acts = acts_on(c, cid, h.hex, refs),
    )
}

/// Links to the acts this member may make on the commitment `hex`.
fn acts_on(c: &Client, cid: ChannelId, hex: &str, refs: Refs) -> String {
    let links: Vec<String> = FORMS
        .iter()
        .filter(|f| {
            f.target().is_some_and(|(_, r)| {
                let value = match r {
                    Refs::Commitment if refs == Refs::Commitment => format!("red_line:{hex}"),
                    Refs::Commitment => format!("assurance:{hex}"),
                    Refs::Assurance if refs == Refs::Assurance => hex.to_string(),
                    _ => return false,
                };
                forms::allowed(c, cid, f, &value)
            })
        })
        .map(|f| {
            format!(
                "<a href=\"/channels/{}/act/{}?about={}\">{}</a>",
                cid.to_hex(),
                f.slug,
                esc(hex),
                f.title
            )
        })
        .collect();
    if links.is_empty() {
        return String::new();
    }
    format!("<p class=\"acts\">{}</p>\n", links.join(" · "))
}
