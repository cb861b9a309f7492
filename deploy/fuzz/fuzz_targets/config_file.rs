//! The launcher's YAML config file, decoded as `Config::load` decodes it: any bytes give a
//! config or an error, never a panic.
#![no_main]

use facerec_launcher::config::FileConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = serde_yaml_ng::from_str::<FileConfig>(text);
    }
});
