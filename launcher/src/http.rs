//! The HTTP API: the page, MJPEG streams and snapshots, the camera and gallery API, SSE events,
//! health and metrics.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, RwLock};
use std::time::Duration;

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

const BOUNDARY: &str = "frame";
const PAGE: &str = include_str!("../web/index.html");

pub struct App {
    pub hub: Arc<Hub>,
    pub cameras: RwLock<BTreeMap<String, Arc<Camera>>>,
    pub clients: Arc<Semaphore>,
    pub shutdown: CancellationToken,
    pub api_token: Option<String>,
    pub media_dir: Option<std::path::PathBuf>,
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

fn authorize(app: &App, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = &app.api_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    // Compare without an early exit, so the time taken does not reveal the token.
    let matches = given.is_some_and(|g| {
        g.len() == token.len()
            && g.bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    });
    if matches {
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
}

/// The demo's ESP32 cameras call `GET /register?ip=&token=` and then serve MJPEG at
/// `http://<ip>/stream`. Registering again with the same address is harmless.
async fn register(
    State(app): State<Shared>,
    Query(r): Query<Registration>,
) -> Result<String, ApiError> {
    let (name, source) = esp32_camera(&r.ip, &r.token)
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Source::Http { url } = &source else {
        unreachable!("esp32 cameras are http")
    };
    if let Some(existing) = app.camera(&name) {
        if &existing.uri == url {
            return Ok(format!("{name} already registered\n"));
        }
        // Same camera, new token: replace it.
        let (app2, n) = (app.clone(), name.clone());
        let _ = tokio::task::spawn_blocking(move || app2.remove(&n)).await;
    }
    app.add(name.clone(), url.clone(), source)?;
    tracing::info!(camera = %name, "registered an ESP32 camera");
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
