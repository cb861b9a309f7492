//! `cargo bench --bench facerec-bench`: the sample clip through `decode ! facerec ! fakesink`
//! against `decode ! fakesink`, in synchronous and live modes, and against a Python peer.
//!
//! Seven groups of cases (`--groups original,matrix,live,peer,variants,cameras,thresholds`; by default the
//! first three, plus `peer` when its venv exists):
//!
//! * `original`: the clip as it is (640x360), converted to RGBx. Prints frames per second, time
//!   per stage (convert, detect, align, embed, draw), and the number of frames naming
//!   Lin-Manuel Miranda. Best of `--runs N` (default 3), live case once.
//! * `matrix`: the clip scaled by the pipeline itself (`videoscale`) to each of `--sizes`
//!   (default `360,720,1080`) in each of `--formats` (default `I420,NV12,RGBA`; `default`
//!   leaves the format to negotiation), in sync mode, each with a decode-only baseline of the
//!   same size and format. The element's added cost per frame is (wall - decode-only wall) /
//!   frames. Best of `--matrix-runs N` (default 2) for both the element and the baseline.
//! * `live`: `live=true` at each of `--live SIZE:FORMAT,...` (default `1080:NV12`; `none` for
//!   none), once with an unsynchronised source and once with a source paced at the clip's rate
//!   (`identity sync=true`). Reports the output rate and, from the element's `stats`, how many
//!   frames the worker processed against how many passed, and the worker's detections per
//!   second (`stats` `detections` over the wall time; the target is at least 10). One
//!   run each.
//! * `peer`: the Python peer (`benches/python_peer.py`: OpenCV's YuNet on a 640-wide
//!   downscale, the same dlib ONNX recognizer on ONNX Runtime with 2 threads and spinning off,
//!   every face embedded) against the element with default caps, both on the clip scaled to
//!   1280x720 in-process (`cv2.resize` in the script, `videoscale` in the pipeline, as the
//!   `matrix` group's `default` format does). Best of `--runs N` for each, alternating, start-up
//!   and decode included; reports both fps and element/peer (the target: at least 1.5).
//!   It needs `.cache/peer-venv` (see the script's docstring for the two commands); without it
//!   the group prints how to create it and is skipped.
//!
//! * `variants`: the reduced-precision model variants (issue 14) against fp32, the clip as in
//!   `original` at `threads=2`, with the element's `detector`/`recognizer` properties naming
//!   each variant's files (`facerec-model models fetch --variant all` makes them). Each variant
//!   has its own gallery of the two known faces enrolled with its own recognizer (the element
//!   checks a gallery against the recognizer it runs). Rounds interleave the variants, the order
//!   rotating each round; best of `--runs N`. A variant whose files are missing is skipped with
//!   a message. Not in the default groups.
//!
//! * `cameras`: the real `facerec-launcher` with N paced 1920x1080 cameras for each N of
//!   `--cameras` (default `1,2,4,8,16`): RSS, CPU, each camera's frames in and out and
//!   detections per second, the engine queue's wait, reconnects and camera states, over
//!   `--camera-seconds` (default 20) after `--camera-warmup` (default 8). `--launcher PATH`
//!   measures that binary instead of `target/release/facerec-launcher` (which the group builds
//!   with `cargo build --release --locked -p facerec-launcher`); `--baseline-launcher PATH` runs
//!   a second launcher (today's code) in the same run, the order alternating by N.
//!   `--camera-viewers N` connects N MJPEG clients to each camera (default none);
//!   `--camera-pipeline DESC` replaces the camera source (see `cameras.rs`). Needs ffmpeg. Not in
//!   the default groups.
//!
//! * `thresholds`: the detection threshold swept over every photo and the clip (issue 28; see
//!   `thresholds/mod.rs`), `--thresholds` (default `0.6,0.65,…,0.9`). The table it prints is
//!   the one in `docs/ACCURACY.md`. Needs ffmpeg. Not in the default groups.
//!
//! `fps` is frames over the wall time of the whole run (start-up included); `out fps` is the
//! rate between the first and the last output buffer. The last line is one JSON object with
//! all of it. Other option: `--clip PATH`.

