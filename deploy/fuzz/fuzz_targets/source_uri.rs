//! Camera URIs arrive through the HTTP API and /register: no input may panic the parser, and
//! nothing the API may ask for can become a raw pipeline or a file outside the media folder.
#![no_main]

use std::path::Path;

use facerec_launcher::domain::source::{Source, Trust, esp32_camera};
use libfuzzer_sys::fuzz_target;

const MEDIA_DIR: &str = "/nonexistent-facerec-fuzz-media";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Source::parse(text, Trust::Operator);
    let api = Source::parse(
        text,
        Trust::Api {
            media_dir: Some(Path::new(MEDIA_DIR)),
        },
    );
    match api {
        Ok(Source::Pipeline { .. }) => panic!("the API was given a raw pipeline: {text:?}"),
        Ok(Source::File { path, .. }) => {
            panic!("a file outside the (absent) media folder was accepted: {path:?}")
        }
        _ => {}
    }
    if let Some((ip, token)) = text.split_once('&')
        && let Ok((name, Source::Http { url })) = esp32_camera(ip, token)
    {
        // The registration must only ever point at http://<ip>/stream?token=<word>.
        assert!(url.starts_with("http://"), "{url}");
        assert!(!url.contains(['#', ' ', '!', '"', '\'']), "{url}");
        assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    }
});
