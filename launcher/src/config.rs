//! Settings from flags, environment variables (the demo's names too) and a YAML config file,
//! in that order of precedence, and the camera sources they name.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Parser;
use gst::prelude::*;
use serde::Deserialize;
use url::Url;

#[derive(Debug, Parser)]
#[command(
    name = "facerec-launcher",
    version,
    about = "Serve facerec-annotated camera streams over HTTP"
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "FACEREC_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// A camera, as NAME=URI (repeatable). Schemes: v4l2:///dev/video0, nvargus://0,
    /// file:///clip.mp4?loop=true, http://host/stream, rtsp://host/path, test://, pipeline:DESC.
    #[arg(long = "source", value_name = "NAME=URI")]
    pub sources: Vec<String>,
    /// YAML config file (the same settings; flags and environment variables win).
    #[arg(long, env = "FACEREC_CONFIG")]
    pub config: Option<PathBuf>,
    /// The gallery (model.data). The demo's MODEL_FILENAME is honoured too.
    #[arg(long, env = "FACEREC_GALLERY")]
    pub gallery: Option<PathBuf>,
    #[arg(long, env = "FACEREC_DETECTOR")]
    pub detector: Option<PathBuf>,
    #[arg(long, env = "FACEREC_RECOGNIZER")]
    pub recognizer: Option<PathBuf>,
    /// ONNX Runtime execution provider: auto, cpu, cuda, tensorrt.
    #[arg(long, env = "FACEREC_PROVIDER")]
    pub provider: Option<String>,
    /// Face detection score threshold.
    #[arg(long, env = "FACEREC_DETECT_THRESHOLD")]
    pub detect_threshold: Option<f32>,
    /// Largest embedding distance that still counts as a match.
    #[arg(long, env = "FACEREC_MATCH_THRESHOLD")]
    pub match_threshold: Option<f32>,
    /// How much closer the nearest person must be than the second-nearest for a name
    /// (default: the facerec element's).
    #[arg(long, env = "FACEREC_MATCH_MARGIN")]
    pub match_margin: Option<f32>,
    /// Quality (0-1: size, sharpness, pose) below which a face is not used for naming
    /// (default: the facerec element's).
    #[arg(long, env = "FACEREC_MIN_QUALITY")]
    pub min_quality: Option<f32>,
    /// Evidence a track's vote must gather for a person (quality x match strength, summed over
    /// its attempts) before their name is shown (default: the facerec element's).
    #[arg(long, env = "FACEREC_CONFIDENCE_BAR")]
    pub confidence_bar: Option<f32>,
    /// Run detection on every Nth frame (tracking carries faces in between).
    #[arg(long, env = "FACEREC_DETECT_INTERVAL")]
    pub detect_interval: Option<u32>,
    /// Pixelate faces in the served streams: none, unknown (every face not named from the
    /// gallery) or all. The default for every camera; a camera in the config file may set its own.
    #[arg(long, env = "FACEREC_REDACT")]
    pub redact: Option<String>,
    /// TrueType/OpenType font for the name labels (for scripts the default font lacks).
    #[arg(long, env = "FACEREC_FONT")]
    pub font: Option<PathBuf>,
    /// Frames per second fed to recognition (the demo's VIDEO_PROCESSING_FPS); 0 = all.
    #[arg(long, env = "VIDEO_PROCESSING_FPS")]
    pub processing_fps: Option<u32>,
    /// Cap on the rate of the served MJPEG streams.
    #[arg(long, env = "FACEREC_MAX_FPS")]
    pub max_fps: Option<u32>,
    /// Most concurrent stream clients over all cameras.
    #[arg(long, env = "FACEREC_MAX_CLIENTS")]
    pub max_clients: Option<usize>,
    /// JPEG quality of the served frames.
    #[arg(long, env = "FACEREC_JPEG_QUALITY")]
    pub jpeg_quality: Option<u32>,
    /// Most cameras, however they are added (sources at start, POST /api/cameras, /register).
    #[arg(long, env = "FACEREC_MAX_CAMERAS")]
    pub max_cameras: Option<usize>,
    /// Most open HTTP connections (stream clients included); more are closed at once.
    #[arg(long, env = "FACEREC_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's headers before the connection is closed.
    #[arg(long, env = "FACEREC_HEADER_TIMEOUT")]
    pub header_timeout: Option<u64>,
    /// Folder that file:// cameras added through the API may read from (none by default).
    #[arg(long, env = "FACEREC_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,
    /// Announce the launcher over mDNS as microshift-cam-reg.local (_http._tcp).
    #[arg(long, env = "FACEREC_MDNS")]
    pub mdns: bool,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "FACEREC_LOG_JSON")]
    pub log_json: bool,
}

