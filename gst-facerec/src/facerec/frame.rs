// SPDX-License-Identifier: MPL-2.0

//! The frame path between GStreamer buffers and the core: the detector's network-size input
//! (one `VideoConverter` pass from the mapped planes), read-only and redactable plane views for
//! the core, drawing through `GstVideoOverlayComposition`, and the timestamps a result is
//! posted with.

use std::collections::HashMap;
use std::sync::Arc;

use gst::glib;
use gst_video::prelude::*;

use facerec_core::detect::{NetworkInput, network_geometry};
use facerec_core::frame::{ChromaSiting, Frame, PixelFormat, YuvMatrix};
use facerec_core::image::{RgbImage, RgbaImage};
use facerec_core::overlay::Shape;

/// Timestamps of the frame a result belongs to, for the bus message, and in live mode with
/// `face-crops` on, the frame's pixels to cut the crops from: the worker posts its results
/// later, after the streaming thread has drawn on (or passed on) the original.
#[derive(Clone, Default)]
pub(super) struct FrameTimes {
    pub(super) pts: Option<gst::ClockTime>,
    pub(super) duration: Option<gst::ClockTime>,
    pub(super) running_time: Option<gst::ClockTime>,
    pub(super) stream_time: Option<gst::ClockTime>,
    pub(super) crop_source: Option<Arc<Frame<Vec<u8>>>>,
}

impl std::fmt::Debug for FrameTimes {
    // Not the pixels of the crop source.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameTimes")
            .field("pts", &self.pts)
            .field("duration", &self.duration)
            .field("running_time", &self.running_time)
            .field("stream_time", &self.stream_time)
            .field("crop_source", &self.crop_source.is_some())
            .finish()
    }
}

/// How the core reads a negotiated format: layout, YUV matrix and range, chroma siting.
/// Exported so that applications and tests wrap mapped frames exactly as the element does.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FrameFormat {
    pub format: PixelFormat,
    pub matrix: YuvMatrix,
    pub chroma: ChromaSiting,
}

impl FrameFormat {
    /// `None` for a format the element does not accept.
    pub fn from_info(info: &gst_video::VideoInfo) -> Option<FrameFormat> {
        use gst_video::VideoFormat as V;
        let format = match info.format() {
            V::Rgba => PixelFormat::Rgba,
            V::Bgra => PixelFormat::Bgra,
            V::Rgbx => PixelFormat::Rgbx,
            V::Bgrx => PixelFormat::Bgrx,
            V::Rgb => PixelFormat::Rgb,
            V::Bgr => PixelFormat::Bgr,
            V::I420 => PixelFormat::I420,
            V::Nv12 => PixelFormat::Nv12,
            _ => return None,
        };
        let colorimetry = info.colorimetry();
        let mut matrix = match colorimetry.matrix() {
            gst_video::VideoColorMatrix::Bt709 => YuvMatrix::BT709,
            gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::BT2020,
            _ => YuvMatrix::BT601,
        };
        matrix.full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
        let site = info.chroma_site();
        let chroma = ChromaSiting {
            h_cosited: site.contains(gst_video::VideoChromaSite::H_COSITED),
            v_cosited: site.contains(gst_video::VideoChromaSite::V_COSITED),
        };
        Some(FrameFormat {
            format,
            matrix,
            chroma,
        })
    }
}

/// Read-only view of a mapped video frame for the core.
pub(super) fn core_frame<'a, T>(
    frame: &'a gst_video::VideoFrameRef<T>,
    format: &FrameFormat,
) -> Frame<&'a [u8]> {
    let planes = (0..format.format.plane_count() as u32)
        .map(|p| {
            (
                frame.plane_data(p).unwrap_or(&[]),
                frame.plane_stride()[p as usize].max(0) as usize,
            )
        })
        .collect();
    Frame {
        format: format.format,
        width: frame.width(),
        height: frame.height(),
        planes,
        matrix: format.matrix,
        chroma: format.chroma,
    }
}

