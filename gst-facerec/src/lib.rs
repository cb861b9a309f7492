// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `facerec`: real-time face detection and recognition.
//!
//! The plugin holds one element, [`facerec`](facerec::FaceRec), a thin adapter over the
//! GStreamer-free vision core in `facerec-core`.

use gst::glib;

pub mod facerec;

pub use facerec::{
    FaceCrop, FaceInfo, FacerecMessage, FrameFormat, MessageError, NetworkScaler, ProviderKind,
    RedactMode,
};

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    facerec::register(plugin)
}

gst::plugin_define!(
    facerec,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    // "MPL-2.0" is a license string GStreamer knows; plain "MIT" would warn.
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_REPOSITORY"),
    env!("BUILD_REL_DATE")
);