/// The YAML config file: every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    #[serde(default)]
    pub sources: Vec<FileSource>,
    pub gallery: Option<PathBuf>,
    pub detector: Option<PathBuf>,
    pub recognizer: Option<PathBuf>,
    pub provider: Option<String>,
    pub detect_threshold: Option<f32>,
    pub match_threshold: Option<f32>,
    pub match_margin: Option<f32>,
    pub min_quality: Option<f32>,
    pub confidence_bar: Option<f32>,
    pub detect_interval: Option<u32>,
    pub redact: Option<String>,
    pub font: Option<PathBuf>,
    pub processing_fps: Option<u32>,
    pub max_fps: Option<u32>,
    pub max_clients: Option<usize>,
    pub jpeg_quality: Option<u32>,
    pub max_cameras: Option<usize>,
    pub max_connections: Option<usize>,
    pub header_timeout: Option<u64>,
    pub media_dir: Option<PathBuf>,
    pub mdns: Option<bool>,
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
    pub listen: SocketAddr,
    /// (name, URI as given, parsed source)
    pub sources: Vec<(String, String, Source)>,
    pub gallery: Option<PathBuf>,
    pub detector: Option<PathBuf>,
    pub recognizer: Option<PathBuf>,
    pub provider: String,
    pub detect_threshold: f32,
    pub match_threshold: f32,
    /// `facerec` properties set only when given, so that the element's default stays their
    /// one declaration: (property, value).
    pub element_overrides: Vec<(&'static str, f32)>,
    pub detect_interval: u32,
    /// The `redact` of cameras that do not set their own.
    pub redact: String,
    /// Per-camera `redact` from the config file.
    pub camera_redact: BTreeMap<String, String>,
    pub font: Option<PathBuf>,
    pub processing_fps: u32,
    pub max_fps: u32,
    pub max_clients: usize,
    pub jpeg_quality: u32,
    pub max_cameras: usize,
    pub max_connections: usize,
    pub header_timeout: u64,
    pub media_dir: Option<PathBuf>,
    pub mdns: bool,
    pub api_token: Option<String>,
}

fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

