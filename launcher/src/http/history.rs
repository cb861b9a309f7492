//! The history and face-library routes: `/api/history…`, `/api/people…`, `/api/library/export`.
//!
//! HTTP layer: imports its parent's state and error type, the domain and the services.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;

use super::{Access, ApiError, Routes, Shared};
use crate::domain::lock;
use crate::library::{Library, LibraryError, MAX_PHOTO_BYTES, PersonView, Upload};
use crate::store::{HistoryQuery, StoredEvent};

/// Most photos in one upload request.
const MAX_PHOTOS_PER_UPLOAD: usize = 20;

/// The history and library routes: reads for any signed-in user; changes and the export (every
/// embedding) for admins.
pub(super) fn routes() -> Routes {
    use Access::*;
    let upload_limit =
        DefaultBodyLimit::max((MAX_PHOTO_BYTES as usize + 64 * 1024) * MAX_PHOTOS_PER_UPLOAD);
    Routes::new()
        .add(Method::GET, "/api/history", Viewer, list)
        .add(Method::GET, "/api/history/{id}", Viewer, one)
        .add(Method::DELETE, "/api/history/{id}", Admin, delete)
        .add(Method::GET, "/api/history/{id}/face.jpg", Viewer, face)
        .add(Method::POST, "/api/history/{id}/enrol", Admin, enrol)
        .add(Method::POST, "/api/history/{id}/reject", Admin, reject)
        .add(Method::GET, "/api/people", Viewer, people)
        .add(Method::PUT, "/api/people/{name}", Admin, rename)
        .add(Method::DELETE, "/api/people/{name}", Admin, delete_person)
        .add_routed(
            Method::POST,
            "/api/people/{name}/photos",
            Admin,
            post(upload).layer(upload_limit),
        )
        .add(Method::GET, "/api/people/{name}/photos/{id}", Viewer, photo)
        .add(
            Method::DELETE,
            "/api/people/{name}/photos/{id}",
            Admin,
            delete_photo,
        )
        .add(Method::GET, "/api/library/export", Admin, export)
}

fn store_error(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

impl From<LibraryError> for ApiError {
    fn from(e: LibraryError) -> ApiError {
        let status = match &e {
            LibraryError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            LibraryError::NotFound(_) => StatusCode::NOT_FOUND,
            LibraryError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            LibraryError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            LibraryError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, e.to_string())
    }
}

fn library(app: &Shared) -> Result<Arc<Library>, ApiError> {
    app.library
        .clone()
        .ok_or_else(|| LibraryError::Unavailable.into())
}

/// Event ids are integers; anything else is simply not an event.
fn event_id(id: &str) -> Result<i64, ApiError> {
    id.parse::<i64>()
        .ok()
        .filter(|i| *i > 0)
        .ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no history event {id:?}")))
}

fn no_event(id: i64) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, format!("no history event {id}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
}

#[derive(Debug, Deserialize)]
pub struct HistoryParams {
    camera: Option<String>,
    name: Option<String>,
    unknown: Option<String>,
    stranger: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

fn bad_request(text: String) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, text)
}

fn parse_time(what: &str, text: &str) -> Result<i64, ApiError> {
    let time = humantime::parse_rfc3339_weak(text)
        .map_err(|e| bad_request(format!("{what}={text:?} is not an RFC 3339 time ({e})")))?;
    Ok(time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0))
}

impl HistoryParams {
    fn query(&self) -> Result<HistoryQuery, ApiError> {
        let non_empty = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
        let unknown = match self.unknown.as_deref() {
            None | Some("") => None,
            Some("true") | Some("1") => Some(true),
            Some("false") | Some("0") => Some(false),
            Some(other) => {
                return Err(bad_request(format!("unknown={other:?}: use true or false")));
            }
        };
        let limit = match self.limit.as_deref() {
            None | Some("") => 50,
            Some(text) => text
                .parse::<usize>()
                .ok()
                .filter(|l| (1..=500).contains(l))
                .ok_or_else(|| bad_request(format!("limit={text:?}: use 1 to 500")))?,
        };
        let cursor = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(text) => Some(
                text.parse::<i64>()
                    .map_err(|_| bad_request(format!("cursor={text:?} is not a cursor")))?,
            ),
        };
        Ok(HistoryQuery {
            camera: non_empty(&self.camera),
            name: non_empty(&self.name),
            unknown,
            stranger: non_empty(&self.stranger),
            since_ms: non_empty(&self.since)
                .map(|t| parse_time("since", &t))
                .transpose()?,
            until_ms: non_empty(&self.until)
                .map(|t| parse_time("until", &t))
                .transpose()?,
            limit,
            cursor,
        })
    }
}

async fn list(
    State(app): State<Shared>,
    Query(params): Query<HistoryParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = params.query()?;
    let store = app.store.clone();
    let page = blocking(move || store.query(&query).map_err(store_error)).await?;
    Ok(Json(serde_json::json!({
        "events": page.events,
        "next_cursor": page.next_cursor.map(|c| c.to_string()),
    })))
}

