//! How much an embedding attempt can be trusted: one 0..1 score per aligned face, from its size,
//! its sharpness and its pose. Attempts under the quality floor are not used to name a track
//! ([`crate::identity`]).
//!
//! ## The score
//!
//! `quality = size * sharpness * pose`, each factor in 0..1, so that any one bad factor sinks
//! the attempt:
//!
//! * **size** = `min(1, width / FULL_SIZE)`, the face box's width in frame pixels. `FULL_SIZE`
//!   (48 px) is where the embedding stops improving on this data: the same portrait at 54 px
//!   (`obama-240p.jpg`) and at 232 px (`obama.jpg`) embeds within the 0.13-0.19 that any two
//!   resolutions of it differ by (`shared/testdata/README.md`). Faces narrower than
//!   `min-face-size` (40) are not embedded at all, so this only discounts faces of 40-48 px.
//! * **sharpness** = `clamp((s - BLUR_SHARPNESS) / (SHARP_SHARPNESS - BLUR_SHARPNESS), 0, 1)`,
//!   where `s` ([`sharpness_measure`]) is the variance of the 4-neighbour Laplacian of the grey
//!   (BT.601 luma) chip reduced to 30x30 (means of 5x5 chip pixels), over its central face
//!   region, divided by the grey variance there. Why that scale and that division:
//!   - the chip is resampled from the frame at its native resolution, so a 46 px face is
//!     upsampled about 3x into the 150x150 chip and its Laplacian at chip resolution measures
//!     the resampling, not the face (the clip's pianist: 0.2 at chip resolution, against 265
//!     for a sharp 366 px face). At 30x30 a cell is about two native pixels of the smallest
//!     face we embed, so the measure sees the content's detail whatever its native size;
//!   - an upscaled frame gives the same chip, so the measure does not depend on the frame's
//!     size: the clip's pianist measures 0.051-0.071 at 360p, 0.056-0.067 at 720p and
//!     0.059-0.073 at 1080p, Miranda 0.59-2.3 at every size;
//!   - dividing by the variance makes it independent of lighting and contrast.
//! * **pose** from the five landmarks, in the eye line's frame (roll removed): yaw is the
//!   nose's offset along the eye line from the eyes' midpoint over the inter-ocular distance
//!   (0 frontal; it grows past 1 as the far eye closes in on the nose), pitch is where the nose
//!   sits between the eye line (0) and the mouth line (1). Each is 1 inside its band and falls
//!   linearly to 0 at its limit ([`YAW_FREE`], [`YAW_LIMIT`], [`PITCH_BAND`], [`PITCH_LIMITS`]).
//!
//! ## Calibration (the clip at 360p/720p/1080p, the repository's photos, blurred copies)
//!
//! * Sharpness: the softest face that the reference pipeline names correctly is the clip's
//!   pianist (Alex Lacamoire, 46 px at 360p, frames 224-241, distance 0.575-0.60), at
//!   0.051-0.073; `obama.jpg` measures 2.66 and `obama1.jpg` 1.78; the clip's other faces 0.057-3.1.
//!   `knn_examples/test/obama1.jpg` (a 366 px face) blurred by the test with a Gaussian of
//!   sigma 4, 8, 12, 16, 24, 32 px measures 1.28, 0.59, 0.27, 0.14, 0.054, 0.034. The ramp from
//!   [`BLUR_SHARPNESS`] (0.03) to [`SHARP_SHARPNESS`] (0.09) gives the pianist 0.35-0.7 and a
//!   sigma-32 blur 0.07. A relative blur that heavy is also where the recognizer gives up: the
//!   pianist is matched at 0.58-0.60, obama1 at sigma 24 at 0.61 (0.40 sharp).
//! * Pose: Lacamoire's close-up (frames 20-39) is a profile at yaw -0.9 to -1.5 that the
//!   reference names correctly at 0.57-0.60, and Miranda turns to yaw -1.1; so yaw costs
//!   nothing up to 1.2 and reaches 0 at 3 (the close-up's most turned frame is at 2.8). The
//!   photos' frontal faces have |yaw| < 0.3 and pitch 0.50-0.64, the clip's faces pitch
//!   0.25-0.66.
//!
//! Frigate, the most-used open-source system of this kind, also filters by the variance of the
//! Laplacian (`blur_confidence_filter`, on by default) and by size (`min_area`, 500 px² by
//! default, about a 22 px face; our `min-face-size` is 40 px); see
//! <https://docs.frigate.video/configuration/face_recognition>.