impl Config {
    pub fn load(cli: Cli) -> Result<Config> {
        let file: FileConfig = match &cli.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config {}", path.display()))?;
                serde_yaml_ng::from_str(&text)
                    .with_context(|| format!("config {} is invalid", path.display()))?
            }
            None => FileConfig::default(),
        };
        let mut specs: Vec<(String, String)> = Vec::new();
        for s in &cli.sources {
            let (name, uri) = s
                .split_once('=')
                .with_context(|| format!("--source {s}: expected NAME=URI"))?;
            specs.push((name.to_string(), uri.to_string()));
        }
        if let Some(list) = std::env::var("FACEREC_SOURCES")
            .ok()
            .filter(|v| !v.trim().is_empty())
        {
            for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                let (name, uri) = s
                    .split_once('=')
                    .with_context(|| format!("FACEREC_SOURCES entry {s}: expected NAME=URI"))?;
                specs.push((name.to_string(), uri.to_string()));
            }
        }
        if specs.is_empty() {
            specs.extend(file.sources.iter().map(|s| (s.name.clone(), s.uri.clone())));
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
        let api_token = std::env::var("FACEREC_API_TOKEN")
            .ok()
            .filter(|t| !t.is_empty());
        Ok(Config {
            listen: cli
                .listen
                .or(file.listen)
                .unwrap_or_else(|| "0.0.0.0:8080".parse().expect("valid")),
            sources,
            gallery: cli
                .gallery
                .or_else(|| env_path("MODEL_FILENAME"))
                .or(file.gallery),
            detector: cli.detector.or(file.detector),
            recognizer: cli.recognizer.or(file.recognizer),
            provider: cli
                .provider
                .or(file.provider)
                .unwrap_or_else(|| "auto".into()),
            detect_threshold: cli
                .detect_threshold
                .or(file.detect_threshold)
                .unwrap_or(0.85),
            match_threshold: cli.match_threshold.or(file.match_threshold).unwrap_or(0.6),
            element_overrides: [
                ("match-margin", cli.match_margin.or(file.match_margin)),
                ("min-quality", cli.min_quality.or(file.min_quality)),
                ("confidence-bar", cli.confidence_bar.or(file.confidence_bar)),
            ]
            .into_iter()
            .filter_map(|(property, value)| Some((property, value?)))
            .collect(),
            // No clamping here: `validate` refuses what is out of range instead.
            detect_interval: cli.detect_interval.or(file.detect_interval).unwrap_or(1),
            redact: cli.redact.or(file.redact).unwrap_or_else(|| "none".into()),
            camera_redact: file
                .sources
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.redact.clone()?)))
                .collect(),
            font: cli.font.or(file.font),
            processing_fps: cli.processing_fps.or(file.processing_fps).unwrap_or(0),
            max_fps: cli.max_fps.or(file.max_fps).unwrap_or(15),
            max_clients: cli.max_clients.or(file.max_clients).unwrap_or(32),
            jpeg_quality: cli.jpeg_quality.or(file.jpeg_quality).unwrap_or(80),
            max_cameras: cli.max_cameras.or(file.max_cameras).unwrap_or(16),
            max_connections: cli.max_connections.or(file.max_connections).unwrap_or(256),
            header_timeout: cli.header_timeout.or(file.header_timeout).unwrap_or(10),
            media_dir: cli.media_dir.or(file.media_dir),
            mdns: cli.mdns || file.mdns.unwrap_or(false),
            api_token,
        })
    }
}

/// Settings that are element properties: (setting, element factory, property). Their ranges are
/// the elements' own `ParamSpec` bounds, read at run time, so they are declared only there.
pub const ELEMENT_SETTINGS: [(&str, &str, &str); 7] = [
    ("detect-threshold", "facerec", "detect-threshold"),
    ("match-threshold", "facerec", "match-threshold"),
    ("match-margin", "facerec", "match-margin"),
    ("min-quality", "facerec", "min-quality"),
    ("confidence-bar", "facerec", "confidence-bar"),
    ("detect-interval", "facerec", "detect-interval"),
    ("jpeg-quality", "jpegenc", "quality"),
];

/// The launcher's own settings and their inclusive ranges: declared here and nowhere else.
pub const LAUNCHER_RANGES: [(&str, u64, u64); 5] = [
    ("processing-fps", 0, 1000),
    ("max-fps", 1, 1000),
    ("max-clients", 1, 100_000),
    ("max-cameras", 1, 1024),
    ("max-connections", 1, 100_000),
];

pub const DEFAULT_MAX_CAMERAS: usize = 16;
/// Well above `--max-clients`' default of 32 streams, far below what a slowloris opens.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
pub const DEFAULT_HEADER_TIMEOUT: u64 = 10;

/// Seconds for `--header-timeout`: declared with the other launcher-only ranges.
pub const HEADER_TIMEOUT_RANGE: (&str, u64, u64) = ("header-timeout", 1, 3600);

