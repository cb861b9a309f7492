//! The per-frame pipeline: detect, track, align, score, embed, match, and a name decided per
//! track by a vote over its embedding attempts ([`crate::identity`], [`crate::quality`]).
//! The element, the model tool and the launcher all run faces through this one type.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;

use crate::align::align_face;
use crate::batch::DEFER_WAIT;
use crate::detect::{Detection, Detector, DetectorConfig, NetworkInput};
use crate::embed::{Embedding, Recognizer};
use crate::frame::PixelSource;
use crate::gallery::{Gallery, GalleryError, Match};
use crate::geometry::{BBox, Landmarks};
use crate::identity::Decider;
use crate::models::{ModelVariant, default_model_path};
use crate::quality::{self, Quality};
use crate::runtime::{ProviderReport, SessionConfig};
use crate::schedule::Turn;
use crate::tracker::Tracker;
use crate::tunables::Tunables;
use crate::{Error, Result};

/// A track whose box overlaps its previous box less than this becomes a new track (new id,
/// fresh vote): at a scene cut a new face can land where another was, and must not inherit its
/// name (the clip's cut at frame 211 puts an audience member at IoU 0.38 with Miranda's box).
const REIDENTIFY_IOU: f32 = 0.5;

/// A track is embedded on every detection frame for its first this many attempts, so that the
/// vote converges within a few frames, and again while its name is in doubt
/// ([`crate::identity::Vote::in_doubt`]: the latest good attempt disagreed with it, or matched
/// it only weakly); then every `recognize-interval` detections if named, three times as often
/// if not. An attempt under the quality floor (too blurred, turned away) costs an alignment,
/// not an embedding.
const QUICK_ATTEMPTS: u32 = 10;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub detector: PathBuf,
    pub recognizer: PathBuf,
    /// The precision of the models. It picks the default file names
    /// ([`EngineConfig::for_variant`]); paths set in `detector`/`recognizer` win. A variant that
    /// has not passed the accuracy gate fails [`Engine::new`]. Galleries stay fp32 whatever it
    /// is ([`Recognizer::load_variant`]).
    pub variant: ModelVariant,
    pub session: SessionConfig,
    /// Every setting that may change while running, declared in [`crate::tunables`]: the one
    /// place the element, the launcher and the model tool set them.
    pub tunables: Tunables,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig::for_variant(ModelVariant::Fp32)
    }
}

impl EngineConfig {
    /// The defaults, with `variant`'s model files found like the fp32 ones
    /// ([`default_model_path`]).
    pub fn for_variant(variant: ModelVariant) -> Self {
        EngineConfig {
            detector: default_model_path(&variant.detector_file()),
            recognizer: default_model_path(&variant.recognizer_file()),
            variant,
            session: SessionConfig::default(),
            tunables: Tunables::default(),
        }
    }

    /// The vote's settings.
    pub fn decider(&self) -> Decider {
        decider(&self.tunables)
    }

    /// The detector's settings: the tunables it reads, the rest its own.
    pub fn detector_config(&self) -> DetectorConfig {
        DetectorConfig {
            network_width: self.tunables.network_width,
            score_threshold: self.tunables.detect_threshold,
            ..DetectorConfig::default()
        }
    }
}

/// The vote's settings among the tunables.
fn decider(t: &Tunables) -> Decider {
    Decider {
        match_threshold: t.match_threshold,
        match_margin: t.match_margin,
        min_quality: t.min_quality,
        confidence_bar: t.confidence_bar,
    }
}

/// One face on one frame, as the element reports and draws it.
#[derive(Debug, Clone, PartialEq)]
pub struct FaceResult {
    pub track_id: u64,
    pub bbox: BBox,
    pub landmarks: Landmarks,
    pub score: f32,
    /// `None` until the face has been through the recognizer (or when it is too small, or
    /// every attempt was under the quality floor). `name` is the track's decided name (the
    /// vote's, not the latest attempt's); `distance` and `second` are the latest attempt's.
    pub identity: Option<Match>,
    /// The latest attempt's quality, 0..1; `None` when the face was never tried.
    pub quality: Option<f32>,
    /// The shown label's share of the track's evidence, 0..1 (0 before any good attempt).
    pub confidence: f32,
}

impl FaceResult {
    /// The name to show: the person, "unknown", or `None` for a face that was not recognised.
    pub fn label(&self) -> Option<&str> {
        self.identity.as_ref().map(Match::label)
    }

    pub fn name(&self) -> Option<&str> {
        self.identity.as_ref().and_then(|m| m.name.as_deref())
    }
}

