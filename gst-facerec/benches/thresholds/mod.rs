//! The `thresholds` group (issue 28): the detection threshold swept over every photo and the
//! clip in `../shared/testdata`, to choose the default by measurement.
//!
//! For each threshold of `--thresholds` (default 0.60 to 0.90 by 0.05):
//!
//! * **Stills** (`Engine::analyze`, the pyramid): every photo of the test data against its face
//!   count (testdata/README.md), and the four VOC photos against their annotated boxes
//!   (`dlib/training.xml`; a detection is the annotated face when their IoU is at least 0.3 or
//!   its centre lies in the annotated box). Reports faces found of those annotated, false
//!   detections (more faces than the count, or a box matching no annotation), and wrong names:
//!   the `knn_examples/test` photos against the `knn_examples/train` gallery, left to right.
//! * **Video** (the element, every frame, the demo gallery): the clip scaled in the pipeline to
//!   360p I420, 720p NV12 and 1080p NV12, and the clip re-encoded at 1080p with ffmpeg (frame
//!   for frame, x264 CRF 18), each against `expected/hamilton_reference.json` with the
//!   tests' `ClipReport`: frames naming Miranda and Lacamoire, wrong names (a named face with no
//!   same-name reference face near it) and the most decided-name changes of one track.
//!
//! A row passes the bar when the stills have no false detection and no wrong name, and
//! every video run names Lacamoire in at least 15 of the reference's 21 frames and Miranda in
//! at least 135, with no wrong name and no track changing its decided name more than once.
//! The table goes to `docs/ACCURACY.md`.

use std::path::Path;

use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{knn_gallery, require};
use facerec_core::tunables::Tunables;
use serde_json::{Value, json};

use crate::common::{ClipReport, Run, iou, run_pipeline, scaled_clip_run};

/// The default sweep.
pub const THRESHOLDS: [f32; 7] = [0.60, 0.65, 0.70, 0.75, 0.80, 0.85, 0.90];

/// Photos under `testdata/` with their face counts (testdata/README.md) and, for the knn test
/// photos, the names left to right (`unknown` for a face not in the knn gallery).
const PHOTOS: &[(&str, usize, &[&str])] = &[
    ("face_recognition/obama.jpg", 1, &[]),
    ("face_recognition/obama2.jpg", 1, &[]),
    ("face_recognition/obama_small.jpg", 1, &[]),
    ("face_recognition/obama-240p.jpg", 1, &[]),
    ("face_recognition/obama-480p.jpg", 1, &[]),
    ("face_recognition/obama-720p.jpg", 1, &[]),
    ("face_recognition/obama-1080p.jpg", 1, &[]),
    ("face_recognition/biden.jpg", 1, &[]),
    ("face_recognition/two_people.jpg", 2, &[]),
    ("face_recognition/lin-manuel-miranda.png", 1, &[]),
    ("face_recognition/alex-lacamoire.png", 1, &[]),
    (
        "face_recognition/knn_examples/train/alex_lacamoire/img1.jpg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/train/biden/biden2.jpg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/train/kit_harington/john1.jpeg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/train/kit_harington/john2.jpeg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/train/rose_leslie/img1.jpg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/train/rose_leslie/img2.jpg",
        1,
        &[],
    ),
    (
        "face_recognition/knn_examples/test/alex_lacamoire1.jpg",
        1,
        &["alex_lacamoire"],
    ),
    (
        "face_recognition/knn_examples/test/johnsnow_test1.jpg",
        1,
        &["kit_harington"],
    ),
    (
        "face_recognition/knn_examples/test/kit_with_rose.jpg",
        2,
        &["rose_leslie", "kit_harington"],
    ),
    (
        "face_recognition/knn_examples/test/obama1.jpg",
        1,
        &["obama"],
    ),
    (
        "face_recognition/knn_examples/test/obama_and_biden.jpg",
        3,
        &["biden", "obama", "unknown"],
    ),
    ("face_recognition/test_images/obama3.jpg", 1, &[]),
    (
        "face_recognition/test_images/obama_partial_face.jpg",
        1,
        &[],
    ),
    (
        "face_recognition/test_images/obama_partial_face2.jpg",
        1,
        &[],
    ),
    ("face_recognition/test_images/32bit.png", 1, &[]),
    ("dlib/bald_guys.jpg", 24, &[]),
    ("dlib/Tom_Cruise_avp_2014_4.jpg", 1, &[]),
    ("dlib/dogs.jpg", 0, &[]),
    ("dlib/2007_007763.jpg", 7, &[]),
    ("dlib/2008_001009.jpg", 2, &[]),
    ("dlib/2008_001322.jpg", 3, &[]),
    ("dlib/2008_002079.jpg", 6, &[]),
];

