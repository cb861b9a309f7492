//! Sign-in (`--auth=true`, the default) with real clients against the real launcher on the
//! sample clip: Chromium through the login page (`browser/auth.mjs`: an admin and a viewer),
//! VLC with a viewer's password in the stream URL, and curl over HTTPS (`--tls-cert`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use base64::Engine as _;
use facerec_core::testsupport::on_ci;
use serde_json::Value;

mod common;
use common::*;

/// The first-start line on stderr, around the password.
const FIRST_START: &str = "facerec-launcher: created user admin with password ";
const FIRST_START_END: &str = " (shown once; change it with: facerec-launcher user passwd admin)";
const VIEWER: &str = "watcher";
const VIEWER_PASSWORD: &str = "watch-only-4921";
const VIEWER_REFUSAL: &str = "this needs the admin role; viewer can only watch";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// puppeteer-core's node_modules when Chromium, node and puppeteer-core are all installed;
/// otherwise None (a skip), except on CI, where their absence fails (as in page.rs).
fn browser_tools() -> Option<PathBuf> {
    let node_modules = repo().join(".cache/browser-node/node_modules");
    let usable = Path::new("/usr/bin/chromium").exists()
        && node_modules.join("puppeteer-core").exists()
        && Command::new("node")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
    if usable {
        return Some(node_modules);
    }
    assert!(
        !on_ci(),
        "CI needs Chromium, node and puppeteer-core (deploy/tests/setup-browser.sh)"
    );
    eprintln!("SKIPPED: no Chromium/node/puppeteer-core (run deploy/tests/setup-browser.sh)");
    None
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether `program` is installed; its absence is a skip, except on CI (as in launcher.rs).
fn tool(program: &str) -> bool {
    if have(program) {
        return true;
    }
    assert!(
        !on_ci(),
        "{program} is required under CI (deploy/test.sh installs it)"
    );
    eprintln!("\n!!!! SKIPPED: {program} is not installed !!!!\n");
    false
}

/// A launcher with sign-in on and a fresh data folder (so no user yet), on the sample clip,
/// its stderr read by the test.
struct SignedIn {
    launcher: Launcher,
    data: PathBuf,
    /// The stderr lines that announce a created user.
    created: Receiver<String>,
}

impl SignedIn {
    fn start() -> SignedIn {
        let data = fresh_data_dir();
        let mut cmd = launcher_command();
        cmd.args(["--listen", "127.0.0.1:0", "--auth=true", "--data-dir"])
            .arg(&data)
            .arg("--gallery")
            .arg(gallery())
            .args(["--source", &clip_source()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the launcher starts");
        let stderr = child.stderr.take().unwrap();
        let (tx, created) = std::sync::mpsc::channel();
        // Echoes stderr and keeps draining it for the launcher's whole life.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                eprintln!("{line}");
                if line.starts_with("facerec-launcher: created user") {
                    let _ = tx.send(line);
                }
            }
        });
        SignedIn {
            launcher: Launcher::wait_listening(child),
            data,
            created,
        }
    }

    /// The password of the first start's admin, from its one stderr line.
    fn admin_password(&self) -> String {
        let line = self
            .created
            .recv_timeout(Duration::from_secs(30))
            .expect("a first start prints the admin's password on stderr");
        line.strip_prefix(FIRST_START)
            .and_then(|rest| rest.strip_suffix(FIRST_START_END))
            .filter(|password| !password.is_empty() && !password.contains(' '))
            .unwrap_or_else(|| panic!("not the first-start line: {line:?}"))
            .to_string()
    }

    /// Fails if a second "created user" line was printed.
    fn assert_no_more_created(&self) {
        if let Ok(line) = self.created.try_recv() {
            panic!("a second created-user line: {line:?}");
        }
    }

    /// `facerec-launcher user ARGS --data-dir DATA`, which must succeed.
    fn user(&self, args: &[&str]) -> String {
        let mut cmd = launcher_command();
        cmd.arg("user").args(args).arg("--data-dir").arg(&self.data);
        let out = output_within(&mut cmd, Duration::from_secs(60));
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "user {args:?}: {text}");
        text
    }

    /// Adds the viewer with the command line, while the launcher runs.
    fn add_viewer(&self, dir: &Path) {
        let file = dir.join("viewer-password");
        std::fs::write(&file, format!("{VIEWER_PASSWORD}\n")).unwrap();
        self.user(&[
            "add",
            VIEWER,
            "--role",
            "viewer",
            "--password-file",
            file.to_str().unwrap(),
        ]);
        let list = self.user(&["list"]);
        assert!(
            list.contains("admin") && list.contains(VIEWER),
            "user list: {list}"
        );
    }
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// A request with an optional `Authorization` value; the status and the body as text.
fn call(
    url: &str,
    method: &str,
    authorization: Option<&str>,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = ureq::http::Request::builder().method(method).uri(url);
    if !content_type.is_empty() {
        request = request.header("Content-Type", content_type);
    }
    if let Some(a) = authorization {
        request = request.header("Authorization", a);
    }
    let mut response = if body.is_empty() {
        agent.run(request.body(()).unwrap())
    } else {
        agent.run(request.body(body.to_vec()).unwrap())
    }
    .unwrap();
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

/// Waits until the clip camera has played a few frames, reading with `authorization`.
fn wait_frames(launcher: &Launcher, authorization: &str) {
    launcher.wait_for("frames", Duration::from_secs(30), |l| {
        let (status, body) = call(&l.url("/api/cameras"), "GET", Some(authorization), "", b"");
        assert_eq!(status, 200, "GET /api/cameras as admin: {body}");
        let cams: Value = serde_json::from_str(&body).unwrap();
        cams.as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "clip" && c["frames"].as_u64().unwrap_or(0) > 5)
    });
}

