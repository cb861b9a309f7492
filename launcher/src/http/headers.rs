//! Browser hardening, as one layer over every response: a Content-Security-Policy that allows
//! the page's own inline script and style by their hashes and nothing from elsewhere, no
//! framing, no MIME sniffing, no referrer, and no caching (faces, names and camera addresses
//! must not linger in a shared or disk cache).
//!
//! HTTP layer: imports its parent's pages only.

use std::sync::LazyLock;

use axum::http::{HeaderValue, header};
use axum::response::Response;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The policy for [`super::PAGE`]: its one `<script>` and one `<style>` by hash.
static CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = content_security_policy(super::PAGE);
    HeaderValue::from_str(&policy).expect("a policy is ASCII")
});

/// The policy for the login page, by its own hashes.
pub static LOGIN_CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let policy = content_security_policy(super::LOGIN_PAGE);
    HeaderValue::from_str(&policy).expect("a policy is ASCII")
});

/// `'sha256-…'` of the text between the first `<tag>` and `</tag>` of `page` (as CSP hashes an
/// inline element: its exact text).
fn inline_hash(page: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = page.find(&open).map(|i| i + open.len()).unwrap_or(0);
    let end = page[start..]
        .find(&format!("</{tag}>"))
        .map_or(start, |i| start + i);
    let digest = Sha256::digest(&page.as_bytes()[start..end]);
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

fn content_security_policy(page: &str) -> String {
    format!(
        "default-src 'self'; script-src {}; style-src {}; img-src 'self' data: blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'",
        inline_hash(page, "script"),
        inline_hash(page, "style"),
    )
}

/// Adds the hardening headers to `response` (applied to every route by `router`).
pub async fn harden(mut response: Response) -> Response {
    let headers = response.headers_mut();
    // A handler that serves another page (the login page) sets that page's policy.
    headers
        .entry(header::CONTENT_SECURITY_POLICY)
        .or_insert_with(|| CONTENT_SECURITY_POLICY.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_hashes_exactly_the_inline_script_and_style() {
        let page = "<html><style>b{}</style><script>go()</script></html>";
        let policy = content_security_policy(page);
        // printf 'go()' | openssl dgst -sha256 -binary | base64
        let script = "'sha256-5KYv+PUboo5h+0+YAtGRPbwv5d/QxzHslP4YGnUaxRw='";
        assert!(
            policy.contains(&format!("script-src {script};")),
            "{policy}"
        );
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        // The real page has exactly one of each, so one hash allows all of its code.
        assert_eq!(super::super::PAGE.matches("<script>").count(), 1);
        assert_eq!(super::super::PAGE.matches("<style>").count(), 1);
        assert!(!super::super::PAGE.contains("<script "));
    }
}