mod cameras;
#[path = "../tests/common/mod.rs"]
mod common;
mod thresholds;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::gallery::Gallery;
use facerec_core::models::{ModelVariant, default_model_path};
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{require, shared_dir};
use gst::prelude::*;
use serde_json::json;

const MIRANDA: &str = "Lin-Manuel Miranda";

/// The targets, printed beside the figures they apply to.
const TARGET_PEER_RATIO: f64 = 1.5;
const TARGET_LIVE_DETECTIONS_PER_SECOND: f64 = 10.0;
/// The `peer` group's frame height.
const PEER_HEIGHT: u32 = 720;

/// The Python peer's interpreter: a venv under the repository's `.cache/`.
fn peer_python() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/peer-venv/bin/python")
}

fn peer_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("gst-facerec/benches/python_peer.py")
}

struct Measured {
    frames: usize,
    /// Wall time from starting the pipeline to EOS.
    seconds: f64,
    /// Output rate between the first and the last buffer: what a viewer sees.
    output_fps: f64,
    miranda_frames: usize,
    stats: Option<gst::Structure>,
}

impl Measured {
    fn fps(&self) -> f64 {
        self.frames as f64 / self.seconds
    }

    fn stage_ms(&self, field: &str) -> f64 {
        let Some(stats) = &self.stats else { return 0.0 };
        let frames = stats.get::<u64>("frames").unwrap_or(0).max(1) as f64;
        stats.get::<u64>(field).unwrap_or(0) as f64 / 1e6 / frames
    }
}

fn run(description: &str) -> Measured {
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let frames = Arc::new(AtomicUsize::new(0));
    let miranda = Arc::new(AtomicUsize::new(0));
    let sink_pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    let span = Arc::new(std::sync::Mutex::new(None::<(Instant, Instant)>));
    let (f, m, sp) = (frames.clone(), miranda.clone(), span.clone());
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buffer) = info.buffer() {
            f.fetch_add(1, Ordering::Relaxed);
            let now = Instant::now();
            let mut span = sp.lock().unwrap();
            *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
            let named = buffer
                .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
                .any(|meta| {
                    meta.param("facerec")
                        .and_then(|p| p.get::<String>("name").ok())
                        .as_deref()
                        == Some(MIRANDA)
                });
            if named {
                m.fetch_add(1, Ordering::Relaxed);
            }
        }
        gst::PadProbeReturn::Ok
    });
    let started = Instant::now();
    pipeline
        .set_state(gst::State::Playing)
        .expect("pipeline starts");
    let bus = pipeline.bus().unwrap();
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => panic!("{description}: {} ({:?})", e.error(), e.debug()),
            _ => {}
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let stats = pipeline
        .by_name("f")
        .map(|f| f.property::<gst::Structure>("stats"));
    pipeline.set_state(gst::State::Null).unwrap();
    let frames = frames.load(Ordering::Relaxed);
    let output_fps = match *span.lock().unwrap() {
        Some((first, last)) if frames > 1 => (frames - 1) as f64 / (last - first).as_secs_f64(),
        _ => 0.0,
    };
    Measured {
        frames,
        seconds,
        output_fps,
        miranda_frames: miranda.load(Ordering::Relaxed),
        stats,
    }
}

fn best_of(runs: usize, description: &str) -> Measured {
    (0..runs)
        .map(|_| run(description))
        .min_by(|a, b| a.seconds.total_cmp(&b.seconds))
        .unwrap()
}

/// Frame heights of the matrix and their 16:9 widths (the clip is 640x360).
fn width_for(height: u32) -> u32 {
    height * 16 / 9
}

