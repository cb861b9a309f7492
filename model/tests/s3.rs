//! `facerec-model publish` and `pull` against a real S3 server: moto's, started on loopback
//! for each test with authentication enforced, so wrong credentials are really refused.
//!
//! moto comes from PyPI (`deploy/tests/setup-moto.sh` installs it into .cache/moto-venv). Without
//! it these tests skip with a loud message, unless `CI` is set, where they fail. moto checks
//! signatures in the Authorization header only; `moto_query_auth.py` (beside this file) runs it
//! with that check extended to the query-string signatures rusty-s3 makes.
//!
//! The TLS test makes a private CA with the `openssl` command and serves moto over HTTPS with a
//! certificate it signed.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use facerec_core::gallery::Gallery;
use facerec_core::models::RECOGNIZER_SHA256;
use facerec_core::testsupport::on_ci;
use facerec_model::s3::{S3Client, S3Config};

const BIN: &str = env!("CARGO_BIN_EXE_facerec-model");
const BUCKET: &str = "facerec-models";

/// `$FACEREC_MOTO_SERVER`, then .cache/moto-venv, then PATH.
fn moto_server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("FACEREC_MOTO_SERVER").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.cache/moto-venv/bin/moto_server");
    if venv.is_file() {
        return Some(venv);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("moto_server"))
            .find(|p| p.is_file())
    })
}

/// The interpreter of moto_server's `#!` line: `moto_query_auth.py` runs in moto's Python.
fn python_of(moto_server: &Path) -> PathBuf {
    let text = std::fs::read_to_string(moto_server)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", moto_server.display()));
    let interpreter = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("{} has no #! line", moto_server.display()));
    PathBuf::from(interpreter)
}

/// A moto server on 127.0.0.1 with one bucket, one IAM user allowed `s3:*`, and authentication
/// switched on after that setup. Killed on drop, also when a test panics.
struct Moto {
    log: PathBuf,
    child: Child,
    endpoint: String,
    key: String,
    secret: String,
    /// The CA the server's certificate chains to, when it serves HTTPS.
    ca: Option<PathBuf>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The moto server, or `None` (after a loud message) when moto is not installed outside CI.
fn moto() -> Option<Moto> {
    moto_with(None)
}

/// Like `moto`, serving HTTPS with `tls`'s certificate when given.
fn moto_with(tls: Option<&TestPki>) -> Option<Moto> {
    let Some(binary) = moto_server_binary() else {
        let msg =
            "moto_server not found: run deploy/tests/setup-moto.sh (or set FACEREC_MOTO_SERVER)";
        if on_ci() {
            panic!("{msg} (CI=true)");
        }
        eprintln!("\n!!!! SKIPPED: {msg} !!!!\n");
        return None;
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port();
    // Its request log goes to a file: a pipe nobody reads would fill up.
    let log = std::env::temp_dir().join(format!("facerec-s3-test-moto-{port}.log"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/moto_query_auth.py");
    let mut command = Command::new(python_of(&binary));
    command
        .arg(&script)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    if let Some(tls) = tls {
        command.arg("--ssl-cert").arg(&tls.server_cert);
        command.arg("--ssl-key").arg(&tls.server_key);
    }
    let child = command
        // Authentication starts off, for the setup requests below, and is switched on by
        // /moto-api/reset-auth before any test request.
        .env_remove("INITIAL_NO_AUTH_ACTION_COUNT")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("moto log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut moto = Moto {
        log,
        child,
        endpoint: format!("{scheme}://127.0.0.1:{port}"),
        key: String::new(),
        secret: String::new(),
        ca: tls.map(|t| t.ca_cert.clone()),
    };
    moto.wait_ready();
    moto.setup();
    Some(moto)
}

/// The harness's own client; it trusts `ca` (the test CA of an HTTPS moto) when given.
fn agent(ca: Option<&Path>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)));
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).unwrap();
        let cert = ureq::tls::Certificate::from_pem(&pem).unwrap();
        config = config.tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(ureq::tls::RootCerts::new_with_certs(&[cert]))
                .build(),
        );
    }
    config.build().into()
}