async fn one(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<StoredEvent>, ApiError> {
    let id = event_id(&id)?;
    let store = app.store.clone();
    blocking(move || {
        store
            .get(id)
            .map_err(store_error)?
            .ok_or_else(|| no_event(id))
    })
    .await
    .map(Json)
}

fn jpeg(bytes: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from(bytes),
    )
        .into_response()
}

async fn face(State(app): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = event_id(&id)?;
    let store = app.store.clone();
    let bytes = blocking(move || {
        store.crop(id).map_err(store_error)?.ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                format!("no face crop for event {id}"),
            )
        })
    })
    .await?;
    Ok(jpeg(bytes))
}

async fn delete(State(app): State<Shared>, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    let id = event_id(&id)?;
    let store = app.store.clone();
    blocking(move || match store.delete(id).map_err(store_error)? {
        true => Ok(StatusCode::NO_CONTENT),
        false => Err(no_event(id)),
    })
    .await
}

/// Points every pipeline at the library's gallery, now and after any rebuild.
fn reload_all(app: &Shared, library: &Library) {
    let Some(path) = library.gallery_path() else {
        return;
    };
    let reloaded = app.cameras.switch_gallery(&path);
    tracing::info!(cameras = reloaded, gallery = %path.display(), "library changed: gallery reloaded");
}

/// An event's crop spooled to a file in the uploads folder (removed on drop).
struct Spooled(PathBuf);

impl Drop for Spooled {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn spool_name(library: &Library) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    library.uploads_dir().join(format!(
        "upload-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The crop of an event with its name, spooled for the library.
fn event_crop(
    app: &Shared,
    library: &Library,
    id: i64,
) -> Result<(StoredEvent, Spooled), ApiError> {
    let event = app
        .store
        .get(id)
        .map_err(store_error)?
        .ok_or_else(|| no_event(id))?;
    let bytes =
        app.store.crop(id).map_err(store_error)?.ok_or_else(|| {
            ApiError(StatusCode::CONFLICT, format!("event {id} has no face crop"))
        })?;
    let spooled = Spooled(spool_name(library));
    std::fs::write(&spooled.0, bytes).map_err(store_error)?;
    Ok((event, spooled))
}

#[derive(Debug, Deserialize)]
pub struct NameBody {
    name: String,
}

/// `{"name": …}`, parsed in the handler, after the token layer, so that a request without the
/// token is refused as such whatever its body.
fn name_body(body: &[u8]) -> Result<String, ApiError> {
    serde_json::from_slice::<NameBody>(body)
        .map(|b| b.name)
        .map_err(|e| {
            ApiError(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("expected a JSON body {{\"name\": \"…\"}}: {e}"),
            )
        })
}

async fn enrol(
    State(app): State<Shared>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<PersonView>), ApiError> {
    let name = name_body(&body)?;
    let id = event_id(&id)?;
    let library = library(&app)?;
    let app2 = app.clone();
    let person = blocking(move || {
        // The name first, as for an upload.
        library.check_name(&name)?;
        let (event, spooled) = event_crop(&app2, &library, id)?;
        let upload = Upload {
            file_name: format!("the face of event {id}"),
            path: spooled.0.clone(),
        };
        let person = library.add_photos(&name, &[upload])?;
        if let Some(stranger) = &event.stranger {
            lock(&app2.strangers).forget(stranger);
        }
        reload_all(&app2, &library);
        Ok(person)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(person)))
}

async fn reject(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = event_id(&id)?;
    let library = library(&app)?;
    let app2 = app.clone();
    let name = blocking(move || {
        let (event, spooled) = event_crop(&app2, &library, id)?;
        if event.name == facerec_core::gallery::UNKNOWN {
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!("event {id} gave no name, so there is none to reject"),
            ));
        }
        let upload = Upload {
            file_name: format!("the face of event {id}"),
            path: spooled.0.clone(),
        };
        library.reject(&event.name, &upload)?;
        reload_all(&app2, &library);
        Ok(event.name)
    })
    .await?;
    Ok(Json(serde_json::json!({ "name": name, "event": id })))
}

/// The people, each with a face to show: their first library photo, or for a person from the
/// starting gallery (no photo) their best history crop.
async fn people(State(app): State<Shared>) -> Result<Json<Vec<PersonView>>, ApiError> {
    let library = library(&app)?;
    let store = app.store.clone();
    blocking(move || {
        let mut people = library.people();
        for person in people.iter_mut().filter(|p| p.thumbnail.is_none()) {
            if let Some(id) = store.best_face(&person.name).map_err(store_error)? {
                person.thumbnail = Some(format!("/api/history/{id}/face.jpg"));
            }
        }
        Ok(people)
    })
    .await
    .map(Json)
}

async fn photo(
    State(app): State<Shared>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let library = library(&app)?;
    let (path, bytes) = blocking(move || {
        let path = library.photo_path(&name, &id)?;
        let bytes = std::fs::read(&path).map_err(store_error)?;
        Ok((path, bytes))
    })
    .await?;
    let mime = if path.extension().is_some_and(|e| e == "png") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(([(header::CONTENT_TYPE, mime)], Body::from(bytes)).into_response())
}

/// Reads what is left of an upload without keeping it, so that an early refusal reaches the
/// client (see `upload`). A malformed rest ends it.
async fn discard_rest(multipart: &mut Multipart) {
    while let Ok(Some(mut field)) = multipart.next_field().await {
        while let Ok(Some(_)) = field.chunk().await {}
    }
}

async fn upload(
    State(app): State<Shared>,
    Path(name): Path<String>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<PersonView>), ApiError> {
    use axum::extract::FromRequest;
    use tokio::io::AsyncWriteExt;
    let mut multipart = Multipart::from_request(request, &())
        .await
        .map_err(|e| ApiError(e.status(), e.body_text()))?;
    let library = library(&app)?;
    // The name first, so that a bad one stores nothing. The upload is still read (and
    // discarded; the route's body limit bounds it): a connection closed with the request unread
    // is reset, and the client then sees a broken pipe instead of this answer.
    if let Err(e) = library.check_name(&name) {
        discard_rest(&mut multipart).await;
        return Err(e.into());
    }
    let multipart_error =
        |e: axum::extract::multipart::MultipartError| ApiError(e.status(), e.body_text());
    let mut spooled: Vec<(String, Spooled)> = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        if field.name() != Some("photo") {
            continue;
        }
        if spooled.len() == MAX_PHOTOS_PER_UPLOAD {
            discard_rest(&mut multipart).await;
            return Err(ApiError(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("at most {MAX_PHOTOS_PER_UPLOAD} photos per request"),
            ));
        }
        let file_name: String = field
            .file_name()
            .unwrap_or("photo")
            .chars()
            .filter(|c| !c.is_control())
            .take(100)
            .collect();
        // Streamed to disk chunk by chunk: memory stays bounded whatever the upload's size.
        let target = Spooled(spool_name(&library));
        let mut file = tokio::fs::File::create(&target.0)
            .await
            .map_err(store_error)?;
        let mut written: u64 = 0;
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            written += chunk.len() as u64;
            if written > MAX_PHOTO_BYTES {
                while let Ok(Some(_)) = field.chunk().await {}
                drop(field);
                discard_rest(&mut multipart).await;
                return Err(LibraryError::TooLarge(format!(
                    "{file_name}: larger than {} MB",
                    MAX_PHOTO_BYTES / (1024 * 1024)
                ))
                .into());
            }
            file.write_all(&chunk).await.map_err(store_error)?;
        }
        file.flush().await.map_err(store_error)?;
        spooled.push((file_name, target));
    }
    let app2 = app.clone();
    let person = blocking(move || {
        let uploads: Vec<Upload> = spooled
            .iter()
            .map(|(file_name, s)| Upload {
                file_name: file_name.clone(),
                path: s.0.clone(),
            })
            .collect();
        let person = library.add_photos(&name, &uploads)?;
        reload_all(&app2, &library);
        drop(spooled);
        Ok(person)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(person)))
}

