//! Settings from flags, environment variables (the demo's names too) and a YAML config file,
//! in that order of precedence, and the camera sources they name.
//!
//! Each setting is declared once, as a field of [`Cli`] or [`PipelineArgs`]: its flag is the
//! field name in kebab-case, its environment variable is in `env = …`, its default in
//! `default_value…`, and its key in the config file is the flag's name. The engine's tunables
//! (`--detect-threshold`, `--min-face-size`, …) are declared in `facerec_core::tunables`
//! instead, and added as flags at run time (`cli_command`) with the same conventions. The
//! file's values become the arguments' defaults, so that clap's own order applies everywhere:
//! flag, then environment, then file, then the built-in default.
//!
//! Read by `main.rs` only: the other modules get plain values (the typed [`PipelineSettings`],
//! `mqtt`'s `MqttConfig`, numbers). It imports the layers below for what the command line
//! flattens or checks (sources, the camera settings, the element's properties, MQTT's flags).

pub mod mqtt;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{ArgAction, CommandFactory, FromArgMatches, Parser};
use facerec_core::tunables::{Domain, TUNABLES, Tunable, TunableError, TunableValue, Tunables};
use gst::prelude::*;
use serde::Deserialize;

use crate::camera::element::pspec_range;
use crate::camera::settings::{PipelineSettings, parse_redact};
use crate::domain::source::{Source, Trust, split_source_list, validate_name};

#[derive(Debug, Clone, Parser)]
#[command(
    name = "facerec-launcher",
    version,
    about = "Serve facerec-annotated camera streams over HTTP",
    after_help = "Accounts (in the data folder, while a launcher runs or not): \
        facerec-launcher user add|passwd|del|list, facerec-launcher token add|del|list \
        (each with --help)."
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "FACEREC_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// A camera, as NAME=URI (repeatable: one camera per flag, commas included, so a
    /// pipeline: description keeps its caps; FACEREC_SOURCES takes a list separated by the
    /// commas that start another NAME=SCHEME:, and either replaces the config file's
    /// `sources`). Schemes: v4l2:///dev/video0, nvargus://0, file:///clip.mp4?loop=true,
    /// http://host/stream, rtsp://host/path, test://, pipeline:DESC.
    #[arg(long = "source", value_name = "NAME=URI", env = "FACEREC_SOURCES")]
    pub sources: Vec<String>,
    /// YAML config file: the same settings, keyed by flag name (flags and environment win),
    /// plus `sources: [{name, uri, redact}]`.
    #[arg(long, env = "FACEREC_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub pipeline: PipelineArgs,
    /// Most concurrent stream clients over all cameras.
    #[arg(long, env = "FACEREC_MAX_CLIENTS", default_value_t = 32)]
    pub max_clients: usize,
    /// Most cameras, however they are added (sources at start, POST /api/cameras, /register).
    #[arg(long, env = "FACEREC_MAX_CAMERAS", default_value_t = 16)]
    pub max_cameras: usize,
    /// Most open HTTP connections (stream clients included); more are closed at once. Well above
    /// the 32 streams of --max-clients, far below what a slowloris opens.
    #[arg(long, env = "FACEREC_MAX_CONNECTIONS", default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a client may take to send a request's headers before the connection is closed.
    #[arg(long, env = "FACEREC_HEADER_TIMEOUT", default_value_t = 10)]
    pub header_timeout: u64,
    /// Folder that file:// cameras added through the API may read from (none by default).
    #[arg(long, env = "FACEREC_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,
    /// Announce the launcher over mDNS as microshift-cam-reg.local (_http._tcp). `--mdns` alone
    /// means true; `--mdns=false` turns off what the file or environment turned on.
    #[arg(long, env = "FACEREC_MDNS", default_value_t = false, num_args = 0..=1,
        default_missing_value = "true", action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub mdns: bool,
    /// Require the API token (FACEREC_API_TOKEN) on /metrics, as Prometheus sends it
    /// (`authorization: {credentials: …}` or `bearer_token_file`). `--metrics-token` alone
    /// means true.
    #[arg(long, env = "FACEREC_METRICS_TOKEN", default_value_t = false, num_args = 0..=1,
        default_missing_value = "true", action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub metrics_token: bool,
    /// Sign-in for everything that shows a face, a name, a stream or a camera (all but /healthz,
    /// /readyz and, unless --metrics-token, /metrics). `--auth=false` is for a trusted
    /// loopback-only setup: then anyone may read, and writes need FACEREC_API_TOKEN if set.
    #[arg(long, env = "FACEREC_AUTH", default_value_t = true, num_args = 0..=1,
        default_missing_value = "true", action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub auth: bool,
    /// File holding the password of the user `admin`, set at every start (a Kubernetes Secret).
    /// Without it, the first start with no user creates `admin` with a random password, shown
    /// once on stderr.
    #[arg(long, env = "FACEREC_ADMIN_PASSWORD_FILE")]
    pub admin_password_file: Option<PathBuf>,
    /// How long a sign-in lasts.
    #[arg(long, env = "FACEREC_SESSION_TTL", default_value = "12h", value_parser = humantime::parse_duration)]
    pub session_ttl: Duration,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "FACEREC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "FACEREC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Proxies (addresses or CIDR blocks, comma-separated) whose X-Forwarded-Proto and
    /// X-Forwarded-For are believed: session cookies are Secure when the proxy received HTTPS,
    /// and failed sign-ins are counted per real client (the MicroShift router: 10.42.0.0/16).
    #[arg(
        long,
        env = "FACEREC_TRUSTED_PROXY",
        value_delimiter = ',',
        value_name = "ADDR|CIDR"
    )]
    pub trusted_proxy: Vec<crate::domain::net::IpNet>,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FACEREC_LOG_JSON", default_value_t = false, num_args = 0..=1,
        default_missing_value = "true", action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub log_json: bool,
    /// Folder for the recognition history (events.db and face crops) and the face library.
    /// Default: $STATE_DIRECTORY, else $XDG_STATE_HOME/facerec, else ~/.local/state/facerec.
    /// When it cannot be written, history is kept in memory only (one warning).
    #[arg(long, env = "FACEREC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// History events older than this many days are deleted with their face crops.
    #[arg(long, env = "FACEREC_RETAIN_DAYS", default_value_t = 30.0)]
    pub retain_days: f64,
    /// The oldest history events are deleted while their face crops take more than this (MB).
    #[arg(long, env = "FACEREC_RETAIN_MB", default_value_t = 1024.0)]
    pub retain_mb: f64,
    /// The oldest history events are also deleted while the data folder's file system has less
    /// than this free (MB), whatever filled it; 0: off.
    #[arg(long, env = "FACEREC_MIN_FREE_MB", default_value_t = 100.0)]
    pub min_free_mb: f64,
    /// Audit log entries (sign-ins, user and token changes, enrol, reject, delete, erase,
    /// export, camera changes) older than this many days are deleted.
    #[arg(long, env = "FACEREC_AUDIT_DAYS", default_value_t = 365.0)]
    pub audit_days: f64,
    /// How long a stranger id (an unknown face seen again) is remembered after it was last seen.
    #[arg(long, env = "FACEREC_STRANGER_TTL", default_value = "24h", value_parser = humantime::parse_duration)]
    pub stranger_ttl: Duration,
    /// How long an unknown face must be tracked before it becomes a history event.
    #[arg(long, env = "FACEREC_UNKNOWN_AFTER", default_value = "1s", value_parser = humantime::parse_duration)]
    pub unknown_after: Duration,
    #[command(flatten)]
    pub mqtt: mqtt::MqttArgs,
}

