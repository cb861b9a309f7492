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
//! Requests are signed with AWS Signature Version 4 in the `Authorization` header (checked below
//! against the examples in AWS's S3 documentation) and sent by `ureq`: no async runtime and no
//! SDK, for a tool that moves one small file.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use facerec_core::gallery::{Gallery, write_atomically};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

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
    let t = UtcTime::from_unix(unix_secs);
    format!(
        "{:02}{:02}{:02}{:02}{:02}",
        t.year % 100,
        t.month,
        t.day,
        t.hour,
        t.minute
    )
}

/// The version name for a publish now.
pub fn version_now() -> String {
    version_for(unix_now())
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A UTC calendar time, for version names and SigV4 dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct UtcTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

impl UtcTime {
    /// Days to civil date: Howard Hinnant's algorithm (proleptic Gregorian calendar).
    fn from_unix(secs: u64) -> UtcTime {
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        UtcTime {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: (rem / 60 % 60) as u32,
            second: (rem % 60) as u32,
        }
    }

    /// `20130524T000000Z`
    fn amz_date(&self) -> String {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
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

/// Endpoint, region and credentials, as read from the environment.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `None` means AWS itself.
    pub endpoint: Option<String>,
    pub region: String,
    pub credentials: Option<Credentials>,
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
        }
    }
}

/// One bucket, with the agent that talks to it.
pub struct S3Client {
    /// `http(s)://host[:port][/base]`, without a trailing slash.
    origin: String,
    /// The Host header, as signed.
    host: String,
    /// Path to the bucket: `/base/bucket` (path style) or `/base` (virtual-host style).
    bucket_path: String,
    bucket: String,
    region: String,
    credentials: Option<Credentials>,
    agent: ureq::Agent,
}

