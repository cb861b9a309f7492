//! Shared helpers for the element tests: registering the plugin, building galleries from the
//! real photos, and running real pipelines to collect what the element reported per frame.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock};

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::gallery::Gallery;
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{require, require_runtime};
use gst::prelude::*;

pub const TD: &str = "testdata/face_recognition";
pub const CLIP: &str = "testdata/face_recognition/short_hamilton_clip.mp4";
pub const MIRANDA: &str = "Lin-Manuel Miranda";
pub const LACAMOIRE: &str = "Alex Lacamoire";

pub fn gallery_prop(path: &Path) -> String {
    format!("gallery=\"{}\"", path.display())
}

pub fn init() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        gst::init().unwrap();
        gstfacerec::plugin_register_static().expect("facerec plugin registers");
    });
}

/// True when the models, the runtime and the test data are all there (or the test must fail).
pub fn assets_ready() -> bool {
    init();
    require("models/yunet_s_dynamic.onnx").is_some()
        && require("testdata/README.md").is_some()
        && require_runtime()
}

pub fn asset(relative: &str) -> PathBuf {
    require(relative).expect("asset checked by assets_ready")
}

/// A fresh folder, removed when the returned guard drops, whether the test passes or fails.
/// Mode 0755 like a folder made by hand: tools the tests run as another user (mosquitto, VLC)
/// read files in it (tempfile's default is 0700).
pub fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("facerec-test-{tag}-"))
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

/// Enrols one embedding per photo, under the given name.
pub fn build_gallery(people: &[(&str, &str)], path: &Path) -> PathBuf {
    let mut engine = Engine::new(EngineConfig::default()).expect("models load");
    let mut gallery = Gallery::new(engine.recognizer().sha256(), engine.recognizer().dim());
    for (name, photo) in people {
        let faces = engine.analyze(&load_rgb(&asset(photo)).unwrap()).unwrap();
        let largest = faces
            .iter()
            .max_by(|a, b| a.detection.bbox.area().total_cmp(&b.detection.bbox.area()))
            .expect("one face in the enrolment photo");
        gallery
            .add(name, photo, largest.embedding.clone().unwrap())
            .unwrap();
    }
    gallery.save(path).unwrap();
    path.to_path_buf()
}

/// The knn_examples/train gallery: 5 people, 9 photos.
pub fn knn_gallery() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let train = format!("{TD}/knn_examples/train");
        let mut people = Vec::new();
        let mut dirs: Vec<_> = std::fs::read_dir(asset(&train))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        dirs.sort();
        for dir in dirs {
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let mut photos: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            photos.sort();
            for photo in photos {
                let rel = format!(
                    "{train}/{name}/{}",
                    photo.file_name().unwrap().to_string_lossy()
                );
                people.push((name.clone(), rel));
            }
        }
        let refs: Vec<(&str, &str)> = people
            .iter()
            .map(|(n, p)| (n.as_str(), p.as_str()))
            .collect();
        build_gallery(&refs, &fixture_dir("knn").join("model.data"))
    })
    .clone()
}

/// The demo's video gallery: Lin-Manuel Miranda and Alex Lacamoire.
pub fn hamilton_gallery() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        build_gallery(
            &[
                (
                    "Lin-Manuel Miranda",
                    &format!("{TD}/lin-manuel-miranda.png"),
                ),
                ("Alex Lacamoire", &format!("{TD}/alex-lacamoire.png")),
            ],
            &fixture_dir("hamilton").join("model.data"),
        )
    })
    .clone()
}

/// One face as the element reported it on an output buffer (from its ROI meta).
#[derive(Debug, Clone, PartialEq)]
pub struct SeenFace {
    pub name: String,
    pub distance: f64,
    pub rect: (u32, u32, u32, u32),
    pub track_id: u64,
    /// The latest attempt's quality (-1: never embedded); `None` if the meta has no such field.
    pub quality: Option<f64>,
    /// The decided name's confidence; `None` if the meta has no such field.
    pub confidence: Option<f64>,
}

