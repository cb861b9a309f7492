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
use facerec_core::stills::StillScales;
use facerec_core::tunables::Tunables;

/// Model and detection options shared by every subcommand that runs the networks.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Detector model (default: searched in $FACEREC_MODEL_DIR, .cache/models, ../shared/models).
    #[arg(long, env = "FACEREC_DETECTOR", global = true)]
    pub detector: Option<PathBuf>,
    /// Recognizer model (default: searched like --detector).
    #[arg(long, env = "FACEREC_RECOGNIZER", global = true)]
    pub recognizer: Option<PathBuf>,
    /// Minimum detection score (the element's detect-threshold).
    #[arg(long, default_value_t = Tunables::DEFAULT.detect_threshold, global = true)]
    pub detect_threshold: f32,
    /// Detection scale for photos. Without it, photos are searched on a pyramid: native
    /// resolution (in tiles when large) and halvings down to 256 px, so faces from about 20 px
    /// up to the whole photo are found in photos of any size, with bounded memory. N > 0: one
    /// pass on the photo scaled to N px wide (as the video element does); 0: one pass at native
    /// resolution (the reference outputs), which misses faces over about 450 px.
    #[arg(long, global = true, value_name = "N")]
    pub network_width: Option<u32>,
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
        // Photos are not video: the element's defaults except for these.
        config.tunables = Tunables {
            detect_threshold: self.detect_threshold,
            network_width: self.network_width.unwrap_or(0),
            min_face_size,
            ..Tunables::default()
        };
        config
    }

    /// How photos are scanned for faces (see `--network-width`).
    pub fn scales(&self) -> StillScales {
        self.network_width
            .map_or(StillScales::Pyramid, StillScales::Single)
    }
}
