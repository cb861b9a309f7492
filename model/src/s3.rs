//! The model registry on S3: `publish` uploads a gallery as a new version, `pull` downloads one.
//!
//! Layout under `s3://BUCKET/PREFIX/`, as the original demo's notebook wrote it:
//!
//! ```text
//! PREFIX/2411241530/model.data    one folder per version, named by the UTC time (%y%m%d%H%M)
//! PREFIX/latest                   a small text object holding the newest version's name
//! ```
//!
//! Configuration comes from the usual AWS variables, so RHODS data connections, MinIO, Ceph/ODF
//! and AWS all work: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION` or `AWS_DEFAULT_REGION`, and the endpoint from `AWS_ENDPOINT_URL_S3`,
//! `AWS_ENDPOINT_URL` or `AWS_S3_ENDPOINT` (the name RHODS data connections use). A custom
//! endpoint is addressed path-style (`http://host/bucket/key`), which every S3 clone supports;
//! AWS itself is addressed virtual-host style.
//!
//! HTTPS endpoints are checked against the system's CA store plus an optional PEM bundle, from
//! `--ca-bundle` or `AWS_CA_BUNDLE` (the AWS convention), for a MinIO or ODF endpoint signed by
//! a private CA.
//!
//! `rusty-s3` builds and signs the requests (AWS Signature Version 4 in the query string, which
//! AWS, MinIO and Ceph accept) and `ureq` sends them: no async runtime and no SDK, for a tool
//! that moves one small file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use facerec_core::files::write_atomically;
use facerec_core::gallery::Gallery;
use rusty_s3::actions::{GetObject, PutObject};
use rusty_s3::{Bucket, S3Action, UrlStyle};
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};

/// The object a version folder holds.
pub const MODEL_OBJECT: &str = "model.data";
/// The pointer object, beside the version folders.
pub const LATEST_OBJECT: &str = "latest";
/// Galleries are kilobytes to a few megabytes; nothing larger than a loadable gallery is
/// buffered.
const MAX_OBJECT_BYTES: u64 = facerec_core::gallery::MAX_GALLERY_BYTES;

/// `s3://BUCKET/PREFIX`, split.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    pub bucket: String,
    /// Without leading or trailing slashes; may be empty.
    pub prefix: String,
}

impl S3Location {
    pub fn parse(url: &str) -> Result<S3Location> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| anyhow!("{url}: not an S3 URL (expected s3://BUCKET/PREFIX)"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            bail!("{url}: no bucket name (expected s3://BUCKET/PREFIX)");
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|s| s == "." || s == "..") {
            bail!("{url}: '.' and '..' are not allowed in the prefix");
        }
        Ok(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        })
    }

    /// The key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    pub fn url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Splits a trailing version (ten digits, `latest`, or a name given with --version) off a
    /// pull URL: `s3://b/models/2411241530` is version 2411241530 of `s3://b/models`.
    fn split_version(&self) -> (S3Location, Option<String>) {
        match self.prefix.rsplit_once('/').unwrap_or(("", &self.prefix)) {
            (parent, last) if is_timestamp_version(last) || last == LATEST_OBJECT => (
                S3Location {
                    bucket: self.bucket.clone(),
                    prefix: parent.to_string(),
                },
                (last != LATEST_OBJECT).then(|| last.to_string()),
            ),
            _ => (self.clone(), None),
        }
    }
}

fn is_timestamp_version(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_digit())
}

/// A version name is one path segment: letters, digits, `.`, `_`, `-`; not `latest`.
pub fn check_version(version: &str) -> Result<()> {
    let ok = !version.is_empty()
        && version.len() <= 128
        && version != LATEST_OBJECT
        && !version.starts_with('.')
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        bail!(
            "invalid version {version:?}: use letters, digits, '.', '_' or '-' (not 'latest'), e.g. 2411241530"
        );
    }
    Ok(())
}

/// The version name for a publish at `unix_secs`: the UTC time as `%y%m%d%H%M`.
pub fn version_for(unix_secs: u64) -> String {
    let t = i64::try_from(unix_secs)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .unwrap_or(jiff::Timestamp::MAX);
    t.strftime("%y%m%d%H%M").to_string()
}

