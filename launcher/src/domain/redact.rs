//! Camera addresses as they may be shown: a camera's URI often holds its credentials
//! (`rtsp://admin:hunter2@cam/…`, an ESP32's `?token=…`), and it leaves the process through the
//! API, the page, logs, MQTT and error texts. Everything shown passes through [`redact_uri`] or
//! [`redact_text`] first; only the pipeline itself gets the real URI.
//!
//! Domain layer: imports nothing of the launcher.

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Schemes whose query holds options of the launcher's own (`file:///a.mp4?loop=true`,
/// `test://?pattern=ball`), never a secret: their query is shown as is.
const LOCAL_SCHEMES: [&str; 4] = ["file", "test", "v4l2", "nvargus"];

/// Properties of GStreamer sources (rtspsrc, souphttpsrc) that hold a password, as written in a
/// `pipeline:` description.
const SECRET_PROPERTIES: [&str; 3] = ["user-pw", "proxy-pw", "password"];

/// A camera URI with its password and its query values replaced by [`MASK`]:
/// `rtsp://admin:***@10.0.0.5/stream`, `http://10.0.0.7/stream?token=***`. A `pipeline:`
/// description is redacted as text ([`redact_text`]). Everything else is kept as written.
pub fn redact_uri(uri: &str) -> String {
    // A whole URI is one URL, whatever it holds (a user name may contain a quote or a space).
    if is_scheme(uri.split_once("://").map_or("", |(scheme, _)| scheme)) {
        redact_url(uri)
    } else {
        redact_text(uri)
    }
}

/// A URL scheme: a letter, then letters, digits, `+`, `-` or `.`.
fn is_scheme(scheme: &str) -> bool {
    scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// `text` (an error, a log line, a pipeline description) with every URL in it redacted as by
/// [`redact_uri`], and the values of password properties (`user-pw=…`) masked.
pub fn redact_text(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut at = 0;
    while let Some((start, end)) = url_at(text, at) {
        shown.push_str(&redact_properties(&text[at..start]));
        shown.push_str(&redact_url(&text[start..end]));
        at = end;
    }
    shown.push_str(&redact_properties(&text[at..]));
    shown
}

/// The next URL in `text` from byte `from`: its scheme's start and the end of the URL (the
/// next whitespace or a character no URL holds: `"`, `<`, `>`, a backtick; `'` is allowed in
/// a URL's user name and password, so it does not end one).
fn url_at(text: &str, from: usize) -> Option<(usize, usize)> {
    let mut search = from;
    loop {
        let found = search + text[search..].find("://")?;
        let start = text[from..found]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            .last()
            .map(|(i, _)| from + i);
        let after = found + 3;
        let end = text[after..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '<' | '>' | '`'))
            .map_or(text.len(), |i| after + i);
        match start {
            Some(start) if text[start..].starts_with(|c: char| c.is_ascii_alphabetic()) => {
                return Some((start, end));
            }
            _ => search = after,
        }
    }
}