impl S3Client {
    pub fn new(config: &S3Config, bucket: &str) -> Result<S3Client> {
        let (endpoint, path_style) = match &config.endpoint {
            Some(e) => (e.clone(), true),
            // Dotted bucket names do not match AWS's wildcard certificate as a host name.
            None if bucket.contains('.') => {
                (format!("https://s3.{}.amazonaws.com", config.region), true)
            }
            None => (
                format!("https://{bucket}.s3.{}.amazonaws.com", config.region),
                false,
            ),
        };
        let (scheme, rest) = endpoint
            .split_once("://")
            .filter(|(s, _)| matches!(*s, "http" | "https"))
            .ok_or_else(|| anyhow!("S3 endpoint {endpoint:?} is not an http:// or https:// URL"))?;
        let (authority, base) = rest.split_once('/').unwrap_or((rest, ""));
        if authority.is_empty() || authority.contains(['@', '?', '#', ' ']) {
            bail!("S3 endpoint {endpoint:?}: expected scheme://host[:port][/path]");
        }
        // The Host header omits a default port; it must be signed exactly as it is sent.
        let host = match (scheme, authority.rsplit_once(':')) {
            ("http", Some((h, "80"))) | ("https", Some((h, "443"))) => h.to_string(),
            _ => authority.to_string(),
        };
        let base = base.trim_matches('/');
        let base = if base.is_empty() {
            String::new()
        } else {
            format!("/{}", uri_encode(base, false))
        };
        let bucket_path = if path_style {
            format!("{base}/{}", uri_encode(bucket, true))
        } else {
            base.clone()
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(15)))
            .timeout_global(Some(Duration::from_secs(600)))
            .build()
            .into();
        Ok(S3Client {
            origin: format!("{scheme}://{authority}"),
            host,
            bucket_path,
            bucket: bucket.to_string(),
            region: config.region.clone(),
            credentials: config.credentials.clone(),
            agent,
        })
    }

    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
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
        let (url, headers) = self.signed("GET", key, &[]);
        let mut request = self.agent.get(&url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let mut response = request.call().map_err(|e| self.transport_error(key, e))?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_OBJECT_BYTES)
            .read_to_vec()
            .map_err(|e| anyhow!("{}: cannot read the response: {e}", self.object_url(key)))?;
        Ok((status, body))
    }

    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let (url, headers) = self.signed("PUT", key, bytes);
        let mut request = self.agent.put(&url);
        for (name, value) in &headers {
            request = request.header(*name, value);
        }
        let mut response = request
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

    /// The URL of `key` and the headers that authenticate a request for it. Without
    /// credentials the request goes unsigned, which public buckets accept for reading.
    fn signed(
        &self,
        method: &str,
        key: &str,
        payload: &[u8],
    ) -> (String, Vec<(&'static str, String)>) {
        let path = format!("{}/{}", self.bucket_path, uri_encode(key, false));
        let url = format!("{}{path}", self.origin);
        let Some(credentials) = &self.credentials else {
            return (url, Vec::new());
        };
        let now = UtcTime::from_unix(unix_now()).amz_date();
        let mut headers = vec![
            ("host", self.host.clone()),
            ("x-amz-content-sha256", hex(&Sha256::digest(payload))),
            ("x-amz-date", now.clone()),
        ];
        if let Some(token) = &credentials.session_token {
            headers.push(("x-amz-security-token", token.clone()));
        }
        let authorization = sigv4_authorization(
            method,
            &path,
            &headers,
            &headers[1].1,
            credentials,
            &self.region,
            &now,
        );
        headers.push(("authorization", authorization));
        (url, headers)
    }

    fn object_url(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    fn transport_error(&self, key: &str, e: ureq::Error) -> anyhow::Error {
        anyhow!(
            "{}: cannot reach the S3 endpoint {}: {e}",
            self.object_url(key),
            self.origin
        )
    }

    /// One line: the object, the S3 error code and message, and a hint where one helps.
    fn status_error(&self, key: &str, status: u16, body: &[u8]) -> anyhow::Error {
        let code = s3_error_code(body);
        let message = xml_element(body, "Message");
        let mut line = format!("{}: S3 answered {status}", self.object_url(key));
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
            (Some("AuthorizationHeaderMalformed" | "PermanentRedirect"), _) => {
                " (check AWS_REGION and AWS_ENDPOINT_URL)"
            }
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

/// AWS's URI encoding: everything but `A-Z a-z 0-9 - . _ ~` is percent-encoded, and `/` too
/// unless it separates path segments. S3 keys are encoded once, not twice.
fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The `Authorization` header of AWS Signature Version 4 for S3, for a request without a
/// query string. `headers` are the signed headers, with lowercase names; `path` is already
/// URI-encoded; `amz_date` is the request's `x-amz-date`.
fn sigv4_authorization(
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    payload_sha256: &str,
    credentials: &Credentials,
    region: &str,
    amz_date: &str,
) -> String {
    let mut sorted: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.trim())).collect();
    sorted.sort();
    let canonical_headers: String = sorted.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = sorted.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(";");
    let canonical_request =
        format!("{method}\n{path}\n\n{canonical_headers}\n{signed_headers}\n{payload_sha256}");
    let date = &amz_date[..8];
    let scope = format!("{date}/{region}/s3/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac_sha256(
        format!("AWS4{}", credentials.secret).as_bytes(),
        date.as_bytes(),
    );
    for part in [region, "s3", "aws4_request"] {
        key = hmac_sha256(&key, part.as_bytes());
    }
    let signature = hex(&hmac_sha256(&key, string_to_sign.as_bytes()));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.key
    )
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
        assert_eq!(UtcTime::from_unix(0).amz_date(), "19700101T000000Z");
        assert_eq!(
            UtcTime::from_unix(1_369_353_600).amz_date(),
            "20130524T000000Z"
        );
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

    /// The examples of AWS's S3 documentation, "Signature Calculations for the Authorization
    /// Header: Transferring Payload in a Single Chunk".
    #[test]
    fn signs_like_the_aws_documentation() {
        let credentials = Credentials {
            key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
        };
        let empty = hex(&Sha256::digest(b""));
        let get = sigv4_authorization(
            "GET",
            "/test.txt",
            &[
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("range", "bytes=0-9".into()),
                ("x-amz-content-sha256", empty.clone()),
                ("x-amz-date", "20130524T000000Z".into()),
            ],
            &empty,
            &credentials,
            "us-east-1",
            "20130524T000000Z",
        );
        assert_eq!(
            get,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        let payload = hex(&Sha256::digest(b"Welcome to Amazon S3."));
        let put = sigv4_authorization(
            "PUT",
            &format!("/{}", uri_encode("test$file.text", false)),
            &[
                ("date", "Fri, 24 May 2013 00:00:00 GMT".into()),
                ("host", "examplebucket.s3.amazonaws.com".into()),
                ("x-amz-content-sha256", payload.clone()),
                ("x-amz-date", "20130524T000000Z".into()),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY".into()),
            ],
            &payload,
            &credentials,
            "us-east-1",
            "20130524T000000Z",
        );
        assert!(
            put.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{put}"
        );
    }

    #[test]
    fn addresses_custom_endpoints_path_style() {
        let config = |endpoint: Option<&str>| S3Config {
            endpoint: endpoint.map(str::to_string),
            region: "eu-west-1".into(),
            credentials: None,
        };
        let c = S3Client::new(&config(Some("http://minio:9000/")), "models").unwrap();
        assert_eq!(
            c.signed("GET", "a b/latest", b"").0,
            "http://minio:9000/models/a%20b/latest"
        );
        assert_eq!(c.host, "minio:9000");
        let c = S3Client::new(&config(Some("https://ceph.example:443/s3")), "m").unwrap();
        assert_eq!(
            c.signed("GET", "k", b"").0,
            "https://ceph.example:443/s3/m/k"
        );
        assert_eq!(c.host, "ceph.example");
        let c = S3Client::new(&config(None), "models").unwrap();
        assert_eq!(
            c.signed("GET", "k", b"").0,
            "https://models.s3.eu-west-1.amazonaws.com/k"
        );
        assert!(S3Client::new(&config(Some("ftp://x")), "m").is_err());
        assert!(S3Client::new(&config(Some("http://")), "m").is_err());
    }
}
