//! Helpers shared by the launcher's integration tests (`launcher.rs`, `hostile.rs`).
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::gallery::Gallery;
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{require, require_runtime};
pub mod broker;

pub const BIN: &str = env!("CARGO_BIN_EXE_facerec-launcher");
pub const TD: &str = "testdata/face_recognition";
pub const MIRANDA: &str = "Lin-Manuel Miranda";

/// Launchers are CPU-heavy: one test at a time keeps rates meaningful on two cores.
pub fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The launcher's preflight opens the models, so a launcher that serves needs them.
pub fn ready() -> bool {
    require("models/yunet_s_dynamic.onnx").is_some() && require(TD).is_some() && require_runtime()
}

pub fn asset(relative: &str) -> PathBuf {
    require(relative).expect("checked by ready()")
}

/// A fresh folder, removed when the returned guard drops, whether the test passes or fails.
/// Mode 0755 like a folder made by hand: tools the tests run as another user (mosquitto, VLC)
/// read files in it (tempfile's default is 0700).
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("facerec-launcher-test-{tag}-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir()
        .unwrap()
}

/// A folder for what must outlive one test: a fixture built once per process (a gallery), or a
/// spawned launcher's data folder. It lives in cargo's scratch folder for integration tests
/// (`target/tmp`, removed by `cargo clean`) rather than in /tmp, and is not removed by the tests.
pub fn fixture_dir(tag: &str) -> PathBuf {
    tempfile::Builder::new()
        .prefix(&format!("{tag}-"))
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep()
}

/// A gallery of `(name, photo)` pairs, saved as `model.data` in a folder named after `tag`.
pub fn make_gallery(tag: &str, people: &[(&str, &str)]) -> PathBuf {
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let mut g = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    for (name, photo) in people {
        let face = engine
            .analyze(&load_rgb(&asset(&format!("{TD}/{photo}"))).unwrap())
            .unwrap()
            .remove(0);
        g.add(name, photo, face.embedding.unwrap()).unwrap();
    }
    let path = fixture_dir(tag).join("model.data");
    g.save(&path).unwrap();
    path
}

/// A fresh data folder (history, face library) for one launcher, so that tests never share one
/// or touch ~/.local/state.
pub fn fresh_data_dir() -> PathBuf {
    fixture_dir("data")
}

/// The demo's two known faces.
pub fn gallery() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        make_gallery(
            "gallery",
            &[
                (MIRANDA, "lin-manuel-miranda.png"),
                ("Alex Lacamoire", "alex-lacamoire.png"),
            ],
        )
    })
    .clone()
}

pub fn clip_source() -> String {
    format!(
        "clip=file://{}?loop=true",
        asset(&format!("{TD}/short_hamilton_clip.mp4")).display()
    )
}

pub struct Launcher {
    pub child: Child,
    pub base: String,
    /// An `Authorization` value `events` sends (a launcher with sign-in on).
    pub authorization: Option<String>,
}

impl Launcher {
    pub fn start(args: &[String], envs: &[(&str, &str)]) -> Launcher {
        let mut cmd = launcher_command();
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Launcher::wait_listening(cmd.spawn().expect("the launcher starts"))
    }

