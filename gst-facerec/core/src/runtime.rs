//! Loading ONNX Runtime and building inference sessions on the requested execution provider.
//!
//! `ort` is built with `load-dynamic`: the same binary loads the CPU library from the PyPI wheel
//! (installed by `deploy/setup.sh`) on a PC and JetPack's `onnxruntime-gpu` on a Jetson.
//! `ort::init()` panics when the library is missing, so this module uses `ort::init_from`, which
//! returns an error, and remembers the outcome for the whole process.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, MutexGuard, Weak};

use ort::environment::Environment;
use ort::ep::{ArbitrarilyConfigurableExecutionProvider, ExecutionProvider};
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
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

/// How inference sessions are built. Equal configurations share one session per model file
/// within a process ([`shared_session`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionConfig {
    pub provider: Provider,
    /// Fail instead of falling back to CPU when an explicitly requested GPU provider is missing.
    pub strict: bool,
    /// Intra-op threads per session; 0 picks one per core, at most four.
    pub threads: usize,
    /// Folder where TensorRT keeps the engines it builds, so that a restart loads them instead
    /// of building them again (minutes on a Jetson). `None`: rebuilt at every start.
    pub trt_engine_cache: Option<PathBuf>,
    /// Let TensorRT pick fp16 kernels (ONNX Runtime ignores it where the GPU has no fast fp16).
    pub trt_fp16: bool,
    /// Folder for TensorRT's timing cache (measured kernel timings), which shortens engine
    /// builds after a model or setting change. `None`: off.
    pub trt_timing_cache: Option<PathBuf>,
    /// The GPU that CUDA and TensorRT run on.
    pub cuda_device: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            provider: Provider::Auto,
            strict: false,
            threads: 0,
            trt_engine_cache: None,
            trt_fp16: true,
            trt_timing_cache: None,
            cuda_device: 0,
        }
    }
}

/// The options given to a provider's ONNX Runtime registration, as (key, value) in the order
/// they are set: the keys are ONNX Runtime's documented provider options (the same that `ort`'s
/// `with_device_id`, `with_fp16`, `with_engine_cache`, ... set). This is exactly what
/// `try_provider` applies, and the one place a test can see it: ort cannot read options back
/// from a session.
pub fn provider_options(provider: Provider, config: &SessionConfig) -> Vec<(&'static str, String)> {
    let flag = |on: bool| if on { "1" } else { "0" }.to_string();
    let folder = |p: &Path| p.display().to_string();
    let device = ("device_id", config.cuda_device.to_string());
    match provider {
        Provider::Cpu | Provider::Auto => Vec::new(),
        Provider::Cuda => vec![device],
        Provider::TensorRt => {
            let mut options = vec![device, ("trt_fp16_enable", flag(config.trt_fp16))];
            // The enable flags are always set, so that ONNX Runtime's legacy ORT_TENSORRT_*
            // environment variables cannot turn a cache on behind the settings' back.
            options.push((
                "trt_engine_cache_enable",
                flag(config.trt_engine_cache.is_some()),
            ));
            if let Some(path) = &config.trt_engine_cache {
                options.push(("trt_engine_cache_path", folder(path)));
            }
            options.push((
                "trt_timing_cache_enable",
                flag(config.trt_timing_cache.is_some()),
            ));
            if let Some(path) = &config.trt_timing_cache {
                options.push(("trt_timing_cache_path", folder(path)));
            }
            options
        }
    }
}