fn list(args: &mut impl Iterator<Item = String>, option: &str) -> Vec<String> {
    args.next()
        .unwrap_or_else(|| panic!("{option} needs a value"))
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn height(v: &str) -> u32 {
    v.trim_end_matches('p')
        .parse()
        .unwrap_or_else(|_| panic!("{v}: a frame height such as 360, 720 or 1080"))
}

/// `decode ! videoscale ! caps ! videoconvert ! format caps`, without a sink.
fn scaled_source(clip: &std::path::Path, height: u32, format: &str) -> String {
    let format_caps = if format.eq_ignore_ascii_case("default") {
        String::new()
    } else {
        format!(" ! video/x-raw,format={format}")
    };
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,width={},height={} ! videoconvert{format_caps}",
        clip.display(),
        width_for(height),
        height
    )
}

fn stages_json(m: &Measured) -> serde_json::Value {
    json!({
        "convert": m.stage_ms("convert-ns"),
        "detect": m.stage_ms("detect-ns"),
        "align": m.stage_ms("align-ns"),
        "embed": m.stage_ms("embed-ns"),
        "draw": m.stage_ms("draw-ns"),
    })
}

/// A stage's time over the frames that passed (live mode's streaming-thread stages).
/// One element run: frames, times, stages and names, as every group reports it.
fn run_json(m: &Measured) -> serde_json::Value {
    json!({
        "frames": m.frames,
        "seconds": m.seconds,
        "fps": m.fps(),
        "output_fps": m.output_fps,
        "ms_per_frame": stages_json(m),
        "processed_frames": stat(m, "detections"),
        "embeddings": stat(m, "embeddings"),
        "miranda_frames": m.miranda_frames,
    })
}

fn per_passed_ms(m: &Measured, field: &str) -> f64 {
    stat(m, field).unwrap_or(0) as f64 / 1e6 / m.frames.max(1) as f64
}

fn stat(m: &Measured, field: &str) -> Option<u64> {
    m.stats.as_ref().and_then(|s| s.get::<u64>(field).ok())
}

