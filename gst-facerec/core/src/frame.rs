//! Raw video frames in the pixel formats the element accepts, read in place.
//!
//! Independent of GStreamer: the element wraps its mapped `VideoFrame` planes in a [`Frame`].
//! Nothing here converts a whole frame. The detector's network-size input is made by the
//! element (GStreamer's `VideoConverter`, one pass from the planes); alignment reads only the
//! pixels under a face through [`PixelSource`], so recognition keeps the frame's native
//! resolution; redaction ([`Frame::pixelate`]) touches only the face box.

use image::RgbImage;

use crate::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PixelFormat {
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    Rgb,
    Bgr,
    I420,
    Nv12,
}

impl PixelFormat {
    pub const ALL: [PixelFormat; 8] = [
        PixelFormat::Rgba,
        PixelFormat::Bgra,
        PixelFormat::Rgbx,
        PixelFormat::Bgrx,
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::I420,
        PixelFormat::Nv12,
    ];

    /// Bytes per pixel and the byte offsets of R, G and B, for packed RGB formats.
    pub fn packed_layout(self) -> Option<(usize, [usize; 3])> {
        match self {
            PixelFormat::Rgba | PixelFormat::Rgbx => Some((4, [0, 1, 2])),
            PixelFormat::Bgra | PixelFormat::Bgrx => Some((4, [2, 1, 0])),
            PixelFormat::Rgb => Some((3, [0, 1, 2])),
            PixelFormat::Bgr => Some((3, [2, 1, 0])),
            PixelFormat::I420 | PixelFormat::Nv12 => None,
        }
    }

    pub fn plane_count(self) -> usize {
        match self {
            PixelFormat::I420 => 3,
            PixelFormat::Nv12 => 2,
            _ => 1,
        }
    }

    /// Bytes per row and rows of each plane of a `width` x `height` frame.
    pub fn plane_sizes(self, width: usize, height: usize) -> Vec<(usize, usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        match self.packed_layout() {
            Some((bpp, _)) => vec![(width * bpp, height)],
            None if self == PixelFormat::I420 => vec![(width, height), (cw, ch), (cw, ch)],
            None => vec![(width, height), (cw * 2, ch)],
        }
    }
}

/// How YUV maps to RGB (from the caps' colorimetry): the matrix and the range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    pub kr: f32,
    pub kb: f32,
    pub full_range: bool,
}

impl YuvMatrix {
    pub const BT601: YuvMatrix = YuvMatrix {
        kr: 0.299,
        kb: 0.114,
        full_range: false,
    };
    pub const BT709: YuvMatrix = YuvMatrix {
        kr: 0.2126,
        kb: 0.0722,
        full_range: false,
    };
    pub const BT2020: YuvMatrix = YuvMatrix {
        kr: 0.2627,
        kb: 0.0593,
        full_range: false,
    };

    /// Coefficients `(y_scale, y_offset, c_scale, rv, gu, gv, bu)` for `R = ys (Y - yo) + rv V'`
    /// and so on, with `V' = cs (V - 128)`.
    fn to_rgb_coefficients(self) -> [f32; 7] {
        let kg = 1.0 - self.kr - self.kb;
        let (ys, yo, cs) = if self.full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        [
            ys,
            yo,
            cs,
            2.0 * (1.0 - self.kr),
            -2.0 * self.kb * (1.0 - self.kb) / kg,
            -2.0 * self.kr * (1.0 - self.kr) / kg,
            2.0 * (1.0 - self.kb),
        ]
    }
}

/// Where the chroma samples of a 4:2:0 frame sit relative to the luma samples (the caps'
/// `chroma-site`). Co-sited means on the first of its two luma samples; otherwise centred
/// between them. MPEG-2 and H.264 video is co-sited horizontally and centred vertically; JPEG
/// is centred in both directions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ChromaSiting {
    pub h_cosited: bool,
    pub v_cosited: bool,
}