/// Everything a pipeline run produced.
#[derive(Debug, Default)]
pub struct Run {
    /// Faces per output buffer, in order.
    pub frames: Vec<Vec<SeenFace>>,
    /// The output buffers themselves (only when asked for).
    pub samples: Vec<gst::Sample>,
    pub warnings: Vec<String>,
    pub error: Option<String>,
    /// `facerec` element messages seen on the bus.
    pub messages: Vec<gst::Structure>,
    pub stats: Option<gst::Structure>,
}

impl Run {
    pub fn frames_naming(&self, name: &str) -> usize {
        self.frames
            .iter()
            .filter(|f| f.iter().any(|s| s.name == name))
            .count()
    }

    /// Names left to right on the first frame.
    pub fn names_left_to_right(&self) -> Vec<String> {
        let mut faces = self.frames.first().cloned().unwrap_or_default();
        faces.sort_by_key(|f| f.rect.0);
        faces.into_iter().map(|f| f.name).collect()
    }
}

pub fn faces_of(buffer: &gst::BufferRef) -> Vec<SeenFace> {
    buffer
        .iter_meta::<gst_video::VideoRegionOfInterestMeta>()
        .filter(|m| m.roi_type() == "face")
        .map(|m| {
            // Downstream elements (videoconvert) copy the meta without its parameters.
            let Some(p) = m.param("facerec") else {
                return SeenFace {
                    name: "(no facerec parameters)".into(),
                    distance: f64::NAN,
                    rect: m.rect(),
                    track_id: 0,
                    quality: None,
                    confidence: None,
                };
            };
            SeenFace {
                name: p.get::<String>("name").unwrap(),
                distance: p.get::<f64>("distance").unwrap(),
                rect: m.rect(),
                track_id: p.get::<u64>("track-id").unwrap(),
                quality: p.get::<f64>("quality").ok(),
                confidence: p.get::<f64>("confidence").ok(),
            }
        })
        .collect()
}

/// Runs `description`, which must end in `appsink name=sink`, to EOS or error.
pub fn run_pipeline(description: &str, keep_samples: bool) -> Run {
    run_pipeline_with(description, keep_samples, |_, _| {})
}

/// Like [`run_pipeline`], calling `on_frame(pipeline, index)` after each output buffer.
pub fn run_pipeline_with(
    description: &str,
    keep_samples: bool,
    on_frame: impl Fn(&gst::Pipeline, usize) + Send + Sync + 'static,
) -> Run {
    init();
    let pipeline = gst::parse::launch(description)
        .unwrap_or_else(|e| panic!("{description}: {e}"))
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    sink.set_property("sync", false);
    let collected = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let weak = pipeline.downgrade();
    let c = collected.clone();
    let on_frame = Arc::new(on_frame);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let index = {
                    let mut c = c.lock().unwrap();
                    c.0.push(faces_of(sample.buffer().unwrap()));
                    if keep_samples {
                        c.1.push(sample);
                    }
                    c.0.len() - 1
                };
                if let Some(p) = weak.upgrade() {
                    on_frame(&p, index);
                }
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let mut run = Run::default();
    let bus = pipeline.bus().unwrap();
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        run.error = Some(format!("state change failed: {e}"));
    }
    for msg in bus.iter_timed(gst::ClockTime::from_seconds(300)) {
        use gst::MessageView;
        match msg.view() {
            MessageView::Eos(_) => break,
            MessageView::Error(e) => {
                run.error = Some(format!(
                    "{} ({})",
                    e.error(),
                    e.debug().map(|d| d.to_string()).unwrap_or_default()
                ));
                break;
            }
            MessageView::Warning(w) => run.warnings.push(w.error().to_string()),
            MessageView::Element(e) => {
                if let Some(s) = e.structure().filter(|s| s.name() == "facerec") {
                    run.messages.push(s.to_owned());
                }
            }
            _ => {}
        }
    }
    if let Some(f) = pipeline.by_name("f") {
        run.stats = Some(f.property::<gst::Structure>("stats"));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    let mut c = collected.lock().unwrap();
    run.frames = std::mem::take(&mut c.0);
    run.samples = std::mem::take(&mut c.1);
    run
}

/// A pipeline that decodes a still image or the clip into `format` and runs facerec on it.
pub fn decode_pipeline(relative: &str, format: &str, facerec_props: &str) -> String {
    format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format={format} ! facerec name=f {facerec_props} ! appsink name=sink",
        asset(relative).display()
    )
}

