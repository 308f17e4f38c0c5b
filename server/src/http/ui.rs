//! The web dashboard: the files `ui/` builds (`npm run build` → `ui/dist`), embedded in the
//! binary in release builds (read from `ui/dist` at run time in debug builds).
//!
//! - `GET /` answers the dashboard to browsers (`Accept: text/html`) and the JSON index of
//!   the API to everything else.
//! - `GET /assets/{file}`: hashed file names, cached for a year (`immutable`).
//! - Any other `GET` outside `/api/` and `/v1/` that a browser asks for is a dashboard route
//!   (`/dashboard`, `/sql`, …) and answers `index.html`, never cached.
//! - Each file is served from its `.br` or `.gz` twin (made by `ui/scripts/compress.mjs`) when
//!   the client accepts that encoding; `ETag` / `If-None-Match` from the embedded hash.
//! - Every UI answer carries a strict `Content-Security-Policy` (`default-src 'self'`: no
//!   inline script or style, nothing from another origin).
//!
//! Built without `ui/dist`, the binary still compiles and `/` says how to build the UI.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use rust_embed::Embed;

#[derive(Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../ui/dist/"]
#[allow_missing = true]
struct Dist;

/// The policy every dashboard answer carries.
pub(crate) const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &str = "index.html";

const NOT_BUILT: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>UnMoGrowP</title></head><body><h1>UnMoGrowP</h1>\
<p>The API is up, but this binary was built without the web dashboard.</p>\
<p>Build it with <code>./scripts/setup.sh</code> (or <code>cd ui &amp;&amp; npm ci &amp;&amp; npm run build</code>), \
then rebuild the binary: <code>./scripts/start.sh</code>.</p>\
<p>The API description is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p></body></html>";

/// Whether the request is a browser asking for a page.
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"))
}

/// `GET /` for browsers.
pub(crate) fn index(headers: &HeaderMap) -> Response {
    file(INDEX, headers).unwrap_or_else(not_built)
}

/// `GET /assets/{*file}`.
pub(crate) async fn asset(req: Request) -> Response {
    let path = req.uri().path().trim_start_matches('/');
    file(path, req.headers()).unwrap_or_else(|| {
        super::ApiError::of(super::Code::NotFound, "no such dashboard file").into_response()
    })
}

/// The router's fallback: dashboard routes and top-level files for browsers, else `None`.
pub(crate) fn fallback(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response> {
    if !(method == Method::GET || method == Method::HEAD)
        || path.starts_with("/api/")
        || path.starts_with("/v1/")
    {
        return None;
    }
    let name = path.trim_start_matches('/');
    if !name.is_empty() && !name.ends_with(".br") && !name.ends_with(".gz") {
        if let Some(r) = file(name, headers) {
            return Some(r);
        }
    }
    wants_html(headers).then(|| index(headers))
}

fn not_built() -> Response {
    let mut r = (StatusCode::OK, NOT_BUILT).into_response();
    set(&mut r, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(&mut r, header::CACHE_CONTROL, "no-cache");
    security_headers(&mut r);
    r
}

fn set(r: &mut Response, name: header::HeaderName, value: &'static str) {
    r.headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

fn security_headers(r: &mut Response) {
    set(r, header::CONTENT_SECURITY_POLICY, CSP);
    set(r, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(r, header::REFERRER_POLICY, "same-origin");
    set(r, header::X_FRAME_OPTIONS, "DENY");
}

/// The encodings the client accepts, best first among those we have files for.
fn encodings(headers: &HeaderMap) -> Vec<(&'static str, &'static str)> {
    let accept = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let accepts = |enc: &str| {
        accept.split(',').any(|part| {
            let mut it = part.split(';');
            let name = it.next().unwrap_or("").trim();
            let q_zero = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name == enc || name == "*") && !q_zero
        })
    };
    [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(enc, _)| accepts(enc))
        .collect()
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" | "webmanifest" => "application/json",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn file(path: &str, headers: &HeaderMap) -> Option<Response> {
    let plain = Dist::get(path)?;
    let etag = format!("\"{}\"", hex::encode(&plain.metadata.sha256_hash()[..16]));
    let (body, encoding) = encodings(headers)
        .into_iter()
        .find_map(|(enc, ext)| Dist::get(&format!("{path}{ext}")).map(|f| (f.data, Some(enc))))
        .unwrap_or((plain.data, None));
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag));
    let mut r = if not_modified {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body.into_owned()).into_response()
    };
    set(&mut r, header::CONTENT_TYPE, content_type(path));
    if let Some(enc) = encoding {
        set(
            &mut r,
            header::CONTENT_ENCODING,
            if enc == "br" { "br" } else { "gzip" },
        );
    }
    set(&mut r, header::VARY, "accept-encoding");
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    set(&mut r, header::CACHE_CONTROL, cache);
    security_headers(&mut r);
    Some(r)
}