    /// Waits for the line the launcher prints once it listens (after anything a wrapper
    /// script printed before it).
    pub fn wait_listening(mut child: Child) -> Launcher {
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let base = loop {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                panic!("exited before listening: {:?}", child.wait());
            }
            if let Some(base) = line.trim().strip_prefix("facerec-launcher listening on ") {
                break base.to_string();
            }
        };
        // Keep draining stdout so that the child never blocks on a full pipe.
        std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        Launcher {
            child,
            base,
            authorization: None,
        }
    }

    /// The sample clip, looped, with the demo's gallery.
    pub fn clip() -> Launcher {
        Launcher::start(
            &[
                "--gallery".into(),
                gallery().display().to_string(),
                "--source".into(),
                clip_source(),
            ],
            &[],
        )
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get_json(&self, path: &str) -> Value {
        let mut r = ureq::get(&self.url(path)).call().unwrap();
        serde_json::from_reader(r.body_mut().as_reader()).unwrap()
    }

    pub fn camera(&self, name: &str) -> Value {
        let cams = self.get_json("/api/cameras");
        cams.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    pub fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&Launcher) -> bool,
    ) {
        let start = Instant::now();
        while !check(self) {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn metrics(&self) -> String {
        ureq::get(&self.url("/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// One series' value from `/metrics` (`series` is the name with its labels).
    pub fn metric(&self, series: &str) -> Option<f64> {
        metric_value(&self.metrics(), series)
    }

    /// The recognition events, as they arrive (after the recent backlog).
    pub fn events(&self) -> Receiver<Value> {
        let mut request = ureq::get(&self.url("/api/events"));
        if let Some(authorization) = &self.authorization {
            request = request.header("Authorization", authorization);
        }
        let response = request.call().unwrap();
        assert_eq!(
            response.headers().get("content-type").unwrap(),
            "text/event-stream"
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = BufReader::new(response.into_body().into_reader());
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { return };
                if let Some(data) = line.strip_prefix("data: ")
                    && tx.send(serde_json::from_str(data).unwrap()).is_err()
                {
                    return;
                }
            }
        });
        rx
    }

    /// Sends a JSON request with an optional bearer token; returns the status and the body.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        send(
            &self.url(path),
            method,
            token,
            "application/json",
            body.as_bytes(),
        )
    }

    pub fn frames(&self, camera: &str) -> u64 {
        self.camera(camera)["frames"].as_u64().unwrap_or(0)
    }

    pub fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "no exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The launcher's command, without settings inherited from the environment of the test run.
pub fn launcher_command() -> Command {
    clean_env(Command::new(BIN))
}

pub fn clean_env(mut cmd: Command) -> Command {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("FACEREC_")
            || [
                "RUST_LOG",
                "MODEL_FILENAME",
                "VIDEO_DEVICE_ID",
                "VIDEO_PROCESSING_FPS",
            ]
            .contains(&key.as_ref())
        {
            cmd.env_remove(key.as_ref());
        }
    }
    cmd.env("FACEREC_DATA_DIR", fresh_data_dir());
    // Sign-in off (reads open, writes behind FACEREC_API_TOKEN when set) unless a test passes
    // `--auth=true`, which wins over the environment: the tests of sign-in do, the others test
    // what lies behind it.
    cmd.env("FACEREC_AUTH", "false");
    cmd
}

/// Runs `cmd` with `input` on its stdin and waits for it.
pub fn pipe_through(cmd: &mut Command, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `cmd` to its end, or kills it after `limit` and fails: for a start-up that must fail,
/// so that a regression that lets it run fails the test instead of hanging it.
pub fn output_within(cmd: &mut Command, limit: Duration) -> std::process::Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().unwrap();
            let out = child.wait_with_output().unwrap();
            panic!(
                "still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

pub fn metric_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Waits up to `timeout` for an event that `wanted` accepts; the events before it are returned
/// too, in order.
pub fn wait_event(
    events: &Receiver<Value>,
    timeout: Duration,
    mut wanted: impl FnMut(&Value) -> bool,
) -> Result<(Value, Vec<Value>), Vec<Value>> {
    let until = Instant::now() + timeout;
    let mut before = Vec::new();
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return Ok((event, before)),
            Ok(event) => before.push(event),
            Err(_) => break,
        }
    }
    Err(before)
}

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a request with an optional bearer token and content type (empty: none) and an
/// optional body (empty: none); returns the status and the body as text.
pub fn send(
    url: &str,
    method: &str,
    token: Option<&str>,
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
    if let Some(t) = token {
        request = request.header("Authorization", format!("Bearer {t}"));
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

/// A multipart/form-data body with one `field` part per file, and its content type.
pub fn multipart(field: &str, files: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "facerec-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}
