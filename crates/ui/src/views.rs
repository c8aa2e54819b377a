//! The pages: channels, one channel (consent, members, transcript,
//! compose), the preview of a message, alerts, safety numbers, the outbox.
//! Sections marked `data-live` are replaced in place when something
//! changes; the compose form is not, so typing is never lost.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Html;
use axum::Form;
use backchannel_client::{ChannelView, Client, Delivery, LogEntry};
use backchannel_protocol::member::{Alert, AlertKind};
use backchannel_protocol::{duration_words, ChannelId, MessageId};
use serde::Deserialize;

use crate::html::{bdi, esc, id, page, time, Frame, Refused};
use crate::AppState;

pub(crate) fn channel_id(hex: &str) -> Result<ChannelId, Refused> {
    ChannelId::from_hex(hex).map_err(|_| Refused::input("that is not a channel id"))
}

pub(crate) fn message_id(hex: &str) -> Result<MessageId, Refused> {
    MessageId::from_hex(hex).map_err(|_| Refused::input("that is not a message id"))
}

pub(crate) fn view_of(c: &Client, cid: ChannelId) -> Result<ChannelView, Refused> {
    c.channels()?
        .into_iter()
        .find(|v| v.channel_id == cid.to_hex())
        .ok_or_else(|| {
            Refused::new(
                StatusCode::NOT_FOUND,
                "unknown_channel",
                "No such channel",
                "This store knows no channel with that id. A sync fetches new proposals.",
            )
        })
}

/// The pages of one channel, `current` marked.
pub(crate) fn channel_nav(cid: ChannelId, current: &str) -> String {
    let hex = cid.to_hex();
    let links = [
        ("", "Transcript"),
        ("/board", "Board"),
        ("/act", "Act"),
        ("/whatif", "What if"),
        ("/exchanges", "Exchanges"),
    ];
    let items: Vec<String> = links
        .iter()
        .map(|(path, words)| {
            let here = if path.trim_start_matches('/') == current {
                " aria-current=\"page\""
            } else {
                ""
            };
            format!("<a href=\"/channels/{hex}{path}\"{here}>{words}</a>")
        })
        .collect();
    format!(
        "<nav class=\"channel-nav\" aria-label=\"This channel\">{}</nav>\n",
        items.join(" ")
    )
}

/// Who gets what of a message sent in `v`: the text, or a stub.
pub(crate) fn recipients(c: &Client, v: &ChannelView) -> String {
    let mut to = Vec::new();
    for m in v.members.iter().filter(|m| m.handle != c.me().as_str()) {
        let gets = if m.role == "mediator" && !v.mediator_reads {
            "a stub (digest only)"
        } else {
            "the text"
        };
        to.push(format!(
            "<li>{} ({}) gets {gets}</li>",
            bdi(&m.handle),
            m.role
        ));
    }
    to.join("")
}

/// `/`: every channel, with what awaits this member.
pub async fn channels(State(s): State<AppState>) -> Result<Html<String>, Refused> {
    let c = s.shared.lock().await;
    let views = c.channels()?;
    let mut main = String::from("<h1>Channels</h1>\n<section id=\"live-channels\" data-live>\n");
    if views.is_empty() {
        main.push_str(
            "<p>No channels yet. A mediator's proposal appears here as soon as it arrives.</p>\n",
        );
    }
    main.push_str("<ul class=\"channels\">\n");
    for v in &views {
        let cid = channel_id(&v.channel_id)?;
        let awaits = c.consent(cid)?.is_some_and(|p| p.awaits_you);
        let alerts = c
            .open_alerts()
            .iter()
            .filter(|a| a.channel == Some(cid))
            .count();
        main.push_str(&format!(
            "<li><a href=\"/channels/{hex}\">{title}</a> {id} <span class=\"status\">{status}</span>{awaits}{alerts}<br><span class=\"members\">{members}</span> · {n} messages</li>\n",
            hex = v.channel_id,
            title = bdi(if v.title.is_empty() { "(untitled)" } else { &v.title }),
            id = id(&v.channel_id, 8),
            status = esc(&v.status),
            awaits = if awaits { " <strong class=\"awaits\">awaits your consent</strong>" } else { "" },
            alerts = if alerts > 0 { format!(" <span class=\"count alert\">{alerts} alert(s)</span>") } else { String::new() },
            members = v.members.iter().map(|m| format!("{} ({})", bdi(&m.handle), m.role)).collect::<Vec<_>>().join(", "),
            n = v.messages,
        ));
    }
    main.push_str("</ul>\n</section>\n");
    Ok(page("Channels", &Frame::of(&c), &main))
}

