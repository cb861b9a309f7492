//! The HTTP API: the page, MJPEG streams and snapshots, the camera and gallery API, SSE events,
//! health and metrics.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{BufMut, Bytes, BytesMut};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use crate::camera::{Camera, Face, Hub, Status, lock};
use crate::config::{Source, Trust, esp32_camera, validate_name};
use crate::metrics::CameraLabel;

mod history;

const BOUNDARY: &str = "frame";
const PAGE: &str = include_str!("../web/index.html");

pub struct App {
    pub hub: Arc<Hub>,
    pub cameras: RwLock<BTreeMap<String, Arc<Camera>>>,
    pub clients: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    pub api_token: Option<String>,
    pub media_dir: Option<std::path::PathBuf>,
    /// Applies to every way of adding a camera (start-up sources, the API, `/register`).
    pub max_cameras: usize,
    pub register_limiter: RateLimiter,
    /// The recognition history (in memory when no data folder is writable).
    pub store: Arc<crate::store::Store>,
    /// The face library; `None` without a writable data folder.
    pub library: Option<Arc<crate::library::Library>>,
    pub strangers: Arc<Mutex<crate::strangers::Strangers>>,
}

/// Token buckets for `/register`, the only unauthenticated way to start a pipeline when no API
/// token is set: one per client address, so that one noisy host cannot starve the cameras, and
/// one overall, so that many hosts together cannot either.
pub struct RateLimiter {
    per_client: Limit,
    overall: Limit,
    state: Mutex<Buckets>,
}

/// A bucket of `burst` tokens, refilled by one every `refill`.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub burst: u32,
    pub refill: Duration,
}

struct Buckets {
    overall: (f64, Instant),
    clients: HashMap<IpAddr, (f64, Instant)>,
}

impl Limit {
    fn tokens(&self, (tokens, at): (f64, Instant), now: Instant) -> f64 {
        (tokens + now.duration_since(at).as_secs_f64() / self.refill.as_secs_f64())
            .min(self.burst as f64)
    }

    /// Whole seconds until `tokens` reaches one.
    fn wait(&self, tokens: f64) -> u64 {
        ((1.0 - tokens) * self.refill.as_secs_f64()).ceil().max(1.0) as u64
    }
}

impl RateLimiter {
    /// A rack of ESP32s booting together fits in the overall burst; one camera retrying at boot
    /// in its own.
    pub const REGISTER_PER_CLIENT: Limit = Limit {
        burst: 10,
        refill: Duration::from_secs(5),
    };
    pub const REGISTER_OVERALL: Limit = Limit {
        burst: 20,
        refill: Duration::from_secs(1),
    };
    /// Client addresses remembered before the idle (full) ones are forgotten.
    const MAX_CLIENTS: usize = 1024;

    pub fn new(per_client: Limit, overall: Limit) -> RateLimiter {
        let now = Instant::now();
        RateLimiter {
            per_client,
            overall,
            state: Mutex::new(Buckets {
                overall: (overall.burst as f64, now),
                clients: HashMap::new(),
            }),
        }
    }

    pub fn register() -> RateLimiter {
        RateLimiter::new(Self::REGISTER_PER_CLIENT, Self::REGISTER_OVERALL)
    }

    /// Takes a token from the client's bucket and the overall one, or says how many whole
    /// seconds to wait. A refused request takes nothing, so it does not drain the overall
    /// bucket on behalf of a client that is already limited.
    pub fn take(&self, client: Option<IpAddr>) -> Result<(), u64> {
        let mut state = lock(&self.state);
        let now = Instant::now();
        let full = (self.per_client.burst as f64, now);
        let mine = client.map(|ip| {
            let bucket = state.clients.get(&ip).copied().unwrap_or(full);
            (ip, self.per_client.tokens(bucket, now))
        });
        if let Some((_, tokens)) = mine
            && tokens < 1.0
        {
            return Err(self.per_client.wait(tokens));
        }
        let overall = self.overall.tokens(state.overall, now);
        if overall < 1.0 {
            return Err(self.overall.wait(overall));
        }
        state.overall = (overall - 1.0, now);
        if let Some((ip, tokens)) = mine {
            if state.clients.len() >= Self::MAX_CLIENTS {
                let limit = self.per_client;
                state
                    .clients
                    .retain(|_, b| limit.tokens(*b, now) < limit.burst as f64);
            }
            state.clients.insert(ip, (tokens - 1.0, now));
        }
        Ok(())
    }
}

type Shared = Arc<App>;

