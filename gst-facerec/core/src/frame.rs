//! Raw video frames in the pixel formats the element accepts, converted to RGB for inference.
//! Independent of GStreamer: the element wraps its mapped `VideoFrame` planes in a [`Frame`].

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
}

/// How YUV maps to RGB (from the caps' colorimetry).
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

    /// The Y, U, V bytes of an RGB colour, for drawing on YUV frames.
    pub fn rgb_to_yuv(self, rgb: [u8; 3]) -> [u8; 3] {
        let [r, g, b] = rgb.map(|v| v as f32);
        let kg = 1.0 - self.kr - self.kb;
        let y = self.kr * r + kg * g + self.kb * b;
        let u = (b - y) / (2.0 * (1.0 - self.kb));
        let v = (r - y) / (2.0 * (1.0 - self.kr));
        let (ys, cs, yo) = if self.full_range {
            (1.0, 1.0, 0.0)
        } else {
            (219.0 / 255.0, 224.0 / 255.0, 16.0)
        };
        let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
        [q(y * ys + yo), q(u * cs + 128.0), q(v * cs + 128.0)]
    }
}

/// One video frame: planes with their strides. `P` is `&[u8]` to read, `&mut [u8]` to draw.
#[derive(Debug)]
pub struct Frame<P> {
    pub format: PixelFormat,
    pub width: u32,
    pub height: u32,
    /// Plane data and stride in bytes, in the format's plane order.
    pub planes: Vec<(P, usize)>,
    pub matrix: YuvMatrix,
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
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let needs: Vec<(usize, usize)> = match self.format.packed_layout() {
            Some((bpp, _)) => vec![(w * bpp, h)],
            None if self.format == PixelFormat::I420 => vec![(w, h), (cw, ch), (cw, ch)],
            None => vec![(w, h), (cw * 2, ch)],
        };
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

    /// The frame as 8-bit RGB at full resolution.
    pub fn to_rgb(&self) -> Result<RgbImage> {
        self.validate()?;
        let (w, h) = (self.width as usize, self.height as usize);
        let mut out = vec![0u8; w * h * 3];
        if let Some((bpp, [ro, go, bo])) = self.format.packed_layout() {
            let (data, stride) = (&self.planes[0].0.as_ref(), self.planes[0].1);
            for (y, dst) in out.chunks_exact_mut(w * 3).enumerate() {
                let src = &data[y * stride..y * stride + w * bpp];
                for (d, s) in dst.chunks_exact_mut(3).zip(src.chunks_exact(bpp)) {
                    d[0] = s[ro];
                    d[1] = s[go];
                    d[2] = s[bo];
                }
            }
        } else {
            let [ys, yo, cs, rv, gu, gv, bu] = self.matrix.to_rgb_coefficients();
            let (yp, ystride) = (self.planes[0].0.as_ref(), self.planes[0].1);
            let nv12 = self.format == PixelFormat::Nv12;
            let q = |x: f32| x.round().clamp(0.0, 255.0) as u8;
            for (y, dst) in out.chunks_exact_mut(w * 3).enumerate() {
                let yrow = &yp[y * ystride..];
                let cy = y / 2;
                for (x, d) in dst.chunks_exact_mut(3).enumerate() {
                    let (u, v) = if nv12 {
                        let (uv, s) = (self.planes[1].0.as_ref(), self.planes[1].1);
                        (uv[cy * s + (x / 2) * 2], uv[cy * s + (x / 2) * 2 + 1])
                    } else {
                        let (up, us) = (self.planes[1].0.as_ref(), self.planes[1].1);
                        let (vp, vs) = (self.planes[2].0.as_ref(), self.planes[2].1);
                        (up[cy * us + x / 2], vp[cy * vs + x / 2])
                    };
                    let luma = ys * (yrow[x] as f32 - yo);
                    let (uu, vv) = (cs * (u as f32 - 128.0), cs * (v as f32 - 128.0));
                    d[0] = q(luma + rv * vv);
                    d[1] = q(luma + gu * uu + gv * vv);
                    d[2] = q(luma + bu * uu);
                }
            }
        }
        Ok(RgbImage::from_raw(w as u32, h as u32, out).expect("buffer sized for the image"))
    }
}

