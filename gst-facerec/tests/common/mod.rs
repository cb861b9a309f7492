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
            let p = m
                .param("facerec")
                .expect("facerec parameters on every face");
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
