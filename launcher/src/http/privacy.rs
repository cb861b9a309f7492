//! A person's rights over their data, and the record of who did what: erasure everywhere
//! (`DELETE /api/people/{name}?erase=history`, through [`erase`]), the subject-access export
//! (`GET /api/people/{name}/export`, a zip) and the audit log (`GET /api/audit`). Admins only.
//!
//! HTTP layer: imports its parent's state, table and error type, and the services.

use std::io::Write;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::{Access, ApiError, Routes, Shared};
use crate::domain::lock;
use crate::store::HistoryQuery;

pub(super) fn routes() -> Routes {
    Routes::new()
        .add(
            Method::GET,
            "/api/people/{name}/export",
            Access::Admin,
            export,
        )
        .add(Method::GET, "/api/audit", Access::Admin, audit)
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

/// What an erasure removed.
#[derive(Debug, Default, Serialize)]
pub struct Erased {
    pub name: String,
    pub photos: usize,
    pub embeddings: usize,
    pub rejects: usize,
    pub history_events: usize,
    pub crops: usize,
    pub strangers: usize,
}

/// Every history event naming `name` (or, with `stranger`, of that stranger id), all pages.
fn events_of(
    store: &crate::store::Store,
    name: Option<&str>,
    stranger: Option<&str>,
) -> Result<Vec<crate::store::StoredEvent>, ApiError> {
    let mut events = Vec::new();
    let mut cursor = None;
    loop {
        let page = store
            .query(&HistoryQuery {
                name: name.map(str::to_string),
                stranger: stranger.map(str::to_string),
                limit: 500,
                cursor,
                ..HistoryQuery::default()
            })
            .map_err(internal)?;
        events.extend(page.events);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(events),
        }
    }
}

/// Right to erasure: the person's photos, embeddings and rejects, every history event (and
/// crop) that names them, the strangers that were them (and those strangers' events), and what
/// MQTT retains about them. Blocking: call it from a blocking task.
pub(super) fn erase(app: &Shared, name: &str) -> Result<Erased, ApiError> {
    let library = app.library.clone().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            "the face library is off (no writable data folder)".into(),
        )
    })?;
    // Their embeddings, before they go: the strangers that match them were them.
    let embeddings: Vec<Vec<f32>> =
        facerec_core::gallery::Gallery::from_bytes(&library.gallery_bytes())
            .map(|g| {
                g.people
                    .into_iter()
                    .filter(|p| p.name == name)
                    .flat_map(|p| p.enrolments.into_iter().map(|e| e.embedding))
                    .collect()
            })
            .unwrap_or_default();
    let removed = library.erase(name)?;
    if let Some(path) = library.gallery_path() {
        app.cameras.switch_gallery(&path);
    }
    let stranger_ids = lock(&app.strangers).forget_near(&embeddings);
    let mut erased = Erased {
        name: name.to_string(),
        photos: removed.photos,
        embeddings: removed.embeddings,
        rejects: removed.rejects,
        strangers: stranger_ids.len(),
        ..Erased::default()
    };
    let mut events = events_of(&app.store, Some(name), None)?;
    for id in &stranger_ids {
        events.extend(events_of(&app.store, None, Some(id))?);
    }
    for event in events {
        if app.store.delete(event.id).map_err(internal)? {
            erased.history_events += 1;
            erased.crops += usize::from(event.has_crop);
        }
    }
    app.sinks.person_erased(name);
    tracing::info!(
        photos = erased.photos,
        embeddings = erased.embeddings,
        rejects = erased.rejects,
        events = erased.history_events,
        strangers = erased.strangers,
        "a person was erased"
    );
    Ok(erased)
}

/// Subject access: a zip of the person's photos, their history events (JSON) and those
/// events' face crops.
async fn export(State(app): State<Shared>, Path(name): Path<String>) -> Result<Response, ApiError> {
    let library = app.library.clone().ok_or_else(|| {
        ApiError(
            StatusCode::CONFLICT,
            "the face library is off (no writable data folder)".into(),
        )
    })?;
    let app2 = app.clone();
    let name2 = name.clone();
    let bytes = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, ApiError> {
        let photos = library.subject_files(&name2)?;
        let events = events_of(&app2.store, Some(&name2), None)?;
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        // JPEG and PNG are compressed already: stored as they are.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        for (file, bytes) in &photos {
            zip.start_file(format!("photos/{file}"), options)
                .map_err(internal)?;
            zip.write_all(bytes).map_err(internal)?;
        }
        zip.start_file("history.json", options).map_err(internal)?;
        let json = serde_json::to_vec_pretty(&events).map_err(internal)?;
        zip.write_all(&json).map_err(internal)?;
        for event in events.iter().filter(|e| e.has_crop) {
            if let Some(crop) = app2.store.crop(event.id).map_err(internal)? {
                zip.start_file(format!("history/{}.jpg", event.id), options)
                    .map_err(internal)?;
                zip.write_all(&crop).map_err(internal)?;
            }
        }
        Ok(zip.finish().map_err(internal)?.into_inner())
    })
    .await
    .map_err(internal)??;
    let file_name: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}.zip\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct AuditParams {
    limit: Option<usize>,
    /// Entries with an id below this one (the previous page's `next_before`).
    before: Option<i64>,
}

async fn audit(
    State(app): State<Shared>,
    Query(params): Query<AuditParams>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let audit = app.audit.clone();
    let entries = tokio::task::spawn_blocking(move || audit.list(params.before, limit))
        .await
        .map_err(internal)?
        .map_err(internal)?;
    let next_before = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(Json(serde_json::json!({
        "entries": entries,
        "next_before": next_before,
    })))
}