/// The version name for a publish now.
pub fn version_now() -> String {
    jiff::Timestamp::now().strftime("%y%m%d%H%M").to_string()
}

/// An access key, with its secret and optional session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub key: String,
    pub secret: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print the secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Endpoint, region, credentials and extra CAs, as read from the environment.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<Credentials>,
    /// A PEM file of CAs trusted besides the system's (`AWS_CA_BUNDLE`, or `--ca-bundle`).
    pub ca_bundle: Option<PathBuf>,
}

impl S3Config {
    pub fn from_env() -> S3Config {
        S3Config::from_vars(|name| std::env::var(name).ok())
    }

    /// Like `from_env`, reading variables with `var` (empty values count as unset).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> S3Config {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let endpoint = ["AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "AWS_S3_ENDPOINT"]
            .iter()
            .find_map(|name| var(name));
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .unwrap_or_else(|| "us-east-1".to_string());
        let credentials = match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            (Some(key), Some(secret)) => Some(Credentials {
                key,
                secret,
                session_token: var("AWS_SESSION_TOKEN"),
            }),
            _ => None,
        };
        S3Config {
            endpoint,
            region,
            credentials,
            ca_bundle: var("AWS_CA_BUNDLE").map(PathBuf::from),
        }
    }

    /// A `--ca-bundle` flag, when given, wins over `AWS_CA_BUNDLE`.
    pub fn with_ca_bundle(mut self, flag: Option<PathBuf>) -> S3Config {
        if flag.is_some() {
            self.ca_bundle = flag;
        }
        self
    }
}

/// How long a signed request stays valid. It is used at once; the margin covers clock skew.
const SIGNATURE_TTL: Duration = Duration::from_secs(900);

/// One bucket, with the agent that talks to it.
pub struct S3Client {
    bucket: Bucket,
    credentials: Option<rusty_s3::Credentials>,
    /// `scheme://host[:port]`, for messages.
    origin: String,
    ca_bundle: Option<PathBuf>,
    agent: ureq::Agent,
}

