//! The `facerec` element in real pipelines on the real photos and clip of `../shared/testdata`.

mod common;

use common::*;
use facerec_core::gallery::Gallery;
use gst::prelude::*;
use gst_video::prelude::*;

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn knn_gallery_names_people_left_to_right() {
    if !assets_ready() {
        return;
    }
    let g = gallery_prop(&knn_gallery());
    let names = |image: &str, props: &str| {
        let run = run_pipeline(
            &decode_pipeline(&format!("{TD}/{image}"), "RGBx", &format!("{g} {props}")),
            false,
        );
        assert_eq!(run.error, None);
        assert_eq!(run.frames.len(), 1);
        run.names_left_to_right()
    };
    assert_eq!(names("two_people.jpg", ""), ["obama", "biden"]);
    assert_eq!(
        names("knn_examples/test/kit_with_rose.jpg", ""),
        ["rose_leslie", "kit_harington"]
    );
    // At 2000x1428 the girl's face is too small for YuNet after scaling to 640: detect at 1280.
    assert_eq!(
        names(
            "knn_examples/test/obama_and_biden.jpg",
            "network-width=1280"
        ),
        ["biden", "obama", "unknown"]
    );
}

/// A format 1 gallery (`core/tests/fixtures/gallery-v1.data`, the knn people written by the code
/// from before format 3) loads in the element and names the same people as today's knn gallery.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_version_1_gallery_names_people() {
    if !assets_ready() {
        return;
    }
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("gst-facerec/core/tests/fixtures/gallery-v1.data");
    let props = gallery_prop(&fixture);
    let names = |image: &str| {
        let run = run_pipeline(
            &decode_pipeline(&format!("{TD}/{image}"), "RGBx", &props),
            false,
        );
        assert_eq!(run.error, None);
        assert_eq!(run.frames.len(), 1);
        run.names_left_to_right()
    };
    assert_eq!(names("two_people.jpg"), ["obama", "biden"]);
    assert_eq!(
        names("knn_examples/test/kit_with_rose.jpg"),
        ["rose_leslie", "kit_harington"]
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn face_counts() {
    if !assets_ready() {
        return;
    }
    let count = |image: &str| {
        let run = run_pipeline(&decode_pipeline(image, "I420", "network-width=0"), false);
        assert_eq!(run.error, None);
        run.frames[0].len()
    };
    assert_eq!(count("testdata/dlib/bald_guys.jpg"), 24);
    assert_eq!(count("testdata/dlib/dogs.jpg"), 0);
}

/// How far (in frames) a named face may be from a reference face of the same name that it
/// overlaps: the bound (5). The reference names per frame; the element decides a name
/// per track and holds it until "unknown" evidence outweighs it (`facerec_core::identity`), so
/// a name outlives the reference's by a few frames where a face turns away: Miranda's opening
/// track is named up to frame 19, the reference names him up to frame 14 (measured: 5, the
/// largest offset on this clip). A swapped identity has no same-name box anywhere near.
const NAME_CARRY_FRAMES: usize = 5;

/// Frames naming Alex Lacamoire at the element's default detection threshold (0.8 since issue
/// 28, the reference's own): the reference names him in 21 frames, all at 0.57-0.60, right
/// under the 0.6 threshold. A name is decided per track and held until "unknown" evidence
/// outweighs it, so it outlives the reference's frames where his face turns away: measured 31
/// (19 of the reference's 21; at the old 0.85, 7). Every named frame must still be near a
/// reference frame naming him there (below). +-3 covers a frame's decoder difference either
/// way; a threshold of 0.55 or less (he is never closer than 0.57), or the old 0.85, fails.
const LACAMOIRE_FRAMES: std::ops::RangeInclusive<usize> = 28..=34;

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn clip_names_the_right_faces_where_the_reference_does() {
    if !assets_ready() {
        return;
    }
    let run = clip_run("RGBA", "");
    let miranda = run.frames_naming(MIRANDA);
    let lacamoire = run.frames_naming(LACAMOIRE);
    eprintln!(
        "Miranda named in {miranda} of 275 frames (reference pipeline: 135), Lacamoire in {lacamoire} (reference: 21)"
    );
    // The floor: at least the reference's 135. Measured 144: tracking carries his
    // name over the reference's detection gaps. No upper bound is needed: every named frame
    // must be within NAME_CARRY_FRAMES of a reference frame naming him there (below).
    assert!(
        miranda >= 135,
        "Miranda named in {miranda} frames, the reference names him in 135"
    );
    assert!(
        LACAMOIRE_FRAMES.contains(&lacamoire),
        "Lacamoire named in {lacamoire} frames, the reference names him in 21 (allowed {LACAMOIRE_FRAMES:?})"
    );
    // Every named face must overlap a face the reference gives the SAME name, at most
    // NAME_CARRY_FRAMES frames away: a swapped identity, or a name on the wrong face, fails.
    let reference = reference_faces();
    assert_eq!(reference.len(), 275);
    let mut worst = 0;
    for (i, faces) in run.frames.iter().enumerate() {
        for face in faces.iter().filter(|f| f.name != "unknown") {
            let (x, y, w, h) = face.rect;
            let seen = (x as f64, y as f64, w as f64, h as f64);
            let offset = (0..=10).find(|&d| {
                [i.checked_sub(d), Some(i + d).filter(|&j| j < 275)]
                    .into_iter()
                    .flatten()
                    .any(|j| {
                        reference[j]
                            .iter()
                            .any(|(name, b)| *name == face.name && iou(seen, *b) >= 0.3)
                    })
            });
            let Some(offset) = offset.filter(|&d| d <= NAME_CARRY_FRAMES) else {
                panic!(
                    "frame {i} names {} at {:?}, but no reference face of that name overlaps it (IoU >= 0.3) within {NAME_CARRY_FRAMES} frames (nearest: {offset:?}); reference faces there: {:?}",
                    face.name, face.rect, reference[i]
                );
            };
            worst = worst.max(offset);
        }
    }
    eprintln!("the farthest same-name reference face was {worst} frames away");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn clip_gives_the_same_names_in_every_pixel_format() {
    if !assets_ready() {
        return;
    }
    // The decoder outputs I420; videoconvert and the element's own YUV conversion round
    // differently by a level or so, which can tip a face sitting right at the threshold.
    let reference = clip_names("RGBA");
    let count = |frames: &[Vec<String>], name: &str| {
        frames
            .iter()
            .filter(|f| f.iter().any(|n| n == name))
            .count()
    };
    for format in ["BGRA", "RGBx", "BGRx", "RGB", "BGR", "I420", "NV12"] {
        let frames = clip_names(format);
        let differing: Vec<usize> = (0..275).filter(|&i| frames[i] != reference[i]).collect();
        eprintln!(
            "{format}: Miranda in {} frames (RGBA {}), {} frames differ from RGBA: {differing:?}",
            count(&frames, MIRANDA),
            count(&reference, MIRANDA),
            differing.len()
        );
        if format.starts_with('I') || format.starts_with('N') {
            // Since names are decided per track (issue 10), a level of rounding moves the frame
            // on which a near-threshold name is decided or dropped: measured, NV12 differs from
            // RGBA on 11 frames, 8 of them Lacamoire at 0.57-0.62. Which frames is not the
            // point; `tests/decisions.rs` checks I420 and NV12 against the reference itself
            // (no swap, Miranda and Lacamoire counts, flicker) at three sizes.
            assert!(
                count(&frames, MIRANDA).abs_diff(count(&reference, MIRANDA)) <= 4,
                "{format}"
            );
        } else {
            // Packed RGB formats hold the same pixels: the names must be identical.
            assert!(
                differing.is_empty(),
                "{format}: frames {differing:?} differ from RGBA"
            );
        }
    }
}

/// Two elements in one pipeline (issue 27) share one ONNX Runtime session per model, loaded
/// once, and each names exactly what a lone element names on the clip.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn two_elements_in_one_pipeline_load_each_model_once_and_name_the_same_people() {
    if !assets_ready() {
        return;
    }
    init();
    // threads=3 is this test's own configuration, so that loads by tests running beside it in
    // this process are not counted.
    let ours =
        |_: &str, _: &std::path::Path, c: &facerec_core::runtime::SessionConfig| c.threads == 3;
    let loads_before = facerec_core::runtime::session_loads_where(ours);
    let props = format!("{} threads=3", gallery_prop(&hamilton_gallery()));
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! tee name=t \
         t. ! queue ! facerec {props} ! appsink name=a sync=false \
         t. ! queue ! facerec {props} ! appsink name=b sync=false",
        asset(CLIP).display()
    );
    let pipeline = gst::parse::launch(&description)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let branches: Vec<std::sync::Arc<std::sync::Mutex<Vec<Vec<SeenFace>>>>> = ["a", "b"]
        .iter()
        .map(|name| {
            let frames = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
            let collected = frames.clone();
            pipeline
                .by_name(name)
                .unwrap()
                .downcast::<gst_app::AppSink>()
                .unwrap()
                .set_callbacks(
                    gst_app::AppSinkCallbacks::builder()
                        .new_sample(move |sink| {
                            let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                            collected
                                .lock()
                                .unwrap()
                                .push(faces_of(sample.buffer().unwrap()));
                            Ok(gst::FlowSuccess::Ok)
                        })
                        .build(),
                );
            frames
        })
        .collect();
    pipeline.set_state(gst::State::Playing).unwrap();
    let bus = pipeline.bus().unwrap();
    let ended = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(300),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    assert!(
        matches!(
            ended.as_ref().map(|m| m.view()),
            Some(gst::MessageView::Eos(_))
        ),
        "{ended:?}"
    );
    // Counted while both elements still hold their sessions.
    let loads = facerec_core::runtime::session_loads_where(ours) - loads_before;
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(
        loads, 2,
        "one detector and one recognizer session for two elements"
    );

    let lone = names_per_frame(&clip_run("I420", "threads=3"));
    for (branch, frames) in ["a", "b"].iter().zip(&branches) {
        let run = Run {
            frames: std::mem::take(&mut *frames.lock().unwrap()),
            ..Run::default()
        };
        assert_eq!(run.frames.len(), 275, "{branch}: every frame comes out");
        let names = names_per_frame(&run);
        let differing: Vec<usize> = (0..275).filter(|&i| names[i] != lone[i]).collect();
        assert!(
            differing.is_empty(),
            "{branch}: frames {differing:?} are named differently from a lone element"
        );
        assert!(
            names
                .iter()
                .filter(|f| f.iter().any(|n| n == MIRANDA))
                .count()
                >= 135,
            "{branch}"
        );
    }
}

