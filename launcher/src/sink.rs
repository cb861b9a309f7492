//! The one way events reach their consumers: [`EventSink`]. The cameras, the recorder and the
//! camera registry tell a sink what happened; the SSE feed, the recorder (history), MQTT and the
//! metrics are sinks, each taking the events it cares about. A new consumer (a webhook, say) is
//! one type implementing [`EventSink`] and one [`Sinks::add`] in `main.rs`.
//!
//! Services layer: imports the domain only.

use std::path::Path;
use std::sync::Arc;

use crate::domain::{CameraState, Draft, Presence, StoredEvent};

/// A consumer of the launcher's events. Every method has a default that ignores the event, so a
/// sink implements only what it consumes. Methods are called on camera and recorder threads:
/// they must not block (queue the work instead).
pub trait EventSink: Send + Sync {
    /// A camera's event for a track, before it is stored (the recorder stores it).
    fn track(&self, _draft: &Draft) {}
    /// An event as stored in the history, with its id.
    fn recognition(&self, _event: &StoredEvent) {}
    /// Who a camera has in view changed.
    fn presence(&self, _camera: &str, _presence: &Presence) {}
    /// A camera's pipeline entered (or re-entered) `state`.
    fn camera_state(&self, _camera: &str, _state: CameraState) {}
    /// A camera was added (at start-up or through the API).
    fn camera_added(&self, _camera: &str) {}
    /// A camera was removed through the API (not at shutdown: what it published stays).
    fn camera_removed(&self, _camera: &str) {}
    /// The pipelines now use the gallery at `path`.
    fn gallery_changed(&self, _path: &Path) {}
    /// A person was erased (right to erasure): forget everything published about them.
    fn person_erased(&self, _name: &str) {}
}

/// Several sinks as one: each event goes to every sink, in the order they were added.
#[derive(Clone, Default)]
pub struct Sinks(Vec<Arc<dyn EventSink>>);

impl Sinks {
    pub fn new() -> Sinks {
        Sinks::default()
    }

    pub fn add(&mut self, sink: Arc<dyn EventSink>) -> &mut Sinks {
        self.0.push(sink);
        self
    }
}

impl EventSink for Sinks {
    fn track(&self, draft: &Draft) {
        self.0.iter().for_each(|s| s.track(draft));
    }

    fn recognition(&self, event: &StoredEvent) {
        self.0.iter().for_each(|s| s.recognition(event));
    }

    fn presence(&self, camera: &str, presence: &Presence) {
        self.0.iter().for_each(|s| s.presence(camera, presence));
    }

    fn camera_state(&self, camera: &str, state: CameraState) {
        self.0.iter().for_each(|s| s.camera_state(camera, state));
    }

    fn camera_added(&self, camera: &str) {
        self.0.iter().for_each(|s| s.camera_added(camera));
    }

    fn camera_removed(&self, camera: &str) {
        self.0.iter().for_each(|s| s.camera_removed(camera));
    }

    fn gallery_changed(&self, path: &Path) {
        self.0.iter().for_each(|s| s.gallery_changed(path));
    }

    fn person_erased(&self, name: &str) {
        self.0.iter().for_each(|s| s.person_erased(name));
    }
}
