//! Stills at any size: the repository's photos upscaled 4x and 8x (made here, in memory) must
//! give the faces, boxes and names of the native photo. The 8x copies reach 7760x17632
//! (`biden.jpg`, 137 MP), beyond `load_rgb`'s 64 MP cap, so they are analysed in memory: the cap
//! is about decoding untrusted files, not about what `analyze` can handle.

use std::sync::Arc;
use std::time::Instant;

use facerec_core::engine::{AnalyzedFace, Engine, EngineConfig};
use facerec_core::image::{RgbImage, imageops};
use facerec_core::stills::StillScales;
use facerec_core::stills::load_rgb;
use facerec_core::testsupport::{knn_gallery, knn_train_photos, require, require_runtime};

const TD: &str = "testdata/face_recognition";

/// How far an upscaled box may be from the native box times the factor, as a share of the box
/// width, on each of x, y, w and h: 3%, except where YuNet itself boxes the face differently.
///
/// YuNet's box depends on the size and sharpness at which it sees a face (measured on these
/// photos: the same face boxed at 2x its native size, from the upscale, is 2–8% off; a face of
/// 420+ px is boxed 10–30% shorter). The pyramid takes a face from the finest level on which it
/// is at most `stills::MAX_FACE` (448) px wide, which keeps every native-resolution reference box
/// to the pixel (`real_data.rs`, `the_group_photo_keeps_its_seven_small_faces`). On an upscaled
/// copy that finest level is the native-equivalent one unless the native face is under 224 px:
/// then a level that shows it 2x or 4x larger, blurred, is finer and still in range. The
/// exceptions below are those faces, with the error measured when this test was written.
fn box_tolerance(photo: &str, factor: u32) -> f32 {
    match (photo, factor) {
        // 113 px native: at 4x it is 424 px at the native level, boxed 9.5% off.
        ("john1.jpeg", _) => 0.10,
        // 156 px: seen at 300 px, 4.7% (4x) and 4.9% (8x) off.
        ("john2.jpeg", _) => 0.05,
        // 147 and 150 px: Biden seen at 310 px, 5.2% (4x) and 5.0% (8x) off.
        ("two_people.jpg", _) => 0.055,
        _ => 0.03,
    }
}

fn engine() -> Option<Engine> {
    if !require_runtime() || require("models/yunet_s_dynamic.onnx").is_none() {
        return None;
    }
    Some(Engine::new(EngineConfig::default()).expect("models load"))
}

