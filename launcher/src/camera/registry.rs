//! The cameras by name: adding (under the camera cap), removing and listing them, and pointing
//! their pipelines at a new gallery.
//!
//! Camera layer: imports the domain, the sink interface and its parent ([`Camera`],
//! [`Context`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::{Camera, Context};
use crate::domain::lock;
use crate::domain::source::Source;

/// Why a camera could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    #[error("camera {0} already exists")]
    Exists(String),
    #[error("camera limit reached: {0} cameras (max-cameras); remove one first")]
    Full(usize),
}

pub struct Registry {
    context: Arc<Context>,
    cameras: RwLock<BTreeMap<String, Arc<Camera>>>,
    /// Applies to every way of adding a camera (start-up sources, the API, `/register`).
    max_cameras: usize,
}

impl Registry {
    pub fn new(context: Arc<Context>, max_cameras: usize) -> Registry {
        Registry {
            context,
            cameras: RwLock::new(BTreeMap::new()),
            max_cameras,
        }
    }

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

    /// Adds and starts a camera; fails if the name is taken or the cap reached.
    pub fn add(&self, name: String, uri: String, source: Source) -> Result<Arc<Camera>, AddError> {
        let mut cameras = self.cameras.write().unwrap_or_else(|e| e.into_inner());
        if cameras.contains_key(&name) {
            return Err(AddError::Exists(name));
        }
        if cameras.len() >= self.max_cameras {
            return Err(AddError::Full(self.max_cameras));
        }
        self.context.sink.camera_added(&name);
        let camera = Camera::start(name.clone(), uri, source, self.context.clone());
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
        self.context.sink.camera_removed(name);
        Some(camera)
    }

    /// The gallery the pipelines are set up with.
    pub fn gallery(&self) -> Option<PathBuf> {
        lock(&self.context.settings).gallery.clone()
    }

    /// Makes `path` the gallery of every pipeline, now and after any rebuild. Returns how many
    /// running pipelines reloaded it.
    pub fn switch_gallery(&self, path: &Path) -> usize {
        lock(&self.context.settings).gallery = Some(path.to_path_buf());
        self.reload_gallery(path)
    }

    /// Asks every running pipeline to (re)load the gallery at `path`, and tells the sink.
    /// Returns how many did. Blocking.
    pub fn reload_gallery(&self, path: &Path) -> usize {
        let reloaded = self.all().iter().filter(|c| c.reload_gallery(path)).count();
        self.context.sink.gallery_changed(path);
        reloaded
    }

    /// Stops every pipeline (blocking), at shutdown: the sinks keep what the cameras published.
    pub fn shutdown(&self) {
        for camera in self.all() {
            camera.shutdown();
        }
    }
}
