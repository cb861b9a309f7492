// SPDX-License-Identifier: MPL-2.0

//! The GObject side of the element: properties, caps, start and stop, and a `transform_ip`
//! that hands each frame to the frame source, the processor, the annotator and the bus, in
//! that order.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;

use facerec_core::Error as CoreError;
use facerec_core::engine::{Engine, EngineConfig, StageTimes};
use facerec_core::gallery::Gallery;
use facerec_core::models::{ModelVariant, default_model_path};
use facerec_core::overlay::Painter;
use facerec_core::runtime::{SessionConfig, session_loads};
use facerec_core::schedule::{ClientStats, Scheduler, WAIT_BUCKETS_SECONDS};
use facerec_core::tunables::{Domain, TUNABLES, Tunable, TunableValue, Tunables};

use super::annotate::{self, Annotator};
use super::bus::{self, ElementSink};
use super::crops::CropPolicy;
use super::frame::{FrameFormat, core_frame};
use super::processor::Processor;
use super::source::{MappedBuffer, NetworkScalers, NvmmLibraries};
use super::sync::lock;
use super::{CAT, ProviderKind, RedactMode};

const DEFAULT_DRAW: bool = true;
const DEFAULT_LIVE: bool = false;
const DEFAULT_THREADS: u32 = 0;
const DEFAULT_STRICT_PROVIDER: bool = false;
const DEFAULT_FACE_CROPS: bool = false;
const DEFAULT_TRT_FP16: bool = true;
const DEFAULT_CUDA_DEVICE: u32 = 0;

/// The `model-variant` property: the precision of the models ([`ModelVariant`]).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstFaceRecModelVariant")]
pub enum ModelVariantKind {
    #[default]
    #[enum_value(name = "fp32: the models as published", nick = "fp32")]
    Fp32 = 0,
    #[enum_value(
        name = "fp16: half-precision models (passed the accuracy gate)",
        nick = "fp16"
    )]
    Fp16 = 1,
    #[enum_value(
        name = "int8: quantized models (refused: outside the accuracy gate)",
        nick = "int8"
    )]
    Int8 = 2,
}

impl From<ModelVariantKind> for ModelVariant {
    fn from(kind: ModelVariantKind) -> Self {
        match kind {
            ModelVariantKind::Fp32 => ModelVariant::Fp32,
            ModelVariantKind::Fp16 => ModelVariant::Fp16,
            ModelVariantKind::Int8 => ModelVariant::Int8,
        }
    }
}

#[derive(Debug, Clone)]
struct Settings {
    detector: Option<PathBuf>,
    recognizer: Option<PathBuf>,
    gallery: Option<PathBuf>,
    provider: ProviderKind,
    strict_provider: bool,
    tunables: Tunables,
    draw: bool,
    font: Option<PathBuf>,
    redact: RedactMode,
    live: bool,
    threads: u32,
    face_crops: bool,
    model_variant: ModelVariantKind,
    trt_engine_cache: Option<PathBuf>,
    trt_fp16: bool,
    trt_timing_cache: Option<PathBuf>,
    cuda_device: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            detector: None,
            recognizer: None,
            gallery: None,
            provider: ProviderKind::Auto,
            strict_provider: DEFAULT_STRICT_PROVIDER,
            tunables: Tunables::default(),
            draw: DEFAULT_DRAW,
            font: None,
            redact: RedactMode::default(),
            live: DEFAULT_LIVE,
            threads: DEFAULT_THREADS,
            face_crops: DEFAULT_FACE_CROPS,
            model_variant: ModelVariantKind::default(),
            trt_engine_cache: None,
            trt_fp16: DEFAULT_TRT_FP16,
            trt_timing_cache: None,
            cuda_device: DEFAULT_CUDA_DEVICE,
        }
    }
}

