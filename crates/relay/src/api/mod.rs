//! Request handlers, one module per resource.

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::app::Relay;
use crate::error::ApiError;

pub(crate) mod accounts;
pub(crate) mod channels;
pub(crate) mod escrow;
pub(crate) mod keys;
pub(crate) mod mailbox;

/// The OpenAPI 3 document, written by hand beside the handlers; a test
/// checks that every path and method in it is routed.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

/// Liveness, and whether new data is taken (`storage`: `ok` or `full`).
pub(crate) async fn health(State(relay): State<Relay>) -> Json<serde_json::Value> {
    let full = relay.storage_full().await;
    Json(serde_json::json!({
        "status": "ok",
        "storage": if full { "full" } else { "ok" },
    }))
}

/// Readiness: 200 once the database answers and while not stopping, else
/// 503 (a load balancer sends no new clients).
pub(crate) async fn ready(State(relay): State<Relay>) -> Result<Json<serde_json::Value>, ApiError> {
    if *relay.shutdown_signal().borrow() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the relay is stopping",
        ));
    }
    relay.run(|s| s.usage()).await.map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            "the relay's database does not answer",
        )
    })?;
    Ok(Json(serde_json::json!({"status": "ready"})))
}

pub(crate) async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        OPENAPI_JSON,
    )
        .into_response()
}

pub(crate) async fn not_found(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no route {}: see GET /v1/openapi.json", uri.path()),
    )
}

pub(crate) async fn method_not_allowed(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!(
            "{} does not take this method: see GET /v1/openapi.json",
            uri.path()
        ),
    )
}