/// Writable view of a mapped video frame for the core (redaction).
pub(super) fn core_frame_mut<'a>(
    frame: &'a mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    format: &FrameFormat,
) -> Frame<&'a mut [u8]> {
    let strides: Vec<usize> = frame
        .plane_stride()
        .iter()
        .map(|s| (*s).max(0) as usize)
        .collect();
    let (width, height) = (frame.width(), frame.height());
    let planes = frame
        .planes_data_mut()
        .into_iter()
        .zip(strides)
        .take(format.format.plane_count())
        .collect();
    Frame {
        format: format.format,
        width,
        height,
        planes,
        matrix: format.matrix,
        chroma: format.chroma,
    }
}

/// Makes the detector's input from a mapped frame at a cost that follows the network size:
///
/// 1. each plane is scaled in its own format to the network size by `fast_image_resize`
///    (SIMD convolution, Catmull-Rom, which widens its support when it shrinks, so it does not
///    alias): a 1080p NV12 frame becomes a 640x360 NV12 frame. Catmull-Rom against Lanczos3
///    and bilinear at 1080p NV12: 3.4, 4.6 and 2.7 ms; median embedding distance between the
///    clip at 360p and upscaled to 1080p 0.073, 0.069 and 0.093 (max 0.23, 0.23 and 0.33);
///    test `embeddings_do_not_depend_on_frame_size_or_format`;
/// 2. GStreamer's `VideoConverter` (what `videoconvert` runs) turns that small frame into packed
///    RGB with the caps' matrix, range and chroma siting.
///
/// Frames no wider than the network are only converted.
pub struct NetworkScaler {
    in_info: gst_video::VideoInfo,
    network_width: u32,
    /// The frame at network size, in the input's format (only when scaling).
    small: Option<(gst_video::VideoInfo, gst::Buffer)>,
    converter: gst_video::VideoConverter,
    out_info: gst_video::VideoInfo,
    out: gst::Buffer,
    resizer: fast_image_resize::Resizer,
    /// Tight copies of strided source planes, kept between frames.
    scratch: Vec<u8>,
}

impl std::fmt::Debug for NetworkScaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkScaler")
            .field("in", &(self.in_info.width(), self.in_info.height()))
            .field("out", &(self.out_info.width(), self.out_info.height()))
            .finish_non_exhaustive()
    }
}

/// `fast_image_resize`'s pixel type for plane `plane` of `format`.
fn plane_pixel_type(
    format: gst_video::VideoFormat,
    plane: u32,
) -> Option<fast_image_resize::PixelType> {
    use fast_image_resize::PixelType as P;
    use gst_video::VideoFormat as V;
    Some(match (format, plane) {
        (V::Rgba | V::Bgra | V::Rgbx | V::Bgrx, 0) => P::U8x4,
        (V::Rgb | V::Bgr, 0) => P::U8x3,
        (V::I420, 0..=2) | (V::Nv12, 0) => P::U8,
        (V::Nv12, 1) => P::U8x2,
        _ => return None,
    })
}

/// Width and height of plane `plane` of a frame of `info`, in pixels of that plane.
fn plane_size(info: &gst_video::VideoInfo, plane: u32) -> (u32, u32) {
    let finfo = info.format_info();
    // The plane's first component gives its subsampling.
    let component = (0..finfo.n_components())
        .find(|&c| finfo.plane()[c as usize] == plane)
        .unwrap_or(0) as u8;
    (
        finfo.scale_width(component, info.width()),
        finfo.scale_height(component, info.height()),
    )
}