/// With authentication off, moto reads the service from the credential scope and checks nothing.
fn unchecked_auth(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIASETUP000000000000/20240101/us-east-1/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

fn xml_text(body: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let start = body
        .find(&open)
        .unwrap_or_else(|| panic!("no {name} in {body}"))
        + open.len();
    let end = start + body[start..].find(&format!("</{name}>")).unwrap();
    body[start..end].to_string()
}

impl Moto {
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let agent = agent(self.ca.as_deref());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                let err = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("moto_server exited ({status}): {err}");
            }
            if let Ok(r) = agent.get(format!("{}/moto-api/", self.endpoint)).call()
                && r.status() == 200
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start in 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn iam(&self, form: &[(&str, &str)]) -> String {
        let mut r = agent(self.ca.as_deref())
            .post(format!("{}/", self.endpoint))
            .header("Authorization", unchecked_auth("iam"))
            .send_form(
                form.iter()
                    .copied()
                    .chain([("Version", "2010-05-08")])
                    .collect::<Vec<_>>(),
            )
            .expect("IAM request");
        let body = r.body_mut().read_to_string().unwrap();
        assert_eq!(r.status(), 200, "IAM {form:?}: {body}");
        body
    }

    fn setup(&mut self) {
        self.iam(&[("Action", "CreateUser"), ("UserName", "facerec")]);
        let keys = self.iam(&[("Action", "CreateAccessKey"), ("UserName", "facerec")]);
        self.key = xml_text(&keys, "AccessKeyId");
        self.secret = xml_text(&keys, "SecretAccessKey");
        self.iam(&[
            ("Action", "PutUserPolicy"),
            ("UserName", "facerec"),
            ("PolicyName", "models"),
            (
                "PolicyDocument",
                r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            ),
        ]);
        let r = agent(self.ca.as_deref())
            .put(format!("{}/{BUCKET}", self.endpoint))
            .header("Authorization", unchecked_auth("s3"))
            .send_empty()
            .expect("CreateBucket");
        assert_eq!(r.status(), 200, "CreateBucket");
        let mut r = agent(self.ca.as_deref())
            .post(format!("{}/moto-api/reset-auth", self.endpoint))
            .send("0")
            .expect("reset-auth");
        assert_eq!(
            r.status(),
            200,
            "reset-auth: {}",
            r.body_mut().read_to_string().unwrap()
        );
    }

    fn config(&self) -> S3Config {
        S3Config::from_vars(|name| self.env(&self.key, &self.secret).get(name).cloned())
    }

    fn env(&self, key: &str, secret: &str) -> std::collections::HashMap<&'static str, String> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", key.to_string()),
            ("AWS_SECRET_ACCESS_KEY", secret.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
        ]
        .into_iter()
        .collect()
    }

    fn client(&self) -> S3Client {
        S3Client::new(&self.config(), BUCKET).unwrap()
    }

    fn client_trusting_ca(&self) -> S3Client {
        let config = self.config().with_ca_bundle(self.ca.clone());
        S3Client::new(&config, BUCKET).unwrap()
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_as(&self.key, &self.secret, args)
    }

    fn run_as(&self, key: &str, secret: &str, args: &[&str]) -> Output {
        self.command(key, secret, args)
            .output()
            .expect("facerec-model runs")
    }

    /// The tool with this server's endpoint and the given credentials, and no AWS_CA_BUNDLE.
    fn command(&self, key: &str, secret: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        for name in [
            "AWS_ENDPOINT_URL_S3",
            "AWS_S3_ENDPOINT",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_PROFILE",
            "AWS_CA_BUNDLE",
        ] {
            cmd.env_remove(name);
        }
        cmd.envs(self.env(key, secret));
        cmd
    }
}

