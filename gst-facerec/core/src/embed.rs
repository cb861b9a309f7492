//! Batched face embeddings with the dlib ResNet recognizer (`shared/models/README.md` §2):
//! input `[N, 3, 150, 150]` RGB 0..255 (the graph normalises), output `[N, 128]`.

use std::path::{Path, PathBuf};

use ort::session::Session;
use ort::value::TensorRef;

use crate::align::{CHIP_SIZE, Chip};
use crate::models::sha256_file;
use crate::runtime::{ProviderReport, SessionConfig, load_session};
use crate::{Error, Result};

pub type Embedding = Vec<f32>;

pub struct Recognizer {
    session: Session,
    path: PathBuf,
    sha256: String,
    dim: usize,
    batch: Vec<f32>,
}

impl std::fmt::Debug for Recognizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recognizer")
            .field("path", &self.path)
            .field("sha256", &self.sha256)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl Recognizer {
    pub fn load(path: &Path, session: &SessionConfig) -> Result<(Self, ProviderReport)> {
        let (session, report) = load_session("recognizer", path, session)?;
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
        let sha256 = sha256_file(path)?;
        let recognizer = Recognizer {
            session,
            path: path.to_path_buf(),
            sha256,
            dim,
            batch: Vec::new(),
        };
        Ok((recognizer, report))
    }

    /// The sha256 of the model file: galleries record it, so embeddings of different networks
    /// are never compared.
    pub fn sha256(&self) -> &str {
        &self.sha256
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
        let outputs = self.session.run(ort::inputs![tensor]).map_err(infer_err)?;
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
}

/// Euclidean distance, the metric the dlib network was trained for.
pub fn euclidean(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum::<f32>()
        .sqrt()
}