impl ChromaSiting {
    pub const MPEG2: ChromaSiting = ChromaSiting {
        h_cosited: true,
        v_cosited: false,
    };
    pub const JPEG: ChromaSiting = ChromaSiting {
        h_cosited: false,
        v_cosited: false,
    };
}

/// One video frame: planes with their strides. `P` is `&[u8]` to read, `&mut [u8]` to redact.
#[derive(Debug)]
pub struct Frame<P> {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Plane data and stride in bytes, in the format's plane order.
    pub planes: Vec<(P, usize)>,
    pub matrix: YuvMatrix,
    pub chroma: ChromaSiting,
}

/// Something alignment can read RGB pixels from: an RGB image, or a frame's planes in place.
pub trait PixelSource {
    fn width(&self) -> u32;
    fn height(&self) -> u32;
    /// The RGB values (0..255) of pixels `x0 .. x0 + out.len()` of row `y`. Pixels outside the
    /// image read as black.
    fn read_row(&self, x0: usize, y: usize, out: &mut [[f32; 3]]);
}

impl PixelSource for RgbImage {
    fn width(&self) -> u32 {
        RgbImage::width(self)
    }

    fn height(&self) -> u32 {
        RgbImage::height(self)
    }

    fn read_row(&self, x0: usize, y: usize, out: &mut [[f32; 3]]) {
        out.fill([0.0; 3]);
        let (w, h) = (self.width() as usize, self.height() as usize);
        if y >= h || x0 >= w {
            return;
        }
        let n = out.len().min(w - x0);
        let row = &self.as_raw()[(y * w + x0) * 3..(y * w + x0 + n) * 3];
        for (o, px) in out.iter_mut().zip(row.chunks_exact(3)) {
            *o = [px[0] as f32, px[1] as f32, px[2] as f32];
        }
    }
}

impl<P: AsRef<[u8]>> Frame<P> {
    /// Checks that the planes are large enough for the format and size.
    pub fn validate(&self) -> Result<()> {
        if self.width == 0 || self.height == 0 {
            return Err(Error::InvalidFrame(format!(
                "empty frame {}x{}",
                self.width, self.height
            )));
        }
        if self.planes.len() < self.format.plane_count() {
            return Err(Error::InvalidFrame(format!(
                "{:?} needs {} planes, got {}",
                self.format,
                self.format.plane_count(),
                self.planes.len()
            )));
        }
        let (w, h) = (self.width as usize, self.height as usize);
        let needs = self.format.plane_sizes(w, h);
        for (i, ((row, rows), (data, stride))) in needs.iter().zip(&self.planes).enumerate() {
            let len = data.as_ref().len();
            if *stride < *row || len < stride * (rows - 1) + row {
                return Err(Error::InvalidFrame(format!(
                    "plane {i} of a {w}x{h} {:?} frame is too small ({len} bytes, stride {stride})",
                    self.format
                )));
            }
        }
        Ok(())
    }

    /// A copy of the frame's pixels with tight strides: what the live worker aligns from
    /// while the streaming thread draws on the original.
    pub fn to_owned_frame(&self) -> Result<Frame<Vec<u8>>> {
        let mut copy = Frame {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: Vec::new(),
            matrix: self.matrix,
            chroma: self.chroma,
        };
        self.copy_into(&mut copy)?;
        Ok(copy)
    }

    /// [`Self::to_owned_frame`] into `dest`, reusing its planes' allocations: a stream copies
    /// a frame for every detection, and fresh multi-megabyte buffers each time leave the
    /// allocator's per-thread heaps holding freed frames.
    pub fn copy_into(&self, dest: &mut Frame<Vec<u8>>) -> Result<()> {
        self.validate()?;
        let sizes = self
            .format
            .plane_sizes(self.width as usize, self.height as usize);
        dest.planes.resize_with(sizes.len(), || (Vec::new(), 0));
        for ((&(row, rows), (data, stride)), (copy, copy_stride)) in
            sizes.iter().zip(&self.planes).zip(&mut dest.planes)
        {
            let data = data.as_ref();
            copy.clear();
            copy.reserve(row * rows);
            for r in 0..rows {
                copy.extend_from_slice(&data[r * stride..r * stride + row]);
            }
            *copy_stride = row;
        }
        dest.format = self.format;
        dest.width = self.width;
        dest.height = self.height;
        dest.matrix = self.matrix;
        dest.chroma = self.chroma;
        Ok(())
    }