/// A private CA and a server certificate for 127.0.0.1 it signed, made with the `openssl`
/// command; and a second CA that signed nothing here.
struct TestPki {
    ca_cert: PathBuf,
    other_ca_cert: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
}

/// `None` (after a loud message) when `openssl` is missing outside CI.
fn test_pki(dir: &Path) -> Option<TestPki> {
    if Command::new("openssl").arg("version").output().is_err() {
        let msg = "the openssl command is not installed (apt-get install openssl)";
        if on_ci() {
            panic!("{msg} (CI=true)");
        }
        eprintln!("\n!!!! SKIPPED: {msg} !!!!\n");
        return None;
    }
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "openssl {args:?}: {}", stderr(&o));
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    for ca in ["ca", "other-ca"] {
        let (key, pem, subject) = (
            format!("{ca}.key"),
            format!("{ca}.pem"),
            format!("/CN=facerec test {ca}"),
        );
        let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
        args.extend(ec);
        args.extend(["-keyout", &key, "-out", &pem]);
        args.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
        args.extend(["-addext", "keyUsage=critical,keyCertSign"]);
        openssl(&args);
    }
    let mut args = vec!["req", "-subj", "/CN=127.0.0.1", "-keyout", "server.key"];
    args.extend(ec);
    args.extend(["-out", "server.csr"]);
    openssl(&args);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "server.ext",
        "-out",
        "server.pem",
    ]);
    Some(TestPki {
        ca_cert: dir.join("ca.pem"),
        other_ca_cert: dir.join("other-ca.pem"),
        server_cert: dir.join("server.pem"),
        server_key: dir.join("server.key"),
    })
}

/// A fresh folder, removed when the returned guard drops, whether the test passes or fails.
/// Mode 0755 like a folder made by hand: tools the tests run as another user (mosquitto, VLC)
/// read files in it (tempfile's default is 0700).
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("facerec-s3-test-{tag}-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap()
}

