//! Camera sources: the URIs the operator and the API may name ([`Source`], [`Trust`]), camera
//! names, and the ESP32 registration's URI.
//!
//! Domain layer: imports nothing of the launcher. Its only I/O is what parsing a `file:` source
//! must check (the file exists, and resolves inside the media folder for the API).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use url::Url;

use super::redact::redact_uri;

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

pub const SCHEMES: &str = "v4l2, nvargus, file, http, https, rtsp, test, pipeline";

/// Splits `FACEREC_SOURCES` into its `NAME=URI` entries. A comma separates two entries only
/// where a `NAME=` and one of [`SCHEMES`] follow it, so the caps in a `pipeline:` description
/// (`video/x-raw,format=NV12`) stay in that description.
pub fn split_source_list(list: &str) -> Vec<String> {
    let starts_an_entry = |rest: &str| {
        rest.trim_start()
            .split_once('=')
            .is_some_and(|(name, uri)| {
                !name.is_empty()
                    && !name.contains(|c: char| c.is_whitespace() || c == '!')
                    && SCHEMES
                        .split(", ")
                        .any(|scheme| uri.starts_with(&format!("{scheme}:")))
            })
    };
    let mut entries = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(',') {
        if starts_an_entry(&list[i + 1..]) {
            entries.push(list[start..i].to_string());
            start = i + 1;
        }
    }
    entries.push(list[start..].to_string());
    entries
}

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
        // Errors show the URI without its password or query values.
        let shown = redact_uri(uri);
        let url = Url::parse(uri)
            .with_context(|| format!("{shown:?} is not a URI (expected one of {SCHEMES})"))?;
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
                    bail!("v4l2 source {shown}: expected v4l2:///dev/videoN");
                }
                Source::V4l2 { device }
            }
            "nvargus" => {
                let sensor = url.host_str().unwrap_or("0");
                let sensor = sensor.parse().with_context(|| {
                    format!("nvargus source {shown}: expected nvargus://SENSOR_ID")
                })?;
                Source::Nvargus { sensor }
            }
            "file" => {
                let path = url.to_file_path().map_err(|_| {
                    anyhow::anyhow!("file source {shown}: not a local absolute path")
                })?;
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
                    bail!("http source {shown}: no host");
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
                    bail!("test source {shown}: invalid pattern");
                }
                Source::Test { pattern }
            }
            other => {
                bail!("unknown source scheme '{other}' in {shown} (expected one of {SCHEMES})")
            }
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
