//! Authorisation, as one layer over every route (see `router`): each route declares its
//! [`Access`] where it is registered, and [`authorize`] finds who the request is from (a
//! session cookie, a bearer token, HTTP Basic, a stream's `key=`) and lets it through or
//! refuses it. A route missing from the table needs an admin, so a forgotten one is closed.
//! Writes also pass the same-origin and content-type rule here.
//!
//! HTTP layer: imports its parent's state and error type, the accounts service and the domain.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;

use super::{ApiError, Shared};
use crate::accounts::{Principal, Role, Via};
pub use crate::domain::net::IpNet;

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: the probes and the sign-in page.
    Open,
    /// Anyone, unless `--metrics-token`: then any valid credential.
    Metrics,
    /// Any signed-in user.
    Viewer,
    /// Any signed-in user; a video route, so it also takes a read-only token as `key=` and
    /// answers 401 with a Basic challenge (VLC and NVRs then send their credentials).
    Stream,
    /// Admins only.
    Admin,
    /// Admins only; also takes the token as `key=` (ESP32 firmware cannot send headers).
    AdminKey,
}

impl Access {
    pub fn role(self) -> Option<Role> {
        match self {
            Access::Open | Access::Metrics => None,
            Access::Viewer | Access::Stream => Some(Role::Viewer),
            Access::Admin | Access::AdminKey => Some(Role::Admin),
        }
    }
}

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "facerec_session";

/// What the layer needs beyond the accounts.
pub struct AuthSettings {
    /// `false`: `--auth=false`, everyone may read; writes need `api_token` when one is set.
    pub enabled: bool,
    /// `FACEREC_API_TOKEN`: an admin token.
    pub api_token: Option<String>,
    /// `/metrics` needs a credential (`--metrics-token`).
    pub metrics_token: bool,
    /// Peers whose `X-Forwarded-Proto`/`X-Forwarded-For` are believed (`--trusted-proxy`).
    pub trusted_proxies: Vec<IpNet>,
    /// The launcher serves HTTPS itself.
    pub tls: bool,
}

/// Where the request comes from, as far as it can be believed.
#[derive(Debug, Clone)]
pub struct Client {
    pub ip: Option<IpAddr>,
    /// It came over TLS (to the launcher, or to a trusted proxy that says so).
    pub secure: bool,
}

pub fn client(app: &Shared, request_headers: &HeaderMap, peer: Option<SocketAddr>) -> Client {
    let peer_ip = peer.map(|p| p.ip());
    let trusted = peer_ip.is_some_and(|ip| app.auth.trusted_proxies.iter().any(|n| n.contains(ip)));
    let forwarded = |name: &str| {
        request_headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let mut ip = peer_ip;
    let mut secure = app.auth.tls;
    if trusted {
        // The proxy appends the address it saw last: the rightmost entry is the one it vouches for.
        if let Some(from) = forwarded("x-forwarded-for")
            .and_then(|list| list.rsplit(',').next())
            .and_then(|last| last.trim().parse::<IpAddr>().ok())
        {
            ip = Some(from);
        }
        if let Some(proto) = forwarded("x-forwarded-proto") {
            secure = proto.eq_ignore_ascii_case("https");
        }
    }
    Client { ip, secure }
}

pub fn peer_of(request: &Request) -> Option<SocketAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// The bearer token from `Authorization: Bearer …`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// `(user, password)` from `Authorization: Basic …`, if any.
fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The session id from the `Cookie` header, if any.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value)
}

/// `key=` from the query string, if any.
fn key_param(request: &Request) -> Option<String> {
    let query = request.uri().query()?;
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "key")
        .map(|(_, v)| v.into_owned())
}