/// A valid gallery with the given people (one made-up 128-d embedding each).
fn gallery_file(dir: &Path, name: &str, people: &[&str]) -> PathBuf {
    let mut g = Gallery::new(RECOGNIZER_SHA256, 128);
    for (i, person) in people.iter().enumerate() {
        let embedding = (0..128)
            .map(|j| ((i * 128 + j) as f32).sin() * 0.1)
            .collect();
        g.add(person, &format!("{person}.jpg"), embedding).unwrap();
    }
    let path = dir.join(name);
    g.save(&path).unwrap();
    path
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// An error is one line, prefixed with the tool's name, and the exit status is non-zero.
fn assert_one_line_error(o: &Output, needles: &[&str]) {
    assert!(
        !o.status.success(),
        "expected a failure, got: {}",
        stderr(o)
    );
    let err = stderr(o);
    assert_eq!(err.trim_end().lines().count(), 1, "not one line: {err}");
    assert!(err.starts_with("facerec-model: "), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

/// Nothing but `expected` is left in `dir`: no temporary files from an atomic write.
fn assert_only(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, expected);
}

#[test]
#[cfg_attr(
    facerec_moto_missing,
    ignore = "needs moto_server: deploy/tests/setup-moto.sh"
)]
fn publish_then_pull_round_trip() {
    let Some(moto) = moto() else { return };
    let dir = temp_dir("roundtrip");
    let dir = dir.path();
    let model = gallery_file(dir, "model.data", &["Greg", "Lin-Manuel Miranda"]);

    let o = moto.run(&[
        "publish",
        s(&model),
        "--to",
        &format!("s3://{BUCKET}/faces/"),
        "--version",
        "2411241530",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2411241530");
    assert!(stderr(&o).contains("2 people"), "{}", stderr(&o));

    // The demo's layout: a version folder and a `latest` pointer.
    let client = moto.client();
    let stored = client.get("faces/2411241530/model.data").unwrap();
    assert_eq!(
        stored.as_deref(),
        Some(std::fs::read(&model).unwrap().as_slice())
    );
    assert_eq!(
        client.get("faces/latest").unwrap().as_deref(),
        Some(&b"2411241530\n"[..])
    );

    let out = dir.join("pulled.data");
    let o = moto.run(&[
        "pull",
        &format!("s3://{BUCKET}/faces/2411241530"),
        "-o",
        s(&out),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2411241530");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&model).unwrap());
    let g = Gallery::load(&out).unwrap();
    assert_eq!(g.people.len(), 2);

    // A version is never overwritten.
    let o = moto.run(&[
        "publish",
        s(&model),
        "--to",
        &format!("s3://{BUCKET}/faces"),
        "--version",
        "2411241530",
    ]);
    assert_one_line_error(&o, &["already exists", "faces/2411241530/model.data"]);
}

#[test]
#[cfg_attr(
    facerec_moto_missing,
    ignore = "needs moto_server: deploy/tests/setup-moto.sh"
)]
fn pull_resolves_latest() {
    let Some(moto) = moto() else { return };
    let dir = temp_dir("latest");
    let dir = dir.path();
    let old = gallery_file(dir, "old.data", &["Greg"]);
    let new = gallery_file(dir, "new.data", &["Greg", "Lin-Manuel Miranda", "Obama"]);
    let to = format!("s3://{BUCKET}/edge/faces");

    let o = moto.run(&["publish", s(&old), "--to", &to, "--version", "2001010000"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The default version is the UTC time, YYMMDDHHMM.
    let o = moto.run(&["publish", s(&new), "--to", &to]);
    assert!(o.status.success(), "{}", stderr(&o));
    let version = stdout(&o);
    assert_eq!(version.len(), 10, "{version}");
    assert!(version.bytes().all(|b| b.is_ascii_digit()), "{version}");
    let now = facerec_model::s3::version_now();
    assert!(
        version.starts_with(&now[..6]),
        "{version} is not today ({now})"
    );

    for from in [to.clone(), format!("{to}/latest")] {
        let out = dir.join("model.data");
        let o = moto.run(&["pull", &from, "-o", s(&out)]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), version);
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&new).unwrap());
    }

    // An explicit version still gets the old one, by URL or by flag.
    for args in [
        vec!["pull", &*format!("{to}/2001010000")],
        vec!["pull", &*to, "--version", "2001010000"],
    ] {
        let out = dir.join("model.data");
        let mut args = args.clone();
        args.extend(["-o", s(&out)]);
        let o = moto.run(&args);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), "2001010000");
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&old).unwrap());
    }

    let o = moto.run(&[
        "pull",
        &format!("s3://{BUCKET}/nothing-here"),
        "-o",
        s(&dir.join("x")),
    ]);
    assert_one_line_error(&o, &["nothing-here/latest not found"]);
    let o = moto.run(&["pull", &format!("{to}/1901010000"), "-o", s(&dir.join("x"))]);
    assert_one_line_error(&o, &["1901010000/model.data not found"]);
}

