//! One camera: its GStreamer pipeline, the supervisor thread that rebuilds it with exponential
//! backoff when the source is lost, and what it publishes (JPEG frames, faces, events).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use gst::prelude::*;
use serde::Serialize;
use tokio::sync::watch;

use super::element::{set, set_str};
pub use super::settings::PipelineSettings;
use crate::domain::event::Crop;
use crate::domain::load::{Flow, FlowMonitor, STALL_TIMEOUT, counter_delta};
use crate::domain::redact::redact_text;
use crate::domain::source::Source;
use crate::domain::{CameraState, Draft, EventKind, NewEvent, Presence, lock};
use crate::metrics::{CameraLabel, Metrics};
use crate::sink::EventSink;
use facerec_core::gallery::UNKNOWN;
use facerec_core::tunables::Tunables;
use gstfacerec::Face;

const BACKOFF_START: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// A track not seen for this long has ended (faces come and go between detections).
const TRACK_GONE: Duration = Duration::from_secs(1);
/// A snapshot keeps the encoder running this long after it was asked for, so that a client
/// polling snapshots gets fresh frames without a wait each time.
const SNAPSHOT_KEEPS_OPEN: Duration = Duration::from_secs(5);
/// How often the supervisor reads the element's figures (detections, scheduler waits).
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// `min-detect-fps` when the engine's tunables have no such tunable (an older core).
const DEFAULT_MIN_DETECT_FPS: f64 = 2.0;

/// Who a camera has in view, from its current tracks (a track lasts [`TRACK_GONE`] after its
/// last detection, so this does not flicker with single missed detections).
fn presence_of(tracks: &HashMap<u64, Track>) -> Presence {
    let announced = || tracks.values().filter_map(|t| t.announced.as_deref());
    Presence {
        people: announced()
            .filter(|n| *n != UNKNOWN)
            .map(str::to_string)
            .collect(),
        unknown: announced().any(|n| n == UNKNOWN),
        faces: tracks.len(),
    }
}

/// What a camera remembers of a face track, for its history events.
struct Track {
    first_seen: Instant,
    first_seen_ms: i64,
    last_seen: Instant,
    last_seen_ms: i64,
    face: Face,
    /// The crop of the best quality so far.
    best_crop: Option<(f64, Crop)>,
    /// The name of the track's last event (`unknown` included); `None` before its first.
    announced: Option<String>,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

/// The gst-launch description for a source. Paths and URLs are set as properties on the
/// element named `src` afterwards, never spliced into the text.
pub fn describe(source: &Source, s: &PipelineSettings) -> String {
    let head = match source {
        Source::V4l2 { .. } => "v4l2src name=src ! decodebin".to_string(),
        Source::Nvargus { .. } => {
            return nvargus_description(facerec_takes_nvmm("facerec"), s.jpeg_quality);
        }
        // A file plays at its own pace: the identity waits for each frame's time (the sink
        // cannot, as it gets no frame while nobody watches); a live source is served as it
        // arrives.
        Source::File { .. } => {
            "filesrc name=src ! decodebin ! identity name=pace sync=true".to_string()
        }
        Source::Http { .. } => {
            "souphttpsrc name=src is-live=true do-timestamp=true ! multipartdemux ! jpegdec"
                .to_string()
        }
        Source::Rtsp { .. } => "rtspsrc name=src latency=200 ! decodebin".to_string(),
        Source::Test { .. } => {
            "videotestsrc name=src is-live=true ! video/x-raw,width=640,height=360,framerate=30/1"
                .to_string()
        }
        Source::Pipeline { description } => description.clone(),
    };
    // Rate caps are pad probes (see `limit_rate`), not videorate: videorate asserts on the
    // duration-less buffers that multipartdemux and jpegdec produce for HTTP cameras.
    // Frames reach the encoder only while somebody wants them (a pad probe after facerec: see
    // `Gate`).
    format!(
        "{head} ! videoconvert ! facerec name=facerec ! videoconvert ! jpegenc name=encoder quality={} ! {SINK}",
        s.jpeg_quality,
    )
}

/// The sink: the newest JPEG only, never waiting for a clock, and no preroll (`async=false`:
/// while nobody watches it gets no frame, and the pipeline must play all the same).
const SINK: &str = "appsink name=sink max-buffers=1 drop=true sync=false async=false";

/// The CSI camera's pipeline. When the registered element takes NVMM frames (a plugin built
/// with `--features nvmm`), facerec reads and draws on the NVMM surfaces (`nvvidconv` makes
/// pitch-linear RGBA on the VIC) and only the JPEG encoder's input leaves NVMM; otherwise every
/// frame is copied to system memory first, as before.
fn nvargus_description(nvmm: bool, jpeg_quality: u32) -> String {
    let camera =
        "nvarguscamerasrc name=src ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1";
    let sink = format!("jpegenc name=encoder quality={jpeg_quality} ! {SINK}");
    if nvmm {
        format!(
            "{camera} ! nvvidconv ! video/x-raw(memory:NVMM),format=RGBA ! facerec name=facerec ! nvvidconv ! video/x-raw,format=I420 ! {sink}"
        )
    } else {
        format!(
            "{camera} ! nvvidconv ! video/x-raw,format=RGBA ! videoconvert ! facerec name=facerec ! videoconvert ! {sink}"
        )
    }
}

/// Whether the registered element `factory` accepts NVMM RGBA frames on its sink pad: the
/// launcher cannot know how the plugin it finds on GST_PLUGIN_PATH was built.
fn facerec_takes_nvmm(factory: &str) -> bool {
    // Idempotent; describe() may run before the cameras start GStreamer (tests).
    if gst::init().is_err() {
        return false;
    }
    let nvmm = gst::Caps::builder("video/x-raw")
        .features(["memory:NVMM"])
        .field("format", "RGBA")
        .build();
    gst::ElementFactory::find(factory).is_some_and(|f| {
        f.static_pad_templates()
            .iter()
            .any(|t| t.direction() == gst::PadDirection::Sink && t.caps().can_intersect(&nvmm))
    })
}

/// How much nicer than the inference engine the pipeline's streaming threads run.
const STREAMING_NICENESS: i32 = 5;

/// Runs the pipeline's streaming threads (its sources, decoders with the threads they start,
/// converters, the encoder) [`STREAMING_NICENESS`] nicer than the thread that builds it, which
/// is the niceness the shared inference engine's threads have. With many cameras, dozens of
/// decoder threads otherwise outweigh the engine's two under the kernel's per-thread fairness,
/// and detections collapse instead of falling evenly. Measured with 8 1080p cameras on 2 cores
/// (detections/s in all, frames in per camera): niceness 0: 11-13, 30 fps; 5: 19-27, 20-30 fps;
/// 10: 46, 16-23 fps. 5 keeps frames near the source's rate and every camera above 2
/// detections/s. Lowering one's own threads' priority needs no privilege; raising the engine's
/// would. Set from the `stream-status` message that each streaming thread posts, synchronously,
/// when it starts its task.
fn lower_streaming_priority(pipeline: &gst::Pipeline) {
    let Ok(base) = rustix::process::getpriority_process(None) else {
        return;
    };
    let niceness = (base + STREAMING_NICENESS).min(19);
    if let Some(bus) = pipeline.bus() {
        bus.set_sync_handler(move |_, message| {
            if let gst::MessageView::StreamStatus(status) = message.view()
                && status.get().0 == gst::StreamStatusType::Enter
            {
                // Linux applies PRIO_PROCESS to the one thread whose id it is given.
                let thread = rustix::thread::gettid();
                let _ = rustix::process::setpriority_process(Some(thread), niceness);
            }
            gst::BusSyncReply::Pass
        });
    }
}

/// Gives every software video decoder of the pipeline that chooses its own thread count (libav's
/// `max-threads` left at 0, "automatic", now or when decodebin adds one later) one thread. A
/// frame-threaded decoder holds one more picture per thread: measured with the 1080p sample
/// clip, 57 MB of RSS per stream with automatic threads (2 on 2 cores) against 39 MB with one,
/// at the same CPU. Several cameras' decoders run in parallel anyway, and one thread decodes a
/// 1080p H.264 camera in 0.14 of a core, so it keeps up many times over. A decoder given a
/// thread count in the pipeline is left as it is.
fn single_threaded_decoders(pipeline: &gst::Pipeline) {
    fn one_thread(element: &gst::Element) {
        let is_video_decoder = element
            .factory()
            .is_some_and(|f| f.klass().contains("Decoder") && f.klass().contains("Video"));
        let automatic = element
            .find_property("max-threads")
            .is_some_and(|p| p.value_type() == i32::static_type())
            && element.property::<i32>("max-threads") == 0;
        if is_video_decoder && automatic {
            element.set_property("max-threads", 1i32);
        }
    }
    let mut elements = pipeline.iterate_recurse();
    while let Ok(Some(element)) = elements.next() {
        one_thread(&element);
    }
    pipeline.connect_deep_element_added(|_, _, element| one_thread(element));
}

/// Drops buffers arriving on `pad` sooner than `1/fps` after the last one let through, by
/// wall clock (HTTP cameras may carry no usable timestamps).
fn limit_rate(pad: &gst::Pad, fps: u32) {
    if fps == 0 {
        return;
    }
    let interval = Duration::from_secs_f64(1.0 / fps as f64);
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let now = Instant::now();
        let mut last = lock(&last);
        // Allow a little jitter so that a 30 fps source capped at 15 keeps every other frame.
        match *last {
            Some(at) if now.duration_since(at) < interval.mul_f64(0.9) => {
                // Consumed here and reported as handled: returning Drop from a Rust probe
                // makes GStreamer 1.22 unref a NULL buffer (a CRITICAL per dropped frame).
                drop(info.take_buffer());
                gst::PadProbeReturn::Handled
            }
            _ => {
                *last = Some(now);
                gst::PadProbeReturn::Ok
            }
        }
    });
}