type Rect = (f64, f64, f64, f64);

/// The annotated boxes of `dlib/training.xml`, by file name.
fn annotated_boxes() -> Vec<(String, Vec<Rect>)> {
    let Some(path) = require("testdata/dlib/training.xml") else {
        return Vec::new();
    };
    let xml = std::fs::read_to_string(path).unwrap();
    let attr = |tag: &str, name: &str| -> f64 {
        let key = format!("{name}='");
        let start = tag.find(&key).unwrap() + key.len();
        tag[start..][..tag[start..].find('\'').unwrap()]
            .parse()
            .unwrap()
    };
    let mut images: Vec<(String, Vec<Rect>)> = Vec::new();
    for line in xml.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("<image file='") {
            let file = rest.split('\'').next().unwrap();
            images.push((file.to_string(), Vec::new()));
        } else if line.starts_with("<box ") {
            let b = (
                attr(line, "left"),
                attr(line, "top"),
                attr(line, "width"),
                attr(line, "height"),
            );
            images.last_mut().unwrap().1.push(b);
        }
    }
    images
}

fn same_face(detected: Rect, annotated: Rect) -> bool {
    let (cx, cy) = (detected.0 + detected.2 / 2.0, detected.1 + detected.3 / 2.0);
    iou(detected, annotated) >= 0.3
        || (cx >= annotated.0
            && cx <= annotated.0 + annotated.2
            && cy >= annotated.1
            && cy <= annotated.1 + annotated.3)
}

/// What the stills path found at one threshold.
#[derive(Debug, Default)]
struct StillsReport {
    annotated: usize,
    found: usize,
    false_detections: Vec<String>,
    missed: Vec<String>,
    wrong_names: Vec<String>,
}

fn stills_at(engine: &mut Engine, threshold: f32, boxes: &[(String, Vec<Rect>)]) -> StillsReport {
    engine.tune(&Tunables {
        detect_threshold: threshold,
        ..engine.tuning()
    });
    let mut report = StillsReport::default();
    for &(photo, count, names) in PHOTOS {
        let Some(path) = require(&format!("testdata/{photo}")) else {
            continue;
        };
        let image = load_rgb(&path).unwrap();
        let mut faces = engine.analyze(&image).unwrap();
        faces.sort_by(|a, b| a.detection.bbox.x.total_cmp(&b.detection.bbox.x));
        let rects: Vec<Rect> = faces
            .iter()
            .map(|f| {
                let b = f.detection.bbox;
                (b.x as f64, b.y as f64, b.w as f64, b.h as f64)
            })
            .collect();
        let file = Path::new(photo).file_name().unwrap().to_string_lossy();
        report.annotated += count;
        if let Some((_, truth)) = boxes.iter().find(|(f, _)| *f == file) {
            let hit = truth
                .iter()
                .filter(|t| rects.iter().any(|r| same_face(*r, **t)))
                .count();
            report.found += hit;
            if hit < truth.len() {
                report.missed.push(format!("{file} {}", truth.len() - hit));
            }
            for r in rects
                .iter()
                .filter(|r| !truth.iter().any(|t| same_face(**r, *t)))
            {
                report
                    .false_detections
                    .push(format!("{file} at {:.0},{:.0} {:.0}px", r.0, r.1, r.2));
            }
        } else {
            report.found += rects.len().min(count);
            if rects.len() < count {
                report
                    .missed
                    .push(format!("{file} {}", count - rects.len()));
            }
            if rects.len() > count {
                report
                    .false_detections
                    .push(format!("{file} {} faces, {count} expected", rects.len()));
            }
        }
        if !names.is_empty() {
            let seen: Vec<&str> = faces
                .iter()
                .map(|f| f.identity.as_ref().map_or("unknown", |m| m.label()))
                .collect();
            // A face whose place in the left-to-right order has another name, or an extra
            // face with a name: a wrong name. A missed face is a miss, not a wrong name.
            if seen.len() == names.len() {
                for (s, n) in seen.iter().zip(names.iter()) {
                    if s != n {
                        report.wrong_names.push(format!("{file}: {s} for {n}"));
                    }
                }
            } else {
                for s in seen
                    .iter()
                    .filter(|s| **s != "unknown" && !names.contains(s))
                {
                    report.wrong_names.push(format!("{file}: {s}"));
                }
            }
        }
    }
    report
}

