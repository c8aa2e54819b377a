//! Request handlers, one module per resource.

use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::error::ApiError;

pub(crate) mod accounts;
pub(crate) mod channels;
pub(crate) mod escrow;
pub(crate) mod keys;
pub(crate) mod mailbox;

/// The OpenAPI 3 document, written by hand beside the handlers; a test
/// checks that every path and method in it is routed.
pub const OPENAPI_JSON: &str = include_str!("../openapi.json");

pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
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