impl<P: AsRef<[u8]> + AsMut<[u8]>> Frame<P> {
    /// Fills a rectangle (clipped to the frame) with an RGB colour. On YUV frames the chroma of
    /// every 2x2 block the rectangle touches is set.
    pub fn fill_rect(&mut self, x: i64, y: i64, w: i64, h: i64, rgb: [u8; 3]) {
        let (fw, fh) = (self.width as i64, self.height as i64);
        let (x0, y0) = (x.clamp(0, fw) as usize, y.clamp(0, fh) as usize);
        let (x1, y1) = ((x + w).clamp(0, fw) as usize, (y + h).clamp(0, fh) as usize);
        if x1 <= x0 || y1 <= y0 {
            return;
        }
        if let Some((bpp, [ro, go, bo])) = self.format.packed_layout() {
            let plane_ref = &mut self.planes[0];
            let (data, stride) = (plane_ref.0.as_mut(), plane_ref.1);
            for row in y0..y1 {
                let line = &mut data[row * stride + x0 * bpp..row * stride + x1 * bpp];
                for px in line.chunks_exact_mut(bpp) {
                    px[ro] = rgb[0];
                    px[go] = rgb[1];
                    px[bo] = rgb[2];
                }
            }
            return;
        }
        let [yv, uv, vv] = self.matrix.rgb_to_yuv(rgb);
        {
            let plane_ref = &mut self.planes[0];
            let (data, stride) = (plane_ref.0.as_mut(), plane_ref.1);
            for row in y0..y1 {
                data[row * stride + x0..row * stride + x1].fill(yv);
            }
        }
        let (cx0, cy0, cx1, cy1) = (x0 / 2, y0 / 2, x1.div_ceil(2), y1.div_ceil(2));
        if self.format == PixelFormat::Nv12 {
            let plane_ref = &mut self.planes[1];
            let (data, stride) = (plane_ref.0.as_mut(), plane_ref.1);
            for row in cy0..cy1 {
                for px in data[row * stride + cx0 * 2..row * stride + cx1 * 2].chunks_exact_mut(2) {
                    px[0] = uv;
                    px[1] = vv;
                }
            }
        } else {
            for (plane, value) in [(1, uv), (2, vv)] {
                let plane_ref = &mut self.planes[plane];
                let (data, stride) = (plane_ref.0.as_mut(), plane_ref.1);
                for row in cy0..cy1 {
                    data[row * stride + cx0..row * stride + cx1].fill(value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(format: PixelFormat, w: usize, h: usize) -> Frame<Vec<u8>> {
        let planes = match format.packed_layout() {
            Some((bpp, _)) => vec![(vec![0u8; w * bpp * h], w * bpp)],
            None if format == PixelFormat::I420 => vec![
                (vec![16u8; w * h], w),
                (vec![128u8; w / 2 * h / 2], w / 2),
                (vec![128u8; w / 2 * h / 2], w / 2),
            ],
            None => vec![(vec![16u8; w * h], w), (vec![128u8; w * h / 2], w)],
        };
        Frame {
            format,
            width: w as u32,
            height: h as u32,
            planes,
            matrix: YuvMatrix::BT601,
        }
    }

    #[test]
    fn a_filled_rectangle_reads_back_as_its_colour_in_every_format() {
        for format in PixelFormat::ALL {
            let mut frame = frame_of(format, 16, 8);
            frame.fill_rect(4, 2, 6, 4, [0, 200, 0]);
            let rgb = frame.to_rgb().unwrap();
            let inside = rgb.get_pixel(6, 4).0;
            let outside = rgb.get_pixel(0, 0).0;
            assert!(
                inside[1] > 180 && inside[0] < 30 && inside[2] < 30,
                "{format:?}: {inside:?}"
            );
            assert!(outside.iter().all(|&c| c < 5), "{format:?}: {outside:?}");
        }
    }

    #[test]
    fn short_planes_are_refused() {
        let mut frame = frame_of(PixelFormat::Nv12, 16, 8);
        frame.planes[1].0.truncate(10);
        let err = frame.to_rgb().unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid frame: plane 1 of a 16x8 Nv12 frame is too small (10 bytes, stride 16)"
        );
    }
}
