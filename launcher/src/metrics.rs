//! Prometheus metrics, per camera.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CameraLabel {
    pub camera: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StateLabel {
    pub camera: String,
    pub state: String,
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

    /// Drops every series of a removed camera.
    pub fn forget(&self, camera: &str) {
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
        for state in crate::camera::STATES {
            self.state.remove(&StateLabel {
                camera: camera.to_string(),
                state: state.to_string(),
            });
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
