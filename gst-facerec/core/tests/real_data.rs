//! The vision core against the real photos and reference outputs in `../shared/testdata`.

use std::sync::Arc;

use facerec_core::align::{Chip, align_face};
use facerec_core::engine::{Engine, EngineConfig};
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{knn_gallery, require, require_runtime};
use serde_json::Value;

const TD: &str = "testdata/face_recognition";

fn json(relative: &str) -> Option<Value> {
    let path = require(relative)?;
    Some(serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap())
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// An engine at native resolution, like the reference outputs.
fn engine(threshold: f32) -> Option<Engine> {
    if !require_runtime() || require("models/yunet_s_dynamic.onnx").is_none() {
        return None;
    }
    let mut config = EngineConfig::default();
    config.tunables.network_width = 0;
    config.tunables.detect_threshold = threshold;
    Some(Engine::new(config).expect("models load"))
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn recognizer_reproduces_the_golden_dlib_chip_embedding() {
    let (Some(golden), Some(mut engine)) =
        (json("testdata/expected/golden/golden.json"), engine(0.85))
    else {
        return;
    };
    let png = require("testdata/expected/golden/obama_chip_dlib.png").unwrap();
    let chip = Chip::from_rgb8(&load_rgb(&png).unwrap()).unwrap();
    let got = &engine.embed_chips(&[chip]).unwrap()[0];
    let want = floats(&golden["obama_chip_dlib.png"]["embedding_onnx"]);
    assert_eq!(got.len(), 128);
    let max = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(max < 1e-4, "max abs difference {max}");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn warp_of_obama_matches_the_reference_chip() {
    let Some(golden) = json("testdata/expected/golden/golden.json") else {
        return;
    };
    let entry = &golden["obama_chip_yunet_aligned.png"];
    let lm = floats(&entry["yunet_landmarks"]);
    let landmarks = [0, 1, 2, 3, 4].map(|i| [lm[2 * i], lm[2 * i + 1]]);
    let image = load_rgb(&require(&format!("{TD}/obama.jpg")).unwrap()).unwrap();
    let chip = align_face(&image, &landmarks).to_rgb8();
    let reference =
        load_rgb(&require("testdata/expected/golden/obama_chip_yunet_aligned.png").unwrap())
            .unwrap();
    let mad = chip
        .as_raw()
        .iter()
        .zip(reference.as_raw())
        .map(|(a, b)| (*a as f64 - *b as f64).abs())
        .sum::<f64>()
        / chip.as_raw().len() as f64;
    eprintln!("warp mean absolute difference: {mad:.3} grey levels");
    assert!(mad < 1.0, "mean absolute difference {mad}");

    // And the embedding of our warp is the reference embedding of that chip.
    if let Some(mut engine) = engine(0.85) {
        let got = &engine
            .embed_chips(&[Chip::from_rgb8(&chip).unwrap()])
            .unwrap()[0];
        let want = floats(&entry["embedding_onnx_of_png"]);
        let l2 = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f32>()
            .sqrt();
        assert!(l2 < 0.02, "embedding L2 {l2}");
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn detections_agree_with_the_reference_within_one_pixel() {
    let (Some(reference), Some(mut engine)) =
        (json("testdata/expected/yunet_detections.json"), engine(0.6))
    else {
        return;
    };
    let images = reference["images"].as_object().unwrap();
    let mut worst = (0.0f32, String::new());
    for (name, entry) in images {
        let image = load_rgb(&require(&format!("testdata/{name}")).unwrap()).unwrap();
        let faces = engine.analyze(&image).unwrap();
        let rows = entry["yunet_s_dynamic"].as_array().unwrap();
        assert_eq!(faces.len(), rows.len(), "{name}: face count");
        for row in rows {
            let r = floats(row);
            // Match by nearest box, since near-equal scores may swap order.
            let face = faces
                .iter()
                .min_by(|a, b| {
                    let da = (a.detection.bbox.x - r[0]).abs() + (a.detection.bbox.y - r[1]).abs();
                    let db = (b.detection.bbox.x - r[0]).abs() + (b.detection.bbox.y - r[1]).abs();
                    da.total_cmp(&db)
                })
                .unwrap();
            let d = &face.detection;
            let mut ours = vec![d.bbox.x, d.bbox.y, d.bbox.w, d.bbox.h];
            ours.extend(d.landmarks.iter().flatten());
            for (o, e) in ours.iter().zip(&r[..14]) {
                let diff = (o - e).abs();
                if diff > worst.0 {
                    worst = (diff, name.clone());
                }
                assert!(diff <= 1.0, "{name}: {ours:?} vs {r:?}");
            }
            assert!(
                (d.score - r[14]).abs() < 0.01,
                "{name}: score {} vs {}",
                d.score,
                r[14]
            );
        }
    }
    eprintln!(
        "largest coordinate difference: {:.3} px ({})",
        worst.0, worst.1
    );
}

/// Names left to right.
fn names_left_to_right(engine: &mut Engine, relative: &str) -> Vec<String> {
    let image = load_rgb(&require(relative).unwrap()).unwrap();
    let mut faces = engine.analyze(&image).unwrap();
    faces.sort_by(|a, b| a.detection.bbox.x.total_cmp(&b.detection.bbox.x));
    faces
        .iter()
        .map(|f| {
            f.identity
                .as_ref()
                .map(|m| m.label().to_string())
                .unwrap_or_else(|| "(small)".into())
        })
        .collect()
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn knn_gallery_names_the_test_photos() {
    let Some(mut engine) = engine(0.85) else {
        return;
    };
    let gallery = knn_gallery(&mut engine);
    assert_eq!(gallery.people.len(), 5);
    assert_eq!(gallery.embedding_count(), 9);
    engine.set_gallery(Some(Arc::new(gallery))).unwrap();
    assert_eq!(
        names_left_to_right(&mut engine, &format!("{TD}/two_people.jpg")),
        ["obama", "biden"]
    );
    assert_eq!(
        names_left_to_right(
            &mut engine,
            &format!("{TD}/knn_examples/test/kit_with_rose.jpg")
        ),
        ["rose_leslie", "kit_harington"]
    );
    assert_eq!(
        names_left_to_right(
            &mut engine,
            &format!("{TD}/knn_examples/test/obama_and_biden.jpg")
        ),
        ["biden", "obama", "unknown"]
    );
    assert_eq!(
        names_left_to_right(
            &mut engine,
            &format!("{TD}/knn_examples/test/johnsnow_test1.jpg")
        ),
        ["kit_harington"]
    );
    assert_eq!(
        names_left_to_right(
            &mut engine,
            &format!("{TD}/knn_examples/test/alex_lacamoire1.jpg")
        ),
        ["alex_lacamoire"]
    );
    assert_eq!(
        names_left_to_right(&mut engine, &format!("{TD}/knn_examples/test/obama1.jpg")),
        ["obama"]
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn face_counts_on_the_dlib_photos() {
    let Some(mut engine) = engine(0.85) else {
        return;
    };
    let count = |engine: &mut Engine, name: &str| {
        engine
            .analyze(&load_rgb(&require(name).unwrap()).unwrap())
            .unwrap()
            .len()
    };
    assert_eq!(count(&mut engine, "testdata/dlib/bald_guys.jpg"), 24);
    assert_eq!(count(&mut engine, "testdata/dlib/dogs.jpg"), 0);
    assert_eq!(count(&mut engine, "testdata/dlib/2007_007763.jpg"), 7);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn exif_orientation_is_honoured() {
    let Some(mut engine) = engine(0.85) else {
        return;
    };
    use facerec_core::image::{ImageEncoder, codecs::jpeg::JpegEncoder, imageops};
    let upright = load_rgb(&require(&format!("{TD}/obama_small.jpg")).unwrap()).unwrap();
    // Stored turned a quarter left, with EXIF orientation 6 ("rotate 90 degrees clockwise to
    // display"), as a phone held upright writes it.
    let stored = imageops::rotate270(&upright);
    let exif_orientation_6: Vec<u8> = vec![
        0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00,
        0x00, // TIFF header, little-endian, IFD at 8
        0x01, 0x00, // one entry
        0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00,
        0x00, // Orientation = 6
        0x00, 0x00, 0x00, 0x00, // no next IFD
    ];
    let file = tempfile::Builder::new()
        .prefix("facerec-exif-")
        .suffix(".jpg")
        .tempfile()
        .unwrap();
    let path = file.path();
    let mut bytes = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut bytes, 95);
    encoder.set_exif_metadata(exif_orientation_6).unwrap();
    encoder
        .write_image(
            stored.as_raw(),
            stored.width(),
            stored.height(),
            facerec_core::image::ExtendedColorType::Rgb8,
        )
        .unwrap();
    std::fs::write(path, &bytes).unwrap();

    let loaded = load_rgb(path).unwrap();
    std::fs::remove_file(path).unwrap();
    assert_eq!(loaded.dimensions(), upright.dimensions(), "turned upright");
    let want = engine.analyze(&upright).unwrap();
    let got = engine.analyze(&loaded).unwrap();
    assert_eq!(got.len(), 1);
    let (a, b) = (want[0].detection.bbox, got[0].detection.bbox);
    assert!(
        (a.x - b.x).abs() < 3.0 && (a.y - b.y).abs() < 3.0,
        "{a:?} vs {b:?}"
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_detector_with_a_fixed_input_is_refused_at_load() {
    if !require_runtime() {
        return;
    }
    let Some(fixed) = require("models/face_detection_yunet_2023mar.onnx") else {
        return;
    };
    let config = EngineConfig {
        detector: fixed.clone(),
        ..EngineConfig::default()
    };
    let err = Engine::new(config).unwrap_err().to_string();
    assert_eq!(
        err,
        format!(
            "detector model {} could not be loaded: input 'input' has the fixed shape 1x3x640x640; facerec needs a YuNet model with dynamic height and width, such as yunet_s_dynamic.onnx",
            fixed.display()
        )
    );
}

/// Per face, left to right: its distance to the nearest person in the gallery.
fn distances(faces: &[facerec_core::engine::FaceResult]) -> Vec<f32> {
    let mut faces = faces.to_vec();
    faces.sort_by(|a, b| a.bbox.x.total_cmp(&b.bbox.x));
    faces
        .iter()
        .map(|f| f.identity.as_ref().and_then(|m| m.distance).unwrap())
        .collect()
}

/// Two streams on one scheduler: stream A has faces to embed while B waits for a turn, so A
/// leaves its chips for B's turn. With room for both (`recognition-batch` 8), B's one recognizer
/// run embeds both frames' faces and hands A its own; with room for only B's (3: two faces each,
/// never split), B runs its own and then A's. Either way each stream's faces get the distances a
/// lone engine gives them (a mix-up between the streams or within a run would move them by 0.3
/// or more), and only the first way counts a shared run.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_chips_of_two_streams_share_one_recognizer_run() {
    use facerec_core::detect::NetworkInput;
    use facerec_core::schedule::Scheduler;

    let Some(mut lone) = engine(0.8) else {
        return;
    };
    let gallery = Arc::new(knn_gallery(&mut lone));
    let photo = |name: &str| load_rgb(&require(&format!("{TD}/{name}")).unwrap()).unwrap();
    let (photo_a, photo_b) = (
        photo("two_people.jpg"),
        photo("knn_examples/test/kit_with_rose.jpg"),
    );
    let (input_a, input_b) = (
        NetworkInput::from_image(&photo_a, 0),
        NetworkInput::from_image(&photo_b, 0),
    );
    let mut expected = Vec::new();
    for (input, photo) in [(&input_a, &photo_a), (&input_b, &photo_b)] {
        let mut engine = engine(0.8).unwrap();
        engine.set_gallery(Some(gallery.clone())).unwrap();
        expected.push(distances(engine.process(input, photo).unwrap()));
    }
    assert_eq!(expected.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2]);

    for (batch, shared_runs) in [(8, 1), (3, 0)] {
        let streams = [engine(0.8).unwrap(), engine(0.8).unwrap()];
        let [mut a, mut b] = streams.map(|mut engine| {
            let mut tuning = engine.tuning();
            tuning.recognition_batch = batch;
            engine.tune(&tuning);
            engine.set_gallery(Some(gallery.clone())).unwrap();
            engine
        });
        let stats_before = a.recognizer().batch().stats();
        let scheduler = Arc::new(Scheduler::default());
        let (client_a, client_b) = (scheduler.client(), scheduler.client());
        let (faces_a, faces_b) = std::thread::scope(|scope| {
            let turn_a = client_a.turn(false);
            let stream_b = scope.spawn(|| {
                let turn = client_b.turn(false);
                distances(b.process_turn(turn, &input_b, &photo_b).unwrap())
            });
            let asked = std::time::Instant::now();
            while !turn_a.others_waiting() {
                assert!(
                    asked.elapsed().as_secs() < 30,
                    "stream B never asked for a turn"
                );
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            let faces_a = distances(a.process_turn(turn_a, &input_a, &photo_a).unwrap());
            (faces_a, stream_b.join().unwrap())
        });
        for (got, want) in [(&faces_a, &expected[0]), (&faces_b, &expected[1])] {
            assert_eq!(got.len(), want.len(), "recognition-batch {batch}");
            for (g, w) in got.iter().zip(want) {
                assert!(
                    (g - w).abs() < 1e-4,
                    "recognition-batch {batch}: {got:?} against a lone engine's {want:?}"
                );
            }
        }
        let stats = a.recognizer().batch().stats();
        assert_eq!(stats.deferred_chips - stats_before.deferred_chips, 2);
        assert_eq!(stats.shared_runs - stats_before.shared_runs, shared_runs);
    }
}
