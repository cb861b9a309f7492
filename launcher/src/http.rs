//! The HTTP API: the page, MJPEG streams and snapshots, the camera and gallery API, SSE events,
//! health and metrics; the history and library routes are in `history`, the token check in
//! `auth`.
//!
//! HTTP layer, the top one: imports the domain, the services and the camera registry; nothing
//! imports it but `main.rs`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use axum::{Extension, Json, Router};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::accounts::{Accounts, Principal, Role, Via};
use crate::audit::Audit;
use crate::camera::registry::{AddError, Registry};
use crate::camera::{Camera, Status};
use crate::domain::rate_limit::RateLimiter;
use crate::domain::redact::redact_uri;
use crate::domain::source::{Source, Trust, esp32_camera, validate_name};
use crate::domain::throttle::Throttle;
use crate::domain::{CameraState, lock};
use crate::feed::Feed;
use crate::library::Library;
use crate::metrics::{CameraLabel, Metrics};
use crate::sink::EventSink;
use crate::store::Store;
use crate::strangers::Strangers;

pub mod auth;
mod headers;
mod history;
mod login;
mod privacy;

pub use auth::{Access, AuthSettings, IpNet};

const BOUNDARY: &str = "frame";
/// How long a snapshot waits for a fresh frame when the camera's encoder was idle (nobody
/// watched): the next frame after the gate opens, normally within a frame interval or two.
const SNAPSHOT_WAIT: Duration = Duration::from_secs(2);
const PAGE: &str = include_str!("../web/index.html");
const LOGIN_PAGE: &str = include_str!("../web/login.html");

/// What the handlers share.
pub struct App {
    pub cameras: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// The live event stream (`/api/events`).
    pub feed: Arc<Feed>,
    pub clients: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    /// Users, API tokens and sessions.
    pub accounts: Arc<Accounts>,
    pub auth: AuthSettings,
    /// Each route's access, from the route table.
    pub access: std::collections::HashMap<(Method, String), Access>,
    /// Failed sign-ins, per client and per user.
    pub login_throttle: Throttle,
    /// Who changed or took what (`GET /api/audit`).
    pub audit: Arc<Audit>,
    /// Every event sink (erasure tells them to forget a person).
    pub sinks: Arc<dyn EventSink>,
    pub media_dir: Option<PathBuf>,
    pub register_limiter: RateLimiter,
    /// The recognition history (in memory when no data folder is writable).
    pub store: Arc<Store>,
    /// The face library; `None` without a writable data folder, or when it cannot be opened.
    pub library: Option<Arc<Library>>,
    /// Why the face library cannot be opened although the data folder is in use (history on
    /// disk): `/readyz` answers 503 `degraded: the face library cannot be opened: <reason>`.
    pub library_error: Option<String>,
    pub strangers: Arc<Mutex<Strangers>>,
}

type Shared = Arc<App>;

impl From<AddError> for ApiError {
    fn from(e: AddError) -> ApiError {
        ApiError(StatusCode::CONFLICT, e.to_string())
    }
}

/// A route as the table declares it.
#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
}

/// The router under construction and its table: every route is added through [`Routes::add`]
/// with its [`Access`], so the authorisation layer and the route-walking test see exactly the
/// routes the router has.
pub struct Routes {
    router: Router<Shared>,
    specs: Vec<RouteSpec>,
}

impl Routes {
    fn new() -> Routes {
        Routes {
            router: Router::new(),
            specs: Vec::new(),
        }
    }