impl NetworkScaler {
    /// A scaler for frames of `in_info` to the network size for `network_width` (frames
    /// narrower than it keep their size; see `network_geometry`).
    pub fn new(
        in_info: &gst_video::VideoInfo,
        network_width: u32,
    ) -> Result<NetworkScaler, glib::BoolError> {
        let (_, sw, sh, _, _) = network_geometry(in_info.width(), in_info.height(), network_width);
        let out_info = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, sw, sh)
            .fps(in_info.fps())
            .par(in_info.par())
            .interlace_mode(in_info.interlace_mode())
            .build()?;
        let small = if (sw, sh) == (in_info.width(), in_info.height()) {
            None
        } else {
            for plane in 0..in_info.n_planes() {
                if plane_pixel_type(in_info.format(), plane).is_none() {
                    return Err(glib::bool_error!(
                        "unsupported format {:?}",
                        in_info.format()
                    ));
                }
            }
            let info = gst_video::VideoInfo::builder(in_info.format(), sw, sh)
                .fps(in_info.fps())
                .par(in_info.par())
                .interlace_mode(in_info.interlace_mode())
                .colorimetry(&in_info.colorimetry())
                .chroma_site(in_info.chroma_site())
                .build()?;
            let buffer = gst::Buffer::with_size(info.size())?;
            Some((info, buffer))
        };
        let mut config = gst_video::VideoConverterConfig::new();
        // At network size a second thread costs more to wake than it saves.
        config.set_threads(1);
        let converter = gst_video::VideoConverter::new(
            small.as_ref().map_or(in_info, |(info, _)| info),
            &out_info,
            Some(config),
        )?;
        let out = gst::Buffer::with_size(out_info.size())?;
        Ok(NetworkScaler {
            in_info: in_info.clone(),
            network_width,
            small,
            converter,
            out_info,
            out,
            resizer: fast_image_resize::Resizer::new(),
            scratch: Vec::new(),
        })
    }

    /// Whether this scaler was made for these caps and network width.
    pub fn is_for(&self, in_info: &gst_video::VideoInfo, network_width: u32) -> bool {
        self.network_width == network_width && &self.in_info == in_info
    }

    /// Scales each plane of `frame` into the small frame.
    fn shrink<T>(
        resizer: &mut fast_image_resize::Resizer,
        scratch: &mut Vec<u8>,
        frame: &gst_video::VideoFrameRef<T>,
        small_info: &gst_video::VideoInfo,
        small: &mut gst::Buffer,
    ) -> Result<(), glib::BoolError> {
        use fast_image_resize as fr;
        let small = small
            .get_mut()
            .ok_or_else(|| glib::bool_error!("network buffer is shared"))?;
        let mut dest = gst_video::VideoFrameRef::from_buffer_ref_writable(small, small_info)
            .map_err(|_| glib::bool_error!("cannot map the network buffer"))?;
        let options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom))
            // The fourth byte of RGBx/BGRx is not alpha: never premultiply by it.
            .use_alpha(false);
        for plane in 0..frame.n_planes() {
            let pixel = plane_pixel_type(frame.format(), plane)
                .ok_or_else(|| glib::bool_error!("unsupported format {:?}", frame.format()))?;
            let (w, h) = plane_size(frame.info(), plane);
            let (dw, dh) = plane_size(small_info, plane);
            let row = w as usize * pixel.size();
            let stride = frame.plane_stride()[plane as usize] as usize;
            let data = frame.plane_data(plane)?;
            let tight: &[u8] = if stride == row {
                &data[..row * h as usize]
            } else {
                scratch.clear();
                for r in 0..h as usize {
                    scratch.extend_from_slice(&data[r * stride..r * stride + row]);
                }
                scratch
            };
            let src = fr::images::ImageRef::new(w, h, tight, pixel)
                .map_err(|e| glib::bool_error!("source plane {plane}: {e}"))?;
            let dest_stride = dest.plane_stride()[plane as usize] as usize;
            let dest_row = dw as usize * pixel.size();
            let dest_data = dest.plane_data_mut(plane)?;
            if dest_stride == dest_row {
                let mut dst = fr::images::Image::from_slice_u8(
                    dw,
                    dh,
                    &mut dest_data[..dest_row * dh as usize],
                    pixel,
                )
                .map_err(|e| glib::bool_error!("network plane {plane}: {e}"))?;
                resizer
                    .resize(&src, &mut dst, &options)
                    .map_err(|e| glib::bool_error!("scaling plane {plane}: {e}"))?;
            } else {
                let mut dst = fr::images::Image::new(dw, dh, pixel);
                resizer
                    .resize(&src, &mut dst, &options)
                    .map_err(|e| glib::bool_error!("scaling plane {plane}: {e}"))?;
                for (r, line) in dst.buffer().chunks_exact(dest_row).enumerate() {
                    dest_data[r * dest_stride..r * dest_stride + dest_row].copy_from_slice(line);
                }
            }
        }
        Ok(())
    }

    /// The network-size RGB image of `frame`, with the frame's size for mapping detections back.
    pub fn scale<T>(
        &mut self,
        frame: &gst_video::VideoFrameRef<T>,
    ) -> Result<NetworkInput<'static>, glib::BoolError> {
        let out = self
            .out
            .get_mut()
            .ok_or_else(|| glib::bool_error!("network buffer is shared"))?;
        let mut dest = gst_video::VideoFrameRef::from_buffer_ref_writable(out, &self.out_info)
            .map_err(|_| glib::bool_error!("cannot map the network buffer"))?;
        match &mut self.small {
            None => self.converter.frame_ref(frame, &mut dest),
            Some((small_info, small)) => {
                Self::shrink(
                    &mut self.resizer,
                    &mut self.scratch,
                    frame,
                    small_info,
                    small,
                )?;
                let small =
                    gst_video::VideoFrameRef::from_buffer_ref_readable(small.as_ref(), small_info)
                        .map_err(|_| glib::bool_error!("cannot map the network buffer"))?;
                self.converter.frame_ref(&small, &mut dest);
            }
        }
        let (w, h) = (
            self.out_info.width() as usize,
            self.out_info.height() as usize,
        );
        let stride = dest.plane_stride()[0] as usize;
        let data = dest.plane_data(0)?;
        let mut rgb = Vec::with_capacity(w * h * 3);
        for row in 0..h {
            rgb.extend_from_slice(&data[row * stride..row * stride + w * 3]);
        }
        let image = RgbImage::from_raw(w as u32, h as u32, rgb)
            .ok_or_else(|| glib::bool_error!("network image size mismatch"))?;
        Ok(NetworkInput {
            image: std::borrow::Cow::Owned(image),
            frame_width: self.in_info.width(),
            frame_height: self.in_info.height(),
        })
    }
}

