//! The real `facerec-launcher` binary on loopback, with real clients: the sample clip as a
//! file camera, an HTTP MJPEG camera served by the test, browsers, VLC and GStreamer.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use facerec_core::engine::{Engine, EngineConfig, load_rgb};
use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{require, require_runtime};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_facerec-launcher");
const TD: &str = "testdata/face_recognition";
const MIRANDA: &str = "Lin-Manuel Miranda";

/// Launchers are CPU-heavy: one test at a time keeps rates meaningful on two cores.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

fn on_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

fn ready() -> bool {
    require("models/yunet_s_dynamic.onnx").is_some() && require(TD).is_some() && require_runtime()
}

fn asset(relative: &str) -> PathBuf {
    require(relative).expect("checked by ready()")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "facerec-launcher-test-{}-{tag}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The demo's two known faces.
fn gallery() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let mut engine = Engine::new(EngineConfig::default()).unwrap();
        let mut g = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
        for (name, photo) in [
            (MIRANDA, "lin-manuel-miranda.png"),
            ("Alex Lacamoire", "alex-lacamoire.png"),
        ] {
            let face = engine
                .analyze(&load_rgb(&asset(&format!("{TD}/{photo}"))).unwrap())
                .unwrap()
                .remove(0);
            g.add(name, photo, face.embedding.unwrap()).unwrap();
        }
        let path = temp_dir("gallery").join("model.data");
        g.save(&path).unwrap();
        path
    })
    .clone()
}

fn clip_source() -> String {
    format!(
        "clip=file://{}?loop=true",
        asset(&format!("{TD}/short_hamilton_clip.mp4")).display()
    )
}

struct Launcher {
    child: Child,
    base: String,
}

