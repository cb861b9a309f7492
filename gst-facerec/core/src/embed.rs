//! Batched face embeddings with the dlib ResNet recognizer (`shared/models/README.md` §2):
//! input `[N, 3, 150, 150]` RGB 0..255 (the graph normalises), output `[N, 128]`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::value::TensorRef;

use crate::align::{CHIP_SIZE, Chip};
use crate::batch::ChipBatch;
use crate::models::{ModelVariant, RECOGNIZER_SHA256, sha256_file};
use crate::runtime::{ProviderReport, SessionConfig, SharedSession, shared_session};
use crate::{Error, Result};

pub type Embedding = Vec<f32>;

pub struct Recognizer {
    session: Arc<SharedSession>,
    path: PathBuf,
    sha256: String,
    file_sha256: String,
    dim: usize,
    batch: Vec<f32>,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("file_sha256", &self.file_sha256)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl Recognizer {
    pub fn load(path: &Path, session: &SessionConfig) -> Result<(Self, ProviderReport)> {
        let (shared, report) = shared_session("recognizer", path, session)?;
        let session = shared.lock();
        let model_error = |reason: String| Error::ModelLoad {
            what: "recognizer",
            path: path.to_path_buf(),
            reason,
        };
        let input_shape = session
            .inputs()
            .first()
            .and_then(|i| i.dtype().tensor_shape().map(|s| s.to_vec()))
            .ok_or_else(|| model_error("it has no tensor input".into()))?;
        if input_shape.len() != 4
            || input_shape[1] != 3
            || input_shape[2] != CHIP_SIZE as i64
            || input_shape[3] != CHIP_SIZE as i64
        {
            return Err(model_error(format!(
                "input shape {input_shape:?} is not [N, 3, 150, 150]: this is not the dlib face recognizer"
            )));
        }
        let dim = session
            .outputs()
            .first()
            .and_then(|o| o.dtype().tensor_shape().and_then(|s| s.last().copied()))
            .filter(|d| *d > 0)
            .ok_or_else(|| model_error("its output has no fixed embedding dimension".into()))?
            as usize;
        drop(session);
        let sha256 = sha256_file(path)?;
        let recognizer = Recognizer {
            session: shared,
            path: path.to_path_buf(),
            sha256: sha256.clone(),
            file_sha256: sha256,
            dim,
            batch: Vec::new(),
        };
        Ok((recognizer, report))
    }

    /// Loads a precision variant of the recognizer. When the file is the one the accuracy gate
    /// measured ([`ModelVariant::recognizer_sha256`]), its gallery identity
    /// ([`Recognizer::sha256`]) is the fp32 network's [`RECOGNIZER_SHA256`]: its embeddings were
    /// measured within 0.5% of fp32's, so galleries stay fp32 and serve every variant. Any other
    /// file keeps its own identity, so an fp32 gallery refuses it rather than trusting embeddings
    /// nobody measured. `ModelVariant::Fp32` is [`Recognizer::load`].
    pub fn load_variant(
        path: &Path,
        session: &SessionConfig,
        variant: ModelVariant,
    ) -> Result<(Self, ProviderReport)> {
        let (mut recognizer, report) = Recognizer::load(path, session)?;
        recognizer.sha256 = gallery_identity(variant, &recognizer.file_sha256).to_string();
        Ok((recognizer, report))
    }

    /// The recognizer's identity for galleries: the sha256 of the model file, or of the fp32
    /// network it is a variant of. Galleries record it, so embeddings of different networks are
    /// never compared.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The sha256 of the loaded model file itself.
    pub fn file_sha256(&self) -> &str {
        &self.file_sha256
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Embeds all chips in one batch.
    pub fn embed(&mut self, chips: &[Chip]) -> Result<Vec<Embedding>> {
        if chips.is_empty() {
            return Ok(Vec::new());
        }
        let infer_err = |e: ort::Error| Error::Inference {
            what: "recognizer",
            reason: e.to_string(),
        };
        self.batch.clear();
        for chip in chips {
            self.batch.extend_from_slice(&chip.data);
        }
        let shape = [chips.len(), 3, CHIP_SIZE, CHIP_SIZE];
        let tensor =
            TensorRef::from_array_view((shape, self.batch.as_slice())).map_err(infer_err)?;
        let mut session = self.session.lock();
        let outputs = session.run(ort::inputs![tensor]).map_err(infer_err)?;
        let (_, values) = outputs[0].try_extract_tensor::<f32>().map_err(infer_err)?;
        if values.len() != chips.len() * self.dim {
            return Err(Error::Inference {
                what: "recognizer",
                reason: format!(
                    "expected {} values, got {}",
                    chips.len() * self.dim,
                    values.len()
                ),
            });
        }
        Ok(values.chunks_exact(self.dim).map(<[f32]>::to_vec).collect())
    }

    /// The chips other streams left for a run of this session ([`crate::batch`]).
    pub fn batch(&self) -> &ChipBatch {
        self.session.batch()
    }

    /// Embeds `own` together with the chips other streams left waiting, at most `max` chips a
    /// run (one stream's chips are never split), and hands them their embeddings. Runs until
    /// nothing waits; with no chips of its own, only flushes. The error of a run is returned
    /// only if it had chips of `own`; the other streams get it through their tickets.
    pub fn embed_with_waiting(&mut self, own: Vec<Chip>, max: usize) -> Result<Vec<Embedding>> {
        let session = self.session.clone();
        let batch = session.batch();
        let max = max.max(1);
        let mut own = Some(own).filter(|chips| !chips.is_empty());
        let mut mine = Vec::new();
        loop {
            let own_chips = own.take().unwrap_or_default();
            let others = batch.take(max.saturating_sub(own_chips.len()), own_chips.is_empty());
            if others.is_empty() && own_chips.is_empty() {
                return Ok(mine);
            }
            let own_count = own_chips.len();
            let mut chips = own_chips;
            let mut tickets = Vec::with_capacity(others.len());
            for (ticket, theirs) in others {
                tickets.push((ticket, theirs.len()));
                chips.extend(theirs);
            }
            match self.embed(&chips) {
                Ok(mut embeddings) => {
                    let mut rest = embeddings.split_off(own_count);
                    if own_count > 0 {
                        mine = embeddings;
                    }
                    let outcomes = tickets
                        .iter()
                        .map(|&(ticket, n)| {
                            let tail = rest.split_off(n);
                            (ticket, Ok(std::mem::replace(&mut rest, tail)))
                        })
                        .collect();
                    batch.finish(outcomes, own_count > 0 || tickets.len() > 1);
                }
                Err(err) => {
                    let reason = err.to_string();
                    let outcomes = tickets
                        .iter()
                        .map(|&(ticket, _)| (ticket, Err(reason.clone())))
                        .collect();
                    batch.finish(outcomes, false);
                    if own_count > 0 {
                        return Err(err);
                    }
                }
            }
        }
    }
}

/// Euclidean distance, the metric the dlib network was trained for.
pub fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}

/// The recognizer sha256 a gallery is checked against: fp32's for the measured variant file,
/// the file's own otherwise.
fn gallery_identity(variant: ModelVariant, file_sha256: &str) -> &str {
    if variant != ModelVariant::Fp32 && file_sha256 == variant.recognizer_sha256() {
        RECOGNIZER_SHA256
    } else {
        file_sha256
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gallery::Gallery;
    use crate::testsupport::{require, require_runtime};

    #[test]
    fn only_the_measured_variant_files_take_the_fp32_gallery_identity() {
        use crate::models::{RECOGNIZER_FP16_SHA256, RECOGNIZER_INT8_SHA256};
        let other = "0".repeat(64);
        assert_eq!(
            gallery_identity(ModelVariant::Fp16, RECOGNIZER_FP16_SHA256),
            RECOGNIZER_SHA256
        );
        assert_eq!(
            gallery_identity(ModelVariant::Int8, RECOGNIZER_INT8_SHA256),
            RECOGNIZER_SHA256
        );
        // The fp16 file selected as int8 was not what the int8 gate measured.
        assert_eq!(
            gallery_identity(ModelVariant::Int8, RECOGNIZER_FP16_SHA256),
            RECOGNIZER_FP16_SHA256
        );
        assert_eq!(gallery_identity(ModelVariant::Fp16, &other), other);
        assert_eq!(
            gallery_identity(ModelVariant::Fp32, RECOGNIZER_SHA256),
            RECOGNIZER_SHA256
        );
        assert_eq!(gallery_identity(ModelVariant::Fp32, &other), other);
    }

    /// A file selected as a variant that is not the one the gate measured keeps its own identity,
    /// so an fp32 gallery refuses it. The file is the fp32 one with an unknown protobuf field
    /// appended (field 1000, varint 1, which ONNX Runtime skips): other bytes, the same network.
    #[test]
    #[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
    fn an_unmeasured_variant_file_is_refused_by_an_fp32_gallery() {
        if !require_runtime() {
            return;
        }
        let Some(fp32) = require("models/dlib_face_recognition_resnet_model_v1.onnx") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let variant = dir
            .path()
            .join("dlib_face_recognition_resnet_model_v1.fp16.onnx");
        let mut bytes = std::fs::read(&fp32).unwrap();
        bytes.extend_from_slice(&[0xC0, 0x3E, 0x01]);
        std::fs::write(&variant, &bytes).unwrap();
        let file_sha = crate::models::sha256_bytes(&bytes);
        assert_ne!(file_sha, RECOGNIZER_SHA256);
        let session = SessionConfig {
            provider: crate::runtime::Provider::Cpu,
            ..SessionConfig::default()
        };
        let fp32_gallery = Gallery::new(RECOGNIZER_SHA256, 128);

        for variant_kind in ModelVariant::ALL {
            let (recognizer, _) =
                Recognizer::load_variant(&variant, &session, variant_kind).unwrap();
            assert_eq!(recognizer.sha256(), file_sha, "{variant_kind}");
            assert_eq!(recognizer.file_sha256(), file_sha);
            assert_eq!(
                fp32_gallery
                    .check_recognizer(recognizer.sha256(), recognizer.dim())
                    .unwrap_err()
                    .to_string(),
                format!(
                    "built with a different recognizer (model sha256 {RECOGNIZER_SHA256}, loaded recognizer {file_sha}): re-enrol the faces with this recognizer"
                )
            );
        }
    }
}