/// One face of a `facerec` bus message.
#[derive(Debug, Clone, PartialEq)]
struct MessageFace {
    name: String,
    distance: f64,
    recognized: bool,
    rect: (i64, i64, i64, i64),
}

fn message_faces(message: &gst::Structure) -> Vec<MessageFace> {
    let mut faces: Vec<MessageFace> = message
        .get::<gst::Array>("faces")
        .unwrap()
        .iter()
        .map(|v| {
            let s = v.get::<gst::Structure>().unwrap();
            let int = |k: &str| s.get::<i32>(k).unwrap() as i64;
            MessageFace {
                name: s.get::<String>("name").unwrap(),
                distance: s.get::<f64>("distance").unwrap(),
                recognized: s.get::<bool>("recognized").unwrap(),
                rect: (int("x"), int("y"), int("width"), int("height")),
            }
        })
        .collect();
    faces.sort_by_key(|f| f.rect.0);
    faces
}

/// Biden, Obama and an unknown girl (left to right); the girl is 147 px wide, the men 174
/// and 182 px. At 2000x1428 the girl is too small for YuNet at 640: detect at 1280.
const STAGE: &str = "knn_examples/test/obama_and_biden.jpg";

/// The stage photo decoded to `format`, through facerec, and read back through GStreamer's own
/// `videoconvert` into RGB: the check does not trust the element's (or the core's) converter.
fn stage_as_rgb(
    format: &str,
    props: &str,
) -> (Run, gst_video::VideoFrame<gst_video::video_frame::Readable>) {
    let description = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format={format} ! facerec name=f {} network-width=1280 {props} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
        asset(&format!("{TD}/{STAGE}")).display(),
        gallery_prop(&knn_gallery()),
    );
    let mut run = run_pipeline(&description, true);
    assert_eq!(run.error, None, "{format}");
    assert_eq!(run.samples.len(), 1, "{format}");
    let sample = run.samples.remove(0);
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    assert_eq!(info.format(), gst_video::VideoFormat::Rgb);
    let frame =
        gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info).unwrap();
    (run, frame)
}

fn pixel(
    frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>,
    x: i64,
    y: i64,
) -> [u8; 3] {
    let stride = frame.plane_stride()[0] as usize;
    let data = frame.plane_data(0).unwrap();
    let at = y as usize * stride + x as usize * 3;
    [data[at], data[at + 1], data[at + 2]]
}

/// Line thickness the overlay uses for a 1428-line frame (height / 240).
const STAGE_LINE: i64 = 5;

/// Whether a pixel read back through `videoconvert` is the box colour of a known (green) or
/// unknown (red) face: the bounds, which any channel swap or chroma shift breaks.
fn is_box_colour(known: bool, [r, g, b]: [u8; 3]) -> bool {
    if known {
        g > 150 && r < 90 && b < 90
    } else {
        r > 150 && g < 90 && b < 90
    }
}

/// The pixels of the label bar under a face's box (the bar is as wide as the box at least).
fn label_pixels(
    frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>,
    (x, y, w, h): (i64, i64, i64, i64),
) -> Vec<[u8; 3]> {
    let top = y + h + STAGE_LINE;
    let rows = frame.height() as i64 / 27 + 16;
    (top..(top + rows).min(frame.height() as i64))
        .flat_map(|py| (x..x + w).map(move |px| (px, py)))
        .map(|(px, py)| pixel(frame, px, py))
        .collect()
}

