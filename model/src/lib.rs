//! `facerec-model`: a thin CLI over `facerec-core`, so that enrolment uses exactly the
//! detection, alignment and embedding of the `facerec` element.

pub mod eval;
pub mod fetch;
pub mod photos;
pub mod query;
pub mod s3;
pub mod train;

use std::path::PathBuf;

use facerec_core::engine::EngineConfig;

/// Model and detection options shared by every subcommand that runs the networks.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Detector model (default: searched in $FACEREC_MODEL_DIR, .cache/models, ../shared/models).
    #[arg(long, env = "FACEREC_DETECTOR", global = true)]
    pub detector: Option<PathBuf>,
    /// Recognizer model (default: searched like --detector).
    #[arg(long, env = "FACEREC_RECOGNIZER", global = true)]
    pub recognizer: Option<PathBuf>,
    /// Minimum detection score.
    #[arg(long, default_value_t = 0.85, global = true)]
    pub detect_threshold: f32,
    /// Width photos are scaled down to for detection; 0 keeps the native resolution (best for
    /// stills, and what the reference outputs use).
    #[arg(long, default_value_t = 0, global = true)]
    pub network_width: u32,
}

impl EngineArgs {
    pub fn config(&self, min_face_size: u32) -> EngineConfig {
        let mut config = EngineConfig::default();
        if let Some(d) = &self.detector {
            config.detector = d.clone();
        }
        if let Some(r) = &self.recognizer {
            config.recognizer = r.clone();
        }
        config.detect.score_threshold = self.detect_threshold;
        config.detect.network_width = self.network_width;
        config.min_face_size = min_face_size;
        config
    }
}
