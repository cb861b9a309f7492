//! Sign-in and the accounts API: the login page, `POST /login` (a session cookie), `/logout`,
//! `/api/me`, and the admins' lists of users and API tokens.
//!
//! HTTP layer: imports its parent's state, table and error type, and the accounts service.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use super::auth::{Client, SESSION_COOKIE, session_cookie};
use super::{Access, ApiError, Routes, Shared};
use crate::accounts::{Principal, Role};

pub(super) fn routes() -> Routes {
    use Access::*;
    Routes::new()
        .add(Method::GET, "/login", Open, login_page)
        .add(Method::POST, "/login", Open, login)
        .add(Method::POST, "/logout", Open, logout)
        .add(Method::GET, "/api/me", Viewer, me)
        .add(Method::GET, "/api/users", Admin, users)
        .add(Method::GET, "/api/tokens", Admin, tokens)
        .add(Method::POST, "/api/tokens", Admin, create_token)
        .add(Method::DELETE, "/api/tokens/{id}", Admin, delete_token)
}

async fn login_page() -> Response {
    let mut response = Html(super::LOGIN_PAGE).into_response();
    // Its own inline script and style, by hash (the layer adds the main page's otherwise).
    response.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        super::headers::LOGIN_CONTENT_SECURITY_POLICY.clone(),
    );
    response
}

#[derive(Deserialize)]
struct Credentials {
    user: String,
    password: String,
}

fn cookie(value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    ))
    .expect("a cookie of base64url")
}

async fn login(
    State(app): State<Shared>,
    client: Option<Extension<Client>>,
    Json(credentials): Json<Credentials>,
) -> Result<Response, Response> {
    let (ip, secure) = client.map_or((None, false), |c| (c.ip, c.secure));
    let keys = [
        format!("ip:{}", ip.map(|ip| ip.to_string()).unwrap_or_default()),
        format!("user:{}", credentials.user),
    ];
    if let Err(wait) = app.login_throttle.check(&keys) {
        let mut response = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many failed sign-ins: retry in {wait} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Err(response);
    }
    let accounts = app.accounts.clone();
    let user = credentials.user.clone();
    // Argon2 takes tens of milliseconds of CPU: off the async workers.
    let verified =
        tokio::task::spawn_blocking(move || accounts.verify_password(&user, &credentials.password))
            .await
            .ok()
            .flatten();
    let record = |status: StatusCode| {
        app.audit.record(crate::audit::Action {
            user: credentials.user.clone(),
            via: "password".into(),
            client: ip.map(|ip| ip.to_string()).unwrap_or_default(),
            action: "sign-in".into(),
            target: "/login".into(),
            status: status.as_u16(),
            detail: String::new(),
        })
    };
    let Some(principal) = verified else {
        app.login_throttle.failed(&keys);
        record(StatusCode::UNAUTHORIZED);
        tracing::warn!(client = ?ip, "failed sign-in");
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        )
        .into_response());
    };
    app.login_throttle.succeeded(&keys);
    record(StatusCode::OK);
    let session = app.accounts.start_session(&principal.name).ok_or_else(|| {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password".into(),
        )
        .into_response()
    })?;
    tracing::info!(user = %principal.name, role = %principal.role, "signed in");
    let mut response = Json(serde_json::json!({
        "name": principal.name,
        "role": principal.role,
    }))
    .into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&session, app.accounts.session_ttl().as_secs(), secure),
    );
    Ok(response)
}

async fn logout(
    State(app): State<Shared>,
    client: Option<Extension<Client>>,
    headers: HeaderMap,
) -> Response {
    if let Some(session) = session_cookie(&headers) {
        app.accounts.end_session(session);
    }
    let secure = client.is_some_and(|c| c.secure);
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, secure));
    response
}

async fn me(State(app): State<Shared>, principal: Option<Extension<Principal>>) -> Response {
    match principal {
        Some(Extension(p)) => Json(serde_json::json!({
            "name": p.name,
            "role": p.role,
            "via": p.via,
            "auth": app.auth.enabled,
        }))
        .into_response(),
        None => ApiError(
            StatusCode::UNAUTHORIZED,
            super::auth::SIGN_IN_REQUIRED.into(),
        )
        .into_response(),
    }
}

async fn users(State(app): State<Shared>) -> Response {
    Json(app.accounts.users()).into_response()
}

async fn tokens(State(app): State<Shared>) -> Response {
    Json(app.accounts.tokens()).into_response()
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    #[serde(default = "viewer")]
    role: Role,
}

fn viewer() -> Role {
    Role::Viewer
}

async fn create_token(
    State(app): State<Shared>,
    principal: Option<Extension<Principal>>,
    Json(new): Json<NewToken>,
) -> Result<Response, ApiError> {
    let (view, secret) = app
        .accounts
        .create_token(&new.name, new.role)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let by = principal.map(|p| p.name.clone()).unwrap_or_default();
    tracing::info!(id = %view.id, role = %view.role, by = %by, "API token created");
    let mut body = serde_json::to_value(&view).expect("a token view is JSON");
    body["token"] = secret.into();
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn delete_token(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.accounts
        .delete_token(&id)
        .map_err(|e| ApiError(StatusCode::NOT_FOUND, e.to_string()))?;
    tracing::info!(id = %id, "API token revoked");
    Ok(StatusCode::NO_CONTENT)
}
