//! Many cameras on one node (issue 27): live cameras share the process's inference engine, a
//! camera is never rebuilt because recognition lags behind, and frames are JPEG-encoded only
//! for somebody who watches them.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde_json::Value;

mod common;
use common::*;

/// The sample clip (640x360, 29.97 fps) as an H.264 byte stream, which `multifilesrc loop=true`
/// plays over and over (the MP4 ends with EOS after one pass: a live camera would be rebuilt).
fn clip_byte_stream() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = fixture_dir("clip-h264").join("clip.h264");
        let clip = asset(&format!("{TD}/short_hamilton_clip.mp4"));
        let out = Command::new("gst-launch-1.0")
            .args(["-q", "filesrc"])
            .arg(format!("location={}", clip.display()))
            .args(["!", "qtdemux", "!", "h264parse", "!"])
            .arg("video/x-h264,stream-format=byte-stream,alignment=au")
            .args(["!", "filesink"])
            .arg(format!("location={}", path.display()))
            .output()
            .expect("gst-launch-1.0 runs");
        assert!(
            out.status.success() && path.metadata().is_ok_and(|m| m.len() > 0),
            "cannot make {}: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        path
    })
    .clone()
}

/// A live camera playing the clip at its own rate, looping, without end.
fn live_clip_source(name: &str) -> String {
    format!(
        "{name}=pipeline:multifilesrc location={} loop=true \
         caps=\"video/x-h264,stream-format=byte-stream,framerate=30000/1001\" \
         ! h264parse ! decodebin ! identity sync=true",
        clip_byte_stream().display()
    )
}

/// Reads the parts of a `multipart/x-mixed-replace` response.
struct Parts<R: Read> {
    reader: BufReader<R>,
}

impl<R: Read> Parts<R> {
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

fn open_stream(url: &str) -> Parts<impl Read + use<>> {
    let response = ureq::get(url)
        .config()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .call()
        .unwrap();
    Parts {
        reader: BufReader::new(response.into_body().into_reader()),
    }
}

fn encoded(launcher: &Launcher, camera: &str) -> u64 {
    launcher.camera(camera)["frames_encoded"]
        .as_u64()
        .expect("frames_encoded in /api/cameras")
}

/// Waits until `camera` encodes nothing more (within 5 s of its last client or snapshot), and
/// returns its count of encoded frames.
fn wait_encoder_idle(launcher: &Launcher, camera: &str, when: &str) -> u64 {
    let idle_since = Instant::now();
    let mut last = encoded(launcher, camera);
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = encoded(launcher, camera);
        if now == last {
            return last;
        }
        last = now;
        assert!(
            idle_since.elapsed() < Duration::from_secs(5),
            "{when}: the encoder keeps running with no client"
        );
    }
}