async fn delete_photo(
    State(app): State<Shared>,
    Path((name, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let library = library(&app)?;
    let app2 = app.clone();
    blocking(move || {
        library.delete_photo(&name, &id)?;
        reload_all(&app2, &library);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(Deserialize)]
struct DeletePerson {
    /// `history`: erase the person everywhere (see `privacy::erase`).
    erase: Option<String>,
}

async fn delete_person(
    State(app): State<Shared>,
    Path(name): Path<String>,
    Query(params): Query<DeletePerson>,
) -> Result<Response, ApiError> {
    match params.erase.as_deref() {
        None => {}
        Some("history") => {
            let app2 = app.clone();
            return blocking(move || super::privacy::erase(&app2, &name))
                .await
                .map(|erased| Json(erased).into_response());
        }
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("erase={other:?}: the only erasure is erase=history"),
            ));
        }
    }
    let library = library(&app)?;
    let app2 = app.clone();
    blocking(move || {
        library.delete_person(&name)?;
        reload_all(&app2, &library);
        Ok(StatusCode::NO_CONTENT.into_response())
    })
    .await
}

async fn rename(
    State(app): State<Shared>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<PersonView>, ApiError> {
    let to = name_body(&body)?;
    let library = library(&app)?;
    let app2 = app.clone();
    blocking(move || {
        let person = library.rename(&name, &to)?;
        reload_all(&app2, &library);
        Ok(person)
    })
    .await
    .map(Json)
}

async fn export(State(app): State<Shared>) -> Result<Response, ApiError> {
    let library = library(&app)?;
    let bytes = blocking(move || Ok(library.gallery_bytes())).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"model.data\"",
            ),
        ],
        Body::from(bytes),
    )
        .into_response())
}
