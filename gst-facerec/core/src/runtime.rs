//! Loading ONNX Runtime and building inference sessions on the requested execution provider.
//!
//! `ort` is built with `load-dynamic`: the same binary loads the CPU library from the PyPI wheel
//! (installed by `deploy/setup.sh`) on a PC and JetPack's `onnxruntime-gpu` on a Jetson.
//! `ort::init()` panics when the library is missing, so this module uses `ort::init_from`, which
//! returns an error, and remembers the outcome for the whole process.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ort::environment::Environment;
use ort::ep::ExecutionProvider;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};

use crate::{Error, Result};

/// The file name of the ONNX Runtime library inside the project-local cache.
pub const ORT_CACHE_LIB: &str = ".cache/onnxruntime/libonnxruntime.so";

/// Where the library is looked for, in order: `ORT_DYLIB_PATH`, the project-local cache that
/// `deploy/setup.sh` fills (relative to the source tree this was built from), the system-wide
/// install used by the container image, and last the dynamic loader's search path (JetPack).
pub fn ort_library_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        candidates.push(PathBuf::from(path));
        return candidates;
    }
    candidates.push(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(ORT_CACHE_LIB),
    );
    candidates.push(PathBuf::from("/usr/lib/facerec/libonnxruntime.so"));
    candidates.push(PathBuf::from("libonnxruntime.so"));
    candidates
}

static ENVIRONMENT: std::sync::OnceLock<std::result::Result<Environment, String>> =
    std::sync::OnceLock::new();

/// The process-wide ONNX Runtime environment. Loads the library on first use; a failure is
/// remembered and returned again, never a panic.
pub fn environment() -> Result<Environment> {
    let outcome = ENVIRONMENT.get_or_init(|| {
        let mut reasons = Vec::new();
        for candidate in ort_library_candidates() {
            // A bare file name goes to the loader's search path; a path must exist.
            if candidate.components().count() > 1 && !candidate.exists() {
                reasons.push(format!("{}: no such file", candidate.display()));
                continue;
            }
            match ort::init_from(&candidate) {
                Ok(builder) => {
                    return builder
                        .with_name("facerec")
                        .build()
                        .map_err(|e| format!("{}: {e}", candidate.display()));
                }
                Err(e) => reasons.push(format!("{}: {e}", candidate.display())),
            }
        }
        Err(reasons.join("; "))
    });
    outcome.clone().map_err(|reason| Error::RuntimeLoad {
        tried: ort_library_candidates()
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        reason,
    })
}

/// The execution provider a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Provider {
    /// The best one that works: TensorRT, then CUDA, then CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    TensorRt,
}

impl Provider {
    pub const ALL: [Provider; 4] = [
        Provider::Auto,
        Provider::Cpu,
        Provider::Cuda,
        Provider::TensorRt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Auto => "auto",
            Provider::Cpu => "cpu",
            Provider::Cuda => "cuda",
            Provider::TensorRt => "tensorrt",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Provider::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| Error::UnknownProvider(s.to_string()))
    }
}

/// How inference sessions are built.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub provider: Provider,
    /// Fail instead of falling back to CPU when an explicitly requested GPU provider is missing.
    pub strict: bool,
    /// Intra-op threads per session; 0 picks one per core, at most four.
    pub threads: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            provider: Provider::Auto,
            strict: false,
            threads: 0,
        }
    }
}

/// What a session actually runs on, and why that differs from the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderReport {
    pub active: Provider,
    /// Set when an explicitly requested GPU provider could not be used and CPU runs instead.
    pub fallback_warning: Option<String>,
}

/// The intra-op thread count for a setting (0 = automatic).
pub fn effective_threads(threads: usize) -> usize {
    match threads {
        // Beyond four, the small models here gain little and other pipelines lose cores.
        0 => std::thread::available_parallelism()
            .map(|n| n.get().min(4))
            .unwrap_or(1),
        n => n,
    }
}

