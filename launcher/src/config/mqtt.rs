//! The MQTT settings: the command-line flags (flattened into `config::Cli`) and the broker
//! configuration checked from them at start-up. The connection itself is the `mqtt` service's.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::ArgAction;

/// The MQTT settings, flattened into the launcher's command line (`config::Cli`).
#[derive(Debug, Clone, clap::Args)]
pub struct MqttArgs {
    /// MQTT broker: mqtt://[USER[:PASSWORD]@]HOST[:PORT] (port 1883) or mqtts://… (8883, TLS
    /// with the system's CA store and --mqtt-ca-file). Without it, MQTT is off. See docs/MQTT.md.
    #[arg(long = "mqtt", env = "FACEREC_MQTT_URL", value_name = "URL")]
    pub mqtt_url: Option<String>,
    /// File holding the MQTT password (one trailing newline is ignored), instead of the URL's:
    /// a mounted Kubernetes Secret. Needs a user name in the URL.
    #[arg(long, env = "FACEREC_MQTT_PASSWORD_FILE")]
    pub mqtt_password_file: Option<PathBuf>,
    /// PEM file of CA certificates trusted for mqtts://, on top of the system's.
    #[arg(long, env = "FACEREC_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// MQTT client id. Default: facerec-NODE_ID.
    #[arg(long, env = "FACEREC_MQTT_CLIENT_ID")]
    pub mqtt_client_id: Option<String>,
    /// This node's id in topics (facerec/NODE_ID/…) and in Home Assistant ids. Characters other
    /// than letters, digits, '-' and '_' become '_'. Default: the host name.
    #[arg(long, env = "FACEREC_MQTT_NODE_ID")]
    pub mqtt_node_id: Option<String>,
    /// The first level(s) of every topic.
    #[arg(long, env = "FACEREC_MQTT_PREFIX", default_value = "facerec")]
    pub mqtt_prefix: String,
    /// Events held while the broker cannot be reached; past this the oldest are dropped (and
    /// counted in facerec_mqtt_dropped_total).
    #[arg(long, env = "FACEREC_MQTT_BUFFER", default_value_t = 1000)]
    pub mqtt_buffer: usize,
    /// Home Assistant MQTT discovery: a sensor per known person and two per camera.
    /// `--mqtt-discovery=false` turns it off.
    #[arg(long, env = "FACEREC_MQTT_DISCOVERY", default_value_t = true, num_args = 0..=1,
        default_missing_value = "true", action = ArgAction::Set,
        value_parser = clap::builder::BoolishValueParser::new())]
    pub mqtt_discovery: bool,
    /// Home Assistant's discovery prefix.
    #[arg(
        long,
        env = "FACEREC_MQTT_DISCOVERY_PREFIX",
        default_value = "homeassistant"
    )]
    pub mqtt_discovery_prefix: String,
}

/// The broker and everything needed to connect to it, checked at start-up.
#[derive(Clone)]
pub struct MqttConfig {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub user: Option<String>,
    /// Never shown (see the `Debug` impl and [`MqttConfig::display_url`]).
    /// Read by the MQTT service, which only the `server` feature builds.
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    pub(crate) password: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub client_id: String,
    pub node_id: String,
    pub prefix: String,
    pub buffer: usize,
    /// Home Assistant's discovery prefix, when discovery is on.
    pub discovery: Option<String>,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("broker", &self.display_url())
            .field("client_id", &self.client_id)
            .field("node_id", &self.node_id)
            .finish_non_exhaustive()
    }
}

