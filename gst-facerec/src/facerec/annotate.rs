// SPDX-License-Identifier: MPL-2.0

//! What the element adds to a frame from its faces: the redacted ones pixelated, boxes and
//! labels drawn, and one `GstVideoRegionOfInterestMeta` per face.

use std::time::{Duration, Instant};

use gst_video::prelude::*;

use facerec_core::engine::FaceResult;
use facerec_core::overlay::{FaceMark, Painter};

use super::frame::{FrameFormat, OverlayBlender, core_frame_mut};
use super::message::Face;
use super::{CAT, RedactMode};

/// Redacted faces become this many blocks across their longer side.
const REDACT_CELLS: u32 = 5;

/// Redacts and draws, keeping what drawing reuses from frame to frame.
pub(super) struct Annotator {
    painter: Painter,
    blender: OverlayBlender,
    /// `stats`' redact-ns and draw-ns.
    pub(super) redact_time: Duration,
    pub(super) draw_time: Duration,
}

impl Annotator {
    pub(super) fn new(painter: Painter) -> Annotator {
        Annotator {
            painter,
            blender: OverlayBlender::default(),
            redact_time: Duration::ZERO,
            draw_time: Duration::ZERO,
        }
    }

    /// Whether [`Self::annotate`] writes to the frame: the frame is mapped writable (which
    /// copies memory a decoder still shares) only then.
    pub(super) fn writes(faces: &[FaceResult], redact: RedactMode, draw: bool) -> bool {
        !faces.is_empty() && (draw || redact != RedactMode::None)
    }

    /// Pixelates the faces `redact` hides, then draws every face when `draw`. Returns whether
    /// the frame's pixels may have changed (an NVMM surface is then written back).
    pub(super) fn annotate(
        &mut self,
        element: &super::FaceRec,
        frame: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
        format: &FrameFormat,
        faces: &[FaceResult],
        redact: RedactMode,
        draw: bool,
    ) -> Result<bool, gst::FlowError> {
        if !Self::writes(faces, redact, draw) {
            return Ok(false);
        }
        if redact != RedactMode::None {
            let started = Instant::now();
            let mut canvas = core_frame_mut(frame, format);
            for face in faces.iter().filter(|f| redact.hides(f.name())) {
                let b = face.bbox;
                if !(b.x.is_finite() && b.y.is_finite() && b.w.is_finite() && b.h.is_finite()) {
                    continue;
                }
                let (x0, y0) = (b.x.floor() as i64, b.y.floor() as i64);
                let (x1, y1) = ((b.x + b.w).ceil() as i64, (b.y + b.h).ceil() as i64);
                if let Err(e) = canvas.pixelate(x0, y0, x1 - x0, y1 - y0, REDACT_CELLS) {
                    gst::element_error!(element, gst::StreamError::Format, ("{}", e));
                    return Err(gst::FlowError::Error);
                }
            }
            self.redact_time += started.elapsed();
        }
        if draw {
            let started = Instant::now();
            let marks: Vec<FaceMark<'_>> = faces
                .iter()
                .map(|face| FaceMark {
                    bbox: face.bbox,
                    label: face.label(),
                    known: face.name().is_some(),
                })
                .collect();
            let shapes = self.painter.layout(&marks, frame.width(), frame.height());
            if let Err(e) = self.blender.blend(frame, &shapes) {
                // A frame without boxes is better than no frame: warn and pass it on.
                gst::warning!(CAT, obj = element, "drawing failed: {}", e);
            }
            self.draw_time += started.elapsed();
        }
        Ok(true)
    }
}

/// Attaches one `GstVideoRegionOfInterestMeta` (type `face`, parameter structure `facerec`)
/// per face with a box inside the frame.
pub(super) fn attach_metas(
    buffer: &mut gst::BufferRef,
    faces: &[FaceResult],
    info: &gst_video::VideoInfo,
) {
    for face in faces {
        let Some(rect) = face.bbox.clip_to(info.width(), info.height()) else {
            continue;
        };
        let mut meta = gst_video::VideoRegionOfInterestMeta::add(buffer, "face", rect);
        meta.add_param(Face::from(face).meta_params());
    }
}