/// A face in a still image: detection, embedding (if large enough) and match.
#[derive(Debug, Clone)]
pub struct AnalyzedFace {
    pub detection: Detection,
    pub embedding: Option<Embedding>,
    pub identity: Option<Match>,
}

/// The face to enrol from a photo's detections: the largest one that could be embedded. The
/// model tool's `train` and `eval` and the launcher's face library all enrol through it. It
/// lives here beside [`AnalyzedFace`] rather than in `stills`, which `engine` imports.
pub fn enrolment_face(faces: Vec<AnalyzedFace>) -> Option<AnalyzedFace> {
    faces
        .into_iter()
        .filter(|f| f.embedding.is_some())
        .max_by(|a, b| a.detection.bbox.area().total_cmp(&b.detection.bbox.area()))
}

/// Accumulated wall time per stage, for the benchmark and the element's statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StageTimes {
    pub frames: u64,
    pub detect_runs: u64,
    pub embeddings: u64,
    pub convert: Duration,
    pub detect: Duration,
    pub align: Duration,
    pub embed: Duration,
    /// Scoring each attempt's quality (the chip's Laplacian, the landmarks' pose).
    pub quality: Duration,
    pub draw: Duration,
}

/// A frame between detection and recognition: its tracks in view, and the tracks whose chips
/// are due for embedding (in the chips' order).
struct PendingFrame {
    seen: Vec<usize>,
    good: Vec<(usize, Quality)>,
    /// Detection, alignment and quality time.
    work: Duration,
    /// Time the recognizer ran for this frame's chips (0 when another stream's turn ran them).
    embed_time: Duration,
}

pub struct Engine {
    detector: Detector,
    recognizer: Recognizer,
    tracker: Tracker,
    gallery: Option<Arc<Gallery>>,
    config: EngineConfig,
    reports: Vec<ProviderReport>,
    frame_no: u64,
    current: Vec<FaceResult>,
    pub times: StageTimes,
    /// Detection, alignment and embedding time of the latest processed frame.
    pub last_inference: Duration,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("config", &self.config)
            .field("reports", &self.reports)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Loads both models. Fails with an error naming the file or library at fault.
    pub fn new(config: EngineConfig) -> Result<Engine> {
        // Before anything is loaded: the gate's reason is the error, not a missing file.
        config.variant.check_selectable()?;
        let (detector, detector_report) =
            Detector::load(&config.detector, config.detector_config(), &config.session)?;
        let (recognizer, recognizer_report) =
            Recognizer::load_variant(&config.recognizer, &config.session, config.variant)?;
        Ok(Engine {
            detector,
            recognizer,
            tracker: Tracker::default(),
            gallery: None,
            config,
            reports: vec![detector_report, recognizer_report],
            frame_no: 0,
            current: Vec::new(),
            times: StageTimes::default(),
            last_inference: Duration::ZERO,
        })
    }

    /// What each session runs on, with any fallback warnings.
    pub fn provider_reports(&self) -> &[ProviderReport] {
        &self.reports
    }