#[derive(Debug, Deserialize)]
pub struct ChannelQuery {
    /// A message to answer, preselected in the compose form.
    reply: Option<String>,
}

/// `/channels/{id}`.
pub async fn channel(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Query(q): Query<ChannelQuery>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let title = if v.title.is_empty() {
        "(untitled)"
    } else {
        &v.title
    };
    let mut main = format!(
        "<h1>{}</h1>\n<p class=\"channel-id\">channel {}</p>\n{}",
        bdi(title),
        id(&v.channel_id, 16),
        channel_nav(cid, "")
    );
    main.push_str(&consent_section(&c, cid)?);
    main.push_str(&channel_alerts(&c, cid));
    main.push_str(&members_section(&c, &v));
    main.push_str(&history_section(&c, cid)?);
    main.push_str(&transcript_section(&c, cid)?);
    main.push_str(&compose_section(&c, &v, cid, q.reply.as_deref())?);
    Ok(page(title, &Frame::of(&c), &main))
}

fn consent_section(c: &Client, cid: ChannelId) -> Result<String, Refused> {
    let mut out =
        String::from("<section id=\"live-consent\" data-live aria-labelledby=\"consent-h\">\n");
    let Some(p) = c.consent(cid)? else {
        out.push_str(
            "<h2 id=\"consent-h\">Consent</h2>\n<p>Nothing awaits an answer.</p>\n</section>\n",
        );
        return Ok(out);
    };
    out.push_str(&format!(
        "<h2 id=\"consent-h\">Proposal {} awaits answers</h2>\n<p>Proposed by {} on {}. What it changes:</p>\n<ul class=\"statement\">\n",
        id(&p.digest.to_hex(), 12),
        bdi(&p.proposer.to_string()),
        time(p.sent_at)
    ));
    for line in &p.lines {
        out.push_str(&format!("<li dir=\"auto\">{}</li>\n", esc(line)));
    }
    out.push_str("</ul>\n<p>Answers: ");
    let answers: Vec<String> = p
        .answers
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                bdi(&a.party.to_string()),
                esc(&format!("{:?}", a.answer).to_lowercase())
            )
        })
        .collect();
    out.push_str(&answers.join(", "));
    out.push_str("</p>\n");
    if p.awaits_you {
        out.push_str(&format!(
            r#"<div class="answer">
<form method="post" action="/channels/{hex}/accept">
<input type="hidden" name="proposal" value="{digest}">
<button type="submit" class="primary">Accept exactly this proposal</button>
</form>
<form method="post" action="/channels/{hex}/decline" data-confirm="Declining cannot be undone: the proposal ends for everyone. Decline?">
<label for="reason">Reason for declining</label>
<input id="reason" name="reason" required dir="auto">
<button type="submit">Decline</button>
</form>
</div>
"#,
            hex = cid.to_hex(),
            digest = p.digest.to_hex()
        ));
    }
    out.push_str("</section>\n");
    Ok(out)
}

