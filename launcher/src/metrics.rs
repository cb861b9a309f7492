//! Prometheus metrics, per camera. [`Metrics`] is an [`EventSink`] for the cameras' states and
//! removals; the cameras and the HTTP layer record their measurements on it directly.
//!
//! Services layer: imports the domain and the sink interface.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use crate::domain::CameraState;
use crate::sink::EventSink;

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
            "JPEG frames per second available to stream clients",
            m.output_fps.clone(),
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

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