/// The demo's two known faces, enrolled with `engine`'s recognizer.
fn demo_gallery(engine: &mut Engine) -> Gallery {
    let mut gallery = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    for (name, photo) in [
        (MIRANDA, "lin-manuel-miranda.png"),
        ("Alex Lacamoire", "alex-lacamoire.png"),
    ] {
        let path = shared_dir().join("testdata/face_recognition").join(photo);
        let face = engine.analyze(&load_rgb(&path).unwrap()).unwrap().remove(0);
        gallery.add(name, photo, face.embedding.unwrap()).unwrap();
    }
    gallery
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 3;
    let mut matrix_runs = 2;
    let mut clip: Option<PathBuf> = None;
    let mut groups = vec!["original".to_string(), "matrix".into(), "live".into()];
    if peer_python().exists() {
        groups.push("peer".into());
    }
    let mut sizes = vec![360, 720, 1080];
    let mut formats = vec!["I420".to_string(), "NV12".into(), "RGBA".into()];
    let mut live = vec![(1080, "NV12".to_string())];
    let mut camera_options = cameras::Options::default();
    let mut thresholds = thresholds::THRESHOLDS.to_vec();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--matrix-runs" => {
                matrix_runs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--matrix-runs N")
            }
            "--clip" => clip = args.next().map(PathBuf::from),
            "--groups" => groups = list(&mut args, "--groups"),
            "--sizes" => {
                sizes = list(&mut args, "--sizes")
                    .iter()
                    .map(|v| height(v))
                    .collect()
            }
            "--formats" => formats = list(&mut args, "--formats"),
            "--live" => {
                live = list(&mut args, "--live")
                    .iter()
                    .filter(|v| v.as_str() != "none")
                    .map(|v| {
                        let (h, f) = v
                            .split_once(':')
                            .unwrap_or_else(|| panic!("--live {v}: SIZE:FORMAT, e.g. 1080:NV12"));
                        (height(h), f.to_string())
                    })
                    .collect()
            }
            "--cameras" => {
                camera_options.counts = list(&mut args, "--cameras")
                    .iter()
                    .map(|v| {
                        v.parse()
                            .unwrap_or_else(|_| panic!("--cameras {v}: camera counts, e.g. 1,2,4"))
                    })
                    .collect()
            }
            "--camera-seconds" => {
                camera_options.seconds = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--camera-seconds SECONDS")
            }
            "--camera-warmup" => {
                camera_options.warmup = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--camera-warmup SECONDS")
            }
            "--launcher" => {
                camera_options.launcher = Some(args.next().expect("--launcher PATH").into())
            }
            "--baseline-launcher" => {
                camera_options.baseline =
                    Some(args.next().expect("--baseline-launcher PATH").into())
            }
            "--camera-viewers" => {
                camera_options.viewers = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--camera-viewers N")
            }
            "--camera-pipeline" => {
                camera_options.pipeline = args.next().expect("--camera-pipeline DESCRIPTION")
            }
            "--thresholds" => {
                thresholds = list(&mut args, "--thresholds")
                    .iter()
                    .map(|v| {
                        v.parse()
                            .unwrap_or_else(|_| panic!("--thresholds {v}: scores, e.g. 0.7,0.8"))
                    })
                    .collect()
            }
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
    for group in &groups {
        assert!(
            [
                "original",
                "matrix",
                "live",
                "peer",
                "variants",
                "cameras",
                "thresholds"
            ]
            .contains(&group.as_str()),
            "unknown group {group}: original, matrix, live, peer, variants, cameras or thresholds"
        );
    }
    assert!(runs > 0 && matrix_runs > 0, "runs must be at least 1");
    let group = |name: &str| groups.iter().any(|g| g == name);
    let clip = clip
        .or_else(|| require("testdata/face_recognition/short_hamilton_clip.mp4"))
        .unwrap_or_else(|| {
            panic!(
                "the sample clip is missing under {}",
                shared_dir().display()
            )
        });

    gst::init().unwrap();
    gstfacerec::plugin_register_static().unwrap();

    // The demo's two known faces.
    let mut engine = Engine::new(EngineConfig::default()).expect("models and ONNX Runtime load");
    let gallery = demo_gallery(&mut engine);
    let gallery_path =
        std::env::temp_dir().join(format!("facerec-bench-{}.data", std::process::id()));
    gallery.save(&gallery_path).unwrap();
    drop(engine);
    let g = format!("gallery=\"{}\"", gallery_path.display());

    let mut results = Vec::new();
    if group("original") {
        original_cases(&clip, &g, runs, &mut results);
    }
    let mut matrix = Vec::new();
    if group("matrix") && !sizes.is_empty() && !formats.is_empty() {
        matrix_cases(&clip, &g, matrix_runs, &sizes, &formats, &mut matrix);
    }
    let mut live_results = Vec::new();
    if group("live") && !live.is_empty() {
        live_cases(&clip, &g, &live, &mut live_results);
    }
    let mut peer = serde_json::Value::Null;
    if group("peer") {
        peer = peer_case(&clip, &g, runs);
    }
    let mut variants = Vec::new();
    if group("variants") {
        variant_cases(&clip, runs, &mut variants);
    }
    let mut camera_results = Vec::new();
    if group("cameras") {
        match cameras::cameras_group(&clip, &gallery_path, &camera_options) {
            Ok(results) => camera_results = results,
            Err(e) => {
                let _ = std::fs::remove_file(&gallery_path);
                panic!("cameras: {e:#}");
            }
        }
    }
    let mut threshold_results = Vec::new();
    if group("thresholds") {
        threshold_results = thresholds::thresholds_group(&clip, &thresholds);
    }
    let _ = std::fs::remove_file(&gallery_path);
    println!(
        "{}",
        json!({
            "clip": clip.display().to_string(),
            "runs": runs,
            "matrix_runs": matrix_runs,
            "results": results,
            "matrix": matrix,
            "added_cost_ratios": ratios(&matrix),
            "live": live_results,
            "peer": peer,
            "variants": variants,
            "cameras": camera_results,
            "thresholds": threshold_results,
        })
    );
}

