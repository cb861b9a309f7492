//! Face detection in still photos of any size: a small pyramid of scales, the large ones cut
//! into tiles, merged into one list of faces in the photo's own pixel coordinates.
//!
//! YuNet finds faces from about 16 to 450 px wide in the image it is given (measured on
//! `obama.jpg`, `biden.jpg`, `two_people.jpg` and four `knn_examples` photos scaled from 0.05x
//! to 4x: every face of 20–420 px was found at score ≥ 0.85, none of 550 px or more), and its
//! box depends a little on that size (a face found at 130 px instead of 232 px was boxed 3.9%
//! wider). A phone photo with a 1500 px face therefore needs a downscale, and a 20 px face in an
//! 8000 px photo needs the native pixels. The pyramid:
//!
//! * level 0 is the photo at native resolution, so faces in YuNet's range get exactly the
//!   boxes of a native-resolution run (the reference outputs);
//! * each further level halves the previous one, down to a long side of at most 320, then one
//!   last level at [`WHOLE_SIDE`] (256) for a face that fills the whole photo. With a step of 2,
//!   every face of 225 px or more is seen at 225–450 px, inside YuNet's range, on some level.
//!   A coarser level reports only faces of at least [`MIN_COARSE_FACE`] px at a score of at
//!   least [`COARSE_MIN_SCORE`]: smaller ones are the finer level's to judge;
//! * a level larger than [`WHOLE_MAX_PIXELS`] is cut into tiles of [`TILE`] px overlapping by
//!   [`TILE_OVERLAP`] px, made (downscaled from the photo) and detected one at a time, so
//!   memory stays bounded whatever the photo's size: one tile and its network input.
//!
//! Merging: a detection touching an inner tile edge is a face cut by the tile and is dropped
//! (the overlap is wider than [`MAX_FACE`], so such a face is whole in the neighbouring tile, or
//! large enough for the next level); a detection mostly inside a detection at least twice its
//! area is a part of that face and is dropped; the rest go through NMS, taking first the
//! detections no wider than [`MAX_FACE`] on their level, finest level first, so that a face
//! seen at several scales keeps the box of the finest scale that sees it whole and in range.
//!
//! On an upscaled photo that finest level can show a face at 2x or 4x its real detail, blurred;
//! YuNet boxes it 2–10% differently from the original (`tests/stills.rs` lists the cases). Cost,
//! measured on a shared 2-core machine: 0.6–6 s for the 4x copies of the test photos (9–34 MP),
//! 3–26 s for the 8x copies (up to 137 MP), against 0.03–0.16 s at their native size.

use std::borrow::Cow;

use image::RgbImage;

use crate::detect::{Detection, Detector, NetworkInput};
use crate::{Error, Result};

/// The largest photo `load_rgb` decodes, in pixels. Phone cameras write up to about 50 MP
/// (8160x6120 = 49.9 MP); 64 MP (8192x8192) admits those with margin, while a decompression
/// bomb (a 1.5 MB PNG of 40000x40000) is refused from its header. A 64 MP photo decodes to
/// 192 MB of RGB.
pub const MAX_IMAGE_PIXELS: u64 = 64_000_000;

/// The longest side `load_rgb` accepts: the decoders refuse past it before allocating. Anything
/// longer than this is over the pixel cap unless it is a sliver, and no face photo is.
pub const MAX_IMAGE_SIDE: u32 = 32_768;

/// The most the decoder may allocate: the decoded buffer of a `MAX_IMAGE_PIXELS` image in the
/// widest format the decoders produce (16-bit RGBA, 8 bytes a pixel).
pub const MAX_IMAGE_ALLOC: u64 = MAX_IMAGE_PIXELS * 8;