impl S3Client {
    pub fn new(config: &S3Config, bucket: &str) -> Result<S3Client> {
        let (endpoint, style) = match &config.endpoint {
            Some(e) => (e.clone(), UrlStyle::Path),
            // Dotted bucket names do not match AWS's wildcard certificate as a host name.
            None if bucket.contains('.') => (
                format!("https://s3.{}.amazonaws.com", config.region),
                UrlStyle::Path,
            ),
            None => (
                format!("https://s3.{}.amazonaws.com", config.region),
                UrlStyle::VirtualHost,
            ),
        };
        let bad = |why: &str| anyhow!("S3 endpoint {endpoint:?} {why}");
        let url: url::Url = endpoint
            .parse()
            .map_err(|_| bad("is not a URL (expected scheme://host[:port][/path])"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("is not an http:// or https:// URL"));
        }
        if url.host_str().is_none_or(str::is_empty)
            || !url.username().is_empty()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(bad("is not scheme://host[:port][/path]"));
        }
        let origin = url.origin().ascii_serialization();
        let bucket = Bucket::new(url, style, bucket.to_string(), config.region.clone())
            .map_err(|e| bad(&format!("cannot address bucket {bucket:?}: {e}")))?;
        let credentials = config.credentials.as_ref().map(|c| match &c.session_token {
            Some(token) => rusty_s3::Credentials::new_with_token(&c.key, &c.secret, token),
            None => rusty_s3::Credentials::new(&c.key, &c.secret),
        });
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(600)))
            .tls_config(tls_config(config.ca_bundle.as_deref())?)
            .build()
            .into();
        Ok(S3Client {
            bucket,
            credentials,
            origin,
            ca_bundle: config.ca_bundle.clone(),
            agent,
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// The unsigned URL of `key`: path-style or virtual-host style, as the endpoint asks.
    pub fn object_url(&self, key: &str) -> String {
        self.bucket.object_url(key).into()
    }

    /// The object's bytes, or `None` if it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let (status, body) = self.get_raw(key)?;
        match status {
            200 => Ok(Some(body)),
            404 if s3_error_code(&body).is_none_or(|c| c == "NoSuchKey") => Ok(None),
            _ => Err(self.status_error(key, status, &body)),
        }
    }

    /// Status and body of a GET, whatever the status.
    fn get_raw(&self, key: &str) -> Result<(u16, Vec<u8>)> {
        let url = self.signed(false, key);
        let mut response = self
            .agent
            .get(url.as_str())
            .call()
            .map_err(|e| self.transport_error(key, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_OBJECT_BYTES)
            .read_to_vec()
            .map_err(|e| anyhow!("{}: cannot read the response: {e}", self.s3_url(key)))?;
        Ok((status, body))
    }

    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let url = self.signed(true, key);
        let mut response = self
            .agent
            .put(url.as_str())
            .send(bytes)
            .map_err(|e| self.transport_error(key, e))?;
        let status = response.status().as_u16();
        if status == 200 {
            return Ok(());
        }
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_vec()
            .unwrap_or_default();
        Err(self.status_error(key, status, &body))
    }

    /// The URL of a GET or PUT of `key`, signed when there are credentials. Without them the
    /// request goes unsigned, which public buckets accept for reading.
    fn signed(&self, put: bool, key: &str) -> url::Url {
        let credentials = self.credentials.as_ref();
        if put {
            PutObject::new(&self.bucket, credentials, key).sign(SIGNATURE_TTL)
        } else {
            GetObject::new(&self.bucket, credentials, key).sign(SIGNATURE_TTL)
        }
    }

    fn s3_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket.name())
    }

    /// One line. The signed URL is not in it: ureq's errors name no URL.
    fn transport_error(&self, key: &str, e: ureq::Error) -> anyhow::Error {
        if let Some(cert) = certificate_error(&e) {
            let trusted = match &self.ca_bundle {
                Some(bundle) => format!("the system's store or {}", bundle.display()),
                None => "the system's store".to_string(),
            };
            return anyhow!(
                "{}: the certificate of {} is not trusted ({cert}): no CA of {trusted} signed \
                 it; give its CA as a PEM file with --ca-bundle FILE or AWS_CA_BUNDLE",
                self.s3_url(key),
                self.origin
            );
        }
        anyhow!(
            "{}: cannot reach the S3 endpoint {}: {e}",
            self.s3_url(key),
            self.origin
        )
    }

    /// One line: the object, the S3 error code and message, and a hint where one helps.
    fn status_error(&self, key: &str, status: u16, body: &[u8]) -> anyhow::Error {
        let code = s3_error_code(body);
        let message = xml_element(body, "Message");
        let mut line = format!("{}: S3 answered {status}", self.s3_url(key));
        if let Some(code) = &code {
            line.push_str(&format!(" {code}"));
        }
        if let Some(message) = message {
            line.push_str(&format!(": {message}"));
        }
        let hint = match (code.as_deref(), status) {
            (Some("InvalidAccessKeyId" | "SignatureDoesNotMatch"), _) => {
                " (check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            }
            (Some("NoSuchBucket"), _) => " (check the bucket name and AWS_ENDPOINT_URL)",
            (
                Some(
                    "AuthorizationQueryParametersError"
                    | "AuthorizationHeaderMalformed"
                    | "PermanentRedirect",
                ),
                _,
            ) => " (check AWS_REGION and AWS_ENDPOINT_URL)",
            (_, 401 | 403) if self.credentials.is_none() => {
                " (no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
            }
            (_, 401 | 403) => " (check the credentials and the bucket policy)",
            _ => "",
        };
        line.push_str(hint);
        anyhow!(line.replace(['\n', '\r'], " "))
    }
}

