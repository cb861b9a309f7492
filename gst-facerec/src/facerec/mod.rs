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
//! ## Names decided per track
//!
//! A face keeps its track from frame to frame, and its name is decided over the track's
//! embedding attempts, not by the latest one (`facerec_core::identity` has the details):
//!
//! * every attempt gets a **quality** (0-1) from the face's size, its sharpness (a
//!   contrast-normalised variance of the Laplacian of the aligned chip, which does not depend on
//!   the frame's size) and its pose (yaw and pitch from the five landmarks). Attempts under
//!   `min-quality` (0.25) are not embedded and name nobody. The floor sits under the clip's
//!   softest correctly named face (its pianist, 0.35-0.45), so it skips faces too blurred, small
//!   or turned to match anyway (measured: a 366 px face under a Gaussian blur of sigma 16 still
//!   matches at 0.48 and passes; at sigma 32 it scores 0.065 and is skipped);
//! * an attempt counts for its nearest person when that person is under `match-threshold` and,
//!   if the second-nearest *person* is under it too, closer than them by `match-margin` (0.15);
//!   otherwise it counts for "unknown". Two people matching one face about equally (a
//!   look-alike, or one person enrolled under two names) name nobody;
//! * evidence is weighted by quality and by how far under the threshold the match is, and a
//!   name is shown once its evidence reaches `confidence-bar` (0.6: one sharp frontal match at
//!   0.57 or closer) and half of the track's evidence. A shown name gives way to another person
//!   only when that person holds twice its evidence for two attempts in a row, and to "unknown"
//!   when unknown holds 1.25 times its evidence and the bar; a new face at a scene cut (box
//!   overlap under 0.5) starts a new track;
//! * a track is embedded on every frame for its first ten attempts and while its name rests on
//!   weak or contrary evidence, then every `recognize-interval` detections (unknown tracks three
//!   times as often).
//!
//! The anchors: the reference pipeline's per-frame names on the sample clip
//! (`expected/hamilton_reference.json`) and Frigate's defaults (`unknown_score` 0.8,
//! `recognition_threshold` 0.9, `min_area` 500 px², `blur_confidence_filter` on,
//! <https://docs.frigate.video/configuration/face_recognition>), which also names a tracked
//! object by a score-weighted vote over its attempts.
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
//! On a Jetson, behind the CSI camera, with the plugin built with `--features nvmm`: the element
//! also takes `video/x-raw(memory:NVMM)` in RGBA and NV12 (pitch-linear), maps the surfaces for
//! the CPU through `libnvbufsurface.so` (opened at negotiation; `FACEREC_NVBUFSURFACE_LIB`
//! names another path; missing, it is an element error and system memory still works),
//! scales each detected frame to the network size on the VIC through
//! `libnvbufsurftransform.so` where it loads (`FACEREC_NVBUFSURFTRANSFORM_LIB`; missing, the CPU
//! scales, with one warning), and draws on them:
//!
//! ```text
//! gst-launch-1.0 nvarguscamerasrc ! 'video/x-raw(memory:NVMM)' ! nvvidconv ! \
//!     'video/x-raw(memory:NVMM),format=RGBA' ! \
//!     facerec gallery=model.data provider=tensorrt live=true ! nvvidconv ! nv3dsink
//! ```
//!
//! Without the feature, through system memory: `nvvidconv ! video/x-raw,format=RGBA ! facerec`.
//!
//! ## Many streams in one process
//!
//! Every `facerec` element in a process (the launcher's cameras, or several branches of one
//! `gst-launch-1.0`) with the same model files, provider, variant, TensorRT options and
//! `threads` shares one ONNX Runtime session per model, loaded once: a second camera costs its
//! frames and tracks, not another copy of the networks and their thread pools. The elements
//! take turns on it (`facerec_core::schedule`): a live element waits with only its newest
//! frame (older ones are dropped as stale), an element that has had less than
//! `min-detect-fps` is served first, then one recognising a new face, then round-robin. Frames
//! always pass in `live` mode; under overload every stream detects less often, evenly.
//! Recognition is batched across them (`facerec_core::batch`, `recognition-batch`): an element
//! with faces to embed while another waits for a turn leaves them for that turn, which embeds
//! them in one run with its own. `stats` reports the stale drops, the waits for a turn, the
//! engine's busy time and the shared runs.
//!
//! ```text
//! gst-launch-1.0 v4l2src device=/dev/video0 ! videoconvert ! facerec live=true gallery=model.data ! \
//!     videoconvert ! autovideosink \
//!   v4l2src device=/dev/video2 ! videoconvert ! facerec live=true gallery=model.data ! \
//!     videoconvert ! autovideosink
//! ```
//!
//! ## Bus message
//!
//! ```text
//! facerec, timestamp=(guint64), stream-time=(guint64), running-time=(guint64),
//!     duration=(guint64), inference-ns=(guint64), faces=(GstValueArray)< face, x=(int), y=(int), width=(int),
//!     height=(int), score=(double), name=(string), distance=(double), recognized=(boolean),
//!     track-id=(guint64), quality=(double), confidence=(double)
//!     [, crop=(GstBuffer), crop-x=(int), crop-y=(int), crop-width=(uint), crop-height=(uint)] ... >
//! ```
//!
//! `name` is the track's decided name or `unknown`; `distance` is the latest attempt's distance
//! to the nearest person, -1 when the face was not embedded (narrower than `min-face-size`, no
//! gallery, or every attempt under `min-quality`). `quality` is the latest attempt's quality,
//! -1 when the face was never tried; `confidence` is the shown label's share of the track's
//! evidence (0-1; 0 before any attempt of good quality). The ROI meta's `facerec` parameters
//! carry `name`, `distance`, `score`, `track-id`, `quality` and `confidence`. `inference-ns` is the time detection,
//! alignment and embedding took for this frame. [`FaceRecMessage`] reads and writes it;
//! absent timestamps are `GST_CLOCK_TIME_NONE`, `None` in the type.
//!
//! ## Face crops
//!
//! With `face-crops=true` a face carries `crop`: packed RGB (3 bytes per pixel, no row
//! padding) of its box plus 25% of its size on every side, clipped to the frame, at the frame's
//! full resolution, cut before anything is drawn or redacted; `crop-x`, `crop-y` are its
//! top-left corner in the frame. A track's face carries one when the track first appears, when
//! its decided name changes, and when its quality beats the best crop sent for it by 0.05; the
//! other faces carry none (the fields are absent), nor does any face with `face-crops=false`,
//! which costs nothing. In `live` mode the crop comes from the frame the worker analysed.
//!
//! ## TensorRT, CUDA and the model variant
//!
//! `trt-engine-cache`, `trt-fp16`, `trt-timing-cache` and `cuda-device` become ONNX Runtime's
//! TensorRT options `trt_engine_cache_enable`/`trt_engine_cache_path`, `trt_fp16_enable`,
//! `trt_timing_cache_enable`/`trt_timing_cache_path` and `device_id` (CUDA gets `device_id`
//! too, as TensorRT's fallback). Without the provider nothing changes: the fallback to CPU
//! warns as before. Build the engines once, then every start loads them:
//!
//! ```text
//! gst-launch-1.0 nvarguscamerasrc num-buffers=300 ! nvvidconv ! video/x-raw,format=RGBA ! \
//!     facerec provider=tensorrt strict-provider=true trt-engine-cache=/var/cache/facerec/trt ! \
//!     fakesink
//! ```
//!
//! `model-variant` (fp32, fp16, int8) picks the model files; a variant that has not passed the
//! accuracy gate (`ModelVariant::check_selectable`) fails the start with its reason.
//!
//! ## Code layout
//!
//! As in gst-plugins-rs: `mod.rs` holds the GObject wrapper, the public enums, the debug
//! category and `register`; `imp.rs` is the GObject glue (settings and per-run state behind
//! mutexes, properties, pad templates, start and stop, caps in `set_info`) and a short
//! `transform_ip` that passes each frame through four stages beside it: `source` maps the
//! buffer for the CPU (system memory or an NVMM surface) and makes the detector's input in
//! one function (`NetworkScalers::network_input`, on the VIC or the CPU); `processor` runs the
//! engine on the streaming thread or hands the frame to the `live` worker; `annotate`
//! redacts, draws and attaches the ROI metas; `bus` posts the `facerec` message, and its
//! `ElementSink` is how the live worker posts (the worker knows only the `LiveSink` trait).
//! Beneath the stages: `frame` (formats, CPU scaler, overlay blender, frame times), `crops`,
//! `message`, `live`, `sync` and, with the `nvmm` feature, `nvmm` and its FFI modules. Imports
//! go one way, down: `imp` names the stages and the modules beneath them, a stage names only
//! modules beneath it (never another stage), and nothing names `imp`; any module may name the
//! parent's items (`super::FaceRec`, `super::CAT`), which is not an import of a sibling.
//! `deploy/tests/module-circles.py` keeps it free of circles.