    fn plane(&self, index: usize) -> (&[u8], usize) {
        let (data, stride) = &self.planes[index];
        (data.as_ref(), *stride)
    }

    /// Bilinear chroma position for luma coordinate `v` on an axis of `chroma_len` samples:
    /// the two sample indices and the weight of the second.
    fn chroma_tap(v: usize, cosited: bool, chroma_len: usize) -> (usize, usize, f32) {
        let pos = if cosited {
            v as f32 / 2.0
        } else {
            (v as f32 - 0.5) / 2.0
        };
        let last = chroma_len.saturating_sub(1);
        let pos = pos.clamp(0.0, last as f32);
        let i0 = pos.floor() as usize;
        (i0, (i0 + 1).min(last), pos - i0 as f32)
    }
}

impl<P: AsRef<[u8]>> PixelSource for Frame<P> {
    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    /// Packed formats are read as they are; 4:2:0 formats interpolate chroma bilinearly at the
    /// caps' siting and convert with the caps' matrix and range. Reading a frame that fails
    /// [`Frame::validate`] yields black rather than a panic.
    fn read_row(&self, x0: usize, y: usize, out: &mut [[f32; 3]]) {
        out.fill([0.0; 3]);
        let (w, h) = (self.width as usize, self.height as usize);
        if y >= h || x0 >= w || self.validate().is_err() {
            return;
        }
        let n = out.len().min(w - x0);
        let out = &mut out[..n];
        if let Some((bpp, [ro, go, bo])) = self.format.packed_layout() {
            let (data, stride) = self.plane(0);
            let row = &data[y * stride + x0 * bpp..y * stride + (x0 + n) * bpp];
            for (o, px) in out.iter_mut().zip(row.chunks_exact(bpp)) {
                *o = [px[ro] as f32, px[go] as f32, px[bo] as f32];
            }
            return;
        }
        let [ys, yo, cs, rv, gu, gv, bu] = self.matrix.to_rgb_coefficients();
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let (luma, luma_stride) = self.plane(0);
        let (cy0, cy1, ty) = Self::chroma_tap(y, self.chroma.v_cosited, ch);
        // (u, v) at chroma column `cx`, interpolated between the two chroma rows.
        let chroma_at = |cx: usize| -> (f32, f32) {
            let sample = |row: usize| -> (f32, f32) {
                if self.format == PixelFormat::Nv12 {
                    let (uv, s) = self.plane(1);
                    (uv[row * s + cx * 2] as f32, uv[row * s + cx * 2 + 1] as f32)
                } else {
                    let ((u, us), (v, vs)) = (self.plane(1), self.plane(2));
                    (u[row * us + cx] as f32, v[row * vs + cx] as f32)
                }
            };
            let (u0, v0) = sample(cy0);
            let (u1, v1) = sample(cy1);
            (u0 + (u1 - u0) * ty, v0 + (v1 - v0) * ty)
        };
        for (i, o) in out.iter_mut().enumerate() {
            let x = x0 + i;
            let (cx0, cx1, tx) = Self::chroma_tap(x, self.chroma.h_cosited, cw);
            let (ua, va) = chroma_at(cx0);
            let (ub, vb) = chroma_at(cx1);
            let (u, v) = (ua + (ub - ua) * tx, va + (vb - va) * tx);
            let l = ys * (luma[y * luma_stride + x] as f32 - yo);
            let (u, v) = (cs * (u - 128.0), cs * (v - 128.0));
            *o = [
                (l + rv * v).clamp(0.0, 255.0),
                (l + gu * u + gv * v).clamp(0.0, 255.0),
                (l + bu * u).clamp(0.0, 255.0),
            ];
        }
    }
}