/// A single id level: what Home Assistant allows in its discovery topics.
#[cfg(test)]
pub(crate) fn is_plain_id(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A node id as Home Assistant's discovery topics allow it: every character other than ASCII
/// letters, digits, '-' and '_' becomes '_', so that a Kubernetes node name such as
/// `cam1.site.lan` (the downward API's spec.nodeName) is `cam1_site_lan`.
pub(crate) fn node_id_of(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

pub(crate) fn check_prefix(setting: &str, prefix: &str) -> Result<()> {
    if prefix.is_empty()
        || prefix.starts_with('$')
        || prefix.split('/').any(|level| level.is_empty())
        || prefix.contains(['+', '#'])
    {
        bail!(
            "{setting} {prefix:?} is not a valid topic prefix: use levels separated by '/', none empty, without '+', '#' or a leading '$'"
        );
    }
    if let Some(c) = prefix.chars().find(|c| !is_topic_text(*c)) {
        bail!(
            "{setting} {prefix:?} is not a valid topic prefix: MQTT does not allow U+{:04X} in a topic",
            c as u32
        );
    }
    Ok(())
}

/// A character MQTT allows in a topic: not U+0000, not a C0 or C1 control (U+0001–U+001F,
/// U+007F–U+009F) and not a Unicode noncharacter (U+FDD0–U+FDEF, and U+FFFE and U+FFFF in every
/// plane). MQTT 3.1.1 §1.5.3 and MQTT 5 §1.5.4 let a server refuse these, and mosquitto does: it
/// closes the connection on such a topic as a malformed packet. (Surrogates cannot occur in a
/// Rust string.)
pub(crate) fn is_topic_text(c: char) -> bool {
    let n = u32::from(c);
    !(c.is_control() || (0xFDD0..=0xFDEF).contains(&n) || n & 0xFFFE == 0xFFFE)
}

impl MqttConfig {
    /// The settings, checked; `None` when MQTT is off.
    pub fn from_args(args: &MqttArgs) -> Result<Option<MqttConfig>> {
        let Some(text) = args.mqtt_url.as_deref().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        // Never echo the URL itself: it may hold a password.
        let url = url::Url::parse(text.trim()).map_err(|e| {
            anyhow::anyhow!(
                "--mqtt: not a URL ({e}); expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]"
            )
        })?;
        let tls = match url.scheme() {
            "mqtt" | "tcp" => false,
            "mqtts" | "ssl" => true,
            other => bail!("--mqtt: unsupported scheme {other}://; use mqtt:// or mqtts://"),
        };
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .context("--mqtt: the URL has no host")?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            bail!("--mqtt: the URL must be only mqtt[s]://[USER[:PASSWORD]@]HOST[:PORT]");
        }
        let port = url.port().unwrap_or(if tls { 8883 } else { 1883 });
        let decode = |s: &str| {
            percent_decode(s).context("--mqtt: the user name or password is not valid UTF-8")
        };
        let user = Some(decode(url.username())?).filter(|u| !u.is_empty());
        let mut password = url.password().map(decode).transpose()?;
        if let Some(path) = &args.mqtt_password_file {
            let text = std::fs::read_to_string(path).with_context(|| {
                format!("cannot read the MQTT password file {}", path.display())
            })?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            password = Some(text.strip_suffix('\r').unwrap_or(text).to_string());
        }
        if password.is_some() && user.is_none() {
            bail!("--mqtt: a password needs a user name: mqtt://USER@HOST");
        }
        let node_id = match &args.mqtt_node_id {
            Some(id) => node_id_of(id),
            None => node_id_of(&gethostname::gethostname().to_string_lossy()),
        };
        if node_id.is_empty() || node_id.len() > 253 {
            bail!("--mqtt-node-id must be 1 to 253 characters (default: the host name)");
        }
        check_prefix("--mqtt-prefix", &args.mqtt_prefix)?;
        if args.mqtt_discovery {
            check_prefix("--mqtt-discovery-prefix", &args.mqtt_discovery_prefix)?;
        }
        let client_id = args
            .mqtt_client_id
            .clone()
            .unwrap_or_else(|| format!("facerec-{node_id}"));
        if client_id.is_empty() || client_id.len() > 65_535 {
            bail!("--mqtt-client-id must not be empty");
        }
        let config = MqttConfig {
            host,
            port,
            tls,
            user,
            password,
            ca_file: args.mqtt_ca_file.clone(),
            client_id,
            node_id,
            prefix: args.mqtt_prefix.clone(),
            buffer: args.mqtt_buffer,
            discovery: args
                .mqtt_discovery
                .then(|| args.mqtt_discovery_prefix.clone()),
        };
        if tls {
            // A bad CA file is a start-up error, not a warning per reconnect.
            config.tls_config()?;
        } else if config.ca_file.is_some() {
            bail!("--mqtt-ca-file is only used with mqtts://");
        }
        Ok(Some(config))
    }

    /// The broker's URL without the password, for logs and errors.
    pub fn display_url(&self) -> String {
        let scheme = if self.tls { "mqtts" } else { "mqtt" };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match &self.user {
            Some(user) => format!("{scheme}://{user}@{host}:{}", self.port),
            None => format!("{scheme}://{host}:{}", self.port),
        }
    }

    pub(crate) fn tls_config(&self) -> Result<rustls::ClientConfig> {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        let native = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(native.certs);
        if let Some(path) = &self.ca_file {
            let mut added = 0;
            let certs = CertificateDer::pem_file_iter(path)
                .with_context(|| format!("cannot read --mqtt-ca-file {}", path.display()))?;
            for cert in certs {
                let cert = cert.with_context(|| {
                    format!("--mqtt-ca-file {} is not valid PEM", path.display())
                })?;
                roots.add(cert).with_context(|| {
                    format!(
                        "--mqtt-ca-file {} holds an unusable certificate",
                        path.display()
                    )
                })?;
                added += 1;
            }
            if added == 0 {
                bail!("--mqtt-ca-file {} holds no PEM certificate", path.display());
            }
        }
        if roots.is_empty() {
            bail!("mqtts:// needs CA certificates: the system has none; give --mqtt-ca-file");
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Ok(rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .context("TLS setup")?
            .with_root_certificates(roots)
            .with_no_client_auth())
    }
}

pub(crate) fn percent_decode(s: &str) -> Result<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    Ok(String::from_utf8(out)?)
}