/// Loads an image file (JPEG or PNG, any bit depth or alpha) as 8-bit RGB, upright according
/// to its EXIF orientation. The size comes from the header and is checked against
/// [`MAX_IMAGE_PIXELS`] before anything is decoded, and the decoder runs under `image`'s
/// [`Limits`](image::Limits) (sides and allocation), so a decompression bomb costs nothing.
///
/// Large JPEGs are not decoded downscaled: `image` 0.25 decodes JPEG with zune-jpeg, which has
/// no scaled (1/2, 1/4, 1/8) IDCT, and `image` exposes no such option; they are refused past the
/// cap instead.
pub fn load_rgb(path: &std::path::Path) -> Result<RgbImage> {
    use image::ImageDecoder;
    let image_error = |e: image::ImageError| Error::Image {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    let mut reader = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?;
    // The PNG decoder takes its limits when it is made (its chunk buffers count against
    // `max_alloc`); the sides are left to our own check below, which gives the clearer line.
    // The full limits are set before any pixel is decoded.
    // The other decoders only read the header when they are made.
    if reader.format() == Some(image::ImageFormat::Png) {
        let mut header_limits = image::Limits::default();
        header_limits.max_alloc = Some(MAX_IMAGE_ALLOC);
        reader.limits(header_limits);
    } else {
        reader.no_limits();
    }
    let mut decoder = reader.into_decoder().map_err(image_error)?;
    let (width, height) = decoder.dimensions();
    check_image_size(path, width, height)?;
    decoder.set_limits(limits).map_err(image_error)?;
    let orientation = decoder.orientation().map_err(image_error)?;
    let mut image = image::DynamicImage::from_decoder(decoder).map_err(image_error)?;
    image.apply_orientation(orientation);
    Ok(image.to_rgb8())
}

/// Refuses an image larger than [`MAX_IMAGE_PIXELS`] (or longer than [`MAX_IMAGE_SIDE`]).
pub fn check_image_size(path: &std::path::Path, width: u32, height: u32) -> Result<()> {
    let pixels = width as u64 * height as u64;
    if pixels > MAX_IMAGE_PIXELS || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE {
        return Err(Error::Image {
            path: path.to_path_buf(),
            reason: format!(
                "{width}x{height} pixels ({:.1} megapixels) is larger than the limit of {} megapixels and {MAX_IMAGE_SIDE} pixels a side; scale it down",
                pixels as f64 / 1e6,
                MAX_IMAGE_PIXELS / 1_000_000
            ),
        });
    }
    Ok(())
}

/// The long side of the last level, for a face that fills the photo.
pub const WHOLE_SIDE: u32 = 256;
/// The widest face (in the pixels of its level) a level is trusted with when a coarser level
/// also sees it: YuNet's range. The widest in the native reference outputs is 439 px
/// (`biden2.jpg`), found at native resolution with score 0.893.
pub const MAX_FACE: f32 = 448.0;
/// A level up to this many pixels is detected in one piece (2048x2048: 50 MB of network input).
pub const WHOLE_MAX_PIXELS: u64 = 2048 * 2048;
/// The side of a tile (a multiple of 32, so that tiles keep the anchor grid of the full image).
pub const TILE: u32 = 1536;
/// How much neighbouring tiles overlap: more than [`MAX_FACE`] and the edge margins, so that a
/// face a level is trusted with lies whole inside one tile.
pub const TILE_OVERLAP: u32 = 512;
/// The narrowest face (in its level's pixels) a level coarser than the native one reports: a
/// narrower one is under 320 px on the next finer level, well inside YuNet's range there, so
/// that level is the one to judge it. Without this, `dlib/dogs.jpg` (no face at native
/// resolution, a dog at 0.770) gave a "face" of 0.857 at half size, 80 px wide.
pub const MIN_COARSE_FACE: f32 = 160.0;
/// The least score of a detection from a level coarser than the native one. Those levels add
/// only faces too large for the native pixels, which YuNet scores at 0.86 or more (the range
/// measurement above); below 0.8 they fired on a hand, clothing and a shoulder of the reference
/// photos (4 detections of 0.63–0.70 at threshold 0.6), where the native reference has nothing.
pub const COARSE_MIN_SCORE: f32 = 0.8;
/// A detection within this many pixels of an inner tile edge is taken for a face cut by it.
const EDGE_MARGIN: f32 = 2.0;
/// A detection with at least this share of its area inside a detection of at least
/// [`PART_AREA_RATIO`] times its area is a part of that face (an eye region, a cut-off half).
const PART_COVERED: f32 = 0.5;
const PART_AREA_RATIO: f32 = 2.0;

/// How a still photo is scanned for faces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StillScales {
    /// The pyramid of this module: faces of any size in photos of any size.
    #[default]
    Pyramid,
    /// One detection pass on the photo scaled down to this width (`0`: the native resolution),
    /// as the video path does. A native pass on a large photo needs a network input of 12 bytes
    /// per pixel.
    Single(u32),
}

