//! The real `facerec-launcher` binary on loopback, with real clients: the sample clip as a
//! file camera, an HTTP MJPEG camera served by the test, browsers, VLC and GStreamer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::on_ci;
use serde_json::Value;

mod common;
use common::*;

/// Reads multipart/x-mixed-replace parts: returns each part's body.
struct Multipart<R: Read> {
    reader: BufReader<R>,
}

impl<R: Read> Multipart<R> {
    /// The next complete part: lines before a boundary are skipped, as bytes (a reader that
    /// joins mid-part, or reads raw chunked transfer encoding, sees binary data first).
    fn next_part(&mut self) -> Option<Vec<u8>> {
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line).ok()? == 0 {
                return None;
            }
            if line.starts_with(b"--frame\r\n") {
                break;
            }
        }
        let mut length = None;
        loop {
            line.clear();
            self.reader.read_until(b'\n', &mut line).ok()?;
            let header = String::from_utf8_lossy(&line);
            let header = header.trim_end();
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
    open_stream_for(url, Duration::from_secs(120))
}

/// A stream that ends (as if closed) after `limit`, so that a reader never hangs a test.
fn open_stream_for(url: &str, limit: Duration) -> Multipart<impl Read + use<>> {
    open_stream_as(url, limit, None)
}

/// [`open_stream_for`] with an `Authorization` header.
fn open_stream_as(
    url: &str,
    limit: Duration,
    authorization: Option<&str>,
) -> Multipart<impl Read + use<>> {
    let mut request = ureq::get(url);
    if let Some(authorization) = authorization {
        request = request.header("Authorization", authorization);
    }
    let response = request
        .config()
        .timeout_global(Some(limit))
        .build()
        .call()
        .unwrap();
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
    /// Stops sending without closing, and closes the listening socket (new connections are
    /// refused): a camera that hangs.
    frozen: Arc<AtomicBool>,
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
        let frozen = Arc::new(AtomicBool::new(false));
        let (stop2, frozen2, jpeg) = (stop.clone(), frozen.clone(), MjpegCamera::jpeg());
        let thread = std::thread::spawn(move || {
            let mut clients: Vec<std::thread::JoinHandle<()>> = Vec::new();
            let mut listener = Some(listener);
            while !stop2.load(Ordering::SeqCst) {
                if frozen2.load(Ordering::SeqCst) {
                    listener = None;
                }
                let Some(accepting) = &listener else {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                };
                match accepting.accept() {
                    Ok((mut conn, _)) => {
                        let (stop3, frozen3, jpeg) = (stop2.clone(), frozen2.clone(), jpeg.clone());
                        clients.push(std::thread::spawn(move || {
                            conn.set_nonblocking(false).unwrap();
                            let mut request = [0u8; 2048];
                            let _ = conn.read(&mut request);
                            let head = "HTTP/1.1 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=esp\r\nConnection: close\r\n\r\n";
                            if conn.write_all(head.as_bytes()).is_err() {
                                return;
                            }
                            while !stop3.load(Ordering::SeqCst) {
                                if frozen3.load(Ordering::SeqCst) {
                                    std::thread::sleep(Duration::from_millis(20));
                                    continue;
                                }
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
            frozen,
            thread: Some(thread),
        }
    }

    fn freeze(&self) {
        self.frozen.store(true, Ordering::SeqCst);
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
    let events = launcher.events();
    let (event, _) = wait_event(&events, Duration::from_secs(30), |e| e["name"] == MIRANDA)
        .expect("an event naming Miranda");
    assert_eq!(event["camera"], "clip");
    assert!(event["distance"].as_f64().unwrap() < 0.6);
    assert_eq!(event["box"].as_array().unwrap().len(), 4);
    // A name is only announced once the track's vote is sure of it, from a usable face.
    let confidence = event["confidence"].as_f64().unwrap();
    let quality = event["quality"].as_f64().unwrap();
    assert!(
        confidence > 0.0 && confidence <= 1.0 && quality > 0.0 && quality <= 1.0,
        "{event}"
    );
    // Over a whole pass of the looping clip, an event comes when a track is named and again
    // only when its decided name changes: never twice for one name in one track.
    let pass = wait_event(&events, Duration::from_secs(10), |_| false).unwrap_err();
    let mut names_per_track: HashMap<u64, Vec<String>> = HashMap::new();
    // (`ended` events repeat the track's last name by design: one per track, at its end.)
    for e in std::iter::once(&event)
        .chain(&pass)
        .filter(|e| e["kind"] != "ended")
    {
        names_per_track
            .entry(e["track_id"].as_u64().unwrap())
            .or_default()
            .push(e["name"].as_str().unwrap().to_string());
    }
    for (track, names) in &names_per_track {
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(
            unique.len(),
            names.len(),
            "track {track} announced {names:?}"
        );
    }

    // Rates are measured over a second; the file plays at 29.97 fps, served at most at 15.
    launcher.wait_for("rates", Duration::from_secs(10), |l| {
        let cam = l.camera("clip");
        cam["output_fps"].as_f64().unwrap() > 10.0 && cam["input_fps"].as_f64().unwrap() > 25.0
    });
    assert_eq!(launcher.camera("clip")["state"], "playing");
    check_metric_values(&launcher);

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

/// `/metrics` during the clip, by value: the clip shows Miranda in about half its frames, is
/// served at the default cap of 15 fps, and every processed frame is timed.
fn check_metric_values(launcher: &Launcher) {
    let named = "facerec_named_faces{camera=\"clip\"}";
    launcher.wait_for("a named face in /metrics", Duration::from_secs(20), |l| {
        l.metric(named).is_some_and(|n| n >= 1.0)
    });
    launcher.wait_for("processed_fps > 0", Duration::from_secs(10), |l| {
        l.metric("facerec_processed_fps{camera=\"clip\"}")
            .is_some_and(|f| f > 0.0)
    });
    // The cap, as the gauge reports it (sampled over 5 s) and as the encoder's counter shows it
    // (`frames` counts the frames out of facerec, which the cap does not touch).
    let encoded = |l: &Launcher| l.camera("clip")["frames_encoded"].as_u64().unwrap();
    let (frames_before, at) = (encoded(launcher), Instant::now());
    let mut rates = Vec::new();
    for _ in 0..5 {
        std::thread::sleep(Duration::from_secs(1));
        rates.push(
            launcher
                .metric("facerec_output_fps{camera=\"clip\"}")
                .unwrap(),
        );
    }
    let counted = (encoded(launcher) - frames_before) as f64 / at.elapsed().as_secs_f64();
    eprintln!("output_fps samples {rates:?}, counted {counted:.2} fps");
    // Only the cap is asserted: on a loaded machine the clip may be processed slower.
    assert!(
        rates.iter().all(|r| *r > 0.0 && *r <= 15.5),
        "output_fps outside (0, 15.5] with --max-fps 15: {rates:?}"
    );
    assert!(
        counted > 0.0 && counted <= 15.5,
        "{counted} frames/s served with --max-fps 15"
    );

    let metrics = launcher.metrics();
    // The inference histogram: buckets in increasing `le`, cumulative, ending in +Inf = count.
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in metrics.lines() {
        if let Some(rest) = line.strip_prefix("facerec_inference_seconds_bucket{") {
            let (labels, value) = rest.split_once("} ").unwrap();
            let mut labels: Vec<&str> = labels.split(',').collect();
            labels.sort();
            let ["camera=\"clip\"", le] = labels[..] else {
                panic!("unexpected labels: {line}")
            };
            let le = le.strip_prefix("le=\"").unwrap().trim_end_matches('"');
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().unwrap()
            };
            buckets.push((le, value.parse().unwrap()));
        }
    }
    assert_eq!(buckets.len(), 12, "11 bounds and +Inf:\n{metrics}");
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "buckets are not cumulative in increasing order: {buckets:?}"
    );
    let count = metric_value(&metrics, "facerec_inference_seconds_count{camera=\"clip\"}").unwrap();
    let sum = metric_value(&metrics, "facerec_inference_seconds_sum{camera=\"clip\"}").unwrap();
    assert!(count > 0.0 && sum > 0.0, "count {count}, sum {sum}");
    assert_eq!(
        buckets.last().unwrap().1,
        count,
        "+Inf bucket against _count"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "facerec_camera_state{camera=\"clip\",state=\"playing\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "facerec_camera_state{camera=\"clip\",state=\"reconnecting\"}"
        ),
        Some(0.0)
    );
    assert_eq!(
        metric_value(
            &metrics,
            "facerec_inference_provider{camera=\"clip\",provider=\"cpu\"}"
        ),
        Some(1.0)
    );
    // One stream client is open (the test's), and the exposition is valid Prometheus text.
    assert_eq!(
        metric_value(&metrics, "facerec_clients{camera=\"clip\"}"),
        Some(1.0)
    );
    // Issue 27's figures: the encoder runs for the client; detections are counted and rated;
    // the scheduler's waits are a histogram of 11 bounds and +Inf (empty without a shared
    // engine's waits, but listed).
    let clip = |family: &str| metric_value(&metrics, &format!("{family}{{camera=\"clip\"}}"));
    assert!(
        clip("facerec_frames_encoded_total").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(
        clip("facerec_detections_total").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(
        clip("facerec_detect_fps").is_some_and(|n| n > 0.0),
        "{metrics}"
    );
    assert!(clip("facerec_camera_overloaded").is_some(), "{metrics}");
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("facerec_scheduler_wait_seconds_bucket{"))
            .count(),
        12,
        "{metrics}"
    );
    assert!(metric_value(&metrics, "facerec_engine_utilisation").is_some());
    if tool("promtool") {
        // promtool lints the Prometheus text format, where a counter's family is named with
        // its `_total`; the launcher serves OpenMetrics, where the family is named without it.
        // Renamed as Prometheus does when it ingests OpenMetrics.
        let counters: Vec<String> = metrics
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .filter_map(|l| l.strip_suffix(" counter"))
            .map(str::to_string)
            .collect();
        let as_text: String = metrics
            .lines()
            .map(|line| {
                for family in &counters {
                    for prefix in ["# HELP ", "# TYPE "] {
                        if let Some(rest) = line.strip_prefix(&format!("{prefix}{family} ")) {
                            return format!("{prefix}{family}_total {rest}\n");
                        }
                    }
                }
                format!("{line}\n")
            })
            .collect();
        let out = common::pipe_through(
            Command::new("promtool").args(["check", "metrics"]),
            as_text.as_bytes(),
        );
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{metrics}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
            let shot_dir = temp_dir("chromium");
            let shot = shot_dir.path().join(format!("page-{attempt}.png"));
            let profile = temp_dir("chromium-profile");
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
                .arg(format!("--user-data-dir={}", profile.path().display()))
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
        let dir = dir.path();
        let out_file = dir.join("recorded.mjpg");
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
    // The 30 fps pattern running before anything is measured (frames are encoded from the first
    // client on).
    launcher.wait_for("30 fps", Duration::from_secs(30), |l| {
        l.camera("pattern")["processed_fps"]
            .as_f64()
            .is_some_and(|f| f >= 25.0)
    });
    let url = launcher.url("/cameras/pattern/stream.mjpg");
    // (frames, bytes) one reader gets in `seconds`.
    let count_for = |url: String, seconds: u64| {
        std::thread::spawn(move || {
            let mut stream = open_stream_for(&url, Duration::from_secs(seconds + 1));
            let until = Instant::now() + Duration::from_secs(seconds);
            let (mut n, mut bytes) = (0u32, 0usize);
            while Instant::now() < until
                && let Some(part) = stream.next_part()
            {
                n += 1;
                bytes += part.len();
            }
            (n, bytes)
        })
    };
    let (alone, alone_bytes) = count_for(url.clone(), 4).join().unwrap();

    // One client that asks for the stream and never reads a byte, with the smallest receive
    // buffer the kernel allows: the launcher's writes to it must block within a few frames.
    let address: std::net::SocketAddr =
        launcher.base.trim_start_matches("http://").parse().unwrap();
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(1024).unwrap();
    let receive_buffer = socket.recv_buffer_size().unwrap();
    socket.connect(&address.into()).unwrap();
    let mut stalled = TcpStream::from(socket);
    write!(
        stalled,
        "GET /cameras/pattern/stream.mjpg HTTP/1.1\r\nHost: {address}\r\n\r\n"
    )
    .unwrap();
    let held = Instant::now();

    // 19 readers right after the stall began, and 19 more after 24 s of it.
    std::thread::sleep(Duration::from_secs(1));
    let readers: Vec<_> = (0..19).map(|_| count_for(url.clone(), 4)).collect();
    let early: Vec<u32> = readers.into_iter().map(|t| t.join().unwrap().0).collect();
    std::thread::sleep(Duration::from_secs(24).saturating_sub(held.elapsed()));
    let readers: Vec<_> = (0..19).map(|_| count_for(url.clone(), 4)).collect();
    let late: Vec<u32> = readers.into_iter().map(|t| t.join().unwrap().0).collect();
    eprintln!(
        "one client alone: {alone} frames ({alone_bytes} bytes) in 4 s; 19 clients beside a stalled one, after 1 s: {early:?}, after 24 s: {late:?}"
    );
    assert!(alone >= 50, "{alone} frames in 4 s at 15 fps");
    for n in early.iter().chain(&late) {
        assert!(
            *n as f64 >= 0.9 * alone as f64,
            "a client got {n} frames against {alone} alone"
        );
    }
    // Finished readers are noticed at the next frame they cannot be sent; the stalled one is
    // still connected, its stream blocked in a write.
    launcher.wait_for(
        "only the stalled client to be left",
        Duration::from_secs(5),
        |l| l.metric("facerec_clients{camera=\"pattern\"}") == Some(1.0),
    );
    std::thread::sleep(Duration::from_secs(30).saturating_sub(held.elapsed()));

    // After 30 s (about 450 frames), the stalled client holds no more than its buffer: what
    // the launcher could not send stayed unsent, rather than queuing up somewhere.
    stalled.set_nonblocking(true).unwrap();
    let mut buffer = vec![0u8; 1 << 20];
    let queued = stalled.peek(&mut buffer).unwrap();
    let per_frame = alone_bytes / alone as usize;
    eprintln!(
        "after {:?} the stalled client (receive buffer {receive_buffer} bytes) has {queued} bytes queued; a frame is {per_frame} bytes",
        held.elapsed()
    );
    assert!(
        queued <= receive_buffer,
        "{queued} bytes reached a client with a {receive_buffer}-byte receive buffer"
    );
    assert!(
        queued < 3 * per_frame,
        "{queued} bytes, {per_frame} per frame"
    );
    // Reading again, it gets whole, current frames: it was held, not dropped.
    stalled.set_nonblocking(false).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut resumed = Multipart {
        reader: BufReader::new(stalled),
    };
    for _ in 0..5 {
        let jpeg = resumed.next_part().expect("the stalled client resumes");
        assert!(image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).is_ok());
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn register_and_the_write_api_token() {
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
    // `key` is the API token for /register (ignored by launchers that do not check it).
    let register = launcher.url(&format!(
        "/register?ip=127.0.0.1:{}&token=abc&key=s3cret",
        esp.port
    ));
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
    // The API shows the ESP32's token masked (issue 25); that it is `abc` is the "already
    // registered" above.
    assert_eq!(
        launcher.camera(&name)["uri"],
        format!("http://127.0.0.1:{}/stream?token=***", esp.port)
    );
    let bad = ureq::get(&launcher.url("/register?ip=evil.example/x&token=a&key=s3cret")).call();
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
    drop(esp);
}

/// A format 1 gallery (the fixture written before format 3) loads in the launcher: its five
/// people are listed, and reloading it is accepted.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_version_1_gallery_loads_and_lists_its_people() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../gst-facerec/core/tests/fixtures/gallery-v1.data");
    let launcher = Launcher::start(
        &[
            "--gallery".into(),
            fixture.display().to_string(),
            "--source".into(),
            "clip=test://?pattern=ball".into(),
        ],
        &[],
    );
    let people = launcher.get_json("/api/people");
    let names: Vec<&str> = people
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "alex_lacamoire",
            "biden",
            "kit_harington",
            "obama",
            "rose_leslie"
        ]
    );
    let (status, body) = launcher.request("POST", "/api/gallery/reload", None, "");
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["people"], 5, "{body}");
    // Loading does not rewrite it: upgrading is facerec-model's job.
    assert_eq!(
        facerec_core::gallery::Gallery::load(&fixture)
            .unwrap()
            .format_version(),
        1
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn gallery_reload_changes_the_names_and_needs_the_token() {
    if !ready() {
        return;
    }
    let _serial = serial();
    // First Miranda's photo under another name; then the demo gallery, under the same path.
    const BEFORE: &str = "Not Yet Reloaded";
    let first = make_gallery("reload-first", &[(BEFORE, "lin-manuel-miranda.png")]);
    let live_dir = temp_dir("reload-live");
    let live = live_dir.path().join("model.data");
    std::fs::copy(&first, &live).unwrap();
    let launcher = Launcher::start(
        &[
            "--gallery".into(),
            live.display().to_string(),
            "--source".into(),
            clip_source(),
        ],
        &[("FACEREC_API_TOKEN", "s3cret")],
    );
    let events = launcher.events();
    let (_, before) = wait_event(&events, Duration::from_secs(30), |e| e["name"] == BEFORE)
        .expect("Miranda named after the first gallery");
    assert!(before.iter().all(|e| e["name"] != MIRANDA), "{before:?}");

    // The file is replaced atomically, as a deployment would.
    let staged = live.with_extension("new");
    std::fs::copy(gallery(), &staged).unwrap();
    std::fs::rename(&staged, &live).unwrap();
    let reload = |token: Option<&str>| launcher.request("POST", "/api/gallery/reload", token, "");
    let (status, body) = reload(None);
    assert_eq!(
        (status, body.as_str()),
        (
            401,
            r#"{"error":"sign-in required: a session, an API token (Authorization: Bearer) or HTTP Basic credentials"}"#
        )
    );
    assert_eq!(reload(Some("wrong")).0, 401);
    // A refused reload changes nothing: the clip keeps being named after the first gallery.
    let between = wait_event(&events, Duration::from_secs(5), |_| false).unwrap_err();
    assert!(
        between.iter().all(|e| e["name"] != MIRANDA),
        "names changed without the token: {between:?}"
    );

    let (status, body) = reload(Some("s3cret"));
    assert_eq!(status, 200, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!((&body["people"], &body["cameras"]), (&2.into(), &1.into()));
    let (named, _) = wait_event(&events, Duration::from_secs(15), |e| e["name"] == MIRANDA)
        .expect("Miranda named after the reload");
    assert_eq!(named["camera"], "clip");
    // From then on the old name is gone.
    let after = wait_event(&events, Duration::from_secs(4), |_| false).unwrap_err();
    // Tracks named before the reload end with their old name: only new names count.
    assert!(
        after
            .iter()
            .filter(|e| e["kind"] != "ended")
            .all(|e| e["name"] != BEFORE),
        "the old gallery is still in use: {after:?}"
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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

/// The launcher's stderr when it refuses to start: exactly one line.
fn start_failure(args: &[&str]) -> String {
    let out = launcher_command().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} started");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{args:?}: not one line:\n{err}");
    err.trim_end().to_string()
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
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

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn settings_come_from_flags_then_the_environment_then_the_file() {
    if !ready() {
        return;
    }
    let _serial = serial();
    // The same setting three ways. A 30 fps test pattern capped at 2, 5 or 10 fps passes every
    // 15th, 6th or 3rd frame, so the served rate says which one won (load only lowers it).
    let config_dir = temp_dir("precedence");
    let config = config_dir.path().join("facerec.yaml");
    std::fs::write(
        &config,
        "max-fps: 10\nsources:\n  - name: pattern\n    uri: test://\n",
    )
    .unwrap();
    let served_fps = |flag: &[&str], env: &[(&str, &str)]| {
        let mut args = vec!["--config".to_string(), config.display().to_string()];
        args.extend(flag.iter().map(|a| a.to_string()));
        let launcher = Launcher::start(&args, env);
        launcher.wait_for("frames", Duration::from_secs(30), |l| {
            l.frames("pattern") > 3
        });
        // A viewer, for whom the frames are encoded (at the cap): it reads until the launcher
        // is gone or its 8 s are up.
        let url = launcher.url("/cameras/pattern/stream.mjpg");
        std::thread::spawn(move || {
            let mut stream = open_stream_for(&url, Duration::from_secs(8));
            while stream.next_part().is_some() {}
        });
        let encoded = |l: &Launcher| l.camera("pattern")["frames_encoded"].as_u64().unwrap();
        launcher.wait_for("the encoder to run", Duration::from_secs(10), |l| {
            encoded(l) > 0
        });
        let (before, at) = (encoded(&launcher), Instant::now());
        std::thread::sleep(Duration::from_secs(4));
        (encoded(&launcher) - before) as f64 / at.elapsed().as_secs_f64()
    };
    let all_three = served_fps(&["--max-fps", "2"], &[("FACEREC_MAX_FPS", "5")]);
    let env_and_file = served_fps(&[], &[("FACEREC_MAX_FPS", "5")]);
    let file_only = served_fps(&[], &[]);
    eprintln!(
        "flag+env+file: {all_three:.2} fps, env+file: {env_and_file:.2} fps, file: {file_only:.2} fps"
    );
    let nearest = |fps: f64| {
        [2.0, 5.0, 10.0]
            .into_iter()
            .min_by(|a: &f64, b: &f64| (a - fps).abs().total_cmp(&(b - fps).abs()))
            .unwrap()
    };
    for (what, got, want) in [
        (
            "the flag (2) over FACEREC_MAX_FPS and the file",
            all_three,
            2.0,
        ),
        ("FACEREC_MAX_FPS (5) over the file", env_and_file, 5.0),
        ("the file (10)", file_only, 10.0),
    ] {
        assert!(
            got <= want + 0.5 && nearest(got) == want,
            "{what}: served {got:.2} fps, expected {want}"
        );
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn demo_environment_variables_and_the_media_folder() {
    if !ready() {
        return;
    }
    let _serial = serial();
    // A video device number that does not exist here.
    let device = (7..100)
        .find(|n| !Path::new(&format!("/dev/video{n}")).exists())
        .unwrap();
    let media = temp_dir("media");
    let media = media.path();
    let clip = asset(&format!("{TD}/short_hamilton_clip.mp4"));
    std::fs::copy(&clip, media.join("clip.mp4")).unwrap();
    let link = media.join("link.mp4");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&clip, &link).unwrap();
    let gallery = gallery();
    let launcher = Launcher::start(
        &["--media-dir".into(), media.display().to_string()],
        &[
            ("VIDEO_DEVICE_ID", &device.to_string()),
            ("MODEL_FILENAME", gallery.to_str().unwrap()),
        ],
    );

    // VIDEO_DEVICE_ID=N is camera cam0 on /dev/videoN; with no such device it retries, saying why.
    let cam = launcher.camera("cam0");
    assert_eq!(cam["uri"], format!("v4l2:///dev/video{device}"), "{cam}");
    let reconnects = "facerec_reconnects_total{camera=\"cam0\"}";
    launcher.wait_for("cam0 to retry twice", Duration::from_secs(15), |l| {
        l.metric(reconnects).is_some_and(|n| n >= 2.0)
    });
    launcher.wait_for("cam0 to say why", Duration::from_secs(5), |l| {
        l.camera("cam0")["state"] == "reconnecting"
    });
    let reason = launcher.camera("cam0")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains(&format!("/dev/video{device}")) && reason.contains("; retrying in "),
        "{reason}"
    );

    // A file inside --media-dir plays; the gallery came from MODEL_FILENAME.
    let post = |name: &str, path: &Path| {
        launcher.request(
            "POST",
            "/api/cameras",
            None,
            &serde_json::json!({ "name": name, "uri": format!("file://{}", path.display()) })
                .to_string(),
        )
    };
    let events = launcher.events();
    let (status, body) = post("clip", &media.join("clip.mp4"));
    assert_eq!(status, 201, "{body}");
    let (event, _) = wait_event(&events, Duration::from_secs(30), |e| e["name"] == MIRANDA)
        .expect("Miranda named with the MODEL_FILENAME gallery");
    assert_eq!(event["camera"], "clip");
    launcher.wait_for("the clip to play", Duration::from_secs(10), |l| {
        l.camera("clip")["state"] == "playing"
    });

    // Outside it, directly or through a link, is refused.
    let (status, body) = post("outside", &clip);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is outside the media folder"), "{body}");
    let (status, body) = post("link", &link);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("is outside the media folder"), "{body}");
    assert!(launcher.camera("outside").is_null() && launcher.camera("link").is_null());
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_camera_that_hangs_is_rebuilt_after_10_s_with_growing_backoff() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let esp = MjpegCamera::serve(0);
    let launcher = Launcher::start(
        &[
            "--source".into(),
            format!("esp=http://127.0.0.1:{}/stream", esp.port),
        ],
        &[],
    );
    launcher.wait_for("the camera to play", Duration::from_secs(30), |l| {
        l.camera("esp")["state"] == "playing" && l.frames("esp") > 5
    });
    // It stops sending but keeps the connection open, then refuses new ones.
    esp.freeze();
    let frozen = Instant::now();
    let reconnects = "facerec_reconnects_total{camera=\"esp\"}";
    let before = launcher.metric(reconnects).unwrap_or(0.0);
    launcher.wait_for("the stall to be noticed", Duration::from_secs(25), |l| {
        l.camera("esp")["state"] == "reconnecting"
    });
    let noticed = frozen.elapsed();
    let reason = launcher.camera("esp")["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        noticed >= Duration::from_secs(9) && noticed <= Duration::from_secs(20),
        "a 10 s stall noticed after {noticed:?}"
    );
    assert_eq!(reason, "no frame for 10 s; retrying in 0.5 s");

    // Each failed attempt doubles the delay: (reconnect count, delay) as the API reports them.
    let mut seen: Vec<(f64, f64)> = Vec::new();
    let until = Instant::now() + Duration::from_secs(25);
    while Instant::now() < until && seen.last().is_none_or(|(n, _)| *n < before + 5.0) {
        let cam = launcher.camera("esp");
        let count = launcher.metric(reconnects).unwrap_or(0.0);
        if cam["state"] == "reconnecting"
            && seen.last().is_none_or(|(n, _)| count > *n)
            && let Some(delay) = cam["reason"].as_str().and_then(|r| {
                r.rsplit_once("retrying in ")?
                    .1
                    .strip_suffix(" s")?
                    .parse()
                    .ok()
            })
        {
            seen.push((count, delay));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("(reconnects, delay in s) after the stall: {seen:?}");
    assert_eq!(seen.first(), Some(&(before + 1.0, 0.5)), "{seen:?}");
    assert!(
        seen.last().is_some_and(|(n, _)| *n >= before + 5.0),
        "fewer than 5 attempts in 25 s: {seen:?}"
    );
    for pair in seen.windows(2) {
        let ((n0, d0), (n1, d1)) = (pair[0], pair[1]);
        assert_eq!(
            d1,
            (d0 * 2f64.powf(n1 - n0)).min(30.0),
            "the delay doubles per attempt: {seen:?}"
        );
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_demo_script_serves_the_clip_and_stops_on_a_signal() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.sh");
    // The binaries of this build: the launcher under test, and facerec-model beside it (built
    // by the workspace's tests; a release build here would take minutes).
    let bin = Path::new(BIN).parent().unwrap();
    if !bin.join("facerec-model").is_file() {
        assert!(!on_ci(), "{}/facerec-model is missing", bin.display());
        eprintln!(
            "\n!!!! SKIPPED: build facerec-model first (cargo build -p facerec-model) !!!!\n"
        );
        return;
    }
    // Setup without apt, a free port, and a launcher option passed through after `--`.
    let mut cmd = clean_env(Command::new(&script));
    cmd.args(["--no-apt", "--", "--max-clients", "1"])
        .env_remove("FACEREC_AUTH")
        .env("FACEREC_BIN_DIR", bin)
        .env("LISTEN", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    cmd.env_remove("INPUT").env_remove("FACES_DIR");
    // Its own process group, ended whatever happens, so a regression that leaves the launcher
    // behind cannot outlive the test.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .status();
        }
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    let _group = Group(child.id());
    // What the demo says before the launcher takes over: where to go and how to sign in.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    // (after what the setup step printed)
    let (said, password) = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "demo.sh said no URL"
        );
        if let Some(password) = line.trim_end().strip_prefix(
            "launcher/demo.sh: open http://127.0.0.1:0/ and sign in as admin with password ",
        ) {
            break (line.clone(), password.to_string());
        }
    };
    assert_eq!(password.len(), 16, "{said}");
    let base = loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "exited before listening"
        );
        if let Some(base) = line.trim().strip_prefix("facerec-launcher listening on ") {
            break base.to_string();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    let mut launcher = Launcher {
        child,
        base,
        authorization: None,
    };
    eprintln!("demo.sh listening after {:?}", started.elapsed());
    // The script ends by exec'ing the launcher, so a signal reaches it and nothing is left.
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", launcher.child.id())).unwrap();
    assert_eq!(comm.trim(), "facerec-launche");
    // Sign-in is on, as a user gets the demo: the printed password opens it.
    let (status, _) = launcher.request("GET", "/api/cameras", None, "");
    assert_eq!(status, 401);
    let authorization = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("admin:{password}"))
    );
    launcher.authorization = Some(authorization.clone());

    let events = launcher.events();
    let mut stream = open_stream_as(
        &launcher.url("/cameras/clip/stream.mjpg"),
        Duration::from_secs(120),
        Some(&authorization),
    );
    let jpeg = stream.next_part().expect("a frame");
    let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((image.width(), image.height()), (640, 360));
    wait_event(&events, Duration::from_secs(30), |e| e["name"] == MIRANDA)
        .expect("an event naming Miranda");
    // --max-clients 1 reached the launcher: a second stream is refused.
    let second = ureq::get(&launcher.url("/cameras/clip/stream.mjpg"))
        .header("Authorization", &authorization)
        .config()
        .http_status_as_error(false)
        .build()
        .call()
        .unwrap();
    assert_eq!(second.status(), 503);

    Command::new("kill")
        .args(["-INT", &launcher.child.id().to_string()])
        .status()
        .unwrap();
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = launcher.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(5),
            "no exit 5 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    drop(stream);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_demo_script_without_shared_or_network_serves_a_test_pattern_and_says_why() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("demo.sh");
    let bin = Path::new(BIN).parent().unwrap();
    // A fresh clone: no test data where FACEREC_SHARED_DIR points, an empty cache, and an
    // upstream that refuses connections. The models stay reachable (deploy/setup.sh would
    // otherwise fetch them), so only the clip and the faces are missing.
    let models = asset("models/yunet_s_dynamic.onnx");
    let hidden = temp_dir("demo-no-shared");
    let hidden = hidden.path();
    let cache = temp_dir("demo-empty-cache");
    let cache = cache.path();
    let stderr_dir = temp_dir("demo-fallback");
    let stderr_path = stderr_dir.path().join("stderr");
    let unreachable = "http://127.0.0.1:9";
    let mut cmd = clean_env(Command::new(&script));
    cmd.args(["--no-apt"])
        .env("FACEREC_BIN_DIR", bin)
        .env("LISTEN", "127.0.0.1:0")
        .env("FACEREC_SHARED_DIR", hidden)
        .env("FACEREC_MODEL_DIR", models.parent().unwrap())
        .env("FACEREC_DEMO_CACHE", cache)
        .env("FACEREC_DEMO_URL", unreachable)
        .env_remove("INPUT")
        .env_remove("FACES_DIR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    struct Group(u32);
    impl Drop for Group {
        fn drop(&mut self) {
            // Quiet: the group is usually gone by then.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.0)])
                .stderr(Stdio::null())
                .status();
        }
    }
    let child = cmd.spawn().unwrap();
    let _group = Group(child.id());
    let mut launcher = Launcher::wait_listening(child);

    // What the script said before the launcher took over: what is missing, where it looked,
    // the URL and curl's reason (its time masked), then the fallback.
    let stderr = std::fs::read_to_string(&stderr_path).unwrap();
    let said: Vec<String> = stderr
        .lines()
        .take(2)
        .map(|line| match (line.rfind(" after "), line.rfind(" ms: ")) {
            (Some(a), Some(b)) if a < b => format!("{} after N{}", &line[..a], &line[b..]),
            _ => line.to_string(),
        })
        .collect();
    assert_eq!(
        said,
        [
            format!(
                "demo-assets: no short_hamilton_clip.mp4, lin-manuel-miranda.png, alex-lacamoire.png in {}/testdata/face_recognition or {}, and fetching {unreachable}/short_hamilton_clip.mp4 failed: (7) Failed to connect to 127.0.0.1 port 9 after N ms: Couldn't connect to server",
                hidden.display(),
                cache.display()
            ),
            "launcher/demo.sh: serving without them: camera \"clip\" shows test://?pattern=ball instead of the sample clip, no face is known".to_string(),
        ],
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_dir(cache).unwrap().count(),
        0,
        "nothing is left in the cache"
    );

    // The page and the stream come up, from the test pattern, with no gallery.
    let (status, page) = launcher.request("GET", "/", None, "");
    assert_eq!(status, 200);
    assert!(page.contains("src=\"/cameras/clip/stream.mjpg\""), "{page}");
    assert_eq!(launcher.camera("clip")["uri"], "test://?pattern=ball");
    let mut stream = open_stream(&launcher.url("/cameras/clip/stream.mjpg"));
    let jpeg = stream.next_part().expect("a frame");
    let image = image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).unwrap();
    assert_eq!((image.width(), image.height()), (640, 360));
    assert_eq!(
        launcher.request("POST", "/api/gallery/reload", None, ""),
        (409, r#"{"error":"no gallery is configured"}"#.to_string())
    );
    let (status, _) = launcher.terminate();
    assert!(status.success(), "{status:?}");
    drop(stream);
}

/// The TensorRT/CUDA settings and the model variant, from the environment, reach the cameras'
/// facerec elements: on this machine without TensorRT the camera runs (on CPU) and the engine
/// cache folder that only the element creates appears; a variant the accuracy gate refused is
/// one line at start-up, in check_selectable's words.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn tensorrt_settings_from_the_environment_reach_the_element() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let out = launcher_command()
        .env("FACEREC_MODEL_VARIANT", "int8")
        .output()
        .unwrap();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ),
        (
            Some(1),
            format!(
                "facerec-launcher: {}",
                facerec_core::models::ModelVariant::Int8
                    .check_selectable()
                    .unwrap_err()
            )
            .as_str()
        )
    );
    // Strict: no TensorRT here, so the start fails in one line instead of falling back.
    let out = output_within(
        launcher_command()
            .args(["--source", "pattern=test://"])
            .env("FACEREC_PROVIDER", "tensorrt")
            .env("FACEREC_STRICT_PROVIDER", "true"),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.trim_end().lines().last().unwrap_or_default();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        last.starts_with("facerec-launcher: execution provider 'tensorrt' is not available (")
            && last.ends_with(") and strict provider mode is on"),
        "{stderr}"
    );
    let dir = temp_dir("trt-engines");
    let engines = dir.path().join("engines");
    let launcher = Launcher::start(
        &["--source".into(), "pattern=test://".into()],
        &[
            ("FACEREC_PROVIDER", "tensorrt"),
            ("FACEREC_TRT_ENGINE_CACHE", engines.to_str().unwrap()),
            ("FACEREC_TRT_FP16", "false"),
            ("FACEREC_CUDA_DEVICE", "0"),
            ("FACEREC_MODEL_VARIANT", "fp32"),
        ],
    );
    launcher.wait_for("frames", Duration::from_secs(60), |l| {
        l.frames("pattern") > 3
    });
    assert!(engines.is_dir(), "{} was not created", engines.display());
    // TensorRT was asked for; /metrics tells what runs.
    let metrics = launcher.metrics();
    assert_eq!(
        metric_value(
            &metrics,
            "facerec_inference_provider{camera=\"pattern\",provider=\"cpu\"}"
        ),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(
        metrics
            .lines()
            .filter(|l| l.starts_with("facerec_inference_provider{"))
            .count(),
        1,
        "{metrics}"
    );
}