/// The `variants` group: each model variant whose files exist, interleaved rounds.
fn variant_cases(clip: &std::path::Path, runs: usize, results: &mut Vec<serde_json::Value>) {
    let decode = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBx",
        clip.display()
    );
    let mut cases = Vec::new();
    for variant in ModelVariant::ALL {
        let detector = default_model_path(&variant.detector_file());
        let recognizer = default_model_path(&variant.recognizer_file());
        if !detector.is_file() || !recognizer.is_file() {
            println!(
                "variant {variant}: {} or {} is missing (facerec-model models fetch --variant all), skipped",
                detector.display(),
                recognizer.display()
            );
            continue;
        }
        // A gallery enrolled with this variant's own recognizer.
        let mut engine = Engine::new(EngineConfig {
            detector: detector.clone(),
            recognizer: recognizer.clone(),
            ..EngineConfig::default()
        })
        .expect("variant models load");
        let gallery = demo_gallery(&mut engine);
        let gallery_path = std::env::temp_dir().join(format!(
            "facerec-bench-{}-{variant}.data",
            std::process::id()
        ));
        gallery.save(&gallery_path).unwrap();
        let description = format!(
            "{decode} ! facerec name=f gallery=\"{}\" detector=\"{}\" recognizer=\"{}\" threads=2 ! fakesink name=sink",
            gallery_path.display(),
            detector.display(),
            recognizer.display()
        );
        cases.push((variant, gallery_path, description, None::<Measured>));
    }
    println!();
    println!("model variants: 640x360 RGBx, threads=2, best of {runs}, rounds interleaved");
    for round in 0..runs {
        for k in 0..cases.len() {
            let i = (round + k) % cases.len();
            let m = run(&cases[i].2);
            if cases[i].3.as_ref().is_none_or(|best| m.fps() > best.fps()) {
                cases[i].3 = Some(m);
            }
        }
    }
    println!(
        "{:<8} {:>8} {:>9} {:>8} {:>8} {:>8}",
        "variant", "fps", "ms/frame", "detect", "embed", "Miranda"
    );
    for (variant, gallery_path, _, m) in cases {
        let _ = std::fs::remove_file(&gallery_path);
        let Some(m) = m else { continue };
        println!(
            "{:<8} {:>8.1} {:>9.2} {:>8.2} {:>8.2} {:>8}",
            variant.as_str(),
            m.fps(),
            1000.0 / m.fps(),
            m.stage_ms("detect-ns"),
            m.stage_ms("embed-ns"),
            m.miranda_frames
        );
        let mut case = run_json(&m);
        case["variant"] = json!(variant.as_str());
        results.push(case);
    }
}

/// The original cases: the clip at its own size, in RGBx.
fn original_cases(
    clip: &std::path::Path,
    g: &str,
    runs: usize,
    results: &mut Vec<serde_json::Value>,
) {
    let decode = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBx",
        clip.display()
    );
    let cases = [
        ("decode only", format!("{decode} ! fakesink name=sink")),
        (
            "sync, threads=1",
            format!("{decode} ! facerec name=f {g} threads=1 ! fakesink name=sink"),
        ),
        (
            "sync, threads=2",
            format!("{decode} ! facerec name=f {g} threads=2 ! fakesink name=sink"),
        ),
        (
            "sync, threads=2, no recognition cache (embed every face)",
            format!(
                "{decode} ! facerec name=f {g} threads=2 recognize-interval=1 min-face-size=0 ! fakesink name=sink"
            ),
        ),
        (
            "live, 29.97 fps paced source",
            format!(
                "{decode} ! identity sync=true ! facerec name=f {g} live=true ! fakesink name=sink sync=false"
            ),
        ),
    ];
    println!("original cases: 640x360 RGBx, best of {runs} (live: 1 run)");
    println!(
        "{:<60} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "case",
        "fps",
        "out fps",
        "ms/frame",
        "convert",
        "detect",
        "align",
        "embed",
        "draw",
        "Miranda"
    );
    for (name, description) in &cases {
        let m = best_of(if name.starts_with("live") { 1 } else { runs }, description);
        println!(
            "{:<60} {:>8.1} {:>8.1} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}",
            name,
            m.fps(),
            m.output_fps,
            1000.0 / m.fps(),
            m.stage_ms("convert-ns"),
            m.stage_ms("detect-ns"),
            m.stage_ms("align-ns"),
            m.stage_ms("embed-ns"),
            m.stage_ms("draw-ns"),
            m.miranda_frames
        );
        let mut case = run_json(&m);
        case["case"] = json!(name);
        results.push(case);
    }
}