/// How every camera's facerec element and encoder are set up, as given (checked by
/// [`Config::validate`], made [`PipelineSettings`] by [`Config::pipeline_settings`]).
#[derive(Debug, Clone, clap::Args)]
pub struct PipelineArgs {
    /// The gallery (model.data). The demo's MODEL_FILENAME is honoured too (below
    /// FACEREC_GALLERY). Once the face library has been changed, its gallery in the data
    /// folder is used instead (see the README).
    #[arg(long, env = "FACEREC_GALLERY")]
    pub gallery: Option<PathBuf>,
    #[arg(long, env = "FACEREC_DETECTOR")]
    pub detector: Option<PathBuf>,
    #[arg(long, env = "FACEREC_RECOGNIZER")]
    pub recognizer: Option<PathBuf>,
    /// ONNX Runtime execution provider: auto, cpu, cuda, tensorrt.
    #[arg(long, env = "FACEREC_PROVIDER", default_value = "auto")]
    pub provider: String,
    /// Fail the camera's start when the requested provider cannot be used, instead of falling
    /// back to CPU with a warning (facerec's strict-provider; default off).
    #[arg(long, env = "FACEREC_STRICT_PROVIDER", num_args = 0..=1, default_missing_value = "true",
        action = ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub strict_provider: Option<bool>,
    /// Precision of the models: fp32, fp16 or int8 (facerec's model-variant; default fp32). It
    /// picks the default model files; a variant that has not passed the accuracy gate is
    /// refused at start-up.
    #[arg(long, env = "FACEREC_MODEL_VARIANT")]
    pub model_variant: Option<String>,
    /// Folder where TensorRT keeps the engines it builds, so that a restart reuses them
    /// (facerec's trt-engine-cache). Created if missing; unset: rebuilt at every start.
    #[arg(long, env = "FACEREC_TRT_ENGINE_CACHE")]
    pub trt_engine_cache: Option<PathBuf>,
    /// TensorRT fp16 kernels (facerec's trt-fp16; default on). `--trt-fp16=false` turns them
    /// off.
    #[arg(long, env = "FACEREC_TRT_FP16", num_args = 0..=1, default_missing_value = "true",
        action = ArgAction::Set, value_parser = clap::builder::BoolishValueParser::new())]
    pub trt_fp16: Option<bool>,
    /// Folder for TensorRT's timing cache, which shortens later engine builds (facerec's
    /// trt-timing-cache). Unset: off.
    #[arg(long, env = "FACEREC_TRT_TIMING_CACHE")]
    pub trt_timing_cache: Option<PathBuf>,
    /// The GPU that CUDA and TensorRT run on (facerec's cuda-device; default 0).
    #[arg(long, env = "FACEREC_CUDA_DEVICE")]
    pub cuda_device: Option<u32>,
    /// ONNX Runtime intra-op threads per model (facerec's threads). Every camera's facerec with
    /// the same settings shares one session per model in the process, so this is the process's
    /// inference thread count per model, however many cameras there are. 0: one when more than
    /// one camera is configured at start-up, else the element's default (one per CPU core, at
    /// most 4).
    #[arg(long, env = "FACEREC_INFERENCE_THREADS", default_value_t = 0)]
    pub inference_threads: u32,
    /// The engine's tunables as given (flag, environment, file or default), in the order of
    /// `TUNABLES`: unchecked until [`PipelineArgs::tunables`].
    #[arg(skip)]
    pub tunable_values: Vec<(&'static Tunable, TunableValue)>,
    /// Pixelate faces in the served streams: none, unknown (every face not named from the
    /// gallery) or all. The default for every camera; a camera in the config file may set its own.
    #[arg(long, env = "FACEREC_REDACT", default_value = "none")]
    pub redact: String,
    /// Per-camera `redact` from the config file's sources.
    #[arg(skip)]
    pub camera_redact: BTreeMap<String, String>,
    /// TrueType/OpenType font for the name labels (for scripts the default font lacks).
    #[arg(long, env = "FACEREC_FONT")]
    pub font: Option<PathBuf>,
    /// Frames per second fed to recognition (the demo's VIDEO_PROCESSING_FPS); 0 = all.
    #[arg(long, env = "VIDEO_PROCESSING_FPS", default_value_t = 0)]
    pub processing_fps: u32,
    /// Cap on the rate of the served MJPEG streams.
    #[arg(long, env = "FACEREC_MAX_FPS", default_value_t = 15)]
    pub max_fps: u32,
    /// JPEG quality of the served frames.
    #[arg(long, env = "FACEREC_JPEG_QUALITY", default_value_t = 80)]
    pub jpeg_quality: u32,
}

impl PipelineArgs {
    /// The tunables, each checked against its declared range (NaN is out of every range).
    pub fn tunables(&self) -> Result<Tunables> {
        let mut tunables = Tunables::default();
        for (tunable, value) in &self.tunable_values {
            tunables
                .set(tunable.name, *value)
                .map_err(|err| match err {
                    TunableError::OutOfRange {
                        name,
                        value,
                        min,
                        max,
                    } => out_of_range(
                        name,
                        value,
                        &format!("facerec's {name} accepts {min} to {max}"),
                    ),
                    other => other.into(),
                })?;
        }
        Ok(tunables)
    }

