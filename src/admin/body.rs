//! Reading a request's JSON body with the checks that keep bad input at 4xx: the media type must
//! be JSON (415), the body at most `MAX_BODY` bytes (413, checked on Content-Length before reading
//! and again on what was read, since a chunked body has no Content-Length), and well-formed (400).

use serde_json::Value;
use worker::Request;

use crate::admin::Failure;
use crate::admin::error::ApiError;
use crate::admin::fields::Fields;

/// Far above any real admin payload (a client with many redirect URIs is a few KiB).
pub const MAX_BODY: usize = 64 * 1024;

/// `application/json`, with or without parameters such as `charset=utf-8` (RFC 9110 §8.3.1: the
/// type and subtype are case-insensitive).
pub fn is_json(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|ct| ct.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

pub fn check_declared_length(content_length: Option<&str>) -> Result<(), ApiError> {
    match content_length.map(|v| v.trim().parse::<u64>()) {
        Some(Ok(n)) if n > MAX_BODY as u64 => Err(too_large()),
        Some(Err(_)) => Err(ApiError::invalid_request("Content-Length is not a number")),
        _ => Ok(()),
    }
}

fn too_large() -> ApiError {
    ApiError::new(
        413,
        "payload_too_large",
        format!("the body must be at most {MAX_BODY} bytes"),
    )
}

pub fn parse(text: &str) -> Result<Value, ApiError> {
    if text.len() > MAX_BODY {
        return Err(too_large());
    }
    serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_request(format!("the body is not valid JSON: {e}")))
}

/// The body as an object restricted to `allowed` members.
pub async fn read(req: &mut Request, allowed: &[&str]) -> Result<Fields, Failure> {
    let headers = req.headers();
    if !is_json(headers.get("Content-Type")?.as_deref()) {
        return Err(ApiError::new(
            415,
            "unsupported_media_type",
            "send the body as Content-Type: application/json",
        )
        .into());
    }
    check_declared_length(headers.get("Content-Length")?.as_deref())?;
    let text = req.text().await?;
    Ok(Fields::new(parse(&text)?, allowed)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_media_type() {
        assert!(is_json(Some("application/json")));
        assert!(is_json(Some("Application/JSON; charset=utf-8")));
        assert!(!is_json(Some("text/plain")));
        assert!(!is_json(Some("application/x-www-form-urlencoded")));
        assert!(!is_json(Some("application/jsonp")));
        assert!(!is_json(None));
    }

    #[test]
    fn size_limits() {
        assert!(check_declared_length(Some("65536")).is_ok());
        assert_eq!(
            check_declared_length(Some("65537")).unwrap_err().status,
            413
        );
        assert!(check_declared_length(None).is_ok());
        assert_eq!(check_declared_length(Some("lots")).unwrap_err().status, 400);
        let big = format!("\"{}\"", "x".repeat(MAX_BODY));
        assert_eq!(parse(&big).unwrap_err().status, 413);
    }

    #[test]
    fn malformed_json_is_a_400() {
        let err = parse("{\"a\":").unwrap_err();
        assert_eq!((err.status, err.error), (400, "invalid_request"));
        assert!(parse("{\"a\":1}").is_ok());
    }
}