/// The scales of the pyramid for a photo of this size, finest (1.0) first.
pub fn pyramid_scales(width: u32, height: u32) -> Vec<f32> {
    let long = width.max(height).max(1) as f32;
    let mut scales = vec![1.0f32];
    loop {
        let last = *scales.last().expect("starts with 1.0");
        // Stop when the level is already about as small as the last one would be.
        if long * last <= WHOLE_SIDE as f32 * 1.25 {
            break;
        }
        scales.push((last / 2.0).max(WHOLE_SIDE as f32 / long));
    }
    scales
}

/// Tile origins along one side of `len` pixels: multiples of 32, consecutive tiles overlapping
/// by at least [`TILE_OVERLAP`], the last one reaching the end.
pub fn tile_origins(len: u32) -> Vec<u32> {
    let mut origins = vec![0u32];
    let stride = TILE - TILE_OVERLAP;
    loop {
        let last = *origins.last().expect("starts with 0");
        if last + TILE >= len {
            return origins;
        }
        let to_end = (len - TILE).div_ceil(32) * 32;
        origins.push((last + stride).min(to_end));
    }
}

/// A detection and the pyramid level it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelDetection {
    pub level: usize,
    /// No wider than [`MAX_FACE`] on its level, or from the coarsest level.
    pub in_range: bool,
    pub detection: Detection,
}

/// Detects the faces of a still photo. Boxes and landmarks are in `image`'s pixels.
pub fn detect_still(
    detector: &mut Detector,
    image: &RgbImage,
    scales: StillScales,
) -> Result<Vec<Detection>> {
    match scales {
        StillScales::Single(width) => {
            detector.detect_network(&NetworkInput::from_image(image, width))
        }
        StillScales::Pyramid => {
            let found = detect_levels(detector, image)?;
            Ok(merge(found, detector.config.nms_threshold))
        }
    }
}

/// Every level's detections before they are merged, without those cut by a tile edge.
pub fn detect_levels(detector: &mut Detector, image: &RgbImage) -> Result<Vec<LevelDetection>> {
    let scales = pyramid_scales(image.width(), image.height());
    let coarsest = scales.len() - 1;
    let mut found = Vec::new();
    for (level, &scale) in scales.iter().enumerate() {
        for (detection, width) in detect_level(detector, image, scale)? {
            if level > 0 && (detection.score < COARSE_MIN_SCORE || width < MIN_COARSE_FACE) {
                continue;
            }
            found.push(LevelDetection {
                level,
                in_range: level == coarsest || width <= MAX_FACE,
                detection,
            });
        }
    }
    Ok(found)
}

/// The detections of one level, in the photo's coordinates, each with its box width in the
/// level's pixels; those cut by an inner tile edge are left out.
fn detect_level(
    detector: &mut Detector,
    image: &RgbImage,
    scale: f32,
) -> Result<Vec<(Detection, f32)>> {
    let (lw, lh) = if scale >= 1.0 {
        (image.width(), image.height())
    } else {
        (
            ((image.width() as f32 * scale).round() as u32).max(1),
            ((image.height() as f32 * scale).round() as u32).max(1),
        )
    };
    // The pixels of the level in [x, x + w) x [y, y + h), made only when needed.
    let region = |x: u32, y: u32, w: u32, h: u32| -> Cow<'_, RgbImage> {
        if (lw, lh) == (image.width(), image.height()) {
            if (w, h) == (lw, lh) {
                Cow::Borrowed(image)
            } else {
                Cow::Owned(image::imageops::crop_imm(image, x, y, w, h).to_image())
            }
        } else {
            Cow::Owned(area_downscale_region(image, lw, lh, x, y, w, h))
        }
    };
    let mut out = Vec::new();
    if (lw as u64) * (lh as u64) <= WHOLE_MAX_PIXELS {
        out = detector.detect_network(&NetworkInput {
            image: region(0, 0, lw, lh),
            frame_width: lw,
            frame_height: lh,
        })?;
    } else {
        let (xs, ys) = (tile_origins(lw), tile_origins(lh));
        for &oy in &ys {
            for &ox in &xs {
                let (tw, th) = (TILE.min(lw - ox), TILE.min(lh - oy));
                let found = detector.detect_network(&NetworkInput {
                    image: region(ox, oy, tw, th),
                    frame_width: tw,
                    frame_height: th,
                })?;
                let inner = InnerEdges {
                    left: ox > 0,
                    top: oy > 0,
                    right: ox + tw < lw,
                    bottom: oy + th < lh,
                };
                for mut d in found {
                    if inner.cuts(&d, tw, th) {
                        continue;
                    }
                    shift(&mut d, ox as f32, oy as f32);
                    out.push(d);
                }
            }
        }
    }
    let rx = image.width() as f32 / lw as f32;
    let ry = image.height() as f32 / lh as f32;
    Ok(out
        .into_iter()
        .map(|mut d| {
            let width = d.bbox.w;
            if (lw, lh) != (image.width(), image.height()) {
                to_frame(&mut d, rx, ry);
            }
            (d, width)
        })
        .collect())
}