fn configure<E: ArbitrarilyConfigurableExecutionProvider>(
    ep: E,
    options: &[(&'static str, String)],
) -> E {
    options
        .iter()
        .fold(ep, |ep, (key, value)| ep.with_arbitrary_config(key, value))
}

/// Creates a cache folder if it is missing and checks that files can be made in it. A probe file
/// is the only reliable test: permission bits do not tell about read-only mounts, ACLs or root.
/// `setting` names the property the folder came from.
pub fn prepare_cache_folder(what: &str, setting: &str, folder: &Path) -> Result<()> {
    let refuse = |e: std::io::Error| Error::Io {
        path: folder.to_path_buf(),
        error: std::io::Error::new(
            e.kind(),
            format!("the {what} folder ({setting}) cannot be written: {e}"),
        ),
    };
    std::fs::create_dir_all(folder).map_err(refuse)?;
    let probe = folder.join(format!(".facerec-write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(refuse)?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
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
    config: &SessionConfig,
    provider: Provider,
) -> std::result::Result<Session, String> {
    let mut builder = base_builder(env, config.threads)?;
    let options = provider_options(provider, config);
    // Registration errors out when the library lacks the provider; commit errors out when the
    // provider is compiled in but no device is present. Both count as "not available".
    match provider {
        Provider::Cuda => configure(ort::ep::CUDA::default(), &options)
            .register(&mut builder)
            .map_err(|e| e.to_string())?,
        Provider::TensorRt => configure(ort::ep::TensorRT::default(), &options)
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
    // Checked whenever TensorRT may run, GPU present or not, so that a bad folder shows on the
    // machine where the settings are tried and not only on the Jetson.
    if gpu_order.contains(&Provider::TensorRt) {
        for (what, setting, folder) in [
            (
                "TensorRT engine cache",
                "trt-engine-cache",
                &config.trt_engine_cache,
            ),
            (
                "TensorRT timing cache",
                "trt-timing-cache",
                &config.trt_timing_cache,
            ),
        ] {
            if let Some(folder) = folder {
                prepare_cache_folder(what, setting, folder)?;
            }
        }
    }
    let mut failures = Vec::new();
    for &gpu in gpu_order {
        match try_provider(&env, model, config, gpu) {
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
    let session = try_provider(&env, model, config, Provider::Cpu).map_err(load_error)?;
    Ok((
        session,
        ProviderReport {
            active: Provider::Cpu,
            fallback_warning,
        },
    ))
}

/// One ONNX Runtime session shared by every engine in the process that loads the same model
/// file with the same [`SessionConfig`]: the weights, the optimised graph and the thread pool
/// exist once however many cameras or elements run. `ort` runs a session through `&mut`, so
/// runs take turns on the mutex; the engines' [`crate::schedule::Scheduler`] decides whose turn
/// it is, so the mutex is rarely contended.
pub struct SharedSession {
    session: Mutex<Session>,
    batch: crate::batch::ChipBatch,
}

impl SharedSession {
    /// The session, for one run. A run that panicked leaves a usable session (ONNX Runtime
    /// keeps no state between runs), so a poisoned lock is taken over.
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Inputs of several streams waiting to share one run (the recognizer's chips).
    pub fn batch(&self) -> &crate::batch::ChipBatch {
        &self.batch
    }
}

/// What makes two loads the same session: the model (its canonical path and the file's size
/// and modification time, so that a replaced file is loaded afresh) and the configuration.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SessionKey {
    what: &'static str,
    path: PathBuf,
    len: u64,
    modified: Option<std::time::SystemTime>,
    config: SessionConfig,
}

/// Per key: the session while anyone holds it, its report, and how often it was loaded.
type SessionCache = HashMap<SessionKey, (Weak<SharedSession>, ProviderReport, u64)>;

static SESSIONS: LazyLock<Mutex<SessionCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));
static SESSION_LOADS: AtomicU64 = AtomicU64::new(0);

/// How many sessions this process has built (each model file and configuration once while any
/// engine holds it): what the element's `stats` report.
pub fn session_loads() -> u64 {
    SESSION_LOADS.load(Ordering::Relaxed)
}

/// How many sessions this process has built for the models (`what` is "detector" or
/// "recognizer") and configurations `filter` accepts: how tests count sharing without counting
/// the loads of tests running beside them.
pub fn session_loads_where(filter: impl Fn(&str, &Path, &SessionConfig) -> bool) -> u64 {
    let sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    sessions
        .iter()
        .filter(|(key, _)| filter(key.what, &key.path, &key.config))
        .map(|(_, (_, _, loads))| loads)
        .sum()
}

/// The process's session for `model` and `config`, built by [`load_session`] on first use and
/// kept while any engine holds it. Failures are not kept: the next load tries again.
pub fn shared_session(
    what: &'static str,
    model: &Path,
    config: &SessionConfig,
) -> Result<(Arc<SharedSession>, ProviderReport)> {
    let metadata = std::fs::metadata(model).map_err(|_| Error::ModelMissing {
        what,
        path: model.to_path_buf(),
    })?;
    let key = SessionKey {
        what,
        path: std::fs::canonicalize(model).unwrap_or_else(|_| model.to_path_buf()),
        len: metadata.len(),
        modified: metadata.modified().ok(),
        config: config.clone(),
    };
    // Held while loading, so that two elements starting together load once.
    let mut sessions = SESSIONS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((session, report, _)) = sessions.get(&key)
        && let Some(session) = session.upgrade()
    {
        return Ok((session, report.clone()));
    }
    let (session, report) = load_session(what, model, config)?;
    SESSION_LOADS.fetch_add(1, Ordering::Relaxed);
    let session = Arc::new(SharedSession {
        session: Mutex::new(session),
        batch: Default::default(),
    });
    let loads = sessions.get(&key).map_or(0, |(_, _, loads)| *loads) + 1;
    sessions.insert(key, (Arc::downgrade(&session), report.clone(), loads));
    Ok((session, report))
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

    fn pairs(options: &[(&'static str, String)]) -> Vec<String> {
        options.iter().map(|(k, v)| format!("{k}={v}")).collect()
    }

    #[test]
    fn tensorrt_and_cuda_get_the_documented_options() {
        let config = SessionConfig {
            provider: Provider::TensorRt,
            trt_engine_cache: Some(PathBuf::from("/x")),
            trt_fp16: false,
            trt_timing_cache: Some(PathBuf::from("/t")),
            cuda_device: 1,
            ..SessionConfig::default()
        };
        assert_eq!(
            pairs(&provider_options(Provider::TensorRt, &config)),
            [
                "device_id=1",
                "trt_fp16_enable=0",
                "trt_engine_cache_enable=1",
                "trt_engine_cache_path=/x",
                "trt_timing_cache_enable=1",
                "trt_timing_cache_path=/t",
            ]
        );
        // TensorRT falls back to CUDA, which must run on the same device.
        assert_eq!(
            pairs(&provider_options(Provider::Cuda, &config)),
            ["device_id=1"]
        );
        assert!(provider_options(Provider::Cpu, &config).is_empty());
        assert!(provider_options(Provider::Auto, &config).is_empty());
        // The defaults: fp16 on, both caches off (said explicitly), device 0.
        assert_eq!(
            pairs(&provider_options(
                Provider::TensorRt,
                &SessionConfig::default()
            )),
            [
                "device_id=0",
                "trt_fp16_enable=1",
                "trt_engine_cache_enable=0",
                "trt_timing_cache_enable=0",
            ]
        );
    }

    /// The keys above are the ones ort's own typed builders set, so that they cannot drift from
    /// ONNX Runtime's names (compared through the providers' Debug: the only view of their
    /// options, in the order they were set). Only the flags' spelling differs: ort 2.0.0-rc.15
    /// writes "true"/"false" (its macro's bool arm never matches a `ty` fragment), while these
    /// are "1"/"0", the form ONNX Runtime documents and every version's parser takes.
    #[test]
    fn the_options_are_what_orts_typed_builders_set() {
        let flags_as_digits = |debug: String| {
            debug
                .replace("\"true\"", "\"1\"")
                .replace("\"false\"", "\"0\"")
        };
        let config = SessionConfig {
            trt_engine_cache: Some(PathBuf::from("/var/cache/facerec/trt")),
            trt_fp16: false,
            trt_timing_cache: Some(PathBuf::from("/t")),
            cuda_device: 3,
            ..SessionConfig::default()
        };
        let ours = configure(
            ort::ep::TensorRT::default(),
            &provider_options(Provider::TensorRt, &config),
        );
        let typed = ort::ep::TensorRT::default()
            .with_device_id(3)
            .with_fp16(false)
            .with_engine_cache(true)
            .with_engine_cache_path("/var/cache/facerec/trt")
            .with_timing_cache(true)
            .with_timing_cache_path("/t");
        assert_eq!(format!("{ours:?}"), flags_as_digits(format!("{typed:?}")));
        let ours = configure(
            ort::ep::CUDA::default(),
            &provider_options(Provider::Cuda, &config),
        );
        let typed = ort::ep::CUDA::default().with_device_id(3);
        assert_eq!(format!("{ours:?}"), format!("{typed:?}"));
        let off = configure(
            ort::ep::TensorRT::default(),
            &provider_options(Provider::TensorRt, &SessionConfig::default()),
        );
        let typed = ort::ep::TensorRT::default()
            .with_device_id(0)
            .with_fp16(true)
            .with_engine_cache(false)
            .with_timing_cache(false);
        assert_eq!(format!("{off:?}"), flags_as_digits(format!("{typed:?}")));
    }

    #[test]
    fn a_cache_folder_is_created_and_an_unwritable_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b/trt");
        prepare_cache_folder("TensorRT engine cache", "trt-engine-cache", &nested).unwrap();
        assert!(nested.is_dir());
        // The probe file is gone again.
        assert_eq!(std::fs::read_dir(&nested).unwrap().count(), 0);
        // sysfs refuses new files to every user, root included (tests here run as root, which
        // a chmod 0555 folder would not stop).
        let err = prepare_cache_folder(
            "TensorRT engine cache",
            "trt-engine-cache",
            Path::new("/sys"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "/sys: the TensorRT engine cache folder (trt-engine-cache) cannot be written: Permission denied (os error 13)"
        );
        // A file where the folder should be.
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let err =
            prepare_cache_folder("TensorRT timing cache", "trt-timing-cache", &file).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "{}: the TensorRT timing cache folder (trt-timing-cache) cannot be written: File exists (os error 17)",
                file.display()
            )
        );
    }
}