/// The overlay rectangles' pixel format: GStreamer's ARGB in native word order.
const OVERLAY_FORMAT: gst_video::VideoFormat = if cfg!(target_endian = "little") {
    gst_video::VideoFormat::Bgra
} else {
    gst_video::VideoFormat::Argb
};

/// Bound on cached overlay rectangles; the painter's own label cache is bounded the same way.
const MAX_CACHED_RECTANGLES: usize = 512;

/// What an overlay rectangle shows: a solid fill of a size and colour, or a label bitmap.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Content {
    Fill {
        width: u32,
        height: u32,
        rgb: [u8; 3],
    },
    Label(usize),
}

/// Blends the painter's shapes into frames through `GstVideoOverlayComposition`, which
/// converts them to the frame's format and blends each plane at its own resolution (no chroma
/// fringes on 4:2:0). Rectangles are kept between frames and only moved, so their pixels, and
/// GStreamer's conversion of them to the frame's format, are made once per content.
#[derive(Default)]
pub(super) struct OverlayBlender {
    /// Per content, the rectangles made for it (a frame may show the same content twice),
    /// and the label bitmap a `Label` key points at, kept alive with it.
    rectangles: HashMap<
        Content,
        (
            Vec<gst_video::VideoOverlayRectangle>,
            Option<Arc<RgbaImage>>,
        ),
    >,
    count: usize,
}