/// Which edges of a tile lie inside the level (and so may cut a face).
struct InnerEdges {
    left: bool,
    top: bool,
    right: bool,
    bottom: bool,
}

impl InnerEdges {
    fn cuts(&self, d: &Detection, tw: u32, th: u32) -> bool {
        let b = d.bbox;
        (self.left && b.x < EDGE_MARGIN)
            || (self.top && b.y < EDGE_MARGIN)
            || (self.right && b.x + b.w > tw as f32 - EDGE_MARGIN)
            || (self.bottom && b.y + b.h > th as f32 - EDGE_MARGIN)
    }
}

fn shift(d: &mut Detection, dx: f32, dy: f32) {
    d.bbox.x += dx;
    d.bbox.y += dy;
    for p in &mut d.landmarks {
        *p = [p[0] + dx, p[1] + dy];
    }
}

/// Maps level coordinates to the photo's (pixel centres at integer coordinates in both, as in
/// [`Detector::detect_network`]).
fn to_frame(d: &mut Detection, rx: f32, ry: f32) {
    let map = |v: f32, r: f32| (v + 0.5) * r - 0.5;
    d.bbox.x = map(d.bbox.x, rx);
    d.bbox.y = map(d.bbox.y, ry);
    d.bbox.w *= rx;
    d.bbox.h *= ry;
    for p in &mut d.landmarks {
        *p = [map(p[0], rx), map(p[1], ry)];
    }
}

/// The area of `inner` that lies inside `outer`, as a share of `inner`'s area.
fn covered(inner: &Detection, outer: &Detection) -> f32 {
    let (a, b) = (inner.bbox, outer.bbox);
    let w = ((a.x + a.w).min(b.x + b.w) - a.x.max(b.x)).max(0.0);
    let h = ((a.y + a.h).min(b.y + b.h) - a.y.max(b.y)).max(0.0);
    let area = a.area();
    if area <= 0.0 { 0.0 } else { w * h / area }
}

/// Merges the levels' detections into one list of faces (see the module documentation):
/// parts of a bigger face are dropped, then NMS keeps the finer level's box of a face.
pub fn merge(found: Vec<LevelDetection>, nms_threshold: f32) -> Vec<Detection> {
    let parts: Vec<bool> = found
        .iter()
        .map(|d| {
            found.iter().any(|e| {
                e.detection.bbox.area() >= PART_AREA_RATIO * d.detection.bbox.area()
                    && covered(&d.detection, &e.detection) >= PART_COVERED
            })
        })
        .collect();
    let mut candidates: Vec<LevelDetection> = found
        .into_iter()
        .zip(parts)
        .filter_map(|(d, part)| (!part).then_some(d))
        .collect();
    candidates.sort_by(|a, b| {
        (b.in_range.cmp(&a.in_range))
            .then(a.level.cmp(&b.level))
            .then(b.detection.score.total_cmp(&a.detection.score))
    });
    let mut kept: Vec<Detection> = Vec::new();
    for c in candidates {
        if kept
            .iter()
            .all(|k| k.bbox.iou(&c.detection.bbox) <= nms_threshold)
        {
            kept.push(c.detection);
        }
    }
    kept.sort_by(|a, b| b.score.total_cmp(&a.score));
    kept
}

/// Scales an RGB image down by exact area averaging (every source pixel contributes its
/// overlap with the destination pixel). The photo must be at least as large as the destination
/// on both sides.
pub fn area_downscale(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    area_downscale_region(image, width, height, 0, 0, width, height)
}