/// Whether `given` is `token`, compared without an early exit, so that the time taken does not
/// reveal the token.
pub fn token_matches(token: &str, given: &str) -> bool {
    given.len() == token.len()
        && given
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// Why a request is refused.
enum Refusal {
    /// No credential, or an expired session.
    Missing,
    /// A credential was sent and is wrong.
    Invalid,
    /// Too many wrong ones from this client: wait this many seconds.
    Throttled(u64),
}

fn throttle_key_ip(client: &Client) -> String {
    format!(
        "ip:{}",
        client.ip.map(|ip| ip.to_string()).unwrap_or_default()
    )
}

/// A token sent as bearer or `key=`: the configured admin token, or an API token.
fn token_principal(app: &Shared, token: &str) -> Option<Principal> {
    if let Some(configured) = &app.auth.api_token
        && token_matches(configured, token)
    {
        return Some(Principal {
            name: "FACEREC_API_TOKEN".into(),
            role: Role::Admin,
            via: Via::ApiToken,
        });
    }
    app.accounts.verify_token(token)
}

/// Who the request is from, by the credentials it carries.
fn identify(
    app: &Shared,
    request: &Request,
    access: Access,
    client: &Client,
) -> Result<Option<Principal>, Refusal> {
    let headers = request.headers();
    let ip_key = throttle_key_ip(client);
    let check = |keys: &[String]| app.login_throttle.check(keys).map_err(Refusal::Throttled);
    if let Some(token) = bearer(headers) {
        check(std::slice::from_ref(&ip_key))?;
        return match token_principal(app, token) {
            Some(p) => Ok(Some(p)),
            None => {
                app.login_throttle.failed(std::slice::from_ref(&ip_key));
                Err(Refusal::Invalid)
            }
        };
    }
    if let Some((user, password)) = basic(headers) {
        let keys = [ip_key, format!("user:{user}")];
        check(&keys)?;
        return match app.accounts.verify_basic(&user, &password) {
            Some(p) => {
                app.login_throttle.succeeded(&keys);
                Ok(Some(p))
            }
            None => {
                app.login_throttle.failed(&keys);
                Err(Refusal::Invalid)
            }
        };
    }
    if let Some(session) = session_cookie(headers)
        && let Some(p) = app.accounts.session(session)
    {
        return Ok(Some(p));
    }
    if matches!(access, Access::Stream | Access::AdminKey)
        && let Some(key) = key_param(request)
    {
        check(std::slice::from_ref(&ip_key))?;
        return match token_principal(app, &key) {
            // In a URL, a token may be logged or shared: on streams it can only watch.
            Some(p) if access == Access::Stream => Ok(Some(Principal {
                role: Role::Viewer,
                via: Via::Key,
                ..p
            })),
            Some(p) => Ok(Some(p)),
            None => {
                app.login_throttle.failed(std::slice::from_ref(&ip_key));
                Err(Refusal::Invalid)
            }
        };
    }
    Ok(None)
}

/// The access the matched route declared; a route not in the table needs an admin.
fn access_of(app: &Shared, method: &Method, path: Option<&str>) -> Access {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    let Some(path) = path else {
        // No route matched (a 404 follows): as a read, so that unknown paths are no oracle.
        return Access::Viewer;
    };
    app.access
        .get(&(method.clone(), path.to_string()))
        .copied()
        .unwrap_or(Access::Admin)
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub const SIGN_IN_REQUIRED: &str =
    "sign-in required: a session, an API token (Authorization: Bearer) or HTTP Basic credentials";

fn refuse(refusal: Refusal, access: Access, request: &Request) -> Response {
    match refusal {
        Refusal::Throttled(wait) => {
            let mut response = ApiError(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many failed sign-ins: retry in {wait} s"),
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(wait));
            response
        }
        Refusal::Missing | Refusal::Invalid => {
            let wants_page = request.method() == Method::GET
                && access == Access::Viewer
                && request
                    .headers()
                    .get(header::ACCEPT)
                    .and_then(|a| a.to_str().ok())
                    .is_some_and(|a| a.contains("text/html"));
            if wants_page {
                let next = request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
                return Redirect::to(&format!("/login?next={next}")).into_response();
            }
            let message = match refusal {
                Refusal::Invalid => "wrong credentials".to_string(),
                _ => SIGN_IN_REQUIRED.to_string(),
            };
            let mut response = ApiError(StatusCode::UNAUTHORIZED, message).into_response();
            if access == Access::Stream {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"facerec\", charset=\"UTF-8\""),
                );
            }
            response
        }
    }
}

pub fn forbidden(principal: &Principal) -> Response {
    ApiError(
        StatusCode::FORBIDDEN,
        format!(
            "this needs the admin role; {} can only watch",
            principal.role
        ),
    )
    .into_response()
}

/// The reads that are audited too: what takes biometric data out, and what adds a camera.
const AUDITED_READS: [&str; 3] = [
    "/api/library/export",
    "/api/people/{name}/export",
    "/register",
];

/// Whether a request to the route is recorded in the audit log (sign-in records itself, with
/// the user name it was given).
fn audited(method: &Method, path: Option<&str>) -> bool {
    match path {
        Some("/login") => false,
        Some(path) => is_write(method) || AUDITED_READS.contains(&path),
        None => false,
    }
}

