// SPDX-License-Identifier: MPL-2.0

//! Bus posting: a processed frame's faces as a `facerec` element message, from the streaming
//! thread in sync mode and through [`ElementSink`] from the live worker.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gst_base::prelude::*;

use facerec_core::Error as CoreError;
use facerec_core::engine::FaceResult;

use super::crops::CropPolicy;
use super::frame::FrameTimes;
use super::live::LiveSink;
use super::message::{Face, FaceCrop, FaceRecMessage};
use super::sync::lock;

/// The times a buffer's results are posted with, from its timestamps and the segment.
pub(super) fn frame_times(element: &super::FaceRec, buf: &gst::BufferRef) -> FrameTimes {
    let pts = buf.pts();
    let segment = element.segment();
    let (running_time, stream_time) = match segment.downcast_ref::<gst::ClockTime>() {
        Some(seg) => (seg.to_running_time(pts), seg.to_stream_time(pts)),
        None => (None, None),
    };
    FrameTimes {
        pts,
        duration: buf.duration(),
        running_time,
        stream_time,
        crop_source: None,
    }
}

/// Posts the faces of a frame; `crops` is empty or has one entry per face. A frame without
/// faces posts nothing.
pub(super) fn post_faces(
    element: &super::FaceRec,
    faces: &[FaceResult],
    crops: Vec<Option<FaceCrop>>,
    times: &FrameTimes,
    inference: Duration,
) {
    if faces.is_empty() {
        return;
    }
    let mut crops = crops.into_iter();
    let message = FaceRecMessage {
        pts: times.pts,
        stream_time: times.stream_time,
        running_time: times.running_time,
        duration: times.duration,
        inference_ns: inference.as_nanos() as u64,
        faces: faces
            .iter()
            .map(|face| Face {
                crop: crops.next().flatten(),
                ..Face::from(face)
            })
            .collect(),
    };
    let s = gst::Structure::from(&message);
    let _ = element.post_message(gst::message::Element::builder(s).src(element).build());
}

/// Where the live worker's results go: the element, while it exists, with the crop policy it
/// shares with the streaming thread.
pub(super) struct ElementSink {
    element: glib::WeakRef<super::FaceRec>,
    /// The element's: which tracks got which crops.
    crops: Arc<Mutex<CropPolicy>>,
}

impl ElementSink {
    pub(super) fn new(element: &super::FaceRec, crops: Arc<Mutex<CropPolicy>>) -> ElementSink {
        ElementSink {
            element: element.downgrade(),
            crops,
        }
    }
}

impl LiveSink for ElementSink {
    fn is_gone(&self) -> bool {
        self.element.upgrade().is_none()
    }

    /// With crops when the frame's pixels came along with its times (`face-crops` on then).
    fn post(&self, faces: &[FaceResult], times: &FrameTimes, inference: Duration) {
        let Some(element) = self.element.upgrade() else {
            return;
        };
        if faces.is_empty() {
            return;
        }
        let crops = match &times.crop_source {
            Some(source) => lock(&self.crops).crops(faces, source.as_ref()),
            None => Vec::new(),
        };
        post_faces(&element, faces, crops, times, inference);
    }

    fn fail(&self, err: &CoreError) {
        if let Some(element) = self.element.upgrade() {
            gst::element_error!(
                element,
                gst::StreamError::Failed,
                ("Inference failed: {}", err)
            );
        }
    }
}