/// One video run at one threshold.
struct VideoRow {
    label: String,
    report: ClipReport,
    /// Each wrong name's face as the element reported it: frame, track, distance, quality.
    wrong: Vec<String>,
}

impl VideoRow {
    fn of(label: &str, run: &Run, width: u32) -> VideoRow {
        let report = ClipReport::of(label, run, width);
        let wrong = report
            .swaps
            .iter()
            .map(|(i, name, _)| {
                let face = run.frames[*i].iter().find(|f| f.name == *name).unwrap();
                format!(
                    "{i}: {name} track {} {}px d={:.3} q={:.2}",
                    face.track_id,
                    face.rect.2,
                    face.distance,
                    face.quality.unwrap_or(f64::NAN)
                )
            })
            .collect();
        // Every frame of the tracks that carried a wrong name: what the vote saw.
        let mut tracks: Vec<u64> = Vec::new();
        for (i, name, _) in &report.swaps {
            let face = run.frames[*i].iter().find(|f| f.name == *name).unwrap();
            if !tracks.contains(&face.track_id) {
                tracks.push(face.track_id);
            }
        }
        for track in tracks {
            let seen: Vec<String> = run
                .frames
                .iter()
                .enumerate()
                .flat_map(|(i, faces)| faces.iter().map(move |f| (i, f)))
                .filter(|(_, f)| f.track_id == track)
                .map(|(i, f)| {
                    format!(
                        "{i}:{}:{}px:d={:.3}:q={:.2}",
                        if f.name == "unknown" {
                            "?"
                        } else {
                            &f.name[..4]
                        },
                        f.rect.2,
                        f.distance,
                        f.quality.unwrap_or(f64::NAN)
                    )
                })
                .collect();
            println!("thresholds:     {label} track {track}: {}", seen.join(" "));
        }
        VideoRow {
            label: label.to_string(),
            report,
            wrong,
        }
    }
}

impl VideoRow {
    fn passes(&self) -> bool {
        let r = &self.report;
        r.lacamoire_reference_hits >= 15
            && r.miranda_frames >= 135
            && r.swaps.is_empty()
            && r.other_names.is_empty()
            && r.max_changes <= 1
    }

    fn json(&self) -> Value {
        let r = &self.report;
        json!({
            "run": self.label,
            "miranda_frames": r.miranda_frames,
            "lacamoire_frames": r.lacamoire_frames,
            "lacamoire_reference_hits": r.lacamoire_reference_hits,
            "lacamoire_reference_total": r.lacamoire_reference_total,
            "wrong_names": self.wrong,
            "most_decided_name_changes": r.max_changes,
            "passes": self.passes(),
        })
    }
}

/// The clip re-encoded at 1080p, through the element at its native size.
fn reencoded_run(mp4: &Path, props: &str) -> Run {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=NV12 ! facerec name=f {} {props} ! appsink name=sink",
        mp4.display(),
        crate::common::gallery_prop(&crate::common::hamilton_gallery()),
    );
    let run = run_pipeline(&description, false);
    assert_eq!(run.error, None, "{}", mp4.display());
    assert_eq!(run.frames.len(), 275, "{}: frame for frame", mp4.display());
    run
}

/// The clip re-encoded at 1920x1080 (`.cache/bench/clip1080-frames.mp4`), frame for frame: the
/// `cameras` group's copy is resampled to a constant rate (300 frames for 275), which would
/// shift every frame against the reference.
fn reencoded_clip(clip: &Path) -> std::path::PathBuf {
    let dir = crate::cameras::repo().join(".cache/bench");
    std::fs::create_dir_all(&dir).unwrap();
    let mp4 = dir.join("clip1080-frames.mp4");
    if !mp4.exists() {
        let partial = dir.join("clip1080-frames.partial.mp4");
        let args: Vec<&std::ffi::OsStr> = vec![
            "-y".as_ref(),
            "-i".as_ref(),
            clip.as_os_str(),
            "-vf".as_ref(),
            "scale=1920:1080".as_ref(),
            "-fps_mode".as_ref(),
            "passthrough".as_ref(),
            "-c:v".as_ref(),
            "libx264".as_ref(),
            "-crf".as_ref(),
            "18".as_ref(),
            "-an".as_ref(),
            partial.as_os_str(),
        ];
        crate::cameras::ffmpeg(&args).unwrap_or_else(|e| panic!("{e:#}"));
        std::fs::rename(&partial, &mp4).unwrap();
    }
    mp4
}