use crate::align::{CHIP_SIZE, Chip};
use crate::geometry::Landmarks;

/// Face width (frame pixels) from which size no longer lowers the quality.
pub const FULL_SIZE: f32 = 48.0;

/// [`sharpness_measure`] at and under which the chip holds no usable detail (sharpness 0).
pub const BLUR_SHARPNESS: f32 = 0.03;
/// [`sharpness_measure`] at and above which a face counts as sharp (sharpness 1).
pub const SHARP_SHARPNESS: f32 = 0.09;

/// |yaw| up to which pose does not lower the quality.
pub const YAW_FREE: f32 = 1.2;
/// |yaw| at which the pose quality reaches 0.
pub const YAW_LIMIT: f32 = 3.0;
/// Pitch band with no penalty.
pub const PITCH_BAND: (f32, f32) = (0.3, 0.8);
/// Pitch at which the pose quality reaches 0 (the nose on the eye line, or past the mouth).
pub const PITCH_LIMITS: (f32, f32) = (0.05, 1.05);

/// The chip is reduced by this factor (means of `BIN` x `BIN` pixels) before the Laplacian.
const BIN: usize = 5;

/// The chip's border left out of the sharpness measure (background, hair, chin).
const CHIP_MARGIN: usize = 15;

/// The score and its parts, for one embedding attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quality {
    /// The combined score, 0..1.
    pub score: f32,
    pub size: f32,
    pub sharpness: f32,
    pub pose: f32,
    /// Raw measures behind the factors ([`sharpness_measure`], yaw, pitch).
    pub sharpness_measure: f32,
    pub yaw: f32,
    pub pitch: f32,
}

/// Scores one attempt from the face's box width (frame pixels), its landmarks and its chip.
pub fn assess(face_width: f32, landmarks: &Landmarks, chip: &Chip) -> Quality {
    let size = size_factor(face_width);
    let sharpness_measure = sharpness_measure(chip);
    let sharpness = ramp(sharpness_measure, BLUR_SHARPNESS, SHARP_SHARPNESS);
    let (yaw, pitch) = pose_angles(landmarks);
    let pose = pose_factor(yaw, pitch);
    Quality {
        score: size * sharpness * pose,
        size,
        sharpness,
        pose,
        sharpness_measure,
        yaw,
        pitch,
    }
}

/// 0 at `zero`, 1 at `one`, linear in between (either direction).
fn ramp(value: f32, zero: f32, one: f32) -> f32 {
    if !value.is_finite() {
        return 0.0;
    }
    ((value - zero) / (one - zero)).clamp(0.0, 1.0)
}

pub fn size_factor(face_width: f32) -> f32 {
    ramp(face_width, 0.0, FULL_SIZE)
}

/// Yaw and pitch as described in the module docs, from YuNet's landmark order (right eye,
/// left eye, nose, right mouth corner, left mouth corner, as seen in the image left to right).
pub fn pose_angles(landmarks: &Landmarks) -> (f32, f32) {
    let [re, le, nose, rm, lm] = *landmarks;
    let eye_mid = [(re[0] + le[0]) / 2.0, (re[1] + le[1]) / 2.0];
    let mouth_mid = [(rm[0] + lm[0]) / 2.0, (rm[1] + lm[1]) / 2.0];
    let axis = [le[0] - re[0], le[1] - re[1]];
    let iod = axis[0].hypot(axis[1]);
    if iod.is_nan() || iod <= f32::EPSILON {
        return (f32::INFINITY, f32::NAN);
    }
    let ux = [axis[0] / iod, axis[1] / iod];
    // Perpendicular to the eye line, pointing down the face.
    let uy = [-ux[1], ux[0]];
    let along = |p: [f32; 2], u: [f32; 2]| (p[0] - eye_mid[0]) * u[0] + (p[1] - eye_mid[1]) * u[1];
    let yaw = along(nose, ux) / iod;
    let mouth_depth = along(mouth_mid, uy);
    let pitch = if mouth_depth > f32::EPSILON {
        along(nose, uy) / mouth_depth
    } else {
        f32::NAN
    };
    (yaw, pitch)
}

