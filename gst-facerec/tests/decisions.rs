//! Names decided over a whole track (issue 10): the sample clip at 360p, 720p and 1080p in
//! I420, NV12 and RGBA against `expected/hamilton_reference.json`, label flicker per track, the
//! margin rule on a gallery holding one person under two names, and the quality floor on a
//! blurred face.

mod common;

use common::*;

/// The element's defaults, as a user runs them (issue 28): the default detection threshold, 0.8,
/// was chosen by the `thresholds` bench group's sweep (docs/ACCURACY.md) and is also the
/// reference pipeline's (`expected/hamilton_reference.json`: YuNet score >= 0.8). At the old
/// 0.85 the pianist (Lacamoire, 46 px at 360p) was detected on 5 of his frames and named on 8.
const DEFAULTS: &str = "";

/// The clip at one size in the three formats: prints one table row per run, then checks the
/// issue's bounds on every run.
fn clip_matrix(width: u32, height: u32) {
    let mut reports = Vec::new();
    for format in ["I420", "NV12", "RGBA"] {
        let started = std::time::Instant::now();
        let run = scaled_clip_run(width, height, format, DEFAULTS);
        let report = ClipReport::of(&format!("{height}p {format}"), &run, width);
        eprintln!("{} ({:.0?})", report.row(), started.elapsed());
        reports.push(report);
    }
    eprintln!("{}", ClipReport::HEADER);
    for report in &reports {
        eprintln!("{}", report.row());
    }
    for r in &reports {
        assert!(
            r.swaps.is_empty(),
            "{}: named faces with no same-name reference face (IoU >= 0.3) within {SWAP_WINDOW} frames: {:?}",
            r.label,
            r.swaps
        );
        assert!(
            r.other_names.is_empty(),
            "{}: other names: {:?}",
            r.label,
            r.other_names
        );
        assert!(
            r.miranda_frames >= 135,
            "{}: Miranda named in {} frames",
            r.label,
            r.miranda_frames
        );
        assert!(
            r.lacamoire_reference_hits >= 15,
            "{}: Lacamoire named in {} of the reference's {} frames",
            r.label,
            r.lacamoire_reference_hits,
            r.lacamoire_reference_total
        );
        assert!(
            r.lacamoire_farthest <= 10,
            "{}: Lacamoire named {} frames away from any reference frame naming him",
            r.label,
            r.lacamoire_farthest
        );
        assert!(
            r.max_changes <= 1,
            "{}: {} tracks change their decided name more than once; track {} went {}",
            r.label,
            r.flickering_tracks,
            r.worst_track.0,
            r.worst_track.1.join(" > ")
        );
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn clip_at_360p_in_i420_nv12_rgba() {
    if !assets_ready() {
        return;
    }
    clip_matrix(640, 360);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn clip_at_720p_in_i420_nv12_rgba() {
    if !assets_ready() {
        return;
    }
    clip_matrix(1280, 720);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn clip_at_1080p_in_i420_nv12_rgba() {
    if !assets_ready() {
        return;
    }
    clip_matrix(1920, 1080);
}

/// A still photo fed as `frames` video frames (`imagefreeze`) in I420 through the element.
fn still_as_video(path: &std::path::Path, frames: u32, props: &str) -> Run {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! imagefreeze num-buffers={frames} ! videoconvert ! video/x-raw,format=I420 ! facerec name=f {props} ! appsink name=sink",
        path.display()
    );
    let run = run_pipeline(&description, false);
    assert_eq!(run.error, None, "{}", path.display());
    assert_eq!(run.frames.len(), frames as usize, "{}", path.display());
    run
}

/// The names a run gave its largest face, frame by frame, with quality and confidence.
fn largest_face_per_frame(run: &Run) -> Vec<SeenFace> {
    run.frames
        .iter()
        .map(|faces| {
            faces
                .iter()
                .max_by_key(|f| f.rect.2)
                .expect("a face on every frame")
                .clone()
        })
        .collect()
}

/// Distances of `photo`'s largest face to each person of `gallery`, nearest first.
fn distances(gallery: &std::path::Path, photo: &str) -> Vec<(String, f32)> {
    use facerec_core::engine::{Engine, EngineConfig};
    use facerec_core::stills::load_rgb;
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    let gallery = engine.load_gallery(gallery).unwrap();
    let faces = engine.analyze(&load_rgb(&asset(photo)).unwrap()).unwrap();
    let face = faces
        .iter()
        .max_by(|a, b| a.detection.bbox.area().total_cmp(&b.detection.bbox.area()))
        .unwrap();
    let embedding = face.embedding.as_ref().unwrap();
    let mut out: Vec<(String, f32)> = gallery
        .people
        .iter()
        .map(|p| {
            let d = p
                .enrolments
                .iter()
                .map(|e| {
                    e.embedding
                        .iter()
                        .zip(embedding)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                        .sqrt()
                })
                .fold(f32::INFINITY, f32::min);
            (p.name.clone(), d)
        })
        .collect();
    out.sort_by(|a, b| a.1.total_cmp(&b.1));
    out
}

/// One person enrolled under two names, "obama" (`obama.jpg`) and "barack" (`obama2.jpg`), in
/// `dir`.
fn one_person_two_names(dir: &std::path::Path) -> std::path::PathBuf {
    build_gallery(
        &[
            ("obama", &format!("{TD}/obama.jpg")),
            ("barack", &format!("{TD}/obama2.jpg")),
        ],
        &dir.join("two-names.data"),
    )
}

/// One person enrolled under two names ("obama": `obama.jpg`, "barack": `obama2.jpg`), and
/// other photos of him as the probe: never named one way then the other, and either unknown or
/// named with low confidence.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn one_person_under_two_names_is_not_named_with_confidence() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("margin");
    let dir = dir.path();
    let gallery = one_person_two_names(dir);
    // Both probes are within the match threshold of both names, 0.056 and 0.086 apart as stills
    // (0.039 and 0.117 as the element's frames): under the default margin, so neither name may
    // be shown with confidence.
    for probe in ["knn_examples/test/obama1.jpg", "test_images/obama3.jpg"] {
        let d = distances(&gallery, &format!("{TD}/{probe}"));
        eprintln!(
            "{probe}: {} {:.3}, {} {:.3}, gap {:.3}",
            d[0].0,
            d[0].1,
            d[1].0,
            d[1].1,
            d[1].1 - d[0].1
        );
        let run = still_as_video(
            &asset(&format!("{TD}/{probe}")),
            10,
            &gallery_prop(&gallery),
        );
        let faces = largest_face_per_frame(&run);
        let labels: Vec<String> = faces
            .iter()
            .map(|f| {
                format!(
                    "{}({:.2}, d={:.3})",
                    f.name,
                    f.confidence.unwrap_or(f64::NAN),
                    f.distance
                )
            })
            .collect();
        eprintln!("{probe}: {}", labels.join(" "));
        let named: std::collections::BTreeSet<&str> = faces
            .iter()
            .map(|f| f.name.as_str())
            .filter(|n| *n != "unknown")
            .collect();
        assert!(
            named.len() <= 1,
            "{probe}: named both ways: {}",
            labels.join(" ")
        );
        assert!(
            d[1].1 <= facerec_core::gallery::DEFAULT_THRESHOLD
                && d[1].1 - d[0].1 < facerec_core::tunables::Tunables::DEFAULT.match_margin,
            "{probe}: the two names are {:.3} and {:.3} away, not a tie under the default margin",
            d[0].1,
            d[1].1
        );
        for f in &faces {
            assert!(
                f.name == "unknown" || f.confidence.is_some_and(|c| c <= 0.5),
                "{probe}: named {} with confidence {:?}: {}",
                f.name,
                f.confidence,
                labels.join(" ")
            );
        }
    }
    std::fs::remove_dir_all(dir).ok();
}

/// A tie (issue 28): "obama" (`obama.jpg`) and "barack" (`obama2.jpg`) enrolled, and a video
/// whose frames alternate between the two enrolment photos, cropped so that the face stays in
/// place (one track). Each attempt matches one name almost exactly and the other 0.3-0.4 away,
/// far past the margin, so the margin rule never applies: only the vote can see that the track
/// is torn between two people. It must show unknown, never "barack" after "obama" (the narrow
/// leader), as Frigate abstains.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_track_torn_between_two_people_is_unknown() {
    use facerec_core::engine::{Engine, EngineConfig};
    use facerec_core::image::imageops;
    use facerec_core::stills::load_rgb;
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("tie");
    let dir = dir.path();
    let gallery = one_person_two_names(dir);
    let d = distances(&gallery, &format!("{TD}/obama.jpg"));
    eprintln!("obama.jpg: {d:?}");
    assert!(
        d[1].1 - d[0].1 > facerec_core::tunables::Tunables::DEFAULT.match_margin
            && d[1].1 < facerec_core::gallery::DEFAULT_THRESHOLD,
        "both names match, with a gap past the margin: {d:?}"
    );
    // Each photo cropped to a square 2.5 face widths wide around its face, scaled to 400 px.
    let mut engine = Engine::new(EngineConfig::default()).unwrap();
    for (i, photo) in ["obama.jpg", "obama2.jpg"].iter().enumerate() {
        let image = load_rgb(&asset(&format!("{TD}/{photo}"))).unwrap();
        let faces = engine.analyze(&image).unwrap();
        let b = faces[0].detection.bbox;
        let side = (b.w * 2.5)
            .min(image.width() as f32)
            .min(image.height() as f32);
        let x = (b.x + b.w / 2.0 - side / 2.0).clamp(0.0, image.width() as f32 - side);
        let y = (b.y + b.h / 2.0 - side / 2.0).clamp(0.0, image.height() as f32 - side);
        let crop = imageops::crop_imm(&image, x as u32, y as u32, side as u32, side as u32);
        imageops::resize(&crop.to_image(), 400, 400, imageops::FilterType::Triangle)
            .save(dir.join(format!("frame{i}.png")))
            .unwrap();
    }
    let description = format!(
        "multifilesrc location=\"{}/frame%d.png\" start-index=0 stop-index=1 loop=true num-buffers=30 caps=image/png,framerate=10/1 ! pngdec ! videoconvert ! video/x-raw,format=I420 ! facerec name=f {} ! appsink name=sink",
        dir.display(),
        gallery_prop(&gallery)
    );
    let run = run_pipeline(&description, false);
    assert_eq!(run.error, None);
    let faces = largest_face_per_frame(&run);
    let labels: Vec<String> = faces
        .iter()
        .map(|f| format!("{}#{}(d={:.2})", f.name, f.track_id, f.distance))
        .collect();
    eprintln!("{}", labels.join(" "));
    assert_eq!(faces.len(), 30);
    assert!(
        faces.iter().all(|f| f.track_id == faces[0].track_id),
        "one track: {}",
        labels.join(" ")
    );
    let mut shown: Vec<&str> = faces.iter().map(|f| f.name.as_str()).collect();
    shown.dedup();
    assert!(
        shown == ["unknown"]
            || shown == ["obama", "unknown"]
            || shown == ["unknown", "obama", "unknown"],
        "the torn track is unknown, at most after its first attempt: {}",
        labels.join(" ")
    );
}

/// The quality floor. The gallery holds `obama1.jpg` itself. The sharp photo is named on its
/// first frame; the copy blurred by the test (Gaussian, sigma 32 px on a 366 px face) scores
/// under the floor on every frame, is never embedded (distance -1) and stays unknown. With the
/// floor off (`min-quality=0`) the same attempts are embedded (a real distance).
/// Measured: the recognizer still matches this photo blurred by sigma 16 (0.48, sharpness
/// measure 0.14) and not by sigma 24 (0.65, 0.054) or 32 (0.71, 0.034); the clip's pianist,
/// whom the reference names correctly at 0.58, measures 0.051-0.073. A floor that keeps him
/// cannot refuse a blur the recognizer still matches, so the floor saves the embedding of faces
/// too blurred to match and keeps their (meaningless) distances out of the vote.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn blurred_face_is_not_used_to_name_a_track() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("blur");
    let dir = dir.path();
    let photo = format!("{TD}/knn_examples/test/obama1.jpg");
    let gallery = build_gallery(&[("obama", &photo)], &dir.join("obama.data"));
    let props = gallery_prop(&gallery);
    let image = facerec_core::stills::load_rgb(&asset(&photo)).unwrap();
    let blurred = dir.join("blurred.png");
    facerec_core::image::imageops::blur(&image, 32.0)
        .save(&blurred)
        .unwrap();
    let describe = |faces: &[SeenFace]| {
        faces
            .iter()
            .map(|f| {
                format!(
                    "{} q={:.3} d={:.3}",
                    f.name,
                    f.quality.unwrap_or(f64::NAN),
                    f.distance
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sharp = largest_face_per_frame(&still_as_video(&asset(&photo), 5, &props));
    let floored = largest_face_per_frame(&still_as_video(&blurred, 5, &props));
    let unfloored = largest_face_per_frame(&still_as_video(
        &blurred,
        5,
        &format!("{props} min-quality=0"),
    ));
    eprintln!("sharp: {}", describe(&sharp));
    eprintln!("blurred: {}", describe(&floored));
    eprintln!("blurred, min-quality=0: {}", describe(&unfloored));
    let floor = facerec_core::tunables::Tunables::DEFAULT.min_quality as f64;
    assert!(
        sharp
            .iter()
            .all(|f| f.name == "obama" && f.quality.is_some_and(|q| q >= floor)),
        "the sharp photo is named on every frame: {}",
        describe(&sharp)
    );
    assert!(
        floored.iter().all(|f| f.name == "unknown"
            && f.distance == -1.0
            && f.quality.is_some_and(|q| (0.0..floor).contains(&q))),
        "the blurred copy scores under the floor ({floor}) and is never used: {}",
        describe(&floored)
    );
    assert!(
        unfloored.iter().all(|f| f.distance >= 0.0),
        "without the floor the blurred copy is embedded: {}",
        describe(&unfloored)
    );
    std::fs::remove_dir_all(dir).ok();
}
