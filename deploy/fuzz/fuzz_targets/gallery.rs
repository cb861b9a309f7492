//! `model.data` comes from S3 and init containers: whatever the bytes, decoding returns a value
//! or an error, never a panic or an allocation larger than the input could describe.
//!
//! Random bytes rarely get past the magic and the sha256, so each input is also wrapped in a
//! valid envelope (magic, version, length, checksum) of every readable version, to reach the
//! payload decoders themselves: postcard for version 3, bincode (the legacy module) for 1 and 2.
#![no_main]

use facerec_core::gallery::{FORMAT_VERSION, Gallery, READABLE_VERSIONS, envelope};
use libfuzzer_sys::fuzz_target;

fn check(bytes: &[u8]) {
    if let Ok(gallery) = Gallery::from_bytes(bytes) {
        assert!(gallery.validate().is_ok());
        // Whatever version it was read from, it is written as the current one, and reads back
        // as the same gallery.
        let written = gallery.to_bytes();
        assert_eq!(written[8..12], FORMAT_VERSION.to_le_bytes());
        let again = Gallery::from_bytes(&written).expect("what loads re-encodes");
        assert_eq!(again, gallery);
        assert_eq!(again.format_version(), FORMAT_VERSION);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    for version in READABLE_VERSIONS {
        check(&envelope(version, data));
    }
});
