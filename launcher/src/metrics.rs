//! Prometheus metrics, per camera. [`Metrics`] is an [`EventSink`] for the cameras' states and
//! removals; the cameras and the HTTP layer record their measurements on it directly.
//!
//! Services layer: imports the domain and the sink interface.

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use crate::domain::CameraState;
use crate::sink::EventSink;
// The upper bounds (seconds) of the element's `queue-wait-buckets`, without the last, +Inf.
use facerec_core::schedule::WAIT_BUCKETS_SECONDS;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabel {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub camera: String,
    pub state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    pub camera: String,
    pub provider: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn inference_histogram() -> Histogram {
    // 1 ms to about 1 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 11))
}

/// How long a camera's facerec waited for its inference turns, as the element counts them: an
/// exact histogram made of the element's own bucket counts and total (summed over the camera's
/// pipelines, each of which counts from zero), not of samples the launcher observed.
#[derive(Debug, Default)]
pub struct WaitHistogram {
    inner: Mutex<WaitCounts>,
}

#[derive(Debug, Default, Clone, PartialEq)]
struct WaitCounts {
    /// Per bucket of [`WAIT_BUCKETS_SECONDS`] and the last, +Inf (not cumulative); empty
    /// before the first wait.
    buckets: Vec<u64>,
    sum_seconds: f64,
}

impl WaitCounts {
    /// The counts, one per bucket and +Inf.
    fn all(&self) -> Vec<u64> {
        let mut buckets = self.buckets.clone();
        buckets.resize(WAIT_BUCKETS_SECONDS.len() + 1, 0);
        buckets
    }
}

impl WaitHistogram {
    /// Adds waits: `buckets` as the element lists them (not cumulative, the last +Inf; counts
    /// past the last bound land in +Inf) and their total time.
    pub fn add(&self, buckets: &[u64], wait: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner.buckets = inner.all();
        let last = inner.buckets.len() - 1;
        for (i, n) in buckets.iter().enumerate() {
            inner.buckets[i.min(last)] += n;
        }
        inner.sum_seconds += wait.as_secs_f64();
    }
}

impl TypedMetric for WaitHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for WaitHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let counts = inner.all();
        let bounds = WAIT_BUCKETS_SECONDS.iter().copied().chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds.zip(counts.iter().copied()).collect();
        // The count is the buckets' total, so that +Inf and _count always agree.
        let count = counts.iter().sum();
        encoder.encode_histogram::<NoLabelSet>(inner.sum_seconds, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

/// The process-wide figures of the shared inference engine, as the last element read reported
/// them: every camera's element reports the same process-wide counters.
#[derive(Debug, Default)]
struct EngineFigures {
    /// When `engine-busy-ns` was last turned into the utilisation, and its value then.
    busy_at: Option<(Instant, u64)>,
    session_loads: u64,
    shared_runs: u64,
    deferred_faces: u64,
}

/// The MQTT publisher's health; registered only when MQTT is configured.
#[derive(Default)]
pub struct MqttMetrics {
    pub connected: Gauge,
    pub published: Counter,
    pub dropped: Counter,
}

pub struct Metrics {
    pub registry: Registry,
    pub mqtt: MqttMetrics,
    pub input_fps: Family<CameraLabel, FloatGauge>,
    pub processed_fps: Family<CameraLabel, FloatGauge>,
    pub output_fps: Family<CameraLabel, FloatGauge>,
    pub inference_seconds: Family<CameraLabel, Histogram, fn() -> Histogram>,
    pub faces: Family<CameraLabel, Gauge>,
    pub named_faces: Family<CameraLabel, Gauge>,
    pub clients: Family<CameraLabel, Gauge>,
    pub reconnects: Family<CameraLabel, Counter>,
    pub state: Family<StateLabel, Gauge>,
    /// `facerec_detections_total`: detection runs of the camera's facerec (all its pipelines).
    pub detections: Family<CameraLabel, Counter>,
    pub detect_fps: Family<CameraLabel, FloatGauge>,
    pub scheduler_wait: Family<CameraLabel, WaitHistogram>,
    /// `facerec_stale_requests_total`: frames the live worker replaced by newer ones unanalysed.
    pub stale_requests: Family<CameraLabel, Counter>,
    /// `facerec_frames_dropped_before_element_total`: QoS drops upstream of facerec.
    pub dropped_before_element: Family<CameraLabel, Counter>,
    pub overloaded: Family<CameraLabel, Gauge>,
    /// `facerec_frames_encoded_total`: JPEGs out of the camera's encoder.
    pub frames_encoded: Family<CameraLabel, Counter>,
    /// `facerec_engine_utilisation`: the share of wall time inference turns were held.
    pub engine_utilisation: FloatGauge,
    /// `facerec_inference_session_loads_total`: ONNX Runtime sessions loaded by the process.
    pub session_loads: Counter,
    /// `facerec_recognizer_shared_runs_total`: recognizer runs that embedded the faces of
    /// several cameras (`facerec_core::batch`).
    pub shared_runs: Counter,
    /// `facerec_recognizer_deferred_faces_total`: faces a camera left for another's run.
    pub deferred_faces: Counter,
    engine: Mutex<EngineFigures>,
    /// `facerec_events_dropped_total`: recognition events that are not in the history (see
    /// `register` below for the exact definition).
    pub events_dropped: Counter,
    /// `facerec_store_errors_total`: events whose history insert failed.
    pub store_errors: Counter,
    inference_provider: Family<ProviderLabel, Gauge>,
    /// Each camera's provider series, so that a changed provider replaces it.
    providers: Mutex<HashMap<String, String>>,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("facerec");
        let m = Metrics {
            input_fps: Family::default(),
            processed_fps: Family::default(),
            output_fps: Family::default(),
            inference_seconds: Family::new_with_constructor(
                inference_histogram as fn() -> Histogram,
            ),
            faces: Family::default(),
            named_faces: Family::default(),
            clients: Family::default(),
            reconnects: Family::default(),
            state: Family::default(),
            detections: Family::default(),
            detect_fps: Family::default(),
            scheduler_wait: Family::default(),
            stale_requests: Family::default(),
            dropped_before_element: Family::default(),
            overloaded: Family::default(),
            frames_encoded: Family::default(),
            engine_utilisation: FloatGauge::default(),
            session_loads: Counter::default(),
            shared_runs: Counter::default(),
            deferred_faces: Counter::default(),
            engine: Mutex::default(),
            events_dropped: Counter::default(),
            store_errors: Counter::default(),
            inference_provider: Family::default(),
            providers: Mutex::default(),
            mqtt: MqttMetrics::default(),
            registry: Registry::default(),
        };
        registry.register(
            "input_fps",
            "Frames per second entering the facerec element",
            m.input_fps.clone(),
        );
        registry.register(
            "processed_fps",
            "Frames per second handled by the facerec element (after the --processing-fps cap), with or without faces",
            m.processed_fps.clone(),
        );
        registry.register(
            "output_fps",
            "JPEG frames per second published to stream clients and snapshots (at most --max-fps); 0 while nobody watches, as frames are only encoded for a viewer",
            m.output_fps.clone(),
        );
        registry.register(
            "frames_encoded",
            "JPEG frames out of the camera's encoder; it encodes only while a stream client or a recent snapshot wants frames",
            m.frames_encoded.clone(),
        );
        registry.register(
            "detections",
            "Face detection runs of the camera's facerec element",
            m.detections.clone(),
        );
        registry.register(
            "detect_fps",
            "Face detection runs per second of the camera's facerec element, over the last 5 s",
            m.detect_fps.clone(),
        );
        registry.register(
            "scheduler_wait_seconds",
            "How long the camera's facerec waited for each of its turns on the process's shared inference engine",
            m.scheduler_wait.clone(),
        );
        registry.register(
            "stale_requests",
            "Frames the camera's live facerec worker replaced by a newer frame before analysing them",
            m.stale_requests.clone(),
        );
        registry.register(
            "frames_dropped_before_element",
            "Frames dropped upstream of the facerec element (the dropped figure of QoS messages from the source and decoder)",
            m.dropped_before_element.clone(),
        );
        registry.register(
            "camera_overloaded",
            "1 while the camera's source delivers but recognition does not keep up: no frame out of facerec for 10 s, or fewer detections per second over 5 s than --min-detect-fps while frames arrive at least that fast (the camera is never rebuilt for it)",
            m.overloaded.clone(),
        );
        registry.register(
            "engine_utilisation",
            "Share of wall time (0 to 1) the process's shared inference engine was held by an inference turn, over the last second",
            m.engine_utilisation.clone(),
        );
        registry.register(
            "inference_session_loads",
            "ONNX Runtime sessions the process loaded (cameras with the same settings share one per model)",
            m.session_loads.clone(),
        );
        registry.register(
            "recognizer_shared_runs",
            "Recognizer runs that embedded the faces of several cameras in one batch",
            m.shared_runs.clone(),
        );
        registry.register(
            "recognizer_deferred_faces",
            "Faces a camera left for the next camera's turn to embed in one run with its own",
            m.deferred_faces.clone(),
        );
        registry.register(
            "inference_seconds",
            "Detection, alignment and embedding time per processed frame",
            m.inference_seconds.clone(),
        );
        registry.register(
            "faces",
            "Faces on the latest processed frame",
            m.faces.clone(),
        );
        registry.register(
            "named_faces",
            "Recognised (named) faces on the latest processed frame",
            m.named_faces.clone(),
        );
        registry.register("clients", "Connected stream clients", m.clients.clone());
        registry.register(
            "reconnects",
            "Times the camera pipeline was rebuilt after a failure",
            m.reconnects.clone(),
        );
        registry.register(
            "camera_state",
            "1 for the camera's current state",
            m.state.clone(),
        );
        registry.register(
            "inference_provider",
            "1 for the ONNX Runtime execution provider the camera's facerec runs on, after any fallback (cpu when TensorRT or CUDA could not be used; detector's and recognizer's joined by a comma when they differ)",
            m.inference_provider.clone(),
        );
        registry.register(
            "events_dropped",
            "Recognition events missing from the history: each event whose insert failed (it was still sent live, with id 0 and no face_url) and each event dropped because the recorder's queue was full (it reached no consumer)",
            m.events_dropped.clone(),
        );
        registry.register(
            "store_errors",
            "Events whose history insert failed (a full disk, an I/O or SQLite error), after the retention and one retry",
            m.store_errors.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Adds the MQTT series (before the metrics are shared).
    pub fn register_mqtt(&mut self) {
        self.registry.register(
            "mqtt_connected",
            "1 while connected to the MQTT broker",
            self.mqtt.connected.clone(),
        );
        self.registry.register(
            "mqtt_published",
            "MQTT messages the broker acknowledged",
            self.mqtt.published.clone(),
        );
        self.registry.register(
            "mqtt_dropped",
            "Events dropped because the MQTT buffer was full (the oldest go first)",
            self.mqtt.dropped.clone(),
        );
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Creates a camera's series at zero, so that they are listed before anything is counted.
    pub fn add_camera(&self, camera: &str) {
        let label = CameraLabel {
            camera: camera.to_string(),
        };
        let _ = self.detections.get_or_create(&label);
        let _ = self.detect_fps.get_or_create(&label);
        let _ = self.scheduler_wait.get_or_create(&label);
        let _ = self.stale_requests.get_or_create(&label);
        let _ = self.dropped_before_element.get_or_create(&label);
        let _ = self.overloaded.get_or_create(&label);
        let _ = self.frames_encoded.get_or_create(&label);
    }

    /// Takes the process-wide engine figures an element reported: `engine-busy-ns` (monotonic
    /// since the process started) becomes the utilisation over at least `interval`, and
    /// `session-loads` the counter.
    pub fn engine_figures(
        &self,
        now: Instant,
        busy_ns: u64,
        session_loads: u64,
        interval: Duration,
    ) {
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        match engine.busy_at {
            None => engine.busy_at = Some((now, busy_ns)),
            // Another camera's read of the same counter a moment earlier may come in later:
            // only a larger value counts.
            Some((at, before)) => {
                let wall = now.saturating_duration_since(at);
                if busy_ns >= before && wall >= interval {
                    self.engine_utilisation
                        .set(utilisation(busy_ns - before, wall));
                    engine.busy_at = Some((now, busy_ns));
                }
            }
        }
        // Process-wide and monotonic: only ever larger, whichever camera reports it.
        if session_loads > engine.session_loads {
            self.session_loads
                .inc_by(session_loads - engine.session_loads);
            engine.session_loads = session_loads;
        }
    }

    /// Takes the process-wide batch counters an element reported (monotonic: only a larger
    /// value counts, whichever camera reports it).
    pub fn batch_figures(&self, shared_runs: u64, deferred_faces: u64) {
        let mut engine = self.engine.lock().unwrap_or_else(|e| e.into_inner());
        if shared_runs > engine.shared_runs {
            self.shared_runs.inc_by(shared_runs - engine.shared_runs);
            engine.shared_runs = shared_runs;
        }
        if deferred_faces > engine.deferred_faces {
            self.deferred_faces
                .inc_by(deferred_faces - engine.deferred_faces);
            engine.deferred_faces = deferred_faces;
        }
    }

    /// Records the provider a camera's pipeline started on, replacing the one before.
    pub fn set_provider(&self, camera: &str, provider: &str) {
        let mut providers = self.providers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = providers.insert(camera.to_string(), provider.to_string()) {
            self.inference_provider.remove(&ProviderLabel {
                camera: camera.to_string(),
                provider: old,
            });
        }
        self.inference_provider
            .get_or_create(&ProviderLabel {
                camera: camera.to_string(),
                provider: provider.to_string(),
            })
            .set(1);
    }

    /// Drops every series of a removed camera.
    pub fn forget(&self, camera: &str) {
        let provider = self
            .providers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(camera);
        if let Some(provider) = provider {
            self.inference_provider.remove(&ProviderLabel {
                camera: camera.to_string(),
                provider,
            });
        }
        let label = CameraLabel {
            camera: camera.to_string(),
        };
        self.input_fps.remove(&label);
        self.processed_fps.remove(&label);
        self.output_fps.remove(&label);
        self.inference_seconds.remove(&label);
        self.faces.remove(&label);
        self.named_faces.remove(&label);
        self.clients.remove(&label);
        self.reconnects.remove(&label);
        self.detections.remove(&label);
        self.detect_fps.remove(&label);
        self.scheduler_wait.remove(&label);
        self.stale_requests.remove(&label);
        self.dropped_before_element.remove(&label);
        self.overloaded.remove(&label);
        self.frames_encoded.remove(&label);
        for state in CameraState::ALL {
            self.state.remove(&StateLabel {
                camera: camera.to_string(),
                state: state.to_string(),
            });
        }
    }
}

impl EventSink for Metrics {
    /// 1 for the camera's state, 0 for the others.
    fn camera_state(&self, camera: &str, state: CameraState) {
        for s in CameraState::ALL {
            self.state
                .get_or_create(&StateLabel {
                    camera: camera.to_string(),
                    state: s.to_string(),
                })
                .set((s == state) as i64);
        }
    }

    fn camera_removed(&self, camera: &str) {
        self.forget(camera);
    }
}

/// The share of `wall` that `busy_ns` of engine time is, within 0 to 1.
fn utilisation(busy_ns: u64, wall: Duration) -> f64 {
    if wall.is_zero() {
        return 0.0;
    }
    (busy_ns as f64 / wall.as_nanos() as f64).clamp(0.0, 1.0)
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(metrics: &Metrics, prefix: &str) -> Vec<String> {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_string)
            .collect()
    }

    /// The element's own bucket counts (not cumulative) become a cumulative exposition, summed
    /// over the camera's pipelines, with the element's total time as the sum.
    #[test]
    fn the_scheduler_wait_histogram_is_the_elements_counts() {
        let metrics = Metrics::new();
        metrics.add_camera("cam0");
        let label = CameraLabel {
            camera: "cam0".into(),
        };
        let h = metrics.scheduler_wait.get_or_create(&label);
        // One wait under 1 ms, two under 10 ms, one over 2.5 s.
        h.add(
            &[1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1],
            Duration::from_millis(3_012),
        );
        // A rebuilt pipeline's first figures: one more under 1 ms.
        h.add(&[1], Duration::from_micros(500));
        drop(h);
        let text = lines(&metrics, "facerec_scheduler_wait_seconds");
        assert_eq!(
            text,
            [
                "facerec_scheduler_wait_seconds_sum{camera=\"cam0\"} 3.0125",
                "facerec_scheduler_wait_seconds_count{camera=\"cam0\"} 5",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.001\",camera=\"cam0\"} 2",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.0025\",camera=\"cam0\"} 2",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.005\",camera=\"cam0\"} 2",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.01\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.025\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.05\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.1\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.25\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"0.5\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"1.0\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"2.5\",camera=\"cam0\"} 4",
                "facerec_scheduler_wait_seconds_bucket{le=\"+Inf\",camera=\"cam0\"} 5",
            ]
        );
        // Counts past the last bound (an element with more buckets) land in +Inf.
        metrics
            .scheduler_wait
            .get_or_create(&label)
            .add(&[0; 14].map(|_| 1), Duration::ZERO);
        assert!(
            lines(
                &metrics,
                "facerec_scheduler_wait_seconds_bucket{le=\"+Inf\""
            )[0]
            .ends_with(" 19")
        );
        metrics.forget("cam0");
        assert!(lines(&metrics, "facerec_scheduler_wait_seconds_").is_empty());
    }

    /// Engine time over wall time, between two reports at least the interval apart; the
    /// session loads as a counter that only grows.
    #[test]
    fn engine_utilisation_and_session_loads() {
        let metrics = Metrics::new();
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        metrics.engine_figures(t0, 1_000_000_000, 2, s);
        assert_eq!(metrics.engine_utilisation.get(), 0.0);
        // Too soon: not measured yet.
        metrics.engine_figures(t0 + s / 2, 1_200_000_000, 2, s);
        assert_eq!(metrics.engine_utilisation.get(), 0.0);
        metrics.engine_figures(t0 + s * 2, 2_500_000_000, 2, s);
        assert!((metrics.engine_utilisation.get() - 0.75).abs() < 1e-9);
        // Busier than the wall (parallel turns) is 1 at most.
        metrics.engine_figures(t0 + s * 3, 5_000_000_000, 3, s);
        assert_eq!(metrics.engine_utilisation.get(), 1.0);
        // Another camera's older read of the same counters changes nothing.
        metrics.engine_figures(t0 + s * 3, 4_000_000_000, 2, s);
        assert_eq!(metrics.session_loads.get(), 3);
        assert_eq!(utilisation(5, Duration::ZERO), 0.0);
    }

    fn provider_lines(metrics: &Metrics) -> Vec<String> {
        metrics
            .encode()
            .lines()
            .filter(|l| l.starts_with("facerec_inference_provider{"))
            .map(str::to_string)
            .collect()
    }

    /// One series per camera: a rebuilt pipeline on another provider replaces it, and a removed
    /// camera takes it away.
    #[test]
    fn a_camera_has_one_provider_series() {
        let metrics = Metrics::new();
        metrics.set_provider("cam0", "tensorrt");
        metrics.set_provider("cam1", "cpu");
        metrics.set_provider("cam0", "cuda,cpu");
        let mut lines = provider_lines(&metrics);
        lines.sort();
        assert_eq!(
            lines,
            [
                "facerec_inference_provider{camera=\"cam0\",provider=\"cuda,cpu\"} 1",
                "facerec_inference_provider{camera=\"cam1\",provider=\"cpu\"} 1",
            ]
        );
        metrics.forget("cam0");
        assert_eq!(
            provider_lines(&metrics),
            ["facerec_inference_provider{camera=\"cam1\",provider=\"cpu\"} 1"]
        );
    }
}
