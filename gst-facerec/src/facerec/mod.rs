// SPDX-License-Identifier: MPL-2.0

//! The `facerec` element: an in-place video filter that detects faces (YuNet), aligns them on
//! five landmarks, embeds them (dlib ResNet, 128-d) and matches them against a gallery of known
//! people. It draws boxes and names onto the frame, attaches one
//! `GstVideoRegionOfInterestMeta` (type `face`, parameter structure `facerec`) per face, and
//! posts a `facerec` element message for every processed frame that has faces.
//!
//! Its cost per frame follows the network size, not the frame size: detection gets the frame
//! scaled to `network-width` in one `VideoConverter` pass from the mapped planes (matrix,
//! range and chroma siting from the caps); each face is aligned from the planes at the frame's
//! native resolution, so a small face at 1080p keeps its pixels; boxes and anti-aliased labels
//! are blended with `GstVideoOverlayComposition`; `redact` pixelates faces that are unknown
//! (or all of them) in place. Redaction is best effort: a face the detector misses stays
//! visible.
//!
//! ## Privacy redaction
//!
//! ```text
//! gst-launch-1.0 v4l2src ! videoconvert ! facerec gallery=staff.data redact=unknown live=true ! \
//!     videoconvert ! x264enc ! mp4mux ! filesink location=floor.mp4
//! ```
//!
//! ## Example launch line
//!
//! ```text
//! gst-launch-1.0 filesrc location=clip.mp4 ! decodebin ! videoconvert ! \
//!     facerec gallery=model.data ! videoconvert ! autovideosink
//! ```
//!
//! On a Jetson, behind the CSI camera (system memory through `nvvidconv`):
//!
//! ```text
//! gst-launch-1.0 nvarguscamerasrc ! nvvidconv ! video/x-raw,format=RGBA ! \
//!     facerec gallery=model.data provider=tensorrt live=true ! nvvidconv ! nv3dsink
//! ```
//!
//! ## Bus message
//!
//! ```text
//! facerec, timestamp=(guint64), stream-time=(guint64), running-time=(guint64),
//!     duration=(guint64), inference-ns=(guint64), faces=(GstValueArray)< face, x=(int), y=(int), width=(int),
//!     height=(int), score=(double), name=(string), distance=(double), recognized=(boolean),
//!     track-id=(guint64) ... >
//! ```
//!
//! `name` is the person's name or `unknown`; `distance` is -1 when the face was not embedded
//! (narrower than `min-face-size`, or no gallery). `inference-ns` is the time detection,
//! alignment and embedding took for this frame. [`FacerecMessage`] reads and writes it;
//! absent timestamps are `GST_CLOCK_TIME_NONE`, `None` in the type.

use gst::glib;
use gst::prelude::*;

mod frame;
mod imp;
mod live;
mod message;

pub use frame::{FrameFormat, NetworkScaler};
pub use message::{FACE_NAME, FaceInfo, FacerecMessage, MESSAGE_NAME, MessageError};

glib::wrapper! {
    pub struct FaceRec(ObjectSubclass<imp::FaceRec>)
        @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// The `provider` property: which ONNX Runtime execution provider runs inference.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRecProvider")]
pub enum ProviderKind {
    #[enum_value(
        name = "Auto: TensorRT, then CUDA, then CPU, whichever works",
        nick = "auto"
    )]
    Auto = 0,
    #[enum_value(name = "CPU", nick = "cpu")]
    Cpu = 1,
    #[enum_value(
        name = "CUDA (falls back to CPU with a warning unless strict-provider)",
        nick = "cuda"
    )]
    Cuda = 2,
    #[enum_value(
        name = "TensorRT (falls back to CUDA, then CPU, with a warning unless strict-provider)",
        nick = "tensorrt"
    )]
    TensorRt = 3,
}

/// The `redact` property: which faces are pixelated in the output frames.
#[derive(Debug, Eq, PartialEq, Ord, PartialOrd, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRecRedact")]
pub enum RedactMode {
    #[default]
    #[enum_value(name = "None: every face is shown", nick = "none")]
    None = 0,
    #[enum_value(
        name = "Unknown: pixelate every face that is not named from the gallery (too small to recognise counts as unknown)",
        nick = "unknown"
    )]
    Unknown = 1,
    #[enum_value(name = "All: pixelate every detected face", nick = "all")]
    All = 2,
}

impl RedactMode {
    /// Whether a face with this name (`None`: unknown or not recognised) is redacted.
    pub fn hides(self, name: Option<&str>) -> bool {
        match self {
            RedactMode::None => false,
            RedactMode::Unknown => name.is_none(),
            RedactMode::All => true,
        }
    }
}

impl From<ProviderKind> for facerec_core::runtime::Provider {
    fn from(kind: ProviderKind) -> Self {
        use facerec_core::runtime::Provider;
        match kind {
            ProviderKind::Auto => Provider::Auto,
            ProviderKind::Cpu => Provider::Cpu,
            ProviderKind::Cuda => Provider::Cuda,
            ProviderKind::TensorRt => Provider::TensorRt,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    ProviderKind::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    RedactMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "facerec",
        gst::Rank::NONE,
        FaceRec::static_type(),
    )
}