    /// The engine the launcher checks the models with at start-up (and the face library embeds
    /// photos with): the cameras' models, variant and execution provider options, so that it
    /// uses (and fills) the same TensorRT engine cache, and the cameras' tunables.
    pub fn engine_config(&self) -> Result<facerec_core::engine::EngineConfig> {
        let variant = self
            .model_variant
            .as_deref()
            .map(str::parse::<facerec_core::models::ModelVariant>)
            .transpose()?
            .unwrap_or_default();
        let mut config = facerec_core::engine::EngineConfig::for_variant(variant);
        config.tunables = self.tunables()?;
        if let Some(d) = &self.detector {
            config.detector = d.clone();
        }
        if let Some(r) = &self.recognizer {
            config.recognizer = r.clone();
        }
        let session = &mut config.session;
        session.provider = self.provider.parse()?;
        if let Some(strict) = self.strict_provider {
            session.strict = strict;
        }
        session.trt_engine_cache = self.trt_engine_cache.clone();
        session.trt_timing_cache = self.trt_timing_cache.clone();
        if let Some(fp16) = self.trt_fp16 {
            session.trt_fp16 = fp16;
        }
        if let Some(device) = self.cuda_device {
            session.cuda_device = device;
        }
        // As the cameras' elements: with the same settings, the launcher's engine shares their
        // sessions.
        if self.inference_threads > 0 {
            session.threads = self.inference_threads as usize;
        }
        Ok(config)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    pub name: String,
    pub uri: String,
    /// This camera's `redact`, instead of the launcher-wide one.
    pub redact: Option<String>,
}

/// The effective settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub cli: Cli,
    /// (name, URI as given, parsed source)
    pub sources: Vec<(String, String, Source)>,
    /// The data folder asked for (flag, environment or the default location).
    pub data_dir: PathBuf,
    pub api_token: Option<String>,
    /// The MQTT broker, checked; `None` when MQTT is off.
    pub mqtt: Option<mqtt::MqttConfig>,
}

impl std::ops::Deref for Config {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.cli
    }
}

/// `facerec-launcher user …` and `facerec-launcher token …`: the accounts in the data folder.
#[derive(Debug, Parser)]
#[command(
    name = "facerec-launcher",
    version,
    about = "Manage the launcher's users and API tokens"
)]
pub struct AccountsCli {
    #[command(subcommand)]
    pub command: AccountsCommand,
    /// The launcher's data folder (as `facerec-launcher --data-dir`).
    #[arg(long, env = "FACEREC_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AccountsCommand {
    /// Users who sign in to the page and the streams.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens for machines (Home Assistant, scripts, ESP32 /register, Prometheus).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Adds a user. Without --password-file a random password is made and printed once.
    Add {
        name: String,
        /// admin (everything) or viewer (watch and browse; no changes, no export).
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from this file (`-`: standard input), less a trailing line break.
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Sets a user's password (and role); their sessions end.
    Passwd {
        name: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
    /// Deletes a user; their sessions end.
    Del { name: String },
    /// Lists the users and their roles.
    List,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Makes a token and prints it once (only its hash is kept).
    Add {
        name: String,
        #[arg(long, default_value = "viewer")]
        role: String,
    },
    /// Revokes a token by its id.
    Del { id: String },
    /// Lists the tokens with their last use.
    List,
}

/// The data folder asked for, or the default one.
pub fn data_dir_or_default(given: Option<PathBuf>) -> PathBuf {
    given.unwrap_or_else(default_data_dir)
}

/// The default data folder: systemd's StateDirectory, the XDG state folder, or ~/.local/state.
fn default_data_dir() -> PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dir) = var("STATE_DIRECTORY") {
        // systemd may list several, separated by ':'.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        return PathBuf::from(first);
    }
    if let Some(dir) = var("XDG_STATE_HOME") {
        return PathBuf::from(dir).join("facerec");
    }
    match var("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/facerec"),
        None => PathBuf::from("facerec-data"),
    }
}

/// The flag of a tunable: `--NAME`, `FACEREC_NAME`, the declared default, the blurb as help.
fn tunable_arg(tunable: &Tunable) -> clap::Arg {
    let id = tunable.name.replace('-', "_");
    let arg = clap::Arg::new(id.clone())
        .long(tunable.name)
        .env(tunable.env())
        .value_name(id.to_uppercase())
        .help(tunable.blurb)
        .default_value(tunable.default_value().to_string())
        .action(ArgAction::Set);
    match tunable.domain {
        Domain::Float { .. } => arg.value_parser(clap::value_parser!(f32)),
        Domain::UInt { .. } => arg.value_parser(clap::value_parser!(u32)),
    }
}

/// [`Cli`]'s arguments and a flag per tunable, listed after `--cuda-device` with the element's
/// other settings.
fn cli_command() -> clap::Command {
    let (mut next, mut tunables_at) = (0, 0);
    let cmd = Cli::command().mut_args(|arg| {
        let order = next;
        next += 1;
        if arg.get_id() == "cuda_device" {
            tunables_at = next;
            next += TUNABLES.len();
        }
        arg.display_order(order)
    });
    cmd.args(
        TUNABLES
            .iter()
            .zip(tunables_at..)
            .map(|(tunable, order)| tunable_arg(tunable).display_order(order)),
    )
}

/// The tunables' values in `matches` (each has a default).
fn tunable_values(matches: &clap::ArgMatches) -> Vec<(&'static Tunable, TunableValue)> {
    TUNABLES
        .iter()
        .map(|tunable| {
            let id = tunable.name.replace('-', "_");
            let value = match tunable.domain {
                Domain::Float { .. } => TunableValue::Float(
                    *matches.get_one::<f32>(&id).expect("tunables have defaults"),
                ),
                Domain::UInt { .. } => TunableValue::UInt(
                    *matches.get_one::<u32>(&id).expect("tunables have defaults"),
                ),
            };
            (tunable, value)
        })
        .collect()
}

/// The flag of a setting, from its clap id.
fn flag_name(arg: &clap::Arg) -> Option<String> {
    arg.get_long().map(str::to_string)
}

/// A YAML scalar as the text clap would get from the command line.
fn yaml_scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    use serde_yaml_ng::Value;
    match value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