/// JPEG frames in a recorded or downloaded multipart stream.
fn jpeg_parts(bytes: &[u8]) -> usize {
    bytes
        .windows(4)
        .filter(|w| w == b"\xff\xd8\xff\xe0" || w == b"\xff\xd8\xff\xdb")
        .count()
}

/// auth.mjs against a launcher with sign-in on: the admin created at first start (its password
/// read from stderr), a viewer added with `facerec-launcher user add` while it runs, and Lin-Manuel
/// Miranda enrolled over HTTP Basic so that the library shows a person with a photo.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn sign_in_in_a_real_browser() {
    if !ready() {
        return;
    }
    let Some(node_modules) = browser_tools() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let signed = SignedIn::start();
    let launcher = &signed.launcher;
    let password = signed.admin_password();
    let admin = basic("admin", &password);
    let dir = temp_dir("signin-browser");
    signed.add_viewer(dir.path());

    // Without credentials the API refuses; with the wrong ones too.
    let (status, body) = call(&launcher.url("/api/cameras"), "GET", None, "", b"");
    assert_eq!(status, 401, "GET /api/cameras without credentials: {body}");
    let (status, body) = call(
        &launcher.url("/api/cameras"),
        "GET",
        Some(&basic("admin", "not-the-password")),
        "",
        b"",
    );
    assert_eq!(
        status, 401,
        "GET /api/cameras with a wrong password: {body}"
    );
    // The viewer (added while the launcher runs) reads, and is refused the export.
    let viewer = basic(VIEWER, VIEWER_PASSWORD);
    let (status, body) = call(&launcher.url("/api/me"), "GET", Some(&viewer), "", b"");
    assert_eq!(status, 200, "GET /api/me as the viewer: {body}");
    let me: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&me["name"], &me["role"], &me["via"], &me["auth"]),
        (
            &VIEWER.into(),
            &"viewer".into(),
            &"basic".into(),
            &true.into()
        ),
        "{me}"
    );
    let (status, body) = call(
        &launcher.url("/api/library/export"),
        "GET",
        Some(&viewer),
        "",
        b"",
    );
    assert_eq!(
        (
            status,
            serde_json::from_str::<Value>(&body).unwrap()["error"].clone()
        ),
        (403, VIEWER_REFUSAL.into()),
        "GET /api/library/export as the viewer: {body}"
    );

    let photo = std::fs::read(asset(&format!("{TD}/lin-manuel-miranda.png"))).unwrap();
    let (content_type, upload) = multipart("photo", &[("miranda.png", &photo)]);
    let (status, body) = call(
        &launcher.url("/api/people/Lin-Manuel%20Miranda/photos"),
        "POST",
        Some(&admin),
        &content_type,
        &upload,
    );
    assert_eq!(status, 201, "enrolling over HTTP Basic: {body}");
    wait_frames(launcher, &admin);
    launcher.wait_for("a history event", Duration::from_secs(90), |l| {
        let (status, body) = call(&l.url("/api/history?limit=1"), "GET", Some(&admin), "", b"");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["events"]
            .as_array()
            .is_some_and(|e| !e.is_empty())
    });
    eprintln!(
        "launcher ready after {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let mut node = Command::new("node");
    node.arg(repo().join("launcher/tests/browser/auth.mjs"))
        .args([launcher.base.as_str(), &password, VIEWER, VIEWER_PASSWORD])
        .arg(dir.path().join("shots"))
        .env("NODE_PATH", &node_modules);
    let out = output_within(&mut node, Duration::from_secs(180));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{output}");
    eprintln!(
        "auth.mjs done after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(out.status.success(), "auth.mjs failed:\n{output}");
    signed.assert_no_more_created();
}

/// Whether VLC's output shows a 401 response (its verbose log prints the response headers).
fn got_401(output: &str) -> bool {
    output.contains("HTTP/1.1 401 Unauthorized") || output.contains("HTTP 401")
}

/// Runs cvlc as `nobody` (VLC refuses root) on `url` for 4 s of playing, recording what it plays; returns
/// the JPEG frames recorded and VLC's output.
fn vlc_record(url: &str) -> (usize, String) {
    let dir = temp_dir("vlc");
    let dir = dir.path();
    let out_file = dir.join("recorded.mjpg");
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    // The outer limit is generous: on a loaded machine VLC takes seconds to start, and without
    // credentials it waits on its (dummy) login dialog until killed, its 401 already said.
    let out = Command::new("timeout")
        .args([
            "30",
            "runuser",
            "-u",
            "nobody",
            "--",
            "cvlc",
            "-I",
            "dummy",
            "--no-audio",
            "--vout=dummy",
            "--run-time=4",
            "--play-and-exit",
            // The response headers as they arrive: without them VLC says "HTTP 401" only when
            // it gives up, which with the dummy interface is when it is killed, and a slow
            // shutdown loses the line (failed twice on the branch of issue 27).
            "-vv",
            url,
        ])
        .args([
            "--sout",
            &format!("#std{{access=file,mux=mpjpeg,dst={}}}", out_file.display()),
        ])
        .output()
        .unwrap();
    let recorded = std::fs::read(&out_file).unwrap_or_default();
    let parts = jpeg_parts(&recorded);
    eprintln!(
        "VLC recorded {} bytes, {parts} JPEG frames (exit {:?})",
        recorded.len(),
        out.status.code()
    );
    (
        parts,
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// VLC plays the stream with a viewer's user name and password in the URL (HTTP Basic after
/// the 401 challenge), and plays nothing without them.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn vlc_plays_the_stream_with_a_viewers_password() {
    if !ready() || !tool("cvlc") {
        return;
    }
    let _serial = serial();
    let signed = SignedIn::start();
    let launcher = &signed.launcher;
    let password = signed.admin_password();
    let dir = temp_dir("signin-vlc");
    signed.add_viewer(dir.path());
    wait_frames(launcher, &basic("admin", &password));
    let address = launcher
        .base
        .strip_prefix("http://")
        .expect("the launcher serves plain HTTP here");

    let (status, _) = call(
        &launcher.url("/cameras/clip/stream.mjpg"),
        "HEAD",
        None,
        "",
        b"",
    );
    assert_eq!(status, 401, "HEAD of the stream without credentials");

    let url = format!("http://{VIEWER}:{VIEWER_PASSWORD}@{address}/cameras/clip/stream.mjpg");
    let (parts, output) = vlc_record(&url);
    assert!(
        parts >= 5,
        "VLC played no stream with the viewer's password: {output}"
    );

    let (parts, output) = vlc_record(&format!("http://{address}/cameras/clip/stream.mjpg"));
    eprintln!("VLC without credentials said:\n{output}");
    assert_eq!(
        parts, 0,
        "VLC played the stream without credentials: {output}"
    );
    assert!(got_401(&output), "VLC did not report the 401: {output}");
    let (parts, output) = vlc_record(&format!(
        "http://{VIEWER}:wrong-password@{address}/cameras/clip/stream.mjpg"
    ));
    assert_eq!(
        parts, 0,
        "VLC played the stream with a wrong password: {output}"
    );
    assert!(
        got_401(&output),
        "VLC did not report the 401 of a wrong password: {output}"
    );
    signed.assert_no_more_created();
}

/// What curl got: the status, the response headers (lowercase) and the body.
struct CurlAnswer {
    status: u16,
    headers: String,
    body: Vec<u8>,
    exit: Option<i32>,
    stderr: String,
}

impl CurlAnswer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): {:?} (curl: {})",
                String::from_utf8_lossy(&self.body),
                self.stderr
            )
        })
    }

    /// The values of the header `name` (lowercase).
    fn header(&self, name: &str) -> Vec<String> {
        self.headers
            .lines()
            .filter_map(|l| l.split_once(':'))
            .filter(|(k, _)| k.trim().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .collect()
    }
}

