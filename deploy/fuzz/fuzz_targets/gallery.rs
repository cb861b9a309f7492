//! `model.data` comes from S3 and init containers: whatever the bytes, decoding returns a value
//! or an error, never a panic or an allocation larger than the input could describe.
//!
//! Random bytes rarely get past the magic and the sha256, so each input is also wrapped in a
//! valid envelope (magic, version, length, checksum) to reach the payload decoder itself.
#![no_main]

use facerec_core::gallery::{FORMAT_VERSION, FORMAT_VERSION_REJECTS, Gallery, MAGIC};
use libfuzzer_sys::fuzz_target;
use sha2_shim::digest;

mod sha2_shim {
    pub fn digest(bytes: &[u8]) -> Vec<u8> {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).to_vec()
    }
}

fn check(bytes: &[u8]) {
    if let Ok(gallery) = Gallery::from_bytes(bytes) {
        assert!(gallery.validate().is_ok());
        let again = Gallery::from_bytes(&gallery.to_bytes()).expect("what loads re-encodes");
        assert_eq!(again, gallery);
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Both versions' decoders, behind a valid preamble and checksum.
    for version in [FORMAT_VERSION, FORMAT_VERSION_REJECTS] {
        let mut wrapped = Vec::with_capacity(data.len() + 52);
        wrapped.extend_from_slice(MAGIC);
        wrapped.extend_from_slice(&version.to_le_bytes());
        wrapped.extend_from_slice(&(data.len() as u64).to_le_bytes());
        wrapped.extend_from_slice(data);
        wrapped.extend_from_slice(&digest(data));
        check(&wrapped);
    }
});
