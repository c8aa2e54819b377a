//! Escrowed exchanges of a channel: open one, seal and submit an offer,
//! withdraw it, and ask for the status, which at release opens the
//! others' offers and shows who confirmed receiving yours.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use backchannel_client::{Client, ExchangeState, ExchangeView};
use backchannel_protocol::{ChannelId, ExchangeId, Handle, Timestamp};

use crate::forms::Values;
use crate::html::{bdi, esc, id, page, time, Frame, Refused};
use crate::views::{channel_id, channel_nav, view_of};
use crate::AppState;

fn exchange_id(hex: &str) -> Result<ExchangeId, Refused> {
    ExchangeId::from_hex(hex).map_err(|_| Refused::input("that is not an exchange id"))
}

/// `/channels/{id}/exchanges`.
pub async fn exchanges(
    State(s): State<AppState>,
    Path(hex): Path<String>,
) -> Result<Html<String>, Refused> {
    let cid = channel_id(&hex)?;
    let c = s.shared.lock().await;
    let v = view_of(&c, cid)?;
    let mut main = format!(
        "<h1>Exchanges in <bdi>{}</bdi></h1>\n{}<p>Each participant seals an offer; the relay releases them all at once when all are in, and destroys them if the deadline passes first. Until release nobody learns anything, not even whether the others submitted.</p>\n<section id=\"live-exchanges\" data-live aria-label=\"Exchanges\">\n",
        esc(&v.title),
        channel_nav(cid, "exchanges")
    );
    main.push_str(&list_html(&c, cid));
    main.push_str("</section>\n");
    if v.status == "active" {
        main.push_str(&create_html(&c, &v, cid));
    }
    Ok(page("Exchanges", &Frame::of(&c), &main))
}

fn list_html(c: &Client, cid: ChannelId) -> String {
    let mine: Vec<_> = c
        .exchanges()
        .into_iter()
        .filter(|x| x.channel_id == cid)
        .collect();
    if mine.is_empty() {
        return "<p>No exchange in this channel yet.</p>\n".into();
    }
    let mut out = String::from("<ul class=\"exchanges\">\n");
    for x in mine {
        let xhex = x.exchange_id.to_hex();
        let state = match x.state {
            ExchangeState::Open => "open",
            ExchangeState::PastDeadline => "past its deadline (destroyed unless released)",
            ExchangeState::Released => "released",
        };
        let among: Vec<String> = x.participants.iter().map(|p| bdi(p.as_str())).collect();
        let base = format!("/channels/{}/exchanges/{xhex}", cid.to_hex());
        let forms = if x.participants.contains(c.me()) && x.state == ExchangeState::Open {
            format!(
                r#"<form method="post" action="{base}/submit">
<label for="offer-{xhex}">Your offer (sealed for each other participant; a new one replaces the last)</label>
<textarea id="offer-{xhex}" name="offer" rows="2" required dir="auto"></textarea>
<button type="submit">Seal and submit</button>
</form>
<form method="post" action="{base}/withdraw" data-confirm="Withdraw your offer from this exchange?"><button type="submit">Withdraw my offer</button></form>
"#
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            r#"<li class="exchange" id="x-{xhex}">exchange {short} among {among}: <strong>{state}</strong>, deadline {deadline}
<blockquote dir="auto">{terms}</blockquote>
{forms}<form method="post" action="{base}/status"><button type="submit">Check the status</button></form>
</li>
"#,
            short = id(&xhex, 8),
            among = among.join(", "),
            deadline = time(Timestamp(x.deadline_ms)),
            terms = esc(&x.terms),
        ));
    }
    out.push_str("</ul>\n");
    out
}

fn create_html(c: &Client, v: &backchannel_client::ChannelView, cid: ChannelId) -> String {
    let others: String = v
        .members
        .iter()
        .filter(|m| m.handle != c.me().as_str())
        .map(|m| {
            format!(
                "<label class=\"check\"><input type=\"checkbox\" name=\"with\" value=\"{h}\"> {} ({})</label>\n",
                bdi(&m.handle),
                esc(m.role),
                h = esc(&m.handle)
            )
        })
        .collect();
    format!(
        r#"<section aria-labelledby="create-h">
<h2 id="create-h">Open an exchange</h2>
<form method="post" action="/channels/{hex}/exchanges" class="act">
<fieldset><legend>With</legend>
{others}</fieldset>
<div class="field"><label for="terms">Terms, in words (their digest binds every offer)</label><textarea id="terms" name="terms" rows="2" required dir="auto"></textarea></div>
<div class="field"><label for="deadline">Deadline (offers are destroyed unless all are in by then)</label><input id="deadline" name="deadline" value="+24h" required><small>now, +2h, +3d, 2026-12-03T10:00Z or with an offset</small></div>
<button type="submit">Open the exchange</button>
</form>
</section>
"#,
        hex = cid.to_hex()
    )
}