/// A served frame: the annotated picture as JPEG, numbered so that a stream client sees each
/// once (the element's planes are `facerec_core::frame::Frame`).
pub struct JpegFrame {
    pub jpeg: Bytes,
    pub seq: u64,
}

/// A stream client's view of a camera's frames: serve those numbered above `after` (the ones
/// up to it were published before the encoder last started again, and may be old).
pub struct Subscription {
    pub frames: watch::Receiver<Option<Arc<JpegFrame>>>,
    pub after: u64,
}

/// What lets frames out of facerec on to a camera's JPEG encoder: the encoder runs only while
/// somebody wants frames (a stream client, or a snapshot within [`SNAPSHOT_KEEPS_OPEN`]).
/// Opened at once by whoever asks, closed by the supervisor's loop when nobody does any more.
///
/// A pad probe after facerec drops the frames while it is closed ([`Camera::encoding`] is what
/// it reads), and lets every event through. Not a `valve`: a closed valve drops the flushes of a
/// looping file's seek (any drop mode), which leaves the encoder and the sink at their EOS; and
/// its GAP events (`transform-to-gap`) never reach the sink, as jpegenc holds every serialized
/// event until its next frame.
#[derive(Default)]
struct Gate {
    open: bool,
    /// The number of the last frame published before the gate last opened.
    stale_up_to: u64,
    /// Until when the last snapshot request keeps the gate open.
    snapshot_until: Option<Instant>,
}

/// The element's `stats` figures the launcher follows (missing fields read as zero: an older
/// element has fewer).
#[derive(Debug, Default, Clone)]
struct ElementStats {
    /// Detection runs of this element (this run of the pipeline).
    detections: u64,
    /// Frames the live worker replaced by a newer one before analysing them.
    stale_drops: u64,
    /// Inference turns waited for, their total wait, and their count per wait bucket (not
    /// cumulative; the bounds are `facerec_core::schedule::WAIT_BUCKETS_SECONDS` and +Inf).
    queue_waits: u64,
    queue_wait_ns: u64,
    queue_wait_buckets: Vec<u64>,
    /// Process-wide: time inference turns were held, and ONNX Runtime session loads.
    engine_busy_ns: u64,
    session_loads: u64,
    /// Process-wide: recognizer runs shared by several cameras, and faces left for them.
    shared_runs: u64,
    deferred_faces: u64,
}

impl ElementStats {
    fn read(s: &gst::StructureRef) -> ElementStats {
        let n = |field: &str| s.get::<u64>(field).unwrap_or(0);
        ElementStats {
            detections: n("detections"),
            stale_drops: n("stale-drops"),
            queue_waits: n("queue-waits"),
            queue_wait_ns: n("queue-wait-ns"),
            queue_wait_buckets: s
                .get::<gst::Array>("queue-wait-buckets")
                .map(|a| a.iter().map(|v| v.get::<u64>().unwrap_or(0)).collect())
                .unwrap_or_default(),
            engine_busy_ns: n("engine-busy-ns"),
            session_loads: n("session-loads"),
            shared_runs: n("recognizer-shared-runs"),
            deferred_faces: n("recognizer-deferred"),
        }
    }
}

/// What the supervisor follows during one run of a camera's pipeline.
struct Run {
    tracks: HashMap<u64, Track>,
    /// The pipeline reached PLAYING (with a sink that does not preroll, before any frame).
    pipeline_playing: bool,
    /// `processed_frames` when the run began: the first frame out of facerec after it means
    /// the camera plays.
    frames_at_start: u64,
    /// A frame came out of facerec while PLAYING: the camera plays.
    played: bool,
    /// souphttpsrc's last `http-headers` status: its errors alone often say only "Internal
    /// data stream error".
    http_status: Option<u32>,
    flow: FlowMonitor,
    next_poll: Instant,
    /// The element's figures at the last poll.
    stats: ElementStats,
    /// The last QoS `dropped` figure of each element upstream of facerec, by its path.
    qos_dropped: HashMap<String, u64>,
    /// facerec and the elements after it, whose QoS drops are not "before the element".
    downstream: Vec<gst::Element>,
    min_detect_fps: f64,
    detect_interval: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: CameraState,
    pub reason: Option<String>,
    pub since: String,
    #[serde(skip)]
    pub ever_played: bool,
}