/// The roots for HTTPS: the system's CA store plus the bundle's certificates. Without either
/// (a bare container), the Mozilla roots ureq ships, so AWS itself still works.
fn tls_config(ca_bundle: Option<&Path>) -> Result<TlsConfig> {
    let mut roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
        .certs
        .iter()
        .map(|der| Certificate::from_der(der.as_ref()).to_owned())
        .collect();
    if let Some(path) = ca_bundle {
        let pem = std::fs::read(path)
            .map_err(|e| anyhow!("CA bundle {}: cannot read it: {e}", path.display()))?;
        let mut found = 0;
        for item in ureq::tls::parse_pem(&pem) {
            match item {
                Ok(PemItem::Certificate(cert)) => {
                    roots.push(cert);
                    found += 1;
                }
                Ok(_) => {}
                Err(e) => bail!("CA bundle {}: not a valid PEM file: {e}", path.display()),
            }
        }
        if found == 0 {
            bail!(
                "CA bundle {}: no PEM certificate (-----BEGIN CERTIFICATE-----) in it",
                path.display()
            );
        }
    }
    let roots = if roots.is_empty() {
        RootCerts::WebPki
    } else {
        RootCerts::new_with_certs(&roots)
    };
    Ok(TlsConfig::builder().root_certs(roots).build())
}

/// rustls's complaint about the server's certificate, if that is why the request failed.
fn certificate_error(e: &ureq::Error) -> Option<String> {
    let rustls_error = match e {
        ureq::Error::Rustls(r) => Some(r),
        ureq::Error::Io(io) => io.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()),
        _ => None,
    }?;
    matches!(rustls_error, rustls::Error::InvalidCertificate(_)).then(|| rustls_error.to_string())
}

/// The `<Code>` of an S3 XML error body.
fn s3_error_code(body: &[u8]) -> Option<String> {
    xml_element(body, "Code")
}

/// The text of the first `<name>…</name>` in `body`. S3 error bodies are flat and tiny, so a
/// search is enough and spares an XML parser.
fn xml_element(body: &[u8], name: &str) -> Option<String> {
    let text = std::str::from_utf8(body).ok()?;
    let open = format!("<{name}>");
    let start = text.find(&open)? + open.len();
    let end = start + text[start..].find(&format!("</{name}>"))?;
    let value = text[start..end].trim();
    (!value.is_empty()).then(|| value.to_string())
}

/// What `publish` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub version: String,
    /// `s3://BUCKET/PREFIX/VERSION/model.data`
    pub url: String,
    pub people: usize,
}

/// Validates the gallery, uploads it as `PREFIX/VERSION/model.data`, reads it back, and only
/// then moves `PREFIX/latest` to it, so `latest` never names a missing or broken version.
/// An existing version is never overwritten.
pub fn publish(
    gallery_path: &Path,
    to: &str,
    version: Option<&str>,
    config: &S3Config,
) -> Result<Published> {
    let location = S3Location::parse(to)?;
    let version = match version {
        Some(v) => v.to_string(),
        None => version_now(),
    };
    check_version(&version)?;
    // Gallery::load names the file and says what is wrong with it.
    let gallery = Gallery::load(gallery_path)?;
    let bytes = std::fs::read(gallery_path)
        .with_context(|| format!("cannot read {}", gallery_path.display()))?;
    let client = S3Client::new(config, &location.bucket)?;
    if !client.has_credentials() {
        bail!(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY to publish to {to}"
        );
    }

    let key = location.key(&format!("{version}/{MODEL_OBJECT}"));
    let (status, body) = client.get_raw(&key)?;
    match (status, s3_error_code(&body).as_deref()) {
        (200, _) => bail!(
            "{} already exists: versions are never overwritten (wait a minute, or pass --version)",
            location.url(&key)
        ),
        (404, None | Some("NoSuchKey")) => {}
        // Without s3:ListBucket, AWS answers 403 for a missing key: the check cannot tell, and
        // the upload below reports a real refusal.
        (403, Some("AccessDenied")) => {}
        _ => return Err(client.status_error(&key, status, &body)),
    }
    client.put(&key, &bytes)?;
    let stored = client
        .get(&key)?
        .ok_or_else(|| anyhow!("{}: missing right after upload", location.url(&key)))?;
    if stored != bytes {
        bail!(
            "{}: the stored object differs from {} ({} bytes stored, {} sent); `latest` was not moved",
            location.url(&key),
            gallery_path.display(),
            stored.len(),
            bytes.len()
        );
    }
    client.put(
        &location.key(LATEST_OBJECT),
        format!("{version}\n").as_bytes(),
    )?;
    Ok(Published {
        version,
        url: location.url(&key),
        people: gallery.people.len(),
    })
}

