//! How data reads in a terminal; `--json` prints the same data as JSON.

use backchannel_client::{ChannelView, LogEntry, MessageView, SyncReport};
use backchannel_protocol::commitments::fold::{Board, State};
use backchannel_protocol::commitments::structured::relation_words;
use backchannel_protocol::commitments::{terms, Structured};

use crate::time::{duration, show};

/// The line a sending command ends with: sent, or queued and why.
pub fn delivery(out: &serde_json::Value) -> String {
    let id = out["message_id"].as_str().unwrap_or("");
    match out["delivery"].as_str() {
        Some("queued") => format!(
            "queued {id}: will be delivered when the relay is reachable ({}). Do not send it again: `backchannel outbox` lists what waits.",
            out["reason"].as_str().unwrap_or("")
        ),
        Some("refused") => format!(
            "committed {id} to your outbox, but the relay refused it ({}). Do not send it again: `backchannel outbox` shows it, and each `sync` tries again.",
            out["reason"].as_str().unwrap_or("")
        ),
        _ => format!("sent {id}"),
    }
}

/// Prints `value` as pretty JSON.
pub fn json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    outln!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// One line per message, content indented below.
pub fn entry(e: &LogEntry) -> String {
    let id = &e.message_id[..8];
    let head = format!(
        "[{}] {} #{} e{} {} ({}){}",
        show(e.sent_at_ms),
        e.sender,
        e.seq,
        e.epoch,
        e.kind,
        id,
        e.in_reply_to
            .as_ref()
            .map_or(String::new(), |r| format!(", in reply to {}", &r[..8])),
    );
    let body = match (e.text.as_ref().or(e.summary.as_ref()), e.stub) {
        (Some(t), _) => format!("\n    {}", t.replace('\n', "\n    ")),
        (None, true) => format!(
            "\n    [stub: content not readable under this channel's policy; digest {}]",
            &e.digest[..16]
        ),
        (None, false) => String::new(),
    };
    let held = if e.held_back {
        "  [held back: an earlier message is missing]"
    } else {
        ""
    };
    format!("{head}{held}{body}")
}

/// A channel with its members.
pub fn channel(v: &ChannelView) -> String {
    let mut out = format!(
        "{}  {:?}  {}  epoch {}\n  policy: mediator {}, receipts due within {}, heartbeat every {}\n",
        v.channel_id,
        v.title,
        v.status,
        v.epoch,
        if v.mediator_reads { "reads content" } else { "gets stubs only" },
        duration(v.receipt_deadline_s.into()),
        duration(v.heartbeat_interval_s.into())
    );
    for m in &v.members {
        out.push_str(&format!(
            "  {:<12} {:<9} {:<24} key: {}\n",
            m.handle, m.role, m.answer, m.key
        ));
    }
    out
}

/// A proposal's statement, as a party reads it before it consents.
pub fn consent(s: &backchannel_client::ConsentStatement) -> String {
    let mut out = String::new();
    for line in &s.lines {
        out.push_str(&format!("  {line}\n"));
    }
    out
}

/// `channel show`.
pub fn channel_show(shown: &crate::cmd::channel::Shown) -> String {
    let mut out = shown.channel.as_ref().map_or(String::new(), channel);
    match &shown.pending {
        Some(p) => {
            out.push_str(&format!(
                "\nawaiting answers: proposal {} (digest {})\n",
                p.short_digest(),
                p.digest
            ));
            out.push_str(&consent(p));
            if p.awaits_you {
                out.push_str(&format!(
                    "  Your answer: `backchannel channel accept {} --yes {}` or `channel decline`.\n",
                    &p.channel_id.to_hex()[..8],
                    p.short_digest()
                ));
            }
        }
        None => out.push_str("\nnothing awaits an answer\n"),
    }
    if !shown.history.is_empty() {
        out.push_str("\nhistory:\n");
    }
    for h in &shown.history {
        let outcome = h.outcome(shown.pending.as_ref());
        out.push_str(&format!(
            "  epoch {}: proposal {} by {}, {}: {outcome}\n",
            h.opens_epoch,
            h.short_digest(),
            h.proposer,
            crate::time::show(h.sent_at.0)
        ));
        for line in h.lines.iter().skip(1) {
            out.push_str(&format!("    {line}\n"));
        }
    }
    out
}

/// A sync's report with the proposals it brought.
#[derive(Debug, serde::Deserialize)]
pub struct Synced {
    /// The report.
    #[serde(flatten)]
    pub report: SyncReport,
    /// Proposals that arrived and await this member's answer.
    #[serde(default)]
    pub awaiting_your_consent: Vec<backchannel_client::ConsentStatement>,
}

/// What a sync brought.
pub fn sync(synced: &Synced) -> String {
    let r = &synced.report;
    let mut out = String::new();
    for e in &r.received {
        out.push_str(&entry(e));
        out.push('\n');
    }
    for s in &synced.awaiting_your_consent {
        out.push_str("a proposal awaits your consent:\n");
        out.push_str(&consent(s));
        out.push_str(&format!(
            "  Read it, then `backchannel channel accept {}` (you will be asked to confirm).\n",
            &s.channel_id.to_hex()[..8]
        ));
    }
    for c in &r.activated {
        out.push_str(&format!(
            "channel {c} is now active: every party accepted\n"
        ));
    }
    for a in &r.alerts {
        out.push_str(&alert_line(a));
        out.push('\n');
    }
    if !r.not_sent.is_empty() {
        out.push_str(&format!(
            "NOT SENT (the store is stale): {}\n",
            r.not_sent.join(", ")
        ));
    }
    out.push_str(&format!(
        "synced: {} new, {} alerts, {} receipts sent, {} queued posts sent\n",
        r.received.len(),
        r.alerts.len(),
        r.receipts_sent,
        r.outbox_sent
    ));
    out
}

