//! Finding the model files and fingerprinting them.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The YuNet detector with a dynamic input shape (shared/models/README.md §1).
pub const DETECTOR_FILE: &str = "yunet_s_dynamic.onnx";
/// The dlib ResNet recognizer converted to ONNX (§2).
pub const RECOGNIZER_FILE: &str = "dlib_face_recognition_resnet_model_v1.onnx";
/// sha256 of the recognizer this project was verified with.
pub const RECOGNIZER_SHA256: &str =
    "55bf9cc891f3d8edcc93501e849f2532733b50ce6383bff88ffbfac8b220d1b8";
/// sha256 of the dynamic YuNet detector.
pub const DETECTOR_SHA256: &str =
    "daede24002cc8590f457998cc5e6c9e8b82f45f6bd969506a8913cd4ed10a2d3";

/// The environment variable that names the model directory.
pub const MODEL_DIR_ENV: &str = "FACEREC_MODEL_DIR";

/// Directories searched for models, in order: `$FACEREC_MODEL_DIR`, the project-local cache that
/// `facerec-model models fetch` fills, the `shared/models` folder beside the source tree, and the
/// container image's install location.
pub fn model_dir_candidates() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(dir) = std::env::var_os(MODEL_DIR_ENV).filter(|d| !d.is_empty()) {
        dirs.push(PathBuf::from(dir));
    }
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    dirs.push(repo.join(".cache/models"));
    dirs.push(repo.join("../shared/models"));
    dirs.push(PathBuf::from("/usr/share/facerec/models"));
    dirs
}

/// The default path of a model file: the first candidate directory that holds it, or, when
/// none does, the path in the first candidate (so that the error names where it was expected).
pub fn default_model_path(file: &str) -> PathBuf {
    let dirs = model_dir_candidates();
    dirs.iter()
        .map(|d| d.join(file))
        .find(|p| p.is_file())
        .unwrap_or_else(|| dirs[0].join(file))
}

/// Lower-case hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// Lower-case hex sha256 of bytes in memory.
pub fn sha256_bytes(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
