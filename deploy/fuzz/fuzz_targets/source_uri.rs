//! Camera URIs arrive through the HTTP API and /register: no input may panic the parser, and
//! nothing the API may ask for can become a raw pipeline or a file outside the media folder.
//! Every URI and error text is also masked before it is shown: the masking may not panic, and
//! a URL's password never survives it.
#![no_main]

use std::path::Path;

use facerec_launcher::domain::redact::{MASK, redact_text, redact_uri};
use facerec_launcher::domain::source::{Source, Trust, esp32_camera};
use libfuzzer_sys::fuzz_target;

const MEDIA_DIR: &str = "/nonexistent-facerec-fuzz-media";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = Source::parse(text, Trust::Operator);
    let shown = redact_uri(text);
    let _ = redact_text(text);
    // A plain `scheme://user:password@host` (no other URL or quote inside) keeps no password.
    if let Some((_, rest)) = text.split_once("://")
        && let Some((userinfo, _)) = rest.split_once('@')
        && let Some((_, password)) = userinfo.split_once(':')
        && !password.is_empty()
        && password != MASK
        && !password.contains(['/', '?', '#', '@', ':', ' ', '"', '\'', '<', '>', '`'])
        && !password.contains(char::is_whitespace)
        && !text.starts_with("pipeline:")
        && text.matches("://").count() == 1
        && !text[..text.find("://").unwrap()].contains(|c: char| !c.is_ascii_alphanumeric())
        && text.starts_with(|c: char| c.is_ascii_alphabetic())
        && !rest[..rest.find('@').unwrap()].contains(['/', '?', '#'])
    {
        let authority = |uri: &str| {
            let rest = uri.split_once("://").map_or("", |(_, r)| r);
            rest[..rest.find(['/', '?', '#']).unwrap_or(rest.len())].to_string()
        };
        let shown_authority = authority(&shown);
        assert!(
            shown_authority.contains(&format!(":{MASK}@"))
                && !shown_authority.contains(&format!(":{password}@")),
            "{text:?} shown as {shown:?}"
        );
    }
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