    pub fn recognizer(&self) -> &Recognizer {
        &self.recognizer
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    pub fn gallery(&self) -> Option<&Arc<Gallery>> {
        self.gallery.as_ref()
    }

    /// Loads a gallery file and checks it against this engine's recognizer.
    pub fn load_gallery(&self, path: &std::path::Path) -> Result<Gallery> {
        Gallery::load_for(path, self.recognizer.sha256(), self.recognizer.dim())
    }

    /// Swaps the gallery (after checking it against the recognizer). Tracks are re-recognised.
    pub fn set_gallery(&mut self, gallery: Option<Arc<Gallery>>) -> Result<(), GalleryError> {
        if let Some(g) = &gallery {
            g.check_recognizer(self.recognizer.sha256(), self.recognizer.dim())?;
        }
        self.gallery = gallery;
        self.tracker.clear_identities();
        Ok(())
    }

    /// The settings that may change while running.
    pub fn tuning(&self) -> Tunables {
        self.config.tunables
    }

    /// Applies new run-time settings; the votes start again if a decision setting moved.
    pub fn tune(&mut self, tuning: &Tunables) {
        if self.config.decider() != decider(tuning) {
            self.tracker.clear_identities();
        }
        self.config.tunables = Tunables {
            detect_interval: tuning.detect_interval.max(1),
            recognize_interval: tuning.recognize_interval.max(1),
            ..*tuning
        };
        self.detector.config = self.config.detector_config();
    }

    /// Forgets all tracks (for a new stream or a seek).
    pub fn reset(&mut self) {
        self.tracker.reset();
        self.current.clear();
        self.frame_no = 0;
    }

    fn identify(&self, embedding: &[f32]) -> Match {
        match &self.gallery {
            Some(g) => g.best_match(embedding, self.config.tunables.match_threshold),
            None => Match {
                name: None,
                distance: None,
                second: None,
            },
        }
    }

    /// Whether a face in view is still being recognised: a track of a face large enough to
    /// embed whose vote has not settled. A shared engine serves such a stream before one that
    /// only re-checks faces it knows ([`crate::schedule`]).
    pub fn recognising(&self) -> bool {
        let decider = self.config.decider();
        let min_size = self.config.tunables.min_face_size as f32;
        self.tracker.tracks().iter().any(|t| {
            t.detection.bbox.w >= min_size
                && (t.vote.attempts < QUICK_ATTEMPTS || t.vote.in_doubt(&decider))
                && t.vote.name().is_none()
        })
    }

    /// Whether the next frame is a detection frame. When it is not, the caller may skip
    /// preparing the network input and call [`Engine::carry_over`] instead of [`Engine::process`].
    pub fn needs_frame(&self) -> bool {
        self.frame_no
            .is_multiple_of(self.config.tunables.detect_interval as u64)
    }

    /// Advances one frame between detections: the last faces are reported again.
    pub fn carry_over(&mut self) -> &[FaceResult] {
        self.frame_no += 1;
        self.times.frames += 1;
        &self.current
    }

    /// Processes one video frame: detection on every `detect_interval`-th frame (on `input`,
    /// the frame at network size), tracking, and recognition of new tracks and, periodically,
    /// of known ones, aligned from `source`, the frame itself at full resolution.
    pub fn process(
        &mut self,
        input: &NetworkInput<'_>,
        source: &(impl PixelSource + ?Sized),
    ) -> Result<&[FaceResult]> {
        if !self.needs_frame() {
            return Ok(self.carry_over());
        }
        let (mut pending, chips) = self.detect_and_align(input, source)?;
        let started = Instant::now();
        let embeddings = self.recognizer.embed(&chips)?;
        pending.embed_time = started.elapsed();
        Ok(self.decide(pending, &embeddings))
    }

    /// [`Engine::process`] during `turn` on the process's shared engine, with the recognition
    /// batched across streams ([`crate::batch`]): when other streams wait for a turn and
    /// `recognition-batch` allows, this frame's chips are left for the next turn's run and the
    /// turn is given up at once; otherwise they run now, with any chips other streams left.
    pub fn process_turn(
        &mut self,
        turn: Turn<'_>,
        input: &NetworkInput<'_>,
        source: &(impl PixelSource + ?Sized),
    ) -> Result<&[FaceResult]> {
        let max = self.config.tunables.recognition_batch as usize;
        if !self.needs_frame() {
            self.recognizer.embed_with_waiting(Vec::new(), max)?;
            return Ok(self.carry_over());
        }
        let (mut pending, chips) = self.detect_and_align(input, source)?;
        let count = chips.len();
        // Left for the next turn only while the run would still have room: a stream that would
        // fill it runs it now, so that chips never wait on a chain of streams each leaving theirs.
        let defer = count > 0
            && self.recognizer.batch().waiting_chips() + count < max
            && turn.others_waiting();
        let embeddings = if defer {
            let client = turn.client();
            let ticket = self.recognizer.batch().defer(chips);
            drop(turn);
            let outcome = match self.recognizer.batch().wait(ticket, DEFER_WAIT) {
                Some(outcome) => outcome,
                None => {
                    // No other turn took them: run them (and whatever else waits) now.
                    let _turn = client.flush_turn();
                    let started = Instant::now();
                    self.recognizer.embed_with_waiting(Vec::new(), max)?;
                    pending.embed_time = started.elapsed();
                    // Taken now, by this flush or by a run still going on another
                    // scheduler's turn (tests make their own schedulers).
                    self.recognizer
                        .batch()
                        .wait(ticket, Duration::from_secs(30))
                        .unwrap_or_else(|| Err("the chips were never run".into()))
                }
            };
            outcome.map_err(|reason| Error::Inference {
                what: "recognizer",
                reason,
            })?
        } else {
            let started = Instant::now();
            let embeddings = self.recognizer.embed_with_waiting(chips, max)?;
            pending.embed_time = started.elapsed();
            drop(turn);
            embeddings
        };
        if embeddings.len() != count {
            return Err(Error::Inference {
                what: "recognizer",
                reason: format!("{count} faces gave {} embeddings", embeddings.len()),
            });
        }
        Ok(self.decide(pending, &embeddings))
    }

    /// Detection, tracking, and the chips of the faces due for recognition.
    fn detect_and_align(
        &mut self,
        input: &NetworkInput<'_>,
        source: &(impl PixelSource + ?Sized),
    ) -> Result<(PendingFrame, Vec<crate::align::Chip>)> {
        let frame_no = self.frame_no;
        self.frame_no += 1;
        self.times.frames += 1;
        let started = Instant::now();
        let detections = self.detector.detect_network(input)?;
        self.times.detect += started.elapsed();
        self.times.detect_runs += 1;

        let seen = self.tracker.update(detections);
        let recheck_known = self.config.tunables.recognize_interval as u64
            * self.config.tunables.detect_interval as u64;
        let recheck_unknown = recheck_known.div_ceil(3);
        let min_size = self.config.tunables.min_face_size as f32;
        let decider = self.config.decider();
        let mut due = Vec::new();
        for &i in &seen {
            if self.tracker.tracks()[i].last_iou < REIDENTIFY_IOU {
                self.tracker.renew(i);
            }
            let t = self.tracker.track_mut(i);
            if t.detection.bbox.w < min_size {
                continue;
            }
            let Some(at) = t.embedded_at else {
                due.push(i);
                continue;
            };
            let settled = t.vote.attempts >= QUICK_ATTEMPTS && !t.vote.in_doubt(&decider);
            let every = match (settled, t.vote.name()) {
                (false, _) => 1,
                (true, Some(_)) => recheck_known,
                (true, None) => recheck_unknown,
            };
            if frame_no - at >= every {
                due.push(i);
            }
        }

        let mut good = Vec::new();
        let mut good_chips = Vec::new();
        if self.gallery.is_none() {
            // Nothing to compare with: every face is "unknown" without running the recognizer.
            for &i in &due {
                let t = self.tracker.track_mut(i);
                t.vote.last_match = Some(Match {
                    name: None,
                    distance: None,
                    second: None,
                });
                t.embedded_at = Some(frame_no);
            }
        } else if !due.is_empty() {
            let align_started = Instant::now();
            let chips: Vec<_> = due
                .iter()
                .map(|&i| align_face(source, &self.tracker.tracks()[i].detection.landmarks))
                .collect();
            self.times.align += align_started.elapsed();
            let quality_started = Instant::now();
            let qualities: Vec<Quality> = due
                .iter()
                .zip(&chips)
                .map(|(&i, chip)| {
                    let d = &self.tracker.tracks()[i].detection;
                    quality::assess(d.bbox.w, &d.landmarks, chip)
                })
                .collect();
            self.times.quality += quality_started.elapsed();
            // Attempts under the quality floor are not embedded: they could not name anyone.
            for ((&i, chip), q) in due.iter().zip(chips).zip(&qualities) {
                let t = self.tracker.track_mut(i);
                t.embedded_at = Some(frame_no);
                if q.score >= decider.min_quality {
                    good.push((i, *q));
                    good_chips.push(chip);
                } else {
                    t.vote.skip(q.score);
                }
            }
        }
        let pending = PendingFrame {
            seen,
            good,
            work: started.elapsed(),
            embed_time: Duration::ZERO,
        };
        Ok((pending, good_chips))
    }

    /// Matches the embeddings of a frame's chips, adds them to their tracks' votes, and
    /// reports every face in view.
    fn decide(&mut self, pending: PendingFrame, embeddings: &[Embedding]) -> &[FaceResult] {
        let decider = self.config.decider();
        if !embeddings.is_empty() {
            self.times.embed += pending.embed_time;
            self.times.embeddings += embeddings.len() as u64;
        }
        for ((i, q), embedding) in pending.good.into_iter().zip(embeddings) {
            let identity = self.identify(embedding);
            let t = self.tracker.track_mut(i);
            t.vote.add(&decider, q.score, identity);
        }
        self.last_inference = pending.work + pending.embed_time;
        self.current = pending
            .seen
            .iter()
            .map(|&i| {
                let t = &self.tracker.tracks()[i];
                FaceResult {
                    track_id: t.id,
                    bbox: t.detection.bbox,
                    landmarks: t.detection.landmarks,
                    score: t.detection.score,
                    identity: t.vote.last_match.as_ref().map(|m| Match {
                        name: t.vote.name().map(str::to_string),
                        distance: m.distance,
                        second: m.second,
                    }),
                    quality: t.vote.last_quality,
                    confidence: t.vote.confidence(),
                }
            })
            .collect();
        &self.current
    }

    /// Detects every face of a still photo of any size (the pyramid of [`crate::stills`]) and
    /// embeds each one at least `min_face_size` wide from the photo's own pixels.
    /// `config.tunables.network_width` does not apply here; see [`Engine::analyze_at`].
    pub fn analyze(&mut self, image: &RgbImage) -> Result<Vec<AnalyzedFace>> {
        self.analyze_at(image, crate::stills::StillScales::Pyramid)
    }

    /// [`Engine::analyze`] with the scales chosen by the caller (e.g. one pass at a width).
    pub fn analyze_at(
        &mut self,
        image: &RgbImage,
        scales: crate::stills::StillScales,
    ) -> Result<Vec<AnalyzedFace>> {
        let detections = crate::stills::detect_still(&mut self.detector, image, scales)?;
        let min_size = self.config.tunables.min_face_size as f32;
        let chips: Vec<_> = detections
            .iter()
            .filter(|d| d.bbox.w >= min_size)
            .map(|d| align_face(image, &d.landmarks))
            .collect();
        let mut embeddings = self.recognizer.embed(&chips)?.into_iter();
        let mut faces = Vec::with_capacity(detections.len());
        for detection in detections {
            let embedding = if detection.bbox.w >= min_size {
                Some(embeddings.next().ok_or_else(|| Error::Inference {
                    what: "recognizer",
                    reason: "fewer embeddings than faces".into(),
                })?)
            } else {
                None
            };
            let identity = embedding.as_ref().map(|e| self.identify(e));
            faces.push(AnalyzedFace {
                detection,
                embedding,
                identity,
            });
        }
        Ok(faces)
    }

    /// [`Engine::analyze`] for a frame given as its network-size input and its full-resolution
    /// pixels, without tracking: every face is embedded.
    pub fn analyze_frame(
        &mut self,
        input: &NetworkInput<'_>,
        source: &(impl PixelSource + ?Sized),
    ) -> Result<Vec<AnalyzedFace>> {
        let detections = self.detector.detect_network(input)?;
        let min_size = self.config.tunables.min_face_size as f32;
        let large: Vec<usize> = (0..detections.len())
            .filter(|&i| detections[i].bbox.w >= min_size)
            .collect();
        let chips: Vec<_> = large
            .iter()
            .map(|&i| align_face(source, &detections[i].landmarks))
            .collect();
        let mut embeddings = self.recognizer.embed(&chips)?.into_iter();
        let mut faces: Vec<AnalyzedFace> = detections
            .into_iter()
            .map(|detection| AnalyzedFace {
                detection,
                embedding: None,
                identity: None,
            })
            .collect();
        for i in large {
            let embedding = embeddings.next().ok_or_else(|| Error::Inference {
                what: "recognizer",
                reason: "fewer embeddings than faces".into(),
            })?;
            faces[i].identity = Some(self.identify(&embedding));
            faces[i].embedding = Some(embedding);
        }
        Ok(faces)
    }

    /// Embeds pre-aligned chips (for example the golden chips).
    pub fn embed_chips(&mut self, chips: &[crate::align::Chip]) -> Result<Vec<Embedding>> {
        self.recognizer.embed(chips)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::{DETECTOR_FILE, RECOGNIZER_FILE};

    #[test]
    fn the_variant_picks_the_default_model_files() {
        let name = |p: &PathBuf| p.file_name().unwrap().to_string_lossy().into_owned();
        let fp32 = EngineConfig::default();
        assert_eq!(fp32.variant, ModelVariant::Fp32);
        assert_eq!(name(&fp32.detector), DETECTOR_FILE);
        assert_eq!(name(&fp32.recognizer), RECOGNIZER_FILE);
        let int8 = EngineConfig::for_variant(ModelVariant::Int8);
        assert_eq!(name(&int8.detector), "yunet_s_dynamic.int8.onnx");
        assert_eq!(
            name(&int8.recognizer),
            "dlib_face_recognition_resnet_model_v1.int8.onnx"
        );
    }

    /// A variant that has not passed the accuracy gate fails with the gate's measured reason,
    /// before any file is looked at (its model files need not exist).
    #[test]
    fn a_variant_the_gate_refused_fails_to_start() {
        let err = Engine::new(EngineConfig::for_variant(ModelVariant::Int8)).unwrap_err();
        assert_eq!(
            err.to_string(),
            ModelVariant::Int8
                .check_selectable()
                .unwrap_err()
                .to_string()
        );
        for variant in ModelVariant::ALL {
            if let Err(gate) = variant.check_selectable() {
                let mut config = EngineConfig::for_variant(variant);
                config.detector = PathBuf::from("/nonexistent/detector.onnx");
                assert_eq!(
                    Engine::new(config).unwrap_err().to_string(),
                    gate.to_string()
                );
            }
        }
    }
}