fn channel_alerts(c: &Client, cid: ChannelId) -> String {
    let open: Vec<Alert> = c
        .open_alerts()
        .into_iter()
        .filter(|a| a.channel == Some(cid))
        .collect();
    let mut out = String::from("<section id=\"live-channel-alerts\" data-live>\n");
    if let Some(b) = c.blocking_alert(&cid) {
        out.push_str(&format!(
            "<p class=\"blocked\" role=\"alert\"><strong>Sending is blocked in this channel.</strong> {} {}</p>\n",
            esc(&b.detail),
            esc(backchannel_client::advice(b.kind))
        ));
    }
    if !open.is_empty() {
        out.push_str("<h2>Alerts in this channel</h2>\n<ul class=\"alerts\">\n");
        for a in &open {
            out.push_str(&alert_item(a));
        }
        out.push_str("</ul>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The key state of a member as one word and its label.
fn key_state(c: &Client, handle: &str, label: &str) -> (&'static str, String) {
    if handle == c.me().as_str() {
        return ("self", "you".into());
    }
    let changed = c.open_alerts().iter().any(|a| {
        a.kind == AlertKind::KeyChanged
            && a.principal.as_ref().is_some_and(|p| p.as_str() == handle)
    });
    if changed {
        (
            "changed",
            "changed: the relay serves a new key; sending to it is blocked".into(),
        )
    } else if label == "verified" {
        ("verified", label.into())
    } else {
        ("introduced", label.into())
    }
}

fn members_section(c: &Client, v: &ChannelView) -> String {
    let mut out = format!(
        "<section id=\"live-members\" data-live aria-labelledby=\"members-h\">\n<h2 id=\"members-h\">Members</h2>\n<p>Status: {}. Epoch {}. The mediator {}; receipts are due within {}; a heartbeat every {}.</p>\n<table>\n<thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Role</th><th scope=\"col\">Answer</th><th scope=\"col\">Key</th></tr></thead>\n<tbody>\n",
        esc(&v.status),
        v.epoch,
        if v.mediator_reads { "reads content" } else { "gets stubs only (digests, never content)" },
        esc(&duration_words(v.receipt_deadline_s.into())),
        esc(&duration_words(v.heartbeat_interval_s.into())),
    );
    for m in &v.members {
        let (state, label) = key_state(c, &m.handle, &m.key);
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td dir=\"auto\">{}</td><td class=\"key {state}\" data-key=\"{state}\">{}</td></tr>\n",
            bdi(&m.handle),
            m.role,
            esc(&m.answer),
            esc(&label)
        ));
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

fn history_section(c: &Client, cid: ChannelId) -> Result<String, Refused> {
    let history = c.proposals(cid)?;
    let pending = c.consent(cid)?;
    let mut out = String::from("<section id=\"live-history\" data-live>\n<details id=\"history-details\">\n<summary>Epoch history</summary>\n<ol class=\"history\">\n");
    for h in &history {
        out.push_str(&format!(
            "<li>epoch {}: proposal {} by {}, {}: {}<ul>",
            h.opens_epoch,
            id(&h.digest.to_hex(), 12),
            bdi(&h.proposer.to_string()),
            time(h.sent_at),
            h.outcome(pending.as_ref())
        ));
        for line in h.lines.iter().skip(1) {
            out.push_str(&format!("<li dir=\"auto\">{}</li>", esc(line)));
        }
        out.push_str("</ul></li>\n");
    }
    out.push_str("</ol>\n</details>\n</section>\n");
    Ok(out)
}

fn transcript_section(c: &Client, cid: ChannelId) -> Result<String, Refused> {
    let log = c.log(Some(cid))?;
    let shown: Vec<&LogEntry> = log.iter().filter(|e| !e.is_bookkeeping()).collect();
    let held: BTreeSet<&str> = shown.iter().map(|e| e.message_id.as_str()).collect();
    let hidden = log.len() - shown.len();
    let mut out = String::from("<section id=\"live-transcript\" data-live aria-labelledby=\"transcript-h\">\n<h2 id=\"transcript-h\">Messages</h2>\n");
    if shown.is_empty() {
        out.push_str("<p>No messages yet.</p>\n");
    }
    out.push_str("<ol class=\"transcript\">\n");
    let mut threads = Threads::of(&shown);
    let item = |e: &LogEntry| message_item(c, e);
    // A reply sits under the message it answers; a reply to a message not
    // held here starts a thread of its own.
    for (i, e) in shown.iter().enumerate() {
        let top = e.in_reply_to.as_deref().is_none_or(|r| !held.contains(r));
        if top {
            threads.render(&item, i, &mut out, 0)?;
        }
    }
    // Replies in a cycle (a peer chooses its ids and what it answers) are
    // in no thread: they are shown anyway, never hidden.
    for i in 0..shown.len() {
        threads.render(&item, i, &mut out, 0)?;
    }
    out.push_str("</ol>\n");
    if hidden > 0 {
        out.push_str(&format!(
            "<p class=\"bookkeeping\">{hidden} receipt(s) and heartbeat(s) are not listed; what they confirm is shown under each message.</p>\n"
        ));
    }
    out.push_str("</section>\n");
    Ok(out)
}

/// Deep enough for any real exchange; deeper replies are listed flat.
const MAX_DEPTH: usize = 8;

/// The transcript's reply structure, each message rendered once.
struct Threads<'a> {
    entries: &'a [&'a LogEntry],
    /// A message's replies, by its id, in transcript order.
    replies: std::collections::HashMap<&'a str, Vec<usize>>,
    done: Vec<bool>,
}

impl<'a> Threads<'a> {
    fn of(entries: &'a [&'a LogEntry]) -> Threads<'a> {
        let mut replies: std::collections::HashMap<&str, Vec<usize>> = Default::default();
        for (i, e) in entries.iter().enumerate() {
            if let Some(r) = e.in_reply_to.as_deref() {
                replies.entry(r).or_default().push(i);
            }
        }
        Threads {
            entries,
            replies,
            done: vec![false; entries.len()],
        }
    }

    /// Message `i` and, under it, its replies not rendered yet; past
    /// [`MAX_DEPTH`] they follow it in the same list.
    fn render(
        &mut self,
        item: &dyn Fn(&LogEntry) -> Result<String, Refused>,
        i: usize,
        out: &mut String,
        depth: usize,
    ) -> Result<(), Refused> {
        if std::mem::replace(&mut self.done[i], true) {
            return Ok(());
        }
        let e = self.entries[i];
        out.push_str(&item(e)?);
        let replies: Vec<usize> = self
            .replies
            .get(e.message_id.as_str())
            .map(|r| r.iter().copied().filter(|&j| !self.done[j]).collect())
            .unwrap_or_default();
        if depth < MAX_DEPTH && !replies.is_empty() {
            out.push_str("<ol class=\"replies\">\n");
            for j in replies {
                self.render(item, j, out, depth + 1)?;
            }
            out.push_str("</ol>\n</li>\n");
        } else {
            out.push_str("</li>\n");
            for j in replies {
                self.render(item, j, out, depth)?;
            }
        }
        Ok(())
    }
}

