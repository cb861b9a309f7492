//! Five-point similarity alignment of YuNet landmarks to the 150x150 dlib face chip, following
//! `shared/models/README.md` §3 to the letter: least-squares similarity from the template to the
//! landmarks, dlib's chip sampling convention (centre 74.5, `k = (150 s - 1) / 149`), bilinear
//! sampling with zeros outside the image, and 2x2 box-filter halving while the scale exceeds 2.

use image::RgbImage;

use crate::frame::PixelSource;
use crate::geometry::Landmarks;

pub const CHIP_SIZE: usize = 150;

/// Where YuNet's five landmarks fall inside dlib's chip (`yunet_to_dlib_chip_template.json`).
pub const TEMPLATE: [[f64; 2]; 5] = [
    [46.35, 45.56],
    [101.88, 45.58],
    [74.37, 78.70],
    [49.87, 103.94],
    [98.82, 103.90],
];

/// A 2x3 similarity matrix: `A · (u, v, 1)` maps chip coordinates to image coordinates.
pub type Similarity = [[f64; 3]; 2];

/// Least-squares similarity (rotation, uniform scale, translation; no reflection) mapping
/// `src[i]` to `dst[i]`. For 2-D points this closed form equals Umeyama's method, which is what
/// dlib's `find_similarity_transform` implements.
pub fn similarity_transform(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Similarity {
    let n = src.len().min(dst.len()) as f64;
    let mean = |pts: &[[f64; 2]]| {
        let (sx, sy) = pts
            .iter()
            .fold((0.0, 0.0), |(x, y), p| (x + p[0], y + p[1]));
        [sx / n, sy / n]
    };
    let (ms, md) = (mean(src), mean(dst));
    let (mut dot, mut cross, mut norm) = (0.0, 0.0, 0.0);
    for (s, d) in src.iter().zip(dst) {
        let (sx, sy) = (s[0] - ms[0], s[1] - ms[1]);
        let (dx, dy) = (d[0] - md[0], d[1] - md[1]);
        dot += sx * dx + sy * dy;
        cross += sx * dy - sy * dx;
        norm += sx * sx + sy * sy;
    }
    let (a, b) = if norm > 0.0 {
        (dot / norm, cross / norm)
    } else {
        (1.0, 0.0)
    };
    [
        [a, -b, md[0] - (a * ms[0] - b * ms[1])],
        [b, a, md[1] - (b * ms[0] + a * ms[1])],
    ]
}

/// A 150x150 RGB chip as planar float R, G, B in 0..255: the recognizer's input layout.
#[derive(Debug, Clone, PartialEq)]
pub struct Chip {
    pub data: Vec<f32>,
}

impl Chip {
    pub const LEN: usize = 3 * CHIP_SIZE * CHIP_SIZE;

    /// The chip rounded to 8 bits, for inspection and golden-file comparisons.
    pub fn to_rgb8(&self) -> RgbImage {
        let plane = CHIP_SIZE * CHIP_SIZE;
        RgbImage::from_fn(CHIP_SIZE as u32, CHIP_SIZE as u32, |x, y| {
            let i = y as usize * CHIP_SIZE + x as usize;
            let q = |v: f32| v.round().clamp(0.0, 255.0) as u8;
            image::Rgb([
                q(self.data[i]),
                q(self.data[plane + i]),
                q(self.data[2 * plane + i]),
            ])
        })
    }

    /// Builds a chip from an 8-bit RGB image of exactly 150x150 (a chip saved as PNG).
    pub fn from_rgb8(image: &RgbImage) -> Option<Chip> {
        if image.width() as usize != CHIP_SIZE || image.height() as usize != CHIP_SIZE {
            return None;
        }
        let plane = CHIP_SIZE * CHIP_SIZE;
        let mut data = vec![0.0; Chip::LEN];
        for (i, px) in image.pixels().enumerate() {
            for c in 0..3 {
                data[c * plane + i] = px[c] as f32;
            }
        }
        Some(Chip { data })
    }
}

/// Aligns one face to the dlib chip, reading only the pixels under it from `image` at its own
/// resolution (an RGB image, or a video frame's planes in any format).
pub fn align_face(image: &(impl PixelSource + ?Sized), landmarks: &Landmarks) -> Chip {
    let mut points: Vec<[f64; 2]> = landmarks
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect();
    let mut transform = similarity_transform(&TEMPLATE, &points);
    let mut level = 0u32;
    // Anti-aliasing in place of dlib's pyramid: each halving maps x to (x + 0.5) / 2 - 0.5.
    while transform[0][0].hypot(transform[1][0]) > 2.0 && level < 16 {
        for p in &mut points {
            p[0] = (p[0] + 0.5) / 2.0 - 0.5;
            p[1] = (p[1] + 0.5) / 2.0 - 0.5;
        }
        transform = similarity_transform(&TEMPLATE, &points);
        level += 1;
    }
    warp_chip(image, &transform, level)
}

/// Samples the chip for `transform`, given in the coordinates of the image halved `level` times.
pub fn warp_chip(image: &(impl PixelSource + ?Sized), transform: &Similarity, level: u32) -> Chip {
    let a = transform;
    let s = a[0][0].hypot(a[1][0]);
    let (r00, r01, r10, r11) = (a[0][0] / s, a[0][1] / s, a[1][0] / s, a[1][1] / s);
    let cx = a[0][0] * 75.0 + a[0][1] * 75.0 + a[0][2];
    let cy = a[1][0] * 75.0 + a[1][1] * 75.0 + a[1][2];
    let k = (CHIP_SIZE as f64 * s - 1.0) / (CHIP_SIZE as f64 - 1.0);
    let map = |c: f64, r: f64| {
        let (u, v) = (k * (c - 74.5), k * (r - 74.5));
        (cx + r00 * u + r01 * v, cy + r10 * u + r11 * v)
    };

    // Only the region the chip covers is (box-filtered and) read: a crop with a 2 px margin.
    let block = 1usize << level;
    let level_w = image.width() as usize / block;
    let level_h = image.height() as usize / block;
    let corners = [
        map(0.0, 0.0),
        map(149.0, 0.0),
        map(0.0, 149.0),
        map(149.0, 149.0),
    ];
    let min_x = corners.iter().map(|p| p.0).fold(f64::INFINITY, f64::min);
    let max_x = corners
        .iter()
        .map(|p| p.0)
        .fold(f64::NEG_INFINITY, f64::max);
    let min_y = corners.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let max_y = corners
        .iter()
        .map(|p| p.1)
        .fold(f64::NEG_INFINITY, f64::max);
    let clamp_w = |v: f64| v.clamp(0.0, level_w as f64) as usize;
    let clamp_h = |v: f64| v.clamp(0.0, level_h as f64) as usize;
    let (x0, x1) = (clamp_w(min_x.floor() - 2.0), clamp_w(max_x.ceil() + 2.0));
    let (y0, y1) = (clamp_h(min_y.floor() - 2.0), clamp_h(max_y.ceil() + 2.0));

    let mut chip = Chip {
        data: vec![0.0; Chip::LEN],
    };
    if x1 <= x0 || y1 <= y0 {
        return chip;
    }
    let crop = box_filtered_crop(image, block, x0, y0, x1 - x0, y1 - y0);
    let (cw, ch) = ((x1 - x0) as isize, (y1 - y0) as isize);
    let plane = CHIP_SIZE * CHIP_SIZE;
    for r in 0..CHIP_SIZE {
        for c in 0..CHIP_SIZE {
            let (px, py) = map(c as f64, r as f64);
            let (fx, fy) = (px - x0 as f64, py - y0 as f64);
            let (ix, iy) = (fx.floor() as isize, fy.floor() as isize);
            let (tx, ty) = ((fx - ix as f64) as f32, (fy - iy as f64) as f32);
            let mut rgb = [0.0f32; 3];
            for (dy, wy) in [(0, 1.0 - ty), (1, ty)] {
                for (dx, wx) in [(0, 1.0 - tx), (1, tx)] {
                    let (sx, sy) = (ix + dx, iy + dy);
                    if sx < 0 || sy < 0 || sx >= cw || sy >= ch {
                        continue; // outside the image: black
                    }
                    let o = (sy as usize * cw as usize + sx as usize) * 3;
                    let w = wx * wy;
                    rgb[0] += w * crop[o];
                    rgb[1] += w * crop[o + 1];
                    rgb[2] += w * crop[o + 2];
                }
            }
            let i = r * CHIP_SIZE + c;
            chip.data[i] = rgb[0];
            chip.data[plane + i] = rgb[1];
            chip.data[2 * plane + i] = rgb[2];
        }
    }
    chip
}

/// An interleaved float RGB crop of the image halved `log2(block)` times, at level
/// coordinates `(x0, y0)` with size `w` x `h`. Repeated 2x2 box filtering equals one
/// `block` x `block` average.
fn box_filtered_crop(
    image: &(impl PixelSource + ?Sized),
    block: usize,
    x0: usize,
    y0: usize,
    w: usize,
    h: usize,
) -> Vec<f32> {
    let mut row = vec![[0.0f32; 3]; w * block];
    let mut sums = vec![[0.0f32; 3]; w];
    let mut crop = vec![0.0f32; w * h * 3];
    let norm = 1.0 / (block * block) as f32;
    for y in 0..h {
        sums.fill([0.0; 3]);
        for by in 0..block {
            image.read_row(x0 * block, (y0 + y) * block + by, &mut row);
            for (x, sum) in sums.iter_mut().enumerate() {
                for px in &row[x * block..(x + 1) * block] {
                    sum[0] += px[0];
                    sum[1] += px[1];
                    sum[2] += px[2];
                }
            }
        }
        for (x, sum) in sums.iter().enumerate() {
            let o = (y * w + x) * 3;
            for c in 0..3 {
                crop[o + c] = sum[c] * norm;
            }
        }
    }
    crop
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similarity_recovers_a_known_transform() {
        // The golden similarity of obama.jpg from shared/testdata/expected/golden/golden.json.
        let (a, b, tx, ty) = (1.920024, 0.037917, 357.046294, 116.92453);
        let dst: Vec<[f64; 2]> = TEMPLATE
            .iter()
            .map(|p| [a * p[0] - b * p[1] + tx, b * p[0] + a * p[1] + ty])
            .collect();
        let t = similarity_transform(&TEMPLATE, &dst);
        let expect = [[a, -b, tx], [b, a, ty]];
        for (row, erow) in t.iter().zip(expect) {
            for (v, e) in row.iter().zip(erow) {
                assert!((v - e).abs() < 1e-9, "{t:?}");
            }
        }
    }

    #[test]
    fn identity_warp_copies_pixels() {
        // Landmarks exactly on the template: the chip is the image, shifted by dlib's half pixel
        // (chip pixel c samples the image at c + 0.5), so a ramp of 1 level/px differs by 0.5.
        let image = RgbImage::from_fn(150, 150, |x, y| image::Rgb([x as u8, y as u8, 100]));
        let landmarks: Landmarks = TEMPLATE.map(|p| [p[0] as f32, p[1] as f32]);
        let chip = align_face(&image, &landmarks);
        let back = chip.to_rgb8();
        for (x, y, px) in back.enumerate_pixels() {
            if x < 149 && y < 149 {
                let want = image.get_pixel(x, y).0;
                assert!(
                    px.0.iter().zip(want).all(|(a, b)| a.abs_diff(b) <= 1),
                    "({x},{y}): {:?} vs {want:?}",
                    px.0
                );
            }
        }
    }

    #[test]
    fn halving_keeps_a_large_face_aligned() {
        // The same face at 4x: two halvings, and the chip still matches the 1x version closely.
        let small = RgbImage::from_fn(150, 150, |x, y| {
            image::Rgb([(x * 255 / 149) as u8, (y * 255 / 149) as u8, 128])
        });
        let big = image::imageops::resize(&small, 600, 600, image::imageops::FilterType::Triangle);
        let lm_small: Landmarks = TEMPLATE.map(|p| [p[0] as f32, p[1] as f32]);
        let lm_big: Landmarks =
            lm_small.map(|p| [(p[0] + 0.5) * 4.0 - 0.5, (p[1] + 0.5) * 4.0 - 0.5]);
        let a = align_face(&small, &lm_small).to_rgb8();
        let b = align_face(&big, &lm_big).to_rgb8();
        let mad: f64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| (*x as f64 - *y as f64).abs())
            .sum::<f64>()
            / a.as_raw().len() as f64;
        assert!(mad < 2.0, "mean abs diff {mad}");
    }
}
