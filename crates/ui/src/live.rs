//! `/events`: a server-sent event `changed` (its data never empty: a
//! browser drops an event with no data) whenever the client's state
//! moved, so the page refreshes its live sections. The stream checks the
//! session at every event and every keep-alive, and ends with it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use futures_util::stream::{self, Stream};
use tokio::sync::broadcast::error::RecvError;

use crate::access::Denied;
use crate::guard::token;
use crate::{AppState, Notice};

/// How often the stream re-checks the session when nothing changes.
const RECHECK: Duration = Duration::from_secs(15);

/// The stream of `changed` events.
pub async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let token = token(&headers, s.port);
    let rx = s.shared.subscribe();
    let stopping = s.stopping.subscribe();
    let state = (s, token, rx, stopping);
    let stream = stream::unfold(state, |(s, token, mut rx, mut stopping)| async move {
        if *stopping.borrow() {
            return None;
        }
        let event = tokio::select! {
            got = rx.recv() => match got {
                Ok(()) | Err(RecvError::Lagged(_)) => Some(Event::default().event("changed").data("changed")),
                Err(RecvError::Closed) => return None,
            },
            () = tokio::time::sleep(RECHECK) => None,
            _ = stopping.changed() => return None,
        };
        let now = (s.clock)();
        match s.access().admit(token.as_deref(), now, false) {
            Ok(()) => {}
            Err(Denied::Idle) => {
                s.notice(Notice::SessionEnded(s.access().idle()));
                return None;
            }
            Err(Denied::NoSession) => return None,
        }
        match event {
            Some(e) => Some((Ok(e), (s, token, rx, stopping))),
            // A comment keeps proxies and the browser from timing out.
            None => Some((
                Ok(Event::default().comment("alive")),
                (s, token, rx, stopping),
            )),
        }
    });
    Sse::new(stream)
}