impl Config {
    /// Parses the command line (after `gst::init`, for the ranges in `--help`), reading the
    /// config file it names. Exits on `--help`, `--version` and flag syntax errors, as clap does.
    pub fn from_args<I, T>(args: I) -> Result<Config>
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        // First pass: only to find the config file.
        let config_path = cli_command()
            .ignore_errors(true)
            .try_get_matches_from(&args)
            .ok()
            .and_then(|m| m.get_one::<PathBuf>("config").cloned());
        let (defaults, file_sources) = match &config_path {
            Some(path) => read_file(path)?,
            None => (BTreeMap::new(), Vec::new()),
        };
        let mut cmd = command();
        for (key, value) in &defaults {
            let arg = cmd
                .get_arguments()
                .find(|a| flag_name(a).as_deref() == Some(key.as_str()))
                .expect("read_file keeps only known keys")
                .clone();
            // Checked here, so that a bad value is the file's error and not a usage error.
            let alone = clap::Command::new("facerec-launcher")
                .no_binary_name(true)
                .arg(arg.clone().env(None::<&str>).required(false));
            if let Err(e) = alone.try_get_matches_from([format!("--{key}"), value.clone()]) {
                let text = e.to_string();
                let first = text
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim_start_matches("error: ");
                bail!(
                    "config {} is invalid: {key}: {first}",
                    config_path.as_deref().unwrap_or(Path::new("")).display()
                );
            }
            cmd = cmd.mut_arg(arg.get_id().clone(), |a| a.default_value(value.clone()));
        }
        // The demo's MODEL_FILENAME sits between FACEREC_GALLERY and the file.
        if let Some(model) = std::env::var_os("MODEL_FILENAME").filter(|v| !v.is_empty()) {
            cmd = cmd.mut_arg("gallery", |a| {
                a.default_value(model.to_string_lossy().into_owned())
            });
        }
        let matches = cmd.try_get_matches_from(&args).unwrap_or_else(|e| e.exit());
        let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        cli.pipeline.tunable_values = tunable_values(&matches);
        let sources_from = matches.value_source("sources");
        if sources_from == Some(clap::parser::ValueSource::EnvVariable) {
            cli.sources = cli
                .sources
                .iter()
                .flat_map(|l| split_source_list(l))
                .collect();
        }
        let from_command_line = matches!(
            sources_from,
            Some(clap::parser::ValueSource::CommandLine | clap::parser::ValueSource::EnvVariable)
        );
        let mut specs: Vec<(String, String)> = Vec::new();
        if from_command_line {
            for s in cli
                .sources
                .iter()
                .map(|s| s.trim())
                .filter(|s| !s.is_empty())
            {
                let (name, uri) = s
                    .split_once('=')
                    .with_context(|| format!("--source {s}: expected NAME=URI"))?;
                specs.push((name.to_string(), uri.to_string()));
            }
        } else {
            specs.extend(file_sources.iter().map(|s| (s.name.clone(), s.uri.clone())));
        }
        if specs.is_empty()
            && let Ok(id) = std::env::var("VIDEO_DEVICE_ID")
        {
            // The demo's single-camera setting.
            let id: u32 = id
                .trim()
                .parse()
                .with_context(|| format!("VIDEO_DEVICE_ID={id} is not a number"))?;
            specs.push(("cam0".into(), format!("v4l2:///dev/video{id}")));
        }
        let mut sources = Vec::new();
        for (name, uri) in specs {
            validate_name(&name)?;
            if sources.iter().any(|(n, _, _)| n == &name) {
                bail!("camera {name} is defined twice");
            }
            let source =
                Source::parse(&uri, Trust::Operator).with_context(|| format!("source {name}"))?;
            sources.push((name, uri, source));
        }
        if cli.pipeline.inference_threads == 0 && sources.len() > 1 {
            cli.pipeline.inference_threads = MANY_CAMERAS_INFERENCE_THREADS;
        }
        cli.pipeline.camera_redact = file_sources
            .iter()
            .filter_map(|s| Some((s.name.clone(), s.redact.clone()?)))
            .collect();
        let api_token = std::env::var("FACEREC_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        let mqtt = mqtt::MqttConfig::from_args(&cli.mqtt)?;
        Ok(Config {
            mqtt,
            data_dir: cli.data_dir.clone().unwrap_or_else(default_data_dir),
            cli,
            sources,
            api_token,
        })
    }
}

/// `--inference-threads` left at 0 with several cameras at start-up. The engine runs one
/// inference at a time for all of them, and the cameras' decoders want the other cores. With
/// this and one thread per decoder, live 1080p cameras on 2 cores, against both left automatic
/// in the same run: 2 cameras made the same detections (52.8/s against 53.7) on 1.31 cores
/// instead of 1.47, 4 made 56.0/s instead of 47.1 and 8 made 31.0/s instead of 15.5, frames
/// passing as before (`docs/PERFORMANCE.md`, issue 27).
const MANY_CAMERAS_INFERENCE_THREADS: u32 = 1;

/// The config file: its scalar settings by flag name, and its sources. Unknown keys are refused.
fn read_file(path: &Path) -> Result<(BTreeMap<String, String>, Vec<FileSource>)> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config {}", path.display()))?;
    parse_config(&text, path)
}

/// The config file's text (read from `path`, named in errors) as its scalar settings by flag name
/// and its sources. Public for the fuzz target.
pub fn parse_config(
    text: &str,
    path: &Path,
) -> Result<(BTreeMap<String, String>, Vec<FileSource>)> {
    let invalid = || format!("config {} is invalid", path.display());
    let value: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).with_context(invalid)?;
    let mapping = match value {
        serde_yaml_ng::Value::Null => return Ok((BTreeMap::new(), Vec::new())),
        serde_yaml_ng::Value::Mapping(m) => m,
        _ => bail!("{}: expected a mapping of settings", invalid()),
    };
    let known: Vec<String> = cli_command()
        .get_arguments()
        .filter(|a| {
            !matches!(
                a.get_id().as_str(),
                "config" | "sources" | "help" | "version"
            )
        })
        .filter_map(flag_name)
        .collect();
    let mut defaults = BTreeMap::new();
    let mut sources = Vec::new();
    for (key, value) in mapping {
        let key = key
            .as_str()
            .with_context(|| format!("{}: a key is not a string", invalid()))?
            .to_string();
        if key == "sources" {
            sources = serde_yaml_ng::from_value(value)
                .with_context(|| format!("{}: sources", invalid()))?;
        } else if known.contains(&key) {
            let text = yaml_scalar(&value)
                .with_context(|| format!("{}: {key} must be a single value", invalid()))?;
            defaults.insert(key, text);
        } else {
            bail!("{}: unknown field `{key}`", invalid());
        }
    }
    Ok((defaults, sources))
}

