//! GStreamer-free vision core of facerec.
//!
//! Everything that the `facerec` element, the `facerec-model` tool and the launcher share lives
//! here, so that detection, alignment, embedding and matching are written exactly once:
//!
//! * [`detect`]: YuNet face detection (pre-processing, decoding, NMS), per `shared/models/README.md` §1.
//! * [`align`]: five-point similarity alignment to the 150x150 dlib chip (§3 of that README).
//! * [`embed`]: batched dlib ResNet embeddings (§2), and [`batch`]: one run for the chips of
//!   several streams.
//! * [`gallery`]: the versioned `model.data` gallery format and matching.
//! * [`tracker`]: an IoU tracker that carries identities between detection frames.
//! * [`quality`] and [`identity`]: a quality score per embedding attempt (size, sharpness,
//!   pose), and the per-track vote that decides a track's name from its good attempts.
//! * [`frame`] and [`overlay`]: raw video frames in the element's pixel formats read in place
//!   (alignment, redaction), and what to draw on them (boxes, anti-aliased labels).
//! * [`engine`]: all of the above per frame, with names decided per track.
//! * [`runtime`] and [`models`]: finding and loading ONNX Runtime and the model files.
//! * [`stills`]: photo files (size-checked, EXIF-upright loading) and face detection in them at any size.
//! * [`tunables`]: the settings that may change while running, each declared once (name, type,
//!   range, default, unit, nick, blurb) for the element, the launcher and the model tool.
//! * [`files`]: atomic file writes, shared by the gallery, the model fetch and the launcher.

pub mod align;
pub mod batch;
pub mod detect;
pub mod embed;
pub mod engine;
pub mod error;
pub mod files;
pub mod frame;
pub mod gallery;
pub mod geometry;
pub mod identity;
pub mod models;
pub mod overlay;
pub mod quality;
pub mod runtime;
pub mod schedule;
pub mod stills;
#[cfg(any(test, feature = "testsupport"))]
pub mod testsupport;
pub mod tracker;
pub mod tunables;

pub use error::{Error, Result};
pub use image;
