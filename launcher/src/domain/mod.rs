//! The launcher's domain layer: its vocabulary and rules, with no I/O (no GStreamer, no
//! network, no database). Its modules import only std, small libraries (serde, url, anyhow) and
//! the element's plain data types, and each other, never a module outside `domain`: everything
//! else in the launcher builds on them.

pub mod camera_state;
pub mod event;
pub mod load;
pub mod net;
pub mod rate_limit;
pub mod redact;
pub mod source;
pub mod sync;
pub mod throttle;

pub use camera_state::CameraState;
pub use event::{Draft, EventKind, NewEvent, Presence, StoredEvent};
pub use sync::lock;
