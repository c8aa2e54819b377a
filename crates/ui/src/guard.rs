//! The checks every request passes before a view or an action sees it,
//! and the headers every response carries.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::access::Denied;
use crate::html::Refused;
use crate::{AppState, Notice};

/// The cookie that carries the browser session's token, named after the
/// port: browsers send a cookie to every port of a host, so two runs (or
/// any other local server the browser visits) never see each other's
/// under their own name.
pub fn cookie_name(port: u16) -> String {
    format!("backchannel_ui_{port}")
}

/// Sent by the page's script on its live refreshes: not activity, so an
/// unattended tab does not keep the session alive.
pub const REFRESH_HEADER: &str = "x-backchannel-refresh";

/// No inline script or style, nothing from elsewhere, no framing.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Paths served without a session: the launch exchange and the static
/// assets (no data in them).
fn is_public(path: &str) -> bool {
    path == "/launch" || path == "/favicon.ico" || path.starts_with("/assets/")
}

/// Checks Host, Origin and the session, then sets the headers.
pub async fn guard(State(s): State<AppState>, req: Request, next: Next) -> Response {
    let mut response = match check(&s, &req) {
        Ok(()) => next.run(req).await,
        Err(refused) => refused.into_response(),
    };
    secure(response.headers_mut());
    response
}

fn check(s: &AppState, req: &Request) -> Result<(), Refused> {
    let headers = req.headers();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if host != Some(s.host.as_str()) {
        return Err(Refused::new(
            StatusCode::MISDIRECTED_REQUEST,
            "wrong_host",
            "Not this address",
            &format!(
                "This interface answers only at http://{}/ (the page asked for {}); a page on another site cannot reach it.",
                s.host,
                host.unwrap_or("no host")
            ),
        ));
    }
    // A browser says where a request comes from: only the page itself
    // (same-origin) or the person (none: a typed or opened link) may ask.
    // Other ports of 127.0.0.1 are "same-site", and refused too.
    let site = headers.get("sec-fetch-site").and_then(|h| h.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        return Err(Refused::new(
            StatusCode::FORBIDDEN,
            "wrong_site",
            "Refused",
            "This request came from another site, so it was refused. Use the page at the address `backchannel ui` printed.",
        ));
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD);
    if changes_state {
        let origin = headers.get(header::ORIGIN).and_then(|h| h.to_str().ok());
        if origin != Some(s.origin.as_str()) {
            return Err(Refused::new(
                StatusCode::FORBIDDEN,
                "wrong_origin",
                "Refused",
                "This form did not come from the interface's own page, so nothing was done. Use the page at the address `backchannel ui` printed.",
            ));
        }
    }
    let path = req.uri().path();
    if is_public(path) {
        return Ok(());
    }
    // The live stream and the refreshes it causes are not activity: an
    // open tab alone does not keep the session alive.
    let touch = path != "/events" && !headers.contains_key(REFRESH_HEADER);
    let now = (s.clock)();
    let admitted = s
        .access()
        .admit(token(headers, s.port).as_deref(), now, touch);
    match admitted {
        Ok(()) => Ok(()),
        Err(denied) => {
            if denied == Denied::Idle {
                s.notice(Notice::SessionEnded(s.access().idle()));
            }
            Err(Refused::new(
                StatusCode::UNAUTHORIZED,
                match denied {
                    Denied::Idle => "session_idle",
                    Denied::NoSession => "no_session",
                },
                "Open the interface from its link",
                match denied {
                    Denied::Idle => "The browser session ended after being idle. Press Enter where `backchannel ui` runs for a new link, and open it.",
                    Denied::NoSession => "This browser holds no session. Open the link `backchannel ui` printed on its terminal (press Enter there for a new one).",
                },
            ))
        }
    }
}

/// The session token from the request's cookies.
pub fn token(headers: &HeaderMap, port: u16) -> Option<String> {
    let name = cookie_name(port);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn secure(h: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, name: header::HeaderName, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_SECURITY_POLICY, CSP);
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_FRAME_OPTIONS, "DENY");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Not `no-referrer`: under it a browser sends `Origin: null` even on
    // its own same-origin forms, which the Origin check must refuse.
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        header::HeaderName::from_static("cross-origin-opener-policy"),
        "same-origin",
    );
    set(
        h,
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    // No CORS, ever: other origins get nothing they may read.
    h.remove(header::ACCESS_CONTROL_ALLOW_ORIGIN);
}
