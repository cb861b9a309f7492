// SPDX-License-Identifier: MPL-2.0
#![allow(clippy::non_send_fields_in_send_ty, unused_doc_comments)]

//! GStreamer plugin `facerec`: real-time face detection and recognition.
//!
//! The plugin holds one element, [`facerec`](facerec::FaceRec), a thin adapter over the
//! GStreamer-free vision core in `facerec-core`.

use gst::glib;

pub mod facerec;

pub use facerec::{
    Face, FaceCrop, FaceRecMessage, FrameFormat, MessageError, NetworkScaler, ProviderKind,
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

#[cfg(test)]
mod tests {
    /// The root package lists its tests and benches by hand (its sources live in gst-facerec/,
    /// where cargo's autodiscovery does not look), so a new file there would silently never be
    /// compiled: every one must be a `[[test]]` or `[[bench]]` target.
    #[test]
    fn every_test_and_bench_file_is_a_cargo_target() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let manifest = std::fs::read_to_string(root.join("Cargo.toml")).unwrap();
        let mut unlisted = Vec::new();
        for dir in ["gst-facerec/tests", "gst-facerec/benches"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let name = entry.unwrap().file_name().to_string_lossy().into_owned();
                let target = format!("path = \"{dir}/{name}\"");
                if name.ends_with(".rs") && !manifest.contains(&target) {
                    unlisted.push(format!("{dir}/{name}"));
                }
            }
        }
        assert!(
            unlisted.is_empty(),
            "not a [[test]] or [[bench]] in Cargo.toml, so never compiled: {unlisted:?}"
        );
    }
}