/// One message, its `<li>` left open for its replies.
fn message_item(c: &Client, e: &LogEntry) -> Result<String, Refused> {
    let mid = message_id(&e.message_id)?;
    let body = match (&e.text, &e.summary, e.stub) {
        (Some(t), _, _) => format!("<p class=\"text\" dir=\"auto\">{}</p>", esc(t)),
        (None, Some(s), _) => format!("<p class=\"summary\" dir=\"auto\">{}</p>", esc(s)),
        (None, None, true) => format!(
            "<p class=\"stub\">Stub: this channel's policy gives you its digest, not its content (digest {}).</p>",
            id(&e.digest, 16)
        ),
        (None, None, false) => "<p class=\"stub\">(no readable content)</p>".into(),
    };
    let held = if e.held_back {
        "<p class=\"held\">Held back: an earlier message of this sender is missing.</p>"
    } else {
        ""
    };
    let mine = e.sender == c.me().as_str();
    let delivery = if mine {
        match c.delivery(mid) {
            Delivery::Sent => "taken by the relay".to_string(),
            Delivery::Queued { reason } => format!("in the outbox: {}", esc(&reason)),
            Delivery::Refused { reason } => format!("refused by the relay: {}", esc(&reason)),
        }
    } else {
        String::new()
    };
    let receipts: Vec<String> = c
        .receipts(mid)
        .iter()
        .map(|r| {
            let (class, word) = if r.received {
                ("received", "received")
            } else {
                ("awaited", "awaiting")
            };
            format!(
                "<span class=\"receipt {class}\" data-member=\"{}\">{} {word}</span>",
                esc(r.member.as_str()),
                bdi(r.member.as_str())
            )
        })
        .collect();
    let state = [delivery, receipts.join(" ")]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" · ");
    let kind = if e.kind == "text" {
        String::new()
    } else {
        format!(" · {}", esc(&e.kind))
    };
    // Only words are answered in the compose form (its reply list).
    let reply = if e.text.is_some() && !e.stub {
        format!(" · <a href=\"?reply={}#compose\">Reply</a>", e.message_id)
    } else {
        String::new()
    };
    Ok(format!(
        "<li class=\"msg{mine}\" id=\"m-{hex}\" data-kind=\"{kindattr}\">\n<article>\n<p class=\"meta\">{sender} · {when}{kind} · #{seq} e{epoch} · {short}{reply}</p>\n{body}{held}\n<p class=\"state\">{state}</p>\n</article>\n",
        mine = if mine { " mine" } else { "" },
        hex = e.message_id,
        kindattr = esc(&e.kind),
        sender = bdi(&e.sender),
        when = time(backchannel_protocol::Timestamp(e.sent_at_ms)),
        seq = e.seq,
        epoch = e.epoch,
        short = id(&e.message_id, 8),
    ))
}