impl Settings {
    fn engine_config(&self) -> EngineConfig {
        let variant = ModelVariant::from(self.model_variant);
        EngineConfig {
            // The variant's files unless a path is set.
            detector: self
                .detector
                .clone()
                .unwrap_or_else(|| default_model_path(&variant.detector_file())),
            recognizer: self
                .recognizer
                .clone()
                .unwrap_or_else(|| default_model_path(&variant.recognizer_file())),
            variant,
            session: SessionConfig {
                provider: self.provider.into(),
                strict: self.strict_provider,
                threads: self.threads as usize,
                trt_engine_cache: self.trt_engine_cache.clone(),
                trt_fp16: self.trt_fp16,
                trt_timing_cache: self.trt_timing_cache.clone(),
                cuda_device: self.cuda_device,
            },
            tunables: self.tunables,
        }
    }
}

/// The element property of a tunable: its declaration, changeable while playing.
fn tunable_pspec(tunable: &Tunable) -> glib::ParamSpec {
    let Tunable {
        name, nick, blurb, ..
    } = *tunable;
    match tunable.domain {
        Domain::Float { default, min, max } => glib::ParamSpecFloat::builder(name)
            .nick(nick)
            .blurb(blurb)
            .minimum(min)
            .maximum(max)
            .default_value(default)
            .mutable_playing()
            .build(),
        Domain::UInt { default, min, max } => glib::ParamSpecUInt::builder(name)
            .nick(nick)
            .blurb(blurb)
            .minimum(min)
            .maximum(max)
            .default_value(default)
            .mutable_playing()
            .build(),
    }
}

/// A tunable's value from a property's (GLib has checked its type and range).
fn tunable_value(tunable: &Tunable, value: &glib::Value) -> TunableValue {
    match tunable.domain {
        Domain::Float { .. } => TunableValue::Float(value.get().expect("type checked upstream")),
        Domain::UInt { .. } => TunableValue::UInt(value.get().expect("type checked upstream")),
    }
}

fn tunable_to_value(value: TunableValue) -> glib::Value {
    match value {
        TunableValue::Float(v) => v.to_value(),
        TunableValue::UInt(v) => v.to_value(),
    }
}

/// Everything that exists between `start` and `stop`.
struct Running {
    processor: Processor,
    recognizer_sha256: String,
    embedding_dim: usize,
    active_provider: String,
    video: Option<(gst_video::VideoInfo, FrameFormat)>,
    scalers: NetworkScalers,
    annotator: Annotator,
    /// Frames through the streaming thread (in live mode, more than the worker processed).
    passed: u64,
}

#[derive(Default)]
struct State {
    running: Option<Running>,
}

#[derive(Default)]
pub struct FaceRec {
    settings: Mutex<Settings>,
    state: Mutex<State>,
    /// Which tracks got which crops. Apart from `state` because the live worker posts (and
    /// crops) while the streaming thread holds `state`; taken after `state`, never before.
    crops: Arc<Mutex<CropPolicy>>,
    /// Test hook ([`super::FaceRec::hold_live_worker`]); changed and read under `state`.
    hold_live: AtomicBool,
    /// Counts `gallery` sets; changed under `settings`. start() compares it with the count it
    /// read with its settings, so a gallery set while it loads the models is not lost.
    gallery_sets: AtomicU64,
    /// What NVMM caps need, loaded at negotiation.
    nvmm: Mutex<NvmmLibraries>,
}

/// Maps a core error at start-up to the GStreamer error domain that fits it.
fn start_error(err: &CoreError) -> gst::ErrorMessage {
    match err {
        CoreError::RuntimeLoad { .. } => gst::error_msg!(gst::LibraryError::Init, ("{}", err)),
        CoreError::ModelMissing { .. } => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{}", err))
        }
        CoreError::ProviderUnavailable { .. }
        | CoreError::UnknownProvider(_)
        | CoreError::ModelVariantNotAccepted { .. } => {
            gst::error_msg!(gst::LibraryError::Settings, ("{}", err))
        }
        CoreError::Io { error, .. } if error.kind() == std::io::ErrorKind::NotFound => {
            gst::error_msg!(gst::ResourceError::NotFound, ("{}", err))
        }
        _ => gst::error_msg!(gst::ResourceError::OpenRead, ("{}", err)),
    }
}