#[test]
#[cfg_attr(
    facerec_moto_missing,
    ignore = "needs moto_server: deploy/tests/setup-moto.sh"
)]
fn corrupt_object_is_refused_and_the_output_untouched() {
    let Some(moto) = moto() else { return };
    let dir = temp_dir("corrupt");
    let dir = dir.path();
    let good = gallery_file(dir, "model.data", &["Greg"]);
    let before = std::fs::read(&good).unwrap();

    // A truncated gallery and a foreign file, put there by something other than `publish`.
    let client = moto.client();
    client
        .put("corrupt/2411241530/model.data", &before[..before.len() / 2])
        .unwrap();
    client
        .put("corrupt/2411241531/model.data", b"not a gallery")
        .unwrap();
    client.put("corrupt/latest", b"2411241531\n").unwrap();

    for (from, why) in [
        (format!("s3://{BUCKET}/corrupt/2411241530"), "truncated"),
        (format!("s3://{BUCKET}/corrupt"), "wrong magic"),
    ] {
        let o = moto.run(&["pull", &from, "-o", s(&good)]);
        assert_one_line_error(&o, &["is not a valid gallery", why, "left untouched"]);
        assert_eq!(std::fs::read(&good).unwrap(), before, "output was modified");
        assert_only(dir, &["model.data"]);
    }

    // And publish refuses a corrupt local file before uploading anything.
    let bad = dir.join("bad.data");
    std::fs::write(&bad, &before[..before.len() - 1]).unwrap();
    let o = moto.run(&[
        "publish",
        s(&bad),
        "--to",
        &format!("s3://{BUCKET}/refused"),
    ]);
    assert_one_line_error(&o, &["bad.data"]);
    assert_eq!(client.get("refused/latest").unwrap(), None);
}

#[test]
#[cfg_attr(
    facerec_moto_missing,
    ignore = "needs moto_server: deploy/tests/setup-moto.sh"
)]
fn wrong_credentials_give_a_clear_error() {
    let Some(moto) = moto() else { return };
    let dir = temp_dir("creds");
    let dir = dir.path();
    let model = gallery_file(dir, "model.data", &["Greg"]);
    let before = std::fs::read(&model).unwrap();
    let o = moto.run(&[
        "publish",
        s(&model),
        "--to",
        &format!("s3://{BUCKET}/creds"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // An unknown key, refused by the server.
    let o = moto.run_as(
        "AKIAUNKNOWN000000000",
        "whatever",
        &["pull", &format!("s3://{BUCKET}/creds"), "-o", s(&model)],
    );
    assert_one_line_error(
        &o,
        &[
            "InvalidAccessKeyId",
            "403",
            "check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        ],
    );
    // The right key with a wrong secret.
    let o = moto.run_as(
        &moto.key,
        "wrong-secret",
        &[
            "publish",
            s(&model),
            "--to",
            &format!("s3://{BUCKET}/creds"),
        ],
    );
    assert_one_line_error(&o, &["SignatureDoesNotMatch", "check AWS_ACCESS_KEY_ID"]);
    assert_eq!(std::fs::read(&model).unwrap(), before);
    assert_only(dir, &["model.data"]);

    // No credentials at all: publish says what to set before it sends anything.
    let o = moto.run_as(
        "",
        "",
        &[
            "publish",
            s(&model),
            "--to",
            &format!("s3://{BUCKET}/creds"),
        ],
    );
    assert_one_line_error(&o, &["no S3 credentials", "AWS_ACCESS_KEY_ID"]);

    // Nothing listening: the endpoint is named.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let o = Command::new(BIN)
        .args(["pull", &format!("s3://{BUCKET}/creds"), "-o", s(&model)])
        .env("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}"))
        .env("AWS_ACCESS_KEY_ID", &moto.key)
        .env("AWS_SECRET_ACCESS_KEY", &moto.secret)
        .output()
        .unwrap();
    assert_one_line_error(&o, &["cannot reach the S3 endpoint", &port.to_string()]);
    assert_eq!(std::fs::read(&model).unwrap(), before);
}

#[test]
#[cfg_attr(
    facerec_moto_missing,
    ignore = "needs moto_server: deploy/tests/setup-moto.sh"
)]
fn https_endpoint_with_a_private_ca() {
    let dir = temp_dir("tls");
    let dir = dir.path();
    let Some(pki) = test_pki(dir) else { return };
    let Some(moto) = moto_with(Some(&pki)) else {
        return;
    };
    assert!(
        moto.endpoint.starts_with("https://127.0.0.1:"),
        "{}",
        moto.endpoint
    );
    let model = gallery_file(dir, "model.data", &["Greg", "Lin-Manuel Miranda"]);
    let to = format!("s3://{BUCKET}/tls");
    let run = |env_bundle: Option<&Path>, args: &[&str]| {
        let mut cmd = moto.command(&moto.key, &moto.secret, args);
        if let Some(bundle) = env_bundle {
            cmd.env("AWS_CA_BUNDLE", bundle);
        }
        cmd.output().unwrap()
    };

    // Without the CA, and with a CA that did not sign it: refused, in one line that says what
    // to do; nothing was uploaded.
    let publish = ["publish", s(&model), "--to", &to, "--version", "2411241530"];
    let o = run(None, &publish);
    let untrusted = [
        "tls/2411241530/model.data",
        &*format!("the certificate of {} is not trusted", moto.endpoint),
        "UnknownIssuer",
        "--ca-bundle FILE or AWS_CA_BUNDLE",
    ];
    assert_one_line_error(&o, &untrusted);
    let o = run(Some(&pki.other_ca_cert), &publish);
    assert_one_line_error(&o, &untrusted);
    assert!(stderr(&o).contains("other-ca.pem"), "{}", stderr(&o));
    assert_eq!(moto.client_trusting_ca().get("tls/latest").unwrap(), None);

    // Trusted with --ca-bundle; the flag wins over a wrong AWS_CA_BUNDLE.
    let mut with_flag = publish.to_vec();
    with_flag.extend(["--ca-bundle", s(&pki.ca_cert)]);
    let o = run(Some(&pki.other_ca_cert), &with_flag);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2411241530");

    // Trusted with AWS_CA_BUNDLE; the round trip is byte for byte.
    let out = dir.join("pulled.data");
    let o = run(Some(&pki.ca_cert), &["pull", &to, "-o", s(&out)]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "2411241530");
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&model).unwrap());

    // Wrong credentials over TLS are still the server's clear refusal.
    let o = moto
        .command("AKIAUNKNOWN000000000", "x", &["pull", &to, "-o", s(&out)])
        .env("AWS_CA_BUNDLE", &pki.ca_cert)
        .output()
        .unwrap();
    assert_one_line_error(&o, &["InvalidAccessKeyId", "403"]);
}