impl App {
    pub fn camera(&self, name: &str) -> Option<Arc<Camera>> {
        self.cameras
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn all(&self) -> Vec<Arc<Camera>> {
        self.cameras
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Adds and starts a camera; fails if the name is taken.
    pub fn add(&self, name: String, uri: String, source: Source) -> Result<Arc<Camera>, ApiError> {
        let mut cameras = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        if cameras.contains_key(&name) {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("camera {name} already exists"),
            ));
        }
        if cameras.len() >= self.max_cameras {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "camera limit reached: {} cameras (max-cameras); remove one first",
                    self.max_cameras
                ),
            ));
        }
        self.hub.camera_added(&name);
        let camera = Camera::start(name.clone(), uri, source, self.hub.clone());
        cameras.insert(name, camera.clone());
        Ok(camera)
    }

    /// Removes a camera and stops its pipeline (blocking).
    pub fn remove(&self, name: &str) -> Option<Arc<Camera>> {
        let camera = self
            .cameras
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name)?;
        camera.shutdown();
        self.hub.metrics.forget(name);
        self.hub.camera_removed(name);
        Some(camera)
    }
}

pub fn router(app: Shared) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/cameras/{name}/stream.mjpg", get(stream))
        .route("/cameras/{name}/snapshot.jpg", get(snapshot))
        .route("/video_feed", get(video_feed))
        .route("/api/cameras", get(list_cameras).post(add_camera))
        .route("/api/cameras/{name}", axum::routing::delete(delete_camera))
        .route("/register", get(register))
        .route("/api/events", get(events))
        .route("/api/gallery/reload", post(reload_gallery))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(history::routes())
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

/// The bearer token from `Authorization: Bearer …`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

