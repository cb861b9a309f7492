// SPDX-License-Identifier: MPL-2.0

//! The frame path between GStreamer buffers and the core: formats, colour matrix, plane views
//! for conversion and drawing, and the timestamps a result is posted with.

use gst_video::prelude::*;

use facerec_core::engine::FaceResult;
use facerec_core::frame::{Frame, PixelFormat, YuvMatrix};
use facerec_core::overlay::{FaceMark, draw_face};

/// Timestamps of the frame a result belongs to, for the bus message.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct FrameTimes {
    pub(super) pts: Option<gst::ClockTime>,
    pub(super) duration: Option<gst::ClockTime>,
    pub(super) running_time: Option<gst::ClockTime>,
    pub(super) stream_time: Option<gst::ClockTime>,
}

pub(super) fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as V;
    Some(match format {
        V::Rgba => PixelFormat::Rgba,
        V::Bgra => PixelFormat::Bgra,
        V::Rgbx => PixelFormat::Rgbx,
        V::Bgrx => PixelFormat::Bgrx,
        V::Rgb => PixelFormat::Rgb,
        V::Bgr => PixelFormat::Bgr,
        V::I420 => PixelFormat::I420,
        V::Nv12 => PixelFormat::Nv12,
        _ => return None,
    })
}

pub(super) fn yuv_matrix(info: &gst_video::VideoInfo) -> YuvMatrix {
    let colorimetry = info.colorimetry();
    let mut matrix = match colorimetry.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::BT709,
        _ => YuvMatrix::BT601,
    };
    matrix.full_range = colorimetry.range() == gst_video::VideoColorRange::Range0_255;
    matrix
}

/// Read-only view of a mapped video frame for the core.
pub(super) fn core_frame<'a>(
    frame: &'a gst_video::VideoFrameRef<&mut gst::BufferRef>,
    format: PixelFormat,
    matrix: YuvMatrix,
) -> Frame<&'a [u8]> {
    let planes = (0..format.plane_count() as u32)
        .map(|p| {
            (
                frame.plane_data(p).unwrap_or(&[]),
                frame.plane_stride()[p as usize].max(0) as usize,
            )
        })
        .collect();
    Frame {
        format,
        width: frame.width(),
        height: frame.height(),
        planes,
        matrix,
    }
}

pub(super) fn draw_faces(
    frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
    format: PixelFormat,
    matrix: YuvMatrix,
    faces: &[FaceResult],
) {
    let strides: Vec<usize> = frame
        .plane_stride()
        .iter()
        .map(|s| (*s).max(0) as usize)
        .collect();
    let (width, height) = (frame.width(), frame.height());
    let data = frame.planes_data_mut();
    let planes = data
        .into_iter()
        .zip(strides)
        .take(format.plane_count())
        .collect();
    let mut canvas = Frame {
        format,
        width,
        height,
        planes,
        matrix,
    };
    for face in faces {
        let label = face.label();
        draw_face(
            &mut canvas,
            &FaceMark {
                bbox: face.bbox,
                label,
                known: face.name().is_some(),
            },
        );
    }
}