    fn add<H, T>(self, method: Method, path: &'static str, access: Access, handler: H) -> Routes
    where
        H: axum::handler::Handler<T, Shared>,
        T: 'static,
    {
        let filter = MethodFilter::try_from(method.clone()).expect("a routable method");
        self.add_routed(method, path, access, on(filter, handler))
    }

    /// [`add`](Self::add) for a handler with its own layers (`method_router` must serve
    /// `method` only).
    fn add_routed(
        mut self,
        method: Method,
        path: &'static str,
        access: Access,
        method_router: MethodRouter<Shared>,
    ) -> Routes {
        self.router = self.router.route(path, method_router);
        self.specs.push(RouteSpec {
            method,
            path,
            access,
        });
        self
    }

    fn merge(mut self, other: Routes) -> Routes {
        self.router = self.router.merge(other.router);
        self.specs.extend(other.specs);
        self
    }
}

/// Every route with its access.
fn table() -> Routes {
    use Access::*;
    Routes::new()
        .add(Method::GET, "/", Viewer, page)
        .add(Method::GET, "/cameras/{name}/stream.mjpg", Stream, stream)
        .add(
            Method::GET,
            "/cameras/{name}/snapshot.jpg",
            Stream,
            snapshot,
        )
        .add(Method::GET, "/video_feed", Stream, video_feed)
        .add(Method::GET, "/api/cameras", Viewer, list_cameras)
        .add(Method::POST, "/api/cameras", Admin, add_camera)
        .add(Method::DELETE, "/api/cameras/{name}", Admin, delete_camera)
        .add(Method::GET, "/register", AdminKey, register)
        .add(Method::GET, "/api/events", Viewer, events)
        .add(Method::POST, "/api/gallery/reload", Admin, reload_gallery)
        .add(Method::GET, "/healthz", Open, || async { "ok\n" })
        .add(Method::GET, "/readyz", Open, readyz)
        .add(Method::GET, "/metrics", Metrics, metrics)
        .merge(history::routes())
        .merge(login::routes())
        .merge(privacy::routes())
}

/// The routes the router has, as declared (for the route-walking test and the docs).
pub fn routes() -> Vec<RouteSpec> {
    table().specs
}

/// Each route's access, for [`App::access`].
pub fn access_table() -> std::collections::HashMap<(Method, String), Access> {
    routes()
        .into_iter()
        .map(|r| ((r.method, r.path.to_string()), r.access))
        .collect()
}

/// Every route, behind the one authorisation layer and the hardening headers.
pub fn router(app: Shared) -> Router {
    let Routes { router, .. } = table();
    router
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            auth::authorize,
        ))
        .layer(axum::middleware::map_response(headers::harden))
        .with_state(app)
}

/// An error answered as `{"error": "..."}` with its status code.
#[derive(Debug)]
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

fn not_found(name: &str) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no camera named {name}"))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(State(app): State<Shared>) -> Html<String> {
    let cards: String = app
        .cameras
        .all()
        .iter()
        .map(|c| {
            let name = escape(&c.name);
            format!(
                "<div class=\"camera\" data-name=\"{name}\"><img alt=\"live stream of {name}\" src=\"/cameras/{name}/stream.mjpg\"><div class=\"meta\"><strong>{name}</strong></div><div class=\"people\"></div></div>"
            )
        })
        .collect();
    Html(PAGE.replace("<!--CAMERAS-->", &cards))
}

/// Decrements the client gauge when a stream ends, however it ends.
struct ClientGuard {
    metrics: Arc<Metrics>,
    camera: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.metrics
            .clients
            .get_or_create(&CameraLabel {
                camera: self.camera.clone(),
            })
            .dec();
    }
}

fn part(jpeg: &Bytes) -> Bytes {
    let mut b = BytesMut::with_capacity(jpeg.len() + 96);
    b.put_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
            jpeg.len()
        )
        .as_bytes(),
    );
    b.put_slice(jpeg);
    b.put_slice(b"\r\n");
    b.freeze()
}

fn mjpeg_response(app: &Shared, camera: Arc<Camera>) -> Result<Response, ApiError> {
    let permit = app.clients.clone().try_acquire_owned().map_err(|_| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many stream clients".into(),
        )
    })?;
    app.metrics
        .clients
        .get_or_create(&CameraLabel {
            camera: camera.name.clone(),
        })
        .inc();
    let guard = ClientGuard {
        metrics: app.metrics.clone(),
        camera: camera.name.clone(),
        _permit: permit,
    };
    // The camera's encoder runs while the subscription lives; the frames published before it
    // started (numbered up to `after`) may be old, so the first one sent is a later one.
    let subscription = camera.subscribe();
    let shutdown = app.shutdown.clone();
    // Each poll waits for a frame newer than the last one sent: a client that reads slowly
    // simply gets the newest frame next, and never holds anyone else back.
    let stream = futures_util::stream::unfold(
        (subscription.frames, shutdown, guard, subscription.after),
        |(mut frames, shutdown, guard, last)| async move {
            loop {
                let next = frames
                    .borrow_and_update()
                    .as_ref()
                    .filter(|f| f.seq > last)
                    .cloned();
                if let Some(frame) = next {
                    let seq = frame.seq;
                    return Some((
                        Ok::<_, Infallible>(part(&frame.jpeg)),
                        (frames, shutdown, guard, seq),
                    ));
                }
                tokio::select! {
                    changed = frames.changed() => if changed.is_err() { return None },
                    _ = shutdown.cancelled() => return None,
                }
            }
        },
    );
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&format!("multipart/x-mixed-replace; boundary={BOUNDARY}"))
            .expect("valid header"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store"),
    );
    Ok(response)
}

async fn stream(State(app): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let camera = app.cameras.camera(&name).ok_or_else(|| not_found(&name))?;
    mjpeg_response(&app, camera)
}