/// `POST /channels/{id}/exchanges`: opens one.
pub async fn create(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, Refused> {
    let cid = channel_id(&hex)?;
    let values = Values(pairs);
    let with: Vec<Handle> = values
        .0
        .iter()
        .filter(|(n, _)| n == "with")
        .map(|(_, h)| Handle::new(h).map_err(|_| Refused::input("that is not a member's handle")))
        .collect::<Result<_, _>>()?;
    if with.is_empty() {
        return Err(Refused::input("choose at least one other participant"));
    }
    let terms = values.get("terms").replace("\r\n", "\n");
    if terms.is_empty() {
        return Err(Refused::input(
            "write the terms: their digest binds every offer",
        ));
    }
    let x = {
        let mut c = s.shared.lock().await;
        let deadline = backchannel_client::time::parse_time(values.get("deadline"), c.now())
            .map_err(|e| Refused::input(&format!("deadline: {e}")))?;
        c.exchange_create(cid, &with, &terms, Timestamp(deadline))
            .await?
    };
    s.shared.changed();
    Ok(Redirect::to(&format!(
        "/channels/{}/exchanges#x-{}",
        cid.to_hex(),
        x.to_hex()
    ))
    .into_response())
}

/// The offer field of a submission.
#[derive(Debug, serde::Deserialize)]
pub struct Offer {
    offer: String,
}

/// `POST /channels/{id}/exchanges/{x}/submit`.
pub async fn submit(
    State(s): State<AppState>,
    Path((hex, xhex)): Path<(String, String)>,
    Form(o): Form<Offer>,
) -> Result<Response, Refused> {
    let offer = o.offer.replace("\r\n", "\n");
    if offer.trim().is_empty() {
        return Err(Refused::input("the offer is empty"));
    }
    act(s, &hex, &xhex, Act::Submit(offer)).await
}

/// `POST /channels/{id}/exchanges/{x}/withdraw`.
pub async fn withdraw(
    State(s): State<AppState>,
    Path((hex, xhex)): Path<(String, String)>,
) -> Result<Response, Refused> {
    act(s, &hex, &xhex, Act::Withdraw).await
}

/// `POST /channels/{id}/exchanges/{x}/status`: asks the relay (and at
/// release opens the offers and confirms them in the channel).
pub async fn status(
    State(s): State<AppState>,
    Path((hex, xhex)): Path<(String, String)>,
) -> Result<Response, Refused> {
    act(s, &hex, &xhex, Act::Status).await
}

enum Act {
    Submit(String),
    Withdraw,
    Status,
}

async fn act(s: AppState, hex: &str, xhex: &str, what: Act) -> Result<Response, Refused> {
    let cid = channel_id(hex)?;
    let x = exchange_id(xhex)?;
    let mut c = s.shared.lock().await;
    if !c
        .exchanges()
        .iter()
        .any(|e| e.exchange_id == x && e.channel_id == cid)
    {
        return Err(Refused::new(
            StatusCode::NOT_FOUND,
            "unknown_exchange",
            "No such exchange",
            "This channel announced no exchange with that id here.",
        ));
    }
    let view = match what {
        Act::Submit(offer) => c.exchange_submit(x, &offer).await?,
        Act::Withdraw => c.exchange_withdraw(x).await?,
        Act::Status => c.exchange_status(x).await?,
    };
    s.shared.changed();
    let main = format!(
        "<h1>Exchange {}</h1>\n{}{}<p><a href=\"/channels/{hex}/exchanges\">Back to the exchanges</a></p>\n",
        id(xhex, 8),
        channel_nav(cid, "exchanges"),
        view_html(&view)
    );
    Ok(page("Exchange", &Frame::of(&c), &main).into_response())
}

fn view_html(v: &ExchangeView) -> String {
    let st = &v.status;
    let mut out = format!(
        "<p class=\"exchange-state\">State: <strong>{}</strong>, deadline {}; among {}; your offer {}.</p>\n",
        esc(&st.state),
        time(Timestamp(st.deadline_ms)),
        st.participants.iter().map(|p| bdi(p)).collect::<Vec<_>>().join(", "),
        if st.you_submitted { "is in" } else { "is not in" }
    );
    if !v.offers.is_empty() {
        out.push_str("<h2>Released offers</h2>\n<ul class=\"offers\">\n");
        for o in &v.offers {
            out.push_str(&format!(
                "<li>from {}: <q dir=\"auto\">{}</q>{}</li>\n",
                bdi(&o.from),
                esc(o.offer.as_deref().unwrap_or("[nothing readable]")),
                o.digest
                    .as_deref()
                    .map_or(String::new(), |d| format!(" digest {}", id(d, 16)))
            ));
        }
        out.push_str("</ul>\n");
    }
    if !v.confirmations.is_empty() {
        out.push_str("<h2>Confirmations of your offer</h2>\n<ul class=\"confirmations\">\n");
        for c in &v.confirmations {
            let alert = if c.matches == Some(false) {
                ": see the alerts"
            } else {
                ""
            };
            out.push_str(&format!("<li>{} {}{alert}</li>\n", bdi(&c.by), c.words()));
        }
        out.push_str("</ul>\n");
    }
    for p in &v.problems {
        out.push_str(&format!(
            "<p class=\"error\" role=\"alert\">{}</p>\n",
            esc(p)
        ));
    }
    out
}