/// What `pull` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    pub version: String,
    pub url: String,
    pub people: usize,
    pub embeddings: usize,
}

/// Resolves the version (`latest` unless one is given in the URL or `version`), downloads it,
/// validates it as a gallery, and only then replaces `output`, atomically. On any error
/// `output` is left as it was.
pub fn pull(from: &str, version: Option<&str>, output: &Path, config: &S3Config) -> Result<Pulled> {
    let (location, url_version) = S3Location::parse(from)?.split_version();
    let client = S3Client::new(config, &location.bucket)?;
    let version = match (version, url_version) {
        (Some(v), _) => {
            check_version(v)?;
            v.to_string()
        }
        (None, Some(v)) => v,
        (None, None) => {
            let key = location.key(LATEST_OBJECT);
            let bytes = client.get(&key)?.ok_or_else(|| {
                anyhow!(
                    "{} not found: nothing was published under {} (or give a version)",
                    location.url(&key),
                    location.url(&location.prefix)
                )
            })?;
            let version = String::from_utf8(bytes)
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            check_version(&version)
                .with_context(|| format!("{} is not a version pointer", location.url(&key)))?;
            version
        }
    };
    let key = location.key(&format!("{version}/{MODEL_OBJECT}"));
    let url = location.url(&key);
    let bytes = client
        .get(&key)?
        .ok_or_else(|| anyhow!("{url} not found (no such version)"))?;
    let gallery = Gallery::from_bytes(&bytes).map_err(|e| {
        anyhow!(
            "{url} is not a valid gallery ({e}); {} was left untouched",
            output.display()
        )
    })?;
    write_atomically(output, &bytes)?;
    Ok(Pulled {
        version,
        url,
        people: gallery.people.len(),
        embeddings: gallery.embedding_count(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let l = S3Location::parse("s3://bucket/a/b/").unwrap();
        assert_eq!((l.bucket.as_str(), l.prefix.as_str()), ("bucket", "a/b"));
        assert_eq!(l.key("latest"), "a/b/latest");
        let l = S3Location::parse("s3://bucket").unwrap();
        assert_eq!(l.key("latest"), "latest");
        assert!(S3Location::parse("http://bucket/x").is_err());
        assert!(S3Location::parse("s3:///x").is_err());
        assert!(S3Location::parse("s3://b/x/../y").is_err());
    }

    #[test]
    fn splits_versions_off_pull_urls() {
        let split = |u: &str| {
            let (l, v) = S3Location::parse(u).unwrap().split_version();
            (l.prefix, v)
        };
        assert_eq!(
            split("s3://b/models/2411241530"),
            ("models".into(), Some("2411241530".into()))
        );
        assert_eq!(split("s3://b/models/latest"), ("models".into(), None));
        assert_eq!(split("s3://b/models"), ("models".into(), None));
        assert_eq!(
            split("s3://b/2411241530"),
            ("".into(), Some("2411241530".into()))
        );
    }

    #[test]
    fn versions_are_utc_minutes() {
        // 2024-11-24T15:30:59Z
        assert_eq!(version_for(1_732_462_259), "2411241530");
        // 2000-02-29T23:59:00Z, a leap day; 1970-01-01.
        assert_eq!(version_for(951_868_740), "0002292359");
        assert_eq!(version_for(0), "7001010000");
        // 2100 is not a leap year: 2100-03-01T00:00:00Z.
        assert_eq!(version_for(4_107_542_400), "0003010000");
        assert!(check_version("2411241530").is_ok());
        assert!(check_version("latest").is_err());
        assert!(check_version("a/b").is_err());
        assert!(check_version("..").is_err());
    }

    #[test]
    fn reads_the_usual_aws_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let c = S3Config::from_vars(vars(&[
            ("AWS_S3_ENDPOINT", "http://minio:9000"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", "s"),
        ]));
        assert_eq!(c.endpoint.as_deref(), Some("http://minio:9000"));
        assert_eq!(c.region, "eu-west-1");
        assert_eq!(c.credentials.unwrap().key, "k");
        let c = S3Config::from_vars(vars(&[
            ("AWS_ENDPOINT_URL", "http://a"),
            ("AWS_ENDPOINT_URL_S3", "http://b"),
            ("AWS_ACCESS_KEY_ID", "k"),
            ("AWS_SECRET_ACCESS_KEY", " "),
        ]));
        assert_eq!(c.endpoint.as_deref(), Some("http://b"));
        assert_eq!(c.region, "us-east-1");
        assert!(c.credentials.is_none());
    }

    #[test]
    fn extracts_s3_error_fields() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>InvalidAccessKeyId</Code>\
            <Message>The key does not exist.</Message></Error>";
        assert_eq!(s3_error_code(body).as_deref(), Some("InvalidAccessKeyId"));
        assert_eq!(
            xml_element(body, "Message").as_deref(),
            Some("The key does not exist.")
        );
        assert_eq!(s3_error_code(b"not xml"), None);
    }

    /// rusty-s3 checks its signatures against AWS's documented examples; this checks what we
    /// hand it: the key, the region in the scope, the session token, and no signing without
    /// credentials.
    #[test]
    fn signs_with_the_configured_key_region_and_token() {
        let mut config = S3Config {
            endpoint: Some("http://minio:9000".into()),
            region: "eu-west-1".into(),
            credentials: Some(Credentials {
                key: "AKIAIOSFODNN7EXAMPLE".into(),
                secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: Some("token/1".into()),
            }),
            ca_bundle: None,
        };
        let url = S3Client::new(&config, "models")
            .unwrap()
            .signed(true, "a/latest");
        assert_eq!(url.path(), "/models/a/latest");
        let query: std::collections::HashMap<_, _> = url.query_pairs().collect();
        let scope = query["X-Amz-Credential"].split('/').collect::<Vec<_>>();
        assert_eq!(scope.len(), 5, "{scope:?}");
        assert_eq!(scope[0], "AKIAIOSFODNN7EXAMPLE");
        assert_eq!(scope[2..], ["eu-west-1", "s3", "aws4_request"]);
        assert_eq!(query["X-Amz-Security-Token"], "token/1");
        assert_eq!(query["X-Amz-Expires"], "900");
        assert_eq!(query["X-Amz-Signature"].len(), 64);
        assert!(
            !url.as_str().contains("EXAMPLEKEY"),
            "the secret leaked: {url}"
        );
        config.credentials = None;
        let url = S3Client::new(&config, "models").unwrap().signed(false, "k");
        assert_eq!(url.as_str(), "http://minio:9000/models/k");
    }

    #[test]
    fn addresses_custom_endpoints_path_style() {
        let config = |endpoint: Option<&str>| S3Config {
            endpoint: endpoint.map(str::to_string),
            region: "eu-west-1".into(),
            credentials: None,
            ca_bundle: None,
        };
        let c = S3Client::new(&config(Some("http://minio:9000/")), "models").unwrap();
        assert_eq!(
            c.object_url("a b/latest"),
            "http://minio:9000/models/a%20b/latest"
        );
        // The default port is left out, as the Host header and the signature have it.
        let c = S3Client::new(&config(Some("https://ceph.example:443/s3")), "m").unwrap();
        assert_eq!(c.object_url("k"), "https://ceph.example/s3/m/k");
        let c = S3Client::new(&config(None), "models").unwrap();
        assert_eq!(
            c.object_url("k"),
            "https://models.s3.eu-west-1.amazonaws.com/k"
        );
        let c = S3Client::new(&config(None), "my.models").unwrap();
        assert_eq!(
            c.object_url("k"),
            "https://s3.eu-west-1.amazonaws.com/my.models/k"
        );
        assert!(S3Client::new(&config(Some("ftp://x")), "m").is_err());
        assert!(S3Client::new(&config(Some("http://")), "m").is_err());
    }
}