fn compose_section(
    c: &Client,
    v: &ChannelView,
    cid: ChannelId,
    reply: Option<&str>,
) -> Result<String, Refused> {
    if v.status != "active" {
        return Ok("<section id=\"compose\"><p>Messages can be written once every party has accepted.</p></section>\n".into());
    }
    if c.blocking_alert(&cid).is_some() {
        return Ok("<section id=\"compose\"><p>Sending is blocked here until the alert above is dealt with.</p></section>\n".into());
    }
    let log = c.log(Some(cid))?;
    let mut options = String::from("<option value=\"\">nothing: a new thread</option>\n");
    for e in log.iter().rev().filter(|e| e.text.is_some()).take(30) {
        let words: String = e.text.as_deref().unwrap_or("").chars().take(60).collect();
        options.push_str(&format!(
            "<option value=\"{hex}\"{sel}>{sender}: {words}</option>\n",
            hex = e.message_id,
            sel = if reply == Some(e.message_id.as_str()) {
                " selected"
            } else {
                ""
            },
            sender = esc(&e.sender),
            words = esc(&words),
        ));
    }
    Ok(format!(
        r#"<section id="compose" aria-labelledby="compose-h">
<h2 id="compose-h">Write</h2>
<form method="post" action="/channels/{hex}/preview">
<label for="text">Message</label>
<textarea id="text" name="text" rows="4" required dir="auto"></textarea>
<label for="reply_to">In reply to</label>
<select id="reply_to" name="reply_to">
{options}</select>
<button type="submit">Preview</button>
</form>
</section>
"#,
        hex = cid.to_hex()
    ))
}

/// The compose form's fields.
#[derive(Debug, Deserialize)]
pub struct Compose {
    /// The text.
    pub text: String,
    /// The message answered, hex, or empty.
    #[serde(default)]
    pub reply_to: String,
}

impl Compose {
    /// The text with the line endings the CLI sends (browsers submit a
    /// textarea's lines ending in CR LF).
    pub fn text(&self) -> String {
        self.text.replace("\r\n", "\n")
    }

