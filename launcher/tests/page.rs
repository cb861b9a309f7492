//! The page's browser checks (`browser/page.mjs`: every view and action of `web/index.html` in
//! Chromium) against the real launcher on the sample clip, and the contract that keeps
//! `browser/mock-server.mjs` (the page's stand-in for work without models) answering requests
//! with the launcher's statuses and error texts.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::*;

const TOKEN: &str = "p4ge-t0ken";
/// The library name page.mjs relies on: it must show as text, not markup.
const OBRIEN: &str = "O'Brien <b>";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// puppeteer-core's node_modules when Chromium, node and puppeteer-core are all installed;
/// otherwise None (a skip), except on CI, where their absence fails.
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
        !facerec_core::testsupport::on_ci(),
        "CI needs Chromium, node and puppeteer-core (deploy/tests/setup-browser.sh)"
    );
    eprintln!("SKIPPED: no Chromium/node/puppeteer-core (run deploy/tests/setup-browser.sh)");
    None
}

/// A name as one URL path segment.
fn segment(name: &str) -> String {
    url::form_urlencoded::byte_serialize(name.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Every stored event, newest first.
fn all_events(base: &str) -> Vec<Value> {
    let mut events = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, body) = send(
            &format!("{base}/api/history?limit=500{cursor}"),
            "GET",
            None,
            "",
            b"",
        );
        assert_eq!(status, 200, "{body}");
        let page: Value = serde_json::from_str(&body).unwrap();
        events.extend(page["events"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return events,
        }
    }
}

fn shared(relative: &str) -> Vec<u8> {
    std::fs::read(asset(&format!("{TD}/{relative}"))).unwrap()
}

/// A JPEG with no face in it: a plain gradient.
fn no_face_jpeg() -> Vec<u8> {
    let image = image::RgbImage::from_fn(320, 240, |x, y| image::Rgb([x as u8, y as u8, 128]));
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    bytes
}

/// mock-server.mjs, stopped on drop.
struct Mock {
    child: Child,
    base: String,
}

impl Mock {
    fn start() -> Mock {
        let mut child = Command::new("node")
            .arg(repo().join("launcher/tests/browser/mock-server.mjs"))
            .args(["--port", "0", "--token", TOKEN, "--quiet"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("the mock did not start: {line:?}"))
            .to_string();
        Mock { child, base }
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request sent alike to the launcher and to the mock. `{unknown}` in the path stands for an
/// unknown face's event id, which differs between the two.
struct Case {
    method: &'static str,
    path: String,
    token: Option<&'static str>,
    content_type: String,
    body: Vec<u8>,
}

impl Case {
    fn new(method: &'static str, path: &str) -> Case {
        Case {
            method,
            path: path.to_string(),
            token: Some(TOKEN),
            content_type: String::new(),
            body: Vec::new(),
        }
    }
    fn json(mut self, body: Value) -> Case {
        self.content_type = "application/json".into();
        self.body = body.to_string().into_bytes();
        self
    }
    fn files(mut self, field: &str, files: &[(&str, &[u8])]) -> Case {
        (self.content_type, self.body) = multipart(field, files);
        self
    }
    fn token(mut self, token: Option<&'static str>) -> Case {
        self.token = token;
        self
    }

    /// The status and `error` text, with the event id put back as `{unknown}`.
    fn answer(&self, base: &str, unknown: i64) -> (u16, String) {
        let path = self.path.replace("{unknown}", &unknown.to_string());
        let (status, body) = send(
            &format!("{base}{path}"),
            self.method,
            self.token,
            &self.content_type,
            &self.body,
        );
        let error = serde_json::from_str::<Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_string))
            .unwrap_or_else(|| format!("(no JSON error: {body:?})"));
        let event = format!("event {unknown}");
        (status, error.replace(&event, "event {unknown}"))
    }
}

/// The id of the newest unknown face with a crop (an enrolment reads the crop before the name).
fn unknown_event(base: &str) -> i64 {
    all_events(base)
        .iter()
        .find(|e| e["name"] == "unknown" && e["face_url"].is_string())
        .and_then(|e| e["id"].as_i64())
        .unwrap_or_else(|| panic!("no unknown face with a crop in the history of {base}"))
}

/// The refusals page.mjs and enrol.mjs can meet, sent to both servers: the mock must answer each
/// with the launcher's status and text. Changes nothing on either server.
fn mock_answers_like_the_launcher(launcher: &Launcher, mock: &Mock) -> Result<(), String> {
    let obrien = segment(OBRIEN);
    let upload = |person: &str, file: &str, bytes: &[u8]| {
        Case::new("POST", &format!("/api/people/{person}/photos")).files("photo", &[(file, bytes)])
    };
    let notes: &[u8] = b"not a photo\n";
    let no_face = no_face_jpeg();
    let two_people = shared("two_people.jpg");
    let long_name = "x".repeat(129);
    let cases = [
        upload(&obrien, "notes.txt", notes).token(None),
        upload(&obrien, "notes.txt", notes).token(Some("wrong")),
        upload(&obrien, "notes.txt", notes),
        upload(&obrien, "noface.jpg", &no_face),
        upload(&obrien, "twofaces.jpg", &two_people),
        Case::new("POST", &format!("/api/people/{obrien}/photos"))
            .files("other", &[("notes.txt", notes)]),
        upload("a%2Fb", "noface.jpg", &no_face),
        upload(".hidden", "noface.jpg", &no_face),
        upload("%20x", "noface.jpg", &no_face),
        Case::new("POST", "/api/history/{unknown}/enrol").json(serde_json::json!({"name": "a/b"})),
        Case::new("POST", "/api/history/{unknown}/enrol").json(serde_json::json!({"name": "  "})),
        Case::new("POST", "/api/history/{unknown}/enrol")
            .json(serde_json::json!({"name": long_name})),
        Case::new("POST", "/api/history/{unknown}/enrol")
            .json(serde_json::json!({"name": "a\u{1}b"})),
        Case::new("POST", "/api/history/{unknown}/enrol")
            .json(serde_json::json!({"name": "x"}))
            .token(None),
        Case::new("POST", "/api/history/{unknown}/reject"),
        Case::new("GET", "/api/history/999999"),
        Case::new("GET", "/api/history/abc"),
        Case::new("GET", "/api/history?limit=0"),
        Case::new("GET", "/api/history?unknown=maybe"),
        Case::new("GET", "/api/history?cursor=x"),
        Case::new("PUT", &format!("/api/people/{obrien}")).json(serde_json::json!({"name": "a/b"})),
        Case::new("PUT", "/api/people/Nobody").json(serde_json::json!({"name": "Somebody"})),
        Case::new("DELETE", "/api/people/Nobody"),
        Case::new("GET", &format!("/api/people/{obrien}/photos/nope")),
        Case::new("GET", &format!("/api/people/{obrien}/photos/BAD")),
    ];
    let (real_unknown, mock_unknown) = (unknown_event(&launcher.base), unknown_event(&mock.base));
    let mut differ = Vec::new();
    // Who the page is told it is (sign-in off, the token set): anonymous, and with the token.
    for token in [None, Some(TOKEN)] {
        let me = |base: &str| {
            let (status, body) = send(&format!("{base}/api/me"), "GET", token, "", b"");
            (
                status,
                serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body)),
            )
        };
        let (real, stand_in) = (me(&launcher.base), me(&mock.base));
        assert_eq!(real.0, 200, "GET /api/me (token {token:?}): {real:?}");
        if real != stand_in {
            differ.push(format!(
                "GET /api/me (token {token:?}): the launcher says {real:?}, the mock {stand_in:?}"
            ));
        }
    }
    for case in &cases {
        let real = case.answer(&launcher.base, real_unknown);
        let stand_in = case.answer(&mock.base, mock_unknown);
        assert!(
            real.0 >= 400,
            "{} {}: not refused: {real:?}",
            case.method,
            case.path
        );
        if real != stand_in {
            differ.push(format!(
                "{} {}: the launcher says {real:?}, the mock {stand_in:?}",
                case.method, case.path
            ));
        }
    }
    if differ.is_empty() {
        return Ok(());
    }
    Err(format!(
        "mock-server.mjs answers unlike the launcher:\n{}",
        differ.join("\n")
    ))
}

