//! Shared helpers for the element tests: registering the plugin, building galleries from the
//! real photos, and running real pipelines to collect what the element reported per frame.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Once, OnceLock};

use facerec_core::engine::{Engine, EngineConfig, load_rgb};
use facerec_core::gallery::Gallery;
use facerec_core::testsupport::{require, require_runtime};
use gst::prelude::*;

pub const TD: &str = "testdata/face_recognition";

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

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("facerec-test-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
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
        build_gallery(&refs, &temp_dir("knn").join("model.data"))
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
            &temp_dir("hamilton").join("model.data"),
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
                };
            };
            SeenFace {
                name: p.get::<String>("name").unwrap(),
                distance: p.get::<f64>("distance").unwrap(),
                rect: m.rect(),
                track_id: p.get::<u64>("track-id").unwrap(),
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
    hamilton_reference()["frames"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter(|(_, f)| {
            pipelines
                .iter()
                .flat_map(|k| f[k].as_array().unwrap())
                .any(|face| face["name"] != "Unknown")
        })
        .map(|(i, _)| i)
        .collect()
}