    /// The message answered, if any.
    pub fn reply_to(&self) -> Result<Option<MessageId>, Refused> {
        match self.reply_to.trim() {
            "" => Ok(None),
            hex => message_id(hex).map(Some),
        }
    }
}

/// `POST /channels/{id}/preview`: exactly what will be sent, to whom, then
/// the one button that sends it.
pub async fn preview(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Form(compose): Form<Compose>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let reply = compose.reply_to()?;
    if compose.text.trim().is_empty() {
        return Err(Refused::input("the message is empty: go back and write it"));
    }
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let answered = match reply {
        Some(r) => {
            let log = c.log(Some(cid))?;
            let quoted = log
                .iter()
                .find(|e| e.message_id == r.to_hex())
                .map(|e| {
                    format!(
                        "{}: {}",
                        bdi(&e.sender),
                        esc(e.text.as_deref().unwrap_or("(no text)"))
                    )
                })
                .unwrap_or_else(|| "a message not held here".into());
            format!(
                "<p>In reply to {} <q dir=\"auto\">{quoted}</q></p>",
                id(&r.to_hex(), 8)
            )
        }
        None => "<p>A new thread (not a reply).</p>".into(),
    };
    let main = format!(
        r#"<h1>Preview</h1>
<p>In {title}, encrypted to each member separately. Once sent it cannot be recalled.</p>
<ul>{to}</ul>
{answered}
<blockquote class="preview" dir="auto">{text}</blockquote>
<form method="post" action="/channels/{hex}/send">
<input type="hidden" name="text" value="{text}">
<input type="hidden" name="reply_to" value="{reply}">
<button type="submit" class="primary">Send</button>
<a href="/channels/{hex}">Cancel</a>
</form>
"#,
        title = bdi(&v.title),
        to = recipients(&c, &v),
        text = esc(&compose.text()),
        hex = cid.to_hex(),
        reply = reply.map(|r| r.to_hex()).unwrap_or_default(),
    );
    Ok(page("Preview", &Frame::of(&c), &main))
}

fn alert_item(a: &Alert) -> String {
    let label = if a.kind.is_notice() {
        "notice"
    } else {
        "ALERT"
    };
    let channel = a.channel.map_or(String::new(), |ch| {
        format!(
            " in channel <a href=\"/channels/{hex}\">{}</a>",
            id(&ch.to_hex(), 8),
            hex = ch.to_hex()
        )
    });
    let ids: Vec<String> = a.message_ids.iter().map(|m| id(&m.to_hex(), 8)).collect();
    let state = if a.dismissed {
        "dismissed".to_string()
    } else if let Some(why) = &a.cleared {
        format!("cleared: {}", esc(why))
    } else {
        String::new()
    };
    let dismiss = if a.is_open() {
        format!(
            "<form method=\"post\" action=\"/alerts/{}/dismiss\"><button type=\"submit\">Dismiss</button></form>",
            a.id.0
        )
    } else {
        format!("<p class=\"alert-state\">{state}</p>")
    };
    format!(
        "<li class=\"alert-item {cls}\" id=\"a-{n}\" data-kind=\"{code}\">\n<h3>{label} <code>{code}</code></h3>\n<p dir=\"auto\">{detail}</p>\n<p class=\"advice\"><strong>What to do:</strong> {advice}</p>\n<p class=\"meta\">raised {when}{channel}{messages}</p>\n{dismiss}\n</li>\n",
        cls = if a.kind.is_notice() { "notice" } else { "evidence" },
        n = a.id.0,
        code = a.kind.code(),
        detail = esc(&a.detail),
        advice = esc(backchannel_client::advice(a.kind)),
        when = time(a.raised_at),
        messages = if ids.is_empty() { String::new() } else { format!("; messages {}", ids.join(", ")) },
    )
}