/// The bounds of a numeric `ParamSpec`, whatever its numeric type.
pub fn pspec_range(pspec: &gst::glib::ParamSpec) -> Option<(f64, f64)> {
    use gst::glib;
    if let Some(p) = pspec.downcast_ref::<glib::ParamSpecFloat>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecDouble>() {
        Some((p.minimum(), p.maximum()))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecInt>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else if let Some(p) = pspec.downcast_ref::<glib::ParamSpecUInt64>() {
        Some((p.minimum() as f64, p.maximum() as f64))
    } else {
        pspec
            .downcast_ref::<glib::ParamSpecInt64>()
            .map(|p| (p.minimum() as f64, p.maximum() as f64))
    }
}

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

/// `--help` with every range spelled out, read from the elements (after `gst::init`) and from
/// [`LAUNCHER_RANGES`]. Without GStreamer the help simply lacks the element ranges.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let (client, overall) = (
        crate::http::RateLimiter::REGISTER_PER_CLIENT,
        crate::http::RateLimiter::REGISTER_OVERALL,
    );
    let mut cmd = Cli::command().after_help(format!(
        "FACEREC_API_TOKEN (environment only): when set, POST/DELETE /api/cameras, POST \
/api/gallery/reload and GET /register require it, as `Authorization: Bearer TOKEN` or, for \
/register (ESP32 firmware that cannot send headers), as a `key=TOKEN` query parameter. Without \
it, /register still refuses to change an existing camera's token. /register is rate-limited \
per client (a burst of {}, then 1 every {} s) and overall (a burst of {}, then 1 every {} s), \
with 429 and Retry-After.\n\nEvery range above is checked at start-up: a value outside it \
is one error line and exit 1.",
        client.burst,
        client.refill.as_secs(),
        overall.burst,
        overall.refill.as_secs()
    ));
    let mut ranges: Vec<(String, String)> = Vec::new();
    for (setting, factory, property) in ELEMENT_SETTINGS {
        if let Ok((min, max)) = element_range(factory, property) {
            ranges.push((
                setting.to_string(),
                format!("{min} to {max}, the range of {factory}'s {property}"),
            ));
        }
    }
    for (setting, min, max) in LAUNCHER_RANGES.into_iter().chain([HEADER_TIMEOUT_RANGE]) {
        ranges.push((setting.to_string(), format!("{min} to {max}")));
    }
    for (setting, default) in [
        ("max-cameras", DEFAULT_MAX_CAMERAS as u64),
        ("max-connections", DEFAULT_MAX_CONNECTIONS as u64),
        ("header-timeout", DEFAULT_HEADER_TIMEOUT),
    ] {
        if let Some((_, text)) = ranges.iter_mut().find(|(s, _)| s == setting) {
            text.push_str(&format!("; default {default}"));
        }
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
    /// Checks every numeric setting against its range: the facerec and jpegenc elements' own
    /// bounds for the element properties, [`LAUNCHER_RANGES`] for the rest. Needs `gst::init`
    /// and the facerec element registered.
    pub fn validate(&self) -> Result<()> {
        let nicks = element_nicks("facerec", "redact")?;
        for (what, value) in std::iter::once(("redact".to_string(), &self.redact)).chain(
            self.camera_redact
                .iter()
                .map(|(camera, v)| (format!("redact of camera {camera}"), v)),
        ) {
            if !nicks.iter().any(|n| n == value) {
                bail!("{what} = {value:?} is not one of {}", nicks.join(", "));
            }
        }
        let fixed = [
            ("detect-threshold", self.detect_threshold as f64),
            ("match-threshold", self.match_threshold as f64),
            ("detect-interval", self.detect_interval as f64),
            ("jpeg-quality", self.jpeg_quality as f64),
        ];
        let given = fixed.into_iter().chain(
            self.element_overrides
                .iter()
                .map(|&(property, value)| (property, value as f64)),
        );
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
        let launcher_values = [
            self.processing_fps as u64,
            self.max_fps as u64,
            self.max_clients as u64,
            self.max_cameras as u64,
            self.max_connections as u64,
        ];
        for ((setting, min, max), value) in LAUNCHER_RANGES
            .into_iter()
            .chain([HEADER_TIMEOUT_RANGE])
            .zip(launcher_values.into_iter().chain([self.header_timeout]))
        {
            if !(min..=max).contains(&value) {
                return Err(out_of_range(
                    setting,
                    value,
                    &format!("it must be {min} to {max}"),
                ));
            }
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

/// Registers the facerec element if GST_PLUGIN_PATH did not provide it: from then on the copy
/// linked into this binary is used.
pub fn ensure_facerec_plugin() -> Result<()> {
    if gst::ElementFactory::find("facerec").is_none() {
        gstfacerec::plugin_register_static().context("cannot register the facerec plugin")?;
    }
    Ok(())
}

/// Camera names appear in URLs and metric labels: keep them to a safe alphabet.
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 48
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok {
        bail!(
            "invalid camera name {name:?}: use 1-48 letters, digits, '-' or '_', starting with a letter or digit"
        );
    }
    Ok(())
}

/// Who asked for a source: the operator (flags, config file) may use any scheme; the HTTP API
/// only network cameras, test patterns, video devices and files under the media folder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust<'a> {
    Operator,
    Api { media_dir: Option<&'a Path> },
}

/// A camera source.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    V4l2 { device: PathBuf },
    Nvargus { sensor: u32 },
    File { path: PathBuf, looped: bool },
    Http { url: String },
    Rtsp { url: String },
    Test { pattern: String },
    Pipeline { description: String },
}

const SCHEMES: &str = "v4l2, nvargus, file, http, https, rtsp, test, pipeline";

impl Source {
    pub fn is_live(&self) -> bool {
        !matches!(self, Source::File { .. })
    }

    pub fn parse(uri: &str, trust: Trust<'_>) -> Result<Source> {
        if let Some(description) = uri.strip_prefix("pipeline:") {
            if trust != Trust::Operator {
                bail!("pipeline: sources can only be set by the operator, not through the API");
            }
            if description.trim().is_empty() {
                bail!("pipeline: needs a gst-launch description");
            }
            return Ok(Source::Pipeline {
                description: description.trim().to_string(),
            });
        }
        let url = Url::parse(uri)
            .with_context(|| format!("{uri:?} is not a URI (expected one of {SCHEMES})"))?;
        let query = |key: &str| {
            url.query_pairs()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.into_owned())
        };
        let source = match url.scheme() {
            "v4l2" => {
                let device = PathBuf::from(url.path());
                let is_video_device = device
                    .to_str()
                    .and_then(|d| d.strip_prefix("/dev/video"))
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if !is_video_device {
                    bail!("v4l2 source {uri}: expected v4l2:///dev/videoN");
                }
                Source::V4l2 { device }
            }
            "nvargus" => {
                let sensor = url.host_str().unwrap_or("0");
                let sensor = sensor.parse().with_context(|| {
                    format!("nvargus source {uri}: expected nvargus://SENSOR_ID")
                })?;
                Source::Nvargus { sensor }
            }
            "file" => {
                let path = url
                    .to_file_path()
                    .map_err(|_| anyhow::anyhow!("file source {uri}: not a local absolute path"))?;
                if let Trust::Api { media_dir } = trust {
                    check_media_path(&path, media_dir)?;
                }
                if !path.is_file() {
                    bail!("file source {}: no such file", path.display());
                }
                let looped = matches!(
                    query("loop").as_deref(),
                    Some("true") | Some("1") | Some("yes")
                );
                Source::File { path, looped }
            }
            "http" | "https" => {
                if url.host_str().is_none() {
                    bail!("http source {uri}: no host");
                }
                Source::Http {
                    url: url.to_string(),
                }
            }
            "rtsp" | "rtsps" => Source::Rtsp {
                url: url.to_string(),
            },
            "test" => {
                let pattern = query("pattern").unwrap_or_else(|| "ball".into());
                if !pattern
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    bail!("test source {uri}: invalid pattern");
                }
                Source::Test { pattern }
            }
            other => bail!("unknown source scheme '{other}' in {uri} (expected one of {SCHEMES})"),
        };
        Ok(source)
    }
}