fn base_builder(env: &Environment, threads: usize) -> std::result::Result<SessionBuilder, String> {
    let text = |e: ort::Error<SessionBuilder>| e.to_string();
    Session::builder(env)
        .map_err(|e| e.to_string())?
        .with_optimization_level(GraphOptimizationLevel::Level3)
        .map_err(text)?
        .with_intra_threads(effective_threads(threads))
        .map_err(text)?
        .with_inter_threads(1)
        .map_err(text)?
        // Spin-waiting threads of two sessions fight over two cores: measured 25-50 fps
        // with spinning against 65-76 without (shared/TOOLCHAIN.md).
        .with_intra_op_spinning(false)
        .map_err(text)
}

fn try_provider(
    env: &Environment,
    model: &Path,
    threads: usize,
    provider: Provider,
) -> std::result::Result<Session, String> {
    let mut builder = base_builder(env, threads)?;
    // Registration errors out when the library lacks the provider; commit errors out when the
    // provider is compiled in but no device is present. Both count as "not available".
    match provider {
        Provider::Cuda => ort::ep::CUDA::default()
            .register(&mut builder)
            .map_err(|e| e.to_string())?,
        Provider::TensorRt => ort::ep::TensorRT::default()
            .register(&mut builder)
            .map_err(|e| e.to_string())?,
        Provider::Cpu | Provider::Auto => {}
    }
    builder.commit_from_file(model).map_err(|e| e.to_string())
}

/// Builds a session for `model`, on the requested provider if it works, else on CPU with a
/// warning (or an error in strict mode).
pub fn load_session(
    what: &'static str,
    model: &Path,
    config: &SessionConfig,
) -> Result<(Session, ProviderReport)> {
    if !model.is_file() {
        return Err(Error::ModelMissing {
            what,
            path: model.to_path_buf(),
        });
    }
    let env = environment()?;
    let load_error = |reason: String| Error::ModelLoad {
        what,
        path: model.to_path_buf(),
        reason,
    };
    let gpu_order: &[Provider] = match config.provider {
        Provider::Cpu => &[],
        Provider::Auto => &[Provider::TensorRt, Provider::Cuda],
        Provider::Cuda => &[Provider::Cuda],
        Provider::TensorRt => &[Provider::TensorRt, Provider::Cuda],
    };
    let mut failures = Vec::new();
    for &gpu in gpu_order {
        match try_provider(&env, model, config.threads, gpu) {
            Ok(session) => {
                let fallback_warning =
                    (gpu != config.provider && config.provider != Provider::Auto).then(|| {
                        format!(
                            "{what}: execution provider '{}' is not available; running on '{gpu}'",
                            config.provider
                        )
                    });
                return Ok((
                    session,
                    ProviderReport {
                        active: gpu,
                        fallback_warning,
                    },
                ));
            }
            Err(reason) => failures.push(format!("{gpu}: {}", first_line(&reason))),
        }
    }
    let fallback_warning = if config.provider == Provider::Cpu || config.provider == Provider::Auto
    {
        None
    } else if config.strict {
        return Err(Error::ProviderUnavailable {
            requested: config.provider.to_string(),
            reason: failures.join("; "),
        });
    } else {
        Some(format!(
            "{what}: execution provider '{}' was requested but is not available ({}); running on CPU",
            config.provider,
            failures.join("; ")
        ))
    };
    let session = try_provider(&env, model, config.threads, Provider::Cpu).map_err(load_error)?;
    Ok((
        session,
        ProviderReport {
            active: Provider::Cpu,
            fallback_warning,
        },
    ))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or(s).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_names_round_trip() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>().unwrap(), p);
        }
        assert_eq!("CUDA".parse::<Provider>().unwrap(), Provider::Cuda);
        let err = "opencl".parse::<Provider>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown execution provider 'opencl': expected auto, cpu, cuda or tensorrt"
        );
    }
}