impl FaceRec {
    /// Loads the configured gallery for the running recognizer. An empty path is no gallery.
    fn load_gallery(
        &self,
        path: Option<&PathBuf>,
        sha256: &str,
        dim: usize,
    ) -> Result<Option<Arc<Gallery>>, CoreError> {
        let Some(path) = path else {
            gst::element_imp_warning!(
                self,
                gst::ResourceError::NotFound,
                ("No gallery set: every face will be labelled \"unknown\". Set the 'gallery' property to a model.data file built by facerec-model")
            );
            return Ok(None);
        };
        let gallery = Gallery::load_for(path, sha256, dim)?;
        gst::info!(
            CAT,
            imp = self,
            "loaded gallery {} with {} people, {} embeddings",
            path.display(),
            gallery.people.len(),
            gallery.embedding_count()
        );
        Ok(Some(Arc::new(gallery)))
    }

    /// Reloads the gallery while running; a bad file keeps the previous gallery in use.
    /// Runs on the thread that set the property, holding no lock while it reads, so frames
    /// keep flowing. `Gallery::load_for` is the only read: it refuses non-regular and oversized
    /// files without blocking (issue 8), and nothing here opens the file itself.
    fn reload_gallery(&self, path: Option<PathBuf>) {
        let target = {
            let state = lock(&self.state);
            state
                .running
                .as_ref()
                .map(|r| (r.recognizer_sha256.clone(), r.embedding_dim))
        };
        let Some((sha256, dim)) = target else { return };
        match self.load_gallery(path.as_ref(), &sha256, dim) {
            Ok(gallery) => {
                if let Some(running) = lock(&self.state).running.as_mut() {
                    running.processor.set_gallery(gallery);
                }
            }
            Err(err) => {
                gst::element_imp_warning!(
                    self,
                    gst::ResourceError::OpenRead,
                    ("Gallery not reloaded, keeping the previous one: {}", err)
                );
            }
        }
    }
}

/// Test hooks, not API: they let a test stand in for a slow inference without depending on how
/// fast the machine runs.
impl super::FaceRec {
    /// While `hold` is true, the live worker keeps the frame it takes without analysing it
    /// (now, and in any later start). Releasing it lets it analyse that frame.
    #[doc(hidden)]
    pub fn hold_live_worker(&self, hold: bool) {
        let imp = self.imp();
        let state = lock(&imp.state);
        imp.hold_live.store(hold, Ordering::Relaxed);
        if let Some(running) = state.running.as_ref() {
            running.processor.hold(hold);
        }
    }

    /// Whether the live worker is holding a frame now (see [`Self::hold_live_worker`]).
    #[doc(hidden)]
    pub fn live_worker_holds_a_frame(&self) -> bool {
        lock(&self.imp().state)
            .running
            .as_ref()
            .is_some_and(|running| running.processor.holding())
    }
}

