//! How every camera's facerec element and encoder are set up: [`PipelineSettings`], typed with
//! the element's and the core's enums (`config` makes them from the command line).
//!
//! Camera layer: imports the element's and the core's types only (and GLib's values).

use std::collections::BTreeMap;
use std::path::PathBuf;

use facerec_core::models::ModelVariant;
use facerec_core::runtime::Provider;
use facerec_core::tunables::{TUNABLES, TunableValue, Tunables};
use gst::glib;
use gstfacerec::RedactMode;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    /// The gallery; the face library's once it has been changed.
    pub gallery: Option<PathBuf>,
    pub detector: Option<PathBuf>,
    pub recognizer: Option<PathBuf>,
    pub provider: Provider,
    /// Unset: the element's default (off).
    pub strict_provider: Option<bool>,
    /// Unset: the element's default (fp32).
    pub model_variant: Option<ModelVariant>,
    pub trt_engine_cache: Option<PathBuf>,
    pub trt_fp16: Option<bool>,
    pub trt_timing_cache: Option<PathBuf>,
    pub cuda_device: Option<u32>,
    /// facerec's `threads` (ONNX Runtime intra-op threads per model, shared by the cameras whose
    /// elements share a session); 0: the element's default.
    pub inference_threads: u32,
    /// facerec's tunables, checked against their declared ranges.
    pub tunables: Tunables,
    /// Every camera's, unless it has its own in `camera_redact`.
    pub redact: RedactMode,
    pub camera_redact: BTreeMap<String, RedactMode>,
    pub font: Option<PathBuf>,
    /// Frames per second fed to recognition; 0 = all.
    pub processing_fps: u32,
    pub max_fps: u32,
    pub jpeg_quality: u32,
}

impl PipelineSettings {
    /// facerec's tunable properties with their values: (property, value).
    pub fn tunable_properties(&self) -> impl Iterator<Item = (&'static str, glib::Value)> + '_ {
        TUNABLES.iter().map(|tunable| {
            let value = match self.tunables.get(tunable.name) {
                Some(TunableValue::Float(v)) => v.into(),
                Some(TunableValue::UInt(v)) => v.into(),
                None => unreachable!("every declared tunable has a field"),
            };
            (tunable.name, value)
        })
    }

    /// A camera's `redact`.
    pub fn redact_of(&self, camera: &str) -> RedactMode {
        self.camera_redact
            .get(camera)
            .copied()
            .unwrap_or(self.redact)
    }
}

/// The nick of a `redact` mode, as the element's property takes it. Properties are set by nick,
/// never through the enum's GType: a facerec plugin found on GST_PLUGIN_PATH registers its own,
/// and registering the launcher's copy too would abort.
pub fn redact_nick(mode: RedactMode) -> &'static str {
    match mode {
        RedactMode::None => "none",
        RedactMode::Unknown => "unknown",
        RedactMode::All => "all",
    }
}

/// The `redact` mode of a nick.
pub fn parse_redact(nick: &str) -> Option<RedactMode> {
    [RedactMode::None, RedactMode::Unknown, RedactMode::All]
        .into_iter()
        .find(|mode| redact_nick(*mode) == nick)
}
