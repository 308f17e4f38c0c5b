//! The dashboard's session: the refresh token in an `HttpOnly; SameSite=Strict` cookie, so
//! script on the page (an XSS included) can never read it.
//!
//! A client opts in per request with the header `X-Session-Cookie: 1` (the dashboard always
//! sends it; API clients that never do keep today's JSON-only behaviour):
//! - `POST /api/auth/login` sets the cookie and leaves `refresh_token` out of the body;
//! - `POST /api/auth/refresh` with an empty body reads the token from the cookie, rotates it
//!   and again answers only the access token;
//! - `POST /api/auth/logout` clears it.
//!
//! The custom header also makes a cross-origin attempt a CORS-preflighted request, which this
//! server never grants, on top of `SameSite=Strict`. The cookie is `Path=/api/auth`, so it
//! is sent nowhere else, and `Secure` when the page was loaded over https.

use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;

pub(crate) const COOKIE: &str = "unmogrowp_refresh";
pub(crate) const OPT_IN: &str = "x-session-cookie";

/// Whether the client asked for the cookie session.
pub(crate) fn wanted(headers: &HeaderMap) -> bool {
    headers
        .get(OPT_IN)
        .is_some_and(|v| v.as_bytes() == b"1" || v.as_bytes().eq_ignore_ascii_case(b"true"))
}

/// The refresh token from the `Cookie` header, if present.
pub(crate) fn token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim_matches('"').to_string())
        .filter(|v| !v.is_empty())
}

fn secure(headers: &HeaderMap) -> bool {
    let https = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("https://"))
    };
    https(header::ORIGIN) || https(header::REFERER)
}

/// Adds the `Set-Cookie` carrying `refresh_token` (valid `max_age_secs`).
pub(crate) fn set(resp: &mut Response, req_headers: &HeaderMap, token: &str, max_age_secs: u64) {
    let secure = if secure(req_headers) { "; Secure" } else { "" };
    let v = format!(
        "{COOKIE}={token}; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}"
    );
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// Adds the `Set-Cookie` that removes the cookie.
pub(crate) fn clear(resp: &mut Response) {
    let v = format!("{COOKIE}=; Path=/api/auth; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(v) = HeaderValue::from_str(&v) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_token_among_other_cookies() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; unmogrowp_refresh=abc.def; b=2"),
        );
        assert_eq!(token(&h).as_deref(), Some("abc.def"));
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("unmogrowp_refresh="),
        );
        assert_eq!(token(&h), None);
    }
}
