//! What the forms do: redeem the launch code, send, answer a proposal,
//! dismiss an alert, mark a key verified. Each answers with a redirect to
//! the page that shows the result (so a reload never repeats the act).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use backchannel_protocol::member::AlertId;
use backchannel_protocol::{Digest, Handle};
use serde::Deserialize;

use crate::guard::cookie_name;
use crate::html::Refused;
use crate::views::{channel_id, Compose};
use crate::{AppState, Notice};

/// `GET /launch?code=…`: the code for a session cookie, once; then a
/// redirect that drops the code from the address bar.
pub async fn launch(
    State(s): State<AppState>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let given = q.get("code").map_or("", String::as_str);
    let now = (s.clock)();
    let redeemed = s.access().redeem(given, now);
    match redeemed {
        Ok(token) => {
            s.notice(Notice::Redeemed);
            let cookie = format!(
                "{}={}; HttpOnly; SameSite=Strict; Path=/",
                cookie_name(s.port),
                token.to_hex()
            );
            ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
        }
        Err(refusal) => {
            s.notice(Notice::Refused(refusal));
            Refused::new(
                StatusCode::FORBIDDEN,
                "launch_refused",
                "Launch link refused",
                refusal.words(),
            )
            .into_response()
        }
    }
}

fn done(path: String) -> Response {
    Redirect::to(&path).into_response()
}

/// `POST /channels/{id}/send`: the previewed text, sent.
pub async fn send(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Form(compose): Form<Compose>,
) -> Result<Response, Refused> {
    let cid = channel_id(&hex)?;
    let reply = compose.reply_to()?;
    let sent = {
        let mut c = s.shared.lock().await;
        c.send_text(cid, &compose.text(), reply).await
    };
    let id = sent?;
    s.shared.changed();
    Ok(done(format!(
        "/channels/{}#m-{}",
        cid.to_hex(),
        id.to_hex()
    )))
}

#[derive(Debug, Deserialize)]
pub struct AcceptForm {
    /// The digest of the proposal the page showed.
    proposal: String,
}

/// `POST /channels/{id}/accept`: accepts only the proposal shown.
pub async fn accept(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Form(form): Form<AcceptForm>,
) -> Result<Response, Refused> {
    let cid = channel_id(&hex)?;
    let digest = Digest::from_hex(form.proposal.trim())
        .map_err(|_| Refused::input("the proposal's digest is not 64 hex digits"))?;
    let accepted = {
        let mut c = s.shared.lock().await;
        c.accept(cid, digest).await
    };
    accepted?;
    s.shared.changed();
    Ok(done(format!("/channels/{}", cid.to_hex())))
}

#[derive(Debug, Deserialize)]
pub struct DeclineForm {
    /// Why, in the party's words.
    reason: String,
}

/// `POST /channels/{id}/decline`.
pub async fn decline(
    State(s): State<AppState>,
    Path(hex): Path<String>,
    Form(form): Form<DeclineForm>,
) -> Result<Response, Refused> {
    let cid = channel_id(&hex)?;
    if form.reason.trim().is_empty() {
        return Err(Refused::input(
            "say why you decline: the mediator and the parties read it",
        ));
    }
    let declined = {
        let mut c = s.shared.lock().await;
        c.decline(cid, form.reason.trim()).await
    };
    declined?;
    s.shared.changed();
    Ok(done(format!("/channels/{}", cid.to_hex())))
}

/// `POST /alerts/{id}/dismiss`.
pub async fn dismiss(State(s): State<AppState>, Path(n): Path<u64>) -> Result<Response, Refused> {
    let dismissed = s.shared.lock().await.dismiss_alert(AlertId(n));
    match dismissed {
        Ok(true) => {
            s.shared.changed();
            Ok(done("/alerts".into()))
        }
        Ok(false) => Err(Refused::new(
            StatusCode::NOT_FOUND,
            "unknown_alert",
            "No such alert",
            "This store holds no alert with that number.",
        )),
        Err(e) => Err(Refused::client(&e)),
    }
}

#[derive(Debug, Deserialize)]
pub struct VerifyForm {
    /// The peer.
    peer: String,
    /// The box ticked: the number was compared.
    #[serde(default)]
    compared: String,
}

/// `POST /safety/verify`: only with the box ticked.
pub async fn verify(
    State(s): State<AppState>,
    Form(form): Form<VerifyForm>,
) -> Result<Response, Refused> {
    if form.compared != "yes" {
        return Err(Refused::input(
            "tick the box once you have compared all 60 digits with that person; nothing was marked",
        ));
    }
    let peer = Handle::new(form.peer.trim()).map_err(|_| Refused::input("that is not a handle"))?;
    let marked = s.shared.lock().await.mark_verified(&peer);
    marked?;
    s.shared.changed();
    Ok(done(format!("/safety#peer-{peer}")))
}