/// A missing or non-PEM bundle is one line naming the file, before anything is sent.
#[test]
fn a_bad_ca_bundle_is_named() {
    let dir = temp_dir("bundle");
    let dir = dir.path();
    let model = gallery_file(dir, "model.data", &["Greg"]);
    let not_pem = dir.join("not-a-ca.pem");
    std::fs::write(&not_pem, "hello\n").unwrap();
    let broken = dir.join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let missing = dir.join("missing.pem");
    let cases = [
        (&missing, "cannot read it"),
        (&not_pem, "no PEM certificate"),
        (&broken, "not a valid PEM file"),
    ];
    for (bundle, why) in cases {
        let named = format!("CA bundle {}: {why}", bundle.display());
        let run = |args: &[&str], env_bundle: Option<&Path>| {
            let mut cmd = Command::new(BIN);
            cmd.args(args)
                .env("AWS_ENDPOINT_URL", "https://127.0.0.1:9")
                .env("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
                .env("AWS_SECRET_ACCESS_KEY", "secret")
                .env_remove("AWS_CA_BUNDLE");
            if let Some(b) = env_bundle {
                cmd.env("AWS_CA_BUNDLE", b);
            }
            cmd.output().unwrap()
        };
        let to = format!("s3://{BUCKET}/x");
        let o = run(
            &["publish", s(&model), "--to", &to, "--ca-bundle", s(bundle)],
            None,
        );
        assert_one_line_error(&o, &[&named]);
        let o = run(&["pull", &to, "-o", s(&model)], Some(bundle));
        assert_one_line_error(&o, &[&named]);
    }
    assert_only(dir, &["broken.pem", "model.data", "not-a-ca.pem"]);
}
