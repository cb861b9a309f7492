// SPDX-License-Identifier: MPL-2.0

//! Face crops for the bus message (property `face-crops`): which faces get one, and the
//! pixels, read from the frame's planes at full resolution through the core's
//! [`PixelSource`] (the same reader alignment uses), so every accepted format gives RGB.

use std::collections::HashMap;

use facerec_core::engine::FaceResult;
use facerec_core::frame::PixelSource;
use facerec_core::gallery::UNKNOWN;
use facerec_core::geometry::BBox;

use super::message::FaceCrop;

/// Margin around the box on every side, as a share of the box's width (left, right) and
/// height (top, bottom): enough hair and chin for a person to recognise the face.
pub const CROP_MARGIN: f32 = 0.25;

/// A track gets a new crop when its quality beats the best crop sent for it by this much.
pub const QUALITY_STEP: f32 = 0.05;

/// Tracks remembered at most; past it, tracks absent from the current frame are forgotten
/// (track ids only grow, so ended tracks would otherwise pile up on a long stream).
const MAX_TRACKS: usize = 1024;

/// The crop rectangle of a box in a `width` x `height` frame: the box grown by
/// [`CROP_MARGIN`], outward to whole pixels, clipped to the frame. `None` for a box that is not
/// finite or leaves nothing inside the frame.
pub fn crop_rect(bbox: &BBox, width: u32, height: u32) -> Option<(u32, u32, u32, u32)> {
    let (x, y, w, h) = (bbox.x as f64, bbox.y as f64, bbox.w as f64, bbox.h as f64);
    if !(x.is_finite() && y.is_finite() && w.is_finite() && h.is_finite()) || w <= 0.0 || h <= 0.0 {
        return None;
    }
    let (mx, my) = (w * CROP_MARGIN as f64, h * CROP_MARGIN as f64);
    let clip = |v: f64, max: u32| v.clamp(0.0, max as f64) as u32;
    let (x0, y0) = (
        clip((x - mx).floor(), width),
        clip((y - my).floor(), height),
    );
    let (x1, y1) = (
        clip((x + w + mx).ceil(), width),
        clip((y + h + my).ceil(), height),
    );
    (x1 > x0 && y1 > y0).then(|| (x0, y0, x1 - x0, y1 - y0))
}

/// The crop of `bbox` from `source` as packed RGB; `None` when nothing of it is in the frame.
pub fn crop(source: &dyn PixelSource, bbox: &BBox) -> Option<FaceCrop> {
    let (x, y, width, height) = crop_rect(bbox, source.width(), source.height())?;
    let mut row = vec![[0f32; 3]; width as usize];
    let mut rgb = Vec::with_capacity(width as usize * height as usize * 3);
    for r in y..y + height {
        source.read_row(x as usize, r as usize, &mut row);
        rgb.extend(
            row.iter()
                .flatten()
                .map(|v| v.round().clamp(0.0, 255.0) as u8),
        );
    }
    Some(FaceCrop {
        x: x as i32,
        y: y as i32,
        width,
        height,
        rgb,
    })
}

/// What was sent for one track.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    name: String,
    /// The best quality among the crops sent (0 for a face never tried).
    best: f32,
}

/// Decides which faces of a posted frame carry a crop: a track's first appearance, a change
/// of its decided name, and a quality that beats its best crop sent by [`QUALITY_STEP`].
#[derive(Debug, Default)]
pub struct CropPolicy {
    sent: HashMap<u64, Sent>,
}

impl CropPolicy {
    /// Forgets every track (after a seek or a restart the engine's tracks start again).
    pub fn reset(&mut self) {
        self.sent.clear();
    }