/// Every size x format in sync mode, each against a decode-only run of the same size and format.
fn matrix_cases(
    clip: &std::path::Path,
    g: &str,
    runs: usize,
    sizes: &[u32],
    formats: &[String],
    matrix: &mut Vec<serde_json::Value>,
) {
    println!();
    println!(
        "size x format, sync mode: best of {runs} for the element and for its decode-only baseline"
    );
    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>8} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "input",
        "frames",
        "wall s",
        "fps",
        "decode s",
        "added ms",
        "ms/frame",
        "convert",
        "detect",
        "align",
        "embed",
        "draw",
        "Miranda"
    );
    for &height in sizes {
        for format in formats {
            let source = scaled_source(clip, height, format);
            let decode = best_of(runs, &format!("{source} ! fakesink name=sink"));
            let m = best_of(
                runs,
                &format!("{source} ! facerec name=f {g} ! fakesink name=sink"),
            );
            assert_eq!(
                m.frames, decode.frames,
                "{height}p {format}: the element passed a different number of frames"
            );
            let added_ms = (m.seconds - decode.seconds) * 1000.0 / m.frames.max(1) as f64;
            let input = format!("{}x{height} {format}", width_for(height));
            println!(
                "{:<16} {:>6} {:>8.2} {:>8.1} {:>8.2} {:>9.2} {:>9.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8}",
                input,
                m.frames,
                m.seconds,
                m.fps(),
                decode.seconds,
                added_ms,
                1000.0 / m.fps(),
                m.stage_ms("convert-ns"),
                m.stage_ms("detect-ns"),
                m.stage_ms("align-ns"),
                m.stage_ms("embed-ns"),
                m.stage_ms("draw-ns"),
                m.miranda_frames
            );
            matrix.push(json!({
                "height": height,
                "width": width_for(height),
                "format": format,
                "frames": m.frames,
                "seconds": m.seconds,
                "fps": m.fps(),
                "decode_seconds": decode.seconds,
                "decode_fps": decode.fps(),
                "added_ms_per_frame": added_ms,
                "ms_per_frame": stages_json(&m),
                "processed_frames": stat(&m, "detections"),
                "embeddings": stat(&m, "embeddings"),
                "miranda_frames": m.miranda_frames,
            }));
        }
    }
}