/// The pixels `[x0, x0 + w) x [y0, y0 + h)` of [`area_downscale`]`(image, width, height)`,
/// computed one row at a time from the source pixels under that region only: the only buffers
/// are the result and one row of sums, so a tile of a 12000x12000 photo's downscale costs no
/// more than the tile.
pub fn area_downscale_region(
    image: &RgbImage,
    width: u32,
    height: u32,
    x0: u32,
    y0: u32,
    w: u32,
    h: u32,
) -> RgbImage {
    let (sw, sh) = (image.width() as usize, image.height() as usize);
    let (dw, dh) = (width as usize, height as usize);
    assert!(
        dw >= 1 && dh >= 1 && dw <= sw && dh <= sh,
        "area_downscale only shrinks"
    );
    assert!(
        x0 + w <= width && y0 + h <= height,
        "region outside the image"
    );
    // Destination pixel i covers source [i src/dst, (i+1) src/dst): the source pixels it
    // overlaps with their weights, in units of 1/dst of a source pixel (integers).
    let spans = |src: usize, dst: usize, from: u32, count: u32| -> Vec<Vec<(usize, u64)>> {
        (from as usize..(from + count) as usize)
            .map(|i| {
                let (start, end) = (i * src, (i + 1) * src);
                let mut parts = Vec::new();
                let mut s = start;
                while s < end {
                    let pixel = s / dst;
                    let next = ((pixel + 1) * dst).min(end);
                    parts.push((pixel, (next - s) as u64));
                    s = next;
                }
                parts
            })
            .collect()
    };
    let cols = spans(sw, dw, x0, w);
    let rows = spans(sh, dh, y0, h);
    // Source columns under the region.
    let first = cols.first().map_or(0, |c| c[0].0);
    let last = cols.last().map_or(0, |c| c[c.len() - 1].0);
    let raw = image.as_raw();
    let mut out = RgbImage::new(w, h);
    let mut sums = vec![0u64; (last + 1 - first) * 3];
    // The weights of one destination pixel add up to sw * sh.
    let total = (sw as u64) * (sh as u64);
    let ow = w as usize;
    for (j, row_parts) in rows.iter().enumerate() {
        sums.fill(0);
        for &(y, wy) in row_parts {
            let src = &raw[(y * sw + first) * 3..(y * sw + last + 1) * 3];
            for (acc, &v) in sums.iter_mut().zip(src) {
                *acc += wy * v as u64;
            }
        }
        let dst_row = &mut out.as_mut()[j * ow * 3..(j + 1) * ow * 3];
        for (i, col_parts) in cols.iter().enumerate() {
            for ch in 0..3 {
                let s: u64 = col_parts
                    .iter()
                    .map(|&(x, wx)| wx * sums[(x - first) * 3 + ch])
                    .sum();
                dst_row[i * 3 + ch] = ((s + total / 2) / total).min(255) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::BBox;

    fn det(x: f32, y: f32, w: f32, score: f32) -> Detection {
        Detection {
            bbox: BBox { x, y, w, h: w },
            landmarks: [[x + w / 2.0, y + w / 2.0]; 5],
            score,
        }
    }

    #[test]
    fn scales_halve_down_to_256() {
        assert_eq!(pyramid_scales(320, 240), vec![1.0]);
        assert_eq!(pyramid_scales(500, 375), vec![1.0, 256.0 / 500.0]);
        assert_eq!(pyramid_scales(2000, 1428), vec![1.0, 0.5, 0.25, 0.128]);
        assert_eq!(
            pyramid_scales(8000, 6000),
            vec![1.0, 0.5, 0.25, 0.125, 0.0625, 0.032]
        );
        for (w, h) in [
            (700, 500),
            (3000, 2000),
            (7760, 17632),
            (12000, 12000),
            (40000, 100),
        ] {
            let s = pyramid_scales(w, h);
            assert!(s.windows(2).all(|p| p[0] / p[1] <= 2.0), "{s:?}");
            assert!(w.max(h) as f32 * s.last().unwrap() <= 320.0, "{w}x{h}");
        }
    }

    #[test]
    fn tiles_cover_the_side_with_the_overlap() {
        assert_eq!(tile_origins(1536), vec![0]);
        assert_eq!(tile_origins(2000), vec![0, 480]);
        for len in [1537, 2561, 3000, 12000, 17632] {
            let o = tile_origins(len);
            assert!(o.iter().all(|v| v % 32 == 0), "{o:?}");
            assert!(o.last().unwrap() + TILE >= len, "{len}: {o:?}");
            assert!(
                o.windows(2).all(|p| p[0] + TILE - p[1] >= TILE_OVERLAP),
                "{len}: {o:?}"
            );
        }
        assert_eq!(tile_origins(12000).len(), 12);
    }

    #[test]
    fn the_finer_box_wins_and_parts_of_a_big_face_go() {
        let found = vec![
            // A face seen at level 0 and, with a slightly different box, at level 1.
            LevelDetection {
                in_range: true,
                level: 1,
                detection: det(98.0, 100.0, 52.0, 0.95),
            },
            LevelDetection {
                in_range: true,
                level: 0,
                detection: det(100.0, 100.0, 50.0, 0.90),
            },
            // A big face at level 2, and an eye-sized detection inside it at level 0.
            LevelDetection {
                in_range: true,
                level: 2,
                detection: det(1000.0, 1000.0, 800.0, 0.85),
            },
            LevelDetection {
                in_range: true,
                level: 0,
                detection: det(1200.0, 1200.0, 100.0, 0.92),
            },
        ];
        let kept = merge(found, 0.3);
        assert_eq!(
            kept.iter().map(|d| d.bbox).collect::<Vec<_>>(),
            vec![
                det(100.0, 100.0, 50.0, 0.0).bbox,
                det(1000.0, 1000.0, 800.0, 0.0).bbox
            ]
        );
    }

    #[test]
    fn a_face_too_wide_for_its_level_yields_to_a_coarser_one() {
        let at = |level, in_range, x| LevelDetection {
            level,
            in_range,
            detection: det(x, 0.0, 460.0, 0.9),
        };
        let kept = merge(vec![at(0, false, 0.0), at(1, true, 10.0)], 0.3);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].bbox.x, 10.0);
        // Alone, it is kept.
        assert_eq!(merge(vec![at(0, false, 0.0)], 0.3).len(), 1);
    }

    #[test]
    fn a_detection_cut_by_an_inner_tile_edge_is_dropped() {
        let inner = InnerEdges {
            left: true,
            top: false,
            right: false,
            bottom: true,
        };
        assert!(inner.cuts(&det(1.0, 50.0, 40.0, 0.9), 1536, 1536));
        assert!(inner.cuts(&det(500.0, 1500.0, 40.0, 0.9), 1536, 1536));
        // Edges of the photo itself are not tile cuts.
        assert!(!inner.cuts(&det(500.0, 0.0, 40.0, 0.9), 1536, 1536));
        assert!(!inner.cuts(&det(1500.0, 50.0, 40.0, 0.9), 1536, 1536));
        assert!(!inner.cuts(&det(500.0, 500.0, 40.0, 0.9), 1536, 1536));
    }

    #[test]
    fn area_downscale_averages_exactly() {
        let mut img = RgbImage::new(4, 2);
        for (x, y, p) in img.enumerate_pixels_mut() {
            *p = image::Rgb([(x * 10 + y * 100) as u8, 7, 255]);
        }
        let out = area_downscale(&img, 2, 1);
        // (0 + 10 + 100 + 110) / 4 = 55, (20 + 30 + 120 + 130) / 4 = 75.
        assert_eq!(out.as_raw(), &vec![55, 7, 255, 75, 7, 255]);
        // A fractional ratio: 3 -> 2 columns, weights 2:1 and 1:2 (in thirds).
        let row = RgbImage::from_raw(3, 1, vec![0, 0, 0, 30, 30, 30, 90, 90, 90]).unwrap();
        assert_eq!(
            area_downscale(&row, 2, 1).as_raw(),
            &vec![10, 10, 10, 70, 70, 70]
        );
        // Same size is a copy.
        assert_eq!(area_downscale(&img, 4, 2), img);
        // A region is that part of the whole downscale.
        let mut big = RgbImage::new(97, 61);
        for (x, y, p) in big.enumerate_pixels_mut() {
            *p = image::Rgb([
                (x * 7 % 256) as u8,
                (y * 13 % 256) as u8,
                ((x * y) % 256) as u8,
            ]);
        }
        let whole = area_downscale(&big, 40, 25);
        let part = area_downscale_region(&big, 40, 25, 11, 7, 20, 13);
        assert_eq!(
            part,
            image::imageops::crop_imm(&whole, 11, 7, 20, 13).to_image()
        );
    }
}