/// Four live cameras on the sample clip in one launcher: each names Lin-Manuel Miranda, none is
/// rebuilt (recognition that lags behind is reported as overloaded, never a lost camera), and
/// with no stream client not one frame is JPEG-encoded.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn four_live_cameras_name_miranda_without_reconnects_or_encoding() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let names = ["cam1", "cam2", "cam3", "cam4"];
    let mut args = vec!["--gallery".to_string(), gallery().display().to_string()];
    for name in names {
        args.push("--source".into());
        args.push(live_clip_source(name));
    }
    let launcher = Launcher::start(&args, &[]);
    let events = launcher.events();
    let started = Instant::now();
    let mut named: BTreeMap<String, Duration> = BTreeMap::new();
    while named.len() < names.len() {
        let left = Duration::from_secs(120).saturating_sub(started.elapsed());
        match wait_event(&events, left, |e| {
            e["name"] == MIRANDA && !named.contains_key(e["camera"].as_str().unwrap_or(""))
        }) {
            Ok((event, _)) => {
                let camera = event["camera"].as_str().unwrap().to_string();
                named.insert(camera, started.elapsed());
            }
            Err(_) => panic!(
                "not every camera named {MIRANDA} within 120 s: {named:?}; cameras: {}",
                launcher.get_json("/api/cameras")
            ),
        }
    }
    eprintln!("{MIRANDA} named after: {named:?}");
    // Past the stall timeout (10 s, with a poll's slack): a camera whose watchdog followed the
    // encoder, idle with no client, would have been rebuilt by now.
    let watched = Duration::from_secs(16);
    std::thread::sleep(watched.saturating_sub(started.elapsed()));

    let metrics = launcher.metrics();
    let cameras = launcher.get_json("/api/cameras");
    for name in names {
        let camera = cameras
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == name)
            .unwrap_or(&Value::Null);
        eprintln!(
            "{name}: {} frames out of facerec, {} detections/s, overloaded {}",
            camera["frames"], camera["detect_fps"], camera["overloaded"]
        );
        assert_eq!(camera["state"], "playing", "{camera}");
        assert!(camera["overloaded"].is_boolean(), "{camera}");
        // 15 s at 29.97 fps from the launcher's start, less its start-up.
        assert!(camera["frames"].as_u64().unwrap_or(0) > 200, "{camera}");
        let series = |family: &str| format!("{family}{{camera=\"{name}\"}}");
        // Never rebuilt: no reconnect counted (the series appears with the first one).
        assert_eq!(
            metric_value(&metrics, &series("facerec_reconnects_total")).unwrap_or(0.0),
            0.0,
            "{name} was rebuilt:\n{metrics}"
        );
        // Nobody watched: nothing left the encoder, nothing was published.
        assert_eq!(
            metric_value(&metrics, &series("facerec_frames_encoded_total")),
            Some(0.0),
            "{name}"
        );
        assert_eq!(camera["frames_encoded"], 0, "{camera}");
        assert_eq!(camera["output_fps"], 0.0, "{camera}");
        assert!(
            metric_value(&metrics, &series("facerec_detections_total")).is_some_and(|n| n > 0.0),
            "{name}: no detection counted:\n{metrics}"
        );
        for family in [
            "facerec_detect_fps",
            "facerec_camera_overloaded",
            "facerec_stale_requests_total",
            "facerec_frames_dropped_before_element_total",
            "facerec_scheduler_wait_seconds_count",
        ] {
            assert!(
                metric_value(&metrics, &series(family)).is_some(),
                "{name}: no {family}:\n{metrics}"
            );
        }
    }
    eprintln!(
        "engine utilisation {:?}, session loads {:?}",
        metric_value(&metrics, "facerec_engine_utilisation"),
        metric_value(&metrics, "facerec_inference_session_loads_total")
    );
}

/// The wall time of converting and JPEG-encoding one 640x360 frame with the launcher's own
/// elements (videoconvert from facerec's RGBA, jpegenc at quality 80), on this machine as loaded
/// right now: the mean over 30 frames of the test pattern.
fn encode_time_of_one_frame() -> Duration {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,width=640,height=360,format=RGBA \
         ! videoconvert ! jpegenc quality=80 ! fakesink sync=false",
    )
    .unwrap();
    let bus = pipeline.bus().unwrap();
    let started = Instant::now();
    pipeline.set_state(gst::State::Playing).unwrap();
    let done = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(10),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let took = started.elapsed();
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        done.is_some_and(|m| m.type_() == gst::MessageType::Eos),
        "the encoding pipeline did not finish"
    );
    took / 30
}