/// Added cost of each size against 360p: per format, and 1080p NV12 against 360p I420 (what
/// `videoconvert ! facerec` negotiates at 360p), the target of at most 1.3x.
fn ratios(matrix: &[serde_json::Value]) -> serde_json::Value {
    let added = |height: u64, format: &str| {
        matrix
            .iter()
            .find(|m| m["height"].as_u64() == Some(height) && m["format"] == format)
            .and_then(|m| m["added_ms_per_frame"].as_f64())
    };
    let mut ratios = serde_json::Map::new();
    let mut printed = Vec::new();
    for m in matrix {
        let (Some(height), Some(format)) = (m["height"].as_u64(), m["format"].as_str()) else {
            continue;
        };
        let Some(base) = added(360, format) else {
            continue;
        };
        if height == 360 {
            continue;
        }
        if let Some(cost) = added(height, format) {
            let key = format!("{height}p {format} / 360p {format}");
            printed.push(format!("{key}: {:.2}x", cost / base));
            ratios.insert(key, json!(cost / base));
        }
    }
    if let (Some(cost), Some(base)) = (added(1080, "NV12"), added(360, "I420")) {
        let key = "1080p NV12 / 360p I420".to_string();
        printed.push(format!("{key}: {:.2}x (target: at most 1.3x)", cost / base));
        ratios.insert(key, json!(cost / base));
    }
    if !printed.is_empty() {
        println!("added cost per frame against 360p: {}", printed.join("; "));
    }
    serde_json::Value::Object(ratios)
}

/// `live=true` with an unsynchronised source and with one paced at the clip's rate.
fn live_cases(
    clip: &std::path::Path,
    g: &str,
    live: &[(u32, String)],
    results: &mut Vec<serde_json::Value>,
) {
    println!();
    println!(
        "live mode, 1 run each (processed = frames the worker took, from stats; convert and draw \
         per frame passed, on the streaming thread; detect per frame processed, on the worker; \
         detected/s = the worker's detections over the wall time, target at least {TARGET_LIVE_DETECTIONS_PER_SECOND})"
    );
    println!(
        "{:<16} {:<14} {:>6} {:>8} {:>8} {:>8} {:>10} {:>10} {:>8} {:>8} {:>8}",
        "input",
        "source",
        "frames",
        "wall s",
        "fps",
        "out fps",
        "processed",
        "detected/s",
        "convert",
        "detect",
        "Miranda"
    );
    for (height, format) in live {
        let source = scaled_source(clip, *height, format);
        for (pacing, pace) in [("unsynchronised", ""), ("paced", " ! identity sync=true")] {
            let m = run(&format!(
                "{source}{pace} ! facerec name=f {g} live=true ! fakesink name=sink sync=false"
            ));
            let processed = stat(&m, "frames");
            let detections = stat(&m, "detections");
            let input = format!("{}x{height} {format}", width_for(*height));
            println!(
                "{:<16} {:<14} {:>6} {:>8.2} {:>8.1} {:>8.1} {:>10} {:>10.1} {:>8.2} {:>8.2} {:>8}",
                input,
                pacing,
                m.frames,
                m.seconds,
                m.fps(),
                m.output_fps,
                processed.map_or("-".into(), |p| format!("{p}/{}", m.frames)),
                detections.unwrap_or(0) as f64 / m.seconds,
                per_passed_ms(&m, "convert-ns"),
                m.stage_ms("detect-ns"),
                m.miranda_frames
            );
            results.push(json!({
                "height": height,
                "width": width_for(*height),
                "format": format,
                "source": pacing,
                "frames_passed": m.frames,
                "seconds": m.seconds,
                "fps": m.fps(),
                "output_fps": m.output_fps,
                "frames_processed": processed,
                "detections": detections,
                "detections_per_second": detections.unwrap_or(0) as f64 / m.seconds,
                "target_detections_per_second": TARGET_LIVE_DETECTIONS_PER_SECOND,
                "streaming_ms_per_frame_passed": {
                    "convert": per_passed_ms(&m, "convert-ns"),
                    "draw": per_passed_ms(&m, "draw-ns"),
                },
                "worker_ms_per_frame_processed": {
                    "detect": m.stage_ms("detect-ns"),
                    "align": m.stage_ms("align-ns"),
                    "embed": m.stage_ms("embed-ns"),
                },
                "miranda_frames": m.miranda_frames,
            }));
        }
    }
}