fn names(faces: &[AnalyzedFace]) -> Vec<String> {
    let mut faces: Vec<&AnalyzedFace> = faces.iter().collect();
    faces.sort_by(|a, b| a.detection.bbox.x.total_cmp(&b.detection.bbox.x));
    faces
        .iter()
        .map(|f| f.identity.as_ref().unwrap().label().to_string())
        .collect()
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn upscaled_photos_give_the_native_faces_boxes_and_names() {
    let Some(mut engine) = engine() else {
        return;
    };
    let gallery = Arc::new(knn_gallery(&mut engine));
    engine.set_gallery(Some(gallery)).unwrap();
    let mut photos: Vec<std::path::PathBuf> = ["obama.jpg", "two_people.jpg"]
        .iter()
        .map(|p| require(&format!("{TD}/{p}")).unwrap())
        .collect();
    photos.extend(knn_train_photos().unwrap().into_iter().map(|(_, p)| p));
    // knn's obama/obama.jpg and biden/biden.jpg are obama.jpg and biden.jpg: once is enough.
    let mut seen = Vec::new();
    photos.retain(|p| {
        let bytes = std::fs::read(p).unwrap();
        let new = !seen.contains(&bytes);
        seen.push(bytes);
        new
    });
    // `STILLS_BEFORE=1` also runs the old single native pass on each copy of at most 64 MP
    // (load_rgb's cap, so what a user could have given it): the figures of the report.
    let before = std::env::var_os("STILLS_BEFORE").is_some();
    for photo in &photos {
        let image = load_rgb(photo).unwrap();
        let started = Instant::now();
        let native = engine.analyze(&image).unwrap();
        let native_time = started.elapsed();
        let native_names = names(&native);
        assert!(!native.is_empty(), "{}", photo.display());
        assert!(!native_names.contains(&"unknown".to_string()));
        for factor in [4u32, 8] {
            // CatmullRom: a sharp bicubic, so the copy holds the original's detail and nothing
            // the original did not have.
            let big: RgbImage = imageops::resize(
                &image,
                image.width() * factor,
                image.height() * factor,
                imageops::FilterType::CatmullRom,
            );
            let started = Instant::now();
            let faces = engine.analyze(&big).unwrap();
            let took = started.elapsed();
            let file = photo.file_name().unwrap().to_str().unwrap().to_string();
            let folder = photo
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap();
            let label = format!(
                "{folder}/{file} x{factor} ({}x{})",
                big.width(),
                big.height()
            );
            let old =
                (before && big.width() as u64 * big.height() as u64 <= 64_000_000).then(|| {
                    engine
                        .analyze_at(&big, StillScales::Single(0))
                        .unwrap()
                        .len()
                });
            eprintln!(
                "{label}: {} face(s) in {:.2} s (native {:.2} s){}",
                faces.len(),
                took.as_secs_f32(),
                native_time.as_secs_f32(),
                old.map(|n| format!("; single native pass: {n} face(s)"))
                    .unwrap_or_default()
            );
            assert_eq!(faces.len(), native.len(), "{label}: face count");
            assert_eq!(names(&faces), native_names, "{label}: names");
            let f = factor as f32;
            for n in &native {
                // Pixel centres: x' = (x + 0.5) f - 0.5 under the upscale.
                let want = [
                    (n.detection.bbox.x + 0.5) * f - 0.5,
                    (n.detection.bbox.y + 0.5) * f - 0.5,
                    n.detection.bbox.w * f,
                    n.detection.bbox.h * f,
                ];
                let tolerance = box_tolerance(&file, factor) * want[2];
                let got = faces
                    .iter()
                    .map(|g| {
                        let b = g.detection.bbox;
                        [b.x, b.y, b.w, b.h]
                    })
                    .min_by(|a, b| {
                        let d = |v: &[f32; 4]| (v[0] - want[0]).abs() + (v[1] - want[1]).abs();
                        d(a).total_cmp(&d(b))
                    })
                    .unwrap();
                let worst = (0..4)
                    .map(|i| (got[i] - want[i]).abs())
                    .fold(0.0f32, f32::max);
                eprintln!(
                    "  box {got:.1?} against {want:.1?}: off by {:.2}% of the width",
                    100.0 * worst / want[2]
                );
                assert!(
                    worst <= tolerance,
                    "{label}: box {got:?} is more than {tolerance:.1} px from {want:?}"
                );
            }
        }
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn the_group_photo_keeps_its_seven_small_faces() {
    let Some(mut engine) = engine() else {
        return;
    };
    // Counts at score 0.85 from shared/testdata/README.md (YuNet at native resolution).
    for (photo, count) in [
        ("testdata/dlib/2007_007763.jpg", 7),
        ("testdata/dlib/2008_002079.jpg", 6),
        ("testdata/dlib/bald_guys.jpg", 24),
        ("testdata/dlib/dogs.jpg", 0),
        (&format!("{TD}/knn_examples/test/obama_and_biden.jpg"), 3),
    ] {
        let image = load_rgb(&require(photo).unwrap()).unwrap();
        let faces = engine.analyze(&image).unwrap();
        assert_eq!(faces.len(), count, "{photo}");
        // The same faces, with the same boxes, as one pass at native resolution.
        let native = engine.analyze_at(&image, StillScales::Single(0)).unwrap();
        let boxes = |f: &[AnalyzedFace]| {
            let mut b: Vec<[f32; 4]> = f
                .iter()
                .map(|f| {
                    let b = f.detection.bbox;
                    [b.x, b.y, b.w, b.h]
                })
                .collect();
            b.sort_by(|a, b| a[0].total_cmp(&b[0]));
            b
        };
        assert_eq!(boxes(&faces), boxes(&native), "{photo}");
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_face_cut_by_a_tile_edge_keeps_its_whole_box() {
    let Some(mut engine) = engine() else {
        return;
    };
    let portrait = load_rgb(&require(&format!("{TD}/obama.jpg")).unwrap()).unwrap();
    let native = engine.analyze(&portrait).unwrap();
    assert_eq!(native.len(), 1);
    let face = native[0].detection.bbox;
    // A 4200x1400 photo (5.9 MP) is detected in tiles of 1536 px; the first ends at x = 1536,
    // the second starts at 1024. Paste the portrait so that the first tile holds 20–85% of the
    // face's width: YuNet boxes such a cut face too (obama_partial_face.jpg), and the photo must
    // still give one face, boxed as one native pass over the whole photo boxes it.
    for visible in [0.2f32, 0.35, 0.5, 0.7, 0.85] {
        let x = (1536.0 - face.x - visible * face.w).round();
        let mut photo = RgbImage::from_pixel(4200, 1400, facerec_core::image::Rgb([90, 90, 90]));
        imageops::replace(&mut photo, &portrait, x as i64, 100);
        let faces = engine.analyze(&photo).unwrap();
        let boxes: Vec<_> = faces.iter().map(|f| f.detection.bbox).collect();
        assert_eq!(faces.len(), 1, "{visible}: {boxes:?}");
        let whole = engine.analyze_at(&photo, StillScales::Single(0)).unwrap();
        assert_eq!(whole.len(), 1);
        let (b, w) = (boxes[0], whole[0].detection.bbox);
        let off = [b.x - w.x, b.y - w.y, b.w - w.w, b.h - w.h];
        assert!(
            off.iter().all(|d| d.abs() <= 1.0),
            "{visible} of the face in the first tile: box {b:?} is off by {off:?}"
        );
    }
}