/// Settings that are element properties: (setting, element factory, property). Their ranges are
/// the elements' own `ParamSpec` bounds, read at run time, so they are declared only there. The
/// facerec element's tunables are not here: the element and the launcher both take their ranges
/// from `facerec_core::tunables`.
pub const ELEMENT_SETTINGS: [(&str, &str, &str); 3] = [
    ("cuda-device", "facerec", "cuda-device"),
    ("inference-threads", "facerec", "threads"),
    ("jpeg-quality", "jpegenc", "quality"),
];

/// A launcher setting's inclusive range and how to read it from the effective settings.
type LauncherRange = (&'static str, f64, f64, fn(&Config) -> f64);

/// The launcher's own numeric settings and their inclusive ranges: declared here and nowhere else.
pub const LAUNCHER_RANGES: [LauncherRange; 11] = [
    ("processing-fps", 0.0, 1000.0, |c| {
        c.pipeline.processing_fps as f64
    }),
    ("max-fps", 1.0, 1000.0, |c| c.pipeline.max_fps as f64),
    ("max-clients", 1.0, 100_000.0, |c| c.max_clients as f64),
    ("max-cameras", 1.0, 1024.0, |c| c.max_cameras as f64),
    ("max-connections", 1.0, 100_000.0, |c| {
        c.max_connections as f64
    }),
    ("header-timeout", 1.0, 3600.0, |c| c.header_timeout as f64),
    ("retain-days", 0.001, 36_500.0, |c| c.retain_days),
    ("retain-mb", 0.01, 10_000_000.0, |c| c.retain_mb),
    ("min-free-mb", 0.0, 10_000_000.0, |c| c.min_free_mb),
    ("audit-days", 1.0, 36_500.0, |c| c.audit_days),
    ("mqtt-buffer", 1.0, 1_000_000.0, |c| {
        c.cli.mqtt.mqtt_buffer as f64
    }),
];

/// The `ParamSpec` bounds of `factory`'s `property`.
pub fn element_range(factory: &str, property: &str) -> Result<(f64, f64)> {
    let element = gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("the GStreamer element {factory} is not installed"))?;
    let pspec = element
        .find_property(property)
        .with_context(|| format!("element {factory} has no property {property}"))?;
    pspec_range(&pspec)
        .with_context(|| format!("property {property} of element {factory} is not numeric"))
}

/// The nicks of an enum property of `factory` (for example facerec's `redact`).
pub fn element_nicks(factory: &str, property: &str) -> Result<Vec<String>> {
    use gst::glib;
    let element = gst::ElementFactory::make(factory)
        .build()
        .with_context(|| format!("the GStreamer element {factory} is not installed"))?;
    let pspec = element
        .find_property(property)
        .with_context(|| format!("element {factory} has no property {property}"))?;
    let pspec = pspec
        .downcast_ref::<glib::ParamSpecEnum>()
        .with_context(|| format!("property {property} of element {factory} is not an enum"))?;
    Ok(pspec
        .enum_class()
        .values()
        .iter()
        .map(|v| v.nick().to_string())
        .collect())
}

/// `--help` with every range spelled out, read from the elements (after `gst::init`), from the
/// tunables' declarations and from [`LAUNCHER_RANGES`]. Without GStreamer the help simply lacks
/// the element ranges.
pub fn command() -> clap::Command {
    let (client, overall) = (
        crate::domain::rate_limit::RateLimiter::REGISTER_PER_CLIENT,
        crate::domain::rate_limit::RateLimiter::REGISTER_OVERALL,
    );
    let mut cmd = cli_command().after_help(format!(
        "FACEREC_API_TOKEN (environment only): when set, every write route (POST/PUT/DELETE under \
/api: cameras, gallery reload, history, people) and GET /register require it, as \
`Authorization: Bearer TOKEN` or, for /register (ESP32 firmware that cannot send headers), as a \
`key=TOKEN` query parameter. Without it, /register still refuses to change an existing camera's \
token. /register is rate-limited per client (a burst of {}, then 1 every {} s) and overall (a \
burst of {}, then 1 every {} s), with 429 and Retry-After.\n\nEvery range above is checked at \
start-up: a value outside it is one error line and exit 1.",
        client.burst,
        client.refill.as_secs(),
        overall.burst,
        overall.refill.as_secs()
    ));
    let mut ranges: Vec<(String, String)> = Vec::new();
    let gst_ready = gst::INITIALIZED.load(std::sync::atomic::Ordering::SeqCst);
    for (setting, factory, property) in ELEMENT_SETTINGS.into_iter().filter(|_| gst_ready) {
        if let Ok((min, max)) = element_range(factory, property) {
            ranges.push((
                setting.to_string(),
                format!("{min} to {max}, the range of {factory}'s {property}"),
            ));
        }
    }
    for tunable in TUNABLES {
        let (min, max) = tunable.range();
        let unit = if tunable.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", tunable.unit)
        };
        ranges.push((
            tunable.name.to_string(),
            format!(
                "{min} to {max}{unit}, the range of facerec's {}",
                tunable.name
            ),
        ));
    }
    for (setting, min, max, _) in LAUNCHER_RANGES {
        ranges.push((setting.to_string(), format!("{min} to {max}")));
    }
    for (setting, text) in ranges {
        let id = setting.replace('-', "_");
        cmd = cmd.mut_arg(id, |arg| {
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            arg.help(format!("{help} [range: {text}]"))
        });
    }
    cmd
}

/// What the YAML file may not hold either: shared by flags, environment and file.
fn out_of_range(setting: &str, value: impl std::fmt::Display, range: &str) -> anyhow::Error {
    anyhow::anyhow!("{setting} {value} is out of range: {range}")
}