#[glib::object_subclass]
impl ObjectSubclass for FaceRec {
    const NAME: &'static str = "GstFaceRec";
    type Type = super::FaceRec;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for FaceRec {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            // The other enums are marked in `register` (mod.rs); this one lives here.
            ModelVariantKind::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
            let mut properties = vec![
                glib::ParamSpecString::builder("detector")
                    .nick("Detector model")
                    .blurb("Path to the YuNet ONNX detector (yunet_s_dynamic.onnx). Empty: look in $FACEREC_MODEL_DIR, .cache/models, ../shared/models, /usr/share/facerec/models")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("recognizer")
                    .nick("Recognizer model")
                    .blurb("Path to the dlib ResNet ONNX recognizer (dlib_face_recognition_resnet_model_v1.onnx). Empty: searched like 'detector'")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("gallery")
                    .nick("Gallery")
                    .blurb("Path to the model.data gallery of known faces. Empty: every face is \"unknown\". Changing it while playing reloads it without dropping a frame")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("provider", ProviderKind::Auto)
                    .nick("Execution provider")
                    .blurb("ONNX Runtime execution provider. A GPU provider that is not available falls back to CPU with a warning")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("strict-provider")
                    .nick("Strict provider")
                    .blurb("Fail to start instead of falling back to CPU when the requested GPU provider is not available")
                    .default_value(DEFAULT_STRICT_PROVIDER)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("trt-engine-cache")
                    .nick("TensorRT engine cache")
                    .blurb("Folder where TensorRT keeps the engines it builds (ONNX Runtime's trt_engine_cache_enable and trt_engine_cache_path), so that a restart loads them instead of building them again (minutes on a Jetson). Created if missing; a folder that cannot be written fails the start whenever TensorRT may run (provider auto or tensorrt). Empty: engines are rebuilt at every start. Clear it after a change of model, ONNX Runtime, TensorRT or GPU")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("trt-fp16")
                    .nick("TensorRT fp16")
                    .blurb("Let TensorRT use fp16 kernels (trt_fp16_enable); ignored where the GPU has no fast fp16")
                    .default_value(DEFAULT_TRT_FP16)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("trt-timing-cache")
                    .nick("TensorRT timing cache")
                    .blurb("Folder for TensorRT's timing cache (trt_timing_cache_enable and trt_timing_cache_path): kernel timings measured once, which shorten later engine builds (after a model or setting change). May be the engine cache's folder. Created if missing like trt-engine-cache. Empty: off")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("cuda-device")
                    .nick("CUDA device")
                    .blurb("The GPU that CUDA and TensorRT run on (device_id)")
                    .maximum(i32::MAX as u32)
                    .default_value(DEFAULT_CUDA_DEVICE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("model-variant", ModelVariantKind::Fp32)
                    .nick("Model variant")
                    .blurb("Precision of the models: fp32, fp16 or int8. Picks the default detector and recognizer files (yunet_s_dynamic.<variant>.onnx, dlib_face_recognition_resnet_model_v1.<variant>.onnx; the 'detector' and 'recognizer' paths win). A variant that has not passed the accuracy gate fails the start. Galleries stay fp32 embeddings and serve every variant")
                    .mutable_ready()
                    .build(),
            ];
            // The tunables after model-variant, where they always were.
            properties.extend(TUNABLES.iter().map(tunable_pspec));
            properties.extend([
                glib::ParamSpecBoolean::builder("draw")
                    .nick("Draw")
                    .blurb("Draw boxes and name labels onto the frames (green: known, red: unknown)")
                    .default_value(DEFAULT_DRAW)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("font")
                    .nick("Label font")
                    .blurb("TrueType/OpenType font for the name labels, for scripts the default lacks (e.g. Noto Sans CJK). Empty: DejaVu Sans or Noto Sans from the system fonts, else a built-in bitmap font with a warning")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("redact", RedactMode::None)
                    .nick("Redact")
                    .blurb("Pixelate faces in the output: none, unknown (every face not named from the gallery, including faces too small to recognise) or all. Best effort: a face the detector misses is not redacted")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("live")
                    .nick("Live")
                    .blurb("Run inference off the streaming thread on the newest frame; frames pass at input rate with the latest results. Off: every frame is processed in order (deterministic)")
                    .default_value(DEFAULT_LIVE)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecUInt::builder("threads")
                    .nick("Threads")
                    .blurb("ONNX Runtime intra-op threads per model; 0: one per CPU core, at most 4. Elements of one process with the same models and settings share one session per model, and its threads")
                    .minimum(0)
                    .maximum(64)
                    .default_value(DEFAULT_THREADS)
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("face-crops")
                    .nick("Face crops")
                    .blurb("Attach to each face of the bus message, when its track first appears, when its name changes and when its quality beats the best crop sent by 0.05, an RGB crop of the face (box plus 25% margin, full resolution, before drawing or redaction): fields crop, crop-x, crop-y, crop-width, crop-height")
                    .default_value(DEFAULT_FACE_CROPS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoxed::builder::<gst::Structure>("stats")
                    .nick("Statistics")
                    .blurb("Frames, detections, embeddings, time per stage in nanoseconds (convert, detect, align, quality, embed, redact, draw), the active execution provider, frames dropped as stale (stale-drops), turns waited for on the process's shared engine (queue-waits, queue-wait-ns, queue-wait-buckets per facerec_core::schedule::WAIT_BUCKETS_SECONDS), and, for the whole process, the engine's busy time (engine-busy-ns) ONNX Runtime sessions loaded (session-loads), recognizer runs that embedded the faces of several streams (recognizer-shared-runs) and faces left for another stream's run (recognizer-deferred)")
                    .read_only()
                    .build(),
            ]);
            properties
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let path = |value: &glib::Value| {
            value
                .get::<Option<String>>()
                .expect("type checked upstream")
                .filter(|s| !s.trim().is_empty())
                .map(PathBuf::from)
        };
        let mut settings = lock(&self.settings);
        if let Some(tunable) = Tunable::find(pspec.name()) {
            settings
                .tunables
                .set(tunable.name, tunable_value(tunable, value))
                .expect("range checked upstream");
            return;
        }
        match pspec.name() {
            "detector" => settings.detector = path(value),
            "recognizer" => settings.recognizer = path(value),
            "gallery" => {
                // Setting it again, even to the same path, reloads the file: that is how an
                // application asks for a reload after model.data was replaced.
                let new = path(value);
                settings.gallery = new.clone();
                self.gallery_sets.fetch_add(1, Ordering::SeqCst);
                drop(settings);
                gst::info!(CAT, imp = self, "gallery set to {:?}", new);
                self.reload_gallery(new);
            }
            "provider" => settings.provider = value.get().expect("type checked upstream"),
            "strict-provider" => {
                settings.strict_provider = value.get().expect("type checked upstream")
            }
            "draw" => settings.draw = value.get().expect("type checked upstream"),
            "font" => settings.font = path(value),
            "redact" => settings.redact = value.get().expect("type checked upstream"),
            "live" => settings.live = value.get().expect("type checked upstream"),
            "threads" => settings.threads = value.get().expect("type checked upstream"),
            "face-crops" => settings.face_crops = value.get().expect("type checked upstream"),
            "trt-engine-cache" => settings.trt_engine_cache = path(value),
            "trt-fp16" => settings.trt_fp16 = value.get().expect("type checked upstream"),
            "trt-timing-cache" => settings.trt_timing_cache = path(value),
            "cuda-device" => settings.cuda_device = value.get().expect("type checked upstream"),
            "model-variant" => settings.model_variant = value.get().expect("type checked upstream"),
            other => unimplemented!("property {other}"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = lock(&self.settings);
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string()).to_value();
        if let Some(value) = settings.tunables.get(pspec.name()) {
            return tunable_to_value(value);
        }
        match pspec.name() {
            "detector" => path(&settings.detector),
            "recognizer" => path(&settings.recognizer),
            "gallery" => path(&settings.gallery),
            "provider" => settings.provider.to_value(),
            "strict-provider" => settings.strict_provider.to_value(),
            "draw" => settings.draw.to_value(),
            "font" => path(&settings.font),
            "redact" => settings.redact.to_value(),
            "live" => settings.live.to_value(),
            "threads" => settings.threads.to_value(),
            "face-crops" => settings.face_crops.to_value(),
            "trt-engine-cache" => path(&settings.trt_engine_cache),
            "trt-fp16" => settings.trt_fp16.to_value(),
            "trt-timing-cache" => path(&settings.trt_timing_cache),
            "cuda-device" => settings.cuda_device.to_value(),
            "model-variant" => settings.model_variant.to_value(),
            "stats" => {
                drop(settings);
                let state = lock(&self.state);
                let (times, passed, convert, redact, draw, provider, (turns, stale)) =
                    match state.running.as_ref() {
                        Some(r) => (
                            r.processor.stage_times(),
                            r.passed,
                            r.scalers.time + r.processor.copy_time,
                            r.annotator.redact_time,
                            r.annotator.draw_time,
                            r.active_provider.clone(),
                            r.processor.schedule_stats(),
                        ),
                        None => (
                            StageTimes::default(),
                            0,
                            Duration::ZERO,
                            Duration::ZERO,
                            Duration::ZERO,
                            String::new(),
                            (ClientStats::default(), 0),
                        ),
                    };
                let buckets = {
                    let mut counts = turns.wait_buckets.clone();
                    counts.resize(WAIT_BUCKETS_SECONDS.len() + 1, 0);
                    gst::Array::new(counts)
                };
                let ns = |d: Duration| d.as_nanos() as u64;
                let batch = facerec_core::batch::process_totals();
                gst::Structure::builder("facerec-stats")
                    .field("frames", times.frames)
                    .field("passed", passed)
                    .field("detections", times.detect_runs)
                    .field("embeddings", times.embeddings)
                    .field("convert-ns", ns(convert))
                    .field("detect-ns", ns(times.detect))
                    .field("align-ns", ns(times.align))
                    .field("embed-ns", ns(times.embed))
                    .field("quality-ns", ns(times.quality))
                    .field("redact-ns", ns(redact))
                    .field("draw-ns", ns(draw))
                    .field("provider", provider)
                    .field("stale-drops", stale)
                    .field("queue-waits", turns.turns)
                    .field("queue-wait-ns", ns(turns.wait_total))
                    .field("queue-wait-buckets", buckets)
                    .field("engine-busy-ns", ns(Scheduler::global().busy()))
                    .field("session-loads", session_loads())
                    .field("recognizer-shared-runs", batch.shared_runs)
                    .field("recognizer-deferred", batch.deferred_chips)
                    .build()
                    .to_value()
            }
            other => unimplemented!("property {other}"),
        }
    }
}

impl GstObjectImpl for FaceRec {}

impl ElementImpl for FaceRec {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static ELEMENT_METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face recognition",
                "Filter/Analyzer/Video",
                "Detects faces (YuNet), recognises them against a gallery (dlib ResNet) and draws boxes and names",
                "facerec developers",
            )
        });
        Some(&*ELEMENT_METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            use gst_video::VideoFormat as V;
            let caps = gst_video::VideoCapsBuilder::new()
                .format_list([
                    V::Rgba,
                    V::Bgra,
                    V::Rgbx,
                    V::Bgrx,
                    V::Rgb,
                    V::Bgr,
                    V::I420,
                    V::Nv12,
                ])
                .build();
            // NVMM after system memory: pipelines that do not ask for NVMM keep what they had.
            #[cfg(feature = "nvmm")]
            let caps = {
                let mut caps = caps;
                caps.merge(
                    gst_video::VideoCapsBuilder::new()
                        .features([super::nvmm::CAPS_FEATURE_NVMM])
                        .format_list([V::Rgba, V::Nv12])
                        .build(),
                );
                caps
            };
            vec![
                gst::PadTemplate::new(
                    "src",
                    gst::PadDirection::Src,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
                gst::PadTemplate::new(
                    "sink",
                    gst::PadDirection::Sink,
                    gst::PadPresence::Always,
                    &caps,
                )
                .expect("valid template"),
            ]
        });
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for FaceRec {
    const MODE: gst_base::subclass::BaseTransformMode =
        gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let (settings, gallery_sets) = {
            let settings = lock(&self.settings);
            (settings.clone(), self.gallery_sets.load(Ordering::SeqCst))
        };
        let config = settings.engine_config();
        gst::debug!(CAT, imp = self, "starting with {:?}", config);
        let mut engine = Engine::new(config).map_err(|e| start_error(&e))?;
        let mut active = Vec::new();
        for report in engine.provider_reports() {
            active.push(report.active.to_string());
            if let Some(warning) = &report.fallback_warning {
                gst::warning!(CAT, imp = self, "{}", warning);
                gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", warning));
            }
        }
        active.dedup();
        let painter = Painter::new(settings.font.as_deref()).map_err(|e| {
            gst::error_msg!(
                gst::ResourceError::OpenRead,
                ("Invalid 'font' property: {}", e)
            )
        })?;
        if let Some(warning) = painter.warning() {
            gst::warning!(CAT, imp = self, "{}", warning);
            gst::element_imp_warning!(self, gst::ResourceError::NotFound, ("{}", warning));
        }
        let sha256 = engine.recognizer().sha256().to_string();
        let dim = engine.recognizer().dim();
        let gallery = self
            .load_gallery(settings.gallery.as_ref(), &sha256, dim)
            .map_err(|e| start_error(&e))?;
        engine
            .set_gallery(gallery)
            .map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ("{}", e)))?;
        let processor = if settings.live {
            Processor::live(engine, ElementSink::new(&self.obj(), self.crops.clone()))
        } else {
            Processor::sync(engine)
        };
        lock(&self.crops).reset();
        let mut state = lock(&self.state);
        processor.hold(self.hold_live.load(Ordering::Relaxed));
        state.running = Some(Running {
            processor,
            recognizer_sha256: sha256,
            embedding_dim: dim,
            active_provider: active.join(","),
            video: None,
            scalers: NetworkScalers::default(),
            annotator: Annotator::new(painter),
            passed: 0,
        });
        drop(state);
        // A gallery set after the settings were read found nothing running to reload, so it is
        // loaded now. One set after `running` was installed reloads by itself.
        let gallery_now = {
            let settings = lock(&self.settings);
            (self.gallery_sets.load(Ordering::SeqCst) != gallery_sets)
                .then(|| settings.gallery.clone())
        };
        if let Some(gallery) = gallery_now {
            self.reload_gallery(gallery);
        }
        gst::info!(CAT, imp = self, "started (provider {})", active.join(","));
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Dropping a live worker joins its thread.
        let running = lock(&self.state).running.take();
        drop(running);
        gst::info!(CAT, imp = self, "stopped");
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view()
            && let Some(running) = lock(&self.state).running.as_mut()
        {
            running.processor.reset_tracks();
            lock(&self.crops).reset();
        }
        self.parent_sink_event(event)
    }

    /// Maps the frame, has the processor analyse it (with the detector's input on the frames
    /// that need it), redacts and draws, then attaches the metas and posts the message.
    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let (tuning, draw, redact, face_crops) = {
            let s = lock(&self.settings);
            (s.tunables, s.draw, s.redact, s.face_crops)
        };
        let element = self.obj();
        let times = bus::frame_times(&element, buf);
        let mut state = lock(&self.state);
        let Some(running) = state.running.as_mut() else {
            gst::element_imp_error!(self, gst::CoreError::Negotiation, ("Not started"));
            return Err(gst::FlowError::Error);
        };
        let Running {
            processor,
            video,
            scalers,
            annotator,
            passed,
            ..
        } = running;
        let Some((info, format)) = video.clone() else {
            gst::element_imp_error!(
                self,
                gst::CoreError::Negotiation,
                ("No caps set before the first buffer")
            );
            return Err(gst::FlowError::NotNegotiated);
        };
        let mut mapped = MappedBuffer::map(&element, &lock(&self.nvmm), buf, &info)?;
        let frame = mapped.frame(&element, &info)?;
        *passed += 1;

        let input = if processor.needs_input(&tuning) {
            Some(scalers.network_input(&element, &frame, &info, tuning.network_width)?)
        } else {
            None
        };
        let crops = face_crops.then_some(&*self.crops);
        let source = core_frame(&frame.video, &format);
        let analysis = processor.analyse(&element, input, &source, &times, tuning, crops)?;
        let faces = &analysis.faces;
        drop(frame);
        let written = if Annotator::writes(faces, redact, draw) {
            let mut video = mapped.writable_frame(&element, &info)?;
            annotator.annotate(&element, &mut video, &format, faces, redact, draw)?
        } else {
            false
        };
        drop(state);
        mapped.finish(&element, written)?;

        annotate::attach_metas(buf, faces, &info);
        if let Some(post) = analysis.post {
            bus::post_faces(&element, faces, post.crops, &times, post.inference);
        }
        Ok(gst::FlowSuccess::Ok)
    }
}

impl VideoFilterImpl for FaceRec {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        let Some(format) = FrameFormat::from_info(in_info) else {
            return Err(gst::loggable_error!(
                CAT,
                "Unsupported format {:?}",
                in_info.format()
            ));
        };
        if in_info.is_interlaced() {
            return Err(gst::loggable_error!(
                CAT,
                "Interlaced video is not supported: put deinterlace before facerec"
            ));
        }
        lock(&self.nvmm).negotiate(&self.obj(), incaps)?;
        let mut state = lock(&self.state);
        if let Some(running) = state.running.as_mut() {
            let size_changed = running.video.as_ref().is_some_and(|(old, ..)| {
                old.width() != in_info.width() || old.height() != in_info.height()
            });
            if size_changed {
                running.processor.reset_tracks();
                lock(&self.crops).reset();
            }
            running.video = Some((in_info.clone(), format));
        }
        drop(state);
        gst::debug!(CAT, imp = self, "caps {}", incaps);
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}