fn near_white(px: &[u8; 3]) -> bool {
    px.iter().all(|&c| c > 200)
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn boxes_are_drawn_into_the_pixels() {
    if !assets_ready() {
        return;
    }
    for format in ["RGBA", "BGRx", "I420", "NV12"] {
        let (run, drawn) = stage_as_rgb(format, "");
        let (_, untouched) = stage_as_rgb(format, "draw=false");
        assert_eq!(run.messages.len(), 1);
        let faces = message_faces(&run.messages[0]);
        let names: Vec<&str> = faces.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["biden", "obama", "unknown"], "{format}");
        for face in &faces {
            let (x, y, w, h) = face.rect;
            let known = face.name != "unknown";
            let t = STAGE_LINE;
            // Mid-thickness of the top and left edges, and the label bar's top padding under
            // the box (the text starts lower down).
            for (what, px, py) in [
                ("top edge", x + w / 2, y - t / 2 - 1),
                ("left edge", x - t / 2 - 1, y + h / 2),
                ("label bar", x + 2, y + h + t + 2),
            ] {
                let got = pixel(&drawn, px, py);
                assert!(
                    is_box_colour(known, got),
                    "{format}: {} {what} ({px},{py}) is {got:?}, not {}",
                    face.name,
                    if known { "green" } else { "red" }
                );
            }
            // The label: near-white glyph pixels on the box colour.
            let label = label_pixels(&drawn, face.rect);
            let white = label.iter().filter(|p| near_white(p)).count();
            let bar = label.iter().filter(|p| is_box_colour(known, **p)).count();
            assert!(
                white > 150 && bar > white,
                "{format}: {} label has {white} near-white and {bar} box-coloured pixels",
                face.name
            );
            // The bar and the glyphs are new pixels: Biden's white collar and the girl's red
            // top are there without drawing too.
            let plain = label_pixels(&untouched, face.rect);
            let new_bar = label
                .iter()
                .zip(&plain)
                .filter(|(d, p)| is_box_colour(known, **d) && !is_box_colour(known, **p))
                .count();
            let glyphs = label
                .iter()
                .zip(&plain)
                .filter(|(d, p)| near_white(d) && !near_white(p))
                .count();
            assert!(
                new_bar > 1000 && glyphs > 150,
                "{format}: {}'s label area: {new_bar} new box-coloured pixels (of {bar}), {glyphs} new near-white pixels",
                face.name
            );
            // The face inside the box is not painted over.
            for (px, py) in [
                (x + w / 2, y + h / 2),
                (x + 2, y + 2),
                (x + w - 3, y + h - 3),
            ] {
                assert_eq!(
                    pixel(&drawn, px, py),
                    pixel(&untouched, px, py),
                    "{format}: ({px},{py}) inside {}'s box",
                    face.name
                );
            }
        }
    }
}