fn overlay_buffer(
    width: u32,
    height: u32,
    fill: impl Fn(&mut [u8]),
) -> Result<gst::Buffer, glib::BoolError> {
    let mut buffer = gst::Buffer::with_size(width as usize * height as usize * 4)?;
    {
        let buffer = buffer
            .get_mut()
            .ok_or_else(|| glib::bool_error!("new buffer not writable"))?;
        {
            let mut map = buffer
                .map_writable()
                .map_err(|_| glib::bool_error!("cannot map overlay buffer"))?;
            fill(map.as_mut_slice());
        }
        gst_video::VideoMeta::add(
            buffer,
            gst_video::VideoFrameFlags::empty(),
            OVERLAY_FORMAT,
            width,
            height,
        )?;
    }
    Ok(buffer)
}

/// Writes one RGBA pixel in the overlay's byte order.
fn put_pixel(px: &mut [u8], [r, g, b, a]: [u8; 4]) {
    if cfg!(target_endian = "little") {
        px.copy_from_slice(&[b, g, r, a]);
    } else {
        px.copy_from_slice(&[a, r, g, b]);
    }
}

impl OverlayBlender {
    fn new_rectangle(shape: &Shape) -> Result<gst_video::VideoOverlayRectangle, glib::BoolError> {
        let (buffer, x, y, w, h) = match shape {
            Shape::Fill {
                x,
                y,
                width,
                height,
                rgb,
            } => {
                let [r, g, b] = *rgb;
                let buffer = overlay_buffer(*width, *height, |data| {
                    for px in data.chunks_exact_mut(4) {
                        put_pixel(px, [r, g, b, 255]);
                    }
                })?;
                (buffer, *x, *y, *width, *height)
            }
            Shape::Image { x, y, image } => {
                let buffer = overlay_buffer(image.width(), image.height(), |data| {
                    for (px, src) in data.chunks_exact_mut(4).zip(image.pixels()) {
                        put_pixel(px, src.0);
                    }
                })?;
                (buffer, *x, *y, image.width(), image.height())
            }
        };
        Ok(gst_video::VideoOverlayRectangle::new_raw(
            &buffer,
            x as i32,
            y as i32,
            w,
            h,
            gst_video::VideoOverlayFormatFlags::empty(),
        ))
    }

    pub(super) fn blend(
        &mut self,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        shapes: &[Shape],
    ) -> Result<(), glib::BoolError> {
        if self.count > MAX_CACHED_RECTANGLES {
            self.rectangles.clear();
            self.count = 0;
        }
        let mut used: HashMap<Content, usize> = HashMap::new();
        let mut rectangles = Vec::with_capacity(shapes.len());
        for shape in shapes {
            let (content, x, y, w, h, label) = match shape {
                Shape::Fill {
                    x,
                    y,
                    width,
                    height,
                    rgb,
                } => (
                    Content::Fill {
                        width: *width,
                        height: *height,
                        rgb: *rgb,
                    },
                    *x,
                    *y,
                    *width,
                    *height,
                    None,
                ),
                Shape::Image { x, y, image } => (
                    Content::Label(Arc::as_ptr(image) as usize),
                    *x,
                    *y,
                    image.width(),
                    image.height(),
                    Some(image.clone()),
                ),
            };
            if w == 0 || h == 0 {
                continue;
            }
            let nth = used.entry(content.clone()).or_default();
            let (made, _) = self
                .rectangles
                .entry(content)
                .or_insert_with(|| (Vec::new(), label));
            if made.len() <= *nth {
                made.push(Self::new_rectangle(shape)?);
                self.count += 1;
            }
            let rectangle = &mut made[*nth];
            *nth += 1;
            match rectangle.get_mut() {
                Some(r) => r.set_render_rectangle(x as i32, y as i32, w, h),
                // Still referenced elsewhere (never expected): make a fresh one.
                None => *rectangle = Self::new_rectangle(shape)?,
            }
            rectangles.push(rectangle.clone());
        }
        if rectangles.is_empty() {
            return Ok(());
        }
        let composition = gst_video::VideoOverlayComposition::new(&rectangles)?;
        drop(rectangles);
        let result = composition.blend(frame);
        drop(composition);
        result
    }
}