/// page.mjs (31 checks) against the real launcher: two cameras on the sample clip, a data
/// folder, and Lin-Manuel Miranda enrolled as "O'Brien <b>" through the upload route, so that
/// the clip itself makes the history page.mjs needs (named and unknown events, strangers).
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn page_checks_pass_on_the_real_launcher() {
    if !ready() {
        return;
    }
    let Some(node_modules) = browser_tools() else {
        return;
    };
    let _serial = serial();
    let started = Instant::now();
    let data = fresh_data_dir();
    let clip = clip_source();
    let uri = clip.strip_prefix("clip=").unwrap();
    let launcher = Launcher::start(
        &[
            "--source".into(),
            format!("door={uri}"),
            "--source".into(),
            format!("yard={uri}"),
            "--data-dir".into(),
            data.display().to_string(),
            // Every unknown face an event at once: more than a page of history sooner.
            "--unknown-after".into(),
            "0s".into(),
        ],
        &[("FACEREC_API_TOKEN", TOKEN)],
    );
    // Enrolled at once, while the cameras may still be starting: a gallery set then must reach
    // them (it used to be lost, and the page then found no named event).
    let (content_type, body) = multipart(
        "photo",
        &[("miranda.png", &shared("lin-manuel-miranda.png"))],
    );
    let (status, text) = send(
        &launcher.url(&format!("/api/people/{}/photos", segment(OBRIEN))),
        "POST",
        Some(TOKEN),
        &content_type,
        &body,
    );
    assert_eq!(status, 201, "enrolling {OBRIEN}: {text}");

    // What page.mjs needs from the history: more than one page (50), and on both cameras named
    // and unknown faces with crops.
    let wanted = |events: &[Value]| {
        let crop = |e: &&Value| e["face_url"].is_string();
        events.len() > 50
            && ["door", "yard"]
                .iter()
                .all(|c| events.iter().any(|e| e["camera"] == *c))
            && events.iter().filter(crop).any(|e| e["name"] == OBRIEN)
            && events
                .iter()
                .filter(crop)
                .any(|e| e["stranger"].is_string())
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let events = all_events(&launcher.base);
        if wanted(&events) {
            eprintln!(
                "{} events after {:.1} s",
                events.len(),
                started.elapsed().as_secs_f64()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the clip did not make the history page.mjs needs within 90 s: {} events, {} on door, \
             {} named {OBRIEN}, {} of strangers",
            events.len(),
            events.iter().filter(|e| e["camera"] == "door").count(),
            events.iter().filter(|e| e["name"] == OBRIEN).count(),
            events.iter().filter(|e| e["stranger"].is_string()).count(),
        );
        std::thread::sleep(Duration::from_millis(500));
    }

    let shots = temp_dir("page");
    let photos = shots.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::write(photos.join("good.jpg"), shared("obama_small.jpg")).unwrap();
    std::fs::write(photos.join("good2.jpg"), shared("obama-240p.jpg")).unwrap();
    std::fs::write(photos.join("noface.jpg"), no_face_jpeg()).unwrap();
    let mut node = Command::new("node");
    node.arg(repo().join("launcher/tests/browser/page.mjs"))
        .args([launcher.base.as_str(), TOKEN])
        .arg(shots.path().join("shots"))
        .env("NODE_PATH", &node_modules)
        .env("PAGE_PHOTOS", &photos);
    let out = output_within(&mut node, Duration::from_secs(180));
    let output = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{output}");
    eprintln!(
        "page checked after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // The contract after the page, so that a changed text shows in both.
    let mock = Mock::start();
    let contract = mock_answers_like_the_launcher(&launcher, &mock);
    eprintln!(
        "contract checked after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut failures = Vec::new();
    if !out.status.success() {
        failures.push(format!("page.mjs failed:\n{output}"));
    }
    failures.extend(contract.err());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