/// Intersection over union of two `(x, y, w, h)` boxes.
pub fn iou(a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)) -> f64 {
    let ix = (a.0 + a.2).min(b.0 + b.2) - a.0.max(b.0);
    let iy = (a.1 + a.3).min(b.1 + b.3) - a.1.max(b.1);
    if ix <= 0.0 || iy <= 0.0 {
        return 0.0;
    }
    let inter = ix * iy;
    inter / (a.2 * a.3 + b.2 * b.3 - inter)
}

/// How a child process ended, and what it printed.
#[derive(Debug)]
pub struct ChildOutcome {
    pub status: Option<std::process::ExitStatus>,
    pub timed_out: bool,
    pub output: String,
}

impl ChildOutcome {
    pub fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let how = match (self.timed_out, self.status) {
            (true, _) => "hung (killed after the timeout)".to_string(),
            (false, Some(s)) if s.signal().is_some() => {
                format!("died of signal {} (abort: 6)", s.signal().unwrap())
            }
            (false, Some(s)) => format!("exited with {s}"),
            (false, None) => "unknown".to_string(),
        };
        format!("{how}; its output:\n{}", self.output)
    }

    pub fn succeeded(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
}

/// Runs the test `name` of this test binary in a child process with `env`, its address space
/// capped at 4 GiB (so that an unbounded read aborts the child instead of eating the shared
/// machine) and killed after `timeout`. Inputs that used to hang or abort the whole process
/// are tried this way, so that a regression fails one test instead of the run.
pub fn run_child_test(
    name: &str,
    env: &[(&str, &str)],
    timeout: std::time::Duration,
) -> ChildOutcome {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let exe = std::env::current_exe().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-c")
        .arg("ulimit -v 4194304 && exec \"$@\"")
        .arg("bash")
        .arg(exe)
        .args([
            name,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    // Drain both pipes on threads so that a chatty child never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            let _ = pipe.read_to_end(&mut text);
            String::from_utf8_lossy(&text).into_owned()
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > timeout {
            timed_out = true;
            let _ = child.kill();
            break child.wait().ok();
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = format!("{}{}", out.join().unwrap(), err.join().unwrap());
    ChildOutcome {
        status,
        timed_out,
        output,
    }
}

/// `expected/hamilton_reference.json`: per frame of the clip, the faces of each reference
/// pipeline (`onnx`, `dlib`).
pub fn hamilton_reference() -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(asset("testdata/expected/hamilton_reference.json")).unwrap(),
    )
    .unwrap()
}

/// The frames of the clip on which one of `pipelines` of the reference names somebody.
pub fn reference_named_frames(pipelines: &[&str]) -> Vec<usize> {
    reference_frames_where(pipelines, |name| name != "Unknown")
}

/// The frames on which one of `pipelines` of the reference gives a face a name `wanted` accepts.
fn reference_frames_where(pipelines: &[&str], wanted: impl Fn(&str) -> bool) -> Vec<usize> {
    hamilton_reference()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            pipelines
                .iter()
                .flat_map(|k| f[k].as_array().unwrap())
                .any(|face| wanted(face["name"].as_str().unwrap()))
        })
        .map(|(i, _)| i)
        .collect()
}

/// The clip through the element with the Miranda + Lacamoire gallery: every output frame.
pub fn clip_run(format: &str, extra_props: &str) -> Run {
    let props = format!("{} {extra_props}", gallery_prop(&hamilton_gallery()));
    let run = run_pipeline(&decode_pipeline(CLIP, format, &props), false);
    assert_eq!(run.error, None, "{format}");
    assert_eq!(run.frames.len(), 275, "{format}: every frame comes out");
    run
}

/// The clip scaled by `videoscale` inside the pipeline to `width` x `height` in `format` (so
/// the frames are the reference's), through the element with the demo gallery.
pub fn scaled_clip_run(width: u32, height: u32, format: &str, extra_props: &str) -> Run {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! video/x-raw,format={format},width={width},height={height} ! facerec name=f {} {extra_props} ! appsink name=sink",
        asset(CLIP).display(),
        gallery_prop(&hamilton_gallery()),
    );
    let run = run_pipeline(&description, false);
    assert_eq!(run.error, None, "{width}x{height} {format}");
    assert_eq!(
        run.frames.len(),
        275,
        "{width}x{height} {format}: every frame comes out"
    );
    run
}