/// One run of the Python peer: its last stdout line (a JSON object) plus the wall time of the
/// whole process as seen from here (interpreter start-up included).
fn run_peer(clip: &Path) -> serde_json::Value {
    let started = Instant::now();
    let output = std::process::Command::new(peer_python())
        .arg(peer_script())
        .arg("--height")
        .arg(PEER_HEIGHT.to_string())
        .arg("--models")
        .arg(shared_dir().join("models"))
        .arg("--known-dir")
        .arg(shared_dir().join("testdata/face_recognition"))
        .arg(clip)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", peer_python().display()));
    let process_seconds = started.elapsed().as_secs_f64();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let last = stdout.lines().last().unwrap_or("");
    let parsed = output
        .status
        .success()
        .then(|| serde_json::from_str::<serde_json::Value>(last).ok())
        .flatten();
    let Some(mut peer) = parsed else {
        panic!(
            "python peer failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    };
    peer["process_seconds"] = json!(process_seconds);
    peer
}

/// The Python peer against the element with default caps, both at 720p from the same clip,
/// alternating, best of `runs` each.
fn peer_case(clip: &Path, g: &str, runs: usize) -> serde_json::Value {
    println!();
    if !peer_python().exists() {
        println!(
            "peer: skipped, {} is missing; create it with: python3 -m venv .cache/peer-venv && \
             .cache/peer-venv/bin/pip install opencv-python-headless==4.14.0.94 onnxruntime==1.32.0 numpy==2.4.6",
            peer_python().display()
        );
        return serde_json::Value::Null;
    }
    let width = width_for(PEER_HEIGHT);
    let element = format!(
        "{} ! facerec name=f {g} ! fakesink name=sink",
        scaled_source(clip, PEER_HEIGHT, "default")
    );
    let mut peer_best: Option<serde_json::Value> = None;
    let mut element_best: Option<Measured> = None;
    for _ in 0..runs {
        let p = run_peer(clip);
        let seconds = |v: &serde_json::Value| v["seconds"].as_f64().unwrap_or(f64::INFINITY);
        if peer_best.as_ref().is_none_or(|b| seconds(&p) < seconds(b)) {
            peer_best = Some(p);
        }
        let m = run(&element);
        if element_best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            element_best = Some(m);
        }
    }
    let (p, m) = (peer_best.unwrap(), element_best.unwrap());
    assert_eq!(
        p["frames"].as_u64(),
        Some(m.frames as u64),
        "the peer and the element saw a different number of frames: their fps do not compare"
    );
    let peer_fps = p["fps"].as_f64().unwrap_or(0.0);
    let ratio = m.fps() / peer_fps;
    println!(
        "Python peer against the element, {width}x{PEER_HEIGHT} (default caps), best of {runs}, \
         start-up and decode included"
    );
    println!(
        "{:<40} {:>6} {:>8} {:>8} {:>8} {:>8}",
        "case", "frames", "wall s", "fps", "faces", "Miranda"
    );
    println!(
        "{:<40} {:>6} {:>8.2} {:>8.1} {:>8} {:>8}",
        "python peer (YuNet cv2 + ORT, 2 threads)",
        p["frames"].as_u64().unwrap_or(0),
        p["seconds"].as_f64().unwrap_or(0.0),
        peer_fps,
        p["faces"].as_u64().unwrap_or(0),
        p["named_frames"][MIRANDA].as_u64().unwrap_or(0)
    );
    println!(
        "{:<40} {:>6} {:>8.2} {:>8.1} {:>8} {:>8}",
        "facerec",
        m.frames,
        m.seconds,
        m.fps(),
        "-",
        m.miranda_frames
    );
    println!("element / peer: {ratio:.2}x (target: at least {TARGET_PEER_RATIO}x)");
    json!({
        "height": PEER_HEIGHT,
        "width": width,
        "runs": runs,
        "python_peer": p,
        "element": run_json(&m),
        "element_fps": m.fps(),
        "peer_fps": peer_fps,
        "ratio_element_over_peer": ratio,
        "target_ratio": TARGET_PEER_RATIO,
    })
}
