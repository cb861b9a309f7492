//! `cargo bench --bench facerec-bench`: the sample clip through `decode ! facerec ! fakesink`
//! against `decode ! fakesink`, in synchronous and live modes.
//!
//! Prints frames per second, time per stage (convert, detect, align, embed, draw), and the
//! number of frames naming Lin-Manuel Miranda; the last line is one JSON object with all of it.
//! `fps` is frames over the wall time of the whole run (start-up included); `out fps` is the
//! rate between the first and the last output buffer. Options (after `--`): `--runs N` (best
//! of N, default 3), `--clip PATH`.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use facerec_core::engine::{Engine, EngineConfig, load_rgb};
use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{require, shared_dir};
use gst::prelude::*;
use serde_json::json;

const MIRANDA: &str = "Lin-Manuel Miranda";

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

fn main() {
    let mut args = std::env::args().skip(1);
    let mut runs = 3;
    let mut clip: Option<PathBuf> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            "--clip" => clip = args.next().map(PathBuf::from),
            "--bench" => {}
            other => panic!("unknown option {other}"),
        }
    }
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
    let mut gallery = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    for (name, photo) in [
        (MIRANDA, "lin-manuel-miranda.png"),
        ("Alex Lacamoire", "alex-lacamoire.png"),
    ] {
        let path = shared_dir().join("testdata/face_recognition").join(photo);
        let face = engine.analyze(&load_rgb(&path).unwrap()).unwrap().remove(0);
        gallery.add(name, photo, face.embedding.unwrap()).unwrap();
    }
    let gallery_path =
        std::env::temp_dir().join(format!("facerec-bench-{}.data", std::process::id()));
    gallery.save(&gallery_path).unwrap();
    drop(engine);

    let decode = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=RGBx",
        clip.display()
    );
    let g = format!("gallery=\"{}\"", gallery_path.display());
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
    let mut results = Vec::new();
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
        let stats = m.stats.as_ref();
        results.push(json!({
            "case": name,
            "frames": m.frames,
            "seconds": m.seconds,
            "fps": m.fps(),
            "output_fps": m.output_fps,
            "ms_per_frame": {
                "convert": m.stage_ms("convert-ns"),
                "detect": m.stage_ms("detect-ns"),
                "align": m.stage_ms("align-ns"),
                "embed": m.stage_ms("embed-ns"),
                "draw": m.stage_ms("draw-ns"),
            },
            "processed_frames": stats.and_then(|s| s.get::<u64>("detections").ok()),
            "embeddings": stats.and_then(|s| s.get::<u64>("embeddings").ok()),
            "miranda_frames": m.miranda_frames,
        }));
    }
    let _ = std::fs::remove_file(&gallery_path);
    println!(
        "{}",
        json!({ "clip": clip.display().to_string(), "runs": runs, "results": results })
    );
}