/// How much of each block's difference from the region's mean a redacted region keeps: a
/// mosaic of full-contrast block means still shows a face's layout (hair, eyes, mouth), so the
/// blocks are also pulled towards the region's mean colour.
const REDACT_CONTRAST: f32 = 0.35;

/// Replaces each `block` x `block` cell of a plane region (in that plane's samples; `channels`
/// interleaved bytes per sample, each on its own) with its mean, pulled towards the region's
/// mean by [`REDACT_CONTRAST`].
fn pixelate_plane(
    data: &mut [u8],
    stride: usize,
    channels: usize,
    (x0, y0, x1, y1): (usize, usize, usize, usize),
    block: usize,
) {
    let cells = |from: usize, to: usize| {
        (from..to)
            .step_by(block)
            .map(move |a| (a, (a + block).min(to)))
    };
    let mut means = Vec::new();
    let mut total = [0f64; 4];
    for (by, by1) in cells(y0, y1) {
        for (bx, bx1) in cells(x0, x1) {
            let mut sums = [0u64; 4];
            for row in by..by1 {
                let line = &data[row * stride + bx * channels..row * stride + bx1 * channels];
                for px in line.chunks_exact(channels) {
                    for (s, v) in sums.iter_mut().zip(px) {
                        *s += *v as u64;
                    }
                }
            }
            let count = ((by1 - by) * (bx1 - bx)) as u64;
            let mean = sums.map(|s| s as f32 / count as f32);
            for (t, s) in total.iter_mut().zip(sums) {
                *t += s as f64;
            }
            means.push(mean);
        }
    }
    let area = ((x1 - x0) * (y1 - y0)) as f64;
    let region = total.map(|t| (t / area) as f32);
    let mut means = means.into_iter();
    for (by, by1) in cells(y0, y1) {
        for (bx, bx1) in cells(x0, x1) {
            let mean = means.next().unwrap_or(region);
            let value: Vec<u8> = (0..channels)
                .map(|c| {
                    (region[c] + (mean[c] - region[c]) * REDACT_CONTRAST)
                        .round()
                        .clamp(0.0, 255.0) as u8
                })
                .collect();
            for row in by..by1 {
                let line = &mut data[row * stride + bx * channels..row * stride + bx1 * channels];
                for px in line.chunks_exact_mut(channels) {
                    px.copy_from_slice(&value);
                }
            }
        }
    }
}