pub fn pose_factor(yaw: f32, pitch: f32) -> f32 {
    let yaw_q = 1.0 - ramp(yaw.abs(), YAW_FREE, YAW_LIMIT);
    let pitch_q = if pitch < PITCH_BAND.0 {
        ramp(pitch, PITCH_LIMITS.0, PITCH_BAND.0)
    } else {
        ramp(pitch, PITCH_LIMITS.1, PITCH_BAND.1)
    };
    if !yaw.is_finite() || !pitch.is_finite() {
        return 0.0;
    }
    yaw_q * pitch_q
}

/// The chip's sharpness, independent of the face's native size and contrast: the variance of
/// the Laplacian of its grey face region reduced to 30x30, over the grey variance there.
pub fn sharpness_measure(chip: &Chip) -> f32 {
    let (laplacian, std) = binned_laplacian_variance(chip, BIN);
    if std > 0.0 {
        laplacian / (std * std)
    } else {
        0.0
    }
}

/// The Laplacian variance of the chip's grey face region after averaging `bin` x `bin` blocks,
/// and the grey standard deviation there.
pub fn binned_laplacian_variance(chip: &Chip, bin: usize) -> (f32, f32) {
    let n = CHIP_SIZE;
    let plane = n * n;
    if chip.data.len() < 3 * plane || bin == 0 {
        return (0.0, 0.0);
    }
    let m = n / bin;
    let mut grey = vec![0.0f32; m * m];
    for y in 0..m * bin {
        for x in 0..m * bin {
            let i = y * n + x;
            let v = 0.299 * chip.data[i]
                + 0.587 * chip.data[plane + i]
                + 0.114 * chip.data[2 * plane + i];
            grey[(y / bin) * m + x / bin] += v / (bin * bin) as f32;
        }
    }
    let margin = CHIP_MARGIN.div_ceil(bin);
    let (mut sum, mut sum_sq, mut count) = (0.0f64, 0.0f64, 0usize);
    let (mut gs, mut gs2) = (0.0f64, 0.0f64);
    for y in margin..m - margin {
        for x in margin..m - margin {
            let i = y * m + x;
            let lap = grey[i - 1] + grey[i + 1] + grey[i - m] + grey[i + m] - 4.0 * grey[i];
            sum += lap as f64;
            sum_sq += (lap as f64) * (lap as f64);
            gs += grey[i] as f64;
            gs2 += (grey[i] as f64) * (grey[i] as f64);
            count += 1;
        }
    }
    let c = count as f64;
    let mean = sum / c;
    let gm = gs / c;
    (
        (sum_sq / c - mean * mean).max(0.0) as f32,
        (gs2 / c - gm * gm).max(0.0).sqrt() as f32,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// YuNet's landmarks of `obama.jpg` (frontal), from `expected/yunet_detections.json`.
    const FRONTAL: Landmarks = [
        [443.07, 207.37],
        [550.51, 209.67],
        [500.75, 270.93],
        [445.1, 317.17],
        [544.36, 318.72],
    ];

    fn rotate(l: &Landmarks, degrees: f32) -> Landmarks {
        let (s, c) = degrees.to_radians().sin_cos();
        l.map(|[x, y]| [c * x - s * y, s * x + c * y])
    }

    #[test]
    fn frontal_face_has_no_pose_penalty_at_any_roll() {
        for roll in [0.0, 20.0, -35.0, 90.0] {
            let (yaw, pitch) = pose_angles(&rotate(&FRONTAL, roll));
            // The photo's own figures: yaw 0.05, pitch 0.57.
            assert!((yaw - 0.05).abs() < 0.01, "roll {roll}: yaw {yaw}");
            assert!((pitch - 0.57).abs() < 0.01, "roll {roll}: pitch {pitch}");
            assert_eq!(pose_factor(yaw, pitch), 1.0, "roll {roll}");
        }
    }

    #[test]
    fn turned_and_tilted_faces_lose_pose_quality() {
        let iod = FRONTAL[1][0] - FRONTAL[0][0];
        let mid = (FRONTAL[0][0] + FRONTAL[1][0]) / 2.0;
        let turned = |yaw: f32| {
            let mut l = FRONTAL;
            l[2][0] = mid + yaw * iod;
            l
        };
        // The clip's profile close-ups (yaw 0.9-1.5) keep most of their quality...
        let (yaw, pitch) = pose_angles(&turned(1.2));
        assert!((yaw - 1.2).abs() < 0.02, "{yaw}");
        assert!(pose_factor(yaw, pitch) > 0.98);
        let (yaw, pitch) = pose_angles(&turned(-2.1));
        assert!((pose_factor(yaw, pitch) - 0.5).abs() < 0.02);
        // ...a nose three eye-distances off the middle has none.
        let (yaw, pitch) = pose_angles(&turned(3.1));
        assert_eq!(pose_factor(yaw, pitch), 0.0);
        // Looking down: the nose at the mouth line (pitch 1).
        let mut down = FRONTAL;
        down[2][1] = 318.0;
        let (yaw, pitch) = pose_angles(&down);
        assert!((pitch - 1.0).abs() < 0.02, "{pitch}");
        assert!((pose_factor(yaw, pitch) - 0.2).abs() < 0.05);
        // Degenerate landmarks (both eyes on one point) score 0, not NaN.
        let mut flat = FRONTAL;
        flat[1] = flat[0];
        let (yaw, pitch) = pose_angles(&flat);
        assert_eq!(pose_factor(yaw, pitch), 0.0);
    }

    /// A chip of a sharp pattern, and the same after `blur_radius` passes of a 5-point blur.
    fn pattern_chip(blur_radius: usize) -> Chip {
        let n = CHIP_SIZE;
        let mut grey: Vec<f32> = (0..n * n)
            .map(|i| {
                let (x, y) = (i % n, i / n);
                // Detail of period 15-30 chip pixels, the scale of eyes, nostrils and lips.
                128.0
                    + 60.0 * ((x as f32 * 0.33).sin() * (y as f32 * 0.41).cos())
                    + 30.0 * ((x + 2 * y) as f32 * 0.2).sin()
            })
            .collect();
        for _ in 0..blur_radius {
            let src = grey.clone();
            for y in 1..n - 1 {
                for x in 1..n - 1 {
                    let i = y * n + x;
                    grey[i] = (src[i - 1] + src[i + 1] + src[i - n] + src[i + n] + src[i]) / 5.0;
                }
            }
        }
        let mut data = grey.clone();
        data.extend_from_slice(&grey);
        data.extend_from_slice(&grey);
        Chip { data }
    }

    #[test]
    fn sharpness_falls_as_blur_grows() {
        let values: Vec<f32> = [0, 16, 64, 256]
            .iter()
            .map(|&r| sharpness_measure(&pattern_chip(r)))
            .collect();
        assert!(
            values.windows(2).all(|w| w[1] < w[0]) && values[3] < values[0] * 0.05,
            "each blur step lowers the sharpness, 256 passes by 95%: {values:?}"
        );
        let flat = Chip {
            data: vec![77.0; Chip::LEN],
        };
        assert_eq!(sharpness_measure(&flat), 0.0);
        // Contrast does not matter: the same pattern at half the contrast measures the same.
        let faint = Chip {
            data: pattern_chip(0)
                .data
                .iter()
                .map(|v| 64.0 + v / 2.0)
                .collect(),
        };
        let ratio = sharpness_measure(&faint) / values[0];
        assert!((ratio - 1.0).abs() < 1e-3, "{ratio}");
        assert_eq!(assess(200.0, &FRONTAL, &pattern_chip(0)).score, 1.0);
        assert_eq!(assess(200.0, &FRONTAL, &flat).score, 0.0);
    }

    #[test]
    fn size_saturates_at_full_size() {
        assert_eq!(size_factor(FULL_SIZE), 1.0);
        assert_eq!(size_factor(1000.0), 1.0);
        assert_eq!(size_factor(FULL_SIZE / 2.0), 0.5);
        assert_eq!(size_factor(f32::NAN), 0.0);
    }
}
