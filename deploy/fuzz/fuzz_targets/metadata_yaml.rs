//! The demo's `metadata.yaml` list of {name, image}: any text gives photos or an error, never a
//! panic, and every accepted name obeys the gallery's name rule.
#![no_main]

use std::path::Path;

use facerec_core::gallery::check_person_name;
use facerec_model::photos::parse_metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(photos) = parse_metadata(text, Path::new("/photos"))
    {
        for photo in photos {
            assert!(
                check_person_name(&photo.person).is_ok(),
                "{:?}",
                photo.person
            );
        }
    }
});