/// What every camera shares: the pipeline settings (the gallery changes with the library),
/// where its events go, and the metrics it records its measurements on.
pub struct Context {
    pub settings: Mutex<PipelineSettings>,
    pub sink: Arc<dyn EventSink>,
    pub metrics: Arc<Metrics>,
    /// How long an unknown face is tracked before it is an event.
    pub unknown_after: Duration,
}

pub struct Camera {
    pub name: String,
    pub uri: String,
    pub source: Source,
    status: Mutex<Status>,
    frames: watch::Sender<Option<Arc<JpegFrame>>>,
    faces: Mutex<Vec<Face>>,
    pub input_frames: AtomicU64,
    /// Frames out of the facerec element: the camera's "frames out", viewer or not.
    pub processed_frames: AtomicU64,
    /// JPEGs published to stream clients and snapshots (each frame's `seq`).
    pub output_frames: AtomicU64,
    /// JPEGs out of the encoder, which runs only while somebody wants frames.
    pub encoded_frames: AtomicU64,
    pub fps: Mutex<[f64; 3]>,
    /// Detections per second over the last 5 s.
    detect_fps: Mutex<f64>,
    /// The source delivers but recognition does not keep up (see `domain::load`).
    overloaded: AtomicBool,
    /// When a buffer last left a source element of the pipeline, in ms since `epoch`.
    source_ms: AtomicU64,
    epoch: Instant,
    gate: Mutex<Gate>,
    /// The gate's state as the pad probe reads it, from the streaming thread.
    encoding: AtomicBool,
    /// What the gate needs to pass only drawn frames (facerec draws only while the gate is
    /// open): frames of this pipeline into facerec's transform and out of facerec, and the
    /// number of the first one drawn since the gate last opened.
    facerec_entered: AtomicU64,
    facerec_left: AtomicU64,
    drawn_from: AtomicU64,
    /// What MQTT was last told this camera has in view.
    presence: Mutex<Presence>,
    stop: AtomicBool,
    wake: Condvar,
    wake_lock: Mutex<()>,
    facerec: Mutex<Option<gst::Element>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

enum Outcome {
    Stopped,
    Ended,
    Fatal(String),
    Lost { reason: String, played: bool },
}

impl Camera {
    pub fn start(name: String, uri: String, source: Source, context: Arc<Context>) -> Arc<Camera> {
        let camera = Arc::new(Camera {
            name,
            uri,
            source,
            status: Mutex::new(Status {
                state: CameraState::Starting,
                reason: None,
                since: now_rfc3339(),
                ever_played: false,
            }),
            frames: watch::channel(None).0,
            faces: Mutex::new(Vec::new()),
            input_frames: AtomicU64::new(0),
            processed_frames: AtomicU64::new(0),
            output_frames: AtomicU64::new(0),
            encoded_frames: AtomicU64::new(0),
            fps: Mutex::new([0.0; 3]),
            detect_fps: Mutex::new(0.0),
            overloaded: AtomicBool::new(false),
            source_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            gate: Mutex::new(Gate::default()),
            encoding: AtomicBool::new(false),
            facerec_entered: AtomicU64::new(0),
            facerec_left: AtomicU64::new(0),
            drawn_from: AtomicU64::new(0),
            presence: Mutex::new(Presence::default()),
            stop: AtomicBool::new(false),
            wake: Condvar::new(),
            wake_lock: Mutex::new(()),
            facerec: Mutex::new(None),
            thread: Mutex::new(None),
        });
        context.metrics.add_camera(&camera.name);
        camera.set_status(CameraState::Starting, None, &context);
        let (cam, c) = (camera.clone(), context);
        let thread = std::thread::Builder::new()
            .name(format!("camera-{}", camera.name))
            .spawn(move || cam.supervise(&c))
            .expect("spawning a thread");
        *lock(&camera.thread) = Some(thread);
        camera
    }

    /// Stops the pipeline (to NULL) and joins the supervisor. Blocking.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        {
            let _guard = lock(&self.wake_lock);
            self.wake.notify_all();
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }

    /// Frames for a stream client: the encoder runs from now on while the subscription lives.
    pub fn subscribe(&self) -> Subscription {
        let frames = self.frames.subscribe();
        let after = self.open_gate(false);
        Subscription { frames, after }
    }

    /// The latest published frame, however old: while nobody watches, nothing is encoded, so
    /// it may be from the last time somebody did. [`Camera::snapshot`] waits for a fresh one.
    pub fn latest_frame(&self) -> Option<Arc<JpegFrame>> {
        self.frames.borrow().clone()
    }