/// Whether `given` is the configured API token (always true when none is configured).
fn token_ok(app: &App, given: Option<&str>) -> bool {
    let Some(token) = &app.api_token else {
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

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    if token_ok(app, bearer(headers)) {
        Ok(())
    } else {
        Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid bearer token is required".into(),
        ))
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn page(State(app): State<Shared>) -> Html<String> {
    let cards: String = app
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
    hub: Arc<Hub>,
    camera: String,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.hub
            .metrics
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
    app.hub
        .metrics
        .clients
        .get_or_create(&CameraLabel {
            camera: camera.name.clone(),
        })
        .inc();
    let guard = ClientGuard {
        hub: app.hub.clone(),
        camera: camera.name.clone(),
        _permit: permit,
    };
    let frames = camera.subscribe();
    let shutdown = app.shutdown.clone();
    // Each poll waits for a frame newer than the last one sent: a client that reads slowly
    // simply gets the newest frame next, and never holds anyone else back.
    let stream = futures_util::stream::unfold(
        (frames, shutdown, guard, 0u64),
        |(mut frames, shutdown, guard, last)| async move {
            loop {
                let next = frames
                    .borrow_and_update()
                    .as_ref()
                    .filter(|f| f.seq != last)
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
    let camera = app.camera(&name).ok_or_else(|| not_found(&name))?;
    mjpeg_response(&app, camera)
}

/// The old demo's single stream: the first camera.
async fn video_feed(State(app): State<Shared>) -> Result<Response, ApiError> {
    let camera = app
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
    let camera = app.camera(&name).ok_or_else(|| not_found(&name))?;
    let frame = camera.latest_frame().ok_or_else(|| {
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
    input_fps: f64,
    processed_fps: f64,
    output_fps: f64,
    frames: u64,
    faces: Vec<Face>,
}

fn view(camera: &Camera) -> CameraView {
    let [input_fps, processed_fps, output_fps] = *lock(&camera.fps);
    CameraView {
        name: camera.name.clone(),
        uri: camera.uri.clone(),
        status: camera.status(),
        input_fps,
        processed_fps,
        output_fps,
        frames: camera
            .output_frames
            .load(std::sync::atomic::Ordering::Relaxed),
        faces: camera.faces(),
    }
}

async fn list_cameras(State(app): State<Shared>) -> Json<Vec<CameraView>> {
    Json(app.all().iter().map(|c| view(c)).collect())
}

#[derive(Deserialize)]
struct NewCamera {
    name: String,
    uri: String,
}

async fn add_camera(
    State(app): State<Shared>,
    headers: HeaderMap,
    Json(new): Json<NewCamera>,
) -> Result<Response, ApiError> {
    authorize(&app, &headers)?;
    validate_name(&new.name).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let source = Source::parse(
        &new.uri,
        Trust::Api {
            media_dir: app.media_dir.as_deref(),
        },
    )
    .map_err(|e| ApiError(StatusCode::BAD_REQUEST, format!("{e:#}")))?;
    let camera = app.add(new.name, new.uri, source)?;
    Ok((StatusCode::CREATED, Json(view(&camera))).into_response())
}

async fn delete_camera(
    State(app): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    authorize(&app, &headers)?;
    let app2 = app.clone();
    let removed = tokio::task::spawn_blocking(move || app2.remove(&name).map(|_| ()).ok_or(name))
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
    /// The API token, for firmware that cannot send a header.
    key: Option<String>,
}

/// The demo's ESP32 cameras call `GET /register?ip=&token=` and then serve MJPEG at
/// `http://<ip>/stream`. Registering again with the same address and token is harmless.
///
/// With `FACEREC_API_TOKEN` set, the API token is required, as `key=` or a bearer header.
/// Without it, a registration that would change an existing camera (a new `token`) is refused:
/// nothing tells the real camera from anyone else on the network, so re-pointing a camera
/// takes an explicit `DELETE /api/cameras/NAME` first (which is logged).
async fn register(
    State(app): State<Shared>,
    headers: HeaderMap,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<SocketAddr>>>,
    Query(r): Query<Registration>,
) -> Result<String, Response> {
    // Set by the launcher's server loop; absent when the router is served some other way.
    let peer: Option<SocketAddr> = peer.map(|p| p.0.0);
    // Before the token check too: failed guesses cost a token each.
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
    if !token_ok(&app, r.key.as_deref().or(bearer(&headers))) {
        tracing::warn!(peer = ?peer, ip = %r.ip, "registration without a valid API token refused");
        return Err(ApiError(
            StatusCode::UNAUTHORIZED,
            "a valid API token is required (key= or a bearer header)".into(),
        )
        .into_response());
    }
    let (name, source) = esp32_camera(&r.ip, &r.token)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()).into_response())?;
    let Source::Http { url } = &source else {
        unreachable!("esp32 cameras are http")
    };
    if let Some(existing) = app.camera(&name) {
        if &existing.uri == url {
            return Ok(format!("{name} already registered\n"));
        }
        if app.api_token.is_none() {
            tracing::warn!(camera = %name, peer = ?peer, "re-registration with a different token refused: delete the camera first");
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "camera {name} is registered with a different token; delete it first (DELETE /api/cameras/{name})"
                ),
            )
            .into_response());
        }
        // Authorised above: the same camera, a new token.
        tracing::warn!(camera = %name, peer = ?peer, "re-registration: replacing the camera's token");
        let (app2, n) = (app.clone(), name.clone());
        let _ = tokio::task::spawn_blocking(move || app2.remove(&n)).await;
    }
    app.add(name.clone(), url.clone(), source)
        .map_err(IntoResponse::into_response)?;
    tracing::info!(camera = %name, peer = ?peer, "registered an ESP32 camera");
    Ok(format!("{name} registered\n"))
}

async fn events(
    State(app): State<Shared>,
) -> Sse<impl Stream<Item = Result<SseEvent, Infallible>>> {
    // New subscribers first get the recent events, so a page opened late is not empty.
    let recent: Vec<_> = lock(&app.hub.recent).iter().cloned().collect();
    let receiver = app.hub.events.subscribe();
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

async fn reload_gallery(
    State(app): State<Shared>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    authorize(&app, &headers)?;
    let Some(path) = lock(&app.hub.settings).gallery.clone() else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "no gallery is configured".into(),
        ));
    };
    let app2 = app.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Checked here first, so the caller hears about a bad file; the pipelines would only
        // warn and keep the previous gallery.
        let gallery = facerec_core::gallery::Gallery::load(&path).map_err(|e| e.to_string())?;
        let reloaded = app2
            .all()
            .iter()
            .filter(|c| c.reload_gallery(&path))
            .count();
        app2.hub.gallery_changed(Some(&path));
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
    let waiting: Vec<String> = app
        .all()
        .iter()
        .filter(|c| {
            let s = c.status();
            !s.ever_played && s.state != "ended"
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
        app.hub.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_limits_each_client_and_everyone_together() {
        let limiter = RateLimiter::register();
        let ip = |n: u8| Some(IpAddr::from([10, 0, 0, n]));
        // One client: its burst of 10, then a wait of one refill (5 s).
        for _ in 0..10 {
            assert_eq!(limiter.take(ip(1)), Ok(()));
        }
        assert_eq!(limiter.take(ip(1)), Err(5));
        assert_eq!(
            limiter.take(ip(1)),
            Err(5),
            "a refused request takes nothing"
        );
        // Others are not held back by it, until the overall burst of 20 is spent.
        for n in 2..12 {
            assert_eq!(limiter.take(ip(n)), Ok(()), "client {n}");
        }
        assert_eq!(limiter.take(ip(12)), Err(1));
        assert_eq!(limiter.take(None), Err(1));
    }

    #[test]
    fn idle_clients_are_forgotten_when_the_table_is_full() {
        let limiter = RateLimiter::new(
            Limit {
                burst: 1,
                refill: Duration::from_millis(1),
            },
            Limit {
                burst: 10_000,
                refill: Duration::from_millis(1),
            },
        );
        for n in 0..RateLimiter::MAX_CLIENTS as u32 + 10 {
            assert_eq!(limiter.take(Some(IpAddr::from(n.to_be_bytes()))), Ok(()));
            if n as usize == RateLimiter::MAX_CLIENTS - 1 {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        assert!(lock(&limiter.state).clients.len() <= 11);
    }
}
