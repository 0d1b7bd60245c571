//! Building responses: JSON (API and protocol), HTML pages, redirects, and the headers each one
//! must carry. Every response Clavex sends is made here.

use serde::Serialize;
use worker::{Headers, Response, Result};

/// JSON body with `application/json`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Result<Response> {
    let text = serde_json::to_string(body)?;
    let headers = Headers::new();
    headers.set("Content-Type", "application/json")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    Ok(Response::ok(text)?
        .with_status(status)
        .with_headers(headers))
}

/// Responses that carry tokens or credentials must not be cached (RFC 6749 §5.1).
pub fn no_store(resp: Response) -> Result<Response> {
    resp.headers().set("Cache-Control", "no-store")?;
    resp.headers().set("Pragma", "no-cache")?;
    Ok(resp)
}

/// The admin API's error shape: `{"error", "error_description"}` plus the offending field.
pub fn api_error(
    status: u16,
    error: &str,
    description: &str,
    field: Option<&str>,
) -> Result<Response> {
    let mut body = serde_json::json!({ "error": error, "error_description": description });
    if let Some(field) = field {
        body["field"] = serde_json::Value::String(field.to_string());
    }
    json(status, &body)
}

/// An HTML page. Pages are self-contained (inline CSS only), so the policy forbids everything
/// else; framing is refused to stop click-jacking of the login form.
pub fn html(status: u16, body: String) -> Result<Response> {
    html_with_csp(
        status,
        body,
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; form-action *; frame-ancestors 'none'; base-uri 'none'",
    )
}

/// An HTML page under its own Content-Security-Policy (the form_post page: its script by hash,
/// its form to one origin; ui/form_post.rs), with the same other headers as every page.
pub fn html_with_csp(status: u16, body: String, csp: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", "text/html; charset=utf-8")?;
    headers.set("Content-Security-Policy", csp)?;
    headers.set("X-Frame-Options", "DENY")?;
    headers.set("X-Content-Type-Options", "nosniff")?;
    // Not no-referrer: under it browsers send `Origin: null` with the page's own form POSTs,
    // which the same-origin check refuses. same-origin still gives other sites no Referer.
    headers.set("Referrer-Policy", "same-origin")?;
    headers.set("Cache-Control", "no-store")?;
    Ok(Response::ok(body)?
        .with_status(status)
        .with_headers(headers))
}

/// A 302 (or 303 after a POST) to `location`, never cached.
pub fn redirect(location: &str, status: u16) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Location", location)?;
    headers.set("Cache-Control", "no-store")?;
    headers.set("Referrer-Policy", "no-referrer")?;
    Ok(Response::empty()?.with_status(status).with_headers(headers))
}

/// 405 with the Allow header RFC 9110 §15.5.6 requires.
pub fn method_not_allowed(allow: &str) -> Result<Response> {
    let resp = api_error(405, "method_not_allowed", &format!("use {allow}"), None)?;
    resp.headers().set("Allow", allow)?;
    Ok(resp)
}

pub fn not_found() -> Result<Response> {
    api_error(404, "not_found", "no such endpoint", None)
}

/// CORS for the endpoints a browser-based (public) client calls directly: token, userinfo,
/// revocation, discovery and JWKS. They authenticate with the request body or a bearer header,
/// never with cookies, so any origin may read their responses; cookie-bearing endpoints (authorize,
/// login, consent, logout) and introspection (server to server) get no CORS headers.
pub fn allow_any_origin(resp: Response) -> Result<Response> {
    resp.headers().set("Access-Control-Allow-Origin", "*")?;
    resp.headers()
        .set("Access-Control-Expose-Headers", "WWW-Authenticate")?;
    Ok(resp)
}

/// The answer to a CORS preflight (`OPTIONS` with Access-Control-Request-Method).
pub fn preflight(methods: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Access-Control-Allow-Origin", "*")?;
    headers.set("Access-Control-Allow-Methods", methods)?;
    headers.set(
        "Access-Control-Allow-Headers",
        "Authorization, Content-Type",
    )?;
    headers.set("Access-Control-Max-Age", "86400")?;
    Ok(Response::empty()?.with_status(204).with_headers(headers))
}