    /// A fresh frame: the latest one if the encoder has been running since before it, else
    /// the next one published, waiting up to `wait`. The encoder keeps running for
    /// [`SNAPSHOT_KEEPS_OPEN`] after the request.
    pub async fn snapshot(&self, wait: Duration) -> Option<Arc<JpegFrame>> {
        // A clip that has ended makes no new frame: its last one is the picture.
        if self.status().state == CameraState::Ended {
            return self.latest_frame();
        }
        let mut frames = self.frames.subscribe();
        let after = self.open_gate(true);
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let fresh = frames
                .borrow_and_update()
                .as_ref()
                .filter(|f| f.seq > after)
                .cloned();
            if fresh.is_some() {
                return fresh;
            }
            match tokio::time::timeout_at(deadline, frames.changed()).await {
                Ok(Ok(())) => {}
                _ => return None,
            }
        }
    }

    /// Detections per second over the last 5 s.
    pub fn detect_fps(&self) -> f64 {
        *lock(&self.detect_fps)
    }

    /// Whether the source delivers but recognition does not keep up (the state stays playing).
    pub fn overloaded(&self) -> bool {
        self.overloaded.load(Ordering::Relaxed)
    }

    /// Whether the encoder is running (somebody wants frames).
    pub fn encoding(&self) -> bool {
        self.encoding.load(Ordering::SeqCst)
    }

    /// Whether anybody wants frames: a subscriber, or a recent snapshot request.
    fn frames_wanted(&self, gate: &Gate, now: Instant) -> bool {
        self.frames.receiver_count() > 0 || gate.snapshot_until.is_some_and(|until| now < until)
    }

    /// Lets frames through to the encoder (at once, from the caller's thread). Returns the
    /// number of the last frame published before the gate opened: later ones are fresh.
    fn open_gate(&self, snapshot: bool) -> u64 {
        let mut gate = lock(&self.gate);
        if snapshot {
            gate.snapshot_until = Some(Instant::now() + SNAPSHOT_KEEPS_OPEN);
        }
        if !gate.open {
            gate.open = true;
            gate.stale_up_to = self.output_frames.load(Ordering::SeqCst);
            self.start_drawing();
            self.encoding.store(true, Ordering::SeqCst);
        }
        gate.stale_up_to
    }

    /// Has facerec draw from its next frame on, and the gate pass frames from that one: the
    /// frame in facerec now may have read `draw` before it was set. (Its transform reads the
    /// property after the sink pad's probe counted the frame, under the element's settings
    /// lock that this set takes too.)
    fn start_drawing(&self) {
        if let Some(facerec) = lock(&self.facerec).as_ref() {
            facerec.set_property("draw", true);
        }
        let next = self.facerec_entered.load(Ordering::SeqCst) + 1;
        self.drawn_from.store(next, Ordering::SeqCst);
    }

    /// Whether the gate passes the frame leaving facerec now: somebody wants frames, and it
    /// was drawn.
    fn passes_gate(&self) -> bool {
        self.encoding()
            && self.facerec_left.load(Ordering::SeqCst) >= self.drawn_from.load(Ordering::SeqCst)
    }

    /// Stops the encoder when nobody wants frames any more (from the supervisor's loop). Under
    /// the gate's lock, so that a client arriving meanwhile is never left behind a closed gate.
    fn close_gate_if_unwanted(&self) {
        let mut gate = lock(&self.gate);
        if gate.open && !self.frames_wanted(&gate, Instant::now()) {
            gate.open = false;
            self.encoding.store(false, Ordering::SeqCst);
            // Nobody sees the boxes: the element neither draws nor maps the frame writable
            // (which copies a frame whose memory the decoder still holds).
            if let Some(facerec) = lock(&self.facerec).as_ref() {
                facerec.set_property("draw", false);
            }
        }
    }

    /// A buffer left a source element, or a frame reached facerec.
    fn source_delivered(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.source_ms.store(ms, Ordering::Relaxed);
    }

    /// How long since a buffer last left a source element or a frame reached facerec.
    fn source_idle(&self) -> Duration {
        let at = Duration::from_millis(self.source_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(at)
    }

    /// Records when buffers leave `element`'s source pads, now and as they are added
    /// (rtspsrc, uridecodebin).
    fn watch_source(self: &Arc<Self>, element: &gst::Element) {
        for pad in element.src_pads() {
            self.probe_source_pad(&pad);
        }
        let camera = Arc::downgrade(self);
        element.connect_pad_added(move |_, pad| {
            if pad.direction() == gst::PadDirection::Src
                && let Some(camera) = camera.upgrade()
            {
                camera.probe_source_pad(pad);
            }
        });
    }

    fn probe_source_pad(self: &Arc<Self>, pad: &gst::Pad) {
        let camera = Arc::downgrade(self);
        pad.add_probe(
            gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST,
            move |_, _| {
                if let Some(camera) = camera.upgrade() {
                    camera.source_delivered();
                }
                gst::PadProbeReturn::Ok
            },
        );
    }

    pub fn status(&self) -> Status {
        lock(&self.status).clone()
    }

    pub fn faces(&self) -> Vec<Face> {
        lock(&self.faces).clone()
    }

    /// Asks the running facerec element to (re)load the gallery.
    pub fn reload_gallery(&self, path: &std::path::Path) -> bool {
        match lock(&self.facerec).as_ref() {
            Some(element) => match set(element, "gallery", path.display().to_string()) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(camera = %self.name, error = %format!("{e:#}"), "gallery not reloaded");
                    false
                }
            },
            None => false,
        }
    }

    fn set_status(&self, state: CameraState, reason: Option<String>, context: &Context) {
        // GStreamer's errors name the location, credentials and all.
        let reason = reason.map(|r| redact_text(&r));
        let mut status = lock(&self.status);
        if status.state != state || status.reason != reason {
            match &reason {
                Some(r) => {
                    tracing::warn!(camera = %self.name, state = state.as_str(), reason = %r, "camera state")
                }
                None => tracing::info!(camera = %self.name, state = state.as_str(), "camera state"),
            }
        }
        status.state = state;
        status.reason = reason;
        status.since = now_rfc3339();
        status.ever_played |= state == CameraState::Playing;
        drop(status);
        context.sink.camera_state(&self.name, state);
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Sleeps, waking early on shutdown. Returns true if stopped.
    fn pause(&self, duration: Duration) -> bool {
        let guard = lock(&self.wake_lock);
        let _ = self
            .wake
            .wait_timeout_while(guard, duration, |_| !self.stop.load(Ordering::SeqCst));
        self.stopped()
    }

    fn supervise(self: &Arc<Self>, context: &Arc<Context>) {
        let label = CameraLabel {
            camera: self.name.clone(),
        };
        let mut backoff = BACKOFF_START;
        loop {
            match self.run_once(context) {
                Outcome::Stopped => break,
                Outcome::Ended => {
                    self.set_status(CameraState::Ended, None, context);
                    return;
                }
                Outcome::Fatal(reason) => {
                    self.set_status(CameraState::Failed, Some(reason), context);
                    return;
                }
                Outcome::Lost { reason, played } => {
                    if played {
                        backoff = BACKOFF_START;
                    }
                    context.metrics.reconnects.get_or_create(&label).inc();
                    self.set_status(
                        CameraState::Reconnecting,
                        Some(format!(
                            "{reason}; retrying in {:.1} s",
                            backoff.as_secs_f64()
                        )),
                        context,
                    );
                    if self.pause(backoff) {
                        break;
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
        self.set_status(CameraState::Stopped, None, context);
    }

    fn build(self: &Arc<Self>, context: &Arc<Context>) -> Result<gst::Pipeline> {
        let settings = lock(&context.settings).clone();
        let description = describe(&self.source, &settings);
        let pipeline = gst::parse::launch(&description)
            .with_context(|| format!("cannot build the pipeline `{description}`"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
        lower_streaming_priority(&pipeline);
        single_threaded_decoders(&pipeline);
        // Every property set is checked: a value an element refuses is an error for this camera,
        // never a panic in its thread (settings were validated at start-up already).
        if let Some(src) = pipeline.by_name("src") {
            match &self.source {
                Source::V4l2 { device } => set(&src, "device", device.display().to_string())?,
                Source::Nvargus { sensor } => set(&src, "sensor-id", *sensor as i32)?,
                Source::File { path, .. } => set(&src, "location", path.display().to_string())?,
                Source::Http { url } | Source::Rtsp { url } => set(&src, "location", url)?,
                Source::Test { pattern } => set_str(&src, "pattern", pattern)?,
                Source::Pipeline { .. } => {}
            }
        }
        let facerec = pipeline.by_name("facerec").context("no facerec element")?;
        if let Some(g) = &settings.gallery {
            set(&facerec, "gallery", g.display().to_string())?;
        }
        if let Some(d) = &settings.detector {
            set(&facerec, "detector", d.display().to_string())?;
        }
        if let Some(r) = &settings.recognizer {
            set(&facerec, "recognizer", r.display().to_string())?;
        }
        set_str(&facerec, "provider", settings.provider.as_str())?;
        if let Some(strict) = settings.strict_provider {
            set(&facerec, "strict-provider", strict)?;
        }
        // Set only when configured, so that the element's defaults are declared once.
        if let Some(variant) = settings.model_variant {
            set_str(&facerec, "model-variant", variant.as_str())?;
        }
        if let Some(folder) = &settings.trt_engine_cache {
            set(&facerec, "trt-engine-cache", folder.display().to_string())?;
        }
        if let Some(fp16) = settings.trt_fp16 {
            set(&facerec, "trt-fp16", fp16)?;
        }
        if let Some(folder) = &settings.trt_timing_cache {
            set(&facerec, "trt-timing-cache", folder.display().to_string())?;
        }
        if let Some(device) = settings.cuda_device {
            set(&facerec, "cuda-device", device)?;
        }
        // 0: the element's default. Cameras whose elements have the same settings share one
        // ONNX Runtime session per model, so this is the process's thread count per model.
        if settings.inference_threads > 0 {
            set(&facerec, "threads", settings.inference_threads)?;
        }
        for (property, value) in settings.tunable_properties() {
            set(&facerec, property, value)?;
        }
        let redact = settings.redact_of(&self.name);
        set_str(&facerec, "redact", super::settings::redact_nick(redact))?;
        if let Some(font) = &settings.font {
            set(&facerec, "font", font.display().to_string())?;
        }
        set(&facerec, "live", self.source.is_live())?;
        // History events keep a crop of each face, taken before anything is drawn.
        set(&facerec, "face-crops", true)?;

        let input = Arc::downgrade(self);
        if let Some(pad) = facerec.static_pad("sink") {
            // Counted before the processing cap drops anything.
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(cam) = input.upgrade() {
                    cam.input_frames.fetch_add(1, Ordering::Relaxed);
                    // A decoded frame is the source delivering too: some sources push
                    // rarely (multifilesrc pushes a whole looping file as one buffer).
                    cam.source_delivered();
                }
                gst::PadProbeReturn::Ok
            });
            limit_rate(&pad, settings.processing_fps);
            // After the rate cap, whose dropped frames reach no later probe: the frames that
            // facerec transforms.
            let entered = Arc::downgrade(self);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(cam) = entered.upgrade() {
                    cam.facerec_entered.fetch_add(1, Ordering::SeqCst);
                }
                gst::PadProbeReturn::Ok
            });
        }
        // Every frame facerec handled, with faces or not: its messages only cover frames with
        // faces, so they cannot give the processed rate.
        let processed = Arc::downgrade(self);
        if let Some(pad) = facerec.static_pad("src") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                if let Some(cam) = processed.upgrade() {
                    cam.processed_frames.fetch_add(1, Ordering::Relaxed);
                    cam.facerec_left.fetch_add(1, Ordering::SeqCst);
                }
                gst::PadProbeReturn::Ok
            });
        }
        // The gate (see `Gate`): on the pad after facerec, frames go on to the encoder only
        // while somebody wants them; events always do.
        if let Some(pad) = facerec.static_pad("src").and_then(|p| p.peer()) {
            let gate = Arc::downgrade(self);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if gate.upgrade().is_some_and(|cam| cam.passes_gate()) {
                    return gst::PadProbeReturn::Ok;
                }
                // Consumed and reported as handled, as in `limit_rate`.
                drop(info.take_buffer());
                gst::PadProbeReturn::Handled
            });
        }
        let label = CameraLabel {
            camera: self.name.clone(),
        };
        if let Some(encoder) = pipeline.by_name("encoder") {
            if let Some(pad) = encoder.static_pad("sink") {
                limit_rate(&pad, settings.max_fps);
            }
            // What the gate lets through, as JPEGs: none while nobody watches.
            if let Some(pad) = encoder.static_pad("src") {
                let encoded = Arc::downgrade(self);
                let counter = context.metrics.frames_encoded.get_or_create(&label).clone();
                pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                    if let Some(cam) = encoded.upgrade() {
                        cam.encoded_frames.fetch_add(1, Ordering::Relaxed);
                    }
                    counter.inc();
                    gst::PadProbeReturn::Ok
                });
            }
        }
        // The stall watchdog follows the sources, not the encoder (which may be idle).
        for source in pipeline.iterate_sources().into_iter().flatten() {
            self.watch_source(&source);
        }
        let sink = pipeline
            .by_name("sink")
            .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
            .context("no appsink")?;
        let output = Arc::downgrade(self);
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |sink| {
                    let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    let Some(cam) = output.upgrade() else {
                        return Err(gst::FlowError::Flushing);
                    };
                    if let Some(buffer) = sample.buffer()
                        && let Ok(map) = buffer.map_readable()
                    {
                        cam.publish(Bytes::copy_from_slice(&map));
                    }
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
        {
            // Boxes and names are drawn only while somebody watches (see `start_drawing`).
            // Under the gate's lock, so that a gate opening meanwhile finds this element.
            let gate = lock(&self.gate);
            *lock(&self.facerec) = Some(facerec.clone());
            self.facerec_entered.store(0, Ordering::SeqCst);
            self.facerec_left.store(0, Ordering::SeqCst);
            self.drawn_from.store(0, Ordering::SeqCst);
            set(&facerec, "draw", gate.open)?;
        }
        // A library change since `settings` was read found no element here to reload
        // (reload_gallery): give this one the newer gallery. The element loads it at its start.
        let gallery_now = lock(&context.settings).gallery.clone();
        if gallery_now != settings.gallery
            && let Some(g) = &gallery_now
        {
            set(&facerec, "gallery", g.display().to_string())?;
        }
        Ok(pipeline)
    }

    fn publish(&self, jpeg: Bytes) {
        let seq = self.output_frames.fetch_add(1, Ordering::SeqCst) + 1;
        // Receivers only ever see the newest frame: a slow client skips what it missed.
        self.frames
            .send_replace(Some(Arc::new(JpegFrame { jpeg, seq })));
    }

    fn run_once(self: &Arc<Self>, context: &Arc<Context>) -> Outcome {
        self.set_status(CameraState::Starting, None, context);
        let pipeline = match self.build(context) {
            Ok(p) => p,
            // A missing element or a bad description will not fix itself by retrying.
            Err(e) => return Outcome::Fatal(format!("{e:#}")),
        };
        let bus = pipeline.bus().expect("a pipeline has a bus");
        let outcome = self.watch(&pipeline, &bus, context);
        let _ = pipeline.set_state(gst::State::Null);
        *lock(&self.facerec) = None;
        *lock(&self.faces) = Vec::new();
        self.set_overloaded(false, context);
        *lock(&self.detect_fps) = 0.0;
        context
            .metrics
            .detect_fps
            .get_or_create(&CameraLabel {
                camera: self.name.clone(),
            })
            .set(0.0);
        outcome
    }

    fn watch(
        self: &Arc<Self>,
        pipeline: &gst::Pipeline,
        bus: &gst::Bus,
        context: &Arc<Context>,
    ) -> Outcome {
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason follows as an error message on the bus.
            let error = bus
                .timed_pop_filtered(gst::ClockTime::from_seconds(1), &[gst::MessageType::Error])
                .and_then(|m| match m.view() {
                    gst::MessageView::Error(e) => {
                        Some((is_from_facerec(e), self.describe_error(e, None)))
                    }
                    _ => None,
                });
            return match error {
                // facerec's own start-up errors (models, gallery, runtime) will not fix themselves.
                Some((true, reason)) => Outcome::Fatal(reason),
                Some((false, reason)) => Outcome::Lost {
                    reason,
                    played: false,
                },
                None => Outcome::Lost {
                    reason: "the pipeline refused to start".into(),
                    played: false,
                },
            };
        }
        self.source_delivered();
        let tunables = lock(&context.settings).tunables;
        let now = Instant::now();
        let mut run = Run {
            tracks: HashMap::new(),
            pipeline_playing: false,
            frames_at_start: self.processed_frames.load(Ordering::Relaxed),
            played: false,
            http_status: None,
            flow: FlowMonitor::new(now),
            next_poll: now + POLL_INTERVAL,
            stats: ElementStats::default(),
            qos_dropped: HashMap::new(),
            downstream: pipeline
                .by_name("facerec")
                .map(|f| with_downstream(&f))
                .unwrap_or_default(),
            min_detect_fps: tunable(&tunables, "min-detect-fps").unwrap_or(DEFAULT_MIN_DETECT_FPS),
            detect_interval: tunable(&tunables, "detect-interval").map_or(1, |v| v as u32),
        };
        let outcome = self.watch_bus(pipeline, bus, context, &mut run);
        self.end_tracks(&mut run.tracks, context, Duration::ZERO);
        outcome
    }

    fn watch_bus(
        self: &Arc<Self>,
        pipeline: &gst::Pipeline,
        bus: &gst::Bus,
        context: &Arc<Context>,
        run: &mut Run,
    ) -> Outcome {
        let label = CameraLabel {
            camera: self.name.clone(),
        };
        loop {
            if self.stopped() {
                return Outcome::Stopped;
            }
            self.end_tracks(&mut run.tracks, context, TRACK_GONE);
            self.close_gate_if_unwanted();
            if !run.played
                && run.pipeline_playing
                && self.processed_frames.load(Ordering::Relaxed) > run.frames_at_start
            {
                self.on_played(pipeline, context, run);
            }
            let now = Instant::now();
            if run.played && now >= run.next_poll {
                run.next_poll = now + POLL_INTERVAL;
                if self.poll(pipeline, context, run, now) == Flow::Lost {
                    return Outcome::Lost {
                        reason: format!("no frame for {} s", STALL_TIMEOUT.as_secs()),
                        played: run.played,
                    };
                }
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else {
                continue;
            };
            match msg.view() {
                gst::MessageView::Error(e) => {
                    let reason = self.describe_error(e, run.http_status);
                    return if is_from_facerec(e) && !run.played {
                        Outcome::Fatal(reason)
                    } else {
                        Outcome::Lost {
                            reason,
                            played: run.played,
                        }
                    };
                }
                gst::MessageView::Eos(_) => match &self.source {
                    Source::File { looped: true, .. } => {
                        let _ = pipeline.seek_simple(
                            gst::SeekFlags::FLUSH | gst::SeekFlags::KEY_UNIT,
                            gst::ClockTime::ZERO,
                        );
                        // The clip starts again: its tracks end here.
                        self.end_tracks(&mut run.tracks, context, Duration::ZERO);
                    }
                    Source::File { .. } => return Outcome::Ended,
                    _ => {
                        return Outcome::Lost {
                            reason: "the stream ended".into(),
                            played: run.played,
                        };
                    }
                },
                gst::MessageView::StateChanged(s)
                    if s.src() == Some(pipeline.upcast_ref())
                        && s.current() == gst::State::Playing =>
                {
                    // Plays once a frame has come through too (next turn of the loop): the
                    // sink does not preroll, so PLAYING alone says nothing of the source.
                    run.pipeline_playing = true;
                }
                gst::MessageView::Warning(w) => {
                    let details = w.debug().map(|d| redact_text(&d));
                    tracing::warn!(camera = %self.name, warning = %redact_text(&w.error().to_string()), debug = ?details, "pipeline warning");
                }
                gst::MessageView::Qos(q) => {
                    // Frames dropped before facerec (a decoder late for the sink's clock): not
                    // those facerec or the encoder's side drop.
                    let Some(src) = q.src() else { continue };
                    if run
                        .downstream
                        .iter()
                        .any(|e| e.upcast_ref::<gst::Object>() == src)
                    {
                        continue;
                    }
                    let dropped = u64::try_from(q.stats().1.value()).unwrap_or(0);
                    let last = run
                        .qos_dropped
                        .entry(src.path_string().to_string())
                        .or_default();
                    // QoS figures count from the last flush (a looping file's seek).
                    let delta = counter_delta(last, dropped);
                    if delta > 0 {
                        context
                            .metrics
                            .dropped_before_element
                            .get_or_create(&label)
                            .inc_by(delta);
                    }
                }
                gst::MessageView::Element(e) => match e.structure() {
                    Some(s) if s.name() == gstfacerec::facerec::MESSAGE_NAME => {
                        self.on_faces(s, &mut run.tracks, context)
                    }
                    Some(s) if s.name() == "http-headers" => {
                        run.http_status = s.get::<u32>("http-status-code").ok();
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }

    /// The camera's first frame came out of facerec: it plays.
    fn on_played(&self, pipeline: &gst::Pipeline, context: &Context, run: &mut Run) {
        run.played = true;
        // The watchdog counts from here.
        self.source_delivered();
        run.flow = FlowMonitor::new(Instant::now());
        self.set_status(CameraState::Playing, None, context);
        // The provider after any fallback: what an operator checks TensorRT by.
        let provider = pipeline
            .by_name("facerec")
            .and_then(|f| {
                f.property::<gst::Structure>("stats")
                    .get::<String>("provider")
                    .ok()
            })
            .filter(|p| !p.is_empty());
        if let Some(provider) = provider {
            tracing::info!(camera = %self.name, %provider, "inference provider");
            context.metrics.set_provider(&self.name, &provider);
        }
    }

    /// About once a second while playing: reads the element's figures into the metrics, and
    /// judges the camera's flow (a lost source, or recognition that does not keep up).
    fn poll(
        &self,
        pipeline: &gst::Pipeline,
        context: &Context,
        run: &mut Run,
        now: Instant,
    ) -> Flow {
        let label = CameraLabel {
            camera: self.name.clone(),
        };
        let metrics = &context.metrics;
        let stats = pipeline
            .by_name("facerec")
            .map(|f| ElementStats::read(&f.property::<gst::Structure>("stats")))
            .unwrap_or_default();
        let last = &mut run.stats;
        metrics
            .detections
            .get_or_create(&label)
            .inc_by(counter_delta(&mut last.detections, stats.detections));
        metrics
            .stale_requests
            .get_or_create(&label)
            .inc_by(counter_delta(&mut last.stale_drops, stats.stale_drops));
        if stats.queue_waits != last.queue_waits {
            last.queue_wait_buckets.resize(
                stats
                    .queue_wait_buckets
                    .len()
                    .max(last.queue_wait_buckets.len()),
                0,
            );
            let buckets: Vec<u64> = stats
                .queue_wait_buckets
                .iter()
                .zip(last.queue_wait_buckets.iter_mut())
                .map(|(now, last)| counter_delta(last, *now))
                .collect();
            let wait = counter_delta(&mut last.queue_wait_ns, stats.queue_wait_ns);
            last.queue_waits = stats.queue_waits;
            metrics
                .scheduler_wait
                .get_or_create(&label)
                .add(&buckets, Duration::from_nanos(wait));
        }
        metrics.engine_figures(
            now,
            stats.engine_busy_ns,
            stats.session_loads,
            POLL_INTERVAL.mul_f64(0.9),
        );
        metrics.batch_figures(stats.shared_runs, stats.deferred_faces);

        run.flow.sample(
            now,
            self.processed_frames.load(Ordering::Relaxed),
            stats.detections,
        );
        let detect_fps = run.flow.detect_fps().unwrap_or(0.0);
        *lock(&self.detect_fps) = detect_fps;
        metrics.detect_fps.get_or_create(&label).set(detect_fps);
        let flow = run.flow.judge(
            now,
            self.source_idle(),
            self.source.is_live(),
            run.min_detect_fps,
            run.detect_interval,
        );
        if flow != Flow::Lost {
            self.set_overloaded(flow == Flow::Overloaded, context);
        }
        flow
    }

    /// Reports overload (a bool beside the state, which stays playing), logging its changes.
    fn set_overloaded(&self, overloaded: bool, context: &Context) {
        if self.overloaded.swap(overloaded, Ordering::Relaxed) != overloaded {
            if overloaded {
                tracing::warn!(camera = %self.name, detect_fps = self.detect_fps(), "overloaded: the source delivers, but recognition does not keep up");
            } else {
                tracing::info!(camera = %self.name, detect_fps = self.detect_fps(), "no longer overloaded");
            }
        }
        context
            .metrics
            .overloaded
            .get_or_create(&CameraLabel {
                camera: self.name.clone(),
            })
            .set(overloaded as i64);
    }

    /// The error, with its cause made specific for HTTP cameras: "HTTP 404", or, when no
    /// response came at all, what connecting says ("connection refused", "timeout").
    fn describe_error(&self, e: &gst::message::Error, http_status: Option<u32>) -> String {
        let text = error_text(e);
        let Source::Http { url } = &self.source else {
            return text;
        };
        let status = http_status
            .filter(|s| *s >= 300)
            .or_else(|| e.debug().as_deref().and_then(status_from_debug));
        if let Some(status) = status {
            return format!("HTTP {status} ({text})");
        }
        match connect_diagnosis(url) {
            Some(cause) => format!("{cause} ({text})"),
            None => text,
        }
    }

    /// An event draft for a track, as of now.
    fn draft(&self, kind: EventKind, track: &Track, crop: Option<Crop>, now_ms: i64) -> Draft {
        let face = &track.face;
        Draft {
            event: NewEvent {
                camera: self.name.clone(),
                kind,
                name: face.name.clone(),
                stranger: None,
                distance: face.distance,
                confidence: Some(face.confidence),
                quality: face.quality,
                track_id: face.track_id,
                bbox: [face.x, face.y, face.width, face.height],
                first_seen_ms: track.first_seen_ms,
                last_seen_ms: track.last_seen_ms,
                time_ms: now_ms,
                crop_jpeg: None,
            },
            crop,
        }
    }

    /// Ends the tracks not seen for `gone` (all of them for zero): one `ended` event each for
    /// those that were events at all (a passing blur never was).
    fn end_tracks(&self, tracks: &mut HashMap<u64, Track>, context: &Context, gone: Duration) {
        let now = Instant::now();
        let ended: Vec<u64> = tracks
            .iter()
            .filter(|(_, t)| gone.is_zero() || now.duration_since(t.last_seen) > gone)
            .map(|(id, _)| *id)
            .collect();
        if ended.is_empty() {
            return;
        }
        for id in ended {
            let track = tracks.remove(&id).expect("listed above");
            if let Some(name) = &track.announced {
                let crop = track.best_crop.as_ref().map(|(_, c)| c.clone());
                let mut draft = self.draft(EventKind::Ended, &track, crop, unix_ms());
                // The name the track was last announced with, not its very last frame's.
                draft.event.name = name.clone();
                context.sink.track(&draft);
            }
        }
        self.update_presence(tracks, context);
    }

    fn on_faces(&self, s: &gst::StructureRef, tracks: &mut HashMap<u64, Track>, context: &Context) {
        let label = CameraLabel {
            camera: self.name.clone(),
        };
        let message = match gstfacerec::FaceRecMessage::try_from(s) {
            Ok(message) => message,
            Err(e) => {
                tracing::warn!(camera = %self.name, error = %e, "malformed facerec message");
                return;
            }
        };
        context
            .metrics
            .inference_seconds
            .get_or_create(&label)
            .observe(message.inference_ns as f64 / 1e9);
        let mut crops = Vec::with_capacity(message.faces.len());
        let faces: Vec<Face> = message
            .faces
            .into_iter()
            .map(|mut face| {
                // The crops go to the tracks' events; the faces are kept and served without them.
                crops.push(face.crop.take());
                face
            })
            .collect();
        let named = faces.iter().filter(|f| f.name != UNKNOWN).count();
        context
            .metrics
            .faces
            .get_or_create(&label)
            .set(faces.len() as i64);
        context
            .metrics
            .named_faces
            .get_or_create(&label)
            .set(named as i64);
        let now = Instant::now();
        let now_ms = unix_ms();
        for (face, crop) in faces.iter().zip(crops) {
            let track = tracks.entry(face.track_id).or_insert_with(|| Track {
                first_seen: now,
                first_seen_ms: now_ms,
                last_seen: now,
                last_seen_ms: now_ms,
                face: face.clone(),
                best_crop: None,
                announced: None,
            });
            track.last_seen = now;
            track.last_seen_ms = now_ms;
            track.face = face.clone();
            let fresh_crop = crop.map(Arc::new);
            if let Some(crop) = &fresh_crop {
                let quality = face.quality.unwrap_or(0.0);
                if track.best_crop.as_ref().is_none_or(|(q, _)| quality >= *q) {
                    track.best_crop = Some((quality, crop.clone()));
                }
            }
            let kind = if face.name != UNKNOWN {
                match &track.announced {
                    Some(name) if *name == face.name => None,
                    Some(name) if name == UNKNOWN => Some(EventKind::Named),
                    Some(_) => Some(EventKind::Renamed),
                    None => Some(EventKind::Named),
                }
            } else if track.announced.is_none()
                && now.duration_since(track.first_seen) >= context.unknown_after
            {
                Some(EventKind::Unknown)
            } else {
                None
            };
            if let Some(kind) = kind {
                track.announced = Some(face.name.clone());
                // The crop taken on this very frame when there is one (the element attaches one
                // when the decided name changes), else the track's best.
                let crop = fresh_crop.or_else(|| track.best_crop.as_ref().map(|(_, c)| c.clone()));
                context.sink.track(&self.draft(kind, track, crop, now_ms));
            }
        }
        *lock(&self.faces) = faces;
        self.update_presence(tracks, context);
    }

    /// Tells the sink when who is in view has changed.
    fn update_presence(&self, tracks: &HashMap<u64, Track>, context: &Context) {
        let presence = presence_of(tracks);
        let mut last = lock(&self.presence);
        if *last != presence {
            context.sink.presence(&self.name, &presence);
            *last = presence;
        }
    }
}

/// A tunable's value as a number, when the core declares it.
fn tunable(tunables: &Tunables, name: &str) -> Option<f64> {
    tunables.get(name).map(|v| v.as_f64())
}

/// `element` and every element downstream of it (for facerec: the encoder's converter, the
/// encoder and the sink).
fn with_downstream(element: &gst::Element) -> Vec<gst::Element> {
    let mut found = vec![element.clone()];
    let mut i = 0;
    while i < found.len() {
        let next: Vec<gst::Element> = found[i]
            .src_pads()
            .iter()
            .filter_map(|pad| pad.peer())
            .filter_map(|peer| peer.parent_element())
            .collect();
        for element in next {
            if !found.contains(&element) {
                found.push(element);
            }
        }
        i += 1;
    }
    found
}

/// souphttpsrc's debug text carries the status as "Not Found (404), URL: …".
fn status_from_debug(debug: &str) -> Option<u32> {
    let head = &debug[..debug.find(", URL: ")?];
    let open = head.rfind('(')?;
    let status: u32 = head[open + 1..].strip_suffix(')')?.parse().ok()?;
    (100..600).contains(&status).then_some(status)
}

/// Why an HTTP camera gave no response: souphttpsrc (GStreamer 1.22, libsoup 3) only logs
/// "Connection refused" to its debug category, so the launcher asks the network itself.
fn connect_diagnosis(url: &str) -> Option<String> {
    use std::net::{TcpStream, ToSocketAddrs};
    let url = url::Url::parse(url).ok()?;
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let addr = match (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map(|mut a| a.next())
    {
        Ok(Some(addr)) => addr,
        _ => return Some(format!("cannot resolve {host}")),
    };
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(_) => None,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Some("connection refused".into())
        }
        Err(e) if e.kind() == std::io::ErrorKind::TimedOut => Some("timeout".into()),
        Err(e) => Some(e.to_string()),
    }
}

fn is_from_facerec(e: &gst::message::Error) -> bool {
    e.src().is_some_and(|s| s.name() == "facerec")
}

fn error_text(e: &gst::message::Error) -> String {
    let source = e.src().map(|s| s.name().to_string()).unwrap_or_default();
    format!("{source}: {}", e.error())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CSI camera goes through NVMM only when the registered facerec takes it: the
    /// launcher's own copy (built without `nvmm`) does not, so the copy to system memory stays.
    #[test]
    fn nvargus_uses_nvmm_only_when_facerec_takes_it() {
        gst::init().unwrap();
        crate::camera::element::ensure_facerec_plugin().unwrap();
        assert_eq!(facerec_takes_nvmm("facerec"), cfg!(feature = "nvmm"));
        // An element whose template takes any memory (videoconvert: `video/x-raw(ANY)`) counts.
        assert!(facerec_takes_nvmm("videoconvert"));
        assert!(!facerec_takes_nvmm("no-such-element"));
        assert_eq!(
            nvargus_description(true, 80),
            "nvarguscamerasrc name=src ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! video/x-raw(memory:NVMM),format=RGBA ! facerec name=facerec ! nvvidconv ! video/x-raw,format=I420 ! jpegenc name=encoder quality=80 ! appsink name=sink max-buffers=1 drop=true sync=false async=false"
        );
        // describe() gives the one this build takes; both are in pipelines/README.md
        // (documented_pipelines_are_the_built_ones).
        assert_eq!(
            nvargus_description(false, 80),
            "nvarguscamerasrc name=src ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! video/x-raw,format=RGBA ! videoconvert ! facerec name=facerec ! videoconvert ! jpegenc name=encoder quality=80 ! appsink name=sink max-buffers=1 drop=true sync=false async=false"
        );
    }

    /// A decoder left at automatic threads gets one, in the parsed pipeline and when decodebin
    /// adds it while prerolling; a thread count the pipeline sets is kept.
    #[test]
    fn automatic_video_decoders_get_one_thread() {
        gst::init().unwrap();
        let Some(clip) =
            facerec_core::testsupport::require("testdata/face_recognition/short_hamilton_clip.mp4")
        else {
            return;
        };
        let threads = |pipeline: &gst::Pipeline, factory: &str| -> Vec<i32> {
            let mut found = Vec::new();
            let mut elements = pipeline.iterate_recurse();
            while let Ok(Some(e)) = elements.next() {
                if e.factory().is_some_and(|f| f.name() == factory) {
                    found.push(e.property::<i32>("max-threads"));
                }
            }
            found
        };
        let location = clip.display();
        let parsed = |description: String| {
            let pipeline = gst::parse::launch(&description)
                .unwrap()
                .downcast::<gst::Pipeline>()
                .unwrap();
            single_threaded_decoders(&pipeline);
            pipeline
        };
        let automatic = parsed(format!(
            "filesrc location=\"{location}\" ! qtdemux ! h264parse ! avdec_h264 ! fakesink"
        ));
        assert_eq!(threads(&automatic, "avdec_h264"), [1]);
        let chosen = parsed(format!(
            "filesrc location=\"{location}\" ! qtdemux ! h264parse ! avdec_h264 max-threads=2 ! fakesink"
        ));
        assert_eq!(threads(&chosen, "avdec_h264"), [2]);
        // decodebin picks its decoder while prerolling, after the pipeline was set up.
        let decodebin = parsed(format!(
            "filesrc location=\"{location}\" ! decodebin ! fakesink"
        ));
        assert!(threads(&decodebin, "avdec_h264").is_empty());
        decodebin.set_state(gst::State::Paused).unwrap();
        let (changed, _, _) = decodebin.state(gst::ClockTime::from_seconds(10));
        let prerolled = threads(&decodebin, "avdec_h264");
        decodebin.set_state(gst::State::Null).unwrap();
        assert_eq!(changed, Ok(gst::StateChangeSuccess::Success));
        assert_eq!(prerolled, [1]);
    }

    /// pipelines/README.md documents the exact pipelines; keep the two in step.
    #[test]
    fn documented_pipelines_are_the_built_ones() {
        let doc = include_str!("../../../pipelines/README.md");
        let settings = PipelineSettings {
            gallery: None,
            detector: None,
            recognizer: None,
            provider: facerec_core::runtime::Provider::Auto,
            model_variant: None,
            trt_engine_cache: None,
            strict_provider: None,
            trt_fp16: None,
            trt_timing_cache: None,
            cuda_device: None,
            inference_threads: 0,
            tunables: Default::default(),
            redact: gstfacerec::RedactMode::None,
            camera_redact: Default::default(),
            font: None,
            processing_fps: 0,
            max_fps: 15,
            jpeg_quality: 80,
        };
        for uri in [
            "v4l2:///dev/video0",
            "nvargus://0",
            "http://camera/stream",
            "rtsp://camera/path",
            "test://?pattern=ball",
        ] {
            let source = Source::parse(uri, crate::domain::source::Trust::Operator).unwrap();
            let description = describe(&source, &settings);
            assert!(
                doc.contains(&description),
                "pipelines/README.md lacks {description}"
            );
        }
        let file = Source::File {
            path: "/clip.mp4".into(),
            looped: true,
        };
        assert!(doc.contains(&describe(&file, &settings)));
    }
}