/// The sorted names (not "unknown") on each frame.
pub fn names_per_frame(run: &Run) -> Vec<Vec<String>> {
    run.frames
        .iter()
        .map(|faces| {
            let mut names: Vec<String> = faces
                .iter()
                .map(|f| f.name.clone())
                .filter(|n| n != "unknown")
                .collect();
            names.sort();
            names
        })
        .collect()
}

pub fn clip_names(format: &str) -> Vec<Vec<String>> {
    names_per_frame(&clip_run(format, ""))
}

/// A named face of the reference outputs: name and `(x, y, w, h)` in 640x360 pixels.
pub type RefFace = (String, (f64, f64, f64, f64));

/// Per frame, the faces that either reference pipeline (YuNet+ONNX or the dlib demo) names.
pub fn reference_faces() -> Vec<Vec<RefFace>> {
    hamilton_reference()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|frame| {
            ["onnx", "dlib"]
                .iter()
                .flat_map(|k| frame[k].as_array().unwrap())
                .filter(|face| face["name"] != "Unknown")
                .map(|face| {
                    let b: Vec<f64> = face["box_xywh"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect();
                    (
                        face["name"].as_str().unwrap().to_string(),
                        (b[0], b[1], b[2], b[3]),
                    )
                })
                .collect()
        })
        .collect()
}

/// The frames on which the reference's YuNet+ONNX pipeline names `name`.
pub fn reference_frames_naming(name: &str) -> Vec<usize> {
    reference_frames_where(&["onnx"], |n| n == name)
}

/// For a named face on frame `i` at `rect` (640x360 pixels), how many frames away the nearest
/// reference face of the same name that it overlaps (IoU >= 0.3) is, searching up to `within`.
pub fn same_name_offset(
    reference: &[Vec<RefFace>],
    i: usize,
    name: &str,
    rect: (f64, f64, f64, f64),
    within: usize,
) -> Option<usize> {
    (0..=within).find(|&d| {
        [
            i.checked_sub(d),
            Some(i + d).filter(|&j| j < reference.len()),
        ]
        .into_iter()
        .flatten()
        .any(|j| {
            reference[j]
                .iter()
                .any(|(n, b)| n == name && iou(rect, *b) >= 0.3)
        })
    })
}

/// A named face with no same-name reference face near it: frame, name, box (640x360 pixels).
pub type Swap = (usize, String, (u32, u32, u32, u32));

/// What one run of the clip named, against the reference (see [`ClipReport::of`]).
#[derive(Debug, Clone)]
pub struct ClipReport {
    pub label: String,
    pub miranda_frames: usize,
    pub lacamoire_frames: usize,
    /// Of the reference's frames naming Lacamoire, how many the run names him in.
    pub lacamoire_reference_hits: usize,
    pub lacamoire_reference_total: usize,
    /// The reference's frames naming Lacamoire that the run does not.
    pub lacamoire_missed: Vec<usize>,
    /// The farthest a frame naming Lacamoire is from a reference frame naming him.
    pub lacamoire_farthest: usize,
    /// Names other than the gallery's two, with the frames they appear on.
    pub other_names: Vec<(usize, String)>,
    /// Named faces with no same-name reference face (IoU >= 0.3) within 5 frames:
    /// (frame, name, box in 640x360 pixels).
    pub swaps: Vec<Swap>,
    /// The most times one track's decided name changed, and that track's label sequence. The
    /// "unknown" a track shows before its first name is no decision (the vote is still out), so
    /// changes are counted from the first name on: unknown > A is 0 changes, unknown > A > B
    /// and A > unknown are 1, A > unknown > A is 2.
    pub max_changes: usize,
    pub worst_track: (u64, Vec<String>),
    /// Tracks whose decided name changed more than once.
    pub flickering_tracks: usize,
}

/// Frames a named face may be from a same-name reference face before it counts as a swap.
pub const SWAP_WINDOW: usize = 5;