/// `/alerts`: open alerts with what each means and what to do; past ones
/// folded away.
pub async fn alerts(State(s): State<AppState>) -> Result<Html<String>, Refused> {
    let c = s.shared.lock().await;
    let all = c.alerts()?;
    let (open, past): (Vec<&Alert>, Vec<&Alert>) = all.iter().partition(|a| a.is_open());
    let mut main = String::from("<h1>Alerts</h1>\n<section id=\"live-alerts\" data-live>\n");
    if open.is_empty() {
        main.push_str("<p>No open alerts: nothing the relay did looks wrong.</p>\n");
    } else {
        main.push_str("<p>An alert is evidence that the relay (or someone in front of it) withheld, altered, reordered or injected something, or that a member missed a deadline. A notice is not evidence.</p>\n<ul class=\"alerts\">\n");
        for a in open.iter().rev() {
            main.push_str(&alert_item(a));
        }
        main.push_str("</ul>\n");
    }
    if !past.is_empty() {
        main.push_str(&format!(
            "<details id=\"past-alerts\"><summary>{} dismissed or cleared</summary>\n<ul class=\"alerts past\">\n",
            past.len()
        ));
        for a in past.iter().rev() {
            main.push_str(&alert_item(a));
        }
        main.push_str("</ul>\n</details>\n");
    }
    main.push_str("</section>\n");
    Ok(page("Alerts", &Frame::of(&c), &main))
}

/// `/safety`: the safety number with each peer, to compare in person.
pub async fn safety(State(s): State<AppState>) -> Result<Html<String>, Refused> {
    let c = s.shared.lock().await;
    let mut main = String::from(
        "<h1>Safety numbers</h1>\n<p>Compare each number with that person over a path the intermediary does not control: in person, or a call where you know the voice. If all 60 digits match, no one is in the middle; mark the key verified.</p>\n<section id=\"live-safety\" data-live>\n<ul class=\"safety\">\n",
    );
    for peer in c.peers() {
        match c.safety_number(&peer) {
            Ok((number, trust)) => {
                let groups: Vec<String> = number
                    .to_string()
                    .lines()
                    .map(|l| format!("<span>{}</span>", esc(l)))
                    .collect();
                let verified = trust.label() == "verified";
                let form = if verified {
                    String::new()
                } else {
                    format!(
                        r#"<form method="post" action="/safety/verify">
<input type="hidden" name="peer" value="{p}">
<label><input type="checkbox" name="compared" value="yes" required> I compared all 60 digits with {b} over a path I trust</label>
<button type="submit">Mark verified</button>
</form>"#,
                        p = esc(peer.as_str()),
                        b = bdi(peer.as_str())
                    )
                };
                main.push_str(&format!(
                    "<li id=\"peer-{p}\"><h2>{b}</h2>\n<p class=\"number\" dir=\"ltr\">{n}</p>\n<p>Key: {label}</p>\n{form}</li>\n",
                    p = esc(peer.as_str()),
                    b = bdi(peer.as_str()),
                    n = groups.join(" "),
                    label = esc(&trust.label()),
                ));
            }
            Err(e) => main.push_str(&format!(
                "<li><h2>{}</h2><p>{}</p></li>\n",
                bdi(peer.as_str()),
                esc(&e.to_string())
            )),
        }
    }
    main.push_str("</ul>\n</section>\n");
    Ok(page("Safety numbers", &Frame::of(&c), &main))
}