/// Frames are encoded only while somebody wants them: with no client the encoder's output is
/// zero; the first stream request gets a JPEG within two frame intervals, plus the encoding of
/// one frame, and never an old one; once the client leaves, encoding stops; a snapshot waits
/// for a fresh frame and keeps the encoder running a little while.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn frames_are_encoded_only_for_a_viewer_and_at_once() {
    if !ready() {
        return;
    }
    let _serial = serial();
    // A live 30 fps 640x360 test pattern (a moving ball) and no gallery: little to recognise.
    let launcher = Launcher::start(&["--source".into(), "pat=test://".into()], &[]);
    launcher.wait_for("the camera to play", Duration::from_secs(30), |l| {
        l.camera("pat")["state"] == "playing" && l.frames("pat") > 30
    });
    assert_eq!(encoded(&launcher, "pat"), 0, "encoded with no client");
    assert_eq!(
        launcher.metric("facerec_frames_encoded_total{camera=\"pat\"}"),
        Some(0.0)
    );

    // The gate opens as the request comes in: the next frame out of facerec (at most one frame
    // interval away, 33 ms at 30 fps) goes to the encoder, unless the --max-fps cap of 15 just
    // let one through (it does not, after an idle encoder), so the first JPEG is due within two
    // frame intervals plus the time to convert and encode one frame. That time is measured here
    // and now, with the launcher's own elements, so the bound follows the machine's load. The
    // best of three requests counts (a scheduling hiccup of the shared machine is not the
    // gate's), and each request finds the encoder idle again.
    let frame_interval = Duration::from_secs_f64(1.0 / 30.0);
    let url = launcher.url("/cameras/pat/stream.mjpg");
    let mut latencies = Vec::new();
    let mut bound = Duration::ZERO;
    for trial in 0..3 {
        // Idle: nothing more is encoded.
        let last = wait_encoder_idle(&launcher, "pat", &format!("trial {trial}"));
        bound = frame_interval * 2 + encode_time_of_one_frame();
        let asked = Instant::now();
        let mut stream = open_stream(&url);
        let jpeg = stream.next_part().expect("a JPEG");
        latencies.push(asked.elapsed());
        image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg)
            .expect("a decodable JPEG");
        // Its frames keep coming while it is open.
        for _ in 0..3 {
            assert!(stream.next_part().is_some());
        }
        assert!(encoded(&launcher, "pat") > last, "trial {trial}");
    }
    let best = *latencies.iter().min().unwrap();
    eprintln!("first JPEG after {latencies:?}; bound {bound:?}");
    assert!(
        best <= bound,
        "the first JPEG came {best:?} after the request (of {latencies:?}), more than two frame \
         intervals and one frame's encoding ({bound:?})"
    );

    // A snapshot with the encoder idle waits for a fresh frame (never the last one from before),
    // within its 2 s.
    launcher.wait_for("the encoder to stop", Duration::from_secs(5), |l| {
        let before = encoded(l, "pat");
        std::thread::sleep(Duration::from_millis(300));
        encoded(l, "pat") == before
    });
    let before = encoded(&launcher, "pat");
    let asked = Instant::now();
    let mut response = ureq::get(&launcher.url("/cameras/pat/snapshot.jpg"))
        .call()
        .unwrap();
    let took = asked.elapsed();
    let snapshot = response.body_mut().read_to_vec().unwrap();
    assert!(image::load_from_memory_with_format(&snapshot, image::ImageFormat::Jpeg).is_ok());
    assert!(took < Duration::from_secs(2), "snapshot after {took:?}");
    assert!(encoded(&launcher, "pat") > before, "a snapshot encodes");
    // The encoder runs on for a few seconds after a snapshot, then stops.
    std::thread::sleep(Duration::from_millis(1500));
    let during = encoded(&launcher, "pat");
    assert!(
        during > before + 5,
        "{during} after {before}: not running on"
    );
    launcher.wait_for(
        "the encoder to stop after the snapshot",
        Duration::from_secs(10),
        |l| {
            let before = encoded(l, "pat");
            std::thread::sleep(Duration::from_millis(300));
            encoded(l, "pat") == before
        },
    );
    assert_eq!(launcher.camera("pat")["state"], "playing");
    assert_eq!(
        launcher
            .metric("facerec_reconnects_total{camera=\"pat\"}")
            .unwrap_or(0.0),
        0.0
    );
}