/// The old demo's single stream: the first camera.
async fn video_feed(State(app): State<Shared>) -> Result<Response, ApiError> {
    let camera = app
        .cameras
        .all()
        .into_iter()
        .next()
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, "no camera is configured".into()))?;
    mjpeg_response(&app, camera)
}

async fn snapshot(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let camera = app.cameras.camera(&name).ok_or_else(|| not_found(&name))?;
    // Never a frame from before the encoder (idle while nobody watches) started again.
    let frame = camera.snapshot(SNAPSHOT_WAIT).await.ok_or_else(|| {
        ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("camera {name} has no frame yet"),
        )
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        frame.jpeg.clone(),
    )
        .into_response())
}

#[derive(Serialize)]
struct CameraView {
    name: String,
    uri: String,
    #[serde(flatten)]
    status: Status,
    /// The source delivers but recognition does not keep up (the state stays `playing`).
    overloaded: bool,
    input_fps: f64,
    processed_fps: f64,
    /// JPEGs per second published: 0 while nobody watches (nothing is encoded then).
    output_fps: f64,
    /// Detections per second over the last 5 s.
    detect_fps: f64,
    /// Frames out of the facerec element, watched or not.
    frames: u64,
    /// JPEGs out of the encoder (only while somebody watches).
    frames_encoded: u64,
    faces: Vec<FaceView>,
}

/// A face as the cameras API shows it: the bus message's face without its crop, and its box as
/// `[x, y, width, height]`.
#[derive(Serialize)]
struct FaceView {
    track_id: u64,
    name: String,
    distance: Option<f64>,
    /// The latest attempt's quality (0-1: size, sharpness, pose); null before the first.
    quality: Option<f64>,
    /// How sure the track's vote is of `name` (0-1).
    confidence: f64,
    #[serde(rename = "box")]
    bbox: [i32; 4],
    score: f64,
}

impl From<gstfacerec::Face> for FaceView {
    fn from(face: gstfacerec::Face) -> FaceView {
        FaceView {
            bbox: [face.x, face.y, face.width, face.height],
            track_id: face.track_id,
            name: face.name,
            distance: face.distance,
            quality: face.quality,
            confidence: face.confidence,
            score: face.score,
        }
    }
}

/// A camera as the API shows it; the connection diagnosis (`reason`) only to admins.
fn view(camera: &Camera, role: Role) -> CameraView {
    let [input_fps, processed_fps, output_fps] = *lock(&camera.fps);
    let mut status = camera.status();
    if role < Role::Admin {
        status.reason = None;
    }
    CameraView {
        name: camera.name.clone(),
        uri: redact_uri(&camera.uri),
        status,
        overloaded: camera.overloaded(),
        input_fps,
        processed_fps,
        output_fps,
        detect_fps: camera.detect_fps(),
        frames: camera
            .processed_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        frames_encoded: camera
            .encoded_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        faces: camera.faces().into_iter().map(FaceView::from).collect(),
    }
}

async fn list_cameras(
    State(app): State<Shared>,
    principal: Option<Extension<Principal>>,
) -> Json<Vec<CameraView>> {
    let role = principal.map_or(Role::Viewer, |p| p.role);
    Json(app.cameras.all().iter().map(|c| view(c, role)).collect())
}

#[derive(Deserialize)]
struct NewCamera {
    name: String,
    uri: String,
}

async fn add_camera(
    State(app): State<Shared>,
    Json(new): Json<NewCamera>,
) -> Result<Response, ApiError> {
    validate_name(&new.name).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let source = Source::parse(
        &new.uri,
        Trust::Api {
            media_dir: app.media_dir.as_deref(),
        },
    )
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let camera = app.cameras.add(new.name, new.uri, source)?;
    Ok((StatusCode::CREATED, Json(view(&camera, Role::Admin))).into_response())
}

async fn delete_camera(
    State(app): State<Shared>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let cameras = app.cameras.clone();
    let removed =
        tokio::task::spawn_blocking(move || cameras.remove(&name).map(|_| ()).ok_or(name))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    removed
        .map(|()| StatusCode::NO_CONTENT)
        .map_err(|name| not_found(&name))
}

#[derive(Deserialize)]
struct Registration {
    ip: String,
    #[serde(default)]
    token: String,
}