/// Files named through the API must resolve, links and all, inside the media folder.
fn check_media_path(path: &Path, media_dir: Option<&Path>) -> Result<()> {
    let Some(media_dir) = media_dir else {
        bail!("file sources through the API are disabled (start the launcher with --media-dir)");
    };
    let root = media_dir
        .canonicalize()
        .with_context(|| format!("media folder {}", media_dir.display()))?;
    let resolved = path
        .canonicalize()
        .with_context(|| format!("file source {}", path.display()))?;
    if !resolved.starts_with(&root) {
        bail!(
            "file source {} is outside the media folder {}",
            path.display(),
            root.display()
        );
    }
    Ok(())
}

/// The old ESP32 registration: `ip` must be an IP address (optionally with a port), and the
/// token a plain word, so that the URI built from them cannot point anywhere else.
pub fn esp32_camera(ip: &str, token: &str) -> Result<(String, Source)> {
    let host = if let Ok(addr) = ip.parse::<IpAddr>() {
        match addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        }
    } else if let Ok(addr) = ip.parse::<SocketAddr>() {
        addr.to_string()
    } else {
        bail!("ip {ip:?} is not an IP address");
    };
    if token.len() > 128
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~".contains(&b))
    {
        bail!("token must be at most 128 letters, digits or -_.~");
    }
    let name: String = format!("esp32-{host}")
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .trim_end_matches('-')
        .to_string();
    let url = format!("http://{host}/stream?token={token}");
    Ok((name, Source::Http { url }))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn flags_win_over_the_config_file() {
        let dir = std::env::temp_dir().join(format!("facerec-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("launcher.yaml");
        std::fs::write(
            &path,
            "listen: 127.0.0.1:9000\nmax-fps: 5\ngallery: /models/model.data\nsources:\n  - name: door\n    uri: test://?pattern=snow\n",
        )
        .unwrap();
        let cli = Cli::parse_from([
            "facerec-launcher",
            "--config",
            path.to_str().unwrap(),
            "--max-fps",
            "20",
        ]);
        let config = Config::load(cli).unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.max_fps, 20, "the flag wins");
        assert_eq!(config.sources.len(), 1);
        assert_eq!(
            config.sources[0].2,
            Source::Test {
                pattern: "snow".into()
            }
        );

        std::fs::write(&path, "listen: 127.0.0.1:9000\nmax_fps: 5\n").unwrap();
        let cli = Cli::parse_from(["facerec-launcher", "--config", path.to_str().unwrap()]);
        let err = format!("{:#}", Config::load(cli).unwrap_err());
        assert!(
            err.starts_with(&format!(
                "config {} is invalid: unknown field `max_fps`",
                path.display()
            )),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The camera cap comes from the config file too and counts the file's sources.
    #[test]
    fn the_config_file_cap_counts_its_sources() {
        gst::init().unwrap();
        ensure_facerec_plugin().unwrap();
        let dir = std::env::temp_dir().join(format!("facerec-cap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("launcher.yaml");
        std::fs::write(
            &path,
            "max-cameras: 1\nsources:\n  - name: a\n    uri: test://\n  - name: b\n    uri: test://\n",
        )
        .unwrap();
        let cli = Cli::parse_from(["facerec-launcher", "--config", path.to_str().unwrap()]);
        let config = Config::load(cli).unwrap();
        assert_eq!(config.max_cameras, 1);
        assert_eq!(
            config.validate().unwrap_err().to_string(),
            "2 cameras are configured but max-cameras is 1"
        );
        std::fs::write(&path, "jpeg-quality: 101\n").unwrap();
        let cli = Cli::parse_from(["facerec-launcher", "--config", path.to_str().unwrap()]);
        assert_eq!(
            Config::load(cli)
                .unwrap()
                .validate()
                .unwrap_err()
                .to_string(),
            "jpeg-quality 101 is out of range: jpegenc's quality accepts 0 to 100"
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
}
