//! Names decided over a whole track (issue 10): the sample clip at 360p, 720p and 1080p in
//! I420, NV12 and RGBA against `expected/hamilton_reference.json`, label flicker per track, the
//! margin rule on a gallery holding one person under two names, and the quality floor on a
//! blurred face.

mod common;

use common::*;

/// The clip at one size in the three formats: prints one table row per run, then checks the
/// issue's bounds on every run.
fn clip_matrix(width: u32, height: u32) {
    let mut reports = Vec::new();
    for format in ["I420", "NV12", "RGBA"] {
        let started = std::time::Instant::now();
        let run = scaled_clip_run(width, height, format, "");
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
            "{}: {} tracks change label more than once; track {} went {}",
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