impl<P: AsRef<[u8]> + AsMut<[u8]>> Frame<P> {
    /// Redacts a rectangle (clipped to the frame): a low-contrast mosaic of `cells` blocks
    /// across its longer side. On 4:2:0 frames the rectangle grows to even coordinates so that luma
    /// and chroma are redacted over the same pixels.
    pub fn pixelate(&mut self, x: i64, y: i64, w: i64, h: i64, cells: u32) -> Result<()> {
        self.validate()?;
        let (fw, fh) = (self.width as i64, self.height as i64);
        let (mut x0, mut y0) = (x.clamp(0, fw), y.clamp(0, fh));
        let (mut x1, mut y1) = (
            x.saturating_add(w).clamp(0, fw),
            y.saturating_add(h).clamp(0, fh),
        );
        if x1 <= x0 || y1 <= y0 {
            return Ok(());
        }
        let yuv = self.format.packed_layout().is_none();
        if yuv {
            (x0, y0) = (x0 & !1, y0 & !1);
            (x1, y1) = ((x1 + 1).min(fw + 1) & !1, (y1 + 1).min(fh + 1) & !1);
            (x1, y1) = (x1.min(fw), y1.min(fh));
        }
        let (x0, y0, x1, y1) = (x0 as usize, y0 as usize, x1 as usize, y1 as usize);
        let longest = (x1 - x0).max(y1 - y0);
        let mut block = longest.div_ceil(cells.max(1) as usize).max(2);
        if yuv {
            block += block % 2;
        }
        match self.format.packed_layout() {
            Some((bpp, _)) => {
                let (data, stride) = &mut self.planes[0];
                pixelate_plane(data.as_mut(), *stride, bpp, (x0, y0, x1, y1), block);
            }
            None => {
                let chroma_rect = (x0 / 2, y0 / 2, x1.div_ceil(2), y1.div_ceil(2));
                let nv12 = self.format == PixelFormat::Nv12;
                for (index, (data, stride)) in self.planes.iter_mut().enumerate() {
                    let (rect, b, channels) = match index {
                        0 => ((x0, y0, x1, y1), block, 1),
                        _ => (chroma_rect, block / 2, if nv12 { 2 } else { 1 }),
                    };
                    pixelate_plane(data.as_mut(), *stride, channels, rect, b);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame whose every pixel has one colour, given as raw plane bytes.
    fn flat_frame(format: PixelFormat, w: usize, h: usize, rgb: [u8; 3]) -> Frame<Vec<u8>> {
        // BT.601 limited-range Y'CbCr of the colour, for the YUV formats.
        let [r, g, b] = rgb.map(|v| v as f32);
        let yv = (16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0).round() as u8;
        let uv = (128.0 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255.0).round() as u8;
        let vv = (128.0 + (112.0 * r - 93.786 * g - 18.214 * b) / 255.0).round() as u8;
        let planes = match format.packed_layout() {
            Some((bpp, offsets)) => {
                let mut px = vec![0u8; bpp];
                for (c, o) in offsets.iter().enumerate() {
                    px[*o] = rgb[c];
                }
                vec![(px.repeat(w * h), w * bpp)]
            }
            None if format == PixelFormat::I420 => vec![
                (vec![yv; w * h], w),
                (vec![uv; w / 2 * h / 2], w / 2),
                (vec![vv; w / 2 * h / 2], w / 2),
            ],
            None => vec![(vec![yv; w * h], w), ([uv, vv].repeat(w * h / 4), w)],
        };
        Frame {
            format,
            width: w as u32,
            height: h as u32,
            planes,
            matrix: YuvMatrix::BT601,
            chroma: ChromaSiting::MPEG2,
        }
    }

    #[test]
    fn every_format_reads_back_its_colour() {
        for format in PixelFormat::ALL {
            let frame = flat_frame(format, 16, 8, [30, 160, 220]);
            let mut row = [[0.0f32; 3]; 16];
            frame.read_row(0, 5, &mut row);
            for px in row {
                for (got, want) in px.iter().zip([30.0, 160.0, 220.0]) {
                    assert!((got - want).abs() < 1.5, "{format:?}: {px:?}");
                }
            }
        }
    }

    #[test]
    fn chroma_is_interpolated_at_its_siting() {
        // I420 4x2 with U = V = 128 except chroma column 1, whose V is 168: a red step that stays in range.
        let mut frame = flat_frame(PixelFormat::I420, 4, 2, [128, 128, 128]);
        frame.planes[2].0[1] = 168;
        let red = |frame: &Frame<Vec<u8>>| {
            let mut row = [[0.0f32; 3]; 4];
            frame.read_row(0, 0, &mut row);
            row.map(|p| p[0] - p[1])
        };
        // Co-sited: luma 2 sits on chroma 1 and luma 1 halfway; centred: luma 1 is a quarter in.
        let cosited = red(&frame);
        frame.chroma = ChromaSiting::JPEG;
        let centred = red(&frame);
        let full = cosited[2];
        assert!(full > 60.0, "{cosited:?}");
        assert!((cosited[1] - full / 2.0).abs() < 2.0, "{cosited:?}");
        assert!(cosited[0].abs() < 2.0, "{cosited:?}");
        assert!((centred[1] - full / 4.0).abs() < 2.0, "{centred:?}");
        assert!((centred[2] - full * 3.0 / 4.0).abs() < 2.0, "{centred:?}");
    }

    #[test]
    fn owned_copy_is_tight_and_equal() {
        let mut frame = flat_frame(PixelFormat::Nv12, 6, 4, [10, 20, 30]);
        // Give the luma plane a padded stride of 8, with junk in the padding.
        let luma: Vec<u8> = (0..4)
            .flat_map(|r| [[r as u8; 6].to_vec(), vec![99; 2]].concat())
            .collect();
        frame.planes[0] = (luma, 8);
        let copy = frame.to_owned_frame().unwrap();
        assert_eq!(copy.planes[0].1, 6);
        assert_eq!(copy.planes[0].0.len(), 24);
        assert!(!copy.planes[0].0.contains(&99));
        let (mut a, mut b) = ([[0.0f32; 3]; 6], [[0.0f32; 3]; 6]);
        frame.read_row(0, 3, &mut a);
        copy.read_row(0, 3, &mut b);
        assert_eq!(a, b);
    }

    /// A copy into an earlier copy of another format and size equals a fresh one, and reuses
    /// the earlier copy's allocation where it is big enough (the live worker's spare frame).
    #[test]
    fn copy_into_a_spare_equals_a_fresh_copy_and_keeps_its_buffers() {
        let big = flat_frame(PixelFormat::I420, 16, 8, [200, 30, 60]).to_owned_frame();
        let mut spare = big.unwrap();
        let luma_before = spare.planes[0].0.as_ptr();
        let frame = flat_frame(PixelFormat::Nv12, 6, 4, [10, 20, 30]);
        frame.copy_into(&mut spare).unwrap();
        let fresh = frame.to_owned_frame().unwrap();
        assert_eq!(spare.planes, fresh.planes);
        assert_eq!(
            (spare.format, spare.width, spare.height),
            (PixelFormat::Nv12, 6, 4)
        );
        assert_eq!(spare.planes[0].0.as_ptr(), luma_before);
        let (mut a, mut b) = ([[0.0f32; 3]; 6], [[0.0f32; 3]; 6]);
        spare.read_row(0, 3, &mut a);
        fresh.read_row(0, 3, &mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn pixelate_flattens_inside_and_keeps_outside_in_every_format() {
        for format in PixelFormat::ALL {
            let mut frame = flat_frame(format, 16, 16, [0, 0, 0]);
            // A white vertical stripe every other column inside the rectangle (luma/packed).
            let (bpp, stride) = match format.packed_layout() {
                Some((bpp, _)) => (bpp, frame.planes[0].1),
                None => (1, frame.planes[0].1),
            };
            for y in 0..16 {
                for x in (0..16).step_by(2) {
                    for c in 0..bpp.min(3) {
                        frame.planes[0].0[y * stride + x * bpp + c] = 235;
                    }
                }
            }
            let before: Vec<u8> = frame.planes[0].0.clone();
            frame.pixelate(4, 4, 8, 8, 2).unwrap();
            let after = &frame.planes[0].0;
            let px = |data: &[u8], x: usize, y: usize| data[y * stride + x * bpp];
            // Inside: the stripes average out to one value per 4x4 block.
            assert_eq!(px(after, 4, 4), px(after, 5, 4), "{format:?}");
            assert!(px(after, 4, 4) > 100 && px(after, 4, 4) < 160, "{format:?}");
            // Outside: untouched.
            for (x, y) in [(3, 4), (12, 4), (4, 3), (4, 12), (0, 0)] {
                assert_eq!(
                    px(after, x, y),
                    px(&before, x, y),
                    "{format:?} at ({x},{y})"
                );
            }
        }
    }

    #[test]
    fn short_planes_are_refused() {
        let mut frame = flat_frame(PixelFormat::Nv12, 16, 8, [0, 0, 0]);
        frame.planes[1].0.truncate(10);
        let err = frame.to_owned_frame().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid frame: plane 1 of a 16x8 Nv12 frame is too small (10 bytes, stride 16)"
        );
        let mut row = [[1.0f32; 3]; 4];
        frame.read_row(0, 0, &mut row);
        assert_eq!(row, [[0.0; 3]; 4], "an invalid frame reads as black");
        assert!(frame.pixelate(0, 0, 4, 4, 2).is_err());
    }
}