/// The share of the pixels on a band 2 px either side of `bbox`'s outline that have the colour
/// facerec draws a named face's box in (JPEG moves it a little), at the best offset of up to
/// 10 px (the face moves between the frame and the report of its box): about a third for a
/// drawn box, near zero for none.
fn box_outline_share(jpeg: &[u8], bbox: [i64; 4]) -> f64 {
    let image = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg)
        .expect("a decodable JPEG")
        .to_rgb8();
    let [r, g, b] = facerec_core::overlay::KNOWN_COLOUR.map(i32::from);
    let is_box_colour = |px: i64, py: i64| {
        if px < 0 || py < 0 || px >= image.width() as i64 || py >= image.height() as i64 {
            return false;
        }
        let p = image.get_pixel(px as u32, py as u32).0.map(i32::from);
        (p[0] - r).abs() < 60 && (p[1] - g).abs() < 60 && (p[2] - b).abs() < 60
    };
    let [x, y, w, h] = bbox;
    let mut outline = Vec::new();
    for py in y - 2..=y + h + 2 {
        for px in x - 2..=x + w + 2 {
            let near = |v: i64, edge: i64| (v - edge).abs() <= 2;
            if near(px, x) || near(px, x + w) || near(py, y) || near(py, y + h) {
                outline.push((px, py));
            }
        }
    }
    let mut best = 0.0f64;
    for dy in -10..=10 {
        for dx in -10..=10 {
            let hits = outline
                .iter()
                .filter(|&&(px, py)| is_box_colour(px + dx, py + dy))
                .count();
            best = best.max(hits as f64 / outline.len().max(1) as f64);
        }
    }
    best
}

/// facerec draws only while somebody watches (the launcher turns its `draw` off with the
/// encoder), and a viewer never gets a frame that was analysed before drawing was turned on: the
/// first JPEG of every stream, like the later ones, has the named face's box drawn where the
/// camera reports the face.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_viewer_gets_boxes_from_the_first_frame() {
    if !ready() {
        return;
    }
    let _serial = serial();
    let args = [
        "--gallery".to_string(),
        gallery().display().to_string(),
        "--source".into(),
        live_clip_source("clip"),
    ];
    let launcher = Launcher::start(&args, &[]);
    let url = launcher.url("/cameras/clip/stream.mjpg");
    // Miranda's box as the camera reports it now, when she is named and in view.
    let miranda_box = |l: &Launcher| {
        l.camera("clip")["faces"]
            .as_array()
            .and_then(|faces| faces.iter().find(|f| f["name"] == MIRANDA).cloned())
            .map(|f| [0, 1, 2, 3].map(|i| f["box"][i].as_i64().unwrap()))
    };
    let mut checked = Vec::new();
    let started = Instant::now();
    while checked.len() < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "Miranda was not in view when a stream opened, 3 times in 120 s: {checked:?}"
        );
        // Idle first: nobody watches, nothing is encoded, nothing drawn.
        wait_encoder_idle(&launcher, "clip", "before a stream");
        let Some(before) = miranda_box(&launcher) else {
            continue;
        };
        let mut stream = open_stream(&url);
        let first = stream.next_part().expect("a JPEG");
        let later: Vec<Vec<u8>> = (0..5).filter_map(|_| stream.next_part()).collect();
        drop(stream);
        let Some(after) = miranda_box(&launcher) else {
            continue;
        };
        // The face moved less than its box's size meanwhile: the outline is where it was drawn.
        if (before[0] - after[0]).abs() > before[2] / 4
            || (before[1] - after[1]).abs() > before[3] / 4
        {
            continue;
        }
        let share = box_outline_share(&first, before);
        let later_share = later
            .iter()
            .map(|jpeg| box_outline_share(jpeg, after))
            .fold(0.0, f64::max);
        checked.push((share, later_share));
    }
    eprintln!("box outline share, first frame and best later one: {checked:?}");
    for (first, later) in &checked {
        assert!(
            *first > 0.15 && *later > 0.15,
            "a stream's frame without Miranda's box: outline shares {checked:?}"
        );
    }
}
