//! Who may see what, with sign-in on (the default): every route of the router walked without
//! credentials, as a viewer and as an admin; the issue's table of biometric reads; the
//! accounts command line. The browser, VLC and TLS clients are in `signin.rs`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use base64::Engine as _;
use facerec_launcher::http::{Access, routes};

mod common;
use common::*;

const API_TOKEN: &str = "api-token-of-the-test";
const ADMIN_PASSWORD: &str = "admin-password-of-the-test";
const VIEWER_PASSWORD: &str = "viewer-password-of-the-test";

/// A launcher with sign-in on, `admin` set from a file, a viewer made with the command line,
/// and its stderr kept in a file (to check that no credential reaches the log).
struct Signed {
    launcher: Launcher,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

fn accounts_command(data: &Path, args: &[&str]) -> std::process::Output {
    launcher_command()
        .env("FACEREC_DATA_DIR", data)
        .args(args)
        .output()
        .unwrap()
}

fn start_signed(args: &[&str]) -> Signed {
    let dir = temp_dir("access");
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let admin_file = dir.path().join("admin-password");
    std::fs::write(&admin_file, format!("{ADMIN_PASSWORD}\n")).unwrap();
    let viewer_file = dir.path().join("viewer-password");
    std::fs::write(&viewer_file, VIEWER_PASSWORD).unwrap();
    let out = accounts_command(
        &data,
        &[
            "user",
            "add",
            "watcher",
            "--role",
            "viewer",
            "--password-file",
            viewer_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "added viewer watcher\n"
    );
    let log = dir.path().join("stderr");
    let mut cmd = launcher_command();
    cmd.args(["--listen", "127.0.0.1:0", "--auth=true"])
        .args(["--admin-password-file", admin_file.to_str().unwrap()])
        .args(args)
        .env("FACEREC_DATA_DIR", &data)
        .env("FACEREC_API_TOKEN", API_TOKEN)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
    let launcher = Launcher::wait_listening(cmd.spawn().unwrap());
    Signed {
        launcher,
        log,
        _dir: dir,
    }
}

impl Drop for Signed {
    fn drop(&mut self) {
        let _ = self.launcher.child.kill();
        let _ = self.launcher.child.wait();
    }
}

#[derive(Clone, Copy, Debug)]
enum Who {
    Nobody,
    Viewer,
    Admin,
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// The status, the head and up to 64 KiB of the body of one raw request (a stream is cut off
/// after its first bytes, so that it does not run forever).
fn request(base: &str, method: &str, path: &str, who: Who, extra: &str) -> (u16, String, String) {
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let authorization = match who {
        Who::Nobody => String::new(),
        Who::Viewer => format!("Authorization: {}\r\n", basic("watcher", VIEWER_PASSWORD)),
        Who::Admin => format!("Authorization: Bearer {API_TOKEN}\r\n"),
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{authorization}{extra}Content-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{method} {path}: no status in {head:?}"));
    // Up to 64 KiB or 2 s of the body: a stream (MJPEG, SSE) never ends by itself.
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut body = Vec::new();
    let mut chunk = [0u8; 8192];
    while body.len() < 64 * 1024 && std::time::Instant::now() < deadline {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => break,
        }
    }
    (status, head, String::from_utf8_lossy(&body).into_owned())
}

/// A path of the table with its parameters filled by names and ids that do not exist, so that
/// an admin's write reaches its handler and changes nothing.
fn concrete(path: &str) -> String {
    path.replace("{name}", "no-such-camera")
        .replace("{id}", "999999")
}

/// The exempt routes, exactly: a new route declared open fails here, and one not declared at
/// all is refused by the layer (it needs an admin).
#[test]
fn only_the_probes_the_sign_in_and_metrics_are_exempt() {
    let mut exempt: Vec<String> = routes()
        .iter()
        .filter(|r| matches!(r.access, Access::Open | Access::Metrics))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    exempt.sort();
    assert_eq!(
        exempt,
        [
            "GET /healthz",
            "GET /login",
            "GET /metrics",
            "GET /readyz",
            "POST /login",
            "POST /logout",
        ]
    );
    // Every other write needs an admin.
    for r in routes() {
        let write = !matches!(r.method.as_str(), "GET" | "HEAD");
        if write && !matches!(r.access, Access::Open) {
            assert!(
                matches!(r.access, Access::Admin),
                "{} {} is a write a viewer may call",
                r.method,
                r.path
            );
        }
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn every_route_refuses_without_credentials_and_every_write_refuses_a_viewer() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let signed = start_signed(&["--source", "cam=test://?pattern=ball"]);
    let base = &signed.launcher.base;
    let table = routes();
    assert!(table.len() >= 30, "{} routes", table.len());
    let mut walked = Vec::new();
    for route in &table {
        let method = route.method.as_str();
        let path = concrete(route.path);
        let (nobody, head, body) = request(base, method, &path, Who::Nobody, "");
        let (viewer, _, viewer_body) = request(base, method, &path, Who::Viewer, "");
        let (admin, _, admin_body) = request(base, method, &path, Who::Admin, "");
        walked.push(format!("{method} {path}: {nobody} {viewer} {admin}"));
        match route.access {
            Access::Open | Access::Metrics => {
                assert!(
                    ![401, 403].contains(&nobody),
                    "{method} {path}: {nobody} {body}"
                )
            }
            Access::Viewer | Access::Stream => {
                assert_eq!(nobody, 401, "{method} {path} without credentials: {body}");
                assert!(
                    ![401, 403].contains(&viewer),
                    "{method} {path} as a viewer: {viewer} {viewer_body}"
                );
            }
            Access::Admin | Access::AdminKey => {
                assert_eq!(nobody, 401, "{method} {path} without credentials: {body}");
                assert_eq!(
                    (viewer, viewer_body.as_str()),
                    (
                        403,
                        r#"{"error":"this needs the admin role; viewer can only watch"}"#
                    ),
                    "{method} {path} as a viewer"
                );
            }
        }
        if !matches!(method, "GET" | "HEAD") && route.access != Access::Open {
            assert_eq!(
                viewer, 403,
                "{method} {path} is a write a viewer could call"
            );
        }
        if route.access != Access::Open {
            assert!(
                ![401, 403].contains(&admin),
                "{method} {path} as an admin: {admin} {admin_body}"
            );
        }
        if nobody == 401 {
            assert_eq!(
                body,
                r#"{"error":"sign-in required: a session, an API token (Authorization: Bearer) or HTTP Basic credentials"}"#
            );
            // Video clients are challenged for Basic credentials; the API is not (a browser
            // would show its own dialog).
            assert_eq!(
                head.to_ascii_lowercase()
                    .contains("www-authenticate: basic realm=\"facerec\""),
                route.access == Access::Stream,
                "{method} {path}: {head}"
            );
        }
    }
    eprintln!("{}", walked.join("\n"));
    // A path no route has is refused as well (no oracle for what exists).
    assert_eq!(request(base, "GET", "/api/nothing", Who::Nobody, "").0, 401);
    // The page sends a browser to the sign-in page, keeping where it was going.
    let (status, head, _) = request(base, "GET", "/?x=1", Who::Nobody, "Accept: text/html\r\n");
    assert_eq!(status, 303);
    assert!(head.contains("location: /login?next=%2F%3Fx%3D1"), "{head}");
    // No credential reached the log.
    let log = std::fs::read_to_string(&signed.log).unwrap();
    for secret in [API_TOKEN, ADMIN_PASSWORD, VIEWER_PASSWORD] {
        assert!(!log.contains(secret), "{secret} is in the log:\n{log}");
    }
}

/// The issue's table: with the API token set, each read of faces, names, embeddings, frames and
/// events answered 200 to anyone. Now 401 without credentials and 200 with them.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn biometric_reads_need_credentials_and_metrics_can_too() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let signed = start_signed(&[
        "--gallery",
        gallery().to_str().unwrap(),
        "--source",
        &clip_source(),
        "--metrics-token",
    ]);
    let base = &signed.launcher.base;
    // The first history event (and its crop) of the clip.
    let start = std::time::Instant::now();
    let id = loop {
        let (_, _, body) = request(base, "GET", "/api/history?limit=1", Who::Viewer, "");
        let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        if let Some(id) = value["events"][0]["id"].as_i64() {
            break id;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "no history event: {body}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let rows = [
        ("/api/history?limit=1".to_string(), Who::Viewer),
        (format!("/api/history/{id}/face.jpg"), Who::Viewer),
        ("/api/library/export".to_string(), Who::Admin),
        ("/api/people".to_string(), Who::Viewer),
        ("/cameras/clip/snapshot.jpg".to_string(), Who::Viewer),
        ("/api/events".to_string(), Who::Viewer),
        ("/metrics".to_string(), Who::Admin),
        ("/api/cameras".to_string(), Who::Viewer),
    ];
    for (path, who) in &rows {
        let (status, _, body) = request(base, "GET", path, Who::Nobody, "");
        assert_eq!(status, 401, "{path} without credentials: {body}");
        // A snapshot is 503 until the camera's first frame is encoded.
        let start = std::time::Instant::now();
        let (status, body) = loop {
            let (status, _, body) = request(base, "GET", path, *who, "");
            if status != 503 || start.elapsed() > Duration::from_secs(30) {
                break (status, body);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert_eq!(status, 200, "{path} as {who:?}: {body}");
    }
    // The export holds every embedding: a viewer may watch but not take it.
    assert_eq!(
        request(base, "GET", "/api/library/export", Who::Viewer, "").0,
        403
    );
    // A viewer's API token works as a bearer and, on a stream, as key=; never for a write.
    let (status, _, body) = request(
        base,
        "POST",
        "/api/tokens",
        Who::Admin,
        "Content-Type: application/json\r\n",
    );
    assert_eq!(status, 400, "an empty body is not a token request: {body}");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut made = agent
        .post(&format!("{base}/api/tokens"))
        .header("Authorization", &format!("Bearer {API_TOKEN}"))
        .header("Content-Type", "application/json")
        .send(serde_json::json!({"name": "home assistant", "role": "viewer"}).to_string())
        .unwrap();
    assert_eq!(made.status(), 201);
    let made: serde_json::Value = serde_json::from_reader(made.body_mut().as_reader()).unwrap();
    let token = made["token"].as_str().unwrap().to_string();
    let snapshot = format!("/cameras/clip/snapshot.jpg?key={token}");
    let (status, head, _) = request(base, "GET", &snapshot, Who::Nobody, "");
    assert_eq!(status, 200, "{head}");
    assert_eq!(
        request(
            base,
            "GET",
            &format!("/api/cameras?key={token}"),
            Who::Nobody,
            ""
        )
        .0,
        401,
        "key= is for streams only"
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(
        request(base, "GET", "/api/people", Who::Nobody, &bearer).0,
        200
    );
    assert_eq!(
        request(base, "POST", "/api/gallery/reload", Who::Nobody, &bearer).0,
        403
    );
    // Listed with its last use, without its secret; revoked, it no longer opens anything.
    let (_, _, listed) = request(base, "GET", "/api/tokens", Who::Admin, "");
    assert!(!listed.contains(&token), "{listed}");
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed[0]["name"], "home assistant");
    assert!(listed[0]["last_used"].as_u64().is_some(), "{listed}");
    let id = made["id"].as_str().unwrap();
    assert_eq!(
        request(base, "DELETE", &format!("/api/tokens/{id}"), Who::Admin, "").0,
        204
    );
    assert_eq!(request(base, "GET", &snapshot, Who::Nobody, "").0, 401);
    // A viewer is not shown connection diagnoses.
    let (_, _, cameras) = request(base, "GET", "/api/cameras", Who::Viewer, "");
    let cameras: serde_json::Value = serde_json::from_str(&cameras).unwrap();
    assert_eq!(cameras[0]["reason"], serde_json::Value::Null);
    let log = std::fs::read_to_string(&signed.log).unwrap();
    assert!(!log.contains(&token), "the token is in the log:\n{log}");
}

/// Sessions: a cookie made by POST /login, ended by /logout and by a password change made
/// from the command line while the launcher runs; wrong passwords are slowed down.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn sessions_end_at_sign_out_and_password_change_and_guessing_is_throttled() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let signed = start_signed(&[]);
    let base = &signed.launcher.base;
    let login = |user: &str, password: &str| {
        let body = serde_json::json!({"user": user, "password": password}).to_string();
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    let answer = login("watcher", VIEWER_PASSWORD);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let cookie_line = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .expect("a session cookie");
    assert!(
        cookie_line.contains("; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200"),
        "{cookie_line}"
    );
    assert!(!cookie_line.contains("Secure"), "plain HTTP: {cookie_line}");
    let session = cookie_line
        .split_once(':')
        .unwrap()
        .1
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let with_cookie = format!("Cookie: {session}\r\n");
    let (status, _, me) = request(base, "GET", "/api/me", Who::Nobody, &with_cookie);
    assert_eq!(status, 200);
    assert_eq!(
        me,
        r#"{"auth":true,"name":"watcher","role":"viewer","via":"session"}"#
    );
    assert_eq!(
        request(base, "POST", "/logout", Who::Nobody, &with_cookie).0,
        204
    );
    assert_eq!(
        request(base, "GET", "/api/me", Who::Nobody, &with_cookie).0,
        401,
        "signed out"
    );

    // A password changed from the command line ends the sessions at once.
    let answer = login("watcher", VIEWER_PASSWORD);
    let session = answer
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().split(';').next().unwrap().to_string())
        .unwrap();
    let with_cookie = format!("Cookie: {session}\r\n");
    assert_eq!(
        request(base, "GET", "/api/me", Who::Nobody, &with_cookie).0,
        200
    );
    let data = signed._dir.path().join("data");
    let new_password = signed._dir.path().join("new-password");
    std::fs::write(&new_password, "a-new-viewer-password").unwrap();
    let out = accounts_command(
        &data,
        &[
            "user",
            "passwd",
            "watcher",
            "--password-file",
            new_password.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        request(base, "GET", "/api/me", Who::Nobody, &with_cookie).0,
        401
    );

    // Guessing: five wrong passwords are answered, then the client waits, doubling.
    for _ in 0..5 {
        assert!(login("admin", "wrong-guess").starts_with("HTTP/1.1 401"));
    }
    assert!(login("admin", "wrong-guess").starts_with("HTTP/1.1 401"));
    let throttled = login("admin", ADMIN_PASSWORD);
    assert!(throttled.starts_with("HTTP/1.1 429"), "{throttled}");
    assert!(
        throttled.contains("too many failed sign-ins: retry in 2 s"),
        "{throttled}"
    );
    assert!(
        throttled.to_ascii_lowercase().contains("retry-after: 2"),
        "{throttled}"
    );
    let log = std::fs::read_to_string(&signed.log).unwrap();
    assert!(
        !log.contains("wrong-guess"),
        "a guess is in the log:\n{log}"
    );
    assert!(
        !log.contains(&session[16..]),
        "a session id is in the log:\n{log}"
    );
}

#[test]
fn the_accounts_command_line_says_what_is_wrong_in_one_line() {
    let dir = temp_dir("accounts-cli");
    let data = dir.path();
    let fails = |args: &[&str]| {
        let out = accounts_command(data, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stderr).trim_end().to_string()
    };
    assert_eq!(
        fails(&["user", "del", "nobody"]),
        "facerec-launcher: no user named nobody"
    );
    assert_eq!(
        fails(&["user", "add", "bob", "--role", "owner"]),
        "facerec-launcher: role \"owner\" is not one of admin, viewer"
    );
    let short = dir.path().join("short");
    std::fs::write(&short, "short\n").unwrap();
    assert_eq!(
        fails(&[
            "user",
            "add",
            "bob",
            "--password-file",
            short.to_str().unwrap()
        ]),
        format!(
            "facerec-launcher: {}: a password needs at least 8 characters",
            short.display()
        )
    );
    // Without a file, a password is made and shown once.
    let out = accounts_command(data, &["user", "add", "bob", "--role", "admin"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password for bob: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert_eq!(password.len(), 16);
    assert_eq!(
        fails(&["user", "add", "bob"]),
        "facerec-launcher: a user named bob already exists"
    );
    let out = accounts_command(data, &["user", "list"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "bob\tadmin\n");
    let users = std::fs::read_to_string(data.join("users.json")).unwrap();
    assert!(!users.contains(password), "{users}");
    let out = accounts_command(data, &["token", "add", "prometheus"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("frt_"));
    assert_eq!(
        fails(&["token", "del", "nope"]),
        "facerec-launcher: no API token with id nope"
    );
}

/// The audit log: sign-ins (failed too), token changes, writes and exports, with who, from
/// where and the answer; readable by admins only.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_audit_log_records_who_did_what_and_only_admins_read_it() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let signed = start_signed(&[]);
    let base = &signed.launcher.base;
    let json = "Content-Type: application/json\r\n";
    let sign_in = |user: &str, password: &str| {
        let body = serde_json::json!({"user": user, "password": password}).to_string();
        let addr = base.trim_start_matches("http://");
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(
            stream,
            "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{json}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut text = String::new();
        stream.read_to_string(&mut text).unwrap();
        text
    };
    assert!(sign_in("watcher", "not-the-password").starts_with("HTTP/1.1 401"));
    assert!(sign_in("watcher", VIEWER_PASSWORD).starts_with("HTTP/1.1 200"));
    // A viewer's refused write, an admin's export and reload.
    assert_eq!(
        request(base, "POST", "/api/gallery/reload", Who::Viewer, "").0,
        403
    );
    assert_eq!(
        request(base, "GET", "/api/library/export", Who::Admin, "").0,
        200
    );
    // Reading the log is an admin's.
    assert_eq!(request(base, "GET", "/api/audit", Who::Viewer, "").0, 403);
    assert_eq!(request(base, "GET", "/api/audit", Who::Nobody, "").0, 401);
    let (status, _, body) = request(base, "GET", "/api/audit", Who::Admin, "");
    assert_eq!(status, 200, "{body}");
    let log: serde_json::Value = serde_json::from_str(&body).unwrap();
    let seen: Vec<String> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| {
            // The command line's entries are the local operator's, by their login name.
            if e["via"] == "cli" {
                assert_eq!(e["client"], "", "{e}");
                assert_ne!(e["user"], "", "{e}");
                return format!(
                    "cli {} {}",
                    e["action"].as_str().unwrap(),
                    e["target"].as_str().unwrap()
                );
            }
            assert_eq!(e["client"], "127.0.0.1", "{e}");
            format!(
                "{} {} {} {} {}",
                e["user"].as_str().unwrap(),
                e["via"].as_str().unwrap(),
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap(),
                e["status"]
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            "cli user.add watcher",
            "watcher password sign-in /login 401",
            "watcher password sign-in /login 200",
            "watcher basic POST /api/gallery/reload /api/gallery/reload 403",
            "FACEREC_API_TOKEN api-token GET /api/library/export /api/library/export 200",
        ],
        "{body}"
    );
    let _ = json;
}

/// Issue 26, defect 6: a camera's connection diagnosis ("connection refused", "timeout", "HTTP
/// 404") made adding cameras a port-scan oracle. Admins see it; viewers do not.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn connection_diagnoses_are_for_admins_only() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let signed = start_signed(&["--source", "door=http://127.0.0.1:1/stream"]);
    let base = &signed.launcher.base;
    let door = |who: Who| -> serde_json::Value {
        let (status, _, body) = request(base, "GET", "/api/cameras", who, "");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<serde_json::Value>(&body).unwrap()[0].clone()
    };
    let start = std::time::Instant::now();
    while door(Who::Admin)["state"] != "reconnecting" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{}",
            door(Who::Admin)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let reason = door(Who::Admin)["reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("connection refused"), "{reason}");
    let seen = door(Who::Viewer);
    assert_eq!(seen["state"], "reconnecting");
    assert_eq!(seen["reason"], serde_json::Value::Null, "{seen}");
}
