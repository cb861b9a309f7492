//! The API token: one layer over the write routes (see `router`), so that a route is
//! protected by being registered among them, not by each handler remembering to check.
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