pub fn thresholds_group(clip: &Path, thresholds: &[f32]) -> Vec<Value> {
    let mp4 = reencoded_clip(clip);
    let boxes = annotated_boxes();
    let mut engine = Engine::new(EngineConfig::default()).expect("models load");
    let gallery = knn_gallery(&mut engine);
    engine
        .set_gallery(Some(std::sync::Arc::new(gallery)))
        .unwrap();
    let mut rows = Vec::new();
    let mut table = vec![
        "| detect-threshold | stills: faces found | false detections | wrong names | 360p I420: Miranda / Lacamoire (of 21) | 720p NV12 | 1080p NV12 | 1080p re-encode | wrong names on video | most decided-name changes | passes |".to_string(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    for &t in thresholds {
        let started = std::time::Instant::now();
        let stills = stills_at(&mut engine, t, &boxes);
        let props = format!("detect-threshold={t}");
        let mut video = Vec::new();
        for (w, h, format) in [
            (640, 360, "I420"),
            (1280, 720, "NV12"),
            (1920, 1080, "NV12"),
        ] {
            let run = scaled_clip_run(w, h, format, &props);
            video.push(VideoRow::of(&format!("{h}p {format}"), &run, w));
        }
        let run = reencoded_run(&mp4, &props);
        video.push(VideoRow::of("1080p re-encode", &run, 1920));
        let stills_pass = stills.false_detections.is_empty() && stills.wrong_names.is_empty();
        let passes = stills_pass && video.iter().all(VideoRow::passes);
        let cell = |r: &VideoRow| {
            format!(
                "{} / {}",
                r.report.miranda_frames, r.report.lacamoire_reference_hits
            )
        };
        let wrong: Vec<String> = video
            .iter()
            .filter(|r| !r.report.swaps.is_empty())
            .map(|r| {
                let (i, n, b) = &r.report.swaps[0];
                format!(
                    "{}: {} ({i}: {n} at {}x{})",
                    r.label,
                    r.report.swaps.len(),
                    b.2,
                    b.3
                )
            })
            .collect();
        let line = format!(
            "| {t:.2} | {}/{}{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            stills.found,
            stills.annotated,
            if stills.missed.is_empty() {
                String::new()
            } else {
                format!(" (missed: {})", stills.missed.join(", "))
            },
            if stills.false_detections.is_empty() {
                "0".to_string()
            } else {
                format!(
                    "{} ({})",
                    stills.false_detections.len(),
                    stills.false_detections.join("; ")
                )
            },
            if stills.wrong_names.is_empty() {
                "0".to_string()
            } else {
                stills.wrong_names.join("; ")
            },
            cell(&video[0]),
            cell(&video[1]),
            cell(&video[2]),
            cell(&video[3]),
            if wrong.is_empty() {
                "0".to_string()
            } else {
                wrong.join("; ")
            },
            video
                .iter()
                .map(|r| r.report.max_changes)
                .max()
                .unwrap_or(0),
            if passes { "yes" } else { "no" },
        );
        println!("thresholds: {line} ({:.0?})", started.elapsed());
        for r in &video {
            println!("thresholds:   {}", r.report.row());
            for w in &r.wrong {
                println!("thresholds:     wrong name on {}: {w}", r.label);
            }
        }
        table.push(line);
        rows.push(json!({
            "detect_threshold": t,
            "stills": {
                "annotated": stills.annotated,
                "found": stills.found,
                "missed": stills.missed,
                "false_detections": stills.false_detections,
                "wrong_names": stills.wrong_names,
            },
            "video": video.iter().map(VideoRow::json).collect::<Vec<_>>(),
            "passes": passes,
        }));
    }
    println!("\n{}\n", table.join("\n"));
    rows
}