/// Obama named "Zoë Łukasz" and "Юлия", and named with as many '?': the labels' glyphs differ.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn names_in_any_script_render_as_their_own_glyphs() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("unicode-label");
    let dir = dir.path();
    let label_of = |name: &str, file: &str| {
        let gallery = build_gallery(
            &[(name, &format!("{TD}/knn_examples/train/obama/obama.jpg"))],
            &dir.join(file),
        );
        let description = format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format=I420 ! facerec name=f {} network-width=1280 ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
            asset(&format!("{TD}/{STAGE}")).display(),
            gallery_prop(&gallery),
        );
        let mut run = run_pipeline(&description, true);
        assert_eq!(run.error, None);
        let faces = message_faces(&run.messages[0]);
        let face = faces
            .iter()
            .find(|f| f.name == name)
            .expect("Obama is named");
        let sample = run.samples.remove(0);
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let frame =
            gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info)
                .unwrap();
        (face.rect, label_pixels(&frame, face.rect))
    };
    // Word by word: a font that lacks one script turns just that word into '?' marks.
    for (name, marks) in [("Zoë Łukasz", "??? ??????"), ("Юлия", "????")] {
        let (rect_a, glyphs) = label_of(name, "name.data");
        let (rect_b, fallback) = label_of(marks, "marks.data");
        assert_eq!(rect_a, rect_b);
        let white = glyphs.iter().filter(|p| near_white(p)).count();
        let differing = glyphs
            .iter()
            .zip(&fallback)
            .filter(|(a, b)| near_white(a) != near_white(b))
            .count();
        assert!(
            white > 150 && differing * 3 > white,
            "{name}: {differing} of the label's {white} near-white pixels differ from a label of '?'"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `redact=unknown` with a gallery of Obama alone: Biden's face is pixelated, Obama's pixels
/// are untouched, in packed and 4:2:0 formats (read back through `videoconvert`).
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn redact_unknown_pixelates_biden_and_leaves_obama() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("redact");
    let dir = dir.path();
    let gallery = build_gallery(
        &[("obama", &format!("{TD}/knn_examples/train/obama/obama.jpg"))],
        &dir.join("obama.data"),
    );
    let frame_of = |format: &str, redact: &str| {
        let description = format!(
            "filesrc location=\"{}\" ! decodebin ! videoconvert ! video/x-raw,format={format} ! facerec name=f {} draw=false redact={redact} ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
            asset(&format!("{TD}/two_people.jpg")).display(),
            gallery_prop(&gallery),
        );
        let mut run = run_pipeline(&description, true);
        assert_eq!(run.error, None, "{format} redact={redact}");
        let mut faces = message_faces(&run.messages[0]);
        faces.sort_by_key(|f| f.rect.0);
        let names: Vec<String> = faces.iter().map(|f| f.name.clone()).collect();
        assert_eq!(
            names,
            ["obama", "unknown"],
            "{format}: Obama left, Biden right"
        );
        let sample = run.samples.remove(0);
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let frame =
            gst_video::VideoFrame::from_buffer_readable(sample.buffer_owned().unwrap(), &info)
                .unwrap();
        (faces, frame)
    };
    let box_pixels = |frame: &gst_video::VideoFrame<gst_video::video_frame::Readable>,
                      (x, y, w, h): (i64, i64, i64, i64)| {
        (y..y + h)
            .flat_map(|py| (x..x + w).map(move |px| (px, py)))
            .map(|(px, py)| pixel(frame, px, py))
            .collect::<Vec<_>>()
    };
    let variance = |pixels: &[[u8; 3]]| {
        let n = pixels.len() as f64;
        (0..3)
            .map(|c| {
                let mean = pixels.iter().map(|p| p[c] as f64).sum::<f64>() / n;
                pixels
                    .iter()
                    .map(|p| (p[c] as f64 - mean).powi(2))
                    .sum::<f64>()
                    / n
            })
            .sum::<f64>()
    };
    for format in ["RGBA", "BGRx", "I420", "NV12"] {
        let (faces, plain) = frame_of(format, "none");
        let (_, redacted) = frame_of(format, "unknown");
        let (obama, biden) = (faces[0].rect, faces[1].rect);
        assert_eq!(
            box_pixels(&plain, obama),
            box_pixels(&redacted, obama),
            "{format}: Obama's box is untouched"
        );
        let (before, after) = (
            variance(&box_pixels(&plain, biden)),
            variance(&box_pixels(&redacted, biden)),
        );
        eprintln!("{format}: variance in Biden's box {before:.0} -> {after:.0}");
        assert!(
            after <= before * 0.2,
            "{format}: variance in Biden's box only fell from {before:.0} to {after:.0}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn faces_narrower_than_min_face_size_get_a_yellow_box_and_no_name() {
    use facerec_core::overlay::UNRECOGNISED_COLOUR;
    if !assets_ready() {
        return;
    }
    // Without the limit, the girl is embedded and is "unknown" at a real distance (0.68 in
    // the reference): the -1 below comes from min-face-size, not from a missing gallery.
    let (run, _) = stage_as_rgb("BGRx", "");
    let girl = &message_faces(&run.messages[0])[2];
    assert!(girl.recognized && girl.distance > 0.6, "{girl:?}");

    // 160 px: above the girl's 147, below the men's 174 and 182.
    let (run, drawn) = stage_as_rgb("BGRx", "min-face-size=160");
    let (_, untouched) = stage_as_rgb("BGRx", "min-face-size=160 draw=false");
    let faces = message_faces(&run.messages[0]);
    assert_eq!(faces.len(), 3);
    for man in &faces[..2] {
        assert!(
            man.recognized && man.distance > 0.0 && man.distance < 0.6,
            "{man:?}"
        );
    }
    assert_eq!(
        faces.iter().map(|f| f.name.as_str()).collect::<Vec<_>>(),
        ["biden", "obama", "unknown"]
    );
    let girl = &faces[2];
    assert_eq!((girl.distance, girl.recognized), (-1.0, false), "{girl:?}");
    let (x, y, w, h) = girl.rect;
    let t = STAGE_LINE;
    for (what, px, py) in [
        ("top edge", x + w / 2, y - t / 2 - 1),
        ("left edge", x - t / 2 - 1, y + h / 2),
    ] {
        assert_eq!(
            pixel(&drawn, px, py),
            UNRECOGNISED_COLOUR,
            "{what} ({px},{py})"
        );
    }
    // No label bar under the box.
    let (px, py) = (x + w / 2, y + h + t + 2);
    assert_eq!(pixel(&drawn, px, py), pixel(&untouched, px, py), "no label");

    // The ROI meta says the same as the message.
    let run = run_pipeline(
        &decode_pipeline(
            &format!("{TD}/{STAGE}"),
            "BGRx",
            &format!(
                "{} network-width=1280 min-face-size=160",
                gallery_prop(&knn_gallery())
            ),
        ),
        false,
    );
    let mut metas = run.frames[0].clone();
    metas.sort_by_key(|f| f.rect.0);
    let named: Vec<(&str, bool)> = metas
        .iter()
        .map(|f| (f.name.as_str(), f.distance == -1.0))
        .collect();
    assert_eq!(
        named,
        [("biden", false), ("obama", false), ("unknown", true)]
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn bus_messages_and_metas_describe_each_face() {
    if !assets_ready() {
        return;
    }
    let run = run_pipeline(
        &decode_pipeline(
            &format!("{TD}/two_people.jpg"),
            "RGBx",
            &gallery_prop(&knn_gallery()),
        ),
        false,
    );
    assert_eq!(
        run.messages.len(),
        1,
        "one message for the one processed frame"
    );
    let msg = &run.messages[0];
    assert_eq!(msg.get::<u64>("timestamp").unwrap(), 0);
    let faces = msg.get::<gst::Array>("faces").unwrap();
    let mut names: Vec<(i32, String, f64)> = faces
        .iter()
        .map(|v| {
            let s = v.get::<gst::Structure>().unwrap();
            let d = s.get::<f64>("distance").unwrap();
            assert!(s.get::<f64>("score").unwrap() > 0.85);
            assert!(s.get::<u64>("track-id").unwrap() >= 1);
            (
                s.get::<i32>("x").unwrap(),
                s.get::<String>("name").unwrap(),
                d,
            )
        })
        .collect();
    names.sort_by_key(|n| n.0);
    assert_eq!(
        names.iter().map(|n| n.1.as_str()).collect::<Vec<_>>(),
        ["obama", "biden"]
    );
    assert!(names.iter().all(|n| n.2 > 0.0 && n.2 < 0.6), "{names:?}");
    // The ROI metas agree with the message.
    let metas: Vec<String> = run.names_left_to_right();
    assert_eq!(metas, ["obama", "biden"]);
    let stats = run.stats.unwrap();
    assert_eq!(stats.get::<u64>("frames").unwrap(), 1);
    assert_eq!(stats.get::<u64>("embeddings").unwrap(), 2);
    assert_eq!(stats.get::<String>("provider").unwrap(), "cpu");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn no_gallery_means_unknown_with_one_warning() {
    if !assets_ready() {
        return;
    }
    let run = run_pipeline(
        &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", ""),
        false,
    );
    assert_eq!(run.error, None);
    assert_eq!(run.names_left_to_right(), ["unknown", "unknown"]);
    let gallery_warnings: Vec<_> = run
        .warnings
        .iter()
        .filter(|w| w.contains("No gallery set"))
        .collect();
    assert_eq!(gallery_warnings.len(), 1, "{:?}", run.warnings);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn cuda_on_a_cpu_machine_warns_and_runs_on_cpu() {
    if !assets_ready() {
        return;
    }
    let props = format!("{} provider=cuda", gallery_prop(&knn_gallery()));
    let run = run_pipeline(
        &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", &props),
        false,
    );
    assert_eq!(run.error, None);
    assert_eq!(run.names_left_to_right(), ["obama", "biden"]);
    let warning = run
        .warnings
        .iter()
        .find(|w| w.contains("execution provider 'cuda' was requested but is not available"))
        .unwrap_or_else(|| panic!("no fallback warning in {:?}", run.warnings));
    assert!(warning.ends_with("running on CPU"), "{warning}");
    assert_eq!(run.stats.unwrap().get::<String>("provider").unwrap(), "cpu");

    // Strict mode refuses to start instead.
    let props = format!("{props} strict-provider=true");
    let run = run_pipeline(
        &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", &props),
        false,
    );
    let error = run.error.expect("strict mode fails");
    assert!(
        error.starts_with("detector: execution provider 'cuda' is not available")
            || error.contains("execution provider 'cuda' is not available"),
        "{error}"
    );
}

/// Starts the element on one image with the given properties and returns the error text.
fn start_error(props: &str) -> String {
    let run = run_pipeline(
        &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", props),
        false,
    );
    assert!(run.frames.is_empty(), "no frame passes a failed start");
    run.error.expect("the element refuses to start")
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn bad_models_fail_the_start_with_the_path() {
    if !assets_ready() {
        return;
    }
    let err = start_error("detector=/nonexistent/yunet.onnx");
    assert!(
        err.starts_with("detector model not found at /nonexistent/yunet.onnx: set the element property or FACEREC_MODEL_DIR"),
        "{err}"
    );
    let not_a_model_dir = temp_dir("models");
    let not_a_model = not_a_model_dir.path().join("garbage.onnx");
    std::fs::write(&not_a_model, b"this is not an onnx file").unwrap();
    let err = start_error(&format!("recognizer={}", not_a_model.display()));
    assert!(
        err.starts_with(&format!(
            "recognizer model {} could not be loaded:",
            not_a_model.display()
        )),
        "{err}"
    );
    // A valid ONNX file that is the wrong network.
    let err = start_error(&format!(
        "recognizer={}",
        asset("models/yunet_s_dynamic.onnx").display()
    ));
    assert!(
        err.contains("this is not the dlib face recognizer"),
        "{err}"
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn bad_galleries_fail_the_start_with_the_file_and_the_reason() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("bad-galleries");
    let dir = dir.path();
    let good = std::fs::read(knn_gallery()).unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    };
    let check = |path: &std::path::Path, reason: &str| {
        let err = start_error(&gallery_prop(path));
        assert!(
            err.starts_with(&format!("gallery {}: {reason}", path.display())),
            "{err}"
        );
    };

    check(
        &write("pickle.data", b"\x80\x04\x95\x10\x00\x00\x00"),
        "not a facerec gallery (wrong magic string)",
    );
    let mut v9 = good.clone();
    v9[8] = 9;
    check(
        &write("v9.data", &v9),
        "unsupported gallery format version 9",
    );
    check(
        &write("truncated.data", &good[..good.len() / 2]),
        "truncated:",
    );
    let mut flipped = good.clone();
    let mid = good.len() / 2;
    flipped[mid] ^= 0x01;
    check(
        &write("flipped.data", &flipped),
        "corrupt: checksum mismatch",
    );

    let sha = Gallery::load(&knn_gallery())
        .unwrap()
        .header
        .recognizer_sha256;
    let mut small = Gallery::new(&sha, 64);
    small.add("x", "x.jpg", vec![0.1; 64]).unwrap();
    let path = dir.join("dim64.data");
    small.save(&path).unwrap();
    check(
        &path,
        "embedding dimension mismatch: the gallery holds 64-d embeddings, the recognizer produces 128-d",
    );

    let mut other = Gallery::new(&"ab".repeat(32), 128);
    other.add("x", "x.jpg", vec![0.1; 128]).unwrap();
    let path = dir.join("other-model.data");
    other.save(&path).unwrap();
    check(
        &path,
        &format!(
            "built with a different recognizer (model sha256 {}",
            "ab".repeat(32)
        ),
    );

    let missing = dir.join("missing.data");
    let err = start_error(&gallery_prop(&missing));
    let want = format!(
        "gallery {}: cannot be read: No such file or directory (os error 2)",
        missing.display()
    );
    assert!(err.starts_with(&want), "{err}");
}

/// The galleries of issue 8 that used to hang the element (reading `/dev/zero` or a FIFO with
/// no writer forever) or abort the process (a 2^40 string length): (case, path, the refusal
/// reason that must follow `gallery <path>: `), and the folder holding them.
fn hostile_galleries(
    tag: &str,
) -> (
    tempfile::TempDir,
    Vec<(&'static str, std::path::PathBuf, String)>,
) {
    let folder = temp_dir(&format!("hostile-{tag}"));
    let dir = folder.path();
    let fifo = dir.join("fifo.data");
    if !fifo.exists() {
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success(), "mkfifo");
    }
    let crafted = dir.join("crafted.data");
    let bytes = facerec_core::testsupport::gallery_with_length_prefix(1 << 40);
    std::fs::write(&crafted, &bytes).unwrap();
    // Magic (8), version (4) and payload length (8) before the payload, a sha256 after it.
    let payload = bytes.len() - 20 - 32;
    let galleries = vec![
        (
            "dev-zero",
            "/dev/zero".into(),
            "not a regular file (a character device)".to_string(),
        ),
        ("fifo", fifo, "not a regular file (a FIFO)".to_string()),
        (
            "crafted",
            crafted,
            format!("corrupt: a length field claims more than the {payload}-byte payload can hold"),
        ),
    ];
    (folder, galleries)
}

const HOSTILE_CASE: &str = "FACEREC_HOSTILE_CASE";
const HOSTILE_PATH: &str = "FACEREC_HOSTILE_PATH";
const HOSTILE_REASON: &str = "FACEREC_HOSTILE_REASON";

/// Runs `child` in a child process for each hostile gallery, and fails with every case that
/// hung, aborted or failed its assertions.
fn try_hostile_galleries(child: &str) {
    let mut failures = Vec::new();
    let (_folder, galleries) = hostile_galleries(child);
    for (case, path, reason) in galleries {
        let outcome = run_child_test(
            child,
            &[
                (HOSTILE_CASE, case),
                (HOSTILE_PATH, &path.display().to_string()),
                (HOSTILE_REASON, &reason),
            ],
            std::time::Duration::from_secs(60),
        );
        if !outcome.succeeded() {
            failures.push(format!(
                "{case} ({}): {}",
                path.display(),
                outcome.describe()
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// The child side: the hostile gallery this process must try, or `None` in a normal test run.
fn hostile_case() -> Option<(String, String, String)> {
    let case = std::env::var(HOSTILE_CASE).ok()?;
    init();
    Some((
        case,
        std::env::var(HOSTILE_PATH).unwrap(),
        std::env::var(HOSTILE_REASON).unwrap(),
    ))
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn hostile_galleries_fail_the_start_naming_the_file() {
    if !assets_ready() {
        return;
    }
    try_hostile_galleries("hostile_gallery_at_start");
}

#[test]
#[ignore = "the child process of hostile_galleries_fail_the_start_naming_the_file"]
fn hostile_gallery_at_start() {
    let Some((case, path, reason)) = hostile_case() else {
        return;
    };
    let err = start_error(&format!("gallery=\"{path}\""));
    let want = format!("gallery {path}: {reason}");
    assert!(err.starts_with(&want), "{case}: {err}\nexpected: {want}");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn hostile_galleries_set_while_playing_keep_the_previous_one() {
    if !assets_ready() {
        return;
    }
    try_hostile_galleries("hostile_gallery_while_playing");
}

#[test]
#[ignore = "the child process of hostile_galleries_set_while_playing_keep_the_previous_one"]
fn hostile_gallery_while_playing() {
    let Some((case, path, reason)) = hostile_case() else {
        return;
    };
    // set_property is called from its own thread, as an application would: the streaming
    // thread must not wait for it, and it must return promptly.
    let (tx, rx) = std::sync::mpsc::channel::<std::time::Duration>();
    let tx = std::sync::Mutex::new(Some(tx));
    let description = decode_pipeline(CLIP, "RGBx", &gallery_prop(&hamilton_gallery()));
    let target = path.clone();
    let run = run_pipeline_with(&description, false, move |pipeline, index| {
        if index == 10 {
            let element = pipeline.by_name("f").unwrap();
            let tx = tx.lock().unwrap().take().unwrap();
            let target = target.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                element.set_property("gallery", &target);
                let _ = tx.send(started.elapsed());
            });
        }
    });
    // A deadline against hanging (a FIFO opened for reading blocks until a writer comes), not a
    // speed figure: the clip has run to its end by now.
    let took = rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("{case}: set_property(gallery={path}) has not returned after 10 s (the clip ran to the end without it)"));
    eprintln!("{case}: set_property returned in {took:?}");
    assert_eq!(run.error, None, "{case}");
    assert_eq!(run.frames.len(), 275, "{case}: frames keep flowing");
    let want = format!("Gallery not reloaded, keeping the previous one: gallery {path}: {reason}");
    assert!(
        run.warnings.iter().any(|w| w.starts_with(&want)),
        "{case}: expected a warning starting with {want:?}, got {:?}",
        run.warnings
    );
    assert!(
        run.frames_naming(MIRANDA) >= 125,
        "{case}: the previous gallery stays in use ({} frames name Miranda)",
        run.frames_naming(MIRANDA)
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn gallery_reload_while_playing_drops_no_frame() {
    if !assets_ready() {
        return;
    }
    // Start with a gallery that does not know Miranda, switch to one that does at frame 100.
    let knn = knn_gallery();
    let hamilton = hamilton_gallery();
    let description = decode_pipeline(CLIP, "RGBx", &gallery_prop(&knn));
    let run = run_pipeline_with(&description, false, move |pipeline, index| {
        if index == 99 {
            pipeline
                .by_name("f")
                .unwrap()
                .set_property("gallery", hamilton.display().to_string());
        }
    });
    assert_eq!(run.error, None);
    assert_eq!(run.frames.len(), 275, "no frame dropped");
    let named_before = run.frames[..100]
        .iter()
        .filter(|f| f.iter().any(|s| s.name == MIRANDA))
        .count();
    let named_after = run.frames[100..]
        .iter()
        .filter(|f| f.iter().any(|s| s.name == MIRANDA))
        .count();
    assert_eq!(named_before, 0);
    // The reference names Miranda in 108 of frames 100-274 (the element: 106). The unknown
    // tracks the old gallery left are re-recognised within a few frames of the reload; +-6
    // is the difference the whole clip shows (141 against 135).
    eprintln!("Miranda named in {named_after} of frames 100-274 after the reload (reference: 108)");
    assert!(
        (102..=114).contains(&named_after),
        "Miranda named in {named_after} frames after the reload, the reference names him in 108"
    );

    // A broken file while playing keeps the previous gallery and warns.
    let broken_dir = temp_dir("reload");
    let broken = broken_dir.path().join("broken.data");
    std::fs::write(&broken, b"nope").unwrap();
    let hamilton = hamilton_gallery();
    let description = decode_pipeline(CLIP, "RGBx", &gallery_prop(&hamilton));
    let run = run_pipeline_with(&description, false, move |pipeline, index| {
        if index == 10 {
            pipeline
                .by_name("f")
                .unwrap()
                .set_property("gallery", broken.display().to_string());
        }
    });
    assert_eq!(run.error, None);
    assert_eq!(run.frames.len(), 275);
    assert!(
        run.warnings
            .iter()
            .any(|w| w.starts_with("Gallery not reloaded, keeping the previous one: gallery")),
        "{:?}",
        run.warnings
    );
    assert!(run.frames_naming(MIRANDA) >= 125);
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn live_mode_passes_every_frame_with_the_latest_results() {
    if !assets_ready() {
        return;
    }
    // Unsynchronised: the clip is decoded as fast as the CPU allows, so how many frames the
    // worker takes depends on the machine's speed. That the streaming thread never waits for
    // the worker is checked with a held worker (frame_path.rs).
    let props = format!("{} live=true", gallery_prop(&hamilton_gallery()));
    let run = run_pipeline(&decode_pipeline(CLIP, "RGBx", &props), false);
    assert_eq!(run.error, None);
    assert_eq!(run.frames.len(), 275, "live mode drops no frame");
    let stats = run.stats.as_ref().unwrap();
    let processed = stats.get::<u64>("frames").unwrap();
    let detections = stats.get::<u64>("detections").unwrap();
    let miranda = run.frames_naming(MIRANDA);
    eprintln!(
        "live mode: {processed} of 275 frames processed ({detections} detections, {} bus messages), Miranda named on {miranda} frames",
        run.messages.len()
    );
    assert_eq!(stats.get::<u64>("passed").unwrap(), 275);
    assert_eq!(
        processed, detections,
        "detect-interval 1: every frame taken is detected"
    );
    assert!(detections >= 1, "the worker never ran");
    assert!(run.messages.len() as u64 <= detections);
    // The reference has two faces on frame 0 (the synchronous mode reports them there); in
    // live mode the first frame leaves before any result exists.
    assert_eq!(run.frames[0], [], "the first frame carries no faces yet");
    assert!(
        miranda >= 1,
        "the latest results are drawn onto passing frames"
    );
}

#[test]
fn unsupported_caps_are_refused() {
    init();
    let err = gst::parse::launch(
        "videotestsrc num-buffers=1 ! video/x-raw,format=GRAY8 ! facerec name=probe ! fakesink",
    )
    .expect_err("GRAY8 does not link");
    assert!(
        err.to_string()
            .contains("probe can't handle caps video/x-raw, format=(string)GRAY8"),
        "{err}"
    );

    if !assets_ready() {
        return;
    }
    // A caps change to something unsupported in mid-stream is refused, not crashed on.
    let element = gst::ElementFactory::make("facerec")
        .property("draw", false)
        .build()
        .unwrap();
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps_str("video/x-raw,format=RGBx,width=64,height=48,framerate=30/1");
    let buffer = gst::Buffer::with_size(64 * 48 * 4).unwrap();
    assert!(harness.push_and_pull(buffer).is_ok());
    let interlaced = gst::Caps::builder("video/x-raw")
        .field("format", "RGBx")
        .field("width", 64)
        .field("height", 48)
        .field("framerate", gst::Fraction::new(30, 1))
        .field("interlace-mode", "interleaved")
        .build();
    harness.push_event(gst::event::Caps::new(&interlaced));
    let buffer = gst::Buffer::with_size(64 * 48 * 4).unwrap();
    assert_eq!(
        harness.push(buffer),
        Err(gst::FlowError::NotNegotiated),
        "interlaced caps are refused"
    );
    let gray = gst::Caps::builder("video/x-raw")
        .field("format", "GRAY8")
        .field("width", 64)
        .field("height", 48)
        .field("framerate", gst::Fraction::new(30, 1))
        .build();
    harness.push_event(gst::event::Caps::new(&gray));
    let buffer = gst::Buffer::with_size(64 * 48).unwrap();
    assert_eq!(
        harness.push(buffer),
        Err(gst::FlowError::NotNegotiated),
        "GRAY8 caps are refused"
    );
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn harness_attaches_roi_metas() {
    if !assets_ready() {
        return;
    }
    let image = facerec_core::stills::load_rgb(&asset(&format!("{TD}/two_people.jpg"))).unwrap();
    let (w, h) = (image.width(), image.height());
    let element = gst::ElementFactory::make("facerec")
        .property("gallery", knn_gallery().display().to_string())
        .property("draw", false)
        .build()
        .unwrap();
    let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
    harness.set_src_caps_str(&format!(
        "video/x-raw,format=RGB,width={w},height={h},framerate=30/1"
    ));
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
        .build()
        .unwrap();
    let mut buffer = gst::Buffer::with_size(info.size()).unwrap();
    {
        let buffer = buffer.get_mut().unwrap();
        buffer.set_pts(gst::ClockTime::ZERO);
        let mut map = buffer.map_writable().unwrap();
        let stride = info.stride()[0] as usize;
        for (y, row) in image.as_raw().chunks_exact(w as usize * 3).enumerate() {
            map[y * stride..y * stride + row.len()].copy_from_slice(row);
        }
    }
    let out = harness.push_and_pull(buffer).unwrap();
    let mut faces = faces_of(&out);
    faces.sort_by_key(|f| f.rect.0);
    let names: Vec<&str> = faces.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["obama", "biden"]);
}

/// A frame whose memory is shared (a decoder keeps its reference pictures) is copied only when
/// the element draws on it: with `draw=false` the frame leaves in the very memory it came in,
/// faces and metas found all the same; with `draw=true` the boxes go on a copy, and the shared
/// original is untouched.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_shared_frame_is_copied_only_to_draw_on() {
    if !assets_ready() {
        return;
    }
    let image = facerec_core::stills::load_rgb(&asset(&format!("{TD}/two_people.jpg"))).unwrap();
    let (w, h) = (image.width(), image.height());
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, w, h)
        .build()
        .unwrap();
    let mut frame = gst::Buffer::with_size(info.size()).unwrap();
    {
        let frame = frame.get_mut().unwrap();
        frame.set_pts(gst::ClockTime::ZERO);
        let mut map = frame.map_writable().unwrap();
        let stride = info.stride()[0] as usize;
        for (y, row) in image.as_raw().chunks_exact(w as usize * 3).enumerate() {
            map[y * stride..y * stride + row.len()].copy_from_slice(row);
        }
    }
    let pixels = |buffer: &gst::BufferRef| {
        let map = buffer.map_readable().unwrap();
        (map.as_ptr() as usize, map.to_vec())
    };
    let (held_at, held_pixels) = pixels(&frame);
    for draw in [false, true] {
        let element = gst::ElementFactory::make("facerec")
            .property("gallery", knn_gallery().display().to_string())
            .property("draw", draw)
            .build()
            .unwrap();
        let mut harness = gst_check::Harness::with_element(&element, Some("sink"), Some("src"));
        harness.set_src_caps_str(&format!(
            "video/x-raw,format=RGB,width={w},height={h},framerate=30/1"
        ));
        // `frame` keeps a reference, as the decoder would.
        let out = harness.push_and_pull(frame.clone()).unwrap();
        assert_eq!(faces_of(&out).len(), 2, "draw={draw}");
        let (out_at, out_pixels) = pixels(&out);
        assert_eq!(
            pixels(&frame),
            (held_at, held_pixels.clone()),
            "draw={draw}"
        );
        if draw {
            assert_ne!(out_at, held_at, "drawn on the shared memory");
            assert_ne!(out_pixels, held_pixels, "nothing drawn");
        } else {
            assert_eq!(out_at, held_at, "copied without drawing");
            assert_eq!(out_pixels, held_pixels);
        }
    }
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn detect_interval_carries_faces_between_detections() {
    if !assets_ready() {
        return;
    }
    let props = format!("{} detect-interval=3", gallery_prop(&hamilton_gallery()));
    let run = run_pipeline(&decode_pipeline(CLIP, "RGBx", &props), false);
    assert_eq!(run.error, None);
    assert_eq!(run.frames.len(), 275);
    let stats = run.stats.as_ref().unwrap();
    assert_eq!(stats.get::<u64>("frames").unwrap(), 275);
    assert_eq!(
        stats.get::<u64>("detections").unwrap(),
        92,
        "frames 0, 3, 6, ... 273"
    );
    // Frames in between (not even scaled) carry the last detection's faces.
    assert_eq!(run.frames[1], run.frames[0]);
    assert_eq!(stats.get::<u64>("passed").unwrap(), 275);
    // Detecting every frame names him in 136 (the reference: 135). Every third frame measured
    // 120: a new track waits up to two frames for its first detection. Without carrying, only
    // detection frames could name him (at most 92).
    let miranda = run.frames_naming(MIRANDA);
    assert!(
        (115..=140).contains(&miranda),
        "Miranda named in {miranda} frames"
    );
}

/// The TensorRT/CUDA and model-variant properties: defaults, round trips, and values a
/// launch line may not set.
#[test]
fn tensorrt_and_variant_properties_round_trip() {
    init();
    let f = gst::ElementFactory::make("facerec").build().unwrap();
    let variant = |f: &gst::Element| {
        let value = f.property_value("model-variant");
        gst::glib::EnumValue::from_value(&value)
            .unwrap()
            .1
            .nick()
            .to_string()
    };
    assert_eq!(f.property::<Option<String>>("trt-engine-cache"), None);
    assert!(f.property::<bool>("trt-fp16"));
    assert_eq!(f.property::<Option<String>>("trt-timing-cache"), None);
    assert_eq!(f.property::<u32>("cuda-device"), 0);
    assert_eq!(variant(&f), "fp32");

    f.set_property("trt-engine-cache", "/var/cache/facerec/trt");
    f.set_property("trt-fp16", false);
    f.set_property("trt-timing-cache", "/var/cache/facerec/timing");
    f.set_property("cuda-device", 1u32);
    f.set_property_from_str("model-variant", "int8");
    assert_eq!(
        f.property::<Option<String>>("trt-engine-cache").as_deref(),
        Some("/var/cache/facerec/trt")
    );
    assert!(!f.property::<bool>("trt-fp16"));
    assert_eq!(
        f.property::<Option<String>>("trt-timing-cache").as_deref(),
        Some("/var/cache/facerec/timing")
    );
    assert_eq!(f.property::<u32>("cuda-device"), 1);
    assert_eq!(variant(&f), "int8");
    // An empty folder turns the cache off again.
    f.set_property("trt-engine-cache", "");
    assert_eq!(f.property::<Option<String>>("trt-engine-cache"), None);

    let nicks: Vec<String> = f
        .find_property("model-variant")
        .unwrap()
        .downcast::<gst::glib::ParamSpecEnum>()
        .unwrap()
        .enum_class()
        .values()
        .iter()
        .map(|v| v.nick().to_string())
        .collect();
    assert_eq!(nicks, ["fp32", "fp16", "int8"]);
    let cuda = f
        .find_property("cuda-device")
        .unwrap()
        .downcast::<gst::glib::ParamSpecUInt>()
        .unwrap();
    // ONNX Runtime reads device_id as an int.
    assert_eq!((cuda.minimum(), cuda.maximum()), (0, i32::MAX as u32));

    for (props, refused) in [
        ("model-variant=bf16", "model-variant"),
        // (A negative number is GLib's to refuse: it warns and leaves the property unset.)
        ("cuda-device=first", "cuda-device"),
        ("trt-fp16=maybe", "trt-fp16"),
    ] {
        let line = format!("videotestsrc num-buffers=1 ! facerec {props} ! fakesink");
        let err = gst::parse::launch(&line).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "could not set property \"{refused}\" in element \"facerec\" to \"{}\"",
                props.split_once('=').unwrap().1
            ),
            "{props}"
        );
    }
}

/// TensorRT settings change nothing on a machine without TensorRT: the run falls back to CPU
/// with the same warning as without them, names the same people, and the engine cache folder
/// is still made (the settings reached the core).
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn tensorrt_settings_keep_the_cpu_fallback_and_its_warning() {
    if !assets_ready() {
        return;
    }
    let dir = temp_dir("trt-cache");
    let engines = dir.path().join("engines/trt");
    let timing = dir.path().join("timing");
    let run = |extra: &str| {
        let props = format!("{} provider=tensorrt {extra}", gallery_prop(&knn_gallery()));
        run_pipeline(
            &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", &props),
            false,
        )
    };
    let plain = run("");
    let tuned = run(&format!(
        "trt-engine-cache=\"{}\" trt-fp16=false trt-timing-cache=\"{}\" cuda-device=1",
        engines.display(),
        timing.display()
    ));
    for r in [&plain, &tuned] {
        assert_eq!(r.error, None);
        assert_eq!(r.names_left_to_right(), ["obama", "biden"]);
        assert_eq!(
            r.stats.as_ref().unwrap().get::<String>("provider").unwrap(),
            "cpu"
        );
    }
    let fallback = |r: &common::Run| -> Vec<String> {
        r.warnings
            .iter()
            .filter(|w| w.contains("execution provider"))
            .cloned()
            .collect()
    };
    // The CPU build of ONNX Runtime that deploy/setup.sh installs has neither provider.
    let expected: Vec<String> = ["detector", "recognizer"]
        .iter()
        .map(|what| {
            format!(
                "{what}: execution provider 'tensorrt' was requested but is not available (tensorrt: TensorRT execution provider is not enabled in this build.; cuda: CUDA execution provider is not enabled in this build.); running on CPU"
            )
        })
        .collect();
    assert_eq!(fallback(&plain), expected, "{:?}", plain.warnings);
    assert_eq!(fallback(&tuned), expected, "{:?}", tuned.warnings);
    assert!(engines.is_dir(), "the engine cache folder was created");
    assert!(timing.is_dir(), "the timing cache folder was created");
}

#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn an_unwritable_engine_cache_fails_the_start_naming_it() {
    if !assets_ready() {
        return;
    }
    // sysfs refuses new files even to root, which the tests run as here.
    let err = start_error("provider=tensorrt trt-engine-cache=/sys");
    assert!(
        err.starts_with("/sys: the TensorRT engine cache folder (trt-engine-cache) cannot be written: Permission denied (os error 13)"),
        "{err}"
    );
    let err = start_error("provider=auto trt-timing-cache=/sys");
    assert!(
        err.starts_with("/sys: the TensorRT timing cache folder (trt-timing-cache) cannot be written: Permission denied (os error 13)"),
        "{err}"
    );
    // On CPU TensorRT never runs, so its folder is not looked at.
    let props = format!(
        "{} provider=cpu trt-engine-cache=/sys",
        gallery_prop(&knn_gallery())
    );
    let run = run_pipeline(
        &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", &props),
        false,
    );
    assert_eq!(run.error, None);
    assert_eq!(run.names_left_to_right(), ["obama", "biden"]);
}

/// A variant that has not passed the accuracy gate (int8) fails the start with the gate's
/// measured reason; fp32, said or not, runs as before.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn model_variant_int8_is_refused_and_fp32_is_unchanged() {
    if !assets_ready() {
        return;
    }
    let err = start_error("model-variant=int8");
    // The gate's own words (their text is pinned in core's models.rs), then the element's
    // context in brackets.
    let gate = facerec_core::models::ModelVariant::Int8
        .check_selectable()
        .unwrap_err()
        .to_string();
    assert!(err.starts_with(&format!("{gate} (")), "{err}");
    // Explicit paths do not get round the gate.
    let err = start_error(&format!(
        "model-variant=int8 detector=\"{}\"",
        asset("models/yunet_s_dynamic.onnx").display()
    ));
    assert!(
        err.starts_with("model variant int8 is not selectable: "),
        "{err}"
    );
    let run = |extra: &str| {
        let props = format!("{} provider=cpu {extra}", gallery_prop(&knn_gallery()));
        run_pipeline(
            &decode_pipeline(&format!("{TD}/two_people.jpg"), "RGBx", &props),
            false,
        )
    };
    let default = run("");
    let fp32 = run("model-variant=fp32");
    assert_eq!(fp32.error, None);
    assert_eq!(fp32.names_left_to_right(), ["obama", "biden"]);
    let rects = |r: &common::Run| -> Vec<(u32, u32, u32, u32)> {
        r.frames[0].iter().map(|f| f.rect).collect()
    };
    assert_eq!(rects(&fp32), rects(&default));
    let distances =
        |r: &common::Run| -> Vec<f64> { r.frames[0].iter().map(|f| f.distance).collect() };
    assert_eq!(distances(&fp32), distances(&default));
}

/// A gallery set while the element starts (after it has read its settings, before it runs) is
/// the gallery it runs with. The launcher enrols a person while a camera is still starting; the
/// element used to drop that gallery and name nobody for the rest of the run. The window is hit
/// on purpose: the gallery is set from the bus's sync handler when start() warns that it has
/// none, which it does inside that window.
#[test]
#[cfg_attr(facerec_assets_missing, ignore = "needs ../shared and ONNX Runtime")]
fn a_gallery_set_while_the_element_starts_is_used() {
    if !assets_ready() {
        return;
    }
    init();
    let gallery = knn_gallery();
    let pipeline = gst::parse::launch(&decode_pipeline(
        &format!("{TD}/two_people.jpg"),
        "RGBx",
        "",
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let facerec = pipeline.by_name("f").unwrap().downgrade();
    let set_while_starting = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = set_while_starting.clone();
    pipeline.bus().unwrap().set_sync_handler(move |_, message| {
        if let gst::MessageView::Warning(w) = message.view()
            && w.error().to_string().contains("No gallery set")
            && let Some(f) = facerec.upgrade()
            && !flag.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            f.set_property("gallery", gallery.display().to_string());
        }
        gst::BusSyncReply::Pass
    });
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(60));
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        set_while_starting.load(std::sync::atomic::Ordering::SeqCst),
        "start() did not warn about the missing gallery"
    );
    let mut faces = faces_of(sample.expect("no frame within 60 s").buffer().unwrap());
    faces.sort_by_key(|f| f.rect.0);
    let names: Vec<String> = faces.into_iter().map(|f| f.name).collect();
    assert_eq!(
        names,
        ["obama", "biden"],
        "the gallery set while the element started was lost"
    );
}