use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;

mod annotate;
mod bus;
mod crops;
mod frame;
mod imp;
mod live;
mod message;
#[cfg(feature = "nvmm")]
pub mod nvbufsurface;
#[cfg(feature = "nvmm")]
pub mod nvbufsurftransform;
#[cfg(feature = "nvmm")]
mod nvmm;
mod processor;
mod source;
mod sync;

pub use crops::{CROP_MARGIN, QUALITY_STEP, crop_rect};
pub use frame::{FrameFormat, NetworkScaler};
pub use message::{FACE_NAME, Face, FaceCrop, FaceRecMessage, MESSAGE_NAME, MessageError};

/// The element's debug category, here so that every module of the element logs in it.
static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new(
        "facerec",
        gst::DebugColorFlags::empty(),
        Some("Face detection and recognition"),
    )
});

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

/// For the tests (the `nvmm` module is private): the detector's input that the element's VIC
/// scaler makes from buffer 0 of `src`, frames of `info`, as `frame_path.rs` reads
/// `NetworkScaler`'s.
///
/// # Safety
/// `src` must point to a valid surface of `surfaces`' kind holding a frame of `info`.
#[cfg(feature = "nvmm")]
#[doc(hidden)]
pub unsafe fn vic_network_input(
    surfaces: std::sync::Arc<nvbufsurface::NvBufSurfaceLib>,
    transform: std::sync::Arc<nvbufsurftransform::NvBufSurfTransformLib>,
    info: &gst_video::VideoInfo,
    network_width: u32,
    src: *mut nvbufsurface::NvBufSurface,
) -> Result<facerec_core::detect::NetworkInput<'static>, String> {
    nvmm::VicScaler::new(surfaces, transform, info, network_width)?.scale(src)
}