impl Config {
    /// Checks every numeric setting against its range: the tunables' declared ranges, the
    /// facerec and jpegenc elements' own bounds for their other properties, [`LAUNCHER_RANGES`]
    /// for the rest. Needs `gst::init` and the facerec element registered.
    pub fn validate(&self) -> Result<()> {
        let p = &self.pipeline;
        let nicks = element_nicks("facerec", "redact")?;
        for (what, value) in std::iter::once(("redact".to_string(), &p.redact)).chain(
            p.camera_redact
                .iter()
                .map(|(camera, v)| (format!("redact of camera {camera}"), v)),
        ) {
            if !nicks.iter().any(|n| n == value) {
                bail!("{what} = {value:?} is not one of {}", nicks.join(", "));
            }
        }
        if let Some(variant) = &p.model_variant {
            let nicks = element_nicks("facerec", "model-variant")?;
            if !nicks.iter().any(|n| n == variant) {
                bail!(
                    "model-variant = {variant:?} is not one of {}",
                    nicks.join(", ")
                );
            }
            // Refused here rather than by every camera's element at its start.
            variant
                .parse::<facerec_core::models::ModelVariant>()
                .and_then(|v| v.check_selectable())?;
        }
        p.tunables()?;
        let given = [
            ("jpeg-quality", p.jpeg_quality as f64),
            ("inference-threads", p.inference_threads as f64),
        ]
        .into_iter()
        .chain(p.cuda_device.map(|d| ("cuda-device", d as f64)));
        for (name, value) in given {
            let (setting, factory, property) = ELEMENT_SETTINGS
                .into_iter()
                .find(|(setting, _, _)| *setting == name)
                .expect("every element setting is in ELEMENT_SETTINGS");
            let (min, max) = element_range(factory, property)?;
            // NaN fails this too.
            if !(min..=max).contains(&value) {
                let shown = if value.fract() != 0.0 || value.is_nan() {
                    format!("{}", value as f32)
                } else {
                    format!("{value}")
                };
                return Err(out_of_range(
                    setting,
                    shown,
                    &format!("{factory}'s {property} accepts {min} to {max}"),
                ));
            }
        }
        for (setting, min, max, value_of) in LAUNCHER_RANGES {
            let value = value_of(self);
            if !(min..=max).contains(&value) {
                return Err(out_of_range(
                    setting,
                    value,
                    &format!("it must be {min} to {max}"),
                ));
            }
        }
        if self.metrics_token && !self.auth && self.api_token.is_none() {
            bail!(
                "metrics-token with auth=false needs FACEREC_API_TOKEN: it is the token /metrics then requires"
            );
        }
        if self.session_ttl < Duration::from_secs(60) {
            bail!("session-ttl must be at least 1 min");
        }
        if self.stranger_ttl < Duration::from_secs(1) {
            bail!("stranger-ttl must be at least 1 s");
        }
        if self.unknown_after > Duration::from_secs(3600) {
            bail!("unknown-after must be at most 1 h");
        }
        if self.sources.len() > self.max_cameras {
            bail!(
                "{} cameras are configured but max-cameras is {}",
                self.sources.len(),
                self.max_cameras
            );
        }
        Ok(())
    }
}

impl Config {
    /// The cameras' settings, typed. Values [`Config::validate`] refuses (with the element's
    /// nicks in its message) are refused here too.
    pub fn pipeline_settings(&self) -> Result<PipelineSettings> {
        let p = &self.pipeline;
        let redact = |what: &str, nick: &str| {
            parse_redact(nick).with_context(|| format!("{what} = {nick:?} is not a redact mode"))
        };
        let mut camera_redact = BTreeMap::new();
        for (camera, nick) in &p.camera_redact {
            let mode = redact(&format!("redact of camera {camera}"), nick)?;
            camera_redact.insert(camera.clone(), mode);
        }
        Ok(PipelineSettings {
            gallery: p.gallery.clone(),
            detector: p.detector.clone(),
            recognizer: p.recognizer.clone(),
            provider: p.provider.parse()?,
            strict_provider: p.strict_provider,
            model_variant: p.model_variant.as_deref().map(str::parse).transpose()?,
            trt_engine_cache: p.trt_engine_cache.clone(),
            trt_fp16: p.trt_fp16,
            trt_timing_cache: p.trt_timing_cache.clone(),
            cuda_device: p.cuda_device,
            inference_threads: p.inference_threads,
            tunables: p.tunables()?,
            redact: redact("redact", &p.redact)?,
            camera_redact,
            font: p.font.clone(),
            processing_fps: p.processing_fps,
            max_fps: p.max_fps,
            jpeg_quality: p.jpeg_quality,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::camera::element::ensure_facerec_plugin;
    use crate::domain::source::{SCHEMES, esp32_camera};

    #[test]
    fn sources_parse_and_refuse_what_they_must() {
        assert_eq!(
            Source::parse("v4l2:///dev/video2", Trust::Operator).unwrap(),
            Source::V4l2 {
                device: "/dev/video2".into()
            }
        );
        assert_eq!(
            Source::parse("nvargus://1", Trust::Operator).unwrap(),
            Source::Nvargus { sensor: 1 }
        );
        assert_eq!(
            Source::parse("test://?pattern=smpte", Trust::Operator).unwrap(),
            Source::Test {
                pattern: "smpte".into()
            }
        );
        let err = Source::parse("ftp://x/y", Trust::Operator)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!("unknown source scheme 'ftp' in ftp://x/y (expected one of {SCHEMES})")
        );
        assert!(Source::parse("v4l2:///etc/passwd", Trust::Operator).is_err());
        let api = Trust::Api { media_dir: None };
        let err = Source::parse("file:///etc/passwd", api)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("file sources through the API are disabled"),
            "{err}"
        );
        let err = Source::parse("pipeline:filesrc location=/etc/shadow", api)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("pipeline: sources can only be set by the operator"),
            "{err}"
        );
        let media = std::env::temp_dir();
        let err = Source::parse(
            "file:///etc/passwd",
            Trust::Api {
                media_dir: Some(&media),
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("is outside the media folder"), "{err}");
    }

    /// A flag's value is one source, commas and all: caps in a `pipeline:` description always
    /// hold commas (this exact command line used to fail with `source format: "NV12 ! identity
    /// sync=true" is not a URI`).
    #[test]
    fn a_pipeline_source_keeps_the_commas_of_its_caps() {
        let description = "filesrc location=a.mp4 ! decodebin ! videoconvert ! \
                           video/x-raw,format=NV12 ! identity sync=true";
        let config = Config::from_args([
            "facerec-launcher",
            "--source",
            &format!("cam1=pipeline:{description}"),
        ])
        .unwrap();
        assert_eq!(config.sources.len(), 1);
        assert_eq!(config.sources[0].0, "cam1");
        assert_eq!(
            config.sources[0].2,
            Source::Pipeline {
                description: description.into()
            }
        );
        // FACEREC_SOURCES: the commas that start another NAME=SCHEME: separate; the caps' do not.
        assert_eq!(
            split_source_list(&format!(
                "cam1=pipeline:{description},cam2=test://?pattern=ball, cam3=v4l2:///dev/video1"
            )),
            [
                format!("cam1=pipeline:{description}"),
                "cam2=test://?pattern=ball".to_string(),
                " cam3=v4l2:///dev/video1".to_string(),
            ]
        );
        assert_eq!(
            split_source_list("a=file:///x.mp4?loop=true,b=rtsp://h/p"),
            ["a=file:///x.mp4?loop=true", "b=rtsp://h/p"]
        );
        // A comma before something that is not NAME=SCHEME: stays where it is.
        assert_eq!(
            split_source_list("a=pipeline:videotestsrc ! video/x-raw,width=(int)640 ! fakesink"),
            ["a=pipeline:videotestsrc ! video/x-raw,width=(int)640 ! fakesink"]
        );
    }

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("launcher.yaml");
        std::fs::write(
            &path,
            "listen: 127.0.0.1:9000\nmax-fps: 5\ngallery: /models/model.data\nsources:\n  - name: door\n    uri: test://?pattern=snow\n",
        )
        .unwrap();
        let config = Config::from_args([
            "facerec-launcher",
            "--config",
            path.to_str().unwrap(),
            "--max-fps",
            "20",
        ])
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.pipeline.max_fps, 20, "the flag wins");
        assert_eq!(config.sources.len(), 1);
        assert_eq!(
            config.sources[0].2,
            Source::Test {
                pattern: "snow".into()
            }
        );

