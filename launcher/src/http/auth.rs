//! The API token and the same-origin rule: layers over the write routes (see `router`), so
//! that a route is protected by being registered among them, not by each handler remembering
//! to check.
//!
//! HTTP layer: imports its parent's state and error type.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};

/// The bearer token from `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether `given` is the configured API token (always true when none is configured).
pub fn token_ok(token: Option<&str>, given: Option<&str>) -> bool {
    let Some(token) = token else {
        return true;
    };
    // Compare without an early exit, so the time taken does not reveal the token.
    given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    })
}

/// The middleware of the write routes: a request without the token (when one is configured)
/// is refused before its body is read or its path parsed.
pub async fn require_token(State(app): State<Shared>, request: Request, next: Next) -> Response {
    if token_ok(app.api_token.as_deref(), bearer(request.headers())) {
        next.run(request).await
    } else {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        )
        .into_response()
    }
}

/// What a write's body may be: what the write routes' extractors read.
const WRITE_CONTENT_TYPES: [&str; 2] = ["application/json", "multipart/form-data"];

/// The middleware of the write routes, after the token: a browser's write must come from the
/// launcher's own page (its `Origin` names the `Host` it was sent to; clients without a
/// browser send no `Origin`), and a typed body must be JSON or multipart: a cross-site HTML
/// form's urlencoded or text/plain body is refused before a handler reads it.
pub async fn require_same_origin(request: Request, next: Next) -> Response {
    let headers = request.headers();
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, host)| host);
        if origin_host.is_none() || origin_host != host {
            return ApiError(
                StatusCode::FORBIDDEN,
                format!(
                    "cross-origin write refused: Origin {} is not this launcher",
                    String::from_utf8_lossy(origin.as_bytes())
                ),
            )
            .into_response();
        }
    }
    // A write without a body (reload, reject, delete) sends no type; a cross-site form always
    // sends one (urlencoded, text/plain or multipart, the last refused by the Origin above).
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|t| t.to_str().unwrap_or(""));
    let allowed = content_type.is_none_or(|content_type| {
        WRITE_CONTENT_TYPES.iter().any(|t| {
            content_type
                .get(..t.len())
                .is_some_and(|prefix| prefix.eq_ignore_ascii_case(t))
        })
    });
    if !allowed {
        return ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a write's body must be application/json or multipart/form-data".into(),
        )
        .into_response();
    }
    next.run(request).await
}
