//! The cameras: each one's GStreamer pipeline and the supervisor thread that rebuilds it
//! ([`supervisor`], re-exported here), the registry that holds them, and what the configuration
//! needs of the element as well (its properties and the pipeline settings).
//!
//! Camera layer: imports the domain and the services' interfaces (the event sink, the
//! metrics). A camera's events go to the [`EventSink`] of its [`Context`]; the [`registry`]
//! holds the cameras. Without the `server` feature only [`element`] and [`settings`] are built,
//! which is what the configuration parser (and its fuzz target) needs.

pub mod element;
#[cfg(feature = "server")]
pub mod registry;
pub mod settings;
#[cfg(feature = "server")]
mod supervisor;

#[cfg(feature = "server")]
pub use supervisor::*;