    /// Crops for the faces of one frame, in order, read from the pixels the faces were found
    /// on. A face whose crop would be empty gets none and is tried again on its next frame.
    pub fn crops(
        &mut self,
        faces: &[FaceResult],
        source: &dyn PixelSource,
    ) -> Vec<Option<FaceCrop>> {
        if self.sent.len() > MAX_TRACKS {
            self.sent
                .retain(|id, _| faces.iter().any(|f| f.track_id == *id));
        }
        faces
            .iter()
            .map(|face| {
                let name = face.label().unwrap_or(UNKNOWN);
                let quality = face.quality.filter(|q| q.is_finite()).unwrap_or(0.0);
                let wanted = match self.sent.get(&face.track_id) {
                    None => true,
                    Some(sent) => sent.name != name || quality - sent.best >= QUALITY_STEP,
                };
                if !wanted {
                    return None;
                }
                let crop = crop(source, &face.bbox)?;
                let best = self
                    .sent
                    .get(&face.track_id)
                    .map_or(quality, |s| s.best.max(quality));
                self.sent.insert(
                    face.track_id,
                    Sent {
                        name: name.to_string(),
                        best,
                    },
                );
                Some(crop)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use facerec_core::gallery::Match;
    use facerec_core::image::RgbImage;

    fn bbox(x: f32, y: f32, w: f32, h: f32) -> BBox {
        BBox { x, y, w, h }
    }

    fn face(track_id: u64, name: Option<&str>, quality: Option<f32>) -> FaceResult {
        FaceResult {
            track_id,
            bbox: bbox(10.0, 10.0, 8.0, 8.0),
            landmarks: [[0.0; 2]; 5],
            score: 0.9,
            identity: quality.map(|_| Match {
                name: name.map(str::to_string),
                distance: Some(0.4),
                second: None,
            }),
            quality,
            confidence: 1.0,
        }
    }

    #[test]
    fn the_rectangle_grows_by_a_quarter_and_stays_in_the_frame() {
        // 40x20 at (100, 50): 10 and 5 pixels of margin.
        assert_eq!(
            crop_rect(&bbox(100.0, 50.0, 40.0, 20.0), 640, 480),
            Some((90, 45, 60, 30))
        );
        // Outward to whole pixels.
        assert_eq!(
            crop_rect(&bbox(100.5, 50.5, 40.0, 20.0), 640, 480),
            Some((90, 45, 61, 31))
        );
        // Clipped at every edge.
        assert_eq!(
            crop_rect(&bbox(-10.0, -10.0, 700.0, 500.0), 640, 480),
            Some((0, 0, 640, 480))
        );
        assert_eq!(
            crop_rect(&bbox(630.0, 470.0, 40.0, 40.0), 640, 480),
            Some((620, 460, 20, 20))
        );
        // Nothing in the frame, nothing at all, or nonsense: no crop.
        for b in [
            bbox(700.0, 10.0, 20.0, 20.0),
            bbox(-100.0, 10.0, 20.0, 20.0),
            bbox(10.0, 10.0, 0.0, 20.0),
            bbox(10.0, 10.0, -5.0, 20.0),
            bbox(f32::NAN, 10.0, 20.0, 20.0),
            bbox(10.0, 10.0, f32::INFINITY, 20.0),
            bbox(f32::MAX, f32::MAX, f32::MAX, f32::MAX),
        ] {
            assert_eq!(crop_rect(&b, 640, 480), None, "{b:?}");
        }
        assert_eq!(
            crop_rect(&bbox(f32::MIN, f32::MIN, f32::MAX, f32::MAX), 640, 480),
            Some((0, 0, 640, 480))
        );
    }

    #[test]
    fn crops_are_packed_rgb_of_the_source() {
        let image = RgbImage::from_fn(40, 30, |x, y| {
            facerec_core::image::Rgb([x as u8, y as u8, (x + y) as u8])
        });
        let c = crop(&image, &bbox(8.0, 4.0, 8.0, 8.0)).unwrap();
        assert_eq!((c.x, c.y, c.width, c.height), (6, 2, 12, 12));
        assert_eq!(c.rgb.len(), 12 * 12 * 3);
        assert_eq!(&c.rgb[..6], &[6, 2, 8, 7, 2, 9]);
        let last = c.rgb.len() - 3;
        assert_eq!(&c.rgb[last..], &[17, 13, 30]);
        assert_eq!(crop(&image, &bbox(50.0, 4.0, 8.0, 8.0)), None);
    }

    #[test]
    fn first_appearance_name_change_and_better_quality_get_a_crop() {
        let image = RgbImage::new(64, 64);
        let mut policy = CropPolicy::default();
        let got = |policy: &mut CropPolicy, faces: &[FaceResult]| -> Vec<bool> {
            policy
                .crops(faces, &image)
                .iter()
                .map(Option::is_some)
                .collect()
        };
        // New tracks, embedded or not.
        assert_eq!(
            got(
                &mut policy,
                &[face(1, None, Some(0.5)), face(2, None, None)]
            ),
            [true, true]
        );
        // Same name, quality not 0.05 better: nothing.
        assert_eq!(
            got(
                &mut policy,
                &[face(1, None, Some(0.54)), face(2, None, None)]
            ),
            [false, false]
        );
        // 0.05 better than the best sent, and a first quality for a never-tried face.
        assert_eq!(
            got(
                &mut policy,
                &[face(1, None, Some(0.55)), face(2, None, Some(0.3))]
            ),
            [true, true]
        );
        // A worse attempt does not lower the bar.
        assert_eq!(got(&mut policy, &[face(1, None, Some(0.2))]), [false]);
        assert_eq!(got(&mut policy, &[face(1, None, Some(0.59))]), [false]);
        // The decided name changes: a crop whatever the quality.
        assert_eq!(
            got(&mut policy, &[face(1, Some("obama"), Some(0.1))]),
            [true]
        );
        assert_eq!(
            got(&mut policy, &[face(1, Some("obama"), Some(0.58))]),
            [false]
        );
        assert_eq!(
            got(&mut policy, &[face(1, Some("obama"), Some(0.6))]),
            [true]
        );
        // A face outside the frame gets none and stays new.
        let mut outside = face(3, None, None);
        outside.bbox = bbox(100.0, 100.0, 10.0, 10.0);
        assert_eq!(got(&mut policy, &[outside]), [false]);
        assert_eq!(got(&mut policy, &[face(3, None, None)]), [true]);
        policy.reset();
        assert_eq!(
            got(&mut policy, &[face(1, Some("obama"), Some(0.6))]),
            [true]
        );
    }
}