impl ClipReport {
    /// Compares a run on the clip at `width` (boxes are scaled back to the reference's 640x360)
    /// with `expected/hamilton_reference.json`.
    pub fn of(label: &str, run: &Run, width: u32) -> ClipReport {
        let scale = 640.0 / width as f64;
        let reference = reference_faces();
        let lacamoire_reference = reference_frames_naming(LACAMOIRE);
        let mut report = ClipReport {
            label: label.to_string(),
            miranda_frames: run.frames_naming(MIRANDA),
            lacamoire_frames: run.frames_naming(LACAMOIRE),
            lacamoire_reference_hits: lacamoire_reference
                .iter()
                .filter(|&&i| run.frames[i].iter().any(|f| f.name == LACAMOIRE))
                .count(),
            lacamoire_reference_total: lacamoire_reference.len(),
            lacamoire_missed: lacamoire_reference
                .iter()
                .copied()
                .filter(|&i| !run.frames[i].iter().any(|f| f.name == LACAMOIRE))
                .collect(),
            lacamoire_farthest: 0,
            other_names: Vec::new(),
            swaps: Vec::new(),
            max_changes: 0,
            worst_track: (0, Vec::new()),
            flickering_tracks: 0,
        };
        let mut tracks: std::collections::BTreeMap<u64, Vec<String>> = Default::default();
        for (i, faces) in run.frames.iter().enumerate() {
            for face in faces {
                let labels = tracks.entry(face.track_id).or_default();
                if labels.last() != Some(&face.name) {
                    labels.push(face.name.clone());
                }
                if face.name == "unknown" {
                    continue;
                }
                if face.name != MIRANDA && face.name != LACAMOIRE {
                    report.other_names.push((i, face.name.clone()));
                }
                if face.name == LACAMOIRE {
                    let away = lacamoire_reference
                        .iter()
                        .map(|&j| j.abs_diff(i))
                        .min()
                        .unwrap_or(usize::MAX);
                    report.lacamoire_farthest = report.lacamoire_farthest.max(away);
                }
                let (x, y, w, h) = face.rect;
                let rect = (
                    x as f64 * scale,
                    y as f64 * scale,
                    w as f64 * scale,
                    h as f64 * scale,
                );
                if same_name_offset(&reference, i, &face.name, rect, SWAP_WINDOW).is_none() {
                    report.swaps.push((
                        i,
                        face.name.clone(),
                        (rect.0 as u32, rect.1 as u32, rect.2 as u32, rect.3 as u32),
                    ));
                }
            }
        }
        for (id, labels) in tracks {
            let first_name = labels.iter().position(|l| l != "unknown");
            let changes = first_name.map_or(0, |i| labels.len() - 1 - i);
            if changes > 1 {
                report.flickering_tracks += 1;
            }
            if changes > report.max_changes {
                report.max_changes = changes;
                report.worst_track = (id, labels);
            }
        }
        report
    }

    pub const HEADER: &str = "| run | Miranda frames | Lacamoire frames | of the reference's Lacamoire frames | farthest Lacamoire frame from the reference's | other names | identity swaps | tracks whose decided name changes > 1 | most decided-name changes in a track |";

    pub fn row(&self) -> String {
        let swaps: Vec<String> = self
            .swaps
            .iter()
            .take(6)
            .map(|(i, n, b)| format!("{i}:{n}@{b:?}"))
            .collect();
        let others: Vec<String> = self
            .other_names
            .iter()
            .take(4)
            .map(|(i, n)| format!("{i}:{n}"))
            .collect();
        format!(
            "| {} | {} | {} | {}/{} (missed {:?}) | {} | {} | {} {} | {} | {} (track {}: {}) |",
            self.label,
            self.miranda_frames,
            self.lacamoire_frames,
            self.lacamoire_reference_hits,
            self.lacamoire_reference_total,
            self.lacamoire_missed,
            self.lacamoire_farthest,
            if others.is_empty() {
                "none".to_string()
            } else {
                format!("{} ({})", self.other_names.len(), others.join(", "))
            },
            self.swaps.len(),
            if swaps.is_empty() {
                String::new()
            } else {
                format!("({})", swaps.join(", "))
            },
            self.flickering_tracks,
            self.max_changes,
            self.worst_track.0,
            self.worst_track.1.join(" > "),
        )
    }
}