/// curl with the test CA, `-sS`; `args` end with the URL.
fn curl(dir: &Path, args: &[&str]) -> CurlAnswer {
    let headers = dir.join("curl-headers");
    let body = dir.join("curl-body");
    let _ = std::fs::remove_file(&headers);
    let _ = std::fs::remove_file(&body);
    let out: Output = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(dir.join("ca.pem"))
        .arg("-D")
        .arg(&headers)
        .arg("-o")
        .arg(&body)
        .args(["-w", "%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    CurlAnswer {
        status: String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0),
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: std::fs::read(&body).unwrap_or_default(),
        exit: out.status.code(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A CA, and a server certificate for 127.0.0.1 and localhost signed by it, in `dir`:
/// ca.pem, server.pem, server.key.
fn make_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=facerec test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\n\
         keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "server.ext",
    ]);
}

/// The launcher over HTTPS (`--tls-cert`/`--tls-key`) with the admin's password from
/// `--admin-password-file`, read by curl: the API with and without HTTP Basic, the MJPEG stream,
/// the login that sets a `Secure` session cookie, sign-out, the redirect of the page, and the
/// throttle of failed sign-ins.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn curl_over_tls() {
    if !ready() || !tool("curl") || !tool("openssl") {
        return;
    }
    let _serial = serial();
    let tmp = temp_dir("signin-tls");
    let dir = tmp.path();
    make_certificates(dir);
    let password = "tls-admin-password-7";
    let password_file = dir.join("admin-password");
    std::fs::write(&password_file, password).unwrap();
    let data = fresh_data_dir();
    let path = |p: &Path| p.display().to_string();
    let launcher = Launcher::start(
        &[
            "--auth=true".into(),
            "--data-dir".into(),
            path(&data),
            "--admin-password-file".into(),
            path(&password_file),
            "--tls-cert".into(),
            path(&dir.join("server.pem")),
            "--tls-key".into(),
            path(&dir.join("server.key")),
            "--gallery".into(),
            path(&gallery()),
            "--source".into(),
            clip_source(),
        ],
        &[],
    );
    assert!(
        launcher.base.starts_with("https://127.0.0.1:"),
        "listening on {}",
        launcher.base
    );
    let admin = format!("admin:{password}");
    let url = |p: &str| launcher.url(p);

    // The API with HTTP Basic, once the camera plays.
    let started = Instant::now();
    loop {
        let answer = curl(dir, &["-u", &admin, &url("/api/cameras")]);
        assert_eq!(
            answer.status,
            200,
            "GET /api/cameras -u admin over TLS: {} {}",
            answer.stderr,
            String::from_utf8_lossy(&answer.body)
        );
        let cams = answer.json();
        let frames = cams
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == "clip"))
            .and_then(|c| c["frames"].as_u64())
            .unwrap_or(0);
        if frames > 5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no frames: {cams}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    // Without credentials: 401, JSON.
    let answer = curl(dir, &[&url("/api/cameras")]);
    assert_eq!(answer.status, 401, "GET /api/cameras without -u");
    assert!(answer.json()["error"].is_string());
    let answer = curl(dir, &["-u", "admin:wrong-password", &url("/api/cameras")]);
    assert_eq!(answer.status, 401, "GET /api/cameras with a wrong password");
    // The page sends a browser to sign in; a stream challenges for Basic.
    let answer = curl(dir, &["-H", "Accept: text/html", &url("/")]);
    assert_eq!(
        (answer.status, answer.header("location")),
        (303, vec!["/login?next=%2F".to_string()]),
        "GET / (Accept: text/html) without credentials: {}",
        answer.headers
    );
    let answer = curl(dir, &[&url("/cameras/clip/stream.mjpg")]);
    assert_eq!(answer.status, 401, "the stream without credentials");
    assert!(
        answer
            .header("www-authenticate")
            .iter()
            .any(|v| v.starts_with("Basic realm=\"facerec\"")),
        "the stream's 401 challenges for Basic: {}",
        answer.headers
    );

    // The stream over TLS: curl stops it after 5 s (exit 28) with JPEG parts.
    let answer = curl(
        dir,
        &[
            "-u",
            &admin,
            "--max-time",
            "5",
            &url("/cameras/clip/stream.mjpg"),
        ],
    );
    assert_eq!(answer.status, 200, "the stream over TLS: {}", answer.stderr);
    assert!(
        answer
            .header("content-type")
            .iter()
            .any(|t| t.starts_with("multipart/x-mixed-replace")),
        "{}",
        answer.headers
    );
    let parts = jpeg_parts(&answer.body);
    eprintln!(
        "curl read {} bytes of the stream over TLS, {parts} JPEG frames (exit {:?})",
        answer.body.len(),
        answer.exit
    );
    assert!(
        answer.body.windows(2).any(|w| w == b"\xff\xd8") && parts >= 1,
        "no JPEG in the stream over TLS ({} bytes)",
        answer.body.len()
    );

    // POST /login over TLS: a Secure session cookie that works, until /logout.
    let login = |user: &str, password: &str| {
        curl(
            dir,
            &[
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &serde_json::json!({"user": user, "password": password}).to_string(),
                &url("/login"),
            ],
        )
    };
    let answer = login("admin", "wrong-password");
    assert_eq!(answer.status, 401, "a wrong password");
    assert_eq!(answer.json()["error"], "wrong user name or password");
    let answer = login("admin", password);
    assert_eq!(answer.status, 200, "POST /login: {}", answer.headers);
    let me = answer.json();
    assert_eq!(
        (&me["name"], &me["role"]),
        (&"admin".into(), &"admin".into())
    );
    let cookies = answer.header("set-cookie");
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("facerec_session="))
        .unwrap_or_else(|| panic!("no session cookie: {}", answer.headers));
    let attributes: Vec<&str> = cookie.split(';').map(str::trim).collect();
    for wanted in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(attributes.contains(&wanted), "{wanted} in {cookie}");
    }
    assert!(
        attributes.iter().any(|a| a.starts_with("Max-Age=")),
        "Max-Age in {cookie}"
    );
    let session = attributes[0].to_string();
    let answer = curl(dir, &["-b", &session, &url("/api/me")]);
    assert_eq!(answer.status, 200, "GET /api/me with the session cookie");
    let me = answer.json();
    assert_eq!(
        (&me["name"], &me["role"], &me["via"], &me["auth"]),
        (
            &"admin".into(),
            &"admin".into(),
            &"session".into(),
            &true.into()
        ),
        "{me}"
    );
    let answer = curl(dir, &["-X", "POST", "-b", &session, &url("/logout")]);
    assert_eq!(answer.status, 204, "POST /logout: {}", answer.headers);
    assert!(
        answer
            .header("set-cookie")
            .iter()
            .any(|c| c.starts_with("facerec_session=") && c.contains("Max-Age=0")),
        "/logout clears the cookie: {}",
        answer.headers
    );
    let answer = curl(dir, &["-b", &session, &url("/api/me")]);
    assert_eq!(answer.status, 401, "the session after /logout");

    // Failed sign-ins are throttled: 429 with Retry-After, after a few 401s.
    let mut statuses = Vec::new();
    let throttled = loop {
        let answer = login("nobody", "guess-password");
        statuses.push(answer.status);
        if answer.status == 429 {
            break answer;
        }
        assert_eq!(answer.status, 401, "a wrong sign-in: {statuses:?}");
        assert!(statuses.len() < 12, "never throttled: {statuses:?}");
    };
    let error = throttled.json()["error"].as_str().unwrap_or("").to_string();
    let wait = error
        .strip_prefix("too many failed sign-ins: retry in ")
        .and_then(|rest| rest.strip_suffix(" s"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("the 429's text: {error:?}"));
    assert_eq!(
        throttled.header("retry-after"),
        vec![wait.to_string()],
        "{}",
        throttled.headers
    );
    eprintln!("throttled after {statuses:?}: {error}");
}