/// "assurance 3f2a9c1e by blue: active since …": a commitment's first line.
fn headline(kind: &str, id: &str, issuer: &str, s: State, since: Option<i64>) -> String {
    let since = since.map_or(String::new(), |t| format!(" since {}", show(t)));
    let id = id.get(..8).unwrap_or(id);
    format!("{kind} {id} by {issuer}: {}{since}\n", s.words())
}

/// The board of a channel: each commitment with its state and terms.
pub fn board(b: &Board) -> String {
    let mut out = format!("board at {}\n", show(b.at_ms));
    if b.stubs > 0 {
        out.push_str(&format!("  {}\n", terms::stubs_notice(b.stubs)));
    } else if b.assurances.is_empty() && b.red_lines.is_empty() {
        out.push_str("  no assurances or red lines yet\n");
    }
    for a in &b.assurances {
        out.push_str(&headline(
            "assurance",
            &a.id,
            &a.issuer,
            a.state,
            a.since_ms,
        ));
        for line in terms::history(a, &show) {
            out.push_str(&format!("    {line}\n"));
        }
        out.push_str(&self::terms(
            &terms::terms(&Structured::Assurance(a.assurance.clone())),
            "    ",
        ));
    }
    for r in &b.red_lines {
        out.push_str(&headline("red line", &r.id, &r.issuer, r.state, r.since_ms));
        for x in &r.schedule {
            out.push_str(&format!("    {}\n", terms::scheduled(x, &show)));
        }
        out.push_str(&self::terms(
            &terms::terms(&Structured::RedLine(r.red_line.clone())),
            "    ",
        ));
    }
    for r in &b.relations {
        let disputed = if r.disputed_by.is_empty() {
            String::new()
        } else {
            format!("; DISPUTED by {}", r.disputed_by.join(", "))
        };
        out.push_str(&format!(
            "relation: {} {} {} (declared by {}{disputed})\n",
            terms::actor(&r.subject),
            relation_words(r.relation),
            terms::actor(&r.object),
            r.by
        ));
    }
    for u in &b.unauthorized {
        out.push_str(&format!(
            "ignored {} ({}): {}\n",
            &u.message[..8],
            show(u.sent_at_ms),
            u.words
        ));
    }
    for w in &b.awaiting {
        out.push_str(&format!(
            "awaiting {} from {}: {} due {}{}\n",
            w.kind,
            w.from,
            &w.id[..8],
            show(w.due_ms),
            if w.overdue { " OVERDUE" } else { "" }
        ));
    }
    out
}

/// One message with everything known about it (`show`).
pub fn message_view(v: &MessageView) -> String {
    let mut out = entry(&v.message);
    out.push('\n');
    if let Some(a) = &v.assurance {
        out.push_str(&format!(
            "  state: {}{}\n",
            a.state.words(),
            a.since_ms
                .map_or(String::new(), |t| format!(" since {}", show(t)))
        ));
        for line in terms::history(a, &show) {
            out.push_str(&format!("  {line}\n"));
        }
    }
    if !v.terms.is_empty() {
        out.push_str("  terms:\n");
        out.push_str(&terms(&v.terms, "    "));
    }
    if !v.related.is_empty() {
        out.push_str("  since then in the channel:\n");
        for r in &v.related {
            out.push_str(&format!("    {}\n", entry(r).replace('\n', "\n    ")));
        }
    }
    out
}

/// An exchange in `exchange list`: id prefix, channel, participants,
/// deadline and state (as this store last saw it) on one line, the terms
/// below.
pub fn exchange(x: &backchannel_client::ExchangeSummary) -> String {
    use backchannel_client::ExchangeState;
    let state = match x.state {
        ExchangeState::Open => "open",
        ExchangeState::PastDeadline => "past its deadline (destroyed unless released)",
        ExchangeState::Released => "released",
    };
    format!(
        "exchange {}  channel {}  among {}  deadline {}  {state}\n    terms: {}\n",
        &x.exchange_id.to_hex()[..8],
        &x.channel_id.to_hex()[..8],
        x.participants
            .iter()
            .map(|p| p.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        show(x.deadline_ms),
        x.terms
    )
}

/// What `--dry-run` would have sent.
pub fn preview(p: &crate::store::Preview) -> String {
    let mut out = format!(
        "dry run: nothing was sent; it would send: {}, {}\n",
        p.kind,
        p.channel_id
            .map_or("proposing a new channel".into(), |c| format!(
                "in channel {c}"
            ))
    );
    out.push_str(&terms(&p.terms, "  "));
    out.push_str(&format!(
        "payload:\n{}\n",
        serde_json::to_string_pretty(&p.payload).unwrap_or_default()
    ));
    out
}

/// Terms one per line, `label: value`, each after `indent`.
pub fn terms(terms: &[backchannel_protocol::commitments::terms::Term], indent: &str) -> String {
    terms
        .iter()
        .map(|t| format!("{indent}{}: {}\n", t.label, t.value.replace('\n', "\n    ")))
        .collect()
}

/// Message ids, comma-separated (`-` for none).
pub fn ids(ids: &[backchannel_protocol::MessageId]) -> String {
    if ids.is_empty() {
        return "-".into();
    }
    ids.iter()
        .map(|m| m.to_hex())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One alert or notice on one line.
pub fn alert_line(a: &backchannel_protocol::member::Alert) -> String {
    let label = if a.kind.is_notice() {
        "notice"
    } else {
        "ALERT"
    };
    format!(
        "{label} {}: {} (messages {})",
        a.kind,
        a.detail,
        ids(&a.message_ids)
    )
}
