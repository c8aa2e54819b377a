//! Around every request: the URI bound, the request timeout, one log line
//! (method, route, status, latency, principal; never a token or a body)
//! and the request counters.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use backchannel_protocol::Handle;

use crate::app::Relay;
use crate::error::ApiError;

/// Longest path and query, in bytes.
pub const URI_MAX_BYTES: usize = 4096;

/// Filled by the `Session` extractor, so the log line can name the principal.
#[derive(Clone, Debug, Default)]
pub(crate) struct Principal(Arc<OnceLock<Handle>>);

impl Principal {
    pub(crate) fn set(&self, h: &Handle) {
        let _ = self.0.set(h.clone());
    }
}

pub(crate) async fn observe(State(relay): State<Relay>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = route_of(req.uri().path());
    let principal = Principal::default();
    req.extensions_mut().insert(principal.clone());
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    let response = if uri_len > URI_MAX_BYTES {
        ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!("the path and query are over {URI_MAX_BYTES} bytes"),
        )
        .into_response()
    } else {
        let limit = Duration::from_millis(relay.config().request_timeout_ms);
        match tokio::time::timeout(limit, next.run(req)).await {
            Ok(r) => r,
            Err(_) => {
                relay.metrics().rejected("request_timeout");
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    format!(
                        "the request took over {} ms to arrive and be answered",
                        limit.as_millis()
                    ),
                )
                .into_response()
            }
        }
    };
    let status = response.status().as_u16();
    let took = started.elapsed();
    // Only the standard methods get a label of their own: hyper takes any
    // token as a method, and labels must not grow with what clients send.
    let label = match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "PATCH" => "PATCH",
        _ => "OTHER",
    };
    relay.metrics().request(label, route, status);
    if route == "/v1/channels/{channel_id}/messages" && status < 300 {
        relay.metrics().post(took);
    }
    if !relay.logs_requests() {
        return response;
    }
    let who = principal.0.get().map(Handle::as_str).unwrap_or("-");
    tracing::info!(
        target: "backchannel_relay::request",
        method = label,
        route = %route,
        status,
        latency_ms = took.as_secs_f64() * 1e3,
        principal = who,
        "request"
    );
    response
}

/// The route template of a path, for logs and metric labels: ids and
/// handles are not logged, and unknown paths share one label.
fn route_of(path: &str) -> &'static str {
    const ROUTES: &[&str] = &[
        "/v1/health",
        "/v1/ready",
        "/v1/openapi.json",
        "/v1/principals",
        "/v1/principals/{handle}",
        "/v1/login/challenge",
        "/v1/login",
        "/v1/keys",
        "/v1/keys/claim",
        "/v1/channels",
        "/v1/channels/{channel_id}",
        "/v1/channels/{channel_id}/members",
        "/v1/channels/{channel_id}/messages",
        "/v1/exchanges",
        "/v1/exchanges/{exchange_id}",
        "/v1/exchanges/{exchange_id}/offer",
        "/v1/mailbox",
        "/v1/mailbox/ack",
        "/v1/me",
        "/v1/ws",
    ];
    ROUTES
        .iter()
        .find(|r| {
            let (mut pattern, mut segments) = (r.split('/'), path.split('/'));
            loop {
                match (pattern.next(), segments.next()) {
                    (None, None) => return true,
                    (Some(p), Some(s)) if p.starts_with('{') && !s.is_empty() || p == s => {}
                    _ => return false,
                }
            }
        })
        .copied()
        .unwrap_or("unmatched")
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes_hide_ids_and_unknown_paths_share_a_label() {
        assert_eq!(
            route_of("/v1/channels/00ff/messages"),
            "/v1/channels/{channel_id}/messages"
        );
        assert_eq!(route_of("/v1/principals/blue"), "/v1/principals/{handle}");
        assert_eq!(route_of("/v1/login"), "/v1/login");
        assert_eq!(route_of("/v1/nope/x"), "unmatched");
        assert_eq!(route_of("/v1/principals/"), "unmatched");
    }
}