/// The one authorisation layer: identifies the caller, checks the route's access, applies the
/// write rule, and hands the [`Principal`] to the handler as an extension; then records the
/// audited requests, refused or not, with who, from where and the answer's status.
pub async fn authorize(State(app): State<Shared>, request: Request, next: Next) -> Response {
    let path = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string());
    let method = request.method().clone();
    // The path only: a query may carry a stream key.
    let target = request.uri().path().to_string();
    let client = client(&app, request.headers(), peer_of(&request));
    let client_ip = client.ip.map(|ip| ip.to_string()).unwrap_or_default();
    let basic_user = basic(request.headers()).map(|(user, _)| user);
    let (response, who) = admit(&app, request, next, path.as_deref(), client).await;
    let invalid_credentials = response.extensions().get::<InvalidCredential>().is_some();
    if audited(&method, path.as_deref()) || invalid_credentials {
        let (user, via) = match &who {
            Some(p) => (p.name.clone(), p.via.as_str().to_string()),
            None => (
                basic_user.unwrap_or_else(|| "anonymous".into()),
                String::new(),
            ),
        };
        let action = if audited(&method, path.as_deref()) {
            format!("{method} {}", path.as_deref().unwrap_or(""))
        } else {
            "credentials refused".into()
        };
        app.audit.record(crate::audit::Action {
            user,
            via,
            client: client_ip,
            action,
            target,
            status: response.status().as_u16(),
            detail: String::new(),
        });
    }
    response
}

/// Set on a 401 for a credential that was sent and is wrong (not merely missing).
#[derive(Clone, Copy)]
struct InvalidCredential;

/// The decision of [`authorize`], and who the request was from.
async fn admit(
    app: &Shared,
    mut request: Request,
    next: Next,
    path: Option<&str>,
    client: Client,
) -> (Response, Option<Principal>) {
    let access = access_of(app, request.method(), path);
    let identified = identify(app, &request, access, &client);
    let principal = match identified {
        Ok(p) => p,
        // A wrong credential on an open route is ignored, not refused (a stale cookie on /login).
        Err(_) if access == Access::Open => None,
        Err(refusal) => {
            let invalid = matches!(refusal, Refusal::Invalid);
            let mut response = refuse(refusal, access, &request);
            if invalid {
                response.extensions_mut().insert(InvalidCredential);
            }
            return (response, None);
        }
    };
    let principal = principal.or_else(|| {
        (!app.auth.enabled
            && (app.auth.api_token.is_none()
                || !is_write(request.method()) && access.role() == Some(Role::Viewer)))
        .then(|| Principal {
            name: "anonymous".into(),
            role: if app.auth.api_token.is_none() {
                Role::Admin
            } else {
                Role::Viewer
            },
            via: Via::Open,
        })
    });
    let needed = match access {
        Access::Metrics if app.auth.metrics_token => Some(Role::Viewer),
        Access::Metrics => None,
        other => other.role(),
    };
    if let Some(needed) = needed {
        let Some(who) = &principal else {
            return (refuse(Refusal::Missing, access, &request), None);
        };
        // Metrics with --metrics-token and sign-in off: only the configured token will do.
        if access == Access::Metrics && who.via == Via::Open {
            return (refuse(Refusal::Missing, access, &request), principal);
        }
        if who.role < needed {
            return (forbidden(who), principal);
        }
    }
    if is_write(request.method())
        && let Some(refusal) = same_origin_refusal(request.headers())
    {
        return (refusal, principal);
    }
    if let Some(who) = &principal {
        request.extensions_mut().insert(who.clone());
    }
    request.extensions_mut().insert(client);
    (next.run(request).await, principal)
}

/// What a write's body may be: what the write routes' extractors read.
const WRITE_CONTENT_TYPES: [&str; 2] = ["application/json", "multipart/form-data"];

/// A browser's write must come from the launcher's own page (its `Origin` names the `Host` it
/// was sent to; clients without a browser send no `Origin`), and a typed body must be JSON or
/// multipart: a cross-site HTML form's urlencoded or text/plain body is refused before a
/// handler reads it.
fn same_origin_refusal(headers: &HeaderMap) -> Option<Response> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let origin_host = origin
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://"))
            .map(|(_, host)| host);
        if origin_host.is_none() || origin_host != host {
            return Some(
                ApiError(
                    StatusCode::FORBIDDEN,
                    format!(
                        "cross-origin write refused: Origin {} is not this launcher",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                )
                .into_response(),
            );
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
        return Some(
            ApiError(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "a write's body must be application/json or multipart/form-data".into(),
            )
            .into_response(),
        );
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_blocks_contain_what_they_should() {
        let net: IpNet = "10.42.0.0/16".parse().unwrap();
        assert!(net.contains("10.42.7.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.42.0.9".parse().unwrap()));
        assert!(!net.contains("10.43.0.1".parse().unwrap()));
        let one: IpNet = "127.0.0.1".parse().unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        assert_eq!(
            "10.0.0.0/33".parse::<IpNet>().unwrap_err(),
            "\"10.0.0.0/33\" is not an IP address or a CIDR block (10.42.0.0/16)"
        );
    }
}