impl Launcher {
    fn start(args: &[String], envs: &[(&str, &str)]) -> Launcher {
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", "127.0.0.1:0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the launcher starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("facerec-launcher listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Launcher { child, base }
    }

    /// The sample clip, looped, with the demo's gallery.
    fn clip() -> Launcher {
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

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn get_json(&self, path: &str) -> Value {
        let mut r = ureq::get(&self.url(path)).call().unwrap();
        serde_json::from_reader(r.body_mut().as_reader()).unwrap()
    }

    fn camera(&self, name: &str) -> Value {
        let cams = self.get_json("/api/cameras");
        cams.as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut check: impl FnMut(&Launcher) -> bool) {
        let start = Instant::now();
        while !check(self) {
            assert!(start.elapsed() < timeout, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn metrics(&self) -> String {
        ureq::get(&self.url("/metrics"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    fn frames(&self, camera: &str) -> u64 {
        self.camera(camera)["frames"].as_u64().unwrap_or(0)
    }

    fn terminate(&mut self) -> (std::process::ExitStatus, Duration) {
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

impl Drop for Launcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads multipart/x-mixed-replace parts: returns each part's body.
struct Multipart<R: Read> {
    reader: BufReader<R>,
}

impl<R: Read> Multipart<R> {
    fn next_part(&mut self) -> Option<Vec<u8>> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line).ok()? == 0 {
                return None;
            }
            if line.starts_with("--frame") {
                break;
            }
        }
        let mut length = None;
        loop {
            line.clear();
            self.reader.read_line(&mut line).ok()?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some(v) = header.strip_prefix("Content-Length: ") {
                length = v.parse::<usize>().ok();
            }
        }
        let mut body = vec![0; length?];
        self.reader.read_exact(&mut body).ok()?;
        Some(body)
    }
}

fn open_stream(url: &str) -> Multipart<impl Read + use<>> {
    let response = ureq::get(url).call().unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(content_type, "multipart/x-mixed-replace; boundary=frame");
    Multipart {
        reader: BufReader::new(response.into_body().into_reader()),
    }
}

/// A minimal ESP32-style MJPEG camera: `multipart/x-mixed-replace` JPEGs at 15 fps.
struct MjpegCamera {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MjpegCamera {
    fn jpeg() -> Arc<Vec<u8>> {
        static JPEG: OnceLock<Arc<Vec<u8>>> = OnceLock::new();
        JPEG.get_or_init(|| {
            let image = load_rgb(&asset(&format!("{TD}/two_people.jpg"))).unwrap();
            let small =
                image::imageops::resize(&image, 640, 376, image::imageops::FilterType::Triangle);
            let mut out = Vec::new();
            image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
                .encode_image(&small)
                .unwrap();
            Arc::new(out)
        })
        .clone()
    }

    fn serve(port: u16) -> MjpegCamera {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let (stop2, jpeg) = (stop.clone(), MjpegCamera::jpeg());
        let thread = std::thread::spawn(move || {
            let mut clients: Vec<std::thread::JoinHandle<()>> = Vec::new();
            while !stop2.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let (stop3, jpeg) = (stop2.clone(), jpeg.clone());
                        clients.push(std::thread::spawn(move || {
                            conn.set_nonblocking(false).unwrap();
                            let mut request = [0u8; 2048];
                            let _ = conn.read(&mut request);
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=esp\r\nConnection: close\r\n\r\n";
                            if conn.write_all(head.as_bytes()).is_err() {
                                return;
                            }
                            while !stop3.load(Ordering::SeqCst) {
                                let part = format!("--esp\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
                                if conn.write_all(part.as_bytes()).and_then(|_| conn.write_all(&jpeg)).and_then(|_| conn.write_all(b"\r\n")).is_err() {
                                    return;
                                }
                                std::thread::sleep(Duration::from_millis(66));
                            }
                            let _ = conn.shutdown(std::net::Shutdown::Both);
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
            for c in clients {
                let _ = c.join();
            }
        });
        MjpegCamera {
            port,
            stop,
            thread: Some(thread),
        }
    }

    fn kill(mut self) -> u16 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.port
    }
}

impl Drop for MjpegCamera {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[test]
fn streams_the_clip_with_events_cameras_and_metrics() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let launcher = Launcher::clip();
    launcher.wait_for("the clip to play", Duration::from_secs(30), |l| {
        l.camera("clip")["state"] == "playing"
    });

    let mut stream = open_stream(&launcher.url("/cameras/clip/stream.mjpg"));
    for _ in 0..10 {
        let jpeg = stream.next_part().expect("a part");
        let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .expect("a decodable JPEG");
        assert_eq!((image.width(), image.height()), (640, 360));
    }

    // SSE: a recognition event naming Miranda.
    let response = ureq::get(&launcher.url("/api/events")).call().unwrap();
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "text/event-stream"
    );
    let mut lines = BufReader::new(response.into_body().into_reader()).lines();
    let started = Instant::now();
    let event: Value = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no Miranda event"
        );
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            let event: Value = serde_json::from_str(data).unwrap();
            if event["name"] == MIRANDA {
                break event;
            }
        }
    };
    assert_eq!(event["camera"], "clip");
    assert!(event["distance"].as_f64().unwrap() < 0.6);
    assert_eq!(event["box"].as_array().unwrap().len(), 4);

    // Rates are measured over a second; the file plays at 29.97 fps, served at most at 15.
    launcher.wait_for("rates", Duration::from_secs(10), |l| {
        let cam = l.camera("clip");
        cam["output_fps"].as_f64().unwrap() > 10.0 && cam["input_fps"].as_f64().unwrap() > 25.0
    });
    assert_eq!(launcher.camera("clip")["state"], "playing");
    let metrics = launcher.metrics();
    for series in [
        "facerec_output_fps{camera=\"clip\"}",
        "facerec_processed_fps{camera=\"clip\"}",
        "facerec_inference_seconds_count{camera=\"clip\"}",
        "facerec_named_faces{camera=\"clip\"}",
        "facerec_clients{camera=\"clip\"}",
        "facerec_camera_state{camera=\"clip\",state=\"playing\"} 1",
    ] {
        assert!(
            metrics.contains(series),
            "{series} missing from /metrics:\n{metrics}"
        );
    }

    let snapshot = ureq::get(&launcher.url("/cameras/clip/snapshot.jpg"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_vec()
        .unwrap();
    assert!(image::load_from_memory(&snapshot).is_ok());
    assert!(
        open_stream(&launcher.url("/video_feed"))
            .next_part()
            .is_some(),
        "the old demo's /video_feed"
    );
    assert_eq!(
        ureq::get(&launcher.url("/readyz")).call().unwrap().status(),
        200
    );
    assert_eq!(
        ureq::get(&launcher.url("/healthz"))
            .call()
            .unwrap()
            .status(),
        200
    );
    let page = ureq::get(&launcher.url("/"))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(page.contains("/api/events") && page.contains("stream.mjpg"));
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "the page loads nothing from outside"
    );
}

fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

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

#[test]
fn real_clients_read_the_stream() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let launcher = Launcher::clip();
    launcher.wait_for("frames", Duration::from_secs(30), |l| l.frames("clip") > 5);
    let url = launcher.url("/cameras/clip/stream.mjpg");

    // GStreamer from another process.
    let out = Command::new("gst-launch-1.0")
        .args([
            "-q",
            "souphttpsrc",
            &format!("location={url}"),
            "!",
            "multipartdemux",
            "!",
            "jpegdec",
            "!",
            "fakesink",
            "num-buffers=20",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    if tool("ffprobe") {
        let out = Command::new("ffprobe")
            .args([
                "-v",
                "error",
                "-f",
                "mpjpeg",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=codec_name,width,height",
                "-of",
                "csv=p=0",
                &url,
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.trim(),
            "mjpeg,640,360",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    if tool("chromium") {
        // A few frames of the clip show no face: try up to three screenshots.
        let mut best = 0;
        for attempt in 0..3 {
            let shot = temp_dir("chromium").join(format!("page-{attempt}.png"));
            let out = Command::new("timeout")
                .args([
                    "60",
                    "chromium",
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                ])
                .args([
                    "--disable-component-update",
                    "--no-first-run",
                    "--window-size=1280,800",
                ])
                .arg(format!(
                    "--user-data-dir={}",
                    temp_dir("chromium-profile").display()
                ))
                .arg(format!("--screenshot={}", shot.display()))
                .arg(launcher.url("/"))
                .output()
                .unwrap();
            assert!(
                shot.exists(),
                "no screenshot: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let png = image::open(&shot).unwrap().to_rgb8();
            // Box edges and label bars are saturated green (known) or red (unknown).
            best = png
                .pixels()
                .filter(|p| {
                    let [r, g, b] = p.0;
                    (g > 150 && r < 70 && b < 70) || (r > 180 && g < 50 && b < 50)
                })
                .count();
            eprintln!(
                "chromium screenshot {}: {best} box-coloured pixels",
                shot.display()
            );
            if best > 150 {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        assert!(
            best > 150,
            "the page shows no annotated video ({best} box pixels)"
        );
    }

    if tool("cvlc") {
        let dir = temp_dir("vlc");
        let out_file = dir.join("recorded.mjpg");
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        // VLC refuses to run as root.
        let status = Command::new("timeout")
            .args([
                "10",
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
                &url,
            ])
            .args([
                "--sout",
                &format!("#std{{access=file,mux=mpjpeg,dst={}}}", out_file.display()),
            ])
            .output()
            .unwrap();
        let recorded = std::fs::read(&out_file).unwrap_or_default();
        let parts = recorded
            .windows(4)
            .filter(|w| w == b"\xff\xd8\xff\xe0" || w == b"\xff\xd8\xff\xdb")
            .count();
        eprintln!(
            "VLC recorded {} bytes, {parts} JPEG frames (exit {:?})",
            recorded.len(),
            status.status.code()
        );
        assert!(
            parts >= 5,
            "VLC played no stream: {}",
            String::from_utf8_lossy(&status.stderr)
        );
    }
}

#[test]
fn two_cameras_and_an_http_camera_that_comes_back() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let esp = MjpegCamera::serve(0);
    let esp_source = format!("esp=http://127.0.0.1:{}/stream", esp.port);
    let launcher = Launcher::start(
        &[
            "--gallery".into(),
            gallery().display().to_string(),
            "--source".into(),
            clip_source(),
            "--source".into(),
            esp_source,
        ],
        &[],
    );
    launcher.wait_for("both cameras", Duration::from_secs(30), |l| {
        l.frames("clip") > 5 && l.frames("esp") > 5
    });
    let cam = launcher.camera("esp");
    assert_eq!(cam["state"], "playing");
    let names: Vec<&str> = cam["faces"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "the two people of two_people.jpg are boxed: {cam}"
    );

    // The HTTP camera goes away: it reconnects with backoff, the file camera never stops.
    let port = esp.kill();
    launcher.wait_for(
        "the lost camera to be noticed",
        Duration::from_secs(20),
        |l| l.camera("esp")["state"] != "playing",
    );
    let clip_before = launcher.frames("clip");
    std::thread::sleep(Duration::from_secs(3));
    let clip_after = launcher.frames("clip");
    assert!(
        clip_after > clip_before + 20,
        "the clip kept streaming: {clip_before} -> {clip_after}"
    );
    let state = launcher.camera("esp");
    assert!(
        state["state"] == "reconnecting" || state["state"] == "starting",
        "{state}"
    );

    let esp = MjpegCamera::serve(port);
    let frames_before = launcher.frames("esp");
    launcher.wait_for("the camera to come back", Duration::from_secs(40), |l| {
        l.camera("esp")["state"] == "playing" && l.frames("esp") > frames_before + 5
    });
    let metrics = launcher.metrics();
    let reconnects: f64 = metrics
        .lines()
        .find(|l| l.starts_with("facerec_reconnects_total{camera=\"esp\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(reconnects >= 1.0, "reconnects: {reconnects}");
    drop(esp);
}

#[test]
fn twenty_clients_and_a_stalled_one_do_not_slow_each_other() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let launcher = Launcher::start(
        &[
            "--source".into(),
            "pattern=test://".into(),
            "--max-fps".into(),
            "15".into(),
        ],
        &[],
    );
    launcher.wait_for("frames", Duration::from_secs(30), |l| {
        l.frames("pattern") > 5
    });
    let url = launcher.url("/cameras/pattern/stream.mjpg");
    let count_for = |url: String, seconds: u64| {
        std::thread::spawn(move || {
            let mut stream = open_stream(&url);
            let until = Instant::now() + Duration::from_secs(seconds);
            let mut n = 0;
            while Instant::now() < until && stream.next_part().is_some() {
                n += 1;
            }
            n
        })
    };
    let alone = count_for(url.clone(), 4).join().unwrap();

    // One client that sends its request and never reads a byte.
    let address = launcher.base.trim_start_matches("http://").to_string();
    let mut stalled = TcpStream::connect(&address).unwrap();
    write!(
        stalled,
        "GET /cameras/pattern/stream.mjpg HTTP/1.1\r\nHost: {address}\r\n\r\n"
    )
    .unwrap();
    let readers: Vec<_> = (0..19).map(|_| count_for(url.clone(), 4)).collect();
    let counts: Vec<u32> = readers.into_iter().map(|t| t.join().unwrap()).collect();
    eprintln!(
        "one client alone: {alone} frames in 4 s; 19 clients beside a stalled one: {counts:?}"
    );
    assert!(alone >= 40, "{alone}");
    for n in &counts {
        assert!(
            *n as f64 >= 0.8 * alone as f64,
            "a client got {n} frames against {alone} alone"
        );
    }
    // Finished readers are noticed at the next frame they cannot be sent.
    launcher.wait_for(
        "only the stalled client to be left",
        Duration::from_secs(5),
        |l| {
            let metrics = l.metrics();
            metrics.contains("facerec_clients{camera=\"pattern\"} 1\n")
        },
    );
    drop(stalled);
}

#[test]
fn register_api_token_and_gallery_reload() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let esp = MjpegCamera::serve(0);
    let launcher = Launcher::start(
        &["--gallery".into(), gallery().display().to_string()],
        &[("FACEREC_API_TOKEN", "s3cret")],
    );

    // The ESP32 registration, twice.
    let register = launcher.url(&format!("/register?ip=127.0.0.1:{}&token=abc", esp.port));
    let name = format!("esp32-127-0-0-1-{}", esp.port);
    let body = ureq::get(&register)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(body, format!("{name} registered\n"));
    let body = ureq::get(&register)
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert_eq!(body, format!("{name} already registered\n"));
    launcher.wait_for("the registered camera", Duration::from_secs(30), |l| {
        l.frames(&name) > 3
    });
    assert_eq!(
        launcher.camera(&name)["uri"],
        format!("http://127.0.0.1:{}/stream?token=abc", esp.port)
    );
    let bad = ureq::get(&launcher.url("/register?ip=evil.example/x&token=a")).call();
    assert!(matches!(bad, Err(ureq::Error::StatusCode(400))), "{bad:?}");

    // The write API wants the token, and refuses local files and bad names.
    let post = |body: &str, token: Option<&str>| {
        let mut req = ureq::post(&launcher.url("/api/cameras"))
            .config()
            .http_status_as_error(false)
            .build();
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let mut r = req
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
    };
    assert_eq!(post(r#"{"name":"t","uri":"test://"}"#, None).0, 401);
    assert_eq!(
        post(r#"{"name":"t","uri":"test://"}"#, Some("wrong")).0,
        401
    );
    let (status, body) = post(
        r#"{"name":"etc","uri":"file:///etc/passwd"}"#,
        Some("s3cret"),
    );
    assert_eq!(status, 400);
    assert!(
        body.contains("file sources through the API are disabled"),
        "{body}"
    );
    let (status, body) = post(
        r#"{"name":"x","uri":"pipeline:filesrc location=/etc/shadow ! fakesink"}"#,
        Some("s3cret"),
    );
    assert_eq!(
        (status, body.contains("only be set by the operator")),
        (400, true),
        "{body}"
    );
    assert_eq!(
        post(r#"{"name":"../x","uri":"test://"}"#, Some("s3cret")).0,
        400
    );
    assert_eq!(
        post(r#"{"name":"t","uri":"test://"}"#, Some("s3cret")).0,
        201
    );
    assert_eq!(
        post(r#"{"name":"t","uri":"test://"}"#, Some("s3cret")).0,
        409
    );
    launcher.wait_for("the added camera", Duration::from_secs(30), |l| {
        l.frames("t") > 3
    });
    let delete = |token: &str| {
        ureq::delete(&launcher.url("/api/cameras/t"))
            .config()
            .http_status_as_error(false)
            .build()
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(delete("wrong"), 401);
    assert_eq!(delete("s3cret"), 204);
    assert_eq!(delete("s3cret"), 404);
    assert!(launcher.camera("t").is_null());

    let reload = ureq::post(&launcher.url("/api/gallery/reload"))
        .header("Authorization", "Bearer s3cret")
        .send_empty()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    let reload: Value = serde_json::from_str(&reload).unwrap();
    assert_eq!(reload["people"], 2);
    assert_eq!(reload["cameras"], 1);
    drop(esp);
}

#[test]
fn sigterm_during_streaming_exits_cleanly() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let mut launcher = Launcher::start(&["--source".into(), "pattern=test://".into()], &[]);
    launcher.wait_for("frames", Duration::from_secs(30), |l| {
        l.frames("pattern") > 5
    });
    let mut stream = open_stream(&launcher.url("/cameras/pattern/stream.mjpg"));
    assert!(stream.next_part().is_some());
    let reader = std::thread::spawn(move || while stream.next_part().is_some() {});
    let (status, took) = launcher.terminate();
    assert!(status.success(), "{status:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    reader.join().unwrap();
}

fn start_failure(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines().last().unwrap_or_default().to_string()
}

#[test]
fn start_up_errors_are_one_clear_line() {
    if !ready() {
        return;
    }
    let _serial = serial();
    assert_eq!(
        start_failure(&["--source", "cam0=foo://bar"]),
        "facerec-launcher: source cam0: unknown source scheme 'foo' in foo://bar (expected one of v4l2, nvargus, file, http, https, rtsp, test, pipeline)"
    );
    let missing = Path::new("/nonexistent/model.data");
    assert_eq!(
        start_failure(&["--gallery", missing.to_str().unwrap()]),
        format!(
            "facerec-launcher: gallery {}: cannot be read: No such file or directory (os error 2)",
            missing.display()
        )
    );
    assert_eq!(
        start_failure(&["--detector", "/nonexistent/yunet.onnx"]),
        "facerec-launcher: detector model not found at /nonexistent/yunet.onnx: set the element property or FACEREC_MODEL_DIR, or run `deploy/setup.sh`"
    );
    let busy = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = busy.local_addr().unwrap().to_string();
    assert_eq!(
        start_failure(&["--listen", &address]),
        format!(
            "facerec-launcher: cannot listen on {address}: Address already in use (os error 98)"
        )
    );
}

#[test]
fn announces_itself_over_mdns_when_asked() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let launcher = Launcher::start(&["--mdns".into()], &[]);
    let port: u16 = launcher.base.rsplit(':').next().unwrap().parse().unwrap();
    let browser = mdns_sd::ServiceDaemon::new().unwrap();
    let events = browser.browse("_http._tcp.local.").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut found = None;
    while Instant::now() < deadline && found.is_none() {
        if let Ok(mdns_sd::ServiceEvent::ServiceResolved(info)) =
            events.recv_timeout(Duration::from_millis(500))
            && info.get_fullname().starts_with("microshift-cam-reg.")
        {
            found = Some((info.get_hostname().to_string(), info.get_port()));
        }
    }
    let _ = browser.shutdown();
    assert_eq!(found, Some(("microshift-cam-reg.local.".to_string(), port)));
}
