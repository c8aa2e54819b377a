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

use crate::guard::token;
use crate::AppState;

/// How often the stream re-checks the session when nothing changes.
const RECHECK: Duration = Duration::from_secs(15);

/// The stream of `changed` events.
pub async fn events(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let token = token(&headers);
    let rx = s.shared.subscribe();
    let stream = stream::unfold((s, token, rx), |(s, token, mut rx)| async move {
        let event = tokio::select! {
            got = rx.recv() => match got {
                Ok(()) | Err(RecvError::Lagged(_)) => Some(Event::default().event("changed").data("changed")),
                Err(RecvError::Closed) => return None,
            },
            () = tokio::time::sleep(RECHECK) => None,
        };
        let now = (s.clock)();
        if s.access().admit(token.as_deref(), now, false).is_err() {
            return None;
        }
        match event {
            Some(e) => Some((Ok(e), (s, token, rx))),
            // A comment keeps proxies and the browser from timing out.
            None => Some((Ok(Event::default().comment("alive")), (s, token, rx))),
        }
    });
    Sse::new(stream)
}