/// The demo's ESP32 cameras call `GET /register?ip=&token=` and then serve MJPEG at
/// `http://<ip>/stream`. Registering again with the same address and token is harmless.
///
/// An admin credential is required (checked by the layer; firmware that cannot send a header
/// sends an admin API token as `key=`). With sign-in off and no API token, a registration that
/// would change an existing camera (a new `token`) is refused: nothing tells the real camera
/// from anyone else on the network, so re-pointing a camera takes an explicit
/// `DELETE /api/cameras/NAME` first (which is logged).
async fn register(
    State(app): State<Shared>,
    principal: Option<Extension<Principal>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    Query(r): Query<Registration>,
) -> Result<String, Response> {
    // Set by the launcher's server loop; absent when the router is served some other way.
    let peer: Option<SocketAddr> = peer.map(|p| p.0.0);
    if let Err(wait) = app.register_limiter.take(peer.map(|p| p.ip())) {
        let mut response = ApiError(
            StatusCode::TOO_MANY_REQUESTS,
            format!("too many registrations: retry in {wait} s"),
        )
        .into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return Err(response);
    }
    let anonymous = principal.is_none_or(|p| p.via == Via::Open);
    let (name, source) = esp32_camera(&r.ip, &r.token)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response())?;
    let Source::Http { url } = &source else {
        unreachable!("esp32 cameras are http")
    };
    if let Some(existing) = app.cameras.camera(&name) {
        if &existing.uri == url {
            return Ok(format!("{name} already registered\n"));
        }
        if anonymous {
            tracing::warn!(camera = %name, peer = ?peer, "re-registration with a different token refused: delete the camera first");
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "camera {name} is registered with a different token; delete it first (DELETE /api/cameras/{name})"
                ),
            )
            .into_response());
        }
        // Authorised: the same camera, a new token.
        tracing::warn!(camera = %name, peer = ?peer, "re-registration: replacing the camera's token");
        let (cameras, n) = (app.cameras.clone(), name.clone());
        let _ = tokio::task::spawn_blocking(move || cameras.remove(&n)).await;
    }
    app.cameras
        .add(name.clone(), url.clone(), source)
        .map_err(|e| ApiError::from(e).into_response())?;
    tracing::info!(camera = %name, peer = ?peer, "registered an ESP32 camera");
    Ok(format!("{name} registered\n"))
}

async fn events(
    State(app): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // New subscribers first get the recent events, so a page opened late is not empty.
    let (recent, receiver) = app.feed.subscribe();
    let shutdown = app.shutdown.clone();
    let backlog = futures_util::stream::iter(recent);
    let live =
        futures_util::stream::unfold((receiver, shutdown), |(mut rx, shutdown)| async move {
            loop {
                tokio::select! {
                    received = rx.recv() => match received {
                        Ok(event) => return Some((event, (rx, shutdown))),
                        // A subscriber that fell behind skips what it missed.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    },
                    _ = shutdown.cancelled() => return None,
                }
            }
        });
    use futures_util::StreamExt;
    let stream = backlog.chain(live).map(|event| {
        let sse = SseEvent::default().event("recognition");
        Ok(sse
            .json_data(&event)
            .unwrap_or_else(|_| SseEvent::default().comment("unencodable event")))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

async fn reload_gallery(State(app): State<Shared>) -> Result<Json<serde_json::Value>, ApiError> {
    let Some(path) = app.cameras.gallery() else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "no gallery is configured".into(),
        ));
    };
    let cameras = app.cameras.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Checked here first, so the caller hears about a bad file; the pipelines would only
        // warn and keep the previous gallery.
        let gallery = facerec_core::gallery::Gallery::load(&path).map_err(|e| e.to_string())?;
        let reloaded = cameras.reload_gallery(&path);
        Ok::<_, String>((gallery.people.len(), reloaded))
    })
    .await
    .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (people, cameras) = result.map_err(|e| ApiError(StatusCode::UNPROCESSABLE_ENTITY, e))?;
    tracing::info!(people, cameras, "gallery reloaded");
    Ok(Json(
        serde_json::json!({ "people": people, "cameras": cameras }),
    ))
}

/// Ready once every camera has played at least once (or finished its file).
async fn readyz(State(app): State<Shared>) -> Response {
    // Not ready while the face library is off by failure, rather than a silent fallback: the
    // launcher still runs (streams, events, history on disk), this tells the operator why.
    if let Some(reason) = &app.library_error {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("degraded: the face library cannot be opened: {reason}\n"),
        )
            .into_response();
    }
    let waiting: Vec<String> = app
        .cameras
        .all()
        .iter()
        .filter(|c| {
            let s = c.status();
            !s.ever_played && s.state != CameraState::Ended
        })
        .map(|c| c.name.clone())
        .collect();
    if waiting.is_empty() {
        "ready\n".into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for {}\n", waiting.join(", ")),
        )
            .into_response()
    }
}

async fn metrics(State(app): State<Shared>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}