/// One URL (`scheme://authority/path?query#fragment`), its password and query values masked.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("url_at found ://");
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => format!("{user}:{MASK}@{host}"),
            None => format!("{userinfo}@{host}"),
        },
        None => authority.to_string(),
    };
    let local = LOCAL_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str());
    let tail = match tail.split_once('?') {
        Some((path, query)) if !local => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let masked: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((key, value)) if !value.is_empty() => format!("{key}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            let mut tail = format!("{path}?{}", masked.join("&"));
            if let Some(fragment) = fragment {
                tail.push('#');
                tail.push_str(fragment);
            }
            tail
        }
        _ => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// `user-pw=secret` and its kin masked, in text between URLs.
fn redact_properties(text: &str) -> String {
    let mut shown = String::with_capacity(text.len());
    let mut rest = text;
    while let Some((at, key_len)) = next_secret_property(rest) {
        let value_start = at + key_len;
        let value_end = value_start + value_end(&rest[value_start..]);
        shown.push_str(&rest[..value_start]);
        shown.push_str(MASK);
        rest = &rest[value_end..];
    }
    shown.push_str(rest);
    shown
}

/// The earliest `PROPERTY=` of [`SECRET_PROPERTIES`] in `text` that is a whole property name
/// (`user-pw=`, not `xuser-pw=`): its position and length.
fn next_secret_property(text: &str) -> Option<(usize, usize)> {
    SECRET_PROPERTIES
        .iter()
        .filter_map(|property| {
            let key = format!("{property}=");
            text.match_indices(&key)
                .find(|(i, _)| {
                    text[..*i]
                        .chars()
                        .next_back()
                        .is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                })
                .map(|(i, _)| (i, key.len()))
        })
        .min()
}

/// The length of a property value: a quoted string with its quotes, or up to whitespace.
fn value_end(value: &str) -> usize {
    match value.chars().next() {
        Some(quote @ ('"' | '\'')) => value[1..].find(quote).map_or(value.len(), |i| i + 2),
        _ => value
            .find(|c: char| c.is_whitespace())
            .unwrap_or(value.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_and_query_values_are_masked() {
        assert_eq!(
            redact_uri("rtsp://admin:hunter2@10.0.0.5:554/Streaming/101"),
            "rtsp://admin:***@10.0.0.5:554/Streaming/101"
        );
        assert_eq!(
            redact_uri("http://192.168.1.20/stream?token=s3cr3t"),
            "http://192.168.1.20/stream?token=***"
        );
        assert_eq!(
            redact_uri("https://u:p%40ss@cam.lan/a?x=1&flag&key=k#frag"),
            "https://u:***@cam.lan/a?x=***&flag&key=***#frag"
        );
        // A user without a password is not a secret; the host and path stay.
        assert_eq!(
            redact_uri("rtsp://viewer@cam.lan/live"),
            "rtsp://viewer@cam.lan/live"
        );
    }

    #[test]
    fn uris_without_secrets_are_shown_as_written() {
        for uri in [
            "test://?pattern=ball",
            "file:///media/clip.mp4?loop=true",
            "v4l2:///dev/video0",
            "nvargus://0",
            "rtsp://10.0.0.5/stream",
            "http://cam.lan:8080/video",
            "pipeline:videotestsrc ! video/x-raw,width=640 ! identity",
        ] {
            assert_eq!(redact_uri(uri), uri);
        }
    }

    #[test]
    fn pipeline_descriptions_and_error_texts_are_redacted() {
        assert_eq!(
            redact_uri(
                "pipeline:rtspsrc location=rtsp://admin:hunter2@cam/s user-id=admin \
                 user-pw=\"two words\" ! decodebin ! videoconvert"
            ),
            "pipeline:rtspsrc location=rtsp://admin:***@cam/s user-id=admin user-pw=*** ! \
             decodebin ! videoconvert"
        );
        assert_eq!(
            redact_text(
                "Could not open resource for reading. (rtsp://admin:hunter2@10.0.0.5/s): \
                 \"http://h/stream?token=abc\" failed"
            ),
            "Could not open resource for reading. (rtsp://admin:***@10.0.0.5/s): \
             \"http://h/stream?token=***\" failed"
        );
        assert_eq!(
            redact_text("password=a xuser-pw=b user-pw=c proxy-pw='d e' end"),
            "password=*** xuser-pw=b user-pw=*** proxy-pw=*** end"
        );
        assert_eq!(redact_text("no URL here"), "no URL here");
        // Found by the fuzzer: a quote in the user name does not end the URL.
        assert_eq!(
            redact_uri("http://o'brien:pa'ss@cam/s"),
            "http://o'brien:***@cam/s"
        );
        assert_eq!(
            redact_text("at 'rtsp://o'b:pw@cam/s' failed"),
            "at 'rtsp://o'b:***@cam/s' failed"
        );
        assert_eq!(redact_text("odd ://x and a://"), "odd ://x and a://");
    }
}