/// `/outbox`: what was committed here and not yet taken by the relay.
pub async fn outbox(State(s): State<AppState>) -> Result<Html<String>, Refused> {
    let c = s.shared.lock().await;
    let queued = c.queued();
    let mut main = String::from("<h1>Outbox</h1>\n<section id=\"live-outbox\" data-live>\n");
    if queued.is_empty() {
        main.push_str("<p>Empty: the relay has taken everything you sent.</p>\n");
    } else {
        main.push_str("<p>Sent here, not yet taken by the relay. They go, exactly once, as soon as it answers.</p>\n<table>\n<thead><tr><th scope=\"col\">Message</th><th scope=\"col\">Channel</th><th scope=\"col\">Kind</th><th scope=\"col\">To</th><th scope=\"col\">Since</th><th scope=\"col\">Why it waits</th></tr></thead>\n<tbody>\n");
        for q in &queued {
            main.push_str(&format!(
                "<tr><td>{}</td><td><a href=\"/channels/{hex}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td dir=\"auto\">{}</td></tr>\n",
                id(&q.message_id.to_hex(), 8),
                id(&q.channel_id.to_hex(), 8),
                esc(&q.kind),
                q.recipients.iter().map(|r| bdi(r.as_str())).collect::<Vec<_>>().join(", "),
                time(q.queued_at),
                esc(&q.reason),
                hex = q.channel_id.to_hex(),
            ));
        }
        main.push_str("</tbody>\n</table>\n");
    }
    main.push_str("</section>\n");
    Ok(page("Outbox", &Frame::of(&c), &main))
}

/// Any other path.
pub async fn not_found() -> Refused {
    Refused::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "No such page",
        "There is nothing at this address.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, reply: Option<&str>) -> LogEntry {
        serde_json::from_value(serde_json::json!({
            "channel_id": "c", "message_id": id, "epoch": 1, "seq": 1, "sender": "red",
            "sent_at_ms": 0, "in_reply_to": reply, "kind": "text", "text": id,
            "stub": false, "digest": "d", "direction": "in", "held_back": false, "stored_at_ms": 0
        }))
        .expect("a log entry")
    }

    /// Every message id in the order rendered, and the nesting depth of each.
    fn rendered(entries: &[LogEntry]) -> String {
        let shown: Vec<&LogEntry> = entries.iter().collect();
        let held: BTreeSet<&str> = shown.iter().map(|e| e.message_id.as_str()).collect();
        let mut t = Threads::of(&shown);
        let item = |e: &LogEntry| Ok(format!("<li>{}", e.message_id));
        let mut out = String::new();
        for (i, e) in shown.iter().enumerate() {
            if e.in_reply_to.as_deref().is_none_or(|r| !held.contains(r)) {
                t.render(&item, i, &mut out, 0).unwrap();
            }
        }
        for i in 0..shown.len() {
            t.render(&item, i, &mut out, 0).unwrap();
        }
        out.replace('\n', "")
    }

    #[test]
    fn replies_sit_under_what_they_answer() {
        let got = rendered(&[
            entry("a", None),
            entry("b", Some("a")),
            entry("c", None),
            entry("d", Some("b")),
        ]);
        assert_eq!(
            got,
            "<li>a<ol class=\"replies\"><li>b<ol class=\"replies\"><li>d</li></ol></li></ol></li><li>c</li>"
        );
    }

    #[test]
    fn replies_in_a_cycle_or_deeper_than_the_limit_are_never_hidden() {
        // x answers y and y answers x; z answers itself: no thread holds them.
        let got = rendered(&[
            entry("x", Some("y")),
            entry("y", Some("x")),
            entry("z", Some("z")),
        ]);
        for id in ["x", "y", "z"] {
            assert_eq!(
                got.matches(&format!("<li>{id}")).count(),
                1,
                "{id} once: {got}"
            );
        }
        let chain: Vec<LogEntry> = (0..20)
            .map(|i| {
                entry(
                    &format!("m{i:02}"),
                    (i > 0).then(|| format!("m{:02}", i - 1)).as_deref(),
                )
            })
            .collect();
        let got = rendered(&chain);
        for i in 0..20 {
            assert_eq!(
                got.matches(&format!("<li>m{i:02}")).count(),
                1,
                "m{i:02}: {got}"
            );
        }
        assert_eq!(
            got.matches("<ol").count(),
            MAX_DEPTH,
            "nested to the limit, then flat"
        );
        assert_eq!(got.matches("<ol").count(), got.matches("</ol>").count());
    }
}
