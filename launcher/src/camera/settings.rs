//! How every camera's facerec element and encoder are set up: [`PipelineSettings`], typed with
//! the element's and the core's enums (`config` makes them from the command line).
//!
//! Camera layer: imports the element's and the core's types only.

use std::collections::BTreeMap;
use std::path::PathBuf;

use facerec_core::models::ModelVariant;
use facerec_core::runtime::Provider;
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
    pub detect_threshold: f32,
    pub match_threshold: f32,
    pub match_margin: Option<f32>,
    pub min_quality: Option<f32>,
    pub confidence_bar: Option<f32>,
    pub detect_interval: u32,
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
    /// facerec properties set only when configured: see [`element_overrides`].
    pub fn element_overrides(&self) -> Vec<(&'static str, f32)> {
        element_overrides(self.match_margin, self.min_quality, self.confidence_bar)
    }

    /// A camera's `redact`.
    pub fn redact_of(&self, camera: &str) -> RedactMode {
        self.camera_redact
            .get(camera)
            .copied()
            .unwrap_or(self.redact)
    }
}

/// facerec properties set only when configured, so that the element's default stays their one
/// declaration: (property, value).
pub fn element_overrides(
    match_margin: Option<f32>,
    min_quality: Option<f32>,
    confidence_bar: Option<f32>,
) -> Vec<(&'static str, f32)> {
    [
        ("match-margin", match_margin),
        ("min-quality", min_quality),
        ("confidence-bar", confidence_bar),
    ]
    .into_iter()
    .filter_map(|(property, value)| Some((property, value?)))
    .collect()
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