        std::fs::write(&path, "listen: 127.0.0.1:9000\nmax_fps: 5\n").unwrap();
        let err = format!(
            "{:#}",
            Config::from_args(["facerec-launcher", "--config", path.to_str().unwrap()])
                .unwrap_err()
        );
        assert!(
            err.starts_with(&format!(
                "config {} is invalid: unknown field `max_fps`",
                path.display()
            )),
            "{err}"
        );
    }

    /// `mdns: true` in the file used to be impossible to turn off (a plain bool flag could only
    /// add `true`); a file value of the wrong type is the file's error.
    #[test]
    fn a_flag_turns_off_what_the_file_turned_on() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("launcher.yaml");
        std::fs::write(&path, "mdns: true\nretain-days: 7\n").unwrap();
        let file = path.to_str().unwrap();
        let load = |extra: &[&str]| {
            let mut args = vec!["facerec-launcher", "--config", file];
            args.extend_from_slice(extra);
            Config::from_args(args).unwrap()
        };
        assert!(load(&[]).mdns, "the file's true");
        assert!(!load(&["--mdns=false"]).mdns, "the flag's false wins");
        assert!(load(&["--mdns"]).mdns, "a bare --mdns is true");
        assert_eq!(load(&[]).retain_days, 7.0);
        assert_eq!(load(&["--retain-days", "2"]).retain_days, 2.0);
        std::fs::write(&path, "max-fps: fast\n").unwrap();
        let err = format!(
            "{:#}",
            Config::from_args(["facerec-launcher", "--config", file]).unwrap_err()
        );
        assert_eq!(
            err,
            format!(
                "config {} is invalid: max-fps: invalid value 'fast' for '--max-fps <MAX_FPS>': invalid digit found in string",
                path.display()
            )
        );
    }

    /// The camera cap comes from the config file too and counts the file's sources.
    #[test]
    fn the_config_file_cap_counts_its_sources() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path();
        let path = dir.join("launcher.yaml");
        std::fs::write(
            &path,
            "max-cameras: 1\nsources:\n  - name: a\n    uri: test://\n  - name: b\n    uri: test://\n",
        )
        .unwrap();
        let config =
            Config::from_args(["facerec-launcher", "--config", path.to_str().unwrap()]).unwrap();
        assert_eq!(config.max_cameras, 1);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "2 cameras are configured but max-cameras is 1"
        );
        std::fs::write(&path, "jpeg-quality: 101\n").unwrap();
        assert_eq!(
            Config::from_args(["facerec-launcher", "--config", path.to_str().unwrap()])
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string(),
            "jpeg-quality 101 is out of range: jpegenc's quality accepts 0 to 100"
        );
    }

    #[test]
    fn names_and_registrations_are_validated() {
        assert!(validate_name("cam0").is_ok());
        assert!(validate_name("../x").is_err());
        assert!(validate_name("").is_err());
        let (name, source) = esp32_camera("192.168.1.20", "abc123").unwrap();
        assert_eq!(name, "esp32-192-168-1-20");
        assert_eq!(
            source,
            Source::Http {
                url: "http://192.168.1.20/stream?token=abc123".into()
            }
        );
        assert!(esp32_camera("evil.com/x?", "t").is_err());
        assert!(esp32_camera("10.0.0.1", "a&b=c").is_err());
        let (name, _) = esp32_camera("127.0.0.1:8081", "").unwrap();
        assert_eq!(name, "esp32-127-0-0-1-8081");
    }

    /// The TensorRT/CUDA and model-variant settings from flags and the config file; unset, they
    /// stay unset so that the element's defaults apply; bad values are one line at start-up.
    /// `--inference-threads`: from the flag and the file as every setting, within the element's
    /// `threads` range, and the launcher's own engine set up as the cameras' elements.
    #[test]
    fn inference_threads_parse_and_validate() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        let parse = |extra: &[&str]| {
            let mut args = vec!["facerec-launcher"];
            args.extend_from_slice(extra);
            Config::from_args(args).unwrap()
        };
        let bare = parse(&[]);
        assert_eq!(bare.pipeline.inference_threads, 0);
        assert_eq!(bare.pipeline_settings().unwrap().inference_threads, 0);
        assert_eq!(bare.pipeline.engine_config().unwrap().session.threads, 0);
        let two = parse(&["--inference-threads", "2"]);
        two.validate().unwrap();
        assert_eq!(two.pipeline_settings().unwrap().inference_threads, 2);
        assert_eq!(two.pipeline.engine_config().unwrap().session.threads, 2);
        let err = parse(&["--inference-threads", "65"])
            .validate()
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "inference-threads 65 is out of range: facerec's threads accepts 0 to 64"
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launcher.yaml");
        std::fs::write(&path, "inference-threads: 3\n").unwrap();
        let from_file = parse(&["--config", path.to_str().unwrap()]);
        assert_eq!(from_file.pipeline.inference_threads, 3);
        // Several cameras at start-up: one thread per model unless set, for the cameras and
        // the launcher's own engine alike (so that they share the sessions).
        let cameras = ["--source", "a=test://", "--source", "b=test://"];
        let several = parse(&cameras);
        assert_eq!(several.pipeline_settings().unwrap().inference_threads, 1);
        assert_eq!(several.pipeline.engine_config().unwrap().session.threads, 1);
        let chosen = parse(&[&cameras[..], &["--inference-threads", "2"]].concat());
        assert_eq!(chosen.pipeline_settings().unwrap().inference_threads, 2);
        let one = parse(&["--source", "a=test://"]);
        assert_eq!(one.pipeline_settings().unwrap().inference_threads, 0);
    }

    #[test]
    fn tensorrt_and_variant_settings_parse_and_validate() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        let parse = |extra: &[&str]| {
            let mut args = vec!["facerec-launcher"];
            args.extend_from_slice(extra);
            Config::from_args(args).unwrap()
        };
        let bare = parse(&[]);
        let p = &bare.pipeline;
        assert_eq!(
            (
                &p.model_variant,
                &p.trt_engine_cache,
                p.trt_fp16,
                &p.trt_timing_cache,
                p.cuda_device
            ),
            (&None, &None, None, &None, None)
        );
        let engine = p.engine_config().unwrap();
        assert_eq!(engine.variant, facerec_core::models::ModelVariant::Fp32);
        assert_eq!(
            facerec_core::runtime::provider_options(
                facerec_core::runtime::Provider::TensorRt,
                &engine.session
            ),
            [
                ("device_id", "0".to_string()),
                ("trt_fp16_enable", "1".into()),
                ("trt_engine_cache_enable", "0".into()),
                ("trt_timing_cache_enable", "0".into()),
            ]
        );
        bare.validate().unwrap();

        let set = parse(&[
            "--provider",
            "tensorrt",
            "--trt-engine-cache",
            "/var/cache/facerec/trt",
            "--trt-fp16=false",
            "--trt-timing-cache",
            "/var/cache/facerec/trt/timing",
            "--cuda-device",
            "1",
            "--model-variant",
            "fp32",
        ]);
        set.validate().unwrap();
        let engine = set.pipeline.engine_config().unwrap();
        assert_eq!(
            facerec_core::runtime::provider_options(
                facerec_core::runtime::Provider::TensorRt,
                &engine.session
            ),
            [
                ("device_id", "1".to_string()),
                ("trt_fp16_enable", "0".into()),
                ("trt_engine_cache_enable", "1".into()),
                ("trt_engine_cache_path", "/var/cache/facerec/trt".into()),
                ("trt_timing_cache_enable", "1".into()),
                (
                    "trt_timing_cache_path",
                    "/var/cache/facerec/trt/timing".into()
                ),
            ]
        );
        assert_eq!(parse(&["--trt-fp16"]).pipeline.trt_fp16, Some(true));
        assert_eq!(bare.pipeline.strict_provider, None);
        let strict = parse(&["--strict-provider"]);
        assert_eq!(strict.pipeline.strict_provider, Some(true));
        assert!(strict.pipeline.engine_config().unwrap().session.strict);
        assert!(!bare.pipeline.engine_config().unwrap().session.strict);

        // The config file's keys are the flags' names.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("launcher.yaml");
        let file = path.to_str().unwrap();
        std::fs::write(
            &path,
            "trt-engine-cache: /cache\ntrt-fp16: false\ncuda-device: 2\nmodel-variant: fp16\n",
        )
        .unwrap();
        let from_file = parse(&["--config", file, "--trt-fp16=true"]);
        assert_eq!(
            from_file.pipeline.trt_engine_cache.as_deref(),
            Some(Path::new("/cache"))
        );
        assert_eq!(from_file.pipeline.trt_fp16, Some(true), "the flag wins");
        assert_eq!(from_file.pipeline.cuda_device, Some(2));
        // fp16 passed the accuracy gate; int8 did not, and is refused with the gate's figures.
        from_file.validate().unwrap();
        assert_eq!(
            from_file.pipeline.engine_config().unwrap().variant,
            facerec_core::models::ModelVariant::Fp16
        );
        assert_eq!(
            parse(&["--model-variant", "int8"])
                .validate()
                .unwrap_err()
                .to_string(),
            facerec_core::models::ModelVariant::Int8
                .check_selectable()
                .unwrap_err()
                .to_string()
        );
        assert_eq!(
            parse(&["--model-variant", "bf16"])
                .validate()
                .unwrap_err()
                .to_string(),
            "model-variant = \"bf16\" is not one of fp32, fp16, int8"
        );
        assert_eq!(
            parse(&["--cuda-device", "4294967295"])
                .validate()
                .unwrap_err()
                .to_string(),
            "cuda-device 4294967295 is out of range: facerec's cuda-device accepts 0 to 2147483647"
        );
        std::fs::write(&path, "cuda-device: -1\n").unwrap();
        let err = format!(
            "{:#}",
            Config::from_args(["facerec-launcher", "--config", file]).unwrap_err()
        );
        assert!(
            err.starts_with(&format!(
                "config {} is invalid: cuda-device: ",
                path.display()
            )),
            "{err}"
        );
    }

    /// The launcher sets provider, model-variant and redact by nick from its typed settings:
    /// every nick of the element's properties has a value, and converts back to itself.
    #[test]
    fn typed_settings_are_the_elements_nicks() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        for nick in element_nicks("facerec", "provider").unwrap() {
            let provider: facerec_core::runtime::Provider = nick.parse().unwrap();
            assert_eq!(provider.as_str(), nick);
        }
        for nick in element_nicks("facerec", "model-variant").unwrap() {
            let variant: facerec_core::models::ModelVariant = nick.parse().unwrap();
            assert_eq!(variant.as_str(), nick);
        }
        let redact = element_nicks("facerec", "redact").unwrap();
        assert_eq!(redact.len(), 3);
        for nick in redact {
            let mode = parse_redact(&nick).unwrap();
            assert_eq!(crate::camera::settings::redact_nick(mode), nick);
        }
        let config = Config::from_args([
            "facerec-launcher",
            "--provider",
            "tensorrt",
            "--model-variant",
            "fp16",
            "--redact",
            "unknown",
        ])
        .unwrap();
        let settings = config.pipeline_settings().unwrap();
        assert_eq!(settings.provider, facerec_core::runtime::Provider::TensorRt);
        assert_eq!(
            settings.model_variant,
            Some(facerec_core::models::ModelVariant::Fp16)
        );
        assert_eq!(settings.redact_of("any"), gstfacerec::RedactMode::Unknown);
    }
}
