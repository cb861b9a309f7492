//! The launcher's YAML config file, decoded as `Config::from_args` decodes it: any bytes give
//! settings or an error, never a panic.
#![no_main]

use facerec_launcher::config::parse_config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_config(text, std::path::Path::new("fuzz.yaml"));
    }
});
